"""Counts and rates of the report, computed by hand for the events of conftest.hand_built, on both backends."""

from __future__ import annotations

import random
import re
import sqlite3
import sys
from datetime import date
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.store import Database, StoreError, connect, migrate
from mailinfra_agent.store.events import EVENT_COLUMNS, insert_events
from mailinfra_iac.feedback_report import Counts, Reason, aggregate, build_report, normalise_reason, rollup
from mailinfra_iac.feedback_report.formats import as_data

from .conftest import DAY1, SCRIPT, ev

A = ('2026-11-02', 'marketing', '192.0.2.10', 'gmail', 'news')
B = ('2026-11-02', None, None, 'yahoo', None)


def test_groups_and_order(db: Database) -> None:
    report = build_report(db)
    keys = [group.key for group in report.groups]
    # days first; within a day unknown (None) sorts after every name
    assert keys == [
        ('2026-11-01', 'marketing', '192.0.2.10', 'gmail', 'news'),
        A,
        B,
        ('2026-11-03', 'marketing', '192.0.2.10', 'gmail', 'news'),
        ('2026-11-04', 'marketing', '192.0.2.10', 'gmail', 'news'),
    ]
    assert (report.first_day, report.last_day) == ('2026-11-01', '2026-11-04')


def test_counts_and_rates_by_hand(db: Database) -> None:
    group = {g.key: g for g in build_report(db).groups}[A]
    c = group.counts
    assert c == Counts(
        sent=6,
        deferred=3,
        bounced=4,
        hard_bounced=1,  # bad-mailbox
        soft_bounced=2,  # quota-issues, and no category
        policy_bounced=1,  # spam-related
        expired=1,
        dsn_bounces=1,  # not added to bounced
        complaints=2,
        unsubscribes=1,
    )
    assert c.bounce_rate == round(4 / (6 + 4), 6) == 0.4
    assert c.hard_bounce_rate == round(1 / 10, 6) == 0.1
    assert c.complaint_rate == round(2 / 6, 6) == 0.333333
    assert c.deferral_rate == round(3 / (6 + 3 + 4 + 1), 6) == 0.214286
    assert c.delivery_rate == round(6 / (6 + 4 + 1), 6) == 0.545455


def test_rates_without_denominator_are_none(db: Database) -> None:
    group = {g.key: g for g in build_report(db).groups}[B]
    assert group.counts == Counts(complaints=2)
    assert group.counts.rates() == dict.fromkeys(
        ('delivery_rate', 'bounce_rate', 'hard_bounce_rate', 'complaint_rate', 'deferral_rate')
    )


def test_period_is_utc_days_inclusive(db: Database) -> None:
    only = build_report(db, date(2026, 11, 3), date(2026, 11, 3))
    assert [g.key for g in only.groups] == [('2026-11-03', 'marketing', '192.0.2.10', 'gmail', 'news')]
    assert only.groups[0].counts == Counts(sent=1)
    assert (only.first_day, only.last_day) == ('2026-11-03', '2026-11-03')
    assert [g.key[0] for g in build_report(db, first=date(2026, 11, 4)).groups] == ['2026-11-04']
    assert [g.key[0] for g in build_report(db, last=date(2026, 11, 1)).groups] == ['2026-11-01']
    assert build_report(db, date(2026, 12, 1), date(2026, 12, 2)).groups == ()
    with pytest.raises(ValueError, match='starts'):
        build_report(db, date(2026, 11, 4), date(2026, 11, 3))


def test_top_reasons_grouped_by_normalised_text(db: Database) -> None:
    report = build_report(db)
    overall = dict(report.top_reasons)
    # two deferrals that differ only in the address are one reason
    assert overall[Reason('deferred', 'policy-related', '421 4.7.0 try later (<address>)')] == 2
    # a DSN's text counts among the reasons, with the log's own bounce of the same kind
    assert overall[Reason('bounced', 'bad-mailbox', '550 5.1.1 <address>: user unknown')] == 2
    assert overall[Reason('bounced', None, '554 5.0.0 other')] == 1
    assert report.top_reasons[0] == (Reason('bounced', 'bad-mailbox', '550 5.1.1 <address>: user unknown'), 2)
    group = {g.key: g for g in report.groups}[A]
    assert len(group.top_reasons) == 3
    assert [count for _reason, count in group.top_reasons] == [2, 2, 1]
    assert Reason('deferred', 'policy-related', normalise_reason(SCRIPT)) in overall


def test_rollup_sums_counts_per_dimension(db: Database) -> None:
    by_isp = rollup(build_report(db), 'isp')
    assert list(by_isp) == ['gmail', 'yahoo']
    assert by_isp['gmail']['2026-11-02'].sent == 6
    assert by_isp['yahoo']['2026-11-02'] == Counts(complaints=2)
    assert list(rollup(build_report(db), 'segment')) == ['news', None]
    with pytest.raises(ValueError, match='dimension'):
        rollup(build_report(db), 'day')


def test_same_report_on_sqlite_and_postgresql(db: Database, sqlite_db: Database) -> None:
    assert as_data(build_report(db)) == as_data(build_report(sqlite_db))


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('550 5.1.1 <ann@example.org>: user unknown', '550 5.1.1 <address>: user unknown'),
        ('550-5.1.1 no such user bob@example.net', '550-5.1.1 no such user <address>'),
        (
            'host mx[198.51.100.3] said: 452 4.2.2 over quota 1234 bytes',
            'host mx[<ip>] said: 452 4.2.2 over quota # bytes',
        ),
        (
            '421 4.7.28 see https://support.google.com/mail/?p=Unsolicited a640c23a62f3a - gsmtp',
            '421 4.7.28 see support.google.com <id> - gsmtp',
        ),
        ('  several\n  spaces  ', 'several spaces'),
        ('5.7.1 blocked from 2001:db8::25 ok', '5.7.1 blocked from <ip> ok'),
    ],
)
def test_normalise_reason(text: str, expected: str) -> None:
    assert normalise_reason(text) == expected


def test_normalise_reason_keeps_distinct_reasons_apart() -> None:
    assert normalise_reason('550 5.1.1 user unknown') != normalise_reason('550 5.7.1 user unknown')
    assert len(normalise_reason('x' * 1000)) == 160


def test_many_events(tmp_path: Path) -> None:
    """300,000 events are counted right (the time this takes is in benchmarks/feedback, not asserted here)."""
    path = tmp_path / 'big.db'
    with connect(Store('sqlite', path=str(path))) as database:
        migrate(database)
    columns = ', '.join(EVENT_COLUMNS)
    statuses = ('sent',) * 90 + ('deferred',) * 6 + ('bounced',) * 3 + ('expired',)
    rows = (
        (
            f'k{n}',
            'delivery',
            statuses[n % 100],
            1_793_000_000 + n * 2.0,
            f'r{n}@example.org',
            'bench',
            f's{n % 3}',
            None,
            f'192.0.2.{n % 4}',
            None,
            ('gmail', 'yahoo', 'microsoft', 'gmx')[n % 4],
            None,
            None,
            f'550 5.1.1 <r{n}@example.org> unknown' if statuses[n % 100] == 'bounced' else None,
            None,
            None,
            None,
            f'seg{n % 5}',
            None,
            'bad-mailbox',
            None,
        )
        for n in range(300_000)
    )
    with sqlite3.connect(path) as raw:
        raw.executemany(f'INSERT INTO feedback_events ({columns}) VALUES ({", ".join("?" * len(EVENT_COLUMNS))})', rows)
    with connect(Store('sqlite', path=str(path))) as database:
        report = build_report(database)
    assert report.total.sent == 270_000
    assert report.total.bounced == 9_000
    assert dict(report.top_reasons) == {Reason('bounced', 'bad-mailbox', '550 5.1.1 <address> unknown'): 9_000}


def test_empty_text_is_unknown_like_null(sqlite_db: Database) -> None:
    insert_events(sqlite_db, [ev('complaint', 'complaint', DAY1 + 5, isp='yahoo', stream='', segment='')])
    groups = {g.key: g for g in build_report(sqlite_db).groups}
    assert groups[B].counts == Counts(complaints=3)


def test_null_sender_mail_is_not_the_senders_traffic(db: Database) -> None:
    """Our own bounce notices (sender '') are left out; an unknown sender (NULL) is counted."""
    before = {g.key: g for g in build_report(db).groups}[A].counts
    a = {'stream': 'marketing', 'sending_ip': '192.0.2.10', 'isp': 'gmail', 'segment': 'news'}
    insert_events(
        db,
        [
            ev('delivery', 'sent', DAY1 + 3700, sender='', **a),
            ev('delivery', 'bounced', DAY1 + 3700, sender='', diagnostic='550 5.1.1 no such user', **a),
            ev('delivery', 'sent', DAY1 + 3700, sender=None, **a),
        ],
    )
    after = {g.key: g for g in build_report(db).groups}[A].counts
    assert (after.sent, after.bounced) == (before.sent + 1, before.bounced)


def _plain_normalise(text: str) -> str:
    """normalise_reason as first written: the readable patterns, each run on every text."""
    plain = {name: re.compile(pattern, flags) for name, (pattern, flags) in aggregate._PLAIN_PATTERNS.items()}
    text = ' '.join(text.split())
    text = aggregate._URL.sub(lambda match: match.group(0).split('/')[2].split('?')[0], text)
    text = aggregate._ADDRESS.sub('<address>', text)
    text = plain['_IPV4'].sub('<ip>', text)
    text = aggregate._IPV6.sub('<ip>', text)
    codes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return chr(aggregate._PLACEHOLDER + len(codes) - 1)

    text = plain['_CODES'].sub(keep, text)
    text = plain['_HEX_ID'].sub('<id>', text)
    text = aggregate._NUMBER.sub('#', text)
    for index, code in enumerate(codes):
        text = text.replace(chr(aggregate._PLACEHOLDER + index), code)
    text = plain['_NUMBER_RUN'].sub('# ', text).strip()
    return text[: aggregate.MAX_REASON - 1] + '…' if len(text) > aggregate.MAX_REASON else text


_TOKENS = (
    *('550', '5.1.1', '4.2.0', '250 2.0.0', '421-4.7.0', '5.7.26', '2', '4', '5', '.', '1234', '12345', '٣', '٣.٣.٣'),
    *('203.0.113.1', '1.2.3.4.5', '999.1.1.1', 'a1.2.3.4', '::1', 'fe80::1', '2001:DB8::a:1', 'x:y', ':1:'),
    *(
        'a640c23a62f3a',
        'abcdefghij1',
        '-abcdefghij1',
        '_x123456789',
        '\u01301234567890',
        '\u017f12345678a',
        '\u212a123456789',
    ),
    *('#', '##', '# #', '#.#', '\ue000', '\ue001', '@', '<', '>', 'ann@example.org', '<bob@x.example>', 'a@b'),
    *('http://x.example/z?q=1', 'HTTPS://Y.example', 'https://', 'mx1.doriwn371.example[203.0.113.183]'),
    *(' ', '  ', '\t', '\n', '-', '_', ':', '/', ',', 'x', 'said:', 'Recipient', 'address', 'rejected'),
)


def _corpus() -> list[str]:
    """Texts made of the tokens the patterns care about, glued and spaced at random (the same every run)."""
    rng = random.Random(13)
    glued = [''.join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 8))) for _ in range(6000)]
    spaced = [' '.join(rng.choice(_TOKENS) for _ in range(rng.randint(0, 10))) for _ in range(6000)]
    alphabet = 'aZ09_-.:#@<> /,45٣\u0130\u0131\u017f\u212a\ue000\n'
    chars = [''.join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(6000)]
    return [*_TOKENS, *glued, *spaced, *chars, 'x' * 1000, '1' * 200]


CORPUS = _corpus()


@pytest.mark.parametrize('name', sorted(aggregate._PLAIN_PATTERNS))
def test_fast_patterns_match_like_the_plain_ones(name: str) -> None:
    pattern, flags = aggregate._PLAIN_PATTERNS[name]
    plain, fast = re.compile(pattern, flags), getattr(aggregate, name)
    assert [fast.sub('<x>', text) for text in CORPUS] == [plain.sub('<x>', text) for text in CORPUS]
    assert any(fast.search(text) for text in CORPUS)


def test_the_corpus_tells_a_wrong_rewrite_apart() -> None:
    """Without the look-behind for the leading \\b, the IPv4 pattern would also match inside a word."""
    plain = re.compile(aggregate._PLAIN_PATTERNS['_IPV4'][0])
    wrong = re.compile(r'\d{1,3}(?:\.\d{1,3}){3}\b')
    assert [wrong.sub('<x>', text) for text in CORPUS] != [plain.sub('<x>', text) for text in CORPUS]


def test_alnum_class_is_what_ignorecase_matches() -> None:
    everything = ''.join(map(chr, range(sys.maxunicode + 1)))
    assert re.findall(f'[{aggregate._ALNUM_IGNORECASE}]', everything) == re.findall('[0-9a-z]', everything, re.I)


def test_normalise_reason_equals_the_plain_steps() -> None:
    """The shortcuts (patterns skipped where a needed character is missing) change no text."""
    assert [normalise_reason(text) for text in CORPUS] == [_plain_normalise(text) for text in CORPUS]
    assert normalise_reason('deferred by 2001:db8::25 see http://help.example/x?y') == (
        'deferred by <ip> see help.example'
    )


def _outcome_rows(db: Database, *, packed: bool) -> list[tuple[object, ...]]:
    where, params = aggregate._where(None, None)
    rows = aggregate._outcomes(db, aggregate._day_sql(db.dialect), where, params, packed=packed)
    return sorted(rows, key=repr)


def test_one_json_key_groups_like_the_eight_columns(sqlite_db: Database) -> None:
    """Quotes, backslashes, control characters, NUL and non-ASCII text come back from the JSON key unchanged."""
    odd = ('a"b\\c', 'ü\n\t', '', '[1, "x"]', '😀', None)
    insert_events(
        sqlite_db,
        [
            ev('delivery', 'bounced', DAY1 + n, stream=odd[n % 6], isp=odd[(n + 1) % 6], segment=odd[(n + 2) % 6])
            for n in range(36)
        ],
    )
    # insert_events stores NUL as U+FFFD (PostgreSQL takes none); SQLite itself keeps it
    sqlite_db.execute("UPDATE feedback_events SET stream = ? WHERE stream = '😀'", ('n\x00ul',))
    packed = _outcome_rows(sqlite_db, packed=True)
    assert packed == _outcome_rows(sqlite_db, packed=False)
    assert {row[1] for row in packed} >= {'a"b\\c', 'ü\n\t', '', '[1, "x"]', 'n\x00ul', None}


def test_a_blob_value_falls_back_to_the_plain_grouping(sqlite_db: Database) -> None:
    """JSON holds no BLOB: the report then groups by the columns, as it always does on PostgreSQL."""
    sqlite_db.execute("UPDATE feedback_events SET isp = CAST(isp AS BLOB) WHERE isp = 'yahoo'")
    with pytest.raises(StoreError, match='BLOB'):
        sqlite_db.execute('SELECT json_array(isp) FROM feedback_events')
    assert _outcome_rows(sqlite_db, packed=True) == _outcome_rows(sqlite_db, packed=False)
    groups = {g.key: g for g in build_report(sqlite_db).groups}
    assert groups[('2026-11-02', None, None, "b'yahoo'", None)].counts == Counts(complaints=2)


def test_any_other_store_error_is_raised_not_retried(sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the two reasons JSON grouping can fail for fall back; a broken store fails the report at once."""
    calls: list[str] = []

    def broken(sql: str, params: object = ()) -> list[tuple[object, ...]]:
        calls.append(sql)
        raise StoreError('sqlite: database is locked (in: SELECT ...)')

    monkeypatch.setattr(sqlite_db, 'execute', broken)
    with pytest.raises(StoreError, match='locked'):
        build_report(sqlite_db)
    assert len(calls) == 1
