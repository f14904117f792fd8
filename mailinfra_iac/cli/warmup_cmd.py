"""``mailinfra warmup plan SPEC``: the warm-up calendar of every warming IP per ISP, and when each pool is warm.

The calendar is the one the hosts apply (``mailinfra_agent.shaping.warmup``) while no day is held for its bounce or
complaint rate: each IP from its ``warmup_started`` day to the end of its warm-up. With a feedback store
(``--store sqlite:PATH`` or ``--dsn``), the days before ``--as-of`` (default: today) are judged from its events
as the hosts judge them, so held days shift the calendar. Formats: a table (text), ``json`` (docs/warmup.md)
and ``csv`` (one row per IP, ISP and day).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from mailinfra_agent.contract import DEFAULT_ISP
from mailinfra_agent.store import StoreError

from .. import api
from ..facts.warmup import WarmupPlan, store_histories, warmup_plan
from ..problems import MailinfraError
from .feedback_report_cmd import open_store, sqlite_store

OTHER = 'other'
"""How the plan names ``DEFAULT_ISP``: recipients no ISP profile matches."""


def _isp(name: str) -> str:
    return OTHER if name == DEFAULT_ISP else name


def _isp_order(name: str) -> tuple[bool, str]:
    return (name == DEFAULT_ISP, name)


def _split(isps: dict[str, int]) -> dict[str, int]:
    """A day's split, ISPs by name, ``other`` last."""
    return {_isp(name): isps[name] for name in sorted(isps, key=_isp_order)}


def as_data(plan: WarmupPlan) -> dict[str, Any]:
    return {
        'curve': plan.curve,
        'source': plan.source,
        'points': [{'day': day, 'cap': cap} for day, cap in plan.points],
        'time_zone': plan.time_zone,
        'split': 'each ISP gets its share of the stream recipients (recipient_mix or the ISP default_share), '
        'rounded down; "other" gets the rest',
        'pools': [
            {
                'stream': reach.stream,
                'pool': reach.pool,
                'daily_volume': reach.daily_volume,
                'warming': reach.warming,
                'reaches_volume': reach.date.isoformat() if reach.date else None,
            }
            for reach in plan.reach
        ],
        'days': [
            {
                'stream': day.stream,
                'pool': day.pool,
                'ip': day.ip,
                'day': day.day,
                'date': day.date.isoformat(),
                'step': day.step,
                'cap': day.cap,
                'isps': _split(day.isps),
                'held': day.held,
            }
            for day in plan.days
        ],
    }


def as_csv(plan: WarmupPlan) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(['stream', 'pool', 'ip', 'isp', 'day', 'date', 'step', 'cap', 'ip_cap', 'held'])
    for day in plan.days:
        for name, cap in _split(day.isps).items():
            row = [day.stream, day.pool, day.ip, name, day.day, day.date.isoformat(), day.step, cap, day.cap]
            writer.writerow([*row, day.held or ''])
    return out.getvalue()


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return ['  '.join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def as_text(plan: WarmupPlan) -> str:
    lines = [
        f'Warm-up curve: {plan.curve}, from {plan.source}',
        '  daily cap per IP: ' + ', '.join(f'day {day} {cap:,}' for day, cap in plan.points) + '; then no cap',
        f'  days start at midnight {plan.time_zone}; a day over the stream rate lines (monitoring.rates: hard bounces, '
        'complaints) does not advance the IP',
        '  split across ISPs: each ISP its share of the stream recipients, rounded down; "other" gets the rest',
        '',
    ]
    for reach in plan.reach:
        pool = reach.pool or '(no pool)'
        if not reach.warming:
            when = 'no warming IP: no cap'
        elif reach.date is None:
            when = 'not within 3 years'
        else:
            when = f'reaches it on {reach.date.isoformat()}'
        lines.append(f'Stream {reach.stream}, pool {pool}: {reach.daily_volume:,} mails a day (monthly / 30); {when}')
    if not plan.days:
        lines.extend(['', 'No IP warms up (no warmup_started on any IP, or every warm-up is over).'])
        return '\n'.join(lines) + '\n'
    ips: dict[tuple[str, str], list[Any]] = {}
    for day in plan.days:
        ips.setdefault((day.stream, day.ip), []).append(day)
    for (stream, ip), days in ips.items():
        isps = sorted({name for day in days for name, cap in day.isps.items() if cap}, key=_isp_order)
        held = any(day.held for day in days)
        rows = [['day', 'date', 'step', 'cap', *(_isp(name) for name in isps)]]
        rows += [
            [
                str(day.day),
                day.date.isoformat(),
                str(day.step),
                f'{day.cap:,}',
                *(f'{day.isps.get(name, 0):,}' for name in isps),
            ]
            for day in days
        ]
        table = _table(rows)
        if held:  # the reason after the row, left-aligned
            table = [
                f'{table[0]}  held because',
                *(f'{line}  {day.held or ""}'.rstrip() for line, day in zip(table[1:], days, strict=True)),
            ]
        lines.extend(['', f'{ip} (stream {stream}, pool {days[0].pool})', *('  ' + line for line in table)])
    return '\n'.join(lines) + '\n'


def cmd_warmup_plan(args: argparse.Namespace) -> int:
    if args.password_file is not None and args.dsn is None:
        args.parser.error('--password-file goes with --dsn')
    spec = api.load_spec(args.spec, as_of=args.as_of)
    history = None
    if args.store is not None or args.dsn is not None:
        zone = ZoneInfo(spec.deployment.warmup.time_zone)
        today = args.as_of or dt.datetime.now(zone).date()
        with open_store(args) as db:
            try:
                history = store_histories(db, spec.deployment, spec.facts.streams, today)
            except StoreError as error:
                raise MailinfraError(f'cannot read the store: {error}') from None
    plan = warmup_plan(spec.deployment, spec.facts.streams, history)
    if args.format == 'json':
        print(json.dumps(as_data(plan), indent=2))
    elif args.format == 'csv':
        print(as_csv(plan), end='')
    else:
        print(as_text(plan), end='')
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    parent = sub.add_parser('warmup', help='IP warm-up: the calendar of caps per IP and ISP')
    parent_sub = parent.add_subparsers(dest='warmup_command', required=True, metavar='COMMAND')
    plan = with_spec(
        'plan',
        'print the daily cap of every warming IP per ISP, and the date each pool reaches its stream volume',
        parent_sub,
    )
    plan.description = (
        'The calendar of each warming IP from its warmup_started day. The hosts follow it, holding an IP on days '
        'over its stream rate lines; with --store or --dsn the days before --as-of (default: today) are judged '
        'from the feedback store the same way.'
    )
    plan.add_argument('--format', choices=['table', 'json', 'csv'], default='table')
    where = plan.add_mutually_exclusive_group()
    where.add_argument(
        '--store',
        type=sqlite_store,
        action='append',
        metavar='sqlite:PATH',
        help="a feedback store: judge past days from its events; repeat it for several hosts' stores",
    )
    where.add_argument('--dsn', help='the shared PostgreSQL store: a libpq connection string without a password')
    plan.add_argument('--password-file', metavar='FILE', help='with --dsn: a 0600 file holding the password')
    plan.set_defaults(func=cmd_warmup_plan, parser=plan)
