"""``mailinfra-agent dns-drift``: do the resolvers still answer the records the deployment publishes?

Run by a timer on the monitoring host. The expected records are the contract's ``dns_expectations``
(public records only); they are asked of the blocklist resolvers (``blocklists.nameservers``, else
127.0.0.1) unless ``--nameserver`` is given. ``--textfile`` writes ``mailinfra_dns_record_ok``,
``mailinfra_dns_check_last_run_timestamp_seconds`` and ``mailinfra_dns_check_success`` atomically,
also when the check could not run (success 0), so an alert sees it.

Exit codes: 0 every record as expected; 1 drift; 2 could not check (contract, resolvers, textfile); 64 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..contract import DEFAULT_CONTRACT_PATH, ContractError, load_contract
from ..dns.client import DEFAULT_TIMEOUT, DEFAULT_WINDOW, Server, parse_server
from ..drift import DriftReport, TextfileError, check_drift, write_textfile

NAME = 'dns-drift'
HELP = 'Compare the public DNS records the deployment publishes with what the resolver answers now.'
EXIT_OK, EXIT_DRIFT, EXIT_CANNOT_CHECK, EXIT_USAGE = 0, 1, 2, 64
DEFAULT_RESOLVER = '127.0.0.1'


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--contract', type=Path, default=Path(DEFAULT_CONTRACT_PATH), help=f'default: {DEFAULT_CONTRACT_PATH}'
    )
    parser.add_argument(
        '--nameserver',
        action='append',
        metavar='ADDR[:PORT]',
        help='a recursive resolver (repeatable; the next is used only when one does not answer); default: the '
        "contract's blocklist resolvers, else 127.0.0.1",
    )
    parser.add_argument('--textfile', type=Path, metavar='PATH', help='write Prometheus metrics here (atomically)')
    parser.add_argument('--timeout', type=_positive(float), default=DEFAULT_TIMEOUT, metavar='SECONDS')
    parser.add_argument('--concurrency', type=_positive(int), default=DEFAULT_WINDOW, metavar='N')
    parser.add_argument('--format', choices=('text', 'json'), default='text')


def _servers(args: argparse.Namespace, contract_servers: list[str]) -> list[Server]:
    values = args.nameserver or contract_servers or [DEFAULT_RESOLVER]
    return [parse_server(value) for value in values]


def _finish(report: DriftReport, args: argparse.Namespace) -> int:
    code = EXIT_CANNOT_CHECK if not report.success else EXIT_DRIFT if report.drifted else EXIT_OK
    if args.textfile is not None:
        try:
            write_textfile(report, args.textfile)
        except TextfileError as error:
            print(f'dns-drift: {error}', file=sys.stderr)
            code = EXIT_CANNOT_CHECK
    if args.format == 'json':
        document = {
            'ok': code == EXIT_OK,
            'exit': code,
            'error': report.error,
            'servers': report.servers,
            'seconds': round(report.seconds, 4),
            'records': len(report.results),
            'drifted': [vars(result) for result in report.drifted],
        }
        print(json.dumps(document, indent=2))
        return code
    if report.error is not None:
        print(f'dns-drift: cannot check: {report.error}', file=sys.stderr)
        return code
    for result in report.drifted:
        print(f'DRIFT {result.check:<8} {result.type:<5} {result.name}: {result.reason}')
    print(
        f'{len(report.results)} record sets asked of {report.results[0].server if report.results else "-"}: '
        f'{len(report.drifted)} drifted ({report.seconds:.3f}s)'
    )
    return code


def run(args: argparse.Namespace) -> int:
    try:
        contract = load_contract(args.contract)
    except ContractError as error:
        for problem in error.problems:
            print(f'{error.source}: {problem}', file=sys.stderr)
        return _finish(DriftReport(error=f'contract {args.contract} unusable', finished=time.time()), args)
    try:
        servers = _servers(args, list(contract.blocklists.nameservers))
    except ValueError as error:
        print(f'dns-drift: {error}', file=sys.stderr)
        return EXIT_USAGE
    try:
        report = check_drift(contract.dns_expectations, servers, timeout=args.timeout, window=args.concurrency)
    except OSError as error:
        report = DriftReport(servers=[str(s) for s in servers], error=str(error), finished=time.time())
    return _finish(report, args)
