"""Enforcement at the MTA on Debian's real Postfix: a throw-away instance whose injection listener checks the
suppression map exactly as the role configures it (``-o { smtpd_recipient_restrictions =
check_recipient_access hash:<map> }``). A suppressed recipient gets the 5xx at RCPT TO, another is accepted; a
rewritten map is seen by the next connection without a reload; an unchanged map is not rewritten. The instance
has its own directories, loopback ports and log; it never touches /etc/postfix or a running instance.
"""

from __future__ import annotations

import json
import os
import shutil
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import mailinfra_agent.suppression.policy_service as policy_service
from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.postfix.trial import HARMLESS, free_port, trial
from mailinfra_agent.store import Database, connect_sqlite, migrate
from mailinfra_agent.store.events import events, insert_events
from mailinfra_agent.suppression import SuppressionList, Suppressor, stored_events, write_map
from mailinfra_agent.suppression.policy_service import answer, serve
from tests.agent.ingest_logs import contract_data
from tests.agent.postfix_dsn import BOUNCE_DOMAIN, TEST_KEYS, wait_stopped

KEY = b'postfix-test-key'
STREAM = 'marketing'


def needs_postfix() -> None:
    if os.geteuid() != 0 or shutil.which('postfix') is None or shutil.which('postmap') is None:
        pytest.skip('needs root and Postfix (apt-get install postfix; script/bootstrap does)')


def listener(port: int | str, map_path: Path) -> str:
    # What the role adds to the stream instance's injection listener in master.cf.
    return (
        f'{port} inet n - n - - smtpd\n'
        f'  -o syslog_name=postfix-{STREAM}/inject\n'
        f'  -o {{ smtpd_recipient_restrictions = check_recipient_access hash:{map_path} }}\n'
    )


MAIN_CF = """\
compatibility_level = 3.6
myhostname = suppression-test.example.test
mydestination =
alias_maps =
alias_database =
relay_domains =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
"""


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        yield database


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory the postfix user can reach (pytest's own temporary directories are 0700)."""
    directory = Path(tempfile.mkdtemp(prefix='mailinfra-suppression-test-'))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def instance(public_dir: Path) -> Iterator[tuple[Path, int, Path]]:
    """A running instance: (its configuration directory, its injection port, its map path)."""
    needs_postfix()
    map_path = public_dir / 'suppressed_recipients'
    port = free_port()
    with running(public_dir / 'instance', listener(f'127.0.0.1:{port}', map_path), map_path) as config:
        yield config, port, map_path


@contextmanager
def running(root: Path, injection: str, map_path: Path | None = None) -> Iterator[Path]:
    """Start an instance under ``root`` with the ``injection`` listener; its configuration directory."""
    config, queue, data = root / 'config', root / 'queue', root / 'data'
    for directory in (root, config, queue, data):
        directory.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (config / 'main.cf').write_text(
        MAIN_CF
        + f'queue_directory = {queue}\ndata_directory = {data}\nmaillog_file = {root}/maillog\n'
        + f'maillog_file_prefixes = {root}\ndefault_transport = discard:suppression test\n'
    )
    (config / 'master.cf').write_text(
        Path('/etc/postfix/master.cf').read_text().replace('smtp      inet', '#', 1) + injection
    )
    shutil.chown(data, 'postfix', 'postfix')
    if map_path is not None:  # the role's empty map, before the instance starts
        write_map(str(map_path), [], STREAM, now=time.time(), postmap_config=str(config))
    started = subprocess.run(['postfix', '-c', str(config), 'start'], capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    try:
        wait_for_port(int(injection.split()[0].rpartition(':')[2]))
        yield config
    finally:
        subprocess.run(['postfix', '-c', str(config), 'stop'], capture_output=True, check=False)
        wait_stopped(queue / 'pid' / 'master.pid')  # the pid file stays behind: wait for the process


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with smtplib.SMTP('127.0.0.1', port, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def rcpt(port: int, recipient: str) -> tuple[int, str]:
    """The reply to RCPT TO in a new session (the application's injection)."""
    with smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20) as client:
        client.ehlo()
        client.mail('news@example.com')
        code, text = client.rcpt(recipient)
        client.rset()
        return code, text.decode()


def inject(port: int, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
    """Send one message; the refused recipients (smtplib raises only when every one is refused)."""
    message = 'From: news@example.com\r\nSubject: suppression test\r\n\r\nhello\r\n'
    with smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20) as client:
        try:
            return client.sendmail('news@example.com', recipients, message)
        except smtplib.SMTPRecipientsRefused as refused:
            return dict(refused.recipients)


def test_a_suppressed_recipient_is_refused_at_the_injection_listener(
    instance: tuple[Path, int, Path], db: Database
) -> None:
    config, port, map_path = instance
    suppressions = SuppressionList(db, KEY)
    suppressions.add(STREAM, 'gone@example.net', 'hard-bounce', 'event-1')
    suppressions.add('*', 'angry@example.org', 'complaint', 'event-2')
    suppressions.add('transactional', 'other-stream@example.net', 'unsubscribe', 'event-3')
    result = write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config))
    assert (result.changed, result.entries) == (True, 2)

    refused = inject(port, ['gone@example.net', 'Angry@Example.org', 'fine@example.net', 'other-stream@example.net'])
    assert refused == {
        'gone@example.net': (
            550,
            b'5.7.1 <gone@example.net>: Recipient address rejected: suppressed by mailinfra (hard-bounce)',
        ),
        'Angry@Example.org': (
            550,
            b'5.7.1 <Angry@Example.org>: Recipient address rejected: suppressed by mailinfra (complaint)',
        ),
    }
    assert rcpt(port, 'fine@example.net')[0] == 250

    # A new suppression: the map is rebuilt and the next connection sees it, without a reload.
    db_inode = (map_path.parent / 'suppressed_recipients.db').stat().st_ino
    suppressions.add(STREAM, 'fine@example.net', 'unsubscribe', 'event-4')
    assert write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config)).changed
    assert (map_path.parent / 'suppressed_recipients.db').stat().st_ino != db_inode
    assert rcpt(port, 'fine@example.net')[0] == 550
    # Lifted again: accepted again.
    suppressions.remove(STREAM, 'fine@example.net')
    write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config))
    assert rcpt(port, 'fine@example.net')[0] == 250

    log = (config.parent / 'maillog').read_text()
    assert 'has changed -- restarting' in log
    assert not [line for line in log.splitlines() if 'fatal:' in line or 'panic:' in line or 'error:' in line]


# Spellings of gone@bücher.de that Postfix takes in an SMTPUTF8 session and delivers to xn--bcher-kva.de.
BUCHER = 'gone@bücher.de'
MAP_SPELLINGS = [
    BUCHER,
    unicodedata.normalize('NFD', BUCHER),
    'GONE@BÜCHER.DE',
    'gone@bücher\u3002de',  # ideographic full stop
    'gone@bücher\uff0ede',  # fullwidth full stop
    'gone@bücher\uff61de',  # halfwidth ideographic full stop
    'gone@XN--BCHER-KVA.DE',
    'gone@bücher.de.',
    'gone@xn--bcher-kva.de.',
]
# What only the policy service catches: fullwidth letters, mixed separators and forms.
POLICY_SPELLINGS = [*MAP_SPELLINGS, 'gone@\uff42ücher.de', unicodedata.normalize('NFD', 'gone@Bücher\u3002DE.')]


def rcpt_utf8(port: int, recipient: str) -> int:
    """The reply code to RCPT TO in an SMTPUTF8 session, the recipient sent as the application's UTF-8 bytes."""
    with smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20) as client:
        client.command_encoding = 'utf-8'
        client.ehlo()
        client.mail('news@example.com', ['SMTPUTF8'])
        code, _ = client.rcpt(recipient)
        return code


def test_a_suppressed_idna_domain_is_refused_in_every_spelling_the_map_can_hold(
    instance: tuple[Path, int, Path], db: Database
) -> None:
    """smtpd looks up the recipient as received (casefolded, no trailing dot): the ASCII form alone let
    ``gone@bücher.de`` through, and the one UTF-8 line of Python's IDNA 2003 codec let NFD, the dots
    U+3002/U+FF0E/U+FF61 and ``faß.de`` (IDNA 2003 ``fass.de``) through."""
    config, port, map_path = instance
    suppressions = SuppressionList(db, KEY)
    suppressions.add(STREAM, 'gone@Bücher.de', 'hard-bounce', 'event-1')
    suppressions.add(STREAM, 'gone@faß.de', 'hard-bounce', 'event-2')
    assert {entry.address for entry in suppressions.entries()} == {'gone@xn--bcher-kva.de', 'gone@xn--fa-hia.de'}
    result = write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config))
    assert result.entries == 2  # two recipients: the ASCII form, the UTF-8 one in NFC and NFD, each with four dots
    assert sum(1 for line in map_path.read_text().splitlines() if line.startswith('gone@')) == (1 + 2 * 4) + (1 + 4)
    # Non-transitional: faß.de is xn--fa-hia.de; Postfix casefolds its UTF-8 form to fass.de, so that one matches too.
    for recipient in [*MAP_SPELLINGS, 'gone@Faß.de', 'gone@fass.de']:
        assert rcpt_utf8(port, recipient) == 550, recipient
    # Without SMTPUTF8 Postfix takes only the ASCII forms of this domain.
    assert rcpt(port, 'gone@XN--BCHER-KVA.DE.')[0] == 550
    assert rcpt(port, 'other@xn--bcher-kva.de')[0] == 250
    assert rcpt_utf8(port, 'other@bücher.de') == 250


def test_an_unchanged_map_is_not_rewritten(tmp_path: Path, db: Database) -> None:
    needs_postfix()
    config = tmp_path / 'config'
    config.mkdir()
    (config / 'main.cf').write_text(MAIN_CF)
    map_path = tmp_path / 'suppressed_recipients'
    suppressions = SuppressionList(db, KEY)
    suppressions.add(STREAM, 'gone@example.net', 'hard-bounce', 'event-1')
    first = write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config))
    before = os.stat(f'{map_path}.db')
    again = write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(config))
    assert (first.changed, again.changed) == (True, False)
    assert os.stat(f'{map_path}.db').st_ino == before.st_ino
    lookup = subprocess.run(
        ['postmap', '-c', str(config), '-q', 'gone@example.net', f'hash:{map_path}'], capture_output=True, text=True
    )
    assert lookup.stdout.strip() == '550 5.7.1 suppressed by mailinfra (hard-bounce)'
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith('.')) == []  # no temporaries


def test_a_failing_postmap_leaves_the_old_map_in_place(tmp_path: Path, db: Database) -> None:
    needs_postfix()
    map_path = tmp_path / 'suppressed_recipients'
    suppressions = SuppressionList(db, KEY)
    suppressions.add(STREAM, 'gone@example.net', 'hard-bounce', 'event-1')
    from mailinfra_agent.suppression import MapError

    with pytest.raises(MapError, match='postmap failed'):
        write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(tmp_path / 'none'))
    assert not map_path.exists()
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith('.')] == []  # no temporaries left


def test_the_role_listener_passes_the_trial(tmp_path: Path, public_dir: Path, db: Database) -> None:
    """The staged configuration with the listener option and a map: starts, delivers, logs no warning."""
    needs_postfix()
    staged = tmp_path / 'staged'
    staged.mkdir()
    map_path = public_dir / 'suppressed_recipients'
    (staged / 'main.cf').write_text(MAIN_CF)
    (staged / 'master.cf').write_text(
        Path('/etc/postfix/master.cf').read_text().replace('smtp      inet', '#', 1) + listener(10587, map_path)
    )
    suppressions = SuppressionList(db, KEY)
    suppressions.add(STREAM, 'gone@example.net', 'hard-bounce', 'event-1')
    write_map(str(map_path), suppressions.entries(), STREAM, now=time.time(), postmap_config=str(staged))
    assert trial(str(staged)).problems == []


def test_hash_only_suppressions_are_enforced_by_the_policy_service(public_dir: Path, tmp_path: Path) -> None:
    """Retention.suppressions = 'hash': no address in the store, the policy service still refuses at RCPT TO."""
    needs_postfix()
    store = tmp_path / 'agent.db'
    with connect_sqlite(store) as database:
        migrate(database)
        hashed = SuppressionList(database, KEY, keep_address=False)
        hashed.add(STREAM, 'private@example.net', 'unsubscribe', 'http')
        assert database.execute('SELECT COUNT(*) FROM suppressions WHERE address IS NOT NULL') == [(0,)]
    service_port = free_port()
    server = serve(f'inet:127.0.0.1:{service_port}', lambda: connect_sqlite(store), KEY)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = free_port()
    injection = (
        f'127.0.0.1:{port} inet n - n - - smtpd\n'
        f'  -o smtpd_policy_service_policy_context={STREAM}\n'
        f'  -o {{ smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:{service_port} }}\n'
    )
    try:
        with running(public_dir / 'policy', injection) as config:
            code, text = rcpt(port, 'Private@example.net')
            assert (code, text) == (
                550,
                '5.7.1 <Private@example.net>: Recipient address rejected: suppressed by mailinfra (unsubscribe)',
            )
            assert rcpt(port, 'someone@example.net')[0] == 250
            # smtpd passes the address as received; Postfix delivers this one to private@example.net.
            assert rcpt(port, 'private@example.net.')[0] == 550
            log = (config.parent / 'maillog').read_text()
            problems = [line for line in log.splitlines() if 'fatal:' in line or 'warning:' in line]
            assert not [line for line in problems if not HARMLESS.search(line)]
    finally:
        server.shutdown()
        server.server_close()


# Rows exactly as the code before UTS 46 (efeaf25) wrote them with KEY: its HMAC of the normalised address; it
# refused UTF-8 domains, so its list holds ASCII forms only.
OLD_ROWS = [
    ('*', 'f834993622e51e14a81618b5571d7dee4b8ae179799b7efade3a80cf1df0b32b', None),  # private@xn--bcher-kva.de
    (STREAM, '6ce143887ae7d0d279ae4e007a593d2596d1268773b1221a49835625021a5262', 'old@example.net'),
    (STREAM, 'cbc780190451cb10ad078223d14800d201259aa78b446c933ed66d9319d5049d', 'gone@xn--bcher-kva.de'),
    (STREAM, 'f36efc5ac4f8a13b457c67f79ce59bdc4375d6460049026b2d39492f6886d7fc', 'gone@fass.de'),
]


def old_store(path: Path) -> None:
    with connect_sqlite(path) as database:
        migrate(database)
        with database.transaction():
            for scope, hashed, address in OLD_ROWS:
                database.execute(
                    'INSERT INTO suppressions (scope, address_hash, address, reason, category, source, created, '
                    "expires) VALUES (?, ?, ?, 'hard-bounce', NULL, 'old', 1796641335, NULL)",
                    (scope, hashed, address),
                )


def test_the_policy_service_refuses_every_uts46_spelling_and_the_old_store_still_matches(
    public_dir: Path, tmp_path: Path
) -> None:
    """Through Debian's Postfix: a hash-only row added as ``gone@xn--fa-hia.de`` and rows written by the code
    before UTS 46. ``faß.de`` was looked up as ``fass.de`` (IDNA 2003), missing ``xn--fa-hia.de``; now it is looked
    up in both forms, so the old ``gone@fass.de`` row still stops it."""
    needs_postfix()
    store = tmp_path / 'agent.db'
    old_store(store)
    with connect_sqlite(store) as database:
        hashed = SuppressionList(database, KEY, keep_address=False)
        # The keyed hash of an address the old list could hold is unchanged; a UTF-8 spelling now hashes the same.
        for address, (_, old_hash, _) in zip(
            ['private@Bücher.de.', 'Old@Example.NET', 'gone@xn--bcher-kva.de', 'gone@fass.de'], OLD_ROWS, strict=True
        ):
            assert hashed.hash(address) == old_hash, address
        hashed.add(STREAM, 'other@FAẞ.de', 'unsubscribe', 'http')
        hashed.add(STREAM, 'greek@ΟΔΟΣ.gr', 'unsubscribe', 'http')
    port = free_port()
    with policy_server(store) as (host, service_port):
        injection = (
            f'127.0.0.1:{port} inet n - n - - smtpd\n'
            f'  -o smtpd_policy_service_policy_context={STREAM}\n'
            f'  -o {{ smtpd_recipient_restrictions = check_policy_service inet:{host}:{service_port} }}\n'
        )
        with running(public_dir / 'uts46', injection) as config:
            for recipient in POLICY_SPELLINGS:
                assert rcpt_utf8(port, recipient) == 550, recipient
                assert rcpt_utf8(port, recipient.replace('gone@', 'private@')) == 550, recipient
            # The old row gone@fass.de (IDNA 2003's key for faß.de), the new ones in UTS 46 form; ẞ and a final Σ as
            # UTS 46 maps them, not as str.lower() does.
            for recipient in ('gone@faß.de', 'gone@FAẞ.DE', 'gone@fass.de', 'other@faß.de', 'other@xn--fa-hia.de'):
                assert rcpt_utf8(port, recipient) == 550, recipient
            for recipient in ('greek@ΟΔΟΣ.GR', 'greek@οδοσ.gr', 'greek@xn--pxavbq.gr'):
                assert rcpt_utf8(port, recipient) == 550, recipient
            assert rcpt_utf8(port, 'OLD@example\u3002net.') == 550
            assert rcpt_utf8(port, 'other@fass.de') == 250  # another domain under IDNA 2008
            assert rcpt_utf8(port, 'new@bücher.de') == 250
            log = (config.parent / 'maillog').read_text()
            problems = [line for line in log.splitlines() if 'fatal:' in line or 'warning:' in line]
            assert not [line for line in problems if not HARMLESS.search(line)]


def test_the_policy_service_answers(tmp_path: Path) -> None:
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        suppressions = SuppressionList(database, KEY, keep_address=False)
        suppressions.add('*', 'gone@example.net', 'hard-bounce', 'k')
        request = {'request': 'smtpd_access_policy', 'protocol_state': 'RCPT', 'policy_context': STREAM}
        lookup = suppressions.lookup
        assert answer({**request, 'recipient': 'gone@example.net'}, lookup).startswith('550 5.7.1 ')
        assert answer({**request, 'recipient': 'ok@example.net'}, lookup) == 'DUNNO'
        assert answer({**request, 'recipient': 'gone@example.net', 'policy_context': ''}, lookup) == 'DUNNO'
        assert answer({**request, 'recipient': 'gone@example.net', 'protocol_state': 'DATA'}, lookup) == 'DUNNO'
        assert answer({**request, 'recipient': ''}, lookup) == 'DUNNO'  # the null recipient of a bounce


def test_the_policy_service_reads_the_recipient_as_the_gate_does(tmp_path: Path) -> None:
    """A trailing dot, a quoted local part and a UTF-8 domain (SMTPUTF8) reach the same mailbox: all refused."""
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        suppressions = SuppressionList(database, KEY, keep_address=False)
        suppressions.add('*', 'gone@example.net', 'hard-bounce', 'k')
        suppressions.add('*', 'gone@xn--bcher-kva.de', 'hard-bounce', 'k')
        request = {'request': 'smtpd_access_policy', 'protocol_state': 'RCPT', 'policy_context': STREAM}
        for recipient in ('gone@example.net.', '"gone"@example.net', '<GONE@Example.NET.>', 'gone@bücher.de'):
            assert answer({**request, 'recipient': recipient}, suppressions.lookup).startswith('550 5.7.1 '), recipient


@contextmanager
def policy_server(store: Path) -> Iterator[tuple[str, int]]:
    server = serve('inet:127.0.0.1:0', lambda: connect_sqlite(store), KEY)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]  # type: ignore[index,str-unpack]
        yield str(host), int(port)
    finally:
        server.shutdown()
        server.server_close()


REQUEST = b'request=smtpd_access_policy\nprotocol_state=RCPT\npolicy_context=marketing\n'


def ask(address: tuple[str, int], payload: bytes) -> bytes:
    """Send ``payload``, end the sending side, read until the service closes (a reset: closed with input unread)."""
    with socket.create_connection(address, timeout=20) as client:
        try:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            return client.makefile('rb').read()
        except ConnectionResetError:
            return b''


@pytest.mark.parametrize(
    ('payload', 'reply'),
    [
        (REQUEST + b'recipient=gone@example.net', b''),  # no blank line: no answer, the connection closes
        (REQUEST + b'recipient=' + b'x' * 70_000 + b'\n\n', b''),  # one line over MAX_REQUEST
        (REQUEST + (b'a=' + b'x' * 1000 + b'\n') * 70 + b'\n', b''),  # many lines over MAX_REQUEST
        (REQUEST + b'recipient=gone\x00@example.net\n\n', b'action=DUNNO\n\n'),
        (REQUEST + b'recipient=gone@example.net\xff\n\n', b'action=DUNNO\n\n'),
        (REQUEST + b'\n', b'action=DUNNO\n\n'),  # no recipient
        (REQUEST.replace(b'smtpd_access_policy', b'other') + b'recipient=gone@example.net\n\n', b'action=DUNNO\n\n'),
        (b'\xff\xfe\x00garbage\nno equals sign\n\n', b'action=DUNNO\n\n'),
    ],
)
def test_a_malformed_request_is_answered_or_closed_and_the_next_one_served(
    tmp_path: Path, payload: bytes, reply: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        SuppressionList(database, KEY, keep_address=False).add('*', 'gone@example.net', 'hard-bounce', 'k')
    with policy_server(tmp_path / 'agent.db') as address:
        assert ask(address, payload) == reply
        good = REQUEST + b'recipient=gone@example.net\n\n'
        assert ask(address, good + good) == b'action=550 5.7.1 suppressed by mailinfra (hard-bounce)\n\n' * 2
    assert 'Traceback' not in capsys.readouterr().err


def test_a_silent_or_vanished_client_closes_only_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client that sends nothing held a thread and a store connection for ever; one that leaves before its
    answer made socketserver print a traceback. Others are served meanwhile, 50 at once (with socketserver's listen
    backlog of 5, some of them were reset)."""
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        SuppressionList(database, KEY, keep_address=False).add('*', 'gone@example.net', 'hard-bounce', 'k')
    good = REQUEST + b'recipient=gone@example.net\n\n'
    with policy_server(tmp_path / 'agent.db') as address:
        with socket.create_connection(address, timeout=20) as silent:
            silent.sendall(REQUEST)  # and no more
            replies: list[bytes] = []
            clients = [threading.Thread(target=lambda: replies.append(ask(address, good))) for _ in range(50)]
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            assert replies == [b'action=550 5.7.1 suppressed by mailinfra (hard-bounce)\n\n'] * 50
        with monkeypatch.context() as patch:
            patch.setattr(policy_service.PolicyHandler, 'timeout', 0.5)  # connections opened meanwhile
            with socket.create_connection(address, timeout=20) as silent:
                silent.sendall(REQUEST)
                assert silent.makefile('rb').read() == b''  # closed by the service, not by the client
        for _ in range(20):  # leave with answers still to write: the service's write fails
            with socket.create_connection(address, timeout=20) as leaving:
                leaving.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))  # reset
                leaving.sendall(good * 500)
        assert ask(address, good) == b'action=550 5.7.1 suppressed by mailinfra (hard-bounce)\n\n'
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    assert 'suppression policy: connection closed: timed out' in err


@pytest.mark.parametrize('listen', ['inet:127.0.0.1:99999', 'inet:127.0.0.1:-1', 'inet:127.0.0.1:x', 'tcp:1'])
def test_a_bad_listen_address_is_a_value_error(tmp_path: Path, listen: str) -> None:
    """A port over 65535 died in bind() with OverflowError: the command printed a traceback."""
    with pytest.raises(ValueError, match='listen address'):
        serve(listen, lambda: connect_sqlite(tmp_path / 'agent.db'), KEY)


def test_the_policy_service_defers_when_the_store_is_unreadable(tmp_path: Path) -> None:
    missing = tmp_path / 'no-such-dir' / 'agent.db'
    server = serve('inet:127.0.0.1:0', lambda: connect_sqlite(missing), KEY)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]  # type: ignore[index,str-unpack]
        with socket.create_connection((str(host), int(port)), timeout=10) as client:
            client.sendall(b'request=smtpd_access_policy\nprotocol_state=RCPT\npolicy_context=marketing\n')
            client.sendall(b'recipient=gone@example.net\n\n')
            reply = client.makefile('rb').readline()
        assert reply == b'action=DEFER_IF_PERMIT 4.3.0 suppression list unavailable, try again later\n'
    finally:
        server.shutdown()
        server.server_close()


def test_without_its_map_the_listener_accepts_nothing(public_dir: Path) -> None:
    """Why the role builds the (empty) map before the instance starts: a missing table fails closed, 4xx."""
    needs_postfix()
    port = free_port()
    with running(public_dir / 'nomap', listener(f'127.0.0.1:{port}', public_dir / 'absent')):
        code, text = rcpt(port, 'anyone@example.net')
    assert (code, text) == (451, '4.3.5 <anyone@example.net>: Recipient address rejected: Server configuration error')


def _utf8_feedback(stream_verp: str) -> list[bytes]:
    """A DSN whose recipient is RFC 6533's ``utf-8`` address (escaped, in message/delivery-status) and one whose
    recipient is raw UTF-8 (message/global-delivery-status), and an ARF complaint with a UTF-8 Original-Rcpt-To."""
    dsn = (
        f'From: MAILER-DAEMON@mx.isp.example\nTo: {stream_verp}\nDate: Sun, 06 Dec 2026 06:00:00 +0000\n'
        'Message-ID: <{id}@mx.isp.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        '--b\nContent-Type: text/plain\n\nfailed\n\n--b\nContent-Type: {type}\n\n'
        'Reporting-MTA: dns; mx.isp.example\n\nFinal-Recipient: utf-8; {recipient}\nAction: failed\nStatus: 5.1.1\n'
        'Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n--b--\n'
    )
    original = f'Return-Path: <{stream_verp}>\nFrom: news@news.example.com\nMessage-ID: <o.1@news.example.com>\n\nhi\n'
    arf = (
        'From: fbl@isp.example\nTo: fbl@news.example.com\nDate: Sun, 06 Dec 2026 06:00:00 +0000\n'
        'Message-ID: <r.1@isp.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        '--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\n'
        'Original-Mail-From: news@news.example.com\nOriginal-Rcpt-To: angry@FAẞ.de\n\n'
        f'--b\nContent-Type: message/rfc822\n\n{original}\n--b--\n'
    )
    return [
        dsn.format(id='d.1', type='message/delivery-status', recipient='gone@fa\\x{DF}.de').encode(),
        dsn.format(id='d.2', type='message/global-delivery-status', recipient='lost@Faß.DE.').encode(),
        arf.encode(),
    ]


def test_feedback_for_a_utf8_domain_suppresses_the_key_the_policy_service_refuses(
    public_dir: Path, tmp_path: Path
) -> None:
    """Bounces and a complaint for ``faß.de`` through ``ingest message`` and the suppressor, then Debian's Postfix
    asks the policy service. The parsers mapped the domain with IDNA 2003 (``fass.de``), so the list held
    ``gone@fass.de``: another domain's mailbox refused, and ``faß.de`` refused only through the legacy lookup."""
    needs_postfix()
    stream = 'cold_outreach'  # a stream of the contract's host (mx1)
    store = tmp_path / 'agent.db'
    key_file = tmp_path / 'signing-key'
    key_file.write_bytes(TEST_KEYS[0] + b'\n')
    key_file.chmod(0o600)
    data = contract_data({'backend': 'sqlite', 'path': str(store)}, {})
    data['suppression']['signing_key_file'] = str(key_file)
    data['suppression']['old_signing_key_files'] = []
    contract_path = tmp_path / 'agent.json'
    contract_path.write_text(json.dumps(data), encoding='utf-8')
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract_path), 'message']
    return_path = verp.encode(TEST_KEYS, stream=stream, domain=BOUNCE_DOMAIN, segment='7')
    with connect_sqlite(store) as database:
        # the deliveries the bounces are about (their return path has no recipient: a DSN names only one of these)
        migrate(database)
        insert_events(
            database,
            [
                Event(
                    f'sent-{local}',
                    'delivery',
                    'sent',
                    time.time() - 600,  # ten minutes before the DSNs arrive (ingest/store.py CONFIRM_WINDOW)
                    f'{local}@faß.de',  # as a Postfix log names it
                    'log',
                    sender=return_path,
                )
                for local in ('gone', 'lost')
            ]
            # the message the complaint is about: its Original-Rcpt-To is attributed by this delivery
            + [Event('sent-angry', 'delivery', 'sent', 0, 'angry@faß.de', 'log', message_id='o.1@news.example.com')],
        )
    for message in _utf8_feedback(return_path):
        result = subprocess.run(command, input=message, capture_output=True, timeout=120)
        assert result.returncode == 0 and b'Traceback' not in result.stderr, result.stderr
    with connect_sqlite(store) as database:
        assert {(event.kind, event.recipient) for event in events(database) if event.kind != 'delivery'} == {
            ('dsn', 'gone@xn--fa-hia.de'),
            ('dsn', 'lost@xn--fa-hia.de'),
            ('complaint', 'angry@xn--fa-hia.de'),
        }
        suppressor = Suppressor.from_contract(load_contract(contract_path), SuppressionList(database, KEY))
        applied = suppressor.apply_all(stored_events(database, 0))
        assert {(entry.scope, entry.address) for entry in applied.added} >= {
            (stream, 'gone@xn--fa-hia.de'),
            (stream, 'lost@xn--fa-hia.de'),
            (stream, 'angry@xn--fa-hia.de'),
        }
    port = free_port()
    with policy_server(store) as (host, service_port):
        injection = (
            f'127.0.0.1:{port} inet n - n - - smtpd\n'
            f'  -o smtpd_policy_service_policy_context={stream}\n'
            f'  -o {{ smtpd_recipient_restrictions = check_policy_service inet:{host}:{service_port} }}\n'
        )
        with running(public_dir / 'feedback-uts46', injection):
            for local in ('gone', 'lost', 'angry'):
                for domain in ('faß.de', 'FAẞ.DE', 'xn--fa-hia.de'):
                    assert rcpt_utf8(port, f'{local}@{domain}') == 550, (local, domain)
                assert rcpt_utf8(port, f'{local}@fass.de') == 250, local  # another domain under IDNA 2008
