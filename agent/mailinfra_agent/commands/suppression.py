"""``mailinfra-agent suppression ACTION``: the host's suppression list (issue 13).

- ``apply [--since SECONDS]``: apply the stored feedback events of the last SECONDS (default: the soft-bounce
  window) to the list (idempotent), then write the Postfix maps and post due webhooks;
- ``list [--stream S]``, ``export --format csv|json [--output FILE]``, ``query ADDRESS [--stream S]``;
- ``import FILE.csv [--scope S]``: a previous provider's list, with a report per line;
- ``add ADDRESS [--scope S]`` / ``remove ADDRESS [--scope S]``: a manual suppression, or lift one;
- ``write-maps``: rebuild each Postfix stream instance's access map when its content changed;
- ``webhook``: post the due webhook outbox rows;
- ``policy-server --listen unix:/path|inet:host:port``: the Postfix policy service that also enforces hash-only
  suppressions (:mod:`mailinfra_agent.suppression.policy_service`); runs until stopped.
- ``gate --upstream HOST:PORT --stream NAME=PORT@SOURCE ... --allow NAME=CIDR ...``: the SMTP gate in front of
  PowerMTA (:mod:`mailinfra_agent.suppression.gate`): each stream's public port, relayed from its loopback SOURCE
  address, open to the stream's --allow networks only (``554 5.7.1`` for other clients); ``--max-sessions``,
  ``--max-sessions-per-client``, ``--max-session-seconds``; runs until stopped.

query, add and remove read ADDRESS as the services read a recipient (``canonical_address``: ``gone@Bücher.de`` is
``gone@xn--bcher-kva.de``); query and remove also find a row under its IDNA 2003 form (``legacy_address``), which
remove reports but leaves (``fass.de`` is another domain than ``faß.de`` under IDNA 2008).

Exit 0: done (query: not suppressed); 1: query found a suppression, import skipped lines, remove left the
address suppressed under its IDNA 2003 form, a webhook or map failed; 2: the contract, the store, a key or the
file cannot be used; 64: bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import socket
import sys
import time
from pathlib import Path

from ..contract import DEFAULT_CONTRACT_PATH, Contract, SecretFileError, read_secret_file
from ..store import Database, StoreError, connect
from ..suppression import (
    ALL_STREAMS,
    MapError,
    SuppressionList,
    Suppressor,
    address_problem,
    canonical_address,
    export_csv,
    export_json,
    import_csv,
    legacy_address,
    stored_events,
    write_map,
)
from ..suppression import webhook as hooks
from ..suppression.gate import (
    MAX_SESSION_SECONDS,
    MAX_SESSIONS,
    MAX_SESSIONS_PER_CLIENT,
    Gate,
    StreamGate,
)
from ..suppression.policy_service import serve
from ..suppression.retention import apply_retention
from ._contract import load_or_report

NAME = 'suppression'
HELP = 'Apply feedback to the suppression list, query, export or import it, and write the Postfix maps.'

EXIT_USAGE = 64
READ_ONLY = frozenset({'list', 'export', 'query'})
"""Actions that open the store read-only: they never create, migrate or change it."""
DEFAULT_POLICY_LISTEN = 'unix:/run/mailinfra/suppression.sock'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the host contract')
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    apply = actions.add_parser('apply', help='apply stored feedback events, write the maps, post webhooks')
    apply.add_argument('--since', type=int, metavar='SECONDS', help='events of the last SECONDS (default: window)')
    apply.add_argument('--postfix-config', metavar='DIR', help='configuration directory for postmap -c')
    listing = actions.add_parser('list', help='list the suppressions')
    listing.add_argument('--stream', help='only this scope (a stream name or "*")')
    export = actions.add_parser('export', help='export the list as CSV or JSON')
    export.add_argument('--format', choices=('csv', 'json'), required=True)
    export.add_argument('--output', metavar='FILE', help='write here instead of standard output')
    query = actions.add_parser('query', help='is ADDRESS suppressed? (exit 1 if it is, in any stream asked)')
    query.add_argument('address')
    query.add_argument('--stream', help='only this stream (default: every stream of the contract)')
    imported = actions.add_parser('import', help="import a previous provider's CSV list")
    imported.add_argument('file', metavar='FILE.csv')
    imported.add_argument('--scope', default=ALL_STREAMS, help='scope of lines without one (default "*")')
    for name, text in (('add', 'suppress ADDRESS by hand'), ('remove', 'lift the suppression of ADDRESS')):
        manual = actions.add_parser(name, help=text)
        manual.add_argument('address')
        manual.add_argument('--scope', default=ALL_STREAMS, help='a stream name or "*" (default)')
    maps = actions.add_parser('write-maps', help='rebuild the Postfix access maps that changed')
    maps.add_argument('--postfix-config', metavar='DIR', help='configuration directory for postmap -c')
    actions.add_parser('webhook', help='post the due webhook outbox rows')
    server = actions.add_parser('policy-server', help='serve the Postfix policy service until stopped')
    server.add_argument('--listen', default=DEFAULT_POLICY_LISTEN, help=f'default {DEFAULT_POLICY_LISTEN}')
    gate = actions.add_parser('gate', help='serve the SMTP gate in front of PowerMTA until stopped')
    gate.add_argument('--upstream', required=True, metavar='HOST:PORT', help="the MTA's loopback listener")
    gate.add_argument(
        '--stream',
        action='append',
        required=True,
        metavar='NAME=PORT@SOURCE',
        help="a stream's public port and the loopback address its sessions are relayed from (repeat per stream)",
    )
    gate.add_argument(
        '--allow',
        action='append',
        default=[],
        metavar='NAME=CIDR',
        help="a client network allowed on a stream's port (repeat; a stream without one accepts no client)",
    )
    gate.add_argument(
        '--max-sessions', type=int, default=MAX_SESSIONS, help=f'concurrent sessions (default {MAX_SESSIONS})'
    )
    gate.add_argument(
        '--max-sessions-per-client',
        type=int,
        default=MAX_SESSIONS_PER_CLIENT,
        help=f'concurrent sessions of one client address (default {MAX_SESSIONS_PER_CLIENT})',
    )
    gate.add_argument(
        '--max-session-seconds',
        type=float,
        default=MAX_SESSION_SECONDS,
        help=f'longest session (default {MAX_SESSION_SECONDS:g})',
    )
    gate.add_argument('--listen-address', default='0.0.0.0', help='address of the public ports (default 0.0.0.0)')
    gate.add_argument('--hostname', default=None, help='name in the greeting and EHLO (default: the host name)')


def _error(message: str) -> int:
    print(f'suppression: {message}', file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    if contract.retention.hash_key_file is None:
        return _error('the contract names no address hash key (retention.hash_key_file)')
    try:
        key = read_secret_file(contract.retention.hash_key_file).encode('utf-8')
    except SecretFileError as error:
        return _error(str(error))
    if args.action == 'policy-server':
        return _policy_server(args.listen, contract, key)
    if args.action == 'gate':
        return _gate(args, contract, key)
    reading = args.action in READ_ONLY
    try:
        with connect(contract.store, read_only=reading) as db:
            suppressions = SuppressionList(
                db,
                key,
                keep_address=contract.retention.suppressions == 'address',
                webhook=contract.webhook.url is not None,
            )
            if not suppressions.keep_address and not reading:
                suppressions.drop_addresses()
            return _run(args, contract, db, suppressions)
    except StoreError as error:
        return _error(f'store: {error}')


def _run(args: argparse.Namespace, contract: Contract, db: Database, suppressions: SuppressionList) -> int:
    now = time.time()
    action: str = args.action
    if action == 'apply':
        return _apply(args, contract, db, suppressions, now)
    if action in ('list', 'export'):
        return _export(args, suppressions)
    if action == 'query':
        return _query(args, contract, suppressions, now)
    if action == 'import':
        return _import(args, contract, suppressions, now)
    if action in ('add', 'remove'):
        return _manual(args, contract, db, suppressions, now)
    if action == 'write-maps':
        return _write_maps(contract, suppressions, now, args.postfix_config)
    return _webhooks(contract, db, now)


def _apply(
    args: argparse.Namespace, contract: Contract, db: Database, suppressions: SuppressionList, now: float
) -> int:
    since = args.since if args.since is not None else contract.suppression.soft_bounce_window
    result = Suppressor.from_contract(contract, suppressions).apply_all(stored_events(db, now - since))
    for entry in result.added:
        print(f'suppressed {entry.address or entry.address_hash} in {entry.scope}: {entry.reason}')
    ignored = ', '.join(f'{why} {count}' for why, count in sorted(result.ignored.items()))
    print(f'{result.events} events, {len(result.added)} new suppressions; unchanged: {ignored or "none"}')
    retention = apply_retention(
        db,
        now=now,
        keep=contract.retention.events,
        after=contract.retention.after,
        hash_address=suppressions.hash,
        soft_bounce_window=contract.suppression.soft_bounce_window,
    )
    if retention.events or retention.messages or retention.webhooks or retention.soft_bounces:
        action = 'hashed' if contract.retention.after == 'hash' else 'erased'
        more = '' if retention.complete else ' (more next run)'
        print(
            f'retention: {action} the addresses of {retention.events} events, '
            f'deleted {retention.messages} message records, {retention.webhooks} webhook outbox rows and '
            f'{retention.soft_bounces} soft-bounce rows outside the window{more}'
        )
    status = _write_maps(contract, suppressions, now, args.postfix_config)
    return max(status, _webhooks(contract, db, now))


def _export(args: argparse.Namespace, suppressions: SuppressionList) -> int:
    entries = suppressions.entries(getattr(args, 'stream', None))
    if args.action == 'list':
        for entry in entries:
            print(f'{entry.scope}\t{entry.address or entry.address_hash}\t{entry.reason}\t{entry.source}')
        return 0
    text = export_csv(entries) if args.format == 'csv' else export_json(entries)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        Path(args.output).write_text(text, encoding='utf-8')
    except OSError as error:
        return _error(f'{args.output}: {error.strerror or error}')
    return 0


def _query(args: argparse.Namespace, contract: Contract, suppressions: SuppressionList, now: float) -> int:
    # The form the services look a recipient up in (gone@Bücher.de -> gone@xn--bcher-kva.de); lookup tries its
    # IDNA 2003 form too.
    address = canonical_address(args.address)
    problem = address_problem(address)
    if problem is not None:
        print(f'suppression: "{args.address}": {problem}', file=sys.stderr)
        return EXIT_USAGE
    found = False
    for stream in [args.stream] if args.stream else [stream.name for stream in contract.streams]:
        entry = suppressions.lookup(address, stream, now)
        found = found or entry is not None
        what = f'suppressed ({entry.reason}, scope {entry.scope}, {entry.source})' if entry else 'not suppressed'
        if entry is not None and entry.address_hash != suppressions.hash(address):
            what += f' under its IDNA 2003 form {legacy_address(address)}'
        print(f'{address} {stream}: {what}')
    return 1 if found else 0


def _import(args: argparse.Namespace, contract: Contract, suppressions: SuppressionList, now: float) -> int:
    try:
        text = Path(args.file).read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as error:
        return _error(f'{args.file}: cannot read: {getattr(error, "strerror", None) or error}')
    streams = [stream.name for stream in contract.streams]
    report = import_csv(suppressions, text, args.file, streams=streams, scope=args.scope, now=now)
    sys.stdout.write(report.text(args.file))
    if report.problem is not None:
        return 2
    status = _write_maps(contract, suppressions, now, None) if report.taken else 0
    return max(status, 1 if report.skipped else 0)


def _manual(
    args: argparse.Namespace, contract: Contract, db: Database, suppressions: SuppressionList, now: float
) -> int:
    if args.scope != ALL_STREAMS and args.scope not in [stream.name for stream in contract.streams]:
        print(f'suppression: unknown stream "{args.scope}"', file=sys.stderr)
        return EXIT_USAGE
    status = 0
    if args.action == 'add':
        try:
            added = suppressions.add(args.scope, args.address, 'manual', 'manual', created=now)
        except ValueError as error:
            print(f'suppression: {error}', file=sys.stderr)
            return EXIT_USAGE
        print('suppressed' if added else 'already suppressed')
    else:
        print('lifted' if suppressions.remove(args.scope, args.address) else 'was not suppressed')
        legacy = legacy_address(args.address)
        if legacy is not None and suppressions.entries(args.scope, address=legacy):
            # Not lifted with it: the row may be that other domain's own (fass.de is not faß.de in IDNA 2008).
            print(
                f'suppression: still suppressed in {args.scope} under its IDNA 2003 form {legacy} (a row written '
                f'before UTS 46, or that domain\'s own); "remove {legacy}" lifts it',
                file=sys.stderr,
            )
            status = 1
    return max(status, _write_maps(contract, suppressions, now, None), _webhooks(contract, db, now))


def _write_maps(contract: Contract, suppressions: SuppressionList, now: float, config: str | None) -> int:
    status = 0
    entries = suppressions.entries()
    for stream in contract.streams:
        if stream.suppression_map is None:
            continue
        try:
            result = write_map(stream.suppression_map, entries, stream.name, now=now, postmap_config=config)
        except MapError as error:
            print(f'suppression: {error}', file=sys.stderr)
            status = 1
            continue
        state = 'written' if result.changed else 'unchanged'
        print(f'{result.path}: {state}, {result.entries} recipients')
        if result.hash_only:
            print(f'{result.path}: {result.hash_only} hash-only suppressions are not enforced by the map')
    return status


def _webhooks(contract: Contract, db: Database, now: float) -> int:
    hook = contract.webhook
    if hook.url is None:
        return 0
    if hook.secret_file is None:
        print('suppression: the webhook has a URL but no secret_file; nothing posted', file=sys.stderr)
        return 1
    try:
        secret = read_secret_file(hook.secret_file).encode('utf-8')
    except SecretFileError as error:
        print(f'suppression: {error}', file=sys.stderr)
        return 1
    result = hooks.deliver(db, hook.url, secret, retries=hook.retries, timeout=hook.timeout, now=now)
    for line in result.errors:
        print(f'suppression: {line}', file=sys.stderr)
    waiting, failed = hooks.pending(db)
    print(f'webhook: {result.delivered} delivered, {waiting} waiting, {failed} given up')
    return 1 if result.errors else 0


def _policy_server(listen: str, contract: Contract, key: bytes) -> int:
    try:
        server = serve(listen, lambda: connect(contract.store, read_only=True), key)
    except (OSError, ValueError) as error:
        return _error(f'policy service on {listen}: {error}')
    print(f'suppression policy service on {listen}', flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


_GATE_STREAM = re.compile(r'^([a-z0-9][a-z0-9_-]*)=(\d{1,5})@(127\.\d{1,3}\.\d{1,3}\.\d{1,3})$')


def _usage(message: str) -> int:
    print(f'suppression: {message}', file=sys.stderr)
    return EXIT_USAGE


def _gate(args: argparse.Namespace, contract: Contract, key: bytes) -> int:
    host, _, port = str(args.upstream).rpartition(':')
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        return _usage(f'gate --upstream "{args.upstream}": expected HOST:PORT, for example 127.0.0.1:10025')
    known = {stream.name for stream in contract.streams}
    allowed: dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]] = {}
    for value in args.allow:
        name, _, cidr = str(value).partition('=')
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            return _usage(f'gate --allow "{value}": expected NAME=CIDR, for example marketing=10.0.0.0/24')
        allowed.setdefault(name, []).append(network)
    streams = []
    for value in args.stream:
        match = _GATE_STREAM.match(value)
        if match is None or not 0 < int(match.group(2)) < 65536:
            return _usage(
                f'gate --stream "{value}": expected NAME=PORT@127.0.0.N, for example marketing=2525@127.0.0.2'
            )
        if match.group(1) not in known:
            return _usage(
                f'gate --stream "{value}": stream {match.group(1)} is not in the contract ({", ".join(sorted(known))})'
            )
        networks = tuple(allowed.pop(match.group(1), []))
        streams.append(StreamGate(match.group(1), int(match.group(2)), match.group(3), networks))
    if allowed:
        return _usage(f'gate --allow: no --stream {", ".join(sorted(allowed))}')
    if min(args.max_sessions, args.max_sessions_per_client) < 1 or not args.max_session_seconds > 0:
        return _usage('gate: --max-sessions, --max-sessions-per-client and --max-session-seconds must be positive')
    gate = Gate(
        streams,
        (host, int(port)),
        lambda: connect(contract.store, read_only=True),
        key,
        hostname=args.hostname or socket.getfqdn(),
        listen_address=args.listen_address,
        max_sessions=args.max_sessions,
        max_sessions_per_client=args.max_sessions_per_client,
        max_session_seconds=args.max_session_seconds,
    )
    try:
        asyncio.run(_serve_gate(gate))
    except OSError as error:
        return _error(f'gate: {error}')
    except KeyboardInterrupt:
        pass
    return 0


async def _serve_gate(gate: Gate) -> None:
    await gate.start()
    ports = ', '.join(
        f'{stream.name} {stream.port} from {stream.source} for {" ".join(map(str, stream.networks)) or "nobody"}'
        for stream in gate.streams
    )
    print(f'suppression gate to {gate.upstream[0]}:{gate.upstream[1]}: {ports}', flush=True)
    await gate.serve_forever()
