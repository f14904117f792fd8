"""Complaints mailed to the bounce MX suppress only when our own data attributes their recipient.

Anybody can mail an ARF report to a feedback address naming any ``Original-Rcpt-To`` and any Message-ID. Such a
recipient is kept only when the ``X-Mailinfra-Id`` header was made for it, or the store holds a delivery to it of the
report's Message-ID or from our signed return path; else the report is counted ``unattributed-complaint`` and
suppresses nobody. Through the real ``ingest message`` (the pipe transport's command) into a real SQLite store, then
the real suppression policy over the stored events.
"""

from __future__ import annotations

from pathlib import Path

from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback import tokens
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.store import connect, connect_sqlite, migrate
from mailinfra_agent.store.events import events, insert_events
from mailinfra_agent.suppression import SuppressionList, Suppressor
from mailinfra_agent.suppression.service import stored_events
from tests.agent.conftest import Postgres
from tests.agent.postfix_dsn import TEST_KEYS
from tests.agent.test_ingest_messages import LONG, RETURN_PATH, _agent, _contract, _postfix_log, _problems, _received
from tests.agent.test_ingest_postgresql import _database, _signed_contract

FBL = 'fbl@news.example.com'
VICTIM = 'ceo@customer.example'


def _report(*recipients: str, message_id: str, return_path: str = 'news@news.example.com', extra: str = '') -> bytes:
    """A Yahoo CFL-style report (the original's headers) naming ``recipients`` in Original-Rcpt-To."""
    rcpt_to = ''.join(f'Original-Rcpt-To: <{recipient}>\n' for recipient in recipients)
    return (
        'From: feedback@arf.isp.example\nTo: fbl@news.example.com\nDate: Sun, 06 Dec 2026 06:20:00 +0000\n'
        'Message-ID: <cfl.1@arf.isp.example>\nMIME-Version: 1.0\n'
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b"\n\n'
        '--b\nContent-Type: text/plain\n\nThis is an abuse report.\n\n'
        '--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: SomeFBL/1.0\nVersion: 1\n'
        f'Original-Mail-From: <{return_path}>\n{rcpt_to}\n'
        f'--b\nContent-Type: text/rfc822-headers\n\nReturn-Path: <{return_path}>\nFrom: news@news.example.com\n'
        f'{extra}Message-ID: <{message_id}>\n\n--b--\n'
    ).encode()


def _pipe(contract: Path, message: bytes) -> str:
    result = _agent(contract, 'message', '--envelope-recipient', FBL, stdin=message)
    assert result.returncode == 0, result.stderr
    return result.stderr


def _complaints(db_path: Path) -> list[tuple[str, str | None]]:
    with connect_sqlite(db_path) as db:
        return sorted((event.recipient, event.stream) for event in events(db) if event.kind == 'complaint')


def _suppressed(contract: Path, db_path: Path) -> set[tuple[str, str]]:
    """Every stored event through the suppression policy: the (scope, address) rows it adds."""
    with connect_sqlite(db_path) as db:
        suppressor = Suppressor.from_contract(load_contract(contract), SuppressionList(db, b'test-hash-key'))
        suppressor.apply_all(stored_events(db, 0))
        return {(entry.scope, entry.address or '') for entry in suppressor.suppressions.entries()}


def test_a_forged_complaint_suppresses_nobody(tmp_path: Path) -> None:
    """The issue's case: a report to the FBL address naming the customer's CEO, about a message we never sent."""
    contract = _contract(tmp_path)
    stderr = _pipe(contract, _report(VICTIM, message_id='never-sent@news.example.com'))
    assert _complaints(tmp_path / 'agent.db') == []
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}
    assert 'unattributed-complaint' in stderr and VICTIM not in stderr  # logged without the address
    assert _suppressed(contract, tmp_path / 'agent.db') == set()


def test_a_complaint_is_kept_for_the_recipients_its_message_was_delivered_to(tmp_path: Path) -> None:
    """Message-ID and recipient match a logged delivery: kept, with the delivery's stream (and suppressed only
    there and in its links); the other recipient the report names is not."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', 'bounces@app.example', 'buyer@isp.test', 'tx.9@app.test')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    _pipe(contract, _report('buyer@isp.test', VICTIM, message_id='tx.9@app.test'))
    assert _complaints(tmp_path / 'agent.db') == [('buyer@isp.test', 'transactional')]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}
    assert _suppressed(contract, tmp_path / 'agent.db') == {('transactional', 'buyer@isp.test')}
    # The victim alone about that real Message-ID: never stored; the report is its one recipient's (a forward's
    # target is named, as an anonymised report names nobody), the same complaint again.
    _pipe(contract, _report(VICTIM, message_id='tx.9@app.test').replace(b'cfl.1@', b'cfl.2@'))
    assert _complaints(tmp_path / 'agent.db') == [('buyer@isp.test', 'transactional')]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}


def test_a_complaint_about_a_forwarded_message_is_its_recipient_s(tmp_path: Path) -> None:
    """The provider names the address the message was forwarded to: the id header made for our recipient verifies but
    matches no claim; the Message-ID's delivery it was made for is the complaint."""
    log = _postfix_log(
        tmp_path / 'postfix-transactional.log', 'bounces@app.example', 'alias@corp.test', 'fw.1@app.test'
    )
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    ident = tokens.make_id('alias@corp.test', 'transactional', TEST_KEYS)
    _pipe(contract, _report('user@yahoo.test', message_id='fw.1@app.test', extra=f'X-Mailinfra-Id: {ident}\n'))
    assert _complaints(tmp_path / 'agent.db') == [('alias@corp.test', 'transactional')]
    assert _problems(tmp_path / 'agent.db') == {}


def test_the_id_header_attributes_only_the_recipient_it_was_made_for(tmp_path: Path) -> None:
    """A genuine X-Mailinfra-Id copied from the attacker's own mail does not make the victim's claim ours; the header
    made for the named recipient does, without a stored delivery."""
    contract = _contract(tmp_path)
    copied = tokens.make_id('attacker@isp.test', 'marketing', TEST_KEYS)
    _pipe(contract, _report(VICTIM, message_id='m.1@news.example.com', extra=f'X-Mailinfra-Id: {copied}\n'))
    assert _complaints(tmp_path / 'agent.db') == []
    own = tokens.make_id('reader@isp.test', 'marketing', TEST_KEYS)
    message = _report('reader@isp.test', message_id='m.2@news.example.com', extra=f'X-Mailinfra-Id: {own}\n')
    _pipe(contract, message.replace(b'cfl.1@', b'cfl.2@'))
    assert _complaints(tmp_path / 'agent.db') == [('reader@isp.test', 'marketing')]
    # Made for the address as the application wrote it, with a UTF-8 domain (the report's is mapped to A-labels).
    idn = tokens.make_id('jöe@bücher.example', 'cold_outreach', TEST_KEYS)
    message = _report('jöe@bücher.example', message_id='m.3@news.example.com', extra=f'X-Mailinfra-Id: {idn}\n')
    _pipe(contract, message.replace(b'cfl.1@', b'cfl.3@'))
    assert _complaints(tmp_path / 'agent.db') == [
        ('jöe@xn--bcher-kva.example', 'cold_outreach'),
        ('reader@isp.test', 'marketing'),
    ]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}


def test_our_return_path_without_recipient_attributes_the_recipients_it_was_sent_to(tmp_path: Path) -> None:
    """Original-Mail-From is our signed return path (no room for the recipient) and the report's Message-ID is
    another (a provider's rewrite): the delivery from that return path confirms its recipient, not the victim."""
    log = _postfix_log(tmp_path / 'postfix-marketing.log', RETURN_PATH, LONG, 'tx.1@app.test', instance='marketing')
    contract = _contract(tmp_path, logs=[log])
    assert _agent(contract, 'run', '--once').returncode == 0
    _pipe(contract, _report(LONG, VICTIM, message_id='rewritten@isp.test', return_path=RETURN_PATH))
    assert _complaints(tmp_path / 'agent.db') == [(LONG, 'marketing')]
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}


def test_a_complaint_read_before_its_delivery_waits_for_the_log(tmp_path: Path) -> None:
    """The log is behind: a young complaint makes Postfix retry (75) instead of being counted, and is kept once the
    delivery is stored; past the wait an unmatched one is counted."""
    log = _postfix_log(tmp_path / 'postfix-transactional.log', 'bounces@app.example', 'buyer@isp.test', 'tx.9@app.test')
    contract = _contract(tmp_path, logs=[log])
    young = _received(_report('buyer@isp.test', message_id='tx.9@app.test'), ago=60)
    result = _agent(contract, 'message', '--envelope-recipient', FBL, stdin=young)
    assert result.returncode == 75, result.stderr
    assert _problems(tmp_path / 'agent.db') == {} and _complaints(tmp_path / 'agent.db') == []
    assert _agent(contract, 'run', '--once').returncode == 0  # the log catches up; Postfix delivers it again
    _pipe(contract, young)
    assert _complaints(tmp_path / 'agent.db') == [('buyer@isp.test', 'transactional')]
    old = _received(_report(VICTIM, message_id='never@app.test').replace(b'cfl.1@', b'cfl.2@'), ago=3 * 3600)
    _pipe(contract, old)
    assert _problems(tmp_path / 'agent.db') == {('pipe', 'unattributed-complaint'): 1}


def test_complaints_are_attributed_the_same_in_postgresql(postgres: Postgres, tmp_path: Path) -> None:
    """The Message-ID lookup (a delivery logged with a UTF-8 domain) and the forged report on the shared store."""
    store = _database(postgres)
    contract = _signed_contract(tmp_path, store)
    with connect(store) as db:
        migrate(db)
        delivery = Event('sent-1', 'delivery', 'sent', 0, 'jöe@bücher.example', 'log', message_id='p.1@x.test')
        insert_events(db, [delivery])
    _pipe(contract, _report('jöe@bücher.example', VICTIM, message_id='p.1@x.test'))
    with connect(store) as db:
        complaints = [(event.recipient, event.stream) for event in events(db) if event.kind == 'complaint']
        problems = db.execute('SELECT source_kind, reason, count FROM ingest_problems')
    assert complaints == [('jöe@xn--bcher-kva.example', None)]
    assert [tuple(row) for row in problems] == [('pipe', 'unattributed-complaint', 1)]
