"""``mailinfra-agent shaping run|status|release``: ISP back-off, suspensions and warm-up caps for Postfix.

``run`` follows each Postfix stream instance's log (``--follow``, the default, or ``--once``), applies the
contract's back-off rules and warm-up caps, and converges the instances (docs/shaping.md). ``status`` shows
what is slowed or suspended, why and until when. ``release STREAM IP [ISP]`` ends actions by hand (logged,
counted) and converges the stream at once. Exit 0: done; 1: ``release`` found nothing to end; 2: the contract,
store or MTA cannot be used (``run``: a stream's instance was left unconverged); 64: bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from ..contract import DEFAULT_CONTRACT_PATH, Contract
from ..ingest.service import Stop
from ..shaping import state
from ..shaping.actions import Actuator, ActuatorError
from ..shaping.engine import Engine, log_change
from ..shaping.service import POLL, RESYNC, Service
from ..shaping.warmup import WarmupError
from ..store import Database, StoreError, connect
from ._contract import load_or_report

NAME = 'shaping'
HELP = 'ISP back-off, suspensions and warm-up caps for the Postfix stream instances (the shaping service).'

log = logging.getLogger('mailinfra_agent.shaping')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the contract')
    parser.add_argument(
        '--config-root', metavar='DIR', default='/etc', help='where the Postfix instances live (DIR/postfix-<stream>)'
    )
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    run_parser = actions.add_parser('run', help='follow the stream logs and shape (the service)')
    mode = run_parser.add_mutually_exclusive_group()
    mode.add_argument('--once', action='store_true', help='read what is there, act, converge, then exit')
    mode.add_argument('--follow', action='store_true', help='keep following the logs (the default)')
    run_parser.add_argument('--poll', type=float, default=POLL, metavar='SECONDS', help='pause when nothing is new')
    run_parser.add_argument(
        '--resync', type=float, default=RESYNC, metavar='SECONDS', help='converge again this often even without change'
    )
    status = actions.add_parser('status', help='what is slowed or suspended, why, until when')
    status.add_argument('--format', choices=('text', 'json'), default='text')
    release = actions.add_parser('release', help='end the actions of a sending IP (x ISP) of a stream by hand')
    release.add_argument('stream', metavar='STREAM')
    release.add_argument('ip', metavar='IP')
    release.add_argument('isp', metavar='ISP', nargs='?', help='only this ISP (default: every action of the IP)')
    release.add_argument('--no-converge', action='store_true', help='only change the store; the service converges')


def make_actuator(contract: Contract, config_root: str) -> Actuator:
    """The host's actuator: Postfix's (``postfix_actuator``); PowerMTA shapes natively (no actuator)."""
    from ..shaping.postfix_actuator import PostfixActuator

    return PostfixActuator(contract, config_directory=lambda stream: os.path.join(config_root, stream.instance))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='mailinfra-agent shaping: %(message)s')
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    if contract.host.mta != 'postfix':
        print('shaping: this host runs no Postfix (PowerMTA shapes with its own back-off mode)', file=sys.stderr)
        return 2
    try:
        engine = Engine(contract)
    except ValueError as error:  # an invalid rule pattern, a bad warm-up section
        print(f'shaping: {error}', file=sys.stderr)
        return 2
    if args.action == 'status':
        return _status(contract, args.format)
    if args.action == 'release':
        return _release(contract, engine, args)
    return _run(contract, engine, args)


def _run(contract: Contract, engine: Engine, args: argparse.Namespace) -> int:
    if args.poll <= 0 or args.resync <= 0:
        print('shaping: --poll and --resync must be positive', file=sys.stderr)
        return 64
    try:
        actuator = make_actuator(contract, args.config_root)
    except (ActuatorError, ImportError) as error:
        print(f'shaping: cannot drive Postfix: {error}', file=sys.stderr)
        return 2
    service = Service(contract, lambda: connect(contract.store), actuator, engine=engine, resync=args.resync)
    if not service.sources:
        log.warning('the contract names no Postfix stream log; only expiries and warm-up caps are applied')
    stop = Stop()
    stop.install()
    try:
        report = service.run(follow=not args.once, poll=args.poll, stop=stop)
    except StoreError as error:
        print(f'shaping: {error}', file=sys.stderr)
        return 2
    except WarmupError as error:
        print(f'shaping: warm-up: {error}', file=sys.stderr)
        return 2
    finally:
        service.close()
    print(
        f'shaping: read {report.lines} lines, {len(report.changes)} changes, '
        f'{len(report.converged)} MTA changes, {report.problems} problems'
    )
    if report.unconverged:
        print(f'shaping: Postfix not converged: {", ".join(sorted(report.unconverged))}', file=sys.stderr)
        return 2
    return 0


def _existing_store(contract: Contract, *, read_only: bool) -> Database | None:
    """The store when it has the shaping tables; None otherwise (status and release never create it)."""
    store = contract.store
    if store.backend == 'sqlite' and store.path is not None and not Path(store.path).is_file():
        if not Path(store.path).parent.is_dir():
            raise StoreError(f'sqlite: the directory of {store.path} does not exist')
        return None
    db = connect(store, read_only=read_only, create=False)
    if not state.has_tables(db):
        db.close()
        return None
    return db


def _rows(contract: Contract, now: float) -> list[dict[str, Any]]:
    db = _existing_store(contract, read_only=True)
    if db is None:
        return []
    with db:
        items = state.active(db, contract.host.name)
    rows = []
    for item in items:
        action = item.action
        rows.append(
            {
                'stream': action.stream,
                'ip': action.ip,
                'isp': action.isp,
                'action': action.kind,
                'failover': action.failover,
                'since': _iso(item.since),
                'until': _iso(action.until),
                'remaining': max(0, round(action.until - now)),
                'active': action.until > now,
                'reason': action.reason,
            }
        )
    return rows


def _iso(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _status(contract: Contract, output: str) -> int:
    now = time.time()
    try:
        rows = _rows(contract, now)
    except StoreError as error:
        print(f'shaping: {error}', file=sys.stderr)
        return 2
    if output == 'json':
        print(json.dumps({'host': contract.host.name, 'actions': rows}, indent=2, sort_keys=True))
        return 0
    if not rows:
        print('shaping: nothing is slowed or suspended')
        return 0
    heads = ('STREAM', 'IP', 'ISP', 'ACTION', 'UNTIL', 'LEFT', 'REASON')
    table = [
        (
            row['stream'],
            row['ip'],
            row['isp'] or '(all)',
            row['action'] + (' +failover' if row['failover'] else ''),
            row['until'],
            f'{row["remaining"]}s' if row['active'] else 'ending',
            row['reason'],
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(heads, *table, strict=True)]
    for line in (heads, *table):
        cells = [str(cell).ljust(width) for cell, width in zip(line[:-1], widths, strict=False)]
        print('  '.join([*cells, str(line[-1])]))
    return 0


def _release(contract: Contract, engine: Engine, args: argparse.Namespace) -> int:
    stream = next((item for item in contract.streams if item.name == args.stream), None)
    if stream is None:
        names = ', '.join(item.name for item in contract.streams) or 'none'
        print(f'shaping: no stream {args.stream!r} on this host (streams: {names})', file=sys.stderr)
        return 64
    now = time.time()
    try:
        db = _existing_store(contract, read_only=False)
        if db is None:
            print('shaping: no shaping state in the store (the service has not run here)', file=sys.stderr)
            return 1
        with db:
            with db.transaction():
                changes = engine.release(db, args.stream, args.ip, args.isp, now)
            for change in changes:
                log_change(change)
            if not changes:
                what = f'{args.stream} {args.ip}' + (f' {args.isp}' if args.isp else '')
                print(f'shaping: no active action on {what}', file=sys.stderr)
                return 1
            if args.no_converge:
                return 0
            desired = engine.desired(db, now)[args.stream]
    except StoreError as error:
        print(f'shaping: {error}', file=sys.stderr)
        return 2
    except WarmupError as error:
        print(f'shaping: warm-up: {error}', file=sys.stderr)
        return 2
    try:
        made = make_actuator(contract, args.config_root).converge(stream, desired)
    except (ActuatorError, ImportError) as error:
        print(f'shaping: released in the store, but Postfix was not changed: {error}', file=sys.stderr)
        return 2
    for item in made:
        log.info('stream=%s changed: %s', args.stream, item)
    return 0
