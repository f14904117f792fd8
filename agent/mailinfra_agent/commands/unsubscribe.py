"""``mailinfra-agent unsubscribe serve``: the RFC 8058 one-click unsubscribe endpoint (issue 13).

Serves ``https://<unsubscribe.hostname>/u/<token>`` on the contract's ``unsubscribe.listen_address`` and
``port`` (or ``--listen ADDR:PORT``) with the contract's certificate and key, until SIGTERM or SIGINT.
``--no-tls`` serves plain HTTP: only behind a TLS-terminating proxy on the same host, and for tests.

Exit 0: stopped by a signal; 2: the contract, a key, the certificate or the listen address cannot be used,
or the contract does not enable the endpoint on this host; 64: bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from types import FrameType

from ..contract import DEFAULT_CONTRACT_PATH, Contract, SecretFileError, read_secret_file
from ..feedback.signing import read_key_file
from ..unsubscribe import TlsFiles, Unsubscriber, make_server
from ._contract import load_or_report

NAME = 'unsubscribe'
HELP = 'Serve the one-click unsubscribe endpoint (RFC 8058).'

EXIT_USAGE = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    serve = actions.add_parser('serve', help='serve POST/GET /u/<token> until stopped')
    serve.add_argument('--contract', metavar='PATH', default=DEFAULT_CONTRACT_PATH, help='the host contract')
    serve.add_argument('--listen', metavar='ADDR:PORT', help='default: unsubscribe.listen_address and port')
    serve.add_argument(
        '--no-tls', action='store_true', help='plain HTTP: only behind a TLS-terminating proxy, or for tests'
    )


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR:PORT`` or ``[IPv6]:PORT``; raises ValueError."""
    host, colon, port = text.rpartition(':')
    if not colon or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536 or not host:
        raise ValueError(f'--listen {text!r}: expected ADDR:PORT, e.g. 0.0.0.0:443 or [::]:443')
    return host.removeprefix('[').removesuffix(']'), int(port)


def _error(message: str) -> int:
    print(f'unsubscribe: {message}', file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format='%(message)s', stream=sys.stderr)
    contract = load_or_report(args.contract)
    if contract is None:
        return 2
    settings = contract.unsubscribe
    if not settings.enabled:
        return _error(f'{args.contract}: unsubscribe.enabled is false: this host does not serve the endpoint')
    try:
        address = parse_listen(args.listen) if args.listen else (settings.listen_address, settings.port)
    except ValueError as error:
        print(f'unsubscribe: {error}', file=sys.stderr)
        return EXIT_USAGE
    tls = None
    if not args.no_tls:
        if settings.tls_certificate_file is None or settings.tls_key_file is None:
            return _error('the contract names no TLS certificate/key (unsubscribe.tls_certificate_file, tls_key_file)')
        tls = TlsFiles(settings.tls_certificate_file, settings.tls_key_file)
    try:
        unsubscriber = _unsubscriber(contract)
    except ValueError as error:
        return _error(str(error))
    try:
        server = make_server(address, unsubscriber, settings.rate_limit, tls)
    except (OSError, ssl.SSLError, ValueError) as error:
        return _error(f'cannot serve on {address[0]}:{address[1]}: {error}')
    _stop_on_signals(server.shutdown)
    logging.getLogger('mailinfra_agent.unsubscribe').info(
        'unsubscribe: serving %s on %s:%d', 'https' if tls else 'plain http', *server.server_address[:2]
    )
    with server:
        server.serve_forever(poll_interval=0.5)
    return 0


def _unsubscriber(contract: Contract) -> Unsubscriber:
    """Raises ValueError (never showing a key) when a key file cannot be used."""
    suppression = contract.suppression
    if suppression.signing_key_file is None:
        raise ValueError('the contract names no signing key (suppression.signing_key_file)')
    keys = tuple(read_key_file(path) for path in (suppression.signing_key_file, *suppression.old_signing_key_files))
    if contract.retention.hash_key_file is None:
        raise ValueError('the contract names no address hash key (retention.hash_key_file)')
    try:
        hash_key = read_secret_file(contract.retention.hash_key_file).encode('utf-8')
    except SecretFileError as error:
        raise ValueError(str(error)) from None
    return Unsubscriber.from_contract(contract, keys, hash_key)


def _stop_on_signals(shutdown: Callable[[], None]) -> None:
    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever(), which runs in this (the main) thread: call it from another one
        threading.Thread(target=shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
