"""``mailinfra dns check``: ask the authoritative servers whether they serve what the spec publishes.

The servers to check must be given (``--nameserver``, repeatable): the command never asks the
machine's resolver, so it can check a server before the zone is delegated to it and sees what
each server really serves, not what a cache remembers. Names outside the deployment's zones
(third-party SPF includes, report destinations, reverse zones of provider addresses) are asked
of ``--resolver`` when given and reported as not checked (warn) otherwise.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from mailinfra_agent.dns.client import DEFAULT_TIMEOUT, DEFAULT_WINDOW, parse_server

from .. import api
from ..dnscheck import CHECKS, run_dns_checks
from ..dnscheck.results import CheckResult
from ..problems import MailinfraError
from .common import addresses_from

EXIT_OK, EXIT_FAILED = 0, 1


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


def cmd_dns_check(args: argparse.Namespace) -> int:
    try:
        servers = [parse_server(value) for value in args.nameserver]
        resolver = parse_server(args.resolver) if args.resolver else None
    except ValueError as error:
        raise MailinfraError(str(error)) from None
    spec = api.load_spec(args.spec, as_of=args.as_of)
    report = run_dns_checks(
        spec,
        servers,
        dkim=api.keystore_dkim(spec, args.keys),
        addresses=addresses_from(args.terraform_output),
        resolver=resolver,
        engine=args.engine,
        timeout=args.timeout,
        window=args.concurrency,
    )
    counts = report.summary()
    if args.format == 'json':
        document = {
            'ok': not report.failed,
            'servers': report.servers,
            'resolver': str(resolver) if resolver else None,
            'summary': counts,
            'queries': len(report.questions),
            'results': [result.as_dict() for result in report.results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(_table(report.results, report.servers))
        print(
            f'\n{len(report.results)} checks: {counts["pass"]} pass, {counts["warn"]} warn, {counts["fail"]} fail '
            f'({len(report.questions)} queries to {", ".join(report.servers)}'
            + (f' and {resolver}' if resolver else '')
            + f' in {report.seconds:.2f}s)'
        )
    return EXIT_FAILED if report.failed else EXIT_OK


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    dns = sub.add_parser('dns', help='check DNS as the authoritative servers serve it')
    dns_sub = dns.add_subparsers(dest='dns_command', required=True, metavar='COMMAND')
    check = with_spec(
        'check',
        'ask the authoritative servers for every record the spec publishes and check FCrDNS, SPF, DKIM, '
        'DMARC, MX, MTA-STS and TLS-RPT; exit 1 if any check fails',
        dns_sub,
    )
    check.description = (
        'Check ids: ' + ', '.join(CHECKS) + ". Without --resolver, names outside the deployment's zones are "
        'not asked and their checks warn.'
    )
    check.add_argument(
        '--nameserver',
        action='append',
        required=True,
        metavar='ADDR[:PORT]',
        help='an authoritative server of the zones (IP address; repeat for each server); each is checked on its own',
    )
    check.add_argument(
        '--resolver',
        metavar='ADDR[:PORT]',
        help="a recursive resolver for names outside the deployment's zones (third-party SPF includes, report "
        'destinations, provider reverse DNS)',
    )
    check.add_argument('--format', choices=['table', 'json'], default='table')
    check.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    check.add_argument('--terraform-output', metavar='FILE', help='`terraform output -json` for allocated addresses')
    check.add_argument(
        '--timeout',
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar='SECONDS',
        help='per query attempt (3 attempts)',
    )
    check.add_argument(
        '--concurrency', type=_positive(int), default=DEFAULT_WINDOW, metavar='N', help='queries in flight per server'
    )
    check.add_argument(
        '--engine',
        choices=['fast', 'dnspython'],
        default='fast',
        help='"dnspython" asks through dnspython\'s async API: slower, the reference for the default engine',
    )
    check.set_defaults(func=cmd_dns_check)
