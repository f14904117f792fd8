"""The suppression gate in front of PowerMTA, with real sockets on loopback.

Upstream of the gate runs a small recording SMTP server, ``StandIn``: a STAND-IN, NOT PowerMTA (PowerMTA is licensed
and not run in CI). It accepts everything and records, per session, the client's address, the commands and the
message. What these tests prove: the gate's own replies, what reaches the MTA and from which loopback address. What
they cannot prove: that the real PowerMTA maps ``<source 127.0.0.N>`` to the stream's pool (docs/powermta.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import smtplib
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.store import Database, connect_sqlite, migrate
from mailinfra_agent.suppression import SuppressionList
from mailinfra_agent.suppression.gate import MAX_COMMAND, MAX_ERRORS, Gate, StreamGate, _Lookups

KEY = b'gate-test-key-of-at-least-32-characters'
MARKETING = StreamGate('marketing', 0, '127.0.0.3')
TRANSACTIONAL = StreamGate('transactional', 0, '127.0.0.2')


@dataclass
class Session:
    peer: str
    commands: list[str] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    cr_line_ends: int = 0
    """Message lines ended by a bare CR, as an MTA that took CR for a line end would see them."""


class _StandInHandler(socketserver.StreamRequestHandler):
    server: StandIn

    def handle(self) -> None:
        session = Session(self.client_address[0])
        self.server.sessions.append(session)
        self.wfile.write(b'220 standin.test ESMTP STAND-IN, NOT PowerMTA\r\n')
        while line := self.rfile.readline():
            command = line.decode().rstrip('\r\n')
            session.commands.append(command)
            verb = command.split(' ', 1)[0].upper()
            if verb == 'EHLO':
                self.wfile.write(
                    b'250-standin.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n'
                    b'250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n'
                )
            elif verb == 'DATA':
                self.wfile.write(b'354 go ahead\r\n')
                body = b''
                while (data := self.rfile.readline()) not in (b'.\r\n', b''):
                    body += data
                    # an MTA that ends lines at a bare CR too would see these lines (and maybe a "." among them)
                    session.cr_line_ends += len(re.findall(rb'\r(?!\n)', data))
                if not data:
                    return  # the connection closed inside DATA: no message
                session.messages.append(body)
                self.wfile.write(b'250 2.0.0 queued by the stand-in\r\n')
            elif verb == 'QUIT':
                self.wfile.write(b'221 2.0.0 bye\r\n')
                return
            else:
                self.wfile.write(b'250 2.0.0 ok\r\n')


class StandIn(socketserver.ThreadingTCPServer):
    """A recording SMTP sink standing in for PowerMTA's loopback listener. NOT PowerMTA."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), _StandInHandler)
        self.sessions: list[Session] = []


@dataclass
class Running:
    gate: Gate
    standin: StandIn
    ports: dict[str, int]
    store: dict[str, Path]
    suppressions: SuppressionList


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        yield database


LOOPBACK = (ipaddress.ip_network('127.0.0.0/8'),)


@pytest.fixture
def running(tmp_path: Path, db: Database) -> Iterator[Running]:
    with serving(tmp_path, db, LOOPBACK) as gate:
        yield gate


@contextlib.contextmanager
def serving(tmp_path: Path, db: Database, networks: tuple[Any, ...], **limits: Any) -> Iterator[Running]:
    standin = StandIn()
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    ports = {'marketing': free_port(), 'transactional': free_port()}
    streams = [StreamGate(s.name, ports[s.name], s.source, networks) for s in (MARKETING, TRANSACTIONAL)]
    store = {'path': tmp_path / 'agent.db'}
    gate = Gate(
        streams,
        ('127.0.0.1', standin.server_address[1]),
        lambda: connect_sqlite(store['path']),
        KEY,
        hostname='gate.example.test',
        listen_address='127.0.0.1',
        **limits,
    )
    loop = asyncio.new_event_loop()
    loop.run_until_complete(gate.start())
    serving = loop.create_task(gate.serve_forever())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield Running(gate, standin, ports, store, SuppressionList(db, KEY))
    finally:

        async def stop() -> None:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        standin.shutdown()
        standin.server_close()


@contextlib.contextmanager
def gate_process(command: list[str], standin: StandIn) -> Iterator[subprocess.Popen[str]]:
    """``mailinfra-agent suppression gate`` (``command``, upstream ``standin``) until the block ends."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=20)
        standin.shutdown()
        standin.server_close()


def client(port: int) -> smtplib.SMTP:
    return smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20)


def test_a_suppressed_recipient_is_refused_and_the_others_reach_the_mta_from_the_streams_address(
    running: Running,
) -> None:
    running.suppressions.add('marketing', 'gone@example.net', 'hard-bounce', 'k1')
    with client(running.ports['marketing']) as smtp:
        smtp.ehlo()
        assert smtp.mail('news@example.com')[0] == 250
        code, text = smtp.rcpt('Gone@Example.NET')
        assert (code, text.decode()) == (
            550,
            '5.7.1 <Gone@Example.NET>: Recipient address rejected: suppressed by mailinfra (hard-bounce)',
        )
        assert smtp.rcpt('kept@example.net')[0] == 250
        code, text = smtp.data(b'Subject: hi\r\n\r\n.a line smtplib dot-stuffs\r\nbye\r\n')
        assert (code, text) == (250, b'2.0.0 queued by the stand-in')
    [session] = running.standin.sessions
    assert session.peer == '127.0.0.3'  # the marketing stream's loopback source
    assert [command.upper() for command in session.commands] == [
        'EHLO APP.EXAMPLE.TEST',
        'MAIL FROM:<NEWS@EXAMPLE.COM>',
        'RCPT TO:<KEPT@EXAMPLE.NET>',
        'DATA',
        'QUIT',
    ]
    assert session.messages == [b'Subject: hi\r\n\r\n..a line smtplib dot-stuffs\r\nbye\r\n']  # relayed as sent
    assert running.gate.counters.suppressed == 1
    assert running.gate.counters.relayed_recipients == 1


def test_the_port_chooses_the_stream_and_its_suppressions(running: Running) -> None:
    running.suppressions.add('marketing', 'gone@example.net', 'complaint', 'k1')
    running.suppressions.add('*', 'everywhere@example.net', 'unsubscribe', 'k2')
    with client(running.ports['transactional']) as smtp:
        smtp.ehlo()
        smtp.mail('receipts@example.com')
        assert smtp.rcpt('gone@example.net')[0] == 250  # suppressed in marketing only
        code, text = smtp.rcpt('everywhere@example.net')
        assert code == 550
        assert text.endswith(b'suppressed by mailinfra (unsubscribe)')
    assert [session.peer for session in running.standin.sessions] == ['127.0.0.2']


def test_ehlo_offers_only_what_the_gate_relays(running: Running) -> None:
    with client(running.ports['marketing']) as smtp:
        code, text = smtp.ehlo()
        assert code == 250
        assert text.decode().splitlines() == ['gate.example.test', 'SIZE 10240000', '8BITMIME', 'ENHANCEDSTATUSCODES']
        assert smtp.docmd('STARTTLS')[0] == 502
        assert smtp.docmd('AUTH', 'PLAIN AGFAAGI=')[0] == 502
    assert not any(c.upper().startswith(('STARTTLS', 'AUTH')) for c in running.standin.sessions[0].commands)


def test_a_suppression_added_while_running_applies_to_the_next_rcpt(running: Running) -> None:
    with client(running.ports['marketing']) as smtp:
        smtp.ehlo()
        smtp.mail('news@example.com')
        assert smtp.rcpt('later@example.net')[0] == 250
        running.suppressions.add('marketing', 'later@example.net', 'complaint', 'k3')
        assert smtp.rcpt('later@example.net')[0] == 550
        running.suppressions.remove('marketing', 'later@example.net')
        assert smtp.rcpt('later@example.net')[0] == 250


def test_an_unreadable_store_defers_and_nothing_slips_through(running: Running, tmp_path: Path) -> None:
    running.suppressions.add('marketing', 'gone@example.net', 'hard-bounce', 'k1')
    running.store['path'] = tmp_path / 'no-such-dir' / 'agent.db'
    with client(running.ports['marketing']) as smtp:
        smtp.ehlo()
        smtp.mail('news@example.com')
        code, text = smtp.rcpt('gone@example.net')
        assert (code, text.decode()) == (
            450,
            '4.3.0 <gone@example.net>: Recipient address rejected: suppression list unavailable, try again later',
        )
        assert smtp.rcpt('kept@example.net')[0] == 450
    assert running.gate.counters.deferred == 2
    running.store['path'] = tmp_path / 'agent.db'
    with client(running.ports['marketing']) as smtp:
        smtp.ehlo()
        smtp.mail('news@example.com')
        assert smtp.rcpt('gone@example.net')[0] == 550
        assert smtp.rcpt('kept@example.net')[0] == 250
    assert not any('gone@' in command for session in running.standin.sessions for command in session.commands)


def raw_session(port: int) -> tuple[socket.socket, BufferedReader]:
    sock = socket.create_connection(('127.0.0.1', port), timeout=20)
    replies = sock.makefile('rb')
    assert replies.readline().startswith(b'220 gate.example.test')
    return sock, replies


def test_bad_input_is_answered_counted_and_the_session_goes_on(running: Running) -> None:
    sock, replies = raw_session(running.ports['marketing'])
    with sock:
        sock.sendall(b'HELO app.example.test\r\n')
        assert replies.readline().startswith(b'250 ')
        sock.sendall(b'\xff\xfeGARBAGE here\r\n')
        assert replies.readline() == b'500 5.5.2 command not recognised\r\n'
        sock.sendall(b'MAIL FROM:<' + b'x' * (MAX_COMMAND * 2) + b'@example.com>\r\n')
        assert replies.readline() == b'500 5.5.2 line too long\r\n'
        sock.sendall(b'MAIL FROM:<' + b'y' * (2 * 1024 * 1024) + b'>\r\n')  # over the stream buffer too
        assert replies.readline() == b'500 5.5.2 line too long\r\n'
        sock.sendall(b'RCPT TO:\r\n')
        assert replies.readline() == b'501 5.1.3 bad recipient address syntax\r\n'
        sock.sendall(b'MAIL FROM:<news@example.com>\r\nRCPT TO:<kept@example.net>\r\n')
        assert replies.readline() == b'250 2.0.0 ok\r\n'
        assert replies.readline() == b'250 2.0.0 ok\r\n'
    assert running.gate.counters.bad_input == 4
    # the MTA saw none of it; another session is served as usual
    assert running.standin.sessions[0].commands[1:] == ['MAIL FROM:<news@example.com>', 'RCPT TO:<kept@example.net>']
    with client(running.ports['marketing']) as smtp:
        assert smtp.ehlo()[0] == 250


def test_no_unchecked_recipient_hides_in_a_line_or_a_message(running: Running) -> None:
    running.suppressions.add('marketing', 'gone@example.net', 'hard-bounce', 'k1')
    sock, replies = raw_session(running.ports['marketing'])
    with sock:
        sock.sendall(b'EHLO app.example.test\n')  # a bare LF ends a command: relayed with CRLF
        while not replies.readline().startswith(b'250 '):
            pass
        sock.sendall(b'MAIL FROM:<news@example.com>\rRCPT TO:<gone@example.net>\r\n')
        assert replies.readline() == b'500 5.5.2 bare CR or NUL in a command\r\n'
        sock.sendall(b'MAIL FROM:<news@example.com>\r\nRCPT TO:<@relay.example:gone@example.net>\r\n')
        assert replies.readline() == b'250 2.0.0 ok\r\n'
        assert replies.readline().startswith(b'550 5.7.1 <@relay.example:gone@example.net>: ')
        sock.sendall(b'RCPT TO:<kept@example.net>\r\nDATA\r\n')
        assert replies.readline() == b'250 2.0.0 ok\r\n'
        assert replies.readline() == b'354 go ahead\r\n'
        sock.sendall(b'Subject: x\n\nbody\n.\n')  # bare LF, ended by ".\n": the MTA sees CRLF and the same end
        assert replies.readline() == b'250 2.0.0 queued by the stand-in\r\n'
        sock.sendall(b'QUIT\r\n')
        assert replies.readline() == b'221 2.0.0 bye\r\n'
    [session] = running.standin.sessions
    assert session.commands == [
        'EHLO app.example.test',
        'MAIL FROM:<news@example.com>',
        'RCPT TO:<kept@example.net>',
        'DATA',
        'QUIT',
    ]
    assert session.messages == [b'Subject: x\r\n\r\nbody\r\n']


def test_a_session_of_errors_is_closed(running: Running) -> None:
    sock, replies = raw_session(running.ports['transactional'])
    with sock:
        for _ in range(MAX_ERRORS):
            sock.sendall(b'WHAT\r\n')
            assert replies.readline().startswith(b'500 ')
        assert replies.readline() == b'421 4.7.0 too many errors, closing\r\n'
        assert replies.readline() == b''
    assert running.gate.counters.bad_input == MAX_ERRORS


def test_without_the_mta_the_gate_answers_421(tmp_path: Path, db: Database) -> None:
    port = free_port()
    gate = Gate(
        [StreamGate('marketing', port, '127.0.0.3', LOOPBACK)],
        ('127.0.0.1', free_port()),  # nothing listens there
        lambda: connect_sqlite(tmp_path / 'agent.db'),
        KEY,
        hostname='gate.example.test',
        listen_address='127.0.0.1',
    )

    async def once() -> bytes:
        await gate.start()
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        reply = await reader.readline()
        writer.close()
        gate.close()
        return reply

    assert asyncio.run(once()) == b'421 4.3.0 mail system unavailable, try again later\r\n'
    assert gate.counters.upstream_errors == 1


def test_the_command_refuses_bad_arguments_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main
    from tests.agent.test_suppression import write_contract

    contract = str(write_contract(tmp_path))
    base = ['suppression', '--contract', contract, 'gate', '--upstream', '127.0.0.1:10025']
    assert main([*base, '--stream', 'transactional=2525@10.0.0.1']) == 64
    assert 'expected NAME=PORT@127.0.0.N' in capsys.readouterr().err
    assert main([*base, '--stream', 'marketing=2525@127.0.0.2']) == 64
    assert 'stream marketing is not in the contract (cold_outreach, transactional)' in capsys.readouterr().err
    assert main([*base[:-1], 'nowhere', '--stream', 'transactional=2525@127.0.0.2']) == 64
    assert 'expected HOST:PORT' in capsys.readouterr().err
    assert main([*base, '--stream', 'transactional=2525@127.0.0.2', '--allow', 'transactional=10.0.0.300/8']) == 64
    assert 'expected NAME=CIDR' in capsys.readouterr().err
    assert main([*base, '--stream', 'transactional=2525@127.0.0.2', '--allow', 'cold_outreach=10.0.0.0/8']) == 64
    assert 'no --stream cold_outreach' in capsys.readouterr().err
    assert main([*base, '--stream', 'transactional=2525@127.0.0.2', '--max-sessions', '0']) == 64
    assert 'must be positive' in capsys.readouterr().err


def test_the_command_serves_the_gate(tmp_path: Path) -> None:
    from tests.agent.test_suppression import write_contract

    contract = str(write_contract(tmp_path))
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        SuppressionList(database, b'command-test-key').add('*', 'gone@example.net', 'complaint', 'k')
    standin = StandIn()
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    port = free_port()
    command = [sys.executable, '-m', 'mailinfra_agent', 'suppression', '--contract', contract, 'gate']
    command += ['--upstream', f'127.0.0.1:{standin.server_address[1]}', '--stream', f'cold_outreach={port}@127.0.0.4']
    command += [
        '--allow',
        'cold_outreach=127.0.0.0/8',
        '--listen-address',
        '127.0.0.1',
        '--hostname',
        'gate.example.test',
    ]
    with gate_process(command, standin) as process:
        assert process.stdout is not None
        assert process.stdout.readline() == f'suppression gate to 127.0.0.1:{standin.server_address[1]}: ' + (
            f'cold_outreach {port} from 127.0.0.4 for 127.0.0.0/8\n'
        )
        with client(port) as smtp:
            smtp.ehlo()
            smtp.mail('news@example.com')
            assert smtp.rcpt('gone@example.net')[0] == 550
            assert smtp.rcpt('kept@example.net')[0] == 250
        assert [session.peer for session in standin.sessions] == ['127.0.0.4']


@pytest.mark.parametrize('networks', [(), (ipaddress.ip_network('10.0.0.0/8'), ipaddress.ip_network('::1/128'))])
def test_a_client_outside_the_streams_networks_is_refused_at_connect(
    tmp_path: Path, db: Database, networks: tuple[Any, ...]
) -> None:
    with serving(tmp_path, db, networks) as running:
        sock = socket.create_connection(('127.0.0.1', running.ports['marketing']), timeout=20)
        with sock, sock.makefile('rb') as replies:
            assert replies.readline() == b'554 5.7.1 not allowed to inject here\r\n'
            assert replies.readline() == b''
        assert running.standin.sessions == []  # nothing reached the MTA
        assert running.gate.counters.refused_clients == 1


@pytest.mark.parametrize(
    ('recipient', 'stored'),
    [
        ('"alice"@example.com', 'alice@example.com'),
        ('"al\\ice"@example.com', 'alice@example.com'),
        ('alice@example.com.', 'alice@example.com'),
        ('bob@bücher.de', 'bob@xn--bcher-kva.de'),
        ('"Alice"@EXAMPLE.com.', 'alice@example.com'),
        # UTS 46: NFD, the dots U+3002 and U+FF0E, a fullwidth letter; faß.de is xn--fa-hia.de (IDNA 2008)
        ('bob@bu\u0308cher\u3002DE.', 'bob@xn--bcher-kva.de'),
        ('bob@\uff42ücher\uff0ede', 'bob@xn--bcher-kva.de'),
        ('bob@FAß.de', 'bob@xn--fa-hia.de'),
        ('bob@faß.de', 'bob@fass.de'),  # the key before UTS 46 (IDNA 2003), as an old list holds it
    ],
)
def test_a_suppressed_recipient_in_another_spelling_is_refused(running: Running, recipient: str, stored: str) -> None:
    running.suppressions.add('marketing', stored, 'complaint', 'k1')
    sock, replies = raw_session(running.ports['marketing'])
    with sock:
        sock.sendall(b'EHLO app.example.test\r\n')
        while not replies.readline().startswith(b'250 '):
            pass
        sock.sendall(b'MAIL FROM:<news@example.com> SMTPUTF8\r\nRCPT TO:<' + recipient.encode() + b'>\r\n')
        assert replies.readline() == b'250 2.0.0 ok\r\n'
        assert replies.readline().startswith(b'550 5.7.1 <' + recipient.encode() + b'>: ')
    assert not any(c.startswith('RCPT') for c in running.standin.sessions[0].commands)


@pytest.mark.parametrize('recipient', ['"a b"@example.com', 'postmaster', 'x@-bad-.example', 'a..b@example.com'])
def test_a_recipient_that_cannot_be_checked_is_refused_not_relayed(running: Running, recipient: str) -> None:
    sock, replies = raw_session(running.ports['marketing'])
    with sock:
        sock.sendall(b'MAIL FROM:<news@example.com>\r\nRCPT TO:<' + recipient.encode() + b'>\r\n')
        assert replies.readline() == b'250 2.0.0 ok\r\n'
        assert replies.readline().startswith(b'550 5.1.3 <' + recipient.encode() + b'>: ')
    assert not any(c.startswith('RCPT') for c in running.standin.sessions[0].commands)


@pytest.mark.parametrize('message', [b'Subject: x\r\n\r\nbody\r.\rMAIL FROM:<a@b.c>\r\n', b'a\r\rb\r\n', b'a\r'])
def test_a_message_with_a_bare_cr_is_refused_and_never_completed_upstream(running: Running, message: bytes) -> None:
    sock, replies = raw_session(running.ports['marketing'])
    with sock:
        sock.sendall(b'MAIL FROM:<news@example.com>\r\nRCPT TO:<kept@example.net>\r\nDATA\r\n')
        assert [replies.readline() for _ in range(3)] == [b'250 2.0.0 ok\r\n', b'250 2.0.0 ok\r\n', b'354 go ahead\r\n']
        sock.sendall(b'first line\r\n' + message + b'\r\n.\r\n')
        assert replies.readline() == b'550 5.6.11 bare CR in the message, refused\r\n'
        sock.sendall(b'MAIL FROM:<news@example.com>\r\n')
        assert replies.readline() == b'421 4.7.0 closing after a refused message\r\n'
    [session] = running.standin.sessions
    assert session.messages == []  # the final dot never reached the MTA
    assert session.cr_line_ends == 0  # nor did any line with a bare CR
    assert running.gate.counters.bare_cr == 1


def test_the_stand_in_sees_a_bare_cr_line_end() -> None:
    """The stand-in counts what the test above says never reaches it."""
    standin = StandIn()
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    try:
        with smtplib.SMTP('127.0.0.1', standin.server_address[1], timeout=20) as smtp:
            smtp.ehlo()
            smtp.mail('a@example.com')
            smtp.rcpt('b@example.com')
            smtp.data(b'body\r.\rnext\r\n')
        assert standin.sessions[0].cr_line_ends == 2
    finally:
        standin.shutdown()
        standin.server_close()


def test_sessions_over_the_limits_get_421(tmp_path: Path, db: Database) -> None:
    with serving(tmp_path, db, LOOPBACK, max_sessions=2, max_sessions_per_client=1) as running:
        first, first_replies = raw_session(running.ports['marketing'])
        with first:
            with socket.create_connection(('127.0.0.1', running.ports['marketing']), timeout=20) as sock:
                assert sock.makefile('rb').readline() == b'421 4.7.0 too many sessions, try again later\r\n'
            assert running.gate.counters.over_limit == 1
            first.sendall(b'QUIT\r\n')
            assert first_replies.readline() == b'221 2.0.0 bye\r\n'
            assert first_replies.readline() == b''
        with client(running.ports['marketing']) as smtp:  # the closed session no longer counts
            assert smtp.ehlo()[0] == 250


def test_a_session_longer_than_the_maximum_is_closed(tmp_path: Path, db: Database) -> None:
    with serving(tmp_path, db, LOOPBACK, max_session_seconds=0.5) as running:
        sock, replies = raw_session(running.ports['marketing'])
        with sock:
            assert replies.readline() == b'421 4.4.2 session too long, closing\r\n'
            assert replies.readline() == b''


def test_a_session_without_lookups_starts_no_thread(db: Database) -> None:
    lookups = _Lookups(lambda: db, KEY)
    lookups.close()
    assert not lookups._executor._threads
