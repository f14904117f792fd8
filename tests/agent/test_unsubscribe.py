"""One-click unsubscribe endpoint (issue 13, RFC 8058): a real HTTPS server on 127.0.0.1 with a test CA made by
the ``openssl`` CLI, a real SQLite store (and the real PostgreSQL of conftest.py for the outage), clients from
Python's ``http.client``, raw sockets and Debian's ``curl``."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import Contract, Store, dump_contract_json, load_contract
from mailinfra_agent.feedback.signing import new_key
from mailinfra_agent.feedback.tokens import make_token
from mailinfra_agent.store import Database, connect, migrate
from mailinfra_agent.store.events import events, problem_counts
from mailinfra_agent.suppression import canonical_address
from mailinfra_agent.unsubscribe import (
    RateLimiter,
    TlsFiles,
    Unsubscriber,
    UnsubscribeServer,
    client_key,
    make_server,
    one_click_body,
)
from mailinfra_agent.unsubscribe.server import MAX_BODY, MAX_CLIENT_CONNECTIONS, MAX_CONNECTIONS
from tests.agent.conftest import Postgres
from tests.agent.test_suppression import STREAMS

DAY = 86400
ONE_CLICK = b'List-Unsubscribe=One-Click'
FORM = {'Content-Type': 'application/x-www-form-urlencoded'}
S_CLIENT = ('-cipher', 'DEFAULT:@SECLEVEL=0', '-CAfile')


# --- a test CA and server certificate, made with the openssl CLI -------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    certificate: Path
    key: Path
    directory: Path


def _openssl(directory: Path, *arguments: str) -> None:
    subprocess.run(['openssl', *arguments], cwd=directory, check=True, capture_output=True, text=True)


def make_server_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A key and a certificate for 127.0.0.1 / localhost signed by the CA in ``directory``."""
    key, request, certificate = directory / f'{name}.key', directory / f'{name}.csr', directory / f'{name}.pem'
    _openssl(
        directory,
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        str(key),
        '-out',
        str(request),
        '-subj',
        f'/CN={name}',
    )
    extensions = directory / f'{name}.ext'
    extensions.write_text('subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n', encoding='utf-8')
    _openssl(
        directory,
        'x509',
        '-req',
        '-in',
        str(request),
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        str(extensions),
        '-out',
        str(certificate),
    )
    key.chmod(0o600)
    return certificate, key


@pytest.fixture(scope='module')
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp('pki')
    _openssl(
        directory,
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-days',
        '2',
        '-subj',
        '/CN=mailinfra test CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
    )
    certificate, key = make_server_certificate(directory, 'server')
    return Pki(directory / 'ca.pem', certificate, key, directory)


def client_context(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca))


# --- contract, store and server ----------------------------------------------------------------------------------


def secret(path: Path, value: bytes) -> str:
    path.write_bytes(value + b'\n')
    path.chmod(0o600)
    return str(path)


def write_contract(tmp_path: Path, pki: Pki, store: Store | None = None, **unsubscribe: Any) -> tuple[Path, bytes]:
    """A contract from a golden file with our streams, store, keys and certificate; (path, signing key)."""
    golden = Path('tests/golden/newsletter-publisher/mta/mx1/etc/mailinfra/agent.json')
    contract = load_contract(golden)
    signing = new_key()
    settings = {
        'enabled': True,
        'tls_certificate_file': str(pki.certificate),
        'tls_key_file': str(pki.key),
        'rate_limit': 1000,
        **unsubscribe,
    }
    contract = replace(
        contract,
        streams=STREAMS,
        ips=(),
        store=store or Store('sqlite', path=str(tmp_path / 'agent.db')),
        unsubscribe=replace(contract.unsubscribe, **settings),
        suppression=replace(
            contract.suppression,
            signing_key_file=secret(tmp_path / 'signing.key', signing),
            old_signing_key_files=(),
        ),
        retention=replace(contract.retention, hash_key_file=secret(tmp_path / 'hash.key', b'unsubscribe-test-hash')),
        webhook=replace(contract.webhook, url=None),
    )
    path = tmp_path / 'agent.json'
    path.write_text(dump_contract_json(contract), encoding='utf-8')
    return path, signing


@dataclass
class Client:
    """A client of an endpoint on 127.0.0.1:``port`` that knows its keys (to make tokens) and its store."""

    port: int
    contract: Contract
    keys: tuple[bytes, ...]
    pki: Pki

    def token(self, recipient: str = 'Reader@Example.NET', stream: str = 'marketing', age: float = 0) -> str:
        return make_token(recipient, stream, self.keys, time.time() - age)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        client: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPSConnection('127.0.0.1', self.port, timeout=10, context=client_context(self.pki))
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def post(self, token: str, body: bytes = ONE_CLICK) -> tuple[int, dict[str, str], bytes]:
        return self.request('POST', f'/u/{token}', body, FORM)

    def db(self) -> Database:
        return connect(self.contract.store)


@dataclass
class Endpoint(Client):
    """A server running in this process, and its client."""

    server: UnsubscribeServer


def start(contract_path: Path, keys: tuple[bytes, ...], pki: Pki, **options: Any) -> Endpoint:
    contract = load_contract(contract_path)
    assert contract.retention.hash_key_file is not None
    hash_key = Path(contract.retention.hash_key_file).read_bytes().strip()
    unsubscriber = Unsubscriber.from_contract(contract, keys, hash_key)
    assert contract.unsubscribe.tls_certificate_file and contract.unsubscribe.tls_key_file
    tls = TlsFiles(contract.unsubscribe.tls_certificate_file, contract.unsubscribe.tls_key_file)
    server = make_server(('127.0.0.1', 0), unsubscriber, contract.unsubscribe.rate_limit, tls, **options)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
    return Endpoint(int(server.server_address[1]), contract, keys, pki, server)


def sqlite_store(tmp_path: Path) -> Store:
    store = Store('sqlite', path=str(tmp_path / 'agent.db'))
    with connect(store) as db:
        migrate(db)
    return store


@pytest.fixture
def endpoint(tmp_path: Path, pki: Pki) -> Iterator[Endpoint]:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    running = start(path, (key,), pki)
    yield running
    running.server.shutdown()
    running.server.server_close()


def stored(endpoint: Client) -> tuple[list[Any], list[tuple[str, str | None, str]]]:
    """(unsubscribe events, suppressions as (scope, address, reason))."""
    with endpoint.db() as db:
        found = events(db, "kind = 'unsubscribe'")
        rows = db.execute('SELECT scope, address, reason FROM suppressions ORDER BY scope')
    return found, [(str(scope), address, str(reason)) for scope, address, reason in rows]


# --- the endpoint --------------------------------------------------------------------------------------------------


def test_a_valid_post_unsubscribes_once_and_a_retry_is_the_same_success(endpoint: Endpoint) -> None:
    token = endpoint.token()
    status, headers, body = endpoint.post(token)
    assert status == 200, body
    assert b'Unsubscribed' in body
    assert headers['cache-control'] == 'no-store'
    found, suppressions = stored(endpoint)
    assert [(e.kind, e.status, e.recipient, e.stream, e.source) for e in found] == [
        ('unsubscribe', 'unsubscribe', 'reader@example.net', 'marketing', 'http')
    ]
    # the stream and its linked stream, never transactional
    assert suppressions == [
        ('cold', 'reader@example.net', 'unsubscribe'),
        ('marketing', 'reader@example.net', 'unsubscribe'),
    ]
    status, _, _ = endpoint.post(token)
    assert status == 200
    assert stored(endpoint) == (found, suppressions)
    assert endpoint.server.counts['accepted'] == 1
    assert endpoint.server.counts['duplicate'] == 1


def test_a_valid_token_for_an_address_that_cannot_be_suppressed_is_a_problem_not_silence(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    """The application signed a token for an address the suppression list refuses to hold: the recipient is
    answered, but the operator sees a warning and an ``invalid-address`` problem (mail to it is not stopped)."""
    caplog.set_level(logging.INFO, logger='mailinfra_agent.unsubscribe')
    token = endpoint.token('"gone away"@gmail.com')  # RFC 5321 allows the quoted local part; the list does not
    for _ in range(2):
        assert endpoint.post(token)[0] == 200
    found, suppressions = stored(endpoint)
    assert len(found) == 1 and suppressions == []
    with endpoint.db() as db:
        problems = problem_counts(db, endpoint.contract.host.name)
    assert problems[(endpoint.contract.host.name, 'unsubscribe', 'invalid-address')] == 1
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2 and all('not suppressed: invalid-address' in text for text in warnings)
    assert all('gone' not in text for text in warnings)
    # a valid address: no warning, no problem
    caplog.clear()
    assert endpoint.post(endpoint.token('fine@example.net'))[0] == 200
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ('recipient', 'suppressed'),
    [
        ('User@B\u00fccher.example', 'user@xn--bcher-kva.example'),  # IDN domain: the gate looks up the xn-- form
        ('reader@example.net.', 'reader@example.net'),  # a trailing dot
        ('"reader"@example.net', 'reader@example.net'),  # a needlessly quoted local part
    ],
)
def test_the_address_is_suppressed_in_the_form_the_gate_looks_up(
    endpoint: Endpoint, recipient: str, suppressed: str
) -> None:
    assert endpoint.post(endpoint.token(recipient))[0] == 200
    found, suppressions = stored(endpoint)
    assert [e.recipient for e in found] == [suppressed]
    assert suppressions == [('cold', suppressed, 'unsubscribe'), ('marketing', suppressed, 'unsubscribe')]
    assert canonical_address(recipient) == suppressed  # what the gate and the policy service look up


def test_simultaneous_retries_are_one_event(endpoint: Endpoint) -> None:
    token = endpoint.token('busy@example.net')
    answers: list[int] = []
    threads = [threading.Thread(target=lambda: answers.append(endpoint.post(token)[0])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    found, suppressions = stored(endpoint)
    assert len(found) == 1 and len(suppressions) == 2
    assert endpoint.server.counts['accepted'] + endpoint.server.counts['duplicate'] == 8


def test_multipart_form_data_is_accepted_too(endpoint: Endpoint) -> None:
    token = endpoint.token('other@example.org', 'cold')
    boundary = 'xYzZY'
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f'One-Click\r\n--{boundary}--\r\n'
    ).encode('ascii')
    headers = {'Content-Type': f'multipart/form-data; boundary={boundary}'}
    status, _, _ = endpoint.request('POST', f'/u/{token}', body, headers)
    assert status == 200
    _, suppressions = stored(endpoint)
    assert {scope for scope, _, _ in suppressions} == {'cold', 'marketing'}


def test_a_post_without_the_one_click_body_changes_nothing(endpoint: Endpoint) -> None:
    token = endpoint.token()
    for body in (b'', b'List-Unsubscribe=Yes', b'foo=bar'):
        status, _, page = endpoint.post(token, body)
        assert status == 400
        assert b'One-Click' in page
    status, _, _ = endpoint.request('POST', f'/u/{token}', ONE_CLICK, {'Content-Type': 'application/json'})
    assert status == 400
    assert stored(endpoint) == ([], [])


def test_get_shows_a_confirmation_page_and_never_unsubscribes(endpoint: Endpoint) -> None:
    token = endpoint.token('a&b@example.net', 'cold')
    status, headers, page = endpoint.request('GET', f'/u/{token}')
    assert status == 200
    text = page.decode('utf-8')
    assert f'<form method="post" action="/u/{token}">' in text
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in text
    assert 'a&amp;b@example.net' in text and 'a&b@' not in text
    assert headers['content-type'] == 'text/html; charset=utf-8'
    assert headers['x-content-type-options'] == 'nosniff'
    assert headers['cache-control'] == 'no-store'
    assert "default-src 'none'" in headers['content-security-policy']
    assert "form-action 'self'" in headers['content-security-policy']
    assert 'max-age' in headers['strict-transport-security']
    status, headers, page = endpoint.request('HEAD', f'/u/{token}')
    assert status == 200 and page == b'' and int(headers['content-length']) > 0
    assert stored(endpoint) == ([], [])
    # the page's own button posts the form: that unsubscribes
    status, _, _ = endpoint.post(token, b'List-Unsubscribe=One-Click')
    assert status == 200
    assert len(stored(endpoint)[0]) == 1


def test_the_style_matches_the_csp_hash(endpoint: Endpoint) -> None:
    import base64
    import hashlib

    _, headers, page = endpoint.request('GET', f'/u/{endpoint.token()}')
    style = re.search(r'<style>(.*?)</style>', page.decode('utf-8'))
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode('utf-8')).digest()).decode('ascii')
    assert f"style-src 'sha256-{digest}'" in headers['content-security-policy']


def test_forged_expired_and_malformed_tokens_are_refused(endpoint: Endpoint) -> None:
    good = endpoint.token()
    forged = make_token('reader@example.net', 'marketing', (new_key(),), time.time())
    expired = endpoint.token(age=endpoint.contract.unsubscribe.token_max_age + DAY)
    future = endpoint.token(age=-DAY)
    cases = [
        (forged, 403, b'not issued by us'),
        (expired, 410, b'expired'),
        (good[:-3], 403, b''),  # cut: no longer matches its tag, or not base64 at all
        ('not-a-token', 400, b'damaged'),
        ('%00%ff', 400, b'damaged'),
        (future, 400, b''),
    ]
    for token, code, text in cases:
        for method in ('GET', 'POST'):
            status, headers, page = endpoint.request(method, f'/u/{token}', ONE_CLICK, FORM)
            assert status in ((code, 400) if token == good[:-3] else (code,)), (token, method, status)
            assert text in page
            assert headers['cache-control'] == 'no-store'
    assert stored(endpoint) == ([], [])
    with endpoint.db() as db:
        problems = problem_counts(db, endpoint.contract.host.name)
    assert problems[(endpoint.contract.host.name, 'unsubscribe', 'forged')] >= 1
    assert problems[(endpoint.contract.host.name, 'unsubscribe', 'expired')] == 1


def test_paths_methods_and_sizes(endpoint: Endpoint) -> None:
    token = endpoint.token()
    assert endpoint.request('GET', '/')[0] == 404
    assert endpoint.request('GET', '/u/')[0] == 404
    assert endpoint.request('GET', f'/u/{token}/more')[0] == 404
    assert endpoint.request('GET', f'/x/{token}')[0] == 404
    status, headers, _ = endpoint.request('PUT', f'/u/{token}', ONE_CLICK)
    assert status == 405 and headers['allow'] == 'GET, HEAD, POST, OPTIONS'
    assert endpoint.request('DELETE', f'/u/{token}')[0] == 405
    status, headers, body = endpoint.request('OPTIONS', f'/u/{token}')
    assert status == 204 and headers['allow'] == 'GET, HEAD, POST, OPTIONS' and body == b''
    assert 'content-length' not in headers
    assert endpoint.request('BREW', f'/u/{token}')[0] == 501
    assert endpoint.request('GET', '/u/' + 'A' * 2100)[0] == 414
    status, _, _ = endpoint.request('POST', f'/u/{token}', ONE_CLICK + b'&pad=' + b'x' * 5000, FORM)
    assert status == 413
    # a query string is ignored; a POST with it still works
    assert endpoint.request('POST', f'/u/{token}?utm=1', ONE_CLICK, FORM)[0] == 200
    assert len(stored(endpoint)[0]) == 1


def raw(endpoint: Endpoint, request: str, size: int = 100) -> bytes:
    """Send ``request`` as it is over TLS; the first octets of the answer (at most ``size``, one read)."""
    context = client_context(endpoint.pki)
    plain = socket.create_connection(('127.0.0.1', endpoint.port), timeout=10)
    with plain, context.wrap_socket(plain, server_hostname='127.0.0.1') as tls:
        tls.sendall(request.encode('latin-1'))
        return tls.recv(size)


@pytest.mark.parametrize('space', [' ', '\x1c', '\x1f', '\x85', '\xa0'])
def test_http_0_9_is_refused_with_our_headers(endpoint: Endpoint, space: str) -> None:
    """A request line without a version got the page alone, without a status line or headers (no CSP, no-store).
    The standard library splits the line at more than ASCII white space: `GET\\x1c/u/<token>` is HTTP/0.9 too."""
    answer = raw(endpoint, f'GET{space}/u/{endpoint.token()}\r\n\r\n', 4096)
    assert answer.startswith(b'HTTP/1.1 505 HTTP Version Not Supported\r\n')
    assert b"\r\nContent-Security-Policy: default-src 'none'" in answer
    assert b'\r\nCache-Control: no-store\r\n' in answer
    assert endpoint.server.counts['confirm'] == 0


def test_the_server_header_has_no_trailing_space(endpoint: Endpoint) -> None:
    """Seen with curl -i: ``Server: mailinfra-unsubscribe `` (the standard library's empty sys_version)."""
    answer = raw(endpoint, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    assert answer.startswith(b'HTTP/1.1 404 Not Found\r\nServer: mailinfra-unsubscribe\r\n')


def test_a_large_body_sent_before_reading_gets_its_413(endpoint: Endpoint) -> None:
    """Python's http.client sends the whole body before it reads the answer: the server closed after reading
    DRAIN octets, and the kernel's reset of a socket with unread input destroyed the 413 (RemoteDisconnected or
    SSLEOFError in most tries). The answer is now followed by a lingering close."""
    for _ in range(5):
        assert endpoint.request('POST', f'/u/{endpoint.token()}', b'x' * 500_000, FORM)[0] == 413


def test_expect_100_continue_with_a_body_too_large_is_refused_before_it_is_sent(endpoint: Endpoint) -> None:
    """RFC 9110 §10.1.1: a final status known from the headers is sent at once; curl then sends no body."""
    head = f'POST /u/{endpoint.token()} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n'
    assert raw(endpoint, head).startswith(b'HTTP/1.1 413 ')
    small = head.replace('1000000', str(len(ONE_CLICK)))
    assert raw(endpoint, small).startswith(b'HTTP/1.1 100 Continue\r\n')


def raw_post(endpoint: Endpoint, recipient: str, framing: str, version: str = 'HTTP/1.1') -> bytes:
    """A POST whose framing headers and body are ``framing`` as it is; the first octets of the answer."""
    return raw(
        endpoint,
        f'POST /u/{endpoint.token(recipient)} {version}\r\nHost: x\r\n'
        f'Content-Type: application/x-www-form-urlencoded\r\n{framing}',
    )


def test_chunked_bodies_are_read(endpoint: Endpoint) -> None:
    """RFC 9112 §7: an HTTP/1.1 recipient must parse chunked bodies (chunk extensions and trailers included)."""
    chunked = 'Transfer-Encoding: chunked\r\n\r\n'
    assert raw_post(endpoint, 'one@example.net', f'{chunked}1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n').startswith(
        b'HTTP/1.1 200'
    )
    split = f'{chunked}5;ext=1\r\nList-\r\n15\r\nUnsubscribe=One-Click\r\n0\r\nX-Trailer: 1\r\n\r\n'
    assert raw_post(endpoint, 'two@example.net', split).startswith(b'HTTP/1.1 200')
    assert sorted(e.recipient for e in stored(endpoint)[0]) == ['one@example.net', 'two@example.net']


@pytest.mark.parametrize(
    ('framing', 'status'),
    [
        # Transfer-Encoding with Content-Length, in HTTP/1.0, or not ending in chunked: unknown length (RFC 9112 §6)
        ('Transfer-Encoding: chunked\r\nContent-Length: 26\r\n\r\n1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 400),
        ('Transfer-Encoding: identity\r\n\r\nList-Unsubscribe=One-Click', 400),
        ('Transfer-Encoding: gzip, chunked\r\n\r\n1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 501),
        ('Transfer-Encoding: chunked\r\n\r\nzz\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 400),
        ('Transfer-Encoding: chunked\r\n\r\n1a\r\nList-Unsubscribe=One-ClickXX0\r\n\r\n', 400),
        ('Transfer-Encoding: chunked\r\n\r\n' + '1000\r\n' + 'a' * 4096 + '\r\n' + '1\r\na\r\n0\r\n\r\n', 413),
        ('Transfer-Encoding: chunked\r\n\r\nffffff\r\nabc', 413),
        # chunked twice is a framing error, not an unknown coding; a chunk-size line is hex digits (RFC 9112 §7.1)
        ('Transfer-Encoding: chunked, chunked\r\n\r\n1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 400),
        ('Transfer-Encoding: chunked\r\n\r\n 1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 400),
        ('Transfer-Encoding: chunked\r\n\r\n\x0b1a\x0c\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n', 400),
        # a length int() cannot read (over 4,300 digits) was a traceback and no answer; the body is drained first
        ('Content-Length: ' + '9' * 4400 + '\r\n\r\n' + 'a' * 65536, 413),
        # two lengths: which one a proxy in front used is unknown (request smuggling)
        ('Content-Length: 26\r\nContent-Length: 5\r\n\r\nList-Unsubscribe=One-Click', 400),
        ('Content-Length: 26, 5\r\n\r\nList-Unsubscribe=One-Click', 400),
    ],
)
def test_ambiguous_or_bad_framing_is_refused(endpoint: Endpoint, framing: str, status: int) -> None:
    assert raw_post(endpoint, 'framing@example.net', framing).startswith(f'HTTP/1.1 {status}'.encode())
    assert stored(endpoint) == ([], [])


def test_framing_that_is_not_ambiguous(endpoint: Endpoint) -> None:
    body = 'List-Unsubscribe=One-Click'
    assert raw_post(endpoint, 'same@example.net', f'Content-Length: 26\r\nContent-Length: 26\r\n\r\n{body}').startswith(
        b'HTTP/1.1 200'
    )
    zeros = f'Content-Length: {"0" * 4400}26\r\n\r\n{body}'  # leading zeros are digits too (RFC 9110 §8.6)
    assert raw_post(endpoint, 'zeros@example.net', zeros).startswith(b'HTTP/1.1 200')
    extension = f'Transfer-Encoding: chunked\r\n\r\n1a \t;a=1\r\n{body}\r\n0\r\n\r\n'
    assert raw_post(endpoint, 'ext@example.net', extension).startswith(b'HTTP/1.1 200')
    assert sorted(e.recipient for e in stored(endpoint)[0]) == [
        'ext@example.net',
        'same@example.net',
        'zeros@example.net',
    ]


def test_chunk_framing_counts_towards_the_body_limit(endpoint: Endpoint) -> None:
    # Tiny chunks with long extensions were read to about 70 MB before the 413 (only data octets counted). Each
    # chunk here costs 1,007 octets with its framing, so the 66th chunk-size line passes the 64 KiB drain limit:
    # the answer comes at once, before the chunk's data (which is never sent; before, the server waited for it).
    chunk = '1;' + 'x' * 1000 + '\r\n'
    answer = raw_post(
        endpoint, 'tiny@example.net', 'Transfer-Encoding: chunked\r\n\r\n' + (chunk + 'a\r\n') * 65 + chunk
    )
    assert answer.startswith(b'HTTP/1.1 413')
    assert stored(endpoint) == ([], [])


def test_chunked_in_http_1_0_is_ambiguous(endpoint: Endpoint) -> None:
    chunked = 'Transfer-Encoding: chunked\r\n\r\n1a\r\nList-Unsubscribe=One-Click\r\n0\r\n\r\n'
    assert raw_post(endpoint, 'old@example.net', chunked, 'HTTP/1.0').startswith(b'HTTP/1.1 400')
    assert stored(endpoint) == ([], [])


def test_the_absolute_form_of_the_request_target_is_accepted(endpoint: Endpoint) -> None:
    """RFC 9112 §3.2.2: a server must accept ``POST https://host/u/<token>`` (clients set up for a proxy send it)."""
    token = endpoint.token('absolute@example.net')
    target = f'https://127.0.0.1:{endpoint.port}/u/{token}'
    context = client_context(endpoint.pki)
    plain = socket.create_connection(('127.0.0.1', endpoint.port), timeout=10)
    with plain, context.wrap_socket(plain, server_hostname='127.0.0.1') as tls:
        tls.sendall(f'GET {target}?utm=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.encode('ascii'))
        page = b''
        while chunk := tls.recv(65536):
            page += chunk
    assert page.startswith(b'HTTP/1.1 200')
    assert f'<form method="post" action="/u/{token}">'.encode('ascii') in page
    body = 'List-Unsubscribe=One-Click'
    request = f'POST {target.upper()[:8]}{target[8:]} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}'
    assert raw(endpoint, request).startswith(b'HTTP/1.1 200')
    assert [e.recipient for e in stored(endpoint)[0]] == ['absolute@example.net']


@pytest.mark.parametrize(
    ('head', 'status'),
    [
        ('HTTP/1.1\r\n', 400),  # RFC 9112 §3.2: an HTTP/1.1 request without Host is refused
        ('HTTP/1.1\r\nHost: a\r\nHost: b\r\n', 400),  # and one with two
        ('HTTP/1.0\r\nHost: a\r\nHost: b\r\n', 400),
        ('HTTP/1.0\r\n', 200),  # HTTP/1.0 had no Host
        ('HTTP/1.1\r\nHost: a\r\n', 200),
    ],
)
def test_the_host_header(endpoint: Endpoint, head: str, status: int) -> None:
    body = 'List-Unsubscribe=One-Click'
    request = f'POST /u/{endpoint.token()} {head}Content-Length: {len(body)}\r\n\r\n{body}'
    assert raw(endpoint, request).startswith(f'HTTP/1.1 {status}'.encode())
    assert len(stored(endpoint)[0]) == (status == 200)


@pytest.mark.parametrize('length', ['\u00b2', '1\u00b9'])  # digits to str.isdigit(), not to int()
def test_a_content_length_of_other_digits_is_a_bad_request(endpoint: Endpoint, length: str) -> None:
    request = (
        f'POST /u/{endpoint.token()} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n'
        'Content-Type: application/x-www-form-urlencoded\r\n\r\nList-Unsubscribe=One-Click'
    )
    assert raw(endpoint, request).startswith(b'HTTP/1.1 400')
    assert stored(endpoint) == ([], [])


def test_rate_limit_per_client(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path), rate_limit=3)
    running = start(path, (key,), pki)
    try:
        token = running.token()
        assert [running.request('GET', f'/u/{token}')[0] for _ in range(3)] == [200, 200, 200]
        status, headers, page = running.request('GET', f'/u/{token}')
        assert status == 429
        assert 1 <= int(headers['retry-after']) <= 20
        assert b'Too many requests' in page
        assert stored(running) == ([], [])
        assert running.server.counts['rate-limited'] == 1
        # headers naming another client change nothing: only the connection's address counts
        forwarded = {'X-Forwarded-For': '198.51.100.7', 'X-Real-IP': '198.51.100.8', 'Forwarded': 'for=198.51.100.9'}
        assert running.request('GET', f'/u/{token}', headers=forwarded)[0] == 429
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_a_valid_tokens_first_post_is_never_rate_limited(tmp_path: Path, pki: Pki) -> None:
    # A provider posts its users' unsubscribes from a few addresses: a busy campaign must not get 429s.
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path), rate_limit=2)
    running = start(path, (key,), pki)
    try:
        tokens = [running.token(f'user{number}@example.com') for number in range(6)]
        assert [running.post(token)[0] for token in tokens] == [200] * 6
        assert len(stored(running)[0]) == 6
        # a repeat of a token, a GET and a forged token take from the client's bucket as before
        assert [running.post(tokens[0])[0], running.request('GET', f'/u/{tokens[1]}')[0]] == [200, 200]
        assert running.post(tokens[2])[0] == 429
        assert running.post(tokens[0][:-4] + 'AAAA')[0] == 429
        assert running.server.counts['rate-limited'] == 2
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_rate_limiter_refills_and_stays_bounded() -> None:
    limiter = RateLimiter(60, max_clients=100)
    assert all(limiter.take('192.0.2.1', 1000.0) == 0 for _ in range(60))
    assert limiter.take('192.0.2.1', 1000.0) == 1
    assert limiter.take('192.0.2.2', 1000.0) == 0  # another client has its own bucket
    assert limiter.take('192.0.2.1', 1001.0) == 0  # a request a second comes back
    assert limiter.take('192.0.2.1', 1001.0) == 1
    slow = RateLimiter(1)
    assert slow.take('192.0.2.1', 0.0) == 0
    assert slow.take('192.0.2.1', 0.0) == 60
    for number in range(1000):
        limiter.take(f'198.51.100.{number % 256}.{number}', 1000.0)
    assert len(limiter) == 100
    # IPv6 clients are limited per /64, IPv4-mapped addresses as IPv4
    assert client_key('2001:db8:1:2:3:4:5:6') == client_key('2001:db8:1:2::9') == '2001:db8:1:2::/64'
    assert client_key('2001:db8:1:3::1') != client_key('2001:db8:1:2::1')
    assert client_key('::ffff:192.0.2.7') == '192.0.2.7'
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_one_click_body_parsing() -> None:
    assert one_click_body('application/x-www-form-urlencoded', ONE_CLICK)
    assert one_click_body(None, ONE_CLICK)
    assert one_click_body('application/x-www-form-urlencoded; charset=utf-8', b'List-Unsubscribe=One-Click')
    assert one_click_body(None, b'z=1&List%2DUnsubscribe=One%2dClick&a=')
    # a trailing line break (curl --data-binary @file, a hand-written client) is no part of the value
    assert one_click_body(None, ONE_CLICK + b'\r\n') and one_click_body(None, ONE_CLICK + b'\n')
    assert not one_click_body(None, b'List-Unsubscribe=One+Click')
    assert not one_click_body(None, b'List-Unsubscribe=One-Click\r\nx')
    assert not one_click_body('application/x-www-form-urlencoded', b'List-Unsubscribe=One-Click&List-Unsubscribe=x')
    assert not one_click_body('application/x-www-form-urlencoded', b'\xff\xfe')
    assert not one_click_body('text/plain', ONE_CLICK)
    assert not one_click_body(
        'multipart/form-data; boundary=b',
        b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nOne-Click\r\n--b--\r\n',
    )
    assert not one_click_body('multipart/form-data', b'garbage')
    # the standard library's header parser raises IndexError on a parameter name ending in '*' without a value
    assert not one_click_body('multipart/form-data; boundary*', b'x')
    assert not one_click_body('multipart/form-data; boundary=b; a*', b'--b\r\n\r\nx\r\n--b--\r\n')


# --- slow and idle clients -----------------------------------------------------------------------------------------


def test_a_client_that_never_finishes_is_cut_off_and_does_not_block_others(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    # reads may wait 5 s, a connection lasts 2 s at most: only the deadline can end the trickling client
    running = start(path, (key,), pki, io_timeout=5, deadline=2)
    try:
        idle = socket.create_connection(('127.0.0.1', running.port), timeout=5)  # no TLS handshake at all
        context = client_context(pki)
        trickle = context.wrap_socket(
            socket.create_connection(('127.0.0.1', running.port), timeout=5), server_hostname='127.0.0.1'
        )
        began = time.monotonic()
        assert running.request('GET', f'/u/{running.token()}')[0] == 200  # served meanwhile
        assert time.monotonic() - began < 1.5  # a handshake in accept() would have waited for the idle client
        # the trickling client sends a header line every 0.3 s: never idle long, but the deadline ends it
        trickle.sendall(b'GET /u/x HTTP/1.1\r\n')
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            for _ in range(20):
                trickle.sendall(b'X-Slow: 1\r\n')
                time.sleep(0.3)
            pytest.fail('still connected')  # pragma: no cover
        assert idle.recv(10) == b''  # closed by the server, handshake never started
        assert time.monotonic() - began < 4  # by the 2 s deadline, not the 5 s read timeout
        idle.close()
        trickle.close()
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_connections_beyond_the_limit_are_closed(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    running = start(path, (key,), pki, max_connections=2, io_timeout=3, deadline=3)
    try:
        held = [socket.create_connection(('127.0.0.1', running.port), timeout=5) for _ in range(2)]
        time.sleep(0.3)
        extra = socket.create_connection(('127.0.0.1', running.port), timeout=5)
        assert extra.recv(10) == b''
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert running.request('GET', f'/u/{running.token()}')[0] == 200
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_one_client_cannot_take_every_connection(tmp_path: Path, pki: Pki) -> None:
    """A slowloris client from one address gets max_client_connections; another address is still served."""
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    running = start(path, (key,), pki, max_connections=8, max_client_connections=2, io_timeout=10, deadline=10)
    try:
        held = [socket.create_connection(('127.0.0.1', running.port), timeout=5) for _ in range(2)]
        time.sleep(0.3)
        extra = socket.create_connection(('127.0.0.1', running.port), timeout=5)
        assert extra.recv(10) == b''  # closed at once, not at the 10 s deadline
        extra.close()
        other = http.client.HTTPSConnection(
            '127.0.0.1', running.port, timeout=5, context=client_context(pki), source_address=('127.0.0.2', 0)
        )
        other.request('GET', f'/u/{running.token()}')
        assert other.getresponse().status == 200
        other.close()
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert running.request('GET', f'/u/{running.token()}')[0] == 200
        for _ in range(100):  # the server's threads end just after their answers
            if not running.server._clients:
                break
            time.sleep(0.05)
        assert not running.server._clients  # every connection given back
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_answered_connections_left_open_give_their_slots_back(tmp_path: Path, pki: Pki) -> None:
    """Every connection lingered after its answer until the client closed: a client that keeps its answered
    connections open held all its max_client_connections slots, and its next connection was refused. A request
    read to its end is now closed at once; only one with input unread lingers."""
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    running = start(path, (key,), pki, max_connections=8, max_client_connections=2, io_timeout=10, deadline=10)
    context = client_context(pki)
    held = []
    try:
        for _ in range(2):
            plain = socket.create_connection(('127.0.0.1', running.port), timeout=10)
            tls = context.wrap_socket(plain, server_hostname='127.0.0.1')
            held.append(tls)
            tls.sendall(f'GET /u/{running.token()} HTTP/1.1\r\nHost: x\r\n\r\n'.encode())
            answer = b''
            while chunk := tls.recv(65536):  # until the server ends its side; ours stays open
                answer += chunk
            assert answer.startswith(b'HTTP/1.1 200 OK\r\n')
        for _ in range(100):  # the server's threads end just after their answers
            if not running.server._clients:
                break
            time.sleep(0.05)
        assert running.request('GET', f'/u/{running.token()}')[0] == 200
    finally:
        for sock in held:
            sock.close()
        running.server.shutdown()
        running.server.server_close()


def test_a_lingering_close_ends_when_the_client_is_silent(tmp_path: Path, pki: Pki) -> None:
    """After a 413 the server lingers, but a client that then keeps its connection open and sends nothing holds its
    slot for LINGER_WAIT (2 s), not for the read timeout and deadline (30 s here)."""
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    running = start(path, (key,), pki, max_connections=8, max_client_connections=1, io_timeout=30, deadline=30)
    plain = socket.create_connection(('127.0.0.1', running.port), timeout=10)
    try:
        with client_context(pki).wrap_socket(plain, server_hostname='127.0.0.1') as tls:
            head = f'POST /u/{running.token()} HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n'
            tls.sendall(head.encode() + b'x' * (MAX_BODY + 1))
            assert tls.recv(100).startswith(b'HTTP/1.1 413 ')
            for _ in range(200):  # the linger's read gives up after LINGER_WAIT; our side stays open
                if not running.server._clients:
                    break
                time.sleep(0.05)
            assert running.request('GET', f'/u/{running.token()}')[0] == 200
    finally:
        plain.close()
        running.server.shutdown()
        running.server.server_close()


# --- TLS -----------------------------------------------------------------------------------------------------------


def test_tls_below_1_2_is_refused_and_a_renewed_certificate_is_loaded(tmp_path: Path, pki: Pki) -> None:
    directory = tmp_path / 'pki'
    shutil.copytree(pki.directory, directory)
    moved = Pki(directory / 'ca.pem', directory / 'server.pem', directory / 'server.key', directory)
    path, key = write_contract(tmp_path, moved, sqlite_store(tmp_path))
    running = start(path, (key,), moved)
    try:
        # openssl s_client at security level 0 offers TLS 1.1 (it negotiates it with a server that allows it)
        def s_client(version: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ['openssl', 's_client', '-connect', f'127.0.0.1:{running.port}', version, *S_CLIENT, str(moved.ca)],
                input='',
                capture_output=True,
                text=True,
                timeout=30,
            )

        assert s_client('-tls1_1').returncode != 0
        accepted = s_client('-tls1_2')
        assert accepted.returncode == 0 and 'Protocol  : TLSv1.2' in accepted.stdout

        def serial() -> str:
            plain = socket.create_connection(('127.0.0.1', running.port), timeout=5)
            with plain, client_context(moved).wrap_socket(plain, server_hostname='127.0.0.1') as tls:
                der = tls.getpeercert(binary_form=True)
            assert der is not None
            return ssl.DER_cert_to_PEM_cert(der)

        first = serial()
        certificate, new_key_file = make_server_certificate(directory, 'renewed')
        os.replace(new_key_file, directory / 'server.key')
        os.replace(certificate, directory / 'server.pem')
        assert serial() != first
        assert running.request('GET', f'/u/{running.token()}')[0] == 200
    finally:
        running.server.shutdown()
        running.server.server_close()


# --- the store -----------------------------------------------------------------------------------------------------


def test_a_store_outage_answers_503_and_the_retry_succeeds(postgres_server: Postgres, tmp_path: Path, pki: Pki) -> None:
    with connect(postgres_server.store('postgres')) as admin:
        admin.execute('CREATE DATABASE unsubscribe')
    store = postgres_server.store('unsubscribe')
    with connect(store) as db:
        migrate(db)
    path, key = write_contract(tmp_path, pki, store)
    running = start(path, (key,), pki)
    try:
        assert running.post(running.token('first@example.net'))[0] == 200
        token = running.token('second@example.net')
        postgres_server.stop()
        status, headers, page = running.post(token)
        assert status == 503
        assert int(headers['retry-after']) > 0
        assert b'try again later' in page
        assert running.request('GET', f'/u/{token}')[0] == 200  # the page needs no store
        postgres_server.start()
        assert running.post(token)[0] == 200
        found, suppressions = stored(running)
        assert sorted(e.recipient for e in found) == ['first@example.net', 'second@example.net']
        assert ('marketing', 'second@example.net', 'unsubscribe') in suppressions
        assert running.post(token)[0] == 200
        assert len(stored(running)[0]) == 2
    finally:
        running.server.shutdown()
        running.server.server_close()


def test_an_unmigrated_store_is_an_outage_too(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki)  # the SQLite file is created empty, without tables
    running = start(path, (key,), pki)
    try:
        assert running.post(running.token())[0] == 503
        with running.db() as db:
            migrate(db)
        assert running.post(running.token())[0] == 200
    finally:
        running.server.shutdown()
        running.server.server_close()


# --- logs, curl and the command -------------------------------------------------------------------------------------


def test_the_log_never_shows_a_token_or_an_address(endpoint: Endpoint, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = endpoint.token('secret.reader@example.net')
    expired = endpoint.token('secret.reader@example.net', age=365 * DAY)
    endpoint.request('GET', f'/u/{token}')
    endpoint.post(token)
    endpoint.post(token)
    endpoint.post(expired)
    endpoint.request('GET', f'/u/{token}' + 'x' * 3000)
    endpoint.request('PUT', f'/u/{token}')
    assert raw(endpoint, f'GET /u/{token} HTTP/9.9\r\n\r\n').startswith(b'HTTP/1.1 505')
    assert raw(endpoint, f'GET /u/{token} junk HTTP/1.1\r\n\r\n').startswith(b'HTTP/1.1 400')
    text = caplog.text
    assert 'unsubscribe: accepted POST status=200' in text
    assert 'unsubscribe: duplicate POST status=200' in text
    assert 'unsubscribe: expired POST status=410' in text
    assert 'unsubscribe: confirm GET status=200' in text
    for secret_text in (token, expired, token[:20], 'secret.reader', '127.0.0.1'):
        assert secret_text not in text


def test_curl_gets_the_page_and_posts_like_a_mailbox_provider(endpoint: Endpoint) -> None:
    token = endpoint.token('curl@example.net')
    url = f'https://127.0.0.1:{endpoint.port}/u/{token}'
    curl = ['curl', '--silent', '--show-error', '--fail', '--cacert', str(endpoint.pki.ca)]
    page = subprocess.run(
        [*curl, url],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert f'action="/u/{token}"' in page
    assert stored(endpoint) == ([], [])
    posted = subprocess.run(
        [*curl, '--tlsv1.2', '--data', 'List-Unsubscribe=One-Click', '-w', '%{http_code}', '-o', '/dev/null', url],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    assert posted == '200'
    assert [e.recipient for e in stored(endpoint)[0]] == ['curl@example.net']


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def test_the_command_serves_until_sigterm_and_logs_no_token(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    port = _free_port()
    command = [sys.executable, '-m', 'mailinfra_agent', 'unsubscribe', 'serve', '--contract', str(path)]
    process = subprocess.Popen(
        [*command, '--listen', f'127.0.0.1:{port}'], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        contract = load_contract(path)
        running = Client(port, contract, (key,), pki)
        token = running.token('command@example.net')
        for _ in range(100):
            try:
                status = running.post(token)[0]
                break
            except (ConnectionRefusedError, ssl.SSLError):
                time.sleep(0.1)
        else:
            pytest.fail('the command did not start serving')
        assert status == 200
        process.terminate()
        _, errors = process.communicate(timeout=10)
    finally:
        process.kill() if process.poll() is None else None
    assert process.returncode == 0, errors
    assert f'serving https on 127.0.0.1:{port}' in errors
    assert 'accepted POST status=200' in errors
    assert token not in errors and 'command@example.net' not in errors
    assert [e.recipient for e in stored(running)[0]] == ['command@example.net']


def test_the_command_refuses_unusable_settings(tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main

    disabled, _ = write_contract(tmp_path, pki, enabled=False)
    assert main(['unsubscribe', 'serve', '--contract', str(disabled)]) == 2
    assert 'unsubscribe.enabled is false' in capsys.readouterr().err
    enabled, _ = write_contract(tmp_path, pki)
    assert main(['unsubscribe', 'serve', '--contract', str(enabled), '--listen', 'nonsense']) == 64
    data = json.loads(enabled.read_text(encoding='utf-8'))
    data['unsubscribe']['tls_key_file'] = str(tmp_path / 'missing.key')
    enabled.write_text(json.dumps(data), encoding='utf-8')
    assert main(['unsubscribe', 'serve', '--contract', str(enabled), '--listen', '127.0.0.1:0']) == 2
    assert 'cannot serve' in capsys.readouterr().err
    (tmp_path / 'signing.key').chmod(0o644)
    assert main(['unsubscribe', 'serve', '--contract', str(enabled), '--listen', '127.0.0.1:0']) == 2
    assert 'signing.key' in capsys.readouterr().err


def test_plain_http_behind_a_proxy(tmp_path: Path, pki: Pki) -> None:
    path, key = write_contract(tmp_path, pki, sqlite_store(tmp_path))
    contract = load_contract(path)
    assert contract.retention.hash_key_file is not None
    hash_key = Path(contract.retention.hash_key_file).read_bytes().strip()
    server = make_server(('127.0.0.1', 0), Unsubscriber.from_contract(contract, (key,), hash_key), 100, None)
    threading.Thread(target=server.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True).start()
    try:
        token = make_token('plain@example.net', 'marketing', (key,), time.time())
        connection = http.client.HTTPConnection('127.0.0.1', int(server.server_address[1]), timeout=10)
        connection.request('POST', f'/u/{token}', body=ONE_CLICK, headers=FORM)
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader('Strict-Transport-Security') is None  # HSTS only over TLS
        connection.close()
        client = Client(0, contract, (key,), pki)
        assert [e.recipient for e in stored(client)[0]] == ['plain@example.net']
    finally:
        server.shutdown()
        server.server_close()


def test_behind_a_proxy_the_per_client_cap_is_not_the_total(endpoint: Endpoint) -> None:
    # Without TLS every connection comes from the TLS-terminating proxy: 16 "per client" capped them all.
    plain = make_server(('127.0.0.1', 0), endpoint.server.unsubscriber, 60, None)
    tls = make_server(('127.0.0.1', 0), endpoint.server.unsubscriber, 60, endpoint.server.tls)
    try:
        assert plain.max_client_connections == plain.max_connections == MAX_CONNECTIONS
        assert tls.max_client_connections == MAX_CLIENT_CONNECTIONS < MAX_CONNECTIONS
    finally:
        plain.server_close()
        tls.server_close()
