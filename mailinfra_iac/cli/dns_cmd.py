"""``mailinfra dns check``: ask the authoritative servers whether they serve what the spec publishes.

The servers to check must be given (``--nameserver``, repeatable): the command never asks the
machine's resolver, so it can check a server before the zone is delegated to it and sees what
each server really serves, not what a cache remembers. Names outside the deployment's zones
(third-party SPF includes, report destinations, reverse zones of provider addresses) are asked
of ``--resolver`` when given; otherwise their checks are "unchecked", which fails the run unless
``--allow-unchecked`` is given.

Exit codes: 0 every check passed (warnings allowed); 1 the DNS is wrong (a check failed); 2 could not
check (a server unreachable or not authoritative for a zone, or checks left unchecked).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from mailinfra_agent.dns.client import DEFAULT_TIMEOUT, DEFAULT_WINDOW, parse_server

from .. import api
from ..dnscheck import CHECKS, CannotCheck, run_dns_checks
from ..dnscheck.results import STATUSES, CheckResult
from ..dnscheck.runner import DnsCheckReport
from ..problems import MailinfraError
from .common import addresses_from

EXIT_OK, EXIT_FAILED, EXIT_CANNOT_CHECK = 0, 1, 2


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


def _table(results: list[CheckResult], servers: list[str]) -> str:
    columns = ['check', 'subject', *(['server'] if len(servers) > 1 else []), 'status', 'reason']
    rows = [[getattr(result, column) for column in columns] for result in results]
    widths = [max([len(column), *(len(row[index]) for row in rows)]) for index, column in enumerate(columns[:-1])]
    lines = [
        '  '.join(f'{column.upper():<{width}}' for column, width in zip(columns, widths, strict=False)) + '  REASON'
    ]
    for row in rows:
        lines.append('  '.join(f'{cell:<{width}}' for cell, width in zip(row, widths, strict=False)) + '  ' + row[-1])
    return '\n'.join(lines)


def _zone_files(paths: list[str] | None) -> dict[str, str]:
    files = {}
    for path in paths or []:
        try:
            files[path] = Path(path).read_text(encoding='utf-8')
        except (OSError, UnicodeDecodeError) as error:
            raise MailinfraError(f'cannot read zone file {path}: {error}') from None
    return files


def live_dns_report(args: argparse.Namespace, spec: api.Spec) -> DnsCheckReport:
    """Run the DNS checks as the options of :func:`add_live_dns_options` ask; raises :class:`CannotCheck`."""
    try:
        servers = [parse_server(value) for value in args.nameserver]
        resolver = parse_server(args.resolver) if args.resolver else None
    except ValueError as error:
        raise MailinfraError(str(error)) from None
    zone_files = _zone_files(args.zone_file)
    return run_dns_checks(
        spec,
        servers,
        dkim=api.keystore_dkim(spec, args.keys),
        addresses=addresses_from(args.terraform_output, spec),
        resolver=resolver,
        engine=args.engine,
        timeout=args.timeout,
        window=args.concurrency,
        allow_unchecked=args.allow_unchecked,
        zone_files=zone_files,
    )


def cmd_dns_check(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        resolver = parse_server(args.resolver) if args.resolver else None
        for value in args.nameserver:
            parse_server(value)
    except ValueError as error:
        raise MailinfraError(str(error)) from None
    spec = api.load_spec(args.spec, as_of=args.as_of)
    try:
        report = live_dns_report(args, spec)
    except CannotCheck as error:
        if args.format == 'json':
            document = {
                'ok': False,
                'exit': EXIT_CANNOT_CHECK,
                'cannot_check': str(error),
                'timing': {'total_seconds': round(time.perf_counter() - started, 4)},
            }
            print(json.dumps(document, indent=2))
        else:
            print(f'cannot check: {error}', file=sys.stderr)
        return EXIT_CANNOT_CHECK
    code = EXIT_FAILED if report.failed else EXIT_CANNOT_CHECK if report.incomplete else EXIT_OK
    counts = report.summary()
    elapsed = time.perf_counter() - started
    if args.format == 'json':
        document = {
            'ok': report.ok,
            'exit': code,
            'servers': report.servers,
            'resolver': str(resolver) if resolver else None,
            'allow_unchecked': report.allow_unchecked,
            'summary': counts,
            'queries': len(report.questions),
            'timing': {
                'total_seconds': round(elapsed, 4),
                'check_seconds': round(report.seconds, 4),
                'query_seconds': round(report.query_seconds, 4),
            },
            'results': [result.as_dict() for result in report.results],
        }
        print(json.dumps(document, indent=2))
        return code
    print(_table(report.results, report.servers))
    shown = ', '.join(f'{counts[status]} {status}' for status in STATUSES if counts[status] or status != 'unchecked')
    print(
        f'\n{len(report.results)} checks: {shown} '
        f'({len(report.questions)} queries to {", ".join(report.servers)}'
        + (f' and {resolver}' if resolver else '')
        + f' in {report.query_seconds:.3f}s; {elapsed:.3f}s in all)'
    )
    if report.failed:
        print('DNS is wrong: see the failed checks above', file=sys.stderr)
    elif report.incomplete:
        unchecked = counts['unchecked']
        print(
            f'{unchecked} check{"s" if unchecked != 1 else ""} could not run: give --resolver (and '
            '--terraform-output, --keys) to run them, or --allow-unchecked to accept them unchecked',
            file=sys.stderr,
        )
    return code


def add_live_dns_options(parser: argparse.ArgumentParser) -> None:
    """The live-DNS options of ``dns check`` (shared with ``audit``, same names and meanings)."""
    parser.add_argument(
        '--nameserver',
        action='append',
        required=True,
        metavar='ADDR[:PORT]',
        help='an authoritative server of the zones (IP address; repeat for each server); each is checked on its own',
    )
    parser.add_argument(
        '--resolver',
        metavar='ADDR[:PORT]',
        help="a recursive resolver for names outside the deployment's zones (third-party SPF includes, report "
        'destinations, provider reverse DNS)',
    )
    parser.add_argument(
        '--allow-unchecked',
        action='store_true',
        help='accept checks that could not run (names outside the zones without --resolver, addresses or keys '
        'not known): they are reported but do not make the exit code non-zero',
    )
    parser.add_argument(
        '--zone-file',
        action='append',
        metavar='FILE',
        help='a zone file as deployed (repeatable): checked for TXT character-strings over 255 bytes, which '
        'no DNS answer shows',
    )
    parser.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    parser.add_argument('--terraform-output', metavar='FILE', help='`terraform output -json` for allocated addresses')
    parser.add_argument(
        '--timeout',
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar='SECONDS',
        help='per query attempt (3 attempts)',
    )
    parser.add_argument(
        '--concurrency', type=_positive(int), default=DEFAULT_WINDOW, metavar='N', help='queries in flight per server'
    )
    parser.add_argument(
        '--engine',
        choices=['fast', 'dnspython'],
        default='fast',
        help='"dnspython" asks through dnspython\'s async API: slower, the reference for the default engine',
    )


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    dns = sub.add_parser('dns', help='check DNS as the authoritative servers serve it')
    dns_sub = dns.add_subparsers(dest='dns_command', required=True, metavar='COMMAND')
    check = with_spec(
        'check',
        'ask the authoritative servers for every record the spec publishes and check FCrDNS, SPF, DKIM, '
        'DMARC, MX, MTA-STS and TLS-RPT; exit 1 if any check fails, 2 if the DNS could not be checked',
        dns_sub,
    )
    check.description = (
        'Check ids: ' + ', '.join(CHECKS) + ". Without --resolver, names outside the deployment's zones are "
        'not asked and their checks are unchecked, which fails the run unless --allow-unchecked. Exit codes: 0 '
        'all checks pass, 1 the DNS is wrong, 2 could not check (server unreachable or not authoritative, or '
        'checks unchecked).'
    )
    add_live_dns_options(check)
    check.add_argument('--format', choices=['table', 'json'], default='table')
    check.set_defaults(func=cmd_dns_check)
