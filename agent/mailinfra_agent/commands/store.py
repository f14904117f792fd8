"""``mailinfra-agent store migrate|status|backup``: bring the host's store to this agent's schema, show where it
is, or take a consistent copy of a SQLite store (for playbooks/feedback-collect.yml).

Exit 0: done (status: up to date); 1: status found pending migrations (all of them where the SQLite file does not
exist yet, which status does not create); 2: the contract or store cannot be used
(backup: no SQLite store on this host, or a PostgreSQL one, which the controller reads directly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..contract import DEFAULT_CONTRACT_PATH, Store
from ..store import NoStore, Status, StoreError, connect, migrate, migrations, status
from ..store.backup import backup_sqlite
from ._contract import load_or_report

NAME = 'store'
HELP = "Apply the store's schema migrations, report its schema version, or copy a SQLite store."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the contract that names the store'
    )
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    actions.add_parser('migrate', help='apply pending migrations (safe to repeat)')
    actions.add_parser('status', help='show the schema version and pending migrations; exit 1 if any are pending')
    backup = actions.add_parser('backup', help='copy the SQLite store consistently (while it is written) to OUTPUT')
    backup.add_argument('output', metavar='OUTPUT', help='the copy: a new 0600 file, replaced whole if it exists')


def run(args: argparse.Namespace) -> int:
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    if args.action == 'backup':
        return _backup(contract.store, Path(args.output))
    try:
        # status only reads: it never makes a file into a store
        with connect(contract.store, read_only=args.action == 'status') as db:
            if args.action == 'migrate':
                applied = migrate(db)
                for migration in applied:
                    print(f'applied {migration.version:04d} {migration.name}')
                state = status(db)
                print(f'store at schema version {state.current} ({db.dialect})')
                return 0
            state = status(db)
    except NoStore as error:
        if args.action != 'status' or not _missing_sqlite(contract.store):
            print(f'store: {error}', file=sys.stderr)
            return 2
        # no store yet (a new host): everything pending, as the roles expect before their first migrate
        known = migrations('sqlite')
        state = Status(current=0, latest=known[-1].version if known else 0, pending=known)
    except StoreError as error:
        print(f'store: {error}', file=sys.stderr)
        return 2
    print(f'store at schema version {state.current} of {state.latest} ({contract.store.backend})')
    for migration in state.pending:
        print(f'pending {migration.version:04d} {migration.name}')
    return 1 if state.pending else 0


def _missing_sqlite(store: Store) -> bool:
    return store.backend == 'sqlite' and store.path is not None and not Path(store.path).exists()


def _backup(store: Store, output: Path) -> int:
    if store.backend != 'sqlite' or store.path is None:
        print(
            'store: this host writes the shared PostgreSQL store: nothing to copy, the controller reads it with --dsn',
            file=sys.stderr,
        )
        return 2
    if output.is_dir():
        print(f'store: {output} is a directory: give the path of the copy', file=sys.stderr)
        return 2
    try:
        copy = backup_sqlite(Path(store.path), output)
    except StoreError as error:
        print(f'store: {error}', file=sys.stderr)
        return 2
    except OSError as error:
        print(f'store: cannot write {output}: {error.strerror or error}', file=sys.stderr)
        return 2
    events = 'no feedback_events table' if copy.events is None else f'{copy.events} feedback events'
    print(f'copied {store.path} to {copy.path}: schema version {copy.schema_version}, {events}')
    return 0
