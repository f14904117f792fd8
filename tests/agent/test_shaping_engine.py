"""The shaping engine against a real SQLite store: rule matching, triggers, actions, expiry, caps, release."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import Contract
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.ingest.service import postfix_parser
from mailinfra_agent.shaping import state
from mailinfra_agent.shaping.engine import Engine, format_change
from mailinfra_agent.shaping.rules import internal, reply_subject
from mailinfra_agent.store import Database, connect_sqlite, migrate
from tests.agent.shaping_fixtures import (
    GMAIL_428,
    IP,
    OTHER_STREAM_IP,
    SPAMHAUS,
    STREAM,
    YAHOO_TSS04,
    contract,
    contract_data,
    delivery,
    sent,
    sqlite_store,
)

NOW = time.time()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        yield database


def _contract(tmp_path: Path, edit: Any = None) -> Contract:
    data = contract_data(sqlite_store(tmp_path))
    if edit is not None:
        edit(data)
    return contract(data)


def _events(shaped: Contract, *lines: str) -> list[Event]:
    parser = postfix_parser(shaped)
    found: list[Event] = []
    for number, line in enumerate(lines, 1):
        found.extend(r for r in parser.parse_line(line, 'test.log', number) if isinstance(r, Event))
    return found


def _observe(engine: Engine, db: Database, *lines: str, now: float = NOW) -> list[str]:
    with db.transaction():
        changes = engine.observe(db, _events(engine.contract, *lines), now)
    return [format_change(change) for change in changes]


def _active(db: Database, host: str = 'mx1') -> list[tuple[str, str, str | None, str, bool]]:
    return [
        (a.action.stream, a.action.ip, a.action.isp, a.action.kind, a.action.failover) for a in state.active(db, host)
    ]


def test_reply_subject_is_code_enhanced_text(tmp_path: Path) -> None:
    (event,) = _events(_contract(tmp_path), delivery(NOW - 5))
    assert reply_subject(event) == (
        '421 4.7.28 [198.51.100.10] Gmail has detected an unusual rate of unsolicited mail originating from your IP'
    )
    assert not internal(event)


def test_own_lines_are_internal(tmp_path: Path) -> None:
    shaped = _contract(tmp_path)
    suspended = delivery(
        NOW - 5,
        text=f'delivery temporarily suspended: host gmail-smtp-in.l.google.com[203.0.113.25] said: {GMAIL_428}',
    )
    held = delivery(NOW - 5, text='deferred transport', relay='none', dsn='4.3.2')
    retry = delivery(NOW - 5, text='4.7.28 held by mailinfra shaping', relay='none', dsn='4.7.28')
    events = _events(shaped, suspended, held, retry)
    assert len(events) == 3
    assert all(internal(event) for event in events)


def test_a_gmail_428_suspends_that_ip_and_isp_only(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    lines = _observe(engine, db, delivery(NOW - 5), delivery(NOW - 4, isp='yahoo', reply='250 ok', status='sent'))
    assert _active(db) == [(STREAM, IP, 'gmail', 'suspend', False)]
    assert len(lines) == 1
    assert lines[0].startswith('event=applied stream=transactional ip=198.51.100.10 isp=gmail action=suspend ')
    (item,) = state.active(db, 'mx1')
    assert item.action.until == pytest.approx(NOW - 5 + 600, abs=1)
    desired = engine.desired(db, NOW)
    assert [a.isp for a in desired['transactional']] == ['gmail']
    assert desired['cold_outreach'] == ()


def test_a_storm_from_transports_the_contract_does_not_know_is_counted_not_acted_on(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Hundreds of matching lines from IPs that are not the stream's, or ISPs it does not know, store no action (none
    could be applied: no metric series, no warning per convergence); each transport is logged once."""
    engine = Engine(_contract(tmp_path), use_warmup=False)
    transport = f'out_{IP.replace(".", "_")}__gmail'
    foreign = [delivery(NOW - 5, ip=f'10.0.{n // 200}.{n % 200 + 1}') for n in range(300)]
    unknown = [delivery(NOW - 5).replace(transport, f'{transport}_{n}') for n in range(300)]
    lines = _observe(engine, db, *foreign, *unknown, *foreign[:5], delivery(NOW - 4))
    assert _active(db) == [(STREAM, IP, 'gmail', 'suspend', False)]
    assert len(lines) == 1
    assert engine.ignored.total() == 605 and len(engine.ignored) == 600
    assert engine.ignored[(STREAM, '10.0.0.1', 'gmail')] == 2
    assert engine.ignored[(STREAM, IP, 'gmail_7')] == 1
    warnings = [record.getMessage() for record in caplog.records if 'ignored' in record.getMessage()]
    assert len(warnings) == 600
    assert 'ip=10.0.0.1 isp=gmail: rule "' in warnings[0] and 'not a sending IP of the stream' in warnings[0]
    assert 'an ISP the stream does not know' in warnings[-1]


def test_an_isp_the_stream_lacks_is_ignored_from_a_transport_name_only_not_from_the_recipients_domain(
    tmp_path: Path, db: Database
) -> None:
    """Mail to Yahoo on the default transport of a stream without Yahoo rules falls under the default ISP's rules
    (and backs off); a transport ``out_<ip>__aol`` (an ISP the contract does not know, e.g. renamed since the role
    rendered it) is foreign: counted, not acted on."""

    def without_yahoo(data: dict[str, Any]) -> None:
        stream = next(item for item in data['streams'] if item['name'] == STREAM)
        stream['isps'] = [isp for isp in stream['isps'] if isp['isp'] != 'yahoo']

    engine = Engine(_contract(tmp_path, without_yahoo), use_warmup=False)
    reply = '421 4.7.0 [TS03] temporarily deferred'
    foreign = [delivery(NOW - 5, isp='yahoo', reply=reply, dsn='4.7.0').replace('__yahoo/', '__aol/')] * 20
    _observe(engine, db, *foreign)
    assert _active(db) == []
    assert engine.ignored == {(STREAM, IP, 'aol'): 20}
    default = delivery(NOW - 4, isp='*', reply=reply, dsn='4.7.0').replace('@example.org>', '@yahoo.com>')
    assert _events(engine.contract, default)[0].isp == 'yahoo'  # from the domain
    _observe(engine, db, *[default] * 20)
    assert _active(db) == [(STREAM, IP, '*', 'backoff', False)]
    assert engine.ignored.total() == 20


def test_first_match_wins_and_unmatched_lines_do_nothing(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    _observe(engine, db, delivery(NOW - 5, isp='yahoo', reply=YAHOO_TSS04, dsn='4.7.0'))
    # TSS04 is Yahoo's suspend rule, before the generic 4.7.x back-off rule.
    assert _active(db) == [(STREAM, IP, 'yahoo', 'suspend', False)]
    _observe(engine, db, delivery(NOW - 4, isp='microsoft', reply='450 4.2.0 mailbox busy', dsn='4.2.0'))
    assert [row[2] for row in _active(db)] == ['yahoo']


def test_suspend_ip_takes_the_ip_for_every_isp(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    _observe(engine, db, delivery(NOW - 5, isp='microsoft', reply=SPAMHAUS, dsn='5.7.1', status='bounced'))
    assert _active(db) == [(STREAM, IP, None, 'suspend_ip', False)]
    (change,) = _observe(engine, db, delivery(NOW - 3, isp='gmail', reply=SPAMHAUS, dsn='5.7.1', status='bounced'))
    assert 'event=extended' in change and 'isp=* action=suspend_ip' in change


def test_trigger_needs_the_count_within_the_window(tmp_path: Path, db: Database) -> None:
    def edit(data: dict[str, Any]) -> None:
        for stream in data['streams']:
            for isp in stream['isps']:
                if isp['isp'] == 'gmail':
                    isp['backoff_rules'][0].update(trigger_count=3, trigger_window=60)

    engine = Engine(_contract(tmp_path, edit), use_warmup=False)
    # Three matches, but not within 60 s: nothing.
    _observe(engine, db, delivery(NOW - 300), delivery(NOW - 200), delivery(NOW - 100))
    assert _active(db) == []
    # Two more within a minute of the last: three in the window.
    assert _observe(engine, db, delivery(NOW - 70)) == []
    assert _active(db) == []
    (change,) = _observe(engine, db, delivery(NOW - 50))
    assert 'event=applied' in change
    assert _active(db) == [(STREAM, IP, 'gmail', 'suspend', False)]


def test_own_lines_never_trigger_or_extend(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    _observe(engine, db, delivery(NOW - 60))
    (before,) = state.active(db, 'mx1')
    suspended = f'delivery temporarily suspended: host gmail-smtp-in.l.google.com[203.0.113.25] said: {GMAIL_428}'
    lines = [
        delivery(NOW - 10, text=suspended),
        delivery(NOW - 9, text='deferred transport', relay='none', dsn='4.3.2'),
        delivery(NOW - 8, text=f'4.7.28 {GMAIL_428}', relay='none'),
    ]
    assert _observe(engine, db, *lines) == []
    (after,) = state.active(db, 'mx1')
    assert after.action.until == before.action.until
    # A real reply from the server does extend it.
    (change,) = _observe(engine, db, delivery(NOW - 1))
    assert change.startswith('event=extended')
    assert state.active(db, 'mx1')[0].action.until > before.action.until


def test_a_line_read_twice_acts_once(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    line = delivery(NOW - 5)
    assert len(_observe(engine, db, line)) == 1
    assert _observe(engine, db, line) == []
    assert Engine(_contract(tmp_path), use_warmup=False).observe(db, _events(engine.contract, line), NOW) == []
    assert state.counters(db, 'mx1') == [(STREAM, IP, 'gmail', 'suspend', 'applied', 1)]


def test_a_match_whose_action_is_already_over_does_nothing(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    assert _observe(engine, db, delivery(NOW - 601)) == []
    assert _active(db) == []


def test_actions_expire_and_are_counted(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    _observe(engine, db, delivery(NOW - 5))
    with db.transaction():
        assert engine.evaluate(db, NOW + 500) == []
    with db.transaction():
        (change,) = engine.evaluate(db, NOW + 600)
    assert format_change(change).startswith('event=expired stream=transactional ip=198.51.100.10 isp=gmail')
    assert _active(db) == []
    assert engine.desired(db, NOW + 600)['transactional'] == ()
    events = {row[4]: row[5] for row in state.counters(db, 'mx1')}
    assert events == {'applied': 1, 'expired': 1}


def test_release_ends_actions_by_hand(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    _observe(engine, db, delivery(NOW - 5), delivery(NOW - 5, isp='yahoo', reply=YAHOO_TSS04, dsn='4.7.0'))
    with db.transaction():
        assert engine.release(db, STREAM, OTHER_STREAM_IP, None, NOW) == []
        (change,) = engine.release(db, STREAM, IP, 'yahoo', NOW)
    assert change.event == 'released' and change.action.isp == 'yahoo'
    assert _active(db) == [(STREAM, IP, 'gmail', 'suspend', False)]


def test_an_invalid_pattern_is_a_clear_error(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data['streams'][0]['isps'][0]['backoff_rules'][0]['pattern'] = '(unclosed'

    with pytest.raises(ValueError, match=r'stream transactional, ISP \*: back-off rule 1 has an invalid pattern'):
        Engine(_contract(tmp_path, edit), use_warmup=False)


@dataclass(frozen=True)
class FakeCap:
    stream: str
    ip: str
    isp: str
    cap: int
    isps: tuple[str, ...]
    since: float
    until: float
    reason: str


def test_warmup_cap_suspends_the_transport_until_midnight(tmp_path: Path, db: Database) -> None:
    day = (NOW // 86400) * 86400
    caps = [
        FakeCap(STREAM, IP, 'gmail', 3, ('gmail',), day, day + 86400, 'warm-up day 2'),
        FakeCap(STREAM, IP, '*', 100, ('*', 'yahoo'), day, day + 86400, 'x'),
    ]
    engine = Engine(
        _contract(tmp_path),
        caps=lambda contract, store, now: caps,
        day_bounds=lambda when: ((when // 86400) * 86400, (when // 86400) * 86400 + 86400),
    )
    engine.refresh_caps(db, NOW)
    _observe(engine, db, sent(NOW - 3), sent(NOW - 2), sent(NOW - 2, isp='yahoo'))
    with db.transaction():
        assert engine.evaluate(db, NOW) == []
    assert state.deliveries(db, 'mx1', STREAM, IP, 'gmail', int(day)) == 2
    assert state.deliveries(db, 'mx1', STREAM, IP, '*', int(day)) == 1  # yahoo has no cap of its own
    _observe(engine, db, sent(NOW - 1))
    with db.transaction():
        (change,) = engine.evaluate(db, NOW)
    assert change.event == 'applied'
    assert (change.action.kind, change.action.isp, change.action.failover) == ('cap', 'gmail', False)
    assert change.action.until == day + 86400
    assert '3 of 3 deliveries today' in change.action.reason
    # Releasing the cap restarts the day's count: not applied again at once.
    with db.transaction():
        assert [c.event for c in engine.release(db, STREAM, IP, 'gmail', NOW)] == ['released']
        assert engine.evaluate(db, NOW) == []
    # At midnight the cap (if applied again) is over.
    _observe(engine, db, sent(NOW - 1), sent(NOW - 1), sent(NOW - 1))
    with db.transaction():
        assert [c.event for c in engine.evaluate(db, NOW)] == ['applied']
    with db.transaction():
        assert [c.event for c in engine.evaluate(db, day + 86400)] == ['expired']


def test_releasing_an_isp_of_the_default_cap_restarts_the_default_count(tmp_path: Path, db: Database) -> None:
    day = (NOW // 86400) * 86400
    caps = [FakeCap(STREAM, IP, '*', 2, ('*', 'yahoo'), day, day + 86400, 'warm-up day 1')]

    def engine() -> Engine:
        return Engine(
            _contract(tmp_path),
            caps=lambda contract, store, now: caps,
            day_bounds=lambda when: ((when // 86400) * 86400, (when // 86400) * 86400 + 86400),
        )

    service = engine()
    service.refresh_caps(db, NOW)
    _observe(service, db, sent(NOW - 2, isp='yahoo'), sent(NOW - 1, isp='yahoo'))
    with db.transaction():
        assert sorted(c.action.isp or '' for c in service.evaluate(db, NOW)) == ['*', 'yahoo']
    # As the release command does: a fresh engine, no caps computed yet. Yahoo's mail counts as '*'.
    with db.transaction():
        assert [c.action.isp for c in engine().release(db, STREAM, IP, 'yahoo', NOW)] == ['yahoo']
    assert state.deliveries(db, 'mx1', STREAM, IP, '*', int(day)) == 0
    with db.transaction():
        assert service.evaluate(db, NOW) == []  # not capped again at once
    assert [a[2] for a in _active(db)] == ['*']


def test_the_real_warmup_module_gives_caps(tmp_path: Path, db: Database) -> None:
    today = time.strftime('%Y-%m-%d', time.gmtime(NOW))

    def edit(data: dict[str, Any]) -> None:
        data['warmup'] = {
            'curve': 'test',
            'steps': [{'day': 1, 'cap': 2}, {'day': 30, 'cap': 1000}],
            'time_zone': 'UTC',
            'on_threshold': 'hold',
            'min_sent': 50,
            'streams': [],
        }
        data['ips'][0]['warmup_started'] = today

    engine = Engine(_contract(tmp_path, edit))
    engine.refresh_caps(db, NOW)
    assert [(c.stream, c.ip, c.isp, c.cap) for c in engine.caps] == [(STREAM, IP, '*', 2)]
    _observe(engine, db, sent(NOW - 2, isp='gmail'), sent(NOW - 1, isp='yahoo'))
    (cap,) = engine.caps
    with db.transaction():
        changes = engine.evaluate(db, NOW)
    # The default cap covers every ISP without a share of its own: each of their transports stops.
    assert sorted(c.action.isp or '' for c in changes) == sorted({'*', *cap.isps})
    assert {(c.event, c.action.kind, c.action.until) for c in changes} == {('applied', 'cap', cap.until)}
    assert {'gmail', 'yahoo'} <= set(cap.isps)


def test_a_greeting_refusal_is_matched_too(tmp_path: Path, db: Database) -> None:
    engine = Engine(_contract(tmp_path), use_warmup=False)
    text = f'host gmail-smtp-in.l.google.com[203.0.113.25] refused to talk to me: {GMAIL_428}'
    (event,) = _events(engine.contract, delivery(NOW - 5, text=text))
    assert reply_subject(event).startswith('421 4.7.28 [198.51.100.10] Gmail has detected')
    (change,) = _observe(engine, db, delivery(NOW - 5, text=text))
    assert 'event=applied' in change and 'action=suspend' in change
