"""``mailinfra-agent contract check [PATH]``: is the host's contract one this agent understands?

Exit 0: valid (a summary on stdout); 1: invalid (every problem on stderr, one a line); 2: cannot be read.
"""

from __future__ import annotations

import argparse
import sys

from ..contract import DEFAULT_CONTRACT_PATH, Contract, ContractError, load_contract

NAME = 'contract'
HELP = 'Check the contract the controller rendered for this host (/etc/mailinfra/agent.json).'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    check = actions.add_parser('check', help='validate the contract and summarise it')
    check.add_argument('path', metavar='PATH', nargs='?', default=DEFAULT_CONTRACT_PATH, help='the contract file')


def summary(contract: Contract) -> list[str]:
    host = contract.host
    store = contract.store
    where = store.path if store.backend == 'sqlite' else store.dsn
    return [
        f'contract version {contract.version} for {host.name} ({host.fqdn}), roles {", ".join(host.roles)}'
        + (f', MTA {host.mta}' if host.mta else ''),
        'streams: '
        + (', '.join(f'{s.name} ({s.instance}, port {s.injection.port})' for s in contract.streams) or 'none'),
        f'sending IPs: {len(contract.ips)}; providers: {len(contract.isps)}',
        f'blocklist zones: {len(contract.blocklists.zones)}, every {contract.blocklists.interval}s',
        f'store: {store.backend} {where}',
    ]


def run(args: argparse.Namespace) -> int:
    try:
        contract = load_contract(args.path)
    except ContractError as error:
        for problem in error.problems:
            print(f'{error.source}: {problem}', file=sys.stderr)
        return 2 if error.unreadable else 1
    print(f'{args.path}: valid')
    for line in summary(contract):
        print(f'  {line}')
    return 0
