"""The suppression webhook against a real HTTP server on 127.0.0.1 that refuses the first attempts: signed
bodies, exponential back-off, an outbox that survives a restart, and giving up after the contract's retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mailinfra_agent.store import Database, connect_sqlite, migrate
from mailinfra_agent.suppression import SuppressionList
from mailinfra_agent.suppression.webhook import SIGNATURE_HEADER, backoff, deliver, pending, sign, verify

KEY = b'hash-key'
SECRET = b'webhook-secret'
T0 = 1_780_000_000


class Receiver:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[bytes, str]] = []
        self.accepted: list[dict[str, object]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers['Content-Length']))
                receiver.requests.append((body, self.headers.get(SIGNATURE_HEADER, '')))
                if len(receiver.requests) <= receiver.failures:
                    self.send_response(503)
                else:
                    receiver.accepted.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_address[1]}/hook'
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    server = Receiver(getattr(request, 'param', 2))
    yield server
    server.close()


def open_db(path: Path) -> Database:
    db = connect_sqlite(path)
    migrate(db)
    return db


@pytest.mark.parametrize('receiver', [2], indirect=True)
def test_retries_with_backoff_and_survives_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    with open_db(tmp_path / 'agent.db') as db:
        SuppressionList(db, KEY, webhook=True).add('marketing', 'gone@example.net', 'hard-bounce', 'k1', created=T0)
        first = deliver(db, receiver.url, SECRET, now=T0)
        assert (first.delivered, first.retried) == (0, 1)
        assert 'attempt 1 of 8: HTTP 503' in first.errors[0]
        early = deliver(db, receiver.url, SECRET, now=T0 + backoff(1) - 1)  # not due yet: nothing is sent
        assert (early.delivered, early.retried, len(receiver.requests)) == (0, 0, 1)
    # A restart: a new connection, the same database.
    with open_db(tmp_path / 'agent.db') as db:
        second = deliver(db, receiver.url, SECRET, now=T0 + backoff(1))
        assert second.retried == 1
        assert deliver(db, receiver.url, SECRET, now=T0 + backoff(1) + backoff(2) - 1).delivered == 0
        third = deliver(db, receiver.url, SECRET, now=T0 + backoff(1) + backoff(2))
        assert third.delivered == 1
        assert pending(db) == (0, 0)
        assert deliver(db, receiver.url, SECRET, now=T0 + 10**6).delivered == 0  # delivered once only
    assert len(receiver.requests) == 3
    assert receiver.accepted[0]['address'] == 'gone@example.net'
    assert receiver.accepted[0]['reason'] == 'hard-bounce'
    body, signature = receiver.requests[-1]
    sent_at = T0 + backoff(1) + backoff(2)
    assert verify(SECRET, body, signature, now=sent_at)
    assert not verify(b'another secret', body, signature, now=sent_at)
    assert not verify(SECRET, body.replace(b'gone', b'gona'), signature, now=sent_at)
    assert not verify(SECRET, body, signature, now=sent_at + 3600)  # a replay an hour later


def test_backoff_doubles_up_to_a_ceiling() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(40) == 6 * 3600


@pytest.mark.parametrize('receiver', [100], indirect=True)
def test_gives_up_after_the_retries_and_keeps_the_row(tmp_path: Path, receiver: Receiver) -> None:
    with open_db(tmp_path / 'agent.db') as db:
        SuppressionList(db, KEY, webhook=True).add('marketing', 'a@example.net', 'complaint', 'k', created=T0)
        moment = T0
        for attempt in range(1, 4):
            result = deliver(db, receiver.url, SECRET, retries=3, now=moment)
            moment += backoff(attempt)
        assert result.failed == 1
        assert pending(db) == (0, 1)
        assert deliver(db, receiver.url, SECRET, retries=3, now=moment + 10**6).retried == 0
    assert len(receiver.requests) == 3


def test_an_unreachable_receiver_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with open_db(tmp_path / 'agent.db') as db:
        SuppressionList(db, KEY, webhook=True).add('marketing', 'a@example.net', 'complaint', 'k', created=T0)
        result = deliver(db, 'http://127.0.0.1:9/hook', SECRET, now=T0, timeout=2)
        assert result.retried == 1 and 'cannot connect' in result.errors[0]
        assert pending(db) == (1, 0)


def test_no_webhook_no_outbox_and_no_duplicate_rows(tmp_path: Path) -> None:
    with open_db(tmp_path / 'agent.db') as db:
        SuppressionList(db, KEY).add('marketing', 'a@example.net', 'complaint', 'k', created=T0)
        assert pending(db) == (0, 0)
        hooked = SuppressionList(db, KEY, webhook=True)
        hooked.add('cold', 'a@example.net', 'complaint', 'k', created=T0)
        hooked.add('cold', 'a@example.net', 'complaint', 'k', created=T0)
        assert pending(db) == (1, 0)


def test_signature_format() -> None:
    assert sign(SECRET, b'{}', 1) == sign(SECRET, b'{}', 1)
    assert sign(SECRET, b'{}', 1).startswith('t=1,v1=')
    assert not verify(SECRET, b'{}', 'garbage', now=1)
