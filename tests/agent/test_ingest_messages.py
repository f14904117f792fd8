"""Ingest of feedback messages: the bounce MX's Maildir and the pipe transport (``ingest message``).

The messages are the samples (tests/data/feedback/messages: Postfix's own DSNs, public ARF samples, synthetic
anonymised complaints) signed with the samples' test key; the parser is feedback/message.py, the store a real SQLite.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.store.events import events, insert_events, problem_counts
from tests.agent.ingest_logs import contract_data
from tests.agent.postfix_dsn import TEST_KEYS, verp_sender

SAMPLES = Path(__file__).resolve().parents[1] / 'data' / 'feedback' / 'messages'
CFL_MESSAGE_ID = '20261206051000.42.7.1001@news.example.com'


def _contract(
    tmp_path: Path, maildirs: list[Path] | None = None, key: bool = True, logs: list[dict[str, Any]] | None = None
) -> Path:
    data: dict[str, Any] = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {})
    data['feedback_maildirs'] = [str(path) for path in maildirs or []]
    data['logs'] = logs or []
    if key:
        key_file = tmp_path / 'signing-key'
        key_file.write_bytes(TEST_KEYS[0] + b'\n')
        key_file.chmod(0o600)
        data.setdefault('suppression', {})['signing_key_file'] = str(key_file)
        data['suppression']['old_signing_key_files'] = []
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    return path


def _agent(contract: Path, *arguments: str, stdin: bytes = b'') -> subprocess.CompletedProcess[str]:
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), *arguments]
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def _maildir(root: Path) -> Path:
    for sub in ('new', 'cur', 'tmp'):
        (root / sub).mkdir(parents=True)
    for number, sample in enumerate(sorted(SAMPLES.glob('*.eml')), 1):
        target = root / 'new' / f'1765000{number:03d}.M{number}P42.mx1'
        shutil.copyfile(sample, target)
        os.utime(target, (1765000000 + number, 1765000000 + number))  # arrived when its name says (long ago)
    return root


def _delivery(recipient: str, message_id: str) -> Event:
    return Event(
        event_key('test-delivery', recipient, message_id),
        'delivery',
        'sent',
        1765000000.0,
        recipient,
        'test',
        stream='marketing',
        message_id=message_id,
    )


def _cfl_message_id() -> str:
    text = (SAMPLES / 'synthetic-yahoo-cfl-redacted.eml').read_text(encoding='utf-8')
    ids = [line.split('<', 1)[1].rstrip('>') for line in text.splitlines() if line.startswith('Message-ID: <')]
    return ids[-1]  # the original message's, after the report's own


def test_maildir_messages_are_stored_once_and_moved_to_cur(tmp_path: Path) -> None:
    maildir = _maildir(tmp_path / 'Maildir')
    count = len(list((maildir / 'new').iterdir()))
    contract = _contract(tmp_path, [maildir])
    # Two deliveries of the message a redacted Yahoo complaint is about: its X-Mailinfra-Id picks the recipient.
    cfl_id = _cfl_message_id()
    with connect_sqlite(tmp_path / 'agent.db') as db:
        migrate(db)
        insert_events(db, [_delivery('kitty.cat@yahoo.example', cfl_id), _delivery('other@yahoo.example', cfl_id)])
    result = _agent(contract, 'run', '--once')
    assert result.returncode == 0, result.stderr
    assert sorted(path.name.split(':')[0] for path in (maildir / 'cur').iterdir()) == sorted(
        f'1765000{n:03d}.M{n}P42.mx1' for n in range(1, count + 1)
    )
    assert all(path.name.endswith(':2,S') for path in (maildir / 'cur').iterdir())
    assert not list((maildir / 'new').iterdir())
    with connect_sqlite(tmp_path / 'agent.db') as db:
        stored = events(db)
        problems = problem_counts(db)
    dsns = [event for event in stored if event.kind == 'dsn']
    assert {(e.recipient, e.status, e.category) for e in dsns if e.recipient == 'unknown1@r.test'} == {
        ('unknown1@r.test', 'bounced', 'bad-mailbox')
    }
    complaints = {event.recipient for event in stored if event.kind == 'complaint'}
    assert 'kitty.cat@yahoo.example' in complaints  # resolved through the store
    assert 'zoe@outlook.test' in complaints  # the anonymised JMRP report: its VERP return path names her
    assert 'other@yahoo.example' not in complaints
    reasons = {reason: number for (_, kind, reason), number in problems.items() if kind == 'maildir'}
    assert reasons['no-delivery-status'] == 1 and reasons['not-a-complaint'] == 1  # qmail's text bounce
    # Gmail's text bounce: X-Failed-Recipients, the reply from its text
    assert ('userunknown@example.jp', 'bounced', 'bad-mailbox') in {(e.recipient, e.status, e.category) for e in dsns}
    assert result.stderr.count('maildir:cur/') + result.stderr.count('maildir:new/') >= sum(reasons.values())

    # Again, and with one message back in new/ as if ingest died between its commit and the move: nothing changes.
    done = next((maildir / 'cur').iterdir())
    shutil.copyfile(done, maildir / 'new' / done.name.split(':')[0])
    assert _agent(contract, 'run', '--once').returncode == 0
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert events(db) == stored
        assert problem_counts(db) == problems
    assert not list((maildir / 'new').iterdir())


def test_an_unresolvable_anonymised_complaint_is_counted(tmp_path: Path) -> None:
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    shutil.copyfile(SAMPLES / 'synthetic-yahoo-cfl-redacted.eml', maildir / 'new' / '1.M1P1.mx1')
    contract = _contract(tmp_path, [maildir])
    assert _agent(contract, 'run', '--once').returncode == 0  # no delivery of its Message-ID in the store
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert events(db) == []
        assert problem_counts(db) == {('mx1', 'maildir', 'no-recipient'): 1}


def test_an_unusable_signing_key_is_an_error(tmp_path: Path) -> None:
    maildir = tmp_path / 'Maildir'
    (maildir / 'new').mkdir(parents=True)
    contract = _contract(tmp_path, [maildir])
    (tmp_path / 'signing-key').chmod(0o644)
    result = _agent(contract, 'run', '--once')
    assert result.returncode == 2
    assert 'signing key' in result.stderr and TEST_KEYS[0].decode() not in result.stderr


# --- the pipe transport ------------------------------------------------------------------------------------------


def test_a_piped_dsn_is_stored_once(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    message = (SAMPLES / 'postfix-failed.eml').read_bytes()
    for _ in range(2):  # Postfix may deliver it twice (a retry after a timeout): stored once
        result = _agent(contract, 'message', '--envelope-recipient', 'bounces@bounce.example', stdin=message)
        assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        (event,) = events(db)
    assert (event.kind, event.status, event.recipient, event.category) == (
        'dsn',
        'bounced',
        'unknown1@r.test',
        'bad-mailbox',
    )


@pytest.mark.parametrize(
    ('message', 'reason'),
    [(b'\x00\xff\xfe not a message at all', 'garbage'), (b'', 'empty'), (b'x' * (11 * 1024 * 1024), 'oversized')],
)
def test_an_unreadable_piped_message_is_counted_not_bounced(tmp_path: Path, message: bytes, reason: str) -> None:
    contract = _contract(tmp_path)
    result = _agent(contract, 'message', stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert problem_counts(db) == {('mx1', 'pipe', reason): 1}
        assert events(db) == []


def test_an_unreachable_store_makes_postfix_retry(tmp_path: Path) -> None:
    data = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'absent' / 'agent.db')}, {})
    contract = tmp_path / 'agent.json'
    contract.write_text(json.dumps(data), encoding='utf-8')
    message = (SAMPLES / 'postfix-failed.eml').read_bytes()
    result = _agent(contract, 'message', '--store-wait', '1', stdin=message)
    assert result.returncode == 75  # EX_TEMPFAIL: Postfix keeps the message and tries again
    assert 'Postfix will retry' in result.stderr


def test_an_unreadable_contract_makes_postfix_retry(tmp_path: Path) -> None:
    result = _agent(tmp_path / 'absent.json', 'message', stdin=b'Subject: x\n\nx\n')
    assert result.returncode == 75


# A parser defect injected into the real command (``parse_message`` raising), run as Postfix's pipe runs it.
_FAILING_PARSER = """
import sys
import mailinfra_agent.feedback.message as message
from mailinfra_agent.cli import main

def parse_message(*args, **kwargs):
    raise {error}('a defect of the parser')

message.parse_message = parse_message
sys.exit(main(sys.argv[1:]))
"""


def _agent_failing(
    contract: Path, error: str, keep: Path, *arguments: str, stdin: bytes
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        '-c',
        _FAILING_PARSER.format(error=error),
        'ingest',
        '--contract',
        str(contract),
        'message',
        '--keep-dir',
        str(keep),
        *arguments,
    ]
    result = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(), result.stderr.decode())


def test_a_piped_message_the_parser_fails_on_is_kept_and_counted(tmp_path: Path) -> None:
    """A retry would fail the same way until Postfix gives up and the message is lost: kept, counted, exit 0."""
    contract = _contract(tmp_path)
    keep = tmp_path / 'kept'
    message = (SAMPLES / 'postfix-failed.eml').read_bytes()
    for _ in range(2):  # delivered again: still one file
        result = _agent_failing(contract, 'KeyError', keep, '--envelope-recipient', 'b@bounce.example', stdin=message)
        assert result.returncode == 0, result.stderr
        assert 'Traceback' in result.stderr and 'parser-error' in result.stderr
    (kept,) = (keep / 'new').iterdir()
    assert kept.read_bytes() == message
    assert kept.stat().st_mode & 0o777 == 0o600
    assert all((keep / sub).stat().st_mode & 0o777 == 0o700 for sub in ('', 'new', 'cur', 'tmp'))
    assert list((keep / 'tmp').iterdir()) == []  # written in tmp/, then moved to new/
    assert str(kept) in result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert problem_counts(db) == {('mx1', 'pipe', 'parser-error'): 2}
        assert events(db) == []


def test_a_kept_message_is_read_again_from_the_keep_maildir(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    keep = tmp_path / 'kept'
    message = (SAMPLES / 'postfix-failed.eml').read_bytes()
    assert _agent_failing(contract, 'KeyError', keep, stdin=message).returncode == 0
    result = _agent(contract, 'run', '--once', '--no-contract-logs', '--maildir', str(keep))
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        (event,) = events(db)
    assert (event.kind, event.recipient) == ('dsn', 'unknown1@r.test')


@pytest.mark.parametrize('place', ['a-file', 'absent/parent'])
def test_a_message_that_cannot_be_kept_makes_postfix_retry(tmp_path: Path, place: str) -> None:
    contract = _contract(tmp_path)
    (tmp_path / 'a-file').write_bytes(b'')
    result = _agent_failing(contract, 'KeyError', tmp_path / place, stdin=b'Subject: x\n\nx\n')
    assert result.returncode == 75, result.stderr
    assert 'cannot keep the message' in result.stderr and 'Postfix will retry' in result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        migrate(db)
        assert problem_counts(db) == {}  # counted when it is kept, at a retry


def test_a_keep_directory_of_another_kind_makes_postfix_retry(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'link').symlink_to(tmp_path / 'elsewhere')
    result = _agent_failing(contract, 'KeyError', tmp_path / 'link', stdin=b'Subject: x\n\nx\n')
    assert result.returncode == 75, result.stderr
    assert 'not a directory of user' in result.stderr
    assert list((tmp_path / 'elsewhere').iterdir()) == []


def test_a_parser_failure_with_the_store_away_makes_postfix_retry(tmp_path: Path) -> None:
    data = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'absent' / 'agent.db')}, {})
    contract = tmp_path / 'agent.json'
    contract.write_text(json.dumps(data), encoding='utf-8')
    result = _agent_failing(contract, 'KeyError', tmp_path / 'kept', '--store-wait', '1', stdin=b'Subject: x\n\nx\n')
    assert result.returncode == 75 and 'Postfix will retry' in result.stderr


def test_a_memory_error_of_the_parser_makes_postfix_retry(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    result = _agent_failing(contract, 'MemoryError', tmp_path / 'kept', stdin=b'Subject: x\n\nx\n')
    assert result.returncode == 75 and 'Postfix will retry' in result.stderr
    assert not (tmp_path / 'kept').exists()


# --- real-world shapes through both paths (the messages are modelled on public samples; see test_feedback_dsn.py
# and test_feedback_arf.py for the sources) ---------------------------------------------------------------------------


def _shapes() -> dict[str, tuple[bytes, str]]:
    """Name -> (message, the pipe's envelope recipient)."""
    ours = verp_sender(recipient='ann@isp.example')
    plain = verp_sender(segment='7')
    global_dsn = (
        f'From: MAILER-DAEMON@mx.isp.example\nTo: {plain}\nDate: Sun, 06 Dec 2026 06:00:00 +0000\n'
        'Message-ID: <g.1@mx.isp.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        '--b\nContent-Type: text/plain\n\nfailed\n\n'
        '--b\nContent-Type: message/global-delivery-status\nContent-Transfer-Encoding: base64\n\n'
        + base64.encodebytes(
            'Reporting-MTA: dns; mx.isp.example\n\nFinal-Recipient: utf-8; jöe@bücher.example\n'
            'Action: failed\nStatus: 5.1.1\n'.encode()
        ).decode()
        + '\n--b--\n'
    )
    original = f'Return-Path: <{ours}>\nFrom: news@news.example.com\nMessage-ID: <o.1@news.example.com>\n\nhi\n'
    complaint = (
        'From: fbl@isp.example\nTo: fbl@news.example.com\nDate: Sun, 06 Dec 2026 06:00:00 +0000\n'
        'Message-ID: <r.1@isp.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        '--b\nContent-Type: message/feedback-report\n\n'
        'Feedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\nOriginal-Mail-From: news@news.example.com\n\n'
        '--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n'
        + base64.encodebytes(original.encode()).decode()
        + '\n--b--\n'
    )
    away = (
        f'Return-Path: <>\nFrom: Ann <ann@isp.example>\nTo: {ours}\nSubject: Automatic reply: deals\n'
        'Auto-Submitted: auto-replied\nMessage-ID: <ooo.1@isp.example>\n\nAway until Monday.\n'
    )
    forwarded = (
        f'From: someone@isp.example\nTo: {plain}\nSubject: Fwd: look\nMIME-Version: 1.0\n'
        'Content-Type: multipart/mixed; boundary="f"\n\n--f\nContent-Type: message/rfc822\n\n'
        + global_dsn.replace(plain, 'bounces@bounces.example.test')
        + '\n--f--\n'
    )
    return {
        'global-dsn-base64': (global_dsn.encode(), plain),
        'arf-base64-original': (complaint.encode(), 'fbl@news.example.com'),
        'out-of-office': (away.encode(), ours),
        'forwarded-dsn': (forwarded.encode(), plain),
    }


def _delivered_to_joe(path: Path) -> None:
    """The delivery the global DSN is about, as a Postfix log names it (its return path has no recipient), sent
    ten minutes ago (within ingest/store.py's CONFIRM_WINDOW before the DSN's arrival)."""
    with connect_sqlite(path) as db:
        migrate(db)
        delivery = Event(
            'joe', 'delivery', 'sent', time.time() - 600, 'jöe@bücher.example', 'log', sender=verp_sender(segment='7')
        )
        insert_events(db, [delivery])


SHAPE_EVENTS = {
    ('delivery', 'sent', 'jöe@bücher.example', None),
    ('dsn', 'bounced', 'jöe@xn--bcher-kva.example', 'marketing'),
    ('complaint', 'complaint', 'ann@isp.example', 'marketing'),
}
SHAPE_PROBLEMS = {'auto-reply': 1, 'unknown-format': 1}


def test_real_world_shapes_give_the_same_store_through_the_pipe_and_the_maildir(tmp_path: Path) -> None:
    piped = tmp_path / 'pipe'
    piped.mkdir()
    contract = _contract(piped)
    _delivered_to_joe(piped / 'agent.db')
    for message, recipient in _shapes().values():
        result = _agent(contract, 'message', '--envelope-recipient', recipient, stdin=message)
        assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    with connect_sqlite(piped / 'agent.db') as db:
        stored = events(db)
        problems = problem_counts(db)
    assert {(e.kind, e.status, e.recipient, e.stream) for e in stored} == SHAPE_EVENTS and len(stored) == 3
    assert {reason: n for (_, kind, reason), n in problems.items() if kind == 'pipe'} == SHAPE_PROBLEMS

    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    for number, (message, recipient) in enumerate(_shapes().values(), 1):
        (maildir / 'new' / f'{number}.M1P1.mx1').write_bytes(f'X-Original-To: {recipient}\n'.encode() + message)
    read = tmp_path / 'maildir'
    read.mkdir()
    _delivered_to_joe(read / 'agent.db')
    assert _agent(_contract(read, [maildir]), 'run', '--once').returncode == 0
    with connect_sqlite(read / 'agent.db') as db:
        assert [(e.kind, e.status, e.recipient, e.stream, e.key) for e in events(db)] == [
            (e.kind, e.status, e.recipient, e.stream, e.key) for e in stored
        ]
        maildir_problems = {reason: n for (_, kind, reason), n in problem_counts(db).items() if kind == 'maildir'}
    assert maildir_problems == SHAPE_PROBLEMS


# --- DSNs to a return path that names no recipient, complaints resolved through the store ----------------------------

LONG = 'a.mailbox.name.much.too.long.for.any.signed.return.path@r.test'
RETURN_PATH = verp_sender(segment='7', recipient=LONG)
"""Signed, but without the recipient: it did not fit (checked in the tests)."""
QUEUE_ID = '4F2A10C3B1'


SENT_AGO = 4 * 3600
"""How long before now _postfix_log's delivery was logged: before every test DSN's arrival (the oldest: 3 h ago)."""


def _postfix_log(
    path: Path, sender: str, recipient: str, message_id: str, instance: str = 'transactional', ago: float = 0
) -> dict[str, Any]:
    """One message of a stream instance delivered :data:`SENT_AGO`, as Postfix logs it (RFC 3339 stamps: a syslog
    stamp's year would depend on today's date); the contract's entry for the file."""
    sent = dt.datetime.fromtimestamp(time.time() - (ago or SENT_AGO), dt.UTC).replace(microsecond=100000)

    def prefix(second: int) -> str:
        return f'{(sent + dt.timedelta(seconds=second)).isoformat()} mx1 postfix-{instance}'

    path.write_text(
        f'{prefix(0)}/cleanup[11]: {QUEUE_ID}: message-id=<{message_id}>\n'
        f'{prefix(1)}/qmgr[12]: {QUEUE_ID}: from=<{sender}>, size=1200, nrcpt=1 (queue active)\n'
        f'{prefix(2)}/out_198_51_100_10/smtp[13]: {QUEUE_ID}: to=<{recipient}>, '
        'relay=mx.r.test[203.0.113.29]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK)\n'
        f'{prefix(3)}/qmgr[12]: {QUEUE_ID}: removed\n',
        encoding='utf-8',
    )
    name = f'postfix-{instance}'
    return {'path': str(path), 'format': 'postfix', 'instance': name, 'syslog_name': name, 'stream': instance}


def _dsn(
    sender: str,
    *recipients: str,
    message_id: str = 'tx.1@app.example',
    date: str = 'Sun, 06 Dec 2026 06:10:00 +0000',
    attempts: dict[str, str] | None = None,
) -> bytes:
    """A remote MTA's DSN to ``sender`` failing ``recipients``, with the original's headers (``attempts``: recipient
    -> its block's Last-Attempt-Date)."""
    blocks = ''.join(
        f'Final-Recipient: rfc822; {address}\nAction: failed\nStatus: 5.1.1\n'
        + (f'Last-Attempt-Date: {(attempts or {})[address]}\n' if address in (attempts or {}) else '')
        + f'Diagnostic-Code: smtp; 550 5.1.1 <{address}>: user unknown\n\n'
        for address in recipients
    )
    return (
        f'From: MAILER-DAEMON@mx.r.test\nTo: {sender}\nDate: {date}\n'
        f'Message-ID: <dsn.{len(recipients)}@mx.r.test>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        '--b\nContent-Type: text/plain\n\nfailed\n\n'
        f'--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.r.test\n\n{blocks}'
        f'--b\nContent-Type: text/rfc822-headers\n\nFrom: news@app.example\nMessage-ID: <{message_id}>\n\n--b--\n'
    ).encode()


def _arrived_long_ago(path: Path) -> None:
    """Make a Maildir message older than CONFIRM_WAIT: its unconfirmed recipients are decided at once."""
    from mailinfra_agent.ingest.store import CONFIRM_WAIT

    then = time.time() - CONFIRM_WAIT - 600
    os.utime(path, (then, then))


def _received(message: bytes, ago: float) -> bytes:
    """``message`` with the Received header our Postfix adds on arrival, ``ago`` seconds ago."""
    date = email.utils.formatdate(time.time() - ago)
    return f'Received: from mx.r.test (mx.r.test [203.0.113.29]) by mx1 (Postfix); {date}\n'.encode() + message


def _problems(db_path: Path) -> dict[tuple[str, str], int]:
    with connect_sqlite(db_path) as db:
        return {(kind, reason): count for (_, kind, reason), count in problem_counts(db).items()}


def test_the_return_path_of_the_dsn_tests_names_no_recipient() -> None:
    from mailinfra_agent.feedback import verp

    assert verp.decode(RETURN_PATH, TEST_KEYS).recipient is None


def test_a_dsn_naming_another_recipient_than_the_store_delivered_to_suppresses_nobody(tmp_path: Path) -> None:
    """A crafted DSN to a valid return path without recipient names a victim: no event, a problem (Postfix)."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    (maildir / 'new' / '1.M1P1.mx1').write_bytes(_dsn(RETURN_PATH, LONG, 'victim@r.test'))
    _arrived_long_ago(maildir / 'new' / '1.M1P1.mx1')  # the victim's block waits no more
    contract = _contract(tmp_path, [maildir], logs=[log])
    # Sent to the pipe before the log is read: the store knows no delivery yet, so nothing is taken on a guess.
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=_dsn(RETURN_PATH, LONG))
    assert result.returncode == 0, result.stderr
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}
    # The log and the Maildir in one run (logs are read first): the delivered recipient is confirmed, not the victim.
    result = _agent(contract, 'run', '--once')
    assert result.returncode == 0, result.stderr
    assert 'victim@r.test' in result.stderr and 'recipient-not-ours' in result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        dsns = [event for event in events(db) if event.kind == 'dsn']
    assert [(e.recipient, e.status, e.stream, e.segment, e.category) for e in dsns] == [
        (LONG, 'bounced', 'marketing', '7', 'bad-mailbox')
    ]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1, ('maildir', 'recipient-not-ours'): 1}
    # The victim alone, through the pipe now that the delivery is stored: still nobody's event.
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=_dsn(RETURN_PATH, 'victim@r.test'))
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert 'victim@r.test' not in {event.recipient for event in events(db)}
    assert _problems(tmp_path / 'agent.db')[('pipe', 'recipient-not-ours')] == 2


def _text_bounce(sender: str, *recipients: str) -> bytes:
    """Exim's text bounce to ``sender`` (no delivery-status part): X-Failed-Recipients, each reply indented."""
    replies = ''.join(f'  {address}\n    550 5.1.1 <{address}>: user unknown\n' for address in recipients)
    return (
        f'From: Mail Delivery System <Mailer-Daemon@mx.r.test>\nTo: {sender}\n'
        f'X-Failed-Recipients: {", ".join(recipients)}\nSubject: Mail delivery failed\n'
        'Date: Sun, 06 Dec 2026 06:10:00 +0000\nMessage-ID: <eximbounce@mx.r.test>\n\n'
        'A message that you sent could not be delivered to one or more of its\nrecipients. '
        f'The following address(es) failed:\n\n{replies}\n'
        '------ This is a copy of the message, including all the headers. ------\n\n'
        'From: news@app.example\nMessage-ID: <tx.1@app.example>\n\nhi\n'
    ).encode()


def test_a_text_bounce_goes_through_the_return_path_checks_of_a_dsn(tmp_path: Path) -> None:
    """X-Failed-Recipients is a claim like a DSN's Final-Recipient: a signed return path's recipient wins; one
    without a recipient needs a stored delivery; a forged one is refused."""
    from mailinfra_agent.feedback import verp

    contract = _contract(tmp_path)
    ours = verp_sender(recipient='ann@isp.example')
    result = _agent(contract, 'message', '--envelope-recipient', ours, stdin=_text_bounce(ours, 'victim@r.test'))
    assert result.returncode == 0, result.stderr
    local = ours.split('@')[0]
    forged = local[:-3] + ('a' if local[-3] != 'a' else 'b') + local[-2:] + '@' + ours.split('@')[1]
    with pytest.raises(ValueError):
        verp.decode(forged, TEST_KEYS)
    result = _agent(contract, 'message', '--envelope-recipient', forged, stdin=_text_bounce(forged, 'victim@r.test'))
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        dsns = [event for event in events(db) if event.kind == 'dsn']
    assert [(e.recipient, e.status, e.category) for e in dsns] == [('ann@isp.example', 'bounced', 'bad-mailbox')]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'bad-verp'): 1}

    # No recipient in the return path: the failed recipients are claims the store must confirm.
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    (maildir / 'new' / '1.M1P1.mx1').write_bytes(_text_bounce(RETURN_PATH, LONG, 'victim@r.test'))
    _arrived_long_ago(maildir / 'new' / '1.M1P1.mx1')
    contract = _contract(tmp_path, [maildir], logs=[log])
    result = _agent(contract, 'run', '--once')
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        dsns = [event for event in events(db) if event.kind == 'dsn']
    assert sorted((e.recipient, e.category) for e in dsns) == [
        (LONG, 'bad-mailbox'),
        ('ann@isp.example', 'bad-mailbox'),
    ]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'bad-verp'): 1, ('maildir', 'recipient-not-ours'): 1}


def test_a_maildir_dsn_read_before_its_delivery_waits_for_the_log(tmp_path: Path) -> None:
    """The log is behind (one line per round): the DSN is not counted as not ours but offered again once the
    delivery line is stored; a young DSN whose recipient never shows up stays in new/, uncounted, until
    CONFIRM_WAIT after its arrival."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    (maildir / 'new' / '1.M1P1.mx1').write_bytes(_dsn(RETURN_PATH, LONG))
    (maildir / 'new' / '2.M2P1.mx1').write_bytes(_dsn(RETURN_PATH, 'victim@r.test'))
    contract = _contract(tmp_path, [maildir], logs=[log])
    result = _agent(contract, 'run', '--once', '--batch-lines', '1')
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == [LONG]
    assert _problems(tmp_path / 'agent.db') == {}
    assert [path.name for path in (maildir / 'new').iterdir()] == ['2.M2P1.mx1']
    # Past the wait: counted and moved to cur/.
    _arrived_long_ago(maildir / 'new' / '2.M2P1.mx1')
    assert _agent(contract, 'run', '--once').returncode == 0
    assert _problems(tmp_path / 'agent.db') == {('maildir', 'recipient-not-ours'): 1}
    assert not list((maildir / 'new').iterdir())


def test_a_piped_dsn_read_before_its_delivery_makes_postfix_retry_while_it_is_young(tmp_path: Path) -> None:
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    contract = _contract(tmp_path, logs=[log])
    message = _received(_dsn(RETURN_PATH, LONG), ago=60)
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=message)
    assert result.returncode == 75, result.stderr
    assert 'not stored yet' in result.stderr and 'Postfix will retry' in result.stderr
    assert _problems(tmp_path / 'agent.db') == {}
    assert _agent(contract, 'run', '--once').returncode == 0  # the log catches up; Postfix delivers it again
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == [LONG]
    # Past the wait (its arrival, not a retry's time, counts): not ours, acknowledged.
    old = _received(_dsn(RETURN_PATH, 'victim@r.test'), ago=3 * 3600)
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=old)
    assert result.returncode == 0, result.stderr
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}


def test_the_confirmation_window_is_anchored_on_our_arrival_not_the_remote_clock(tmp_path: Path) -> None:
    """A DSN dated two days behind still finds its delivery; a block dated 2035 does not spoil the others."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    behind = _dsn(RETURN_PATH, LONG, date=email.utils.formatdate(time.time() - 2 * 86400))
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=_received(behind, ago=60))
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == [LONG]
        db.execute("DELETE FROM feedback_events WHERE kind = 'dsn'")
    future = _dsn(
        RETURN_PATH,
        LONG,
        'victim@r.test',
        message_id='other@relay.example',
        attempts={'victim@r.test': 'Mon, 01 Jan 2035 00:00:00 +0000'},
    )
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=future)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == [LONG]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}


def test_a_piped_dsn_with_a_received_date_in_the_future_is_decided_at_once(tmp_path: Path) -> None:
    """A wrong clock's Received date would hold the DSN at 75 until Postfix gives up: it is not used."""
    contract = _contract(tmp_path)
    message = _received(_dsn(RETURN_PATH, 'victim@r.test'), ago=-3600)
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=message)
    assert result.returncode == 0, result.stderr
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}


def test_a_waiting_maildir_dsn_is_not_parsed_again_at_every_log_batch(tmp_path: Path) -> None:
    """A busy log (one line per batch): the waiting DSN is parsed once while the log is read, once more when the
    log has reached its end, and then not again before its back-off."""
    from mailinfra_agent.contract import load_contract
    from mailinfra_agent.ingest import service
    from mailinfra_agent.ingest.sources import MaildirSource
    from mailinfra_agent.ingest.store import Backoff

    log = tmp_path / 'postfix.log'
    log.write_text(
        ''.join(f'2026-12-06T06:00:{n:02d}.000000+00:00 mx1 postfix/qmgr[1]: ABC{n:04d}: removed\n' for n in range(30))
    )
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    (maildir / 'new' / '1.M1P1.mx1').write_bytes(_dsn(RETURN_PATH, 'victim@r.test'))
    entry = {'path': str(log), 'format': 'postfix', 'instance': 'postfix', 'syslog_name': 'postfix'}
    contract = load_contract(_contract(tmp_path, [maildir], logs=[entry]))
    keys = service.signing_keys(contract)
    sources = service.build_sources(contract, service.contract_inputs(contract), 1, keys)
    [source] = [source for source in sources if isinstance(source, MaildirSource)]
    parses = 0
    parse = source.parse

    def counting(data: bytes, location: str, received: float) -> list[Event]:
        nonlocal parses
        parses += 1
        return parse(data, location, received)

    source.parse = counting
    writer = service.make_writer(contract, Backoff(0.5, 2.0), keys)
    try:
        for _ in range(40):
            for each in sources:
                each.step(writer)
        writer.flush()
    finally:
        writer.close()
    assert parses == 2
    assert [path.name for path in (maildir / 'new').iterdir()] == ['1.M1P1.mx1']
    assert _problems(tmp_path / 'agent.db') == {}


def _maildir_with_dsn(tmp_path: Path, age: float) -> Path:
    """A Maildir holding one DSN to :data:`RETURN_PATH` for :data:`LONG` that arrived ``age`` seconds ago."""
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    path = maildir / 'new' / '1.M1P1.mx1'
    path.write_bytes(_dsn(RETURN_PATH, LONG))
    then = time.time() - age
    os.utime(path, (then, then))
    return maildir


def test_a_maildir_dsn_older_than_the_wait_waits_for_the_logs_after_an_outage(tmp_path: Path) -> None:
    """Ingest was down for 3 h: the DSN that came meanwhile is past CONFIRM_WAIT, but its delivery is still in
    the unread log (read one line per round): it is confirmed once the log has reached its end."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    maildir = _maildir_with_dsn(tmp_path, age=3 * 3600)
    result = _agent(_contract(tmp_path, [maildir], logs=[log]), 'run', '--once', '--batch-lines', '1')
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == [LONG]
    assert _problems(tmp_path / 'agent.db') == {}
    assert not list((maildir / 'new').iterdir())


def test_a_maildir_dsn_past_the_longest_wait_is_decided_though_the_logs_are_behind(tmp_path: Path) -> None:
    """A log ingest cannot keep up with never reaches its end: a DSN waits for it at most CONFIRM_WAIT_MAX (it
    waited for ever, and its file stayed in new/). Here the log's first round is a full batch (not at its end) and
    the DSN is 25 h old: decided at once, before the delivery on the log's third line is read."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example', ago=26 * 3600)
    maildir = _maildir_with_dsn(tmp_path, age=25 * 3600)
    result = _agent(_contract(tmp_path, [maildir], logs=[log]), 'run', '--once', '--batch-lines', '1')
    assert result.returncode == 0, result.stderr
    assert _problems(tmp_path / 'agent.db') == {('maildir', 'recipient-not-ours'): 1}
    assert not list((maildir / 'new').iterdir())


def test_a_received_date_without_a_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailinfra_agent.ingest.service import _arrival

    monkeypatch.setenv('TZ', 'America/New_York')  # read as local time, the arrival moved by five hours
    time.tzset()
    try:
        data = b'Received: from a by mx1; Mon, 07 Dec 2026 10:00:00 -0000\nSubject: x\n\nbody\n'
        assert _arrival(data, 1_900_000_000.0) == dt.datetime(2026, 12, 7, 10, tzinfo=dt.UTC).timestamp()
    finally:
        monkeypatch.delenv('TZ')
        time.tzset()


def test_like_escape_escapes_its_escape_character() -> None:
    from mailinfra_agent.ingest.store import _like_escape

    with connect_sqlite(':memory:') as db:
        pattern = _like_escape('a!b%c_d') + '@%'
        matches = [
            text
            for text in ('a!b%c_d@r.test', 'a!bxc_d@r.test', 'a!b%cxd@r.test', 'ab%c_d@r.test')
            if db.execute("SELECT ? LIKE ? ESCAPE '!'", (text, pattern))[0][0]
        ]
    assert matches == ['a!b%c_d@r.test']


def test_a_dsn_is_confirmed_by_the_sender_when_the_message_ids_differ(tmp_path: Path) -> None:
    """The DSN returns another Message-ID (or none that matches): the return path still finds the delivery."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    message = _dsn(RETURN_PATH.upper(), LONG, message_id='rewritten@relay.example')  # a relay changed the case too
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH.upper(), stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [event.recipient for event in events(db) if event.kind == 'dsn'] == [LONG]
    # Another message's return path does not confirm this recipient.
    other = verp_sender(segment='8', recipient=LONG)
    assert _agent(contract, 'message', '--envelope-recipient', other, stdin=_dsn(other, LONG)).returncode == 0
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}


def test_a_dsn_for_a_powermta_delivery_is_confirmed_by_its_accounting_record(tmp_path: Path) -> None:
    from tests.agent.test_feedback_powermta_acct import HEADER, row

    acct = tmp_path / 'acct.csv'
    sent = dt.datetime.fromtimestamp(time.time() - SENT_AGO, dt.UTC).strftime('%Y-%m-%d %H:%M:%S+0000')
    delivered = row('d', orig=RETURN_PATH, rcpt=LONG, timeLogged=sent, timeQueued=sent)
    acct.write_text(f'{HEADER}\n{delivered}\n', encoding='utf-8')
    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    (maildir / 'new' / '1.M1P1.mx1').write_bytes(_dsn(RETURN_PATH, LONG, 'victim@r.test'))
    _arrived_long_ago(maildir / 'new' / '1.M1P1.mx1')
    logs = [{'path': str(acct), 'format': 'powermta-acct', 'instance': 'powermta'}]
    result = _agent(_contract(tmp_path, [maildir], logs=logs), 'run', '--once')
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        stored = events(db)
    assert {(e.kind, e.recipient) for e in stored} == {('delivery', LONG), ('dsn', LONG)}
    assert [e.message_id for e in stored if e.kind == 'delivery'] == [None]  # no Message-ID: found by its sender
    assert _problems(tmp_path / 'agent.db') == {('maildir', 'recipient-not-ours'): 1}


def test_a_dsn_to_a_return_path_whose_domain_a_relay_rewrote_is_confirmed(tmp_path: Path) -> None:
    """Only the local part is signed (verp.py): a rewritten domain still finds the delivery."""
    from mailinfra_agent.feedback import verp

    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, LONG, 'tx.1@app.example')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    rewritten = RETURN_PATH.split('@')[0].upper() + '@relay.example'
    assert verp.decode(rewritten, TEST_KEYS).recipient is None
    result = _agent(contract, 'message', '--envelope-recipient', rewritten, stdin=_dsn(rewritten, LONG))
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [(e.recipient, e.sender) for e in events(db) if e.kind == 'dsn'] == [(LONG, rewritten)]
    assert _problems(tmp_path / 'agent.db') == {}


def test_a_dsn_to_an_idn_domain_is_confirmed_by_a_delivery_logged_in_unicode(tmp_path: Path) -> None:
    """faß.de: IDNA 2003 (Python's codec) refuses xn--fa-hia.de; the UTS 46 mapping of names.py reads it."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', RETURN_PATH, 'joe@faß.de', 'tx.1@app.example')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    message = _dsn(RETURN_PATH, 'joe@xn--fa-hia.de', message_id='other@relay.example')
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == ['joe@xn--fa-hia.de']
    assert _problems(tmp_path / 'agent.db') == {}


def test_a_delivery_older_than_the_confirmation_window_does_not_confirm(tmp_path: Path) -> None:
    """The scan is bounded by time: a delivery sent more than CONFIRM_WINDOW before the DSN's arrival is not looked
    at."""
    from mailinfra_agent.ingest.store import CONFIRM_WINDOW

    contract = _contract(tmp_path)
    dsn_time = time.time()  # the pipe's DSN has no Received header: it arrives when it is read
    with connect_sqlite(tmp_path / 'agent.db') as db:
        migrate(db)
        for key, recipient, age in (('old', LONG, CONFIRM_WINDOW + 60), ('new', 'joe@r.test', CONFIRM_WINDOW - 60)):
            delivery = _delivery(recipient, 'tx.1@app.example')
            fields = {name: getattr(delivery, name) for name in Event.__slots__}
            insert_events(db, [Event(**{**fields, 'key': key, 'time': dsn_time - age, 'sender': RETURN_PATH})])
    message = _dsn(RETURN_PATH, LONG, 'joe@r.test', message_id='other@relay.example')
    result = _agent(contract, 'message', '--envelope-recipient', RETURN_PATH, stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [e.recipient for e in events(db) if e.kind == 'dsn'] == ['joe@r.test']
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'recipient-not-ours'): 1}


def _anonymised_complaint(message_id: str) -> bytes:
    """A JMRP-style report: recipient redacted, a return path that is not ours, no id header."""
    return (
        'From: staff@hotmail.example\nTo: fbl@news.example.com\nDate: Sun, 06 Dec 2026 06:20:00 +0000\n'
        'Message-ID: <jmrp.1@hotmail.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        '--b\nContent-Type: text/plain\n\nThe recipient address has been removed.\n\n'
        '--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: Microsoft JMRP/2.0\n'
        'Version: 1\nOriginal-Mail-From: <bounces@app.example>\nOriginal-Rcpt-To: <redacted>\n\n'
        '--b\nContent-Type: text/rfc822-headers\n\nReturn-Path: <bounces@app.example>\nFrom: shop@app.example\n'
        f'To: <redacted>\nMessage-ID: <{message_id}>\n\n--b--\n'
    ).encode()


def test_an_anonymised_complaint_takes_the_stream_of_its_delivery_and_suppresses_only_there(tmp_path: Path) -> None:
    from mailinfra_agent.contract import load_contract
    from mailinfra_agent.suppression import SuppressionList, Suppressor

    log = _postfix_log(
        tmp_path / 'postfix-transactional.log', 'bounces@app.example', 'buyer@outlook.test', 'tx.9@app.example'
    )
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    message = _anonymised_complaint('tx.9@app.example')
    result = _agent(contract, 'message', '--envelope-recipient', 'fbl@news.example.com', stdin=message)
    assert result.returncode == 0, result.stderr
    with connect_sqlite(tmp_path / 'agent.db') as db:
        [complaint] = [event for event in events(db) if event.kind == 'complaint']
        assert (complaint.recipient, complaint.stream) == ('buyer@outlook.test', 'transactional')
        suppressor = Suppressor.from_contract(load_contract(contract), SuppressionList(db, b'test-hash-key'))
        assert {stream.name: stream.complaint_links for stream in suppressor.policy.streams.values()}[
            'transactional'
        ] == ()
        suppressor.apply(complaint)
        scopes = {entry.scope for entry in suppressor.suppressions.entries(address='buyer@outlook.test')}
    assert scopes == {'transactional'}  # not cold_outreach nor marketing: it never went through them


def test_an_anonymised_complaint_whose_deliveries_disagree_on_the_stream_keeps_none(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    with connect_sqlite(tmp_path / 'agent.db') as db:
        migrate(db)
        first = _delivery('buyer@outlook.test', 'tx.9@app.example')
        second = Event(
            **{**{name: getattr(first, name) for name in Event.__slots__}, 'key': 'k2', 'stream': 'cold_outreach'}
        )
        insert_events(db, [first, second])
    message = _anonymised_complaint('tx.9@app.example')
    assert _agent(contract, 'message', '--envelope-recipient', 'fbl@news.example.com', stdin=message).returncode == 0
    with connect_sqlite(tmp_path / 'agent.db') as db:
        [complaint] = [event for event in events(db) if event.kind == 'complaint']
    assert (complaint.recipient, complaint.stream) == ('buyer@outlook.test', None)
