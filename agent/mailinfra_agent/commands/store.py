"""``mailinfra-agent store migrate|status``: bring the host's store to this agent's schema, or show where it is.

Exit 0: done (status: up to date); 1: status found pending migrations; 2: the contract or store cannot be used.
"""

from __future__ import annotations

import argparse
import sys

from ..contract import DEFAULT_CONTRACT_PATH
from ..store import StoreError, connect, migrate, status
from ._contract import load_or_report

NAME = 'store'
HELP = "Apply the store's schema migrations, or report its schema version."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the contract that names the store'
    )
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    actions.add_parser('migrate', help='apply pending migrations (safe to repeat)')
    actions.add_parser('status', help='show the schema version and pending migrations; exit 1 if any are pending')


def run(args: argparse.Namespace) -> int:
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    try:
        with connect(contract.store) as db:
            if args.action == 'migrate':
                applied = migrate(db)
                for migration in applied:
                    print(f'applied {migration.version:04d} {migration.name}')
                state = status(db)
                print(f'store at schema version {state.current} ({db.dialect})')
                return 0
            state = status(db)
    except StoreError as error:
        print(f'store: {error}', file=sys.stderr)
        return 2
    print(f'store at schema version {state.current} of {state.latest} ({contract.store.backend})')
    for migration in state.pending:
        print(f'pending {migration.version:04d} {migration.name}')
    return 1 if state.pending else 0
