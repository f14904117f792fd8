"""The RFC 8058 one-click unsubscribe endpoint: ``POST /u/<token>`` unsubscribes, ``GET /u/<token>`` only asks.

- ``POST`` with the body ``List-Unsubscribe=One-Click`` (``application/x-www-form-urlencoded`` or
  ``multipart/form-data``, RFC 8058 §3.1; with a Content-Length or chunked): 200 when the token is valid,
  also for a retry of the same token. Forged: 403; expired: 410; malformed token or body: 400; the store
  unusable: 503 with ``Retry-After``.
- ``GET`` and ``HEAD`` never change anything (mail scanners follow links): a page with a button that POSTs.
- Every client address (IPv6: its /64) has a token bucket of ``rate_limit`` requests a minute: 429 with
  ``Retry-After``. The first POST of a valid token is never limited (providers post for many users from a few
  addresses); repeats, GETs and refused requests are. URL at most 2 KiB (414), body at most 4 KiB (413), a
  deadline per connection against slow clients, a bounded number of connections at once (in all and per client).
- A request line the standard library reads as HTTP/0.9 (no version) is 505: every answer has a status line and
  ``SECURITY_HEADERS``. An answer sent with input unread is followed by a lingering close.
- Log lines name tokens and clients' addresses by a short hash only, never the token or the recipient.

TLS: the contract's certificate and key (TLS 1.2 or later); a renewed certificate file is loaded at the next
connection. ``tls=None`` serves plain HTTP (only behind a TLS-terminating proxy, and for tests).
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import hashlib
import html
import logging
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections import Counter, OrderedDict
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..store import StoreError
from .ratelimit import RateLimiter, client_key
from .service import Outcome, Result, Unsubscriber, short_hash

__all__ = [
    'MAX_BODY',
    'MAX_URL',
    'PATH_PREFIX',
    'TlsFiles',
    'UnsubscribeServer',
    'make_server',
    'one_click_body',
]

log = logging.getLogger('mailinfra_agent.unsubscribe')

PATH_PREFIX = '/u/'
"""Links are ``https://<hostname>/u/<token>``."""
MAX_URL = 2048
MAX_BODY = 4096
IO_TIMEOUT = 10.0
"""Seconds one read or write may wait for the client."""
DEADLINE = 30.0
"""Seconds a connection may last in all (TLS handshake, request, answer)."""
MAX_CONNECTIONS = 64
"""Connections served at once; more are closed at once."""
MAX_CLIENT_CONNECTIONS = 16
"""Connections of one client (IPv6: one /64) at once: one slow client cannot take all MAX_CONNECTIONS."""
SEEN_TOKENS = 100_000
"""Valid tokens remembered (as digests) so that only a token's first POST passes the rate limit."""
DRAIN = 65536
"""Octets of a too large body read and dropped before answering 413."""
LINGER = 1 << 20
"""Octets still read and dropped after an answer, until the client closes (a "lingering close"): closing a socket
with unread input makes the kernel reset the connection, which destroys the answer at a client still sending its
body (Python's http.client sends all of it before it reads). Only after an answer sent with input unread: a
connection whose request was read to its end is closed at once and gives its slot back."""
LINGER_WAIT = 2.0
"""Seconds one read of a lingering close may wait (Apache's is 2 s): a client that keeps its connection open
without sending holds its slot this long, not until the deadline."""
CHUNK_LINE = 1024
"""Longest chunk-size or trailer line of a chunked body."""
MAX_TRAILERS = 16
_CHUNK_LINE = re.compile(rb'([0-9A-Fa-f]{1,8})(?:[ \t]*;[^\r\n]*)?\r?\n')
"""A chunk-size line (RFC 9112 §7.1): hex digits, optional extensions after optional blanks."""
_ABSOLUTE_FORM = re.compile(r'https?://', re.IGNORECASE)
STORE_RETRY_AFTER = 60
ONE_CLICK = 'One-Click'

_STYLE = 'body{font-family:sans-serif;max-width:36em;margin:3em auto;padding:0 1em}button{font-size:1.1em}'
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode('ascii')).digest()).decode('ascii')
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ('Cache-Control', 'no-store'),
    ('X-Content-Type-Options', 'nosniff'),
    ('Referrer-Policy', 'no-referrer'),
    ('X-Frame-Options', 'DENY'),
    (
        'Content-Security-Policy',
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
    ),
)
ALLOW = 'GET, HEAD, POST, OPTIONS'


@dataclass(frozen=True)
class TlsFiles:
    certificate: str
    key: str


class _TlsContext:
    """The server's TLS context, rebuilt when the certificate or key file changes (ACME renewals)."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._context = self._build()

    def _files_stamp(self) -> tuple[float, float]:
        return (os.stat(self.files.certificate).st_mtime, os.stat(self.files.key).st_mtime)

    def _build(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.files.certificate, self.files.key)
        return context

    def get(self) -> ssl.SSLContext:
        with self._lock:
            try:
                stamp = self._files_stamp()
                if stamp != self._stamp:
                    self._context, self._stamp = self._build(), stamp
                    log.info('unsubscribe: TLS certificate reloaded from %s', self.files.certificate)
            except (OSError, ssl.SSLError) as error:
                # a renewal caught half-written: keep serving with the certificate already loaded
                log.warning('unsubscribe: cannot reload the TLS certificate (%s); keeping the old one', error)
            return self._context


def _page(title: str, text: str, form_action: str | None = None) -> bytes:
    form = ''
    if form_action is not None:
        form = (
            f'<form method="post" action="{html.escape(form_action, quote=True)}">'
            f'<input type="hidden" name="List-Unsubscribe" value="{ONE_CLICK}">'
            '<button type="submit">Unsubscribe</button></form>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f'<title>{html.escape(title)}</title><style>{_STYLE}</style></head>'
        f'<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{form}</body></html>\n'
    ).encode()


_REFUSED: dict[str, tuple[HTTPStatus, str, str]] = {
    'forged': (HTTPStatus.FORBIDDEN, 'Link not valid', 'This unsubscribe link was not issued by us.'),
    'expired': (
        HTTPStatus.GONE,
        'Link expired',
        'This unsubscribe link has expired. Please use the link in a more recent message.',
    ),
    'malformed': (HTTPStatus.BAD_REQUEST, 'Link not valid', 'This unsubscribe link is damaged or incomplete.'),
}


def one_click_body(content_type: str | None, body: bytes) -> bool:
    """Whether a POST body says ``List-Unsubscribe=One-Click`` (form-urlencoded or multipart/form-data)."""
    media = (content_type or 'application/x-www-form-urlencoded').split(';', 1)[0].strip().lower()
    if media == 'application/x-www-form-urlencoded':
        try:
            # a trailing line break (curl --data-binary @file) is no part of the value
            text = body.decode('ascii').rstrip(' \t\r\n')
            fields = urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return False
        return fields.get('List-Unsubscribe') == [ONE_CLICK]
    if media == 'multipart/form-data' and content_type is not None:
        head = f'Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n'.encode('latin-1', 'replace')
        try:
            return _multipart_one_click(head + body)
        except (IndexError, ValueError, LookupError):  # the header parser on some malformed parameters (`; a*`)
            return False
    return False


def _multipart_one_click(data: bytes) -> bool:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(data)
    if not message.is_multipart() or message.defects:
        return False
    for part in message.iter_parts():
        if part.get_param('name', header='content-disposition') == 'List-Unsubscribe':
            payload = part.get_payload(decode=True)
            return isinstance(payload, bytes) and payload.strip() == ONE_CLICK.encode('ascii')
    return False


class Handler(BaseHTTPRequestHandler):
    server: UnsubscribeServer
    server_version = 'mailinfra-unsubscribe'
    protocol_version = 'HTTP/1.1'
    body = b''
    unread = True
    """Input may remain unread after the answer (until the body was read to its end): a lingering close follows."""
    raw_requestline: bytes

    def version_string(self) -> str:
        """The Server header: the standard library's adds a space and Python's version."""
        return self.server_version

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` with a Content-Length over MAX_BODY: 413 at once, before the body is sent."""
        for header in self.headers.get_all('Content-Length') or []:
            for value in header.split(','):
                digits = value.strip().lstrip('0')
                if digits.isascii() and digits.isdigit() and (len(digits) > 10 or int(digits) > MAX_BODY):
                    self._too_large()
                    return False
        return super().handle_expect_100()

    def parse_request(self) -> bool:
        """A request the standard library takes for HTTP/0.9 is refused: it would be answered with the page alone,
        without a status line or any of our headers (CSP, no-store). Its verdict, not a split of our own, decides:
        it splits the line at more than ASCII white space (``GET\\x1c/u/...``)."""
        if not super().parse_request():
            return False
        if self.request_version == 'HTTP/0.9':
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
            return False
        return True

    # --- answers --------------------------------------------------------------------------------------------------

    def _send(self, status: HTTPStatus, body: bytes = b'', headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.close_connection = True
        self.send_response(status)
        for name, value in (*SECURITY_HEADERS, *headers):
            self.send_header(name, value)
        if self.server.tls is not None:
            self.send_header('Strict-Transport-Security', 'max-age=31536000')
        if status != HTTPStatus.NO_CONTENT:
            self.send_header('Content-Type', 'text/html; charset=utf-8' if body else 'text/plain; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        if self.command != 'HEAD' and body:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's errors (bad request line, too long, bad version) with our headers and no echo."""
        status = HTTPStatus(code)
        # errors found while parsing the request line come before its version is known: answer in HTTP/1.1
        self.request_version = self.protocol_version
        self.server.note(self, 'not-allowed' if code == HTTPStatus.NOT_IMPLEMENTED else 'malformed', status)
        self._send(status, _page(status.phrase, status.description or status.phrase))

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the standard library logs the request line, which holds the token; :meth:`note` logs instead."""

    # --- methods --------------------------------------------------------------------------------------------------

    def _path(self) -> str:
        """The path of the request target without its query; the absolute form (``https://host/u/...``), which
        RFC 9112 §3.2.2 says servers must accept, gives its path."""
        target = self.path
        if _ABSOLUTE_FORM.match(target):
            target = urllib.parse.urlsplit(target).path or '/'
        return target.split('?', 1)[0]

    def _token(self) -> str | None:
        """The token of ``/u/<token>`` (a query string is ignored), or None (404)."""
        path = self._path()
        if not path.startswith(PATH_PREFIX):
            return None
        token = urllib.parse.unquote(path[len(PATH_PREFIX) :])
        return token if token and '/' not in token else None

    def _admit(self) -> str | None:
        """Body, rate limit, Host header (RFC 9112 §3.2) and URL size; None when an answer was sent, else the token.

        The body is read first (at most MAX_BODY octets): closing a connection with unread data makes the kernel
        reset it, and the client might never see the answer.
        """
        body = self._body()
        if body is None:
            return None
        self.body = body
        wait = 0.0 if self._first_valid_post() else self.server.limiter.take(self.client_address[0], time.monotonic())
        if wait:
            self.server.note(self, 'rate-limited', HTTPStatus.TOO_MANY_REQUESTS)
            self._send(
                HTTPStatus.TOO_MANY_REQUESTS,
                _page('Too many requests', 'Please try again later.'),
                (('Retry-After', str(int(wait))),),
            )
            return None
        hosts = self.headers.get_all('Host') or []
        if len(hosts) > 1 or (not hosts and self.request_version not in ('HTTP/0.9', 'HTTP/1.0')):
            self.server.note(self, 'malformed', HTTPStatus.BAD_REQUEST)
            self._send(HTTPStatus.BAD_REQUEST, _page('Bad request', 'The request needs exactly one Host header.'))
            return None
        if len(self.path) > MAX_URL:
            self.server.note(self, 'malformed', HTTPStatus.REQUEST_URI_TOO_LONG)
            self._send(HTTPStatus.REQUEST_URI_TOO_LONG, _page('Address too long', 'The link is too long.'))
            return None
        token = self._token()
        if token is None:
            self.server.note(self, 'not-found', HTTPStatus.NOT_FOUND)
            self._send(HTTPStatus.NOT_FOUND, _page('Not found', 'There is nothing here.'))
            return None
        return token

    def _refused(self, result: Result, token: str) -> None:
        status, title, text = _REFUSED[result.outcome]
        self.server.note(self, result.outcome, status, token)
        self._send(status, _page(title, text))

    def _first_valid_post(self) -> bool:
        """A POST of a valid token not seen lately: never rate-limited. Providers post their users' unsubscribes
        from a few addresses (one busy campaign would otherwise get 429s), and a token is checked with one HMAC,
        no store access. Repeats of a token, GETs and everything refused still take from the client's bucket."""
        if self.command != 'POST' or len(self.path) > MAX_URL:
            return False
        token = self._token()
        if token is None or self.server.unsubscriber.check(token, time.time()).token is None:
            return False
        return self.server.first_sight(token)

    def do_GET(self) -> None:
        token = self._admit()
        if token is None:
            return
        result = self.server.unsubscriber.check(token, time.time())
        if result.token is None:
            self._refused(result, token)
            return
        self.server.note(self, 'confirm', HTTPStatus.OK, token)
        stream = result.token.stream.replace('_', ' ')
        text = f'Unsubscribe {result.token.recipient} from the {stream} mailings? Press the button to confirm.'
        self._send(HTTPStatus.OK, _page('Unsubscribe', text, form_action=self._path()))

    do_HEAD = do_GET

    def do_POST(self) -> None:
        token = self._admit()
        if token is None:
            return
        if not one_click_body(self.headers.get('Content-Type'), self.body):
            self.server.note(self, 'malformed', HTTPStatus.BAD_REQUEST, token)
            text = f'The request must carry List-Unsubscribe={ONE_CLICK} (RFC 8058).'
            self._send(HTTPStatus.BAD_REQUEST, _page('Bad request', text))
            return
        try:
            result = self.server.unsubscriber.unsubscribe(token, time.time())
        except StoreError as error:
            self.server.note(self, 'store-unavailable', HTTPStatus.SERVICE_UNAVAILABLE, token, str(error))
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                _page('Please try again later', 'We cannot record your request right now.'),
                (('Retry-After', str(STORE_RETRY_AFTER)),),
            )
            return
        if result.token is None:
            self._refused(result, token)
            return
        scopes = ','.join(entry.scope for entry in result.added) or '-'
        detail = f'stream={result.token.stream} new={scopes}' + (f' {result.reason}' if result.reason else '')
        self.server.note(self, result.outcome, HTTPStatus.OK, token, detail, warn=bool(result.reason))
        self._send(HTTPStatus.OK, _page('Unsubscribed', 'You will not receive these mailings any more.'))

    def _body(self) -> bytes | None:
        """The request body (at most MAX_BODY octets), or None when an error was answered.

        Framing follows RFC 9112 §6: a chunked body is read (HTTP/1.1 servers must), Content-Length and
        Transfer-Encoding together, other transfer codings and differing Content-Length values are refused.
        """
        codings = self.headers.get_all('Transfer-Encoding') or []
        lengths = self.headers.get_all('Content-Length') or []
        if codings:
            names = [name.strip().lower() for value in codings for name in value.split(',')]
            if lengths or self.request_version == 'HTTP/1.0' or names[-1] != 'chunked' or names.count('chunked') > 1:
                self._bad_body(HTTPStatus.BAD_REQUEST, 'The body framing is ambiguous (RFC 9112 section 6).')
                return None
            if names != ['chunked']:
                self._bad_body(HTTPStatus.NOT_IMPLEMENTED, 'Only the chunked transfer coding is understood.')
                return None
            return self._chunked()
        values = {value.strip() for header in lengths for value in header.split(',')}
        length_text = values.pop() if len(values) == 1 else ('0' if not lengths else '')
        if not (length_text.isascii() and length_text.isdigit()):
            self._bad_body(HTTPStatus.BAD_REQUEST, 'The Content-Length is not one number.')
            return None
        digits = length_text.lstrip('0') or '0'
        length = int(digits) if len(digits) <= 10 else DRAIN + 1  # int() refuses over 4,300 digits
        if length > MAX_BODY:
            self._discard(length)
            self._too_large()
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return None
        self.unread = False
        return body

    def _chunked(self) -> bytes | None:
        """A chunked body; larger than MAX_BODY: 413 (after reading at most DRAIN octets of it)."""
        body = bytearray()
        seen = 0
        while True:
            line = self.rfile.readline(CHUNK_LINE + 1)
            if not line:
                self.close_connection = True
                return None
            match = _CHUNK_LINE.fullmatch(line)
            if match is None:
                self._bad_body(HTTPStatus.BAD_REQUEST, 'The chunked body is malformed.')
                return None
            size = int(match[1], 16)
            if size == 0:
                break
            seen += size + len(line) + 2  # framing counts too: a body of tiny chunks with long extensions
            if seen > DRAIN:
                self._too_large()
                return None
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                self.close_connection = True
                return None
            if seen <= MAX_BODY:
                body += chunk
            if self.rfile.readline(3) not in (b'\r\n', b'\n'):
                self._bad_body(HTTPStatus.BAD_REQUEST, 'The chunked body is malformed.')
                return None
        for _ in range(MAX_TRAILERS + 1):  # trailer fields are read and ignored
            line = self.rfile.readline(CHUNK_LINE + 1)
            if line in (b'\r\n', b'\n'):
                if seen <= MAX_BODY:
                    self.unread = False
                    return bytes(body)
                self._too_large()
                return None
            if not line.endswith(b'\n'):
                break
        self._bad_body(HTTPStatus.BAD_REQUEST, 'The chunked body is malformed.')
        return None

    def _bad_body(self, status: HTTPStatus, text: str) -> None:
        self.server.note(self, 'malformed', status)
        self._send(status, _page('Bad request' if status == HTTPStatus.BAD_REQUEST else 'Not implemented', text))

    def _too_large(self) -> None:
        self.server.note(self, 'malformed', HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _page('Too large', 'The request body is too large.'))

    def _discard(self, length: int) -> None:
        """Read and drop a too large body up to DRAIN octets, so the client sees the 413 before the close."""
        left = min(length, DRAIN)
        while left > 0:
            chunk = self.rfile.read(min(left, 16384))
            if not chunk:
                return
            left -= len(chunk)

    def do_OPTIONS(self) -> None:
        if self._admit() is not None:
            self._send(HTTPStatus.NO_CONTENT, headers=(('Allow', ALLOW),))

    def _not_allowed(self) -> None:
        if self._admit() is not None:
            self.server.note(self, 'not-allowed', HTTPStatus.METHOD_NOT_ALLOWED)
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, _page('Not allowed', 'Use GET or POST.'), (('Allow', ALLOW),))

    do_PUT = do_DELETE = do_PATCH = do_TRACE = do_CONNECT = _not_allowed


class UnsubscribeServer(ThreadingHTTPServer):
    """A thread per connection (at most ``max_connections``), TLS handshakes in that thread, not in accept()."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        unsubscriber: Unsubscriber,
        limiter: RateLimiter,
        tls: TlsFiles | None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_client_connections: int = MAX_CLIENT_CONNECTIONS,
        deadline: float = DEADLINE,
        io_timeout: float = IO_TIMEOUT,
    ) -> None:
        self.unsubscriber = unsubscriber
        self.limiter = limiter
        self.tls = tls
        self._tls_context = _TlsContext(tls) if tls is not None else None
        self.deadline = deadline
        self.io_timeout = io_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self.max_connections = max_connections
        self.max_client_connections = max_client_connections
        self._clients: Counter[str] = Counter()
        self._seen_tokens: OrderedDict[bytes, None] = OrderedDict()
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        if ':' in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def first_sight(self, token: str) -> bool:
        """True the first time ``token`` is seen among the last ``SEEN_TOKENS`` (then remembered)."""
        digest = hashlib.sha256(token.encode('utf-8', 'surrogateescape')).digest()
        with self._counts_lock:
            if digest in self._seen_tokens:
                self._seen_tokens.move_to_end(digest)
                return False
            self._seen_tokens[digest] = None
            if len(self._seen_tokens) > SEEN_TOKENS:
                self._seen_tokens.popitem(last=False)
            return True

    def note(
        self,
        handler: BaseHTTPRequestHandler,
        outcome: Outcome | str,
        status: HTTPStatus,
        token: str | None = None,
        detail: str = '',
        *,
        warn: bool = False,
    ) -> None:
        """One log line per answer; the token and the recipient never appear, the client only as a short hash."""
        with self._counts_lock:
            self.counts[outcome] += 1
        method = handler.command if handler.command in ('GET', 'HEAD', 'POST', 'OPTIONS') else 'other'
        level = logging.WARNING if warn or outcome in ('store-unavailable', 'error') else logging.INFO
        log.log(
            level,
            'unsubscribe: %s %s status=%d client=%s token=%s%s',
            outcome,
            method,
            int(status),
            short_hash(handler.client_address[0]),
            short_hash(token) if token is not None else '-',
            f' {detail}' if detail else '',
        )

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning('unsubscribe: %d connections at once, refusing more', self.max_connections)
            self.shutdown_request(request)
            return
        client = client_key(client_address[0])
        with self._counts_lock:
            admitted = self._clients[client] < self.max_client_connections
            if admitted:
                self._clients[client] += 1
        if not admitted:
            self._slots.release()
            log.warning(
                'unsubscribe: %d connections at once from client=%s, refusing more',
                self.max_client_connections,
                short_hash(client_address[0]),
            )
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(client)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release(client_key(client_address[0]))

    def _release(self, client: str) -> None:
        with self._counts_lock:
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]
        self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(self.io_timeout)
        # The whole connection, TLS handshake included, gets a deadline: a client trickling one octet at a time is
        # cut off. The timer holds a duplicate of the socket: wrap_socket() detaches the original, and the
        # duplicate keeps the connection (not just a file descriptor number that could be reused) until the end.
        handle = request.dup()
        timer = threading.Timer(self.deadline, _cut, (handle,))
        timer.daemon = True
        timer.start()
        try:
            if self._tls_context is None:
                if Handler(request, client_address, self).unread:
                    _linger(request)
                return
            try:
                connection = self._tls_context.get().wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                log.info('unsubscribe: TLS handshake failed client=%s: %s', short_hash(client_address[0]), error)
                return
            try:
                if Handler(connection, client_address, self).unread:
                    _linger(connection)
            finally:
                connection.close()
        except OSError as error:  # the client went away, or the deadline cut it off
            log.info('unsubscribe: connection ended client=%s: %s', short_hash(client_address[0]), error)
        finally:
            timer.cancel()
            handle.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception('unsubscribe: internal error client=%s', short_hash(client_address[0]))


def _linger(sock: socket.socket) -> None:
    """After an answer sent with input unread: end our side (a TLS socket drops TLS, the answer is complete by its
    Content-Length), then read and drop what the client still sends, up to LINGER octets, until it closes or is
    silent for LINGER_WAIT (the deadline still holds)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(LINGER_WAIT)
        left = LINGER
        while left > 0:
            data = sock.recv(min(left, 65536))
            if not data:
                return
            left -= len(data)


def _cut(sock: socket.socket) -> None:
    """End a connection from another thread; the thread reading it sees end of file."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def make_server(
    address: tuple[str, int],
    unsubscriber: Unsubscriber,
    rate_limit: int,
    tls: TlsFiles | None,
    **options: Any,
) -> UnsubscribeServer:
    """Bind the endpoint (raises OSError when the address is taken, ssl.SSLError/OSError for unusable TLS files).
    Without TLS it serves behind a TLS-terminating proxy, whose address every connection has: the per-client
    connection cap would then cap them all, so it is MAX_CONNECTIONS unless given."""
    if tls is None:
        options.setdefault('max_client_connections', options.get('max_connections', MAX_CONNECTIONS))
    return UnsubscribeServer(address, unsubscriber, RateLimiter(rate_limit), tls, **options)
