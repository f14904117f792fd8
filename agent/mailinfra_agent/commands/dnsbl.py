"""``mailinfra-agent dnsbl check``: check the contract's subjects against its blocklist zones.

Runs on the monitoring host from a timer: subjects, zones, nameservers and the textfile path come from the
contract; ``--ip``/``--domain`` check ad-hoc subjects instead (no history, no textfile unless ``--textfile``).
Keeps the listing history in the store (first seen, last seen, cleared) and writes the node_exporter
textfile atomically. Exit 0 clean, 1 listed, 2 could not check (some zone not working, an error answer,
no usable resolver, a bad contract).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from ..contract import (
    DEFAULT_CONTRACT_PATH,
    SecretFileError,
    read_secret_file,
)
from ..contract.blocklists import zone_from_contract
from ..dnsbl import Report, Subject, SubjectError, check, closest_first, load_catalogue, redact, zone_key
from ..dnsbl.catalogue import CatalogueError
from ..dnsbl.check import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_TIMEOUT
from ..dnsbl.metrics import KeptListing, MetricsError, write_textfile
from ..dnsbl.query import subjects_from
from ..store import StoreError, connect
from ..store.listings import observe, open_listings
from ._contract import load_or_report

NAME = 'dnsbl'
HELP = 'Check sending IPs and domains against DNS blocklists (DNSBL/URIBL), keep their history, write metrics.'
DQS_KEY_ENV = 'MAILINFRA_DQS_KEY'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    run = actions.add_parser(
        'check', help='check every subject in every zone (exit 0 clean, 1 listed, 2 could not check)'
    )
    run.add_argument('--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the contract to read')
    run.add_argument('--format', choices=('text', 'json'), default='text', help='output format (default: text)')
    run.add_argument('--ip', action='append', default=[], metavar='ADDRESS', help='check this IP instead (repeatable)')
    run.add_argument(
        '--domain', action='append', default=[], metavar='NAME', help='check this domain instead (repeatable)'
    )
    run.add_argument(
        '--nameserver',
        action='append',
        default=[],
        metavar='ADDR[:PORT]',
        help="resolver to use instead of the contract's",
    )
    run.add_argument(
        '--zone',
        action='append',
        default=[],
        metavar='ZONE',
        help="check only this of the contract's zones (repeatable; any letter case, a trailing dot allowed)",
    )
    run.add_argument(
        '--textfile', metavar='PATH', help="metrics textfile (default: the contract's, for contract subjects)"
    )
    run.add_argument('--no-textfile', action='store_true', help='write no metrics')
    run.add_argument('--no-history', action='store_true', help='do not read or write the listing history')
    run.add_argument(
        '--timeout', type=float, default=DEFAULT_TIMEOUT, help='seconds per attempt (default: %(default)s)'
    )
    run.add_argument(
        '--retries', type=int, default=DEFAULT_RETRIES, help='retries after a timeout (default: %(default)s)'
    )
    run.add_argument(
        '--concurrency', type=int, default=DEFAULT_CONCURRENCY, help='queries in flight (default: %(default)s)'
    )


def dqs_key(key_file: str | None, problems: list[str]) -> str | None:
    """The DQS key from MAILINFRA_DQS_KEY, else from the contract's 0600 file; problems are reported."""
    value = os.environ.get(DQS_KEY_ENV, '').strip()
    if value:
        return value
    if key_file is None:
        return None
    try:
        return read_secret_file(key_file)
    except SecretFileError as error:
        problems.append(f'DQS key: {error}; Spamhaus DQS-only zones are not queried')
        return None


def run(args: argparse.Namespace) -> int:
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    blocklists = contract.blocklists
    problems: list[str] = []
    known = {zone_key(entry.zone): entry for entry in blocklists.zones}
    for name in args.zone:
        if zone_key(name) not in known:
            names = ', '.join(closest_first(name, (entry.zone for entry in blocklists.zones))) or 'none'
            print(f'dnsbl: --zone {name}: not a zone of the contract; its zones: {names}', file=sys.stderr)
            return 64
    selected = [known[key] for key in dict.fromkeys(zone_key(name) for name in args.zone)] or list(blocklists.zones)
    try:
        load_catalogue()  # the shipped data must load; a broken install says so here
        zones = [zone_from_contract(entry) for entry in selected]
    except (CatalogueError, ValueError) as error:
        print(f'dnsbl: {error}', file=sys.stderr)
        return 2
    ad_hoc = bool(args.ip or args.domain)
    ips, domains = (args.ip, args.domain) if ad_hoc else (blocklists.subjects.ips, blocklists.subjects.domains)
    try:
        subjects = subjects_from(ips, domains, None if ad_hoc else problems)
    except SubjectError as error:
        print(f'dnsbl: {error}', file=sys.stderr)
        return 64
    key = dqs_key(blocklists.dqs_key_file, problems)
    nameservers = args.nameserver or list(blocklists.nameservers)
    textfile = None if args.no_textfile else args.textfile or (None if ad_hoc else blocklists.textfile)
    try:
        report = check(
            subjects,
            zones,
            nameservers,
            concurrency=args.concurrency,
            timeout=args.timeout,
            retries=args.retries,
            rate_limit=blocklists.rate_limit,
            dqs_key=key,
        ) if subjects and zones else Report((), (), started=time.time(), subjects=tuple(subjects))  # fmt: skip
    except ValueError as error:
        print(f'dnsbl: {error}', file=sys.stderr)
        if textfile:
            _write_metrics(None, textfile, {}, problems)
        return 2
    kept: dict[tuple[str, str], KeptListing] = {}
    if not ad_hoc and not args.no_history:
        kept = _history(contract, report, problems)
    since = {pair: listing.first_seen for pair, listing in kept.items()}
    if textfile:
        _write_metrics(report, textfile, since, problems, kept)
    warnings = [*report.warnings, *problems]
    if args.format == 'json':
        data = report.to_dict()
        data['warnings'] = warnings
        data['listed_since'] = [
            {'subject': subject, 'zone': zone, 'first_seen': first} for (subject, zone), first in sorted(since.items())
        ]
        print(redact(json.dumps(data, indent=2, sort_keys=True), key))
    else:
        print(redact(render_text(report, since, subjects), key))
        for warning in warnings:
            print(redact(warning, key), file=sys.stderr)
    if problems and report.exit_code == 0:
        return 2
    return report.exit_code


def _history(contract: Any, report: Report, problems: list[str]) -> dict[tuple[str, str], KeptListing]:
    """Record the run's answers (an unanswered pair changes nothing) and return the open listings."""
    now = int(time.time())
    try:
        with connect(contract.store) as db:
            for result in report.results:
                if result.status == 'listed':
                    observe(db, result.subject, result.zone, [c.code for c in result.listings], now)
                elif result.status == 'clean':
                    observe(db, result.subject, result.zone, [], now)
            return {
                (row.subject, row.zone): KeptListing(tuple(row.codes.split(',')), row.first_seen, row.last_seen)
                for row in open_listings(db)
            }
    except StoreError as error:
        problems.append(f'history not kept: {error}')
        return {}


def _write_metrics(
    report: Report | None,
    path: str,
    since: dict[tuple[str, str], int],
    problems: list[str],
    kept: dict[tuple[str, str], KeptListing] | None = None,
) -> None:
    success = None if report is None else report.complete and not problems
    try:
        write_textfile(report, path, since, success=success, kept=kept)
    except MetricsError as error:
        problems.append(f'metrics not written: {error}')


def render_text(report: Report, since: dict[tuple[str, str], int], subjects: list[Subject]) -> str:
    """A table of listings (zone, meaning, delisting URL), then zone problems, then a summary line."""
    lines: list[str] = []
    if report.listed:
        lines.append('LISTED')
        for result in report.listed:
            first = since.get((result.subject, result.zone))
            when = f' since {time.strftime("%Y-%m-%d %H:%M", time.gmtime(first))} UTC' if first else ''
            meanings = '; '.join(f'{c.code} {c.meaning}' for c in result.listings)
            lines.append(f'  {result.subject:<40} {result.zone:<32} {result.severity:<8} {meanings}{when}')
            if result.delisting_url:
                lines.append(f'  {"":<40} delist: {result.delisting_url}')
    problems = [zone for zone in report.zones if not zone.working]
    if problems:
        lines.append('ZONE PROBLEMS')
        for zone in problems:
            lines.append(f'  {zone.zone:<32} {zone.message}')
    errors = [r for r in report.results if r.status == 'error']
    if errors:
        lines.append('ERROR ANSWERS')
        for result in errors:
            lines.append(f'  {result.subject:<40} {result.zone:<32} {"; ".join(c.meaning for c in result.errors)}')
    informational = [r for r in report.results if r.status in ('score', 'allowlisted')]
    if informational:
        lines.append('REPUTATION AND ALLOWLISTS (never listings)')
        for result in informational:
            value = f'score {result.score}' if result.score is not None else ', '.join(result.answers)
            lines.append(f'  {result.subject:<40} {result.zone:<32} {value} {result.message}'.rstrip())
    lines.append(
        f'{len(subjects)} subjects, {len(report.zones)} zones, {len(report.listed)} listings, '
        f'{len(problems)} zones not working, {report.duration:.2f}s'
    )
    return '\n'.join(lines)
