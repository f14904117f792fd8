"""Warm-up on the host: the curve, the split across ISPs, local midnight and holds from a real store's events."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import (
    CONTRACT_VERSION,
    DEFAULT_ISP,
    Blocklists,
    BlocklistSubjects,
    Contract,
    Host,
    Injection,
    Isp,
    Limits,
    QueueThresholds,
    Retry,
    SendingIp,
    Stream,
    StreamIsp,
    Thresholds,
    Warmup,
    WarmupStep,
    WarmupStream,
    dump_contract,
    load_contract,
)
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.shaping.warmup import (
    DayCounts,
    WarmupError,
    caps,
    check_warmup,
    curve_cap,
    daily_counts,
    day_bounds,
    progress,
    split_cap,
)
from mailinfra_agent.store import Database, connect, connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events
from tests.agent.conftest import Postgres

CONSERVATIVE = ((1, 50), (2, 100), (3, 200), (4, 400), (5, 800), (6, 1500), (7, 3000), (14, 25_000), (30, 175_000))
STEPS = tuple(WarmupStep(day, cap) for day, cap in CONSERVATIVE)
WARM_IP = '203.0.113.20'
OLD_IP = '203.0.113.21'
BERLIN = 'Europe/Berlin'
SHARES = {'gmail': 300_000, 'yahoo': 100_000}
ISPS = (DEFAULT_ISP, 'comcast', 'gmail', 'yahoo')
"""The stream's ISPs: comcast has no share (it counts with the other recipients)."""
LIMITS = Limits(5, 50, 1000, 100, 600, 100, 3600, 3600, False)


def at(text: str) -> float:
    """Unix time of an ISO date-time with offset."""
    return dt.datetime.fromisoformat(text).timestamp()


def make_contract(started: str | None = '2026-03-01', **warmup: object) -> Contract:
    settings: dict[str, object] = {
        'curve': 'conservative',
        'steps': STEPS,
        'time_zone': BERLIN,
        'streams': (WarmupStream('marketing', 20_000, 1_000, SHARES),),
    }
    settings.update(warmup)
    return Contract(
        version=CONTRACT_VERSION,
        host=Host('mx1', 'mx1.example.net', ('mta',), 'postfix'),
        streams=(
            Stream(
                'marketing',
                'marketing',
                'postfix-marketing',
                ('ex.net',),
                Injection(2525, (), ()),
                Retry(1, 2, 3),
                (),
                (),
                tuple(StreamIsp(name, LIMITS, (600,), ()) for name in ISPS),
            ),
        ),
        isps=tuple(Isp(name, name, (), ()) for name in ISPS),
        ips=(
            SendingIp('mk_1', WARM_IP, 'a.example.net', 'a.example.net', 'mk', 'marketing', started),
            SendingIp('mk_2', OLD_IP, 'b.example.net', 'b.example.net', 'mk', 'marketing'),
        ),
        thresholds=Thresholds(QueueThresholds(1, 2, 3, 4)),
        blocklists=Blocklists(900, (), subjects=BlocklistSubjects()),
        warmup=Warmup(**settings),  # type: ignore[arg-type]
    )


_serial = count()


def event(when: str, status: str = 'sent', kind: str = 'delivery', **fields: object) -> Event:
    values: dict[str, object] = {'stream': 'marketing', 'sending_ip': WARM_IP, 'isp': 'gmail', 'sender': 'b-x@ex.net'}
    values.update(fields)
    return Event(
        key=event_key('warmup', next(_serial)),
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        time=at(when),
        recipient='someone@example.com',
        source='/var/log/postfix/postfix-marketing.log',
        **values,  # type: ignore[arg-type]
    )


def day_of(date: str, sent: int, hard: int = 0, soft: int = 0, complaints: int = 0, **fields: Any) -> list[Event]:
    """A day's events of the warming IP at noon Berlin time."""
    when = f'{date}T12:00:00+01:00'
    return [
        *(event(when, **fields) for _ in range(sent)),
        *(event(when, 'bounced', category='bad-mailbox', **fields) for _ in range(hard)),
        *(event(when, 'bounced', category='quota-issues', **fields) for _ in range(soft)),
        *(event(when, 'complaint', 'complaint', **fields) for _ in range(complaints)),
    ]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = connect_sqlite(tmp_path / 'agent.db')
    migrate(database)
    yield database
    database.close()


def store(db: Database, *days: list[Event]) -> None:
    with db.transaction():
        insert_events(db, [item for day in days for item in day])


# --- the curve and the split -------------------------------------------------------------------------------------


def test_curve_gives_published_points_and_interpolates_between_them() -> None:
    assert [curve_cap(STEPS, day) for day in (1, 2, 7, 14, 30)] == [50, 100, 3000, 25_000, 175_000]
    # day 10 lies between 3,000 (day 7) and 25,000 (day 14): 3000 * (25000/3000) ** (3/7), rounded down
    assert curve_cap(STEPS, 10) == int(3000 * (25_000 / 3000) ** (3 / 7)) == 7443
    assert 3000 < curve_cap(STEPS, 8) < curve_cap(STEPS, 9) < 25_000  # type: ignore[operator]


def test_curve_is_zero_before_the_start_and_none_after_its_end() -> None:
    assert curve_cap(STEPS, 0) == 0
    assert curve_cap(STEPS, -3) == 0
    assert curve_cap(STEPS, 31) is None
    assert curve_cap((), 5) is None


def test_split_rounds_down_and_gives_the_rest_to_other_recipients() -> None:
    parts = split_cap(3001, SHARES)
    assert parts == {'gmail': 900, 'yahoo': 300, DEFAULT_ISP: 1801}
    assert sum(parts.values()) == 3001
    assert split_cap(50, {}) == {DEFAULT_ISP: 50}
    assert split_cap(7, {'gmail': 999_999}) == {'gmail': 6, DEFAULT_ISP: 1}
    assert split_cap(100, {'gmail': 500_000, 'comcast': 0}) == {'gmail': 50, DEFAULT_ISP: 50}


# --- checks ----------------------------------------------------------------------------------------------------------


def test_a_usable_warmup_section_has_no_problems() -> None:
    assert check_warmup(make_contract().warmup) == []


def test_bad_warmup_sections_are_reported_with_their_paths() -> None:
    bad = Warmup(
        steps=(WarmupStep(2, 100), WarmupStep(2, 0)),
        time_zone='Mars/Olympus',
        min_sent=-1,
        streams=(WarmupStream('marketing', shares={'gmail': 900_000, 'yahoo': 200_000}),),
    )
    problems = check_warmup(bad)
    assert problems == [
        '$.warmup.time_zone: unknown time zone "Mars/Olympus" (an IANA name such as "Europe/Berlin")',
        '$.warmup.steps: the curve must start on day 1, not day 2',
        '$.warmup.steps: days must increase, got [2, 2]',
        '$.warmup.steps: every cap must be at least 1',
        '$.warmup.min_sent: -1 is negative',
        '$.warmup.streams[0].shares: they add up to more than 1000000 (100 %)',
    ]
    with pytest.raises(WarmupError, match='unknown time zone "Mars/Olympus"'):
        caps(make_contract(time_zone='Mars/Olympus'), None, at('2026-03-07T12:00:00+00:00'))


def test_a_bad_start_date_is_a_clear_error() -> None:
    with pytest.raises(WarmupError, match=r'\$\.ips\[0\]\.warmup_started: "March 1st" is not a date'):
        caps(make_contract(started='March 1st'), None, at('2026-03-07T12:00:00+00:00'))


# --- today's caps ----------------------------------------------------------------------------------------------------


def test_caps_of_the_seventh_day_split_across_isps_until_local_midnight() -> None:
    now = at('2026-03-07T12:00:00+01:00')
    result = caps(make_contract(), None, now)
    assert [(cap.ip, cap.isp, cap.cap, cap.isps) for cap in result] == [
        (WARM_IP, DEFAULT_ISP, 1800, (DEFAULT_ISP, 'comcast')),
        (WARM_IP, 'gmail', 900, ('gmail',)),
        (WARM_IP, 'yahoo', 300, ('yahoo',)),
    ]
    first = result[0]
    assert (first.stream, first.day, first.step) == ('marketing', 7, 7)
    assert first.since == at('2026-03-07T00:00:00+01:00')
    assert first.until == at('2026-03-08T00:00:00+01:00')
    assert first.reason == 'warm-up (conservative curve) day 7, step 7'


def test_the_next_step_starts_at_midnight_in_the_warmup_time_zone_not_utc() -> None:
    contract = make_contract()
    # 23:30 UTC on 7 March is already 8 March in Berlin: day 8 there; still day 7 with a UTC warm-up
    now = at('2026-03-07T23:30:00+00:00')
    assert {cap.day for cap in caps(contract, None, now)} == {8}
    utc = make_contract(time_zone='UTC')
    assert {cap.day for cap in caps(utc, None, now)} == {7}
    assert day_bounds(contract.warmup, now) == (at('2026-03-08T00:00:00+01:00'), at('2026-03-09T00:00:00+01:00'))


def test_daylight_saving_day_is_23_hours_long() -> None:
    since, until = day_bounds(make_contract().warmup, at('2026-03-29T12:00:00+02:00'))
    assert until - since == 23 * 3600


def test_no_caps_before_warmup_starts_means_cap_zero_and_none_after_the_curve() -> None:
    before = caps(make_contract(started='2026-03-10'), None, at('2026-03-07T12:00:00+01:00'))
    assert {cap.cap for cap in before} == {0}
    assert before[0].reason == 'warm-up starts on 2026-03-10'
    assert caps(make_contract(started='2026-01-01'), None, at('2026-03-07T12:00:00+01:00')) == ()
    assert caps(make_contract(started=None), None, at('2026-03-07T12:00:00+01:00')) == ()
    assert caps(make_contract(steps=()), None, at('2026-03-07T12:00:00+01:00')) == ()


def test_a_stream_without_shares_gives_the_whole_cap_to_other_recipients() -> None:
    result = caps(make_contract(streams=()), None, at('2026-03-01T12:00:00+01:00'))
    assert [(cap.isp, cap.cap) for cap in result] == [(DEFAULT_ISP, 50)]


# --- holds and cut-backs from the store ------------------------------------------------------------------------------


def test_a_day_over_the_hard_bounce_limit_holds_the_ip_on_its_step(db: Database) -> None:
    # day 2 (2 March): 3 hard bounces of 100 attempts = 3 % > 2 %; soft bounces do not count as hard
    store(db, day_of('2026-03-01', 50), day_of('2026-03-02', 97, hard=3), day_of('2026-03-03', 190, soft=10))
    [first, *_] = caps(make_contract(), db, at('2026-03-04T12:00:00+01:00'))
    assert (first.day, first.step) == (4, 3)
    assert first.reason == (
        'warm-up (conservative curve) day 4, step 3 (1 day(s) not advanced, '
        'last 2026-03-02: hard-bounce rate 3.00% > 2.00%, held)'
    )
    assert sum(cap.cap for cap in caps(make_contract(), db, at('2026-03-04T12:00:00+01:00'))) == 200


def test_cut_back_moves_the_ip_one_step_back(db: Database) -> None:
    store(db, day_of('2026-03-01', 50), day_of('2026-03-02', 97, hard=3), day_of('2026-03-03', 190, soft=10))
    [first, *_] = caps(make_contract(on_threshold='cut_back'), db, at('2026-03-04T12:00:00+01:00'))
    assert (first.day, first.step) == (4, 2)
    assert first.reason.endswith('one step back)')


def test_a_day_over_the_complaint_limit_holds_too(db: Database) -> None:
    store(db, day_of('2026-03-01', 900, complaints=1), day_of('2026-03-02', 999, complaints=1))
    # 1 of 900 = 0.111 % > 0.1 %; 1 of 999 = 0.1001 % > 0.1 %; both days held
    [first, *_] = caps(make_contract(), db, at('2026-03-03T12:00:00+01:00'))
    assert (first.day, first.step) == (3, 1)
    assert 'complaint rate 0.100% > 0.100%' in first.reason


def test_good_days_quiet_days_and_other_ips_do_not_hold(db: Database) -> None:
    store(
        db,
        day_of('2026-03-01', 99, hard=1),  # 1 % hard bounces: good
        day_of('2026-03-02', 10, hard=5),  # 10 deliveries < min_sent 50: not judged
        day_of('2026-03-03', 100, hard=50, sending_ip=OLD_IP),  # another IP's bad day
        day_of('2026-03-03', 100, hard=50, sender=''),  # our own bounce notices (null sender)
    )
    [first, *_] = caps(make_contract(), db, at('2026-03-04T12:00:00+01:00'))
    assert (first.day, first.step) == (4, 4)


def test_events_carrying_the_ip_id_count_for_the_ip(db: Database) -> None:
    store(db, day_of('2026-03-01', 97, hard=3, sending_ip='mk_1'))
    [first, *_] = caps(make_contract(), db, at('2026-03-02T12:00:00+01:00'))
    assert first.step == 1


def test_days_are_local_days_of_the_warmup_time_zone(db: Database) -> None:
    # 23:30 UTC on 1 March is 2 March in Berlin: the bad events belong to day 2, day 1 stays good
    store(db, day_of('2026-03-01', 60))
    bad = [event('2026-03-01T23:30:00+00:00', 'bounced', category='bad-mailbox') for _ in range(10)]
    good = [event('2026-03-01T23:30:00+00:00') for _ in range(90)]
    store(db, bad, good)
    counts = daily_counts(db, make_contract().warmup, [(WARM_IP, 'mk_1')], 0, at('2026-03-05T00:00:00+01:00'))
    assert counts[WARM_IP] == {
        dt.date(2026, 3, 1): DayCounts(sent=60),
        dt.date(2026, 3, 2): DayCounts(sent=90, bounced=10, hard_bounced=10),
    }


def test_progress_without_history_follows_the_calendar() -> None:
    warmup = make_contract().warmup
    limits = WarmupStream('marketing')
    assert progress(warmup, limits, dt.date(2026, 3, 1), dt.date(2026, 3, 14)).daily_cap == 25_000
    assert progress(warmup, limits, dt.date(2026, 3, 1), dt.date(2026, 3, 1)).step == 1


def test_daily_counts_from_postgresql(postgres: Postgres) -> None:
    with connect(postgres.store('postgres')) as admin:
        admin.execute('CREATE DATABASE warmup_counts')
    with connect(postgres.store('warmup_counts')) as pg:
        migrate(pg)
        store(pg, day_of('2026-03-01', 97, hard=3), day_of('2026-03-02', 40, complaints=2))
        counts = daily_counts(pg, make_contract().warmup, [(WARM_IP,)], 0, at('2026-03-05T00:00:00+01:00'))
        assert counts == {
            WARM_IP: {
                dt.date(2026, 3, 1): DayCounts(97, 3, 3, 0),
                dt.date(2026, 3, 2): DayCounts(40, 0, 0, 2),
            }
        }
        [first, *_] = caps(make_contract(), pg, at('2026-03-03T12:00:00+01:00'))
        assert (first.day, first.step) == (3, 2)


# --- the contract carries it -----------------------------------------------------------------------------------------


def test_warmup_round_trips_through_the_contract_json() -> None:
    contract = make_contract()
    loaded = load_contract(dump_contract(contract))
    assert loaded.warmup == contract.warmup
    assert loaded.ips[0].warmup_started == '2026-03-01'


def test_a_contract_without_warmup_loads_with_no_warmup() -> None:
    data = dump_contract(make_contract())
    del data['warmup']
    for ip in data['ips']:
        del ip['warmup_started']
    loaded = load_contract(data)
    assert loaded.warmup == Warmup()
    assert caps(loaded, None, at('2026-03-07T12:00:00+01:00')) == ()
    assert dataclasses.replace(loaded, warmup=make_contract().warmup).ips[0].warmup_started is None


def test_a_contract_with_a_wrong_share_type_is_refused() -> None:
    data = dump_contract(make_contract())
    data['warmup']['streams'][0]['shares']['gmail'] = 0.3
    with pytest.raises(Exception, match=r'\$\.warmup\.streams\[0\]\.shares\.gmail: expected an integer'):
        load_contract(data)


class CountingDatabase:
    """A store that counts the queries it answers."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.queries = 0

    def execute(self, sql: str, params: Any = ()) -> Any:
        self.queries += 1
        return self.db.execute(sql, params)


def test_finished_days_are_read_once_with_a_memo(db: Database) -> None:
    store(db, day_of('2026-03-01', 50), day_of('2026-03-02', 97, hard=3))
    counting = CountingDatabase(db)
    memo: dict[tuple[str, dt.date], DayCounts] = {}
    first = caps(make_contract(), counting, at('2026-03-04T12:00:00+01:00'), memo)  # type: ignore[arg-type]
    assert counting.queries == 1 and first[0].step == 3
    again = caps(make_contract(), counting, at('2026-03-04T18:00:00+01:00'), memo)  # type: ignore[arg-type]
    assert counting.queries == 1 and again == first
    caps(make_contract(), counting, at('2026-03-05T12:00:00+01:00'), memo)  # type: ignore[arg-type]
    assert counting.queries == 2  # only the day that ended


def test_traffic_after_the_warmup_is_never_read_nor_judged(db: Database) -> None:
    # good days all through; a terrible day 40 (after day 30, the curve's end) must not bring a cap back
    store(db, day_of('2026-04-09', 100, hard=50))
    counting = CountingDatabase(db)
    now = at('2026-04-12T12:00:00+02:00')
    assert caps(make_contract(on_threshold='cut_back'), counting, now) == ()  # type: ignore[arg-type]
    # the 30 good days need one window of reads (30 days), not 42 days of traffic
    assert counting.queries == 1


def test_a_held_ip_reads_more_windows_until_it_finishes(db: Database) -> None:
    # day 2 held: on day 31 the IP is on step 30 (the last point), on day 32 it is done
    store(db, day_of('2026-03-02', 97, hard=3))
    counting = CountingDatabase(db)
    result = caps(make_contract(), counting, at('2026-03-31T12:00:00+02:00'))  # type: ignore[arg-type]
    assert {(cap.day, cap.step) for cap in result} == {(31, 30)}
    assert sum(cap.cap for cap in result) == 175_000
    assert counting.queries == 1  # one window of 30 days
    assert caps(make_contract(), counting, at('2026-04-01T12:00:00+02:00')) == ()  # type: ignore[arg-type]
    assert counting.queries == 3  # the same 30 days again (no memo), then one more day
