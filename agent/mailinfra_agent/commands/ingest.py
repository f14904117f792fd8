"""``mailinfra-agent ingest run|message``: read delivery logs and feedback messages into the store.

``run`` follows the log files the contract names (and ``--log``/``--acct``/``--maildir`` paths), with a
checkpoint per file, until stopped (``--follow``, the default) or until everything is read (``--once``).
Exit 0: done; 2: the contract or store cannot be used (the checkpoints stay before what was not stored), or with
``--once`` a ``--log``/``--acct``/``--maildir`` path does not exist.

``message`` is Postfix's pipe transport for the bounce and feedback-loop addresses: one message on standard
input. Exit 0: stored, or counted as unreadable (never bounced), or kept in ``--keep-dir`` and counted when the
parser itself fails; 75 (EX_TEMPFAIL): the store or contract is unusable now, or the message could not be kept, so
Postfix keeps the message and retries.

``return-path-policy DOMAIN=PREFIXSEPARATOR ...`` is the bounce MX's policy service at RCPT TO (spawn(8), one
connection on standard input and output): a return path of ours that does not verify gets 550 5.1.1, or 450 4.7.1
for a bad signature (:mod:`mailinfra_agent.ingest.return_paths`). It writes nothing but answers: a contract or key
it cannot use makes every answer DUNNO. Exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from collections.abc import Callable

from ..contract import DEFAULT_CONTRACT_PATH
from ..ingest import BATCH_LINES, PIPE_KEEP_DIRECTORY

# The service is imported by the actions that use it: return-path-policy, started per smtpd connection, needs only
# the contract and the VERP decoder.

NAME = 'ingest'
HELP = 'Read Postfix/PowerMTA logs and DSN/ARF messages into the store (the feedback ingest service).'

EX_TEMPFAIL = 75
MAX_STDIN = 64 * 1024 * 1024
"""Bytes read from the pipe at most; the message parser refuses far less (``oversized``)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the contract (store, logs, rules)'
    )
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    run_parser = actions.add_parser('run', help='follow the log files and Maildirs (the service)')
    mode = run_parser.add_mutually_exclusive_group()
    mode.add_argument('--once', action='store_true', help='read what is there, then exit')
    mode.add_argument('--follow', action='store_true', help='keep following the sources (the default)')
    run_parser.add_argument(
        '--log', metavar='PATH', action='append', default=[], help="a Postfix log file (besides the contract's)"
    )
    run_parser.add_argument(
        '--acct', metavar='PATH', action='append', default=[], help='a PowerMTA accounting CSV file'
    )
    run_parser.add_argument(
        '--maildir', metavar='PATH', action='append', default=[], help='a Maildir of DSNs and complaints'
    )
    run_parser.add_argument('--no-contract-logs', action='store_true', help='read only the paths given here')
    run_parser.add_argument('--batch-lines', type=int, default=BATCH_LINES, help='lines per transaction')
    run_parser.add_argument(
        '--store-wait',
        type=float,
        default=None,
        metavar='SECONDS',
        help='give up (exit 2) when the store stays unreachable this long (default: --once 300, --follow never)',
    )
    run_parser.add_argument('--poll', type=float, default=1.0, metavar='SECONDS', help='pause when nothing is new')
    message = actions.add_parser('message', help='store one DSN/complaint message from standard input (pipe)')
    message.add_argument('--envelope-recipient', metavar='ADDR', help="the pipe transport's ${recipient}")
    message.add_argument(
        '--store-wait', type=float, default=30.0, metavar='SECONDS', help='then exit 75 so Postfix retries'
    )
    message.add_argument(
        '--keep-dir',
        metavar='PATH',
        default=PIPE_KEEP_DIRECTORY,
        help=f'a Maildir for messages the parser fails on (default {PIPE_KEEP_DIRECTORY}; created 0700)',
    )
    policy = actions.add_parser(
        'return-path-policy', help="the bounce MX's policy service at RCPT TO (spawn(8): standard input and output)"
    )
    policy.add_argument(
        'return_paths',
        nargs='+',
        type=_return_path,
        metavar='DOMAIN=PREFIXSEPARATOR',
        help="a return-path domain and a stream's VERP prefix and separator (rp.example.com=b-)",
    )


def run(args: argparse.Namespace) -> int:
    if args.action == 'return-path-policy':
        return _return_path_policy(args)
    from ..ingest.keys import signing_keys
    from ..ingest.service import Inputs, Stop, StoreUnavailable, build_sources, contract_inputs, make_writer
    from ..ingest.service import run as run_sources
    from ..ingest.store import Backoff
    from ..store import StoreError
    from ._contract import load_or_report

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format='mailinfra-agent ingest: %(message)s')
    if args.action == 'message':
        return _message(args)
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    if args.batch_lines < 1:
        print('ingest: --batch-lines must be at least 1', file=sys.stderr)
        return 64
    if args.once:  # a mistyped path would read nothing and report success
        unusable = [_unusable(path, stat.S_ISREG, 'not a file') for path in (*args.log, *args.acct)]
        unusable += [_unusable(path, stat.S_ISDIR, 'not a directory') for path in args.maildir]
        if any(unusable):
            shown = '; '.join(problem for problem in unusable if problem)
            print(f'ingest: {shown} (--log and --acct name files, --maildir a directory)', file=sys.stderr)
            return 2
    listed = Inputs(()) if args.no_contract_logs else contract_inputs(contract)
    extra = tuple((path, 'postfix') for path in args.log) + tuple((path, 'powermta-acct') for path in args.acct)
    maildirs = tuple(dict.fromkeys(listed.maildirs + tuple(args.maildir)))
    inputs = Inputs(tuple(dict.fromkeys(listed.logs + extra)), maildirs)
    if not inputs.logs and not inputs.maildirs:
        print('ingest: nothing to read (the contract names no logs; give --log, --acct or --maildir)', file=sys.stderr)
        return 2
    try:
        keys = signing_keys(contract) if inputs.maildirs else ()
    except ValueError as error:
        print(f'ingest: the signing key: {error}', file=sys.stderr)
        return 2
    wait = args.store_wait if args.store_wait is not None else (300.0 if args.once else None)
    writer = make_writer(contract, Backoff(wait=wait), keys)
    stop = Stop()
    stop.install()
    try:
        sources = build_sources(contract, inputs, args.batch_lines, keys)
        run_sources(writer, sources, follow=not args.once, stop=stop)
    except (StoreUnavailable, StoreError) as error:
        print(f'ingest: {error}', file=sys.stderr)
        return 2
    finally:
        writer.close()
    print(f'ingest: stored {writer.stored_events} events, {writer.stored_problems} unreadable inputs counted')
    return 0


def _return_path(value: str) -> tuple[str, str, str]:
    from ..ingest.return_paths import parse_return_path

    try:
        return parse_return_path(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _return_path_policy(args: argparse.Namespace) -> int:
    from ..contract import ContractError, load_contract
    from ..ingest.keys import signing_keys
    from ..ingest.return_paths import serve_stream

    return_paths: dict[str, list[tuple[str, str]]] = {}
    for domain, prefix, separator in args.return_paths:
        return_paths.setdefault(domain, []).append((prefix, separator))
    try:
        keys = signing_keys(load_contract(args.contract))
    except (ContractError, ValueError):  # standard error is the client's socket: answer DUNNO to everything
        keys = ()
    serve_stream(sys.stdin.buffer, sys.stdout.buffer, return_paths, keys)
    return 0


def _message(args: argparse.Namespace) -> int:
    from ..ingest.keys import signing_keys
    from ..ingest.service import KeepError, Postponed, StoreUnavailable, ingest_message, make_writer, message_parser
    from ..ingest.store import Backoff
    from ..store import StoreError
    from ._contract import load_or_report

    try:
        contract = load_or_report(args.contract)
        if contract is None:
            return EX_TEMPFAIL
        try:
            keys = signing_keys(contract)
        except ValueError as error:
            print(f'ingest: the signing key: {error}; Postfix will retry', file=sys.stderr)
            return EX_TEMPFAIL
        data = sys.stdin.buffer.read(MAX_STDIN)
        parse, _ = message_parser(contract, keys)
        writer = make_writer(contract, Backoff(initial=0.5, maximum=5.0, wait=args.store_wait), keys)
        try:
            ingest_message(writer, data, parse, args.envelope_recipient, args.keep_dir)
        finally:
            writer.close()
    except Postponed as error:
        print(f'ingest: {error}; Postfix will retry', file=sys.stderr)
        return EX_TEMPFAIL
    except (StoreUnavailable, StoreError, KeepError) as error:
        print(f'ingest: {error}; Postfix will retry', file=sys.stderr)
        return EX_TEMPFAIL
    except Exception as error:  # a bug must defer the message, never bounce it
        print(f'ingest: internal error ({type(error).__name__}: {error}); Postfix will retry', file=sys.stderr)
        return EX_TEMPFAIL
    return 0


def _unusable(path: str, kind: Callable[[int], bool], other: str) -> str | None:
    """Why ``path`` cannot be read as ``kind`` (its own error: not found, permission denied, ...), else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        return f'{path}: {error.strerror or error}'
    return None if kind(mode) else f'{path}: {other}'
