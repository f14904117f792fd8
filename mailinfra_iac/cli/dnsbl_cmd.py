"""``mailinfra dnsbl check [SPEC]``: are the deployment's IPs and domains on a blocklist right now?

Subjects: every sending IP and every From, return-path, tracking and link domain of the spec
(``facts.dnsbl``), plus ``--ip``/``--domain`` (SPEC is optional when they are given). Zones: the
spec's selection, else the catalogue's defaults; ``--zone`` restricts. Queries go to the spec's
``monitoring.dnsbl.nameservers`` (``--nameserver`` overrides), with recursion: use your own
resolver, as Spamhaus and others refuse public ones.

Exit codes: 0 clean; 1 listed somewhere; 2 could not check (a zone not working here, zone
errors, no resolver answering, nothing to check).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from mailinfra_agent.dnsbl import Report

from .. import api
from ..dnscheck import dnsbl
from ..facts.dnsbl import dnsbl_subjects
from ..problems import MailinfraError, SpecInvalid
from .common import addresses_from
from .progress import Progress

EXIT_CLEAN, EXIT_LISTED, EXIT_CANNOT_CHECK = 0, 1, 2


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'invalid number "{text}"') from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f'must be positive, got {text}')
        return value

    return parse


def _columns(header: Sequence[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(title), *(len(row[i]) for row in rows)]) for i, title in enumerate(header[:-1])]
    lines = ['  '.join(f'{title:<{w}}' for title, w in zip(header, widths, strict=False)) + '  ' + header[-1]]
    lines += ['  '.join(f'{cell:<{w}}' for cell, w in zip(row, widths, strict=False)) + '  ' + row[-1] for row in rows]
    return lines


def _text(report: Report, planned: dnsbl.DnsblPlan) -> str:
    out: list[str] = []
    listed = [r for r in report.results if r.status == 'listed']
    if listed:
        rows = [
            [
                r.subject,
                r.zone,
                r.severity,
                ', '.join(code.code for code in r.listings),
                '; '.join(code.meaning for code in r.listings),
                r.delisting_url or '-',
            ]
            for r in listed
        ]
        out += [
            f'LISTED ({len(listed)})',
            *_columns(['SUBJECT', 'ZONE', 'SEVERITY', 'CODE', 'MEANING', 'DELIST'], rows),
        ]
    else:
        out.append('LISTED: none')
    broken = [zone for zone in report.zones if not zone.working]
    if broken:
        out += ['', 'ZONE NOT WORKING HERE (its answers are not trusted)']
        out += [f'  {zone.zone}: {zone.message}' for zone in broken]
    errors = [(zone.zone, error, count) for zone in report.zones for error, count in sorted(zone.errors.items())]
    if errors:
        meaning = {(r.zone, code.code): code.meaning for r in report.results for code in r.errors}
        rows = [[zone, error, str(count), meaning.get((zone, error), '')] for zone, error, count in errors]
        out += ['', 'ZONE ERRORS (not listings)', *_columns(['ZONE', 'ERROR', 'ANSWERS', 'MEANING'], rows)]
    scores = [r for r in report.results if r.status == 'score']
    if scores:
        rows = [[r.subject, r.zone, str(r.score), r.message or ''] for r in scores]
        out += ['', 'REPUTATION SCORES (never listings)', *_columns(['SUBJECT', 'ZONE', 'SCORE', 'NOTE'], rows)]
    allowed = [r for r in report.results if r.status == 'allowlisted']
    if allowed:
        rows = [[r.subject, r.zone, '; '.join(c.meaning for c in r.listings) or r.message or ''] for r in allowed]
        out += ['', 'ALLOWLISTS', *_columns(['SUBJECT', 'ZONE', 'TRUST'], rows)]
    if planned.unresolved:
        out += ['', 'not checked (address allocated by the provider, unknown): ' + ', '.join(planned.unresolved)]
    clean = sum(1 for r in report.results if r.status == 'clean')
    out += [
        '',
        f'{len(planned.ips)} IPs and {len(planned.domains)} domains against {len(planned.zones)} zones via '
        f'{", ".join(planned.nameservers)}: {len(listed)} listed, {clean} clean, {len(broken)} not working here '
        f'({report.duration:.2f}s)',
    ]
    return '\n'.join(out)


def cmd_dnsbl_check(args: argparse.Namespace) -> int:
    """Problems before any query (spec, options, key file) are "could not check" (2): 1 only ever means listed."""
    try:
        return _check(args)
    except SpecInvalid as invalid:
        print(f'Invalid spec {invalid.file}: {len(invalid.errors)} error(s)', file=sys.stderr)
        for problem in invalid.problems:
            print(f'  - {problem}', file=sys.stderr)
    except MailinfraError as error:
        print(f'error: {error}', file=sys.stderr)
    if args.format == 'json':
        print(json.dumps({'exit': EXIT_CANNOT_CHECK, 'ok': False}, indent=2))
    return EXIT_CANNOT_CHECK


def _check(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if args.spec is None and not (args.ip or args.domain):
        raise MailinfraError('nothing to check: give a SPEC, or subjects with --ip/--domain')
    deployment, subjects = None, None
    if args.spec is not None:
        spec = api.load_spec(args.spec, as_of=args.as_of)
        deployment = spec.deployment
        subjects = dnsbl_subjects(spec.deployment, spec.facts, addresses_from(args.terraform_output, spec))
    planned = dnsbl.plan(
        deployment,
        subjects,
        ips=args.ip or (),
        domains=args.domain or (),
        zones=args.zone or (),
        nameservers=args.nameserver or (),
    )
    key = dnsbl.dqs_key(args.dqs_key_file)
    public = dnsbl.public_resolver_warnings(planned.nameservers)
    for warning in public:
        print(warning, file=sys.stderr)
    if not planned.ips and not planned.domains:
        raise MailinfraError('nothing to check: the spec has no known sending IP or domain; give --ip/--domain')
    with Progress('checking blocklists', enabled=args.format == 'table') as progress:
        report = dnsbl.run(
            planned, key=key, timeout=args.timeout, concurrency=args.concurrency, progress=progress.update
        )
    code = report.exit_code
    if args.textfile:
        dnsbl.write_textfile(report, args.textfile)
    if args.format == 'json':
        document = report.to_dict()
        document.update(
            {
                'exit': code,
                'nameservers': list(planned.nameservers),
                'public_resolvers': list(public),
                'unresolved_ips': list(planned.unresolved),
                'timing': {'total_seconds': round(time.perf_counter() - started, 4)},
            }
        )
        print(json.dumps(document, indent=2, sort_keys=True))
        return code
    print(_text(report, planned))
    for warning in report.warnings:
        if warning not in public:
            print(f'warning: {warning}', file=sys.stderr)
    if code == EXIT_CANNOT_CHECK:
        print('could not check everything: see the zones not working here and the zone errors above', file=sys.stderr)
    return code


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    parent = sub.add_parser('dnsbl', help='check the sending IPs and domains against DNS blocklists')
    parent_sub = parent.add_subparsers(dest='dnsbl_command', required=True, metavar='COMMAND')
    check = with_spec(
        'check',
        'check every sending IP and From, return-path, tracking and link domain against the blocklists; exit 1 '
        'if listed, 2 if it could not check',
        parent_sub,
    )
    check.description = (
        'Listings are answers a zone documents as listings; error and refusal codes are zone errors, a zone whose '
        'test point does not answer as documented is "not working here", and reputation scores and allowlists '
        'are reported in their own sections. Exit codes: 0 clean, 1 listed, 2 could not check.'
    )
    spec_action = next(action for action in check._actions if action.dest == 'spec')
    spec_action.nargs = '?'
    spec_action.default = None
    spec_action.help = 'path to the deployment spec (YAML); optional with --ip/--domain'
    check.add_argument('--ip', action='append', metavar='ADDRESS', help='an IPv4 or IPv6 address to check (repeatable)')
    check.add_argument('--domain', action='append', metavar='NAME', help='a domain to check (repeatable)')
    check.add_argument(
        '--nameserver',
        action='append',
        metavar='ADDR[:PORT]',
        help='recursive resolver (repeatable; default: monitoring.dnsbl.nameservers, else 127.0.0.1)',
    )
    check.add_argument('--zone', action='append', metavar='ZONE', help='check only this zone (repeatable)')
    check.add_argument(
        '--dqs-key-file',
        metavar='FILE',
        help=f'Spamhaus DQS key in a 0600 file (default: ${dnsbl.DQS_KEY_ENV}); never printed',
    )
    check.add_argument('--terraform-output', metavar='FILE', help='`terraform output -json` for allocated addresses')
    check.add_argument(
        '--timeout', type=_positive(float), default=2.0, metavar='SECONDS', help='per query attempt (default 2)'
    )
    check.add_argument(
        '--concurrency', type=_positive(int), default=64, metavar='N', help='queries in flight (default 64)'
    )
    check.add_argument('--format', choices=['table', 'json'], default='table')
    check.add_argument(
        '--textfile', metavar='PATH', help="write Prometheus metrics (node_exporter's textfile format) atomically"
    )
    check.set_defaults(func=cmd_dnsbl_check)
