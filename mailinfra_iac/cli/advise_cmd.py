"""``mailinfra advise``: economics, dedicated or shared, the MTA and the IPs per stream, each with its arithmetic.

Works from a spec (every stream's volume, kind, pool and ISP limits) or from flags alone (``--monthly-volume``,
``--use-case``...). The figures and their rules live in ``facts/advice.py``; this module reads the inputs, names
their sources and prints. docs/advisor.md explains every rule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from .. import api
from ..facts.advice import (
    DERIVED,
    Costs,
    Curve,
    Input,
    Section,
    catalogue_isps,
    daily_volume,
    economics,
    infrastructure,
    ip_count,
    mta_section,
    volume_input,
)
from ..facts.capacity import WARMUP_ACTIVE_HOURS
from ..facts.warmup import curve_points, warmup_plan
from ..model import STREAM_KINDS

TOPICS = {'economics': 'Economics', 'infrastructure': 'Dedicated or shared', 'mta': 'MTA', 'ips': 'IPs'}
ECONOMICS_FLAGS = ('revenue_per_inbox', 'placement_shared', 'placement_dedicated')
VOLUME_FLAGS = ('monthly_volume', 'peak_hourly', 'use_case')


def _count(text: str) -> int:
    try:
        value = int(text.replace(',', '').replace('_', ''))
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number (e.g. 1000000 or 1,000,000)') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{text}" is negative; a volume is 0 or more')
    return value


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text.replace(',', '').replace('_', ''))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number') from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f'"{text}" is not a finite number')
    return value


def _money(text: str) -> Decimal:
    value = _decimal(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{text}" is negative; an amount is 0 or more')
    return value


def _share(text: str) -> Decimal:
    """``0.78`` or ``78%``."""
    value = _decimal(text[:-1]) / 100 if text.endswith('%') else _decimal(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f'"{text}" is not a placement rate: give 0..1 (0.78) or a percentage (78%)')
    return value


def _costs(args: argparse.Namespace) -> Costs | None:
    if args.cost_shared is None and args.cost_dedicated is None:
        return None
    return Costs(args.cost_shared, args.cost_dedicated)


def _check(args: argparse.Namespace) -> str | None:
    """A usage error, or None."""
    given = [name for name in ECONOMICS_FLAGS if getattr(args, name) is not None]
    if given and len(given) < len(ECONOMICS_FLAGS):
        missing = ', '.join('--' + name.replace('_', '-') for name in ECONOMICS_FLAGS if name not in given)
        return f'the economics need {missing} too'
    if (args.cost_shared is None) != (args.cost_dedicated is None):
        return '--cost-shared and --cost-dedicated go together (or leave both out for the seed estimate)'
    if (args.cost_shared is not None or args.currency != '€') and not given:
        return '--cost-shared, --cost-dedicated and --currency need --revenue-per-inbox and the placement rates'
    if args.spec is not None:
        clash = [name for name in VOLUME_FLAGS if getattr(args, name) is not None]
        if clash:
            flags = ', '.join('--' + name.replace('_', '-') for name in clash)
            return f"{flags}: the spec gives each stream's volume and kind; leave {flags} out or the spec"
        return None
    if args.monthly_volume is None:
        return 'give a SPEC, or --monthly-volume (and --use-case, --peak-hourly) for advice without one'
    if args.engaged and args.use_case != 'marketing':
        return '--engaged describes a marketing list: it needs --use-case marketing'
    return None


def _economics(args: argparse.Namespace, monthly: Input) -> list[Section]:
    if args.revenue_per_inbox is None:
        return []
    return [
        economics(
            monthly,
            args.revenue_per_inbox,
            args.placement_shared,
            args.placement_dedicated,
            _costs(args),
            args.currency,
        )
    ]


def _use_case(kind: str | None, engaged: bool, source: str) -> Input:
    if kind is None:
        return Input('use_case', None, 'no stated use case', '--use-case not given')
    if kind == 'marketing' and engaged:
        return Input('use_case', 'engaged_marketing', 'an engaged marketing list', f'{source}, --engaged')
    return Input('use_case', kind, f'{kind} mail', source)


def advice_from_flags(args: argparse.Namespace) -> list[Section]:
    monthly = volume_input(args.monthly_volume, '--monthly-volume')
    if args.peak_hourly is not None:
        peak = Input('peak_hourly', args.peak_hourly, f'{args.peak_hourly:,} mails/hour', '--peak-hourly')
    else:
        daily = daily_volume(args.monthly_volume)
        value = -(-daily // WARMUP_ACTIVE_HOURS)
        peak = Input(
            'peak_hourly',
            value,
            f'{value:,} mails/hour',
            f'--peak-hourly not given: {daily:,}/day over {WARMUP_ACTIVE_HOURS} sending hours',
        )
    sections = _economics(args, monthly)
    sections.append(infrastructure(None, monthly, _use_case(args.use_case, args.engaged, '--use-case')))
    sections.append(mta_section(monthly))
    sections.append(
        ip_count(None, monthly, peak, catalogue_isps(), 'catalogue default_share', 'catalogue limits per IP')
    )
    return sections


def advice_from_spec(args: argparse.Namespace) -> list[Section]:
    spec = api.load_spec(args.spec, as_of=args.as_of)
    streams = spec.facts.streams
    total = sum(stream.volume.monthly for stream in streams.values())
    overall = volume_input(total, 'spec: the sum of streams.*.volume.monthly')
    sections = _economics(args, overall)
    engaged = args.engaged
    if engaged and not any(stream.kind == 'marketing' for stream in streams.values()):
        _usage(args, '--engaged describes a marketing list, and the spec has no marketing stream')
    for name, stream in streams.items():
        monthly = volume_input(stream.volume.monthly, f'spec: streams.{name}.volume.monthly')
        declared = spec.deployment.streams[name].kind is not None
        kind_source = f'spec: streams.{name}.kind' if declared else f'spec: the stream name "{name}" (no kind given)'
        use_case = _use_case(stream.kind, engaged, kind_source)
        sections.append(infrastructure(name, monthly, use_case))
    sections.append(
        mta_section(volume_input(total, 'spec: the sum of streams.*.volume.monthly'), advice=spec.facts.mta)
    )
    as_of = Input(
        'as_of',
        spec.facts.as_of.isoformat(),
        spec.facts.as_of.isoformat(),
        '--as-of' if args.as_of is not None else 'today',
    )
    curve = Curve.of_spec(spec.deployment.warmup.curve, curve_points(spec.deployment))
    reach = {row.stream: row.date for row in warmup_plan(spec.deployment, streams).reach if row.warming}
    for name, stream in streams.items():
        spec_stream = spec.deployment.streams[name]
        warming = spec.facts.capacity[name].warmup_capacity_per_hour
        sections.append(
            ip_count(
                name,
                volume_input(stream.volume.monthly, f'spec: streams.{name}.volume.monthly'),
                Input(
                    'peak_hourly',
                    stream.volume.peak_hourly,
                    f'{stream.volume.peak_hourly:,} mails/hour',
                    f'spec: streams.{name}.volume.peak_hourly',
                ),
                stream.isps,
                f'spec: streams.{name}.recipient_mix'
                if spec_stream.recipient_mix is not None
                else 'catalogue default_share',
                "catalogue limits with the spec's isp_profiles and isp_overrides",
                pool_size=len(stream.ips),
                warmup=(as_of, warming) if warming is not None else None,
                curve=curve,
                reach=reach.get(name),
            )
        )
    return sections


def _usage(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.parser
    parser.error(message)  # exits 2


WORDS = {'ips': 'IPs', 'ip': 'IP', 'mta': 'MTA'}


def _label(name: str) -> str:
    """``ips_for_peak.gmail`` -> ``IPs for peak, gmail``."""
    head, _, isp = name.partition('.')
    words = ' '.join(WORDS.get(word, word) for word in head.split('_'))
    return f'{words}, {isp}' if isp else words


def _inputs(items: list[Input]) -> str:
    return '; '.join(f'{_label(item.name)} {item.shown} ({item.source})' for item in items)


def advice_text(sections: list[Section], economics_given: bool) -> str:
    """Each section's verdict, then each figure with its arithmetic and the inputs not named before in the section.

    Per-ISP figures (``name.isp``) take one line each; their shares' and limits' sources follow them once.
    """
    lines: list[str] = []
    for section in sections:
        title = TOPICS[section.topic] + (f': stream {section.subject}' if section.subject else '')
        lines.append(f'{title}: {section.verdict}')
        named: set[tuple[str, str, str]] = set()
        per_isp: dict[str, set[str]] = {}
        for figure in section.figures:
            # figures above are not repeated as inputs (JSON lists them): the reason names them
            new = [
                item
                for item in figure.inputs
                if (item.name, item.shown, item.source) not in named and item.source != DERIVED
            ]
            named.update((item.name, item.shown, item.source) for item in new)
            if '.' in figure.name:
                lines.append(f'  {_label(figure.name)}: {figure.reason}')
                plain = [item for item in new if '.' not in item.name]
                for item in new:
                    if '.' in item.name:
                        per_isp.setdefault(_label(item.name.partition('.')[0]), set()).add(item.source)
                if plain:
                    lines.append(f'      from {_inputs(plain)}')
                continue
            if per_isp:
                sources = '; '.join(f'{name}: {", ".join(sorted(found))}' for name, found in per_isp.items())
                lines.append(f'      per ISP from {sources}')
                per_isp = {}
            lines.append(f'  {_label(figure.name)}: {figure.shown}')
            lines.append(f'      because {figure.reason}')
            if new:
                lines.append(f'      from {_inputs(new)}')
        lines.append('')
    if not economics_given:
        lines.append(
            'Economics: give --revenue-per-inbox, --placement-shared and --placement-dedicated (and --cost-shared, '
            '--cost-dedicated) to weigh the added revenue of dedicated infrastructure against its cost.'
        )
    return '\n'.join(lines).rstrip('\n') + '\n'


def advice_json(spec: str | None, sections: list[Section]) -> dict[str, Any]:
    return {'spec': spec, 'sections': [section.as_dict() for section in sections]}


def cmd_advise(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem:
        _usage(args, problem)
    sections = advice_from_spec(args) if args.spec is not None else advice_from_flags(args)
    if args.format == 'json':
        print(json.dumps(advice_json(args.spec, sections), indent=2, ensure_ascii=False))
    else:
        print(advice_text(sections, args.revenue_per_inbox is not None), end='')
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid date "{text}", expected YYYY-MM-DD') from None


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    del with_spec  # the spec is optional here
    advise = sub.add_parser(
        'advise',
        help='economics, dedicated or shared, MTA and IPs per stream, with the arithmetic',
        description="Advice with every number's reason and input, from a spec or from flags (docs/advisor.md).",
    )
    advise.add_argument('spec', nargs='?', help='deployment spec (YAML); without it, give --monthly-volume')
    advise.add_argument(
        '--as-of', type=_date, default=None, metavar='DATE', help='evaluate the spec as of this day (default: today)'
    )
    advise.add_argument('--monthly-volume', type=_count, metavar='N', help='mails a month (without a spec)')
    advise.add_argument(
        '--peak-hourly',
        type=_count,
        metavar='N',
        help=f'mails in the busiest hour (without a spec; default: a day over {WARMUP_ACTIVE_HOURS} hours)',
    )
    advise.add_argument('--use-case', choices=STREAM_KINDS, help='what the mail is (without a spec)')
    advise.add_argument(
        '--engaged', action='store_true', help='the marketing list is engaged (few complaints and bounces)'
    )
    advise.add_argument('--revenue-per-inbox', type=_money, metavar='X', help='revenue per inbox-delivered mail')
    advise.add_argument(
        '--placement-shared', type=_share, metavar='P', help='inbox placement on shared IPs (0.78 or 78%%)'
    )
    advise.add_argument(
        '--placement-dedicated', type=_share, metavar='P', help='inbox placement on dedicated IPs (0.97 or 97%%)'
    )
    advise.add_argument('--cost-shared', type=_money, metavar='X', help='monthly cost of shared infrastructure')
    advise.add_argument('--cost-dedicated', type=_money, metavar='X', help='monthly cost of dedicated infrastructure')
    advise.add_argument('--currency', default='€', help='currency sign of the amounts (default €)')
    advise.add_argument('--format', choices=['text', 'json'], default='text')
    advise.set_defaults(func=cmd_advise, parser=advise)
