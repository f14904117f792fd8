"""Ingest of feedback messages: the bounce MX's Maildir and the pipe transport (``ingest message``).

The messages are the samples (tests/data/feedback/messages: Postfix's own DSNs, public ARF samples, synthetic
anonymised complaints) signed with the samples' test key; the parser is feedback/message.py, the store a real SQLite.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
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


def _contract(tmp_path: Path, maildirs: list[Path] | None = None, key: bool = True) -> Path:
    data: dict[str, Any] = contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {})
    data['feedback_maildirs'] = [str(path) for path in maildirs or []]
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
        shutil.copyfile(sample, root / 'new' / f'1765000{number:03d}.M{number}P42.mx1')
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
    assert reasons['no-delivery-status'] == 2 and reasons['not-a-complaint'] == 1
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


SHAPE_EVENTS = {
    ('dsn', 'bounced', 'jöe@xn--bcher-kva.example', 'marketing'),
    ('complaint', 'complaint', 'ann@isp.example', 'marketing'),
}
SHAPE_PROBLEMS = {'auto-reply': 1, 'unknown-format': 1}


def test_real_world_shapes_give_the_same_store_through_the_pipe_and_the_maildir(tmp_path: Path) -> None:
    piped = tmp_path / 'pipe'
    piped.mkdir()
    contract = _contract(piped)
    for message, recipient in _shapes().values():
        result = _agent(contract, 'message', '--envelope-recipient', recipient, stdin=message)
        assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    with connect_sqlite(piped / 'agent.db') as db:
        stored = events(db)
        problems = problem_counts(db)
    assert {(e.kind, e.status, e.recipient, e.stream) for e in stored} == SHAPE_EVENTS and len(stored) == 2
    assert {reason: n for (_, kind, reason), n in problems.items() if kind == 'pipe'} == SHAPE_PROBLEMS

    maildir = tmp_path / 'Maildir'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    for number, (message, recipient) in enumerate(_shapes().values(), 1):
        (maildir / 'new' / f'{number}.M1P1.mx1').write_bytes(f'X-Original-To: {recipient}\n'.encode() + message)
    read = tmp_path / 'maildir'
    read.mkdir()
    assert _agent(_contract(read, [maildir]), 'run', '--once').returncode == 0
    with connect_sqlite(read / 'agent.db') as db:
        assert [(e.kind, e.status, e.recipient, e.stream, e.key) for e in events(db)] == [
            (e.kind, e.status, e.recipient, e.stream, e.key) for e in stored
        ]
        maildir_problems = {reason: n for (_, kind, reason), n in problem_counts(db).items() if kind == 'maildir'}
    assert maildir_problems == SHAPE_PROBLEMS
