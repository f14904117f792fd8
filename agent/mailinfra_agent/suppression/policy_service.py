"""A Postfix policy service (SMTPD_POLICY_README) that refuses suppressed recipients, hash-only ones included.

The access map (:mod:`.postfix_map`) needs the address in clear. When the deployment keeps suppressions only as
keyed hashes (``Retention.suppressions = 'hash'``), the injection listener asks this service instead; it hashes
the recipient and looks it up in the store. The stream is the request's ``policy_context`` attribute, which
the listener sets (Postfix >= 3.1)::

    -o smtpd_policy_service_policy_context=<stream>
    -o { smtpd_recipient_restrictions = check_policy_service unix:/run/mailinfra/suppression.sock }

Answers: ``550 5.7.1 suppressed by mailinfra (<reason>)`` for a suppressed recipient, ``DUNNO`` otherwise,
and ``DEFER_IF_PERMIT 4.3.0 ...`` when the store cannot be read (the application retries later; nothing
suppressed slips through while the store is down). The recipient is read as the gate reads it (``canonical_address``).
A request without a blank line, or of 64 KiB or more (``policy_protocol.MAX_REQUEST``), closes its connection; so
does a client silent for :data:`IDLE_TIMEOUT`. A client that leaves early is one line on stderr; the other
connections go on.
"""

from __future__ import annotations

import os
import socket
import socketserver
import sys
from collections.abc import Callable

from ..policy_protocol import read_request
from ..store import Database, StoreError
from .suppressions import Entry, SuppressionList, address_problem, canonical_address

__all__ = ['IDLE_TIMEOUT', 'PolicyHandler', 'answer', 'serve']

IDLE_TIMEOUT = 1800.0
"""Seconds a connection may send nothing before it is closed (Postfix closes its own after
``smtpd_policy_service_max_idle``, 300 s, at most ``smtpd_policy_service_max_ttl``, 1000 s, after it opened)."""
UNAVAILABLE = 'DEFER_IF_PERMIT 4.3.0 suppression list unavailable, try again later'

Lookup = Callable[[str, str], Entry | None]


def answer(attributes: dict[str, str], lookup: Lookup) -> str:
    """The action for one policy request."""
    if attributes.get('request') != 'smtpd_access_policy' or attributes.get('protocol_state') != 'RCPT':
        return 'DUNNO'
    stream = attributes.get('policy_context', '')
    # As the gate reads it: smtpd passes a trailing dot and a UTF-8 domain (SMTPUTF8) as received.
    recipient = canonical_address(attributes.get('recipient', ''))
    if not stream or address_problem(recipient) is not None:
        return 'DUNNO'
    entry = lookup(recipient, stream)
    return 'DUNNO' if entry is None else f'550 5.7.1 suppressed by mailinfra ({entry.reason})'


class PolicyHandler(socketserver.StreamRequestHandler):
    """One Postfix connection: requests until it closes, one store connection for all of them."""

    server: _Server
    timeout = IDLE_TIMEOUT

    def handle(self) -> None:
        db: Database | None = None
        try:
            while True:
                attributes = read_request(self.rfile)
                if attributes is None:
                    return
                try:
                    if db is None:
                        db = self.server.connect()
                    suppressions = SuppressionList(db, self.server.key)
                    action = answer(attributes, suppressions.lookup)
                except StoreError as error:
                    print(f'suppression policy: {error}', file=sys.stderr, flush=True)
                    if db is not None:
                        db.close()
                        db = None
                    action = UNAVAILABLE
                self.wfile.write(f'action={action}\n\n'.encode())
                self.wfile.flush()
        except OSError as error:  # the client went away, or sent nothing for IDLE_TIMEOUT: this connection only
            print(f'suppression policy: connection closed: {error}', file=sys.stderr, flush=True)
        finally:
            if db is not None:
                db.close()


class _Server(socketserver.ThreadingMixIn, socketserver.BaseServer):
    connect: Callable[[], Database]
    key: bytes
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # socketserver's 5 reset connections when many smtpd ask at once


class _UnixServer(_Server, socketserver.UnixStreamServer):
    pass


class _TcpServer(_Server, socketserver.TCPServer):
    allow_reuse_address = True


def serve(listen: str, connect: Callable[[], Database], key: bytes) -> socketserver.BaseServer:
    """A bound server (``unix:/path`` or ``inet:127.0.0.1:port``); call ``serve_forever()`` on it."""
    kind, _, where = listen.partition(':')
    server: _Server
    if kind == 'unix':
        if os.path.exists(where):
            os.unlink(where)
        server = _UnixServer(where, PolicyHandler)
        os.chmod(where, 0o666)  # smtpd (user postfix) connects; the socket's directory limits who can reach it
    elif kind == 'inet':
        host, _, port = where.rpartition(':')
        if not (port.isascii() and port.isdigit() and int(port) < 65536):  # bind() raised OverflowError
            raise ValueError(f'listen address "{listen}": the port is not 0-65535')
        server = _TcpServer((host, int(port)), PolicyHandler)
    else:
        raise ValueError(f'listen address "{listen}": use unix:/path or inet:host:port')
    server.connect = connect
    server.key = key
    return server
