"""Suppression list (issue 13): per-stream policy from feedback events, idempotence, linked streams, import and
export, and the ``mailinfra-agent suppression`` command. The store is a real SQLite database migrated to the
current schema; the webhook and the Postfix enforcement have their own test modules."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import BounceCategory, Injection, Retry, Store, Stream
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.store import Database, connect, connect_sqlite, migrate
from mailinfra_agent.suppression import (
    Policy,
    SuppressionList,
    Suppressor,
    address_hash,
    address_problem,
    canonical_address,
    export_csv,
    export_json,
    import_csv,
    legacy_address,
    map_text,
)
from tests.agent.conftest import Postgres

KEY = b'test-hash-key-0123456789abcdef'
DAY = 86400
T0 = 1_780_000_000.0


def category(name: str, suppress_after: int | None) -> BounceCategory:
    return BounceCategory(name, True, (600,), DAY, suppress_after)


CATEGORIES = (
    category('bad-mailbox', 1),
    category('bad-domain', 1),
    category('inactive-mailbox', 1),
    category('quota-issues', 3),
    category('no-answer-from-host', None),
    category('policy-related', None),
    category('spam-related', 1),  # even a misconfigured threshold never suppresses a reputation event
)


def stream(name: str, kind: str, links: tuple[str, ...] = ()) -> Stream:
    return Stream(
        name=name,
        kind=kind,
        instance=f'postfix-{name}',
        domains=('example.com',),
        injection=Injection(2525, ('127.0.0.0/8',), ()),
        retry=Retry(300, 3600, 5 * DAY),
        bounce_categories=CATEGORIES,
        reply_rules=(),
        isps=(),
        complaint_links=links,
    )


STREAMS = (
    stream('transactional', 'transactional'),
    stream('marketing', 'marketing', ('cold',)),
    stream('cold', 'cold_outreach', ('marketing',)),
)


_databases = iter(range(1, 10_000))


@pytest.fixture(params=['sqlite', 'postgresql'])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A fresh store of each backend (PostgreSQL: the real server of conftest.py, a new database per test)."""
    if request.param == 'sqlite':
        return Store('sqlite', path=str(tmp_path / 'agent.db'))
    server: Postgres = request.getfixturevalue('postgres')
    name = f'suppression_{os.getpid()}_{next(_databases)}'
    with connect(server.store('postgres')) as admin:
        admin.execute(f'CREATE DATABASE {name}')
    return server.store(name)


@pytest.fixture
def db(store: Store) -> Iterator[Database]:
    with connect(store) as database:
        migrate(database)
        yield database


@pytest.fixture
def suppressor(db: Database) -> Suppressor:
    return Suppressor(SuppressionList(db, KEY), Policy(STREAMS, 30 * DAY))


def bounce(
    recipient: str,
    cat: str,
    *,
    stream_name: str = 'marketing',
    status: str = 'bounced',
    code: str = '550',
    dsn: str = '5.1.1',
    time: float = T0,
    queue_id: str | None = None,
) -> Event:
    return Event(
        key=event_key(recipient, cat, stream_name, status, time, queue_id),
        kind='delivery',
        status=status,  # type: ignore[arg-type]
        time=time,
        recipient=recipient,
        source='/var/log/postfix/postfix-marketing.log',
        stream=stream_name,
        queue_id=queue_id or f'Q{int(time)}',
        smtp_code=code,
        dsn=dsn,
        category=cat,
    )


def feedback(recipient: str, kind: str, stream_name: str | None) -> Event:
    return Event(
        key=event_key(kind, recipient, stream_name),
        kind=kind,  # type: ignore[arg-type]
        status=kind,  # type: ignore[arg-type]
        time=T0,
        recipient=recipient,
        source='maildir:1.2.host',
        stream=stream_name,
    )


def scopes(suppressor: Suppressor, address: str) -> dict[str, str]:
    return {entry.scope: entry.reason for entry in suppressor.suppressions.entries(address=address)}


# --- policy -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('cat', ['bad-mailbox', 'bad-domain', 'inactive-mailbox'])
def test_a_hard_bounce_suppresses_in_its_stream_at_once(suppressor: Suppressor, cat: str) -> None:
    added, decision = suppressor.apply(bounce('gone@example.net', cat))
    assert decision.why == 'hard-bounce'
    assert [(entry.scope, entry.reason, entry.category) for entry in added] == [('marketing', 'hard-bounce', cat)]
    assert suppressor.suppressions.is_suppressed('Gone@Example.NET', 'marketing')
    assert not suppressor.suppressions.is_suppressed('gone@example.net', 'transactional')


def test_a_temporary_reply_in_a_hard_category_counts_as_a_soft_bounce(suppressor: Suppressor) -> None:
    event = bounce('x@example.net', 'bad-mailbox', status='expired', code='450', dsn='4.1.1')
    added, decision = suppressor.apply(event)
    assert (decision.action, decision.threshold) == ('count', 1)  # the stream's suppress_after for bad-mailbox
    assert [entry.reason for entry in added] == ['soft-bounce']


def test_a_stream_that_never_suppresses_a_hard_category_is_obeyed(db: Database) -> None:
    lenient = replace(STREAMS[0], bounce_categories=(category('bad-mailbox', None),))
    suppressor = Suppressor(SuppressionList(db, KEY), Policy([lenient], 30 * DAY))
    added, decision = suppressor.apply(bounce('x@example.net', 'bad-mailbox', stream_name='transactional'))
    assert (added, decision.why) == ([], 'never-suppressed')


@pytest.mark.parametrize(
    ('cat', 'status', 'code', 'dsn'),
    [
        ('spam-related', 'deferred', '421', '4.7.28'),  # Gmail's rate/reputation deferral
        ('spam-related', 'bounced', '550', '5.7.1'),  # a spam block
        ('policy-related', 'bounced', '550', '5.7.26'),  # DMARC/authentication policy
        ('spam-related', 'expired', '421', '4.7.28'),
    ],
)
def test_reputation_events_never_suppress(suppressor: Suppressor, cat: str, status: str, code: str, dsn: str) -> None:
    for hour in range(5):
        added, _ = suppressor.apply(
            bounce('reader@gmail.com', cat, status=status, code=code, dsn=dsn, time=T0 + hour * 3600)
        )
        assert added == []
    assert suppressor.suppressions.entries() == []


def test_deferrals_never_count(suppressor: Suppressor) -> None:
    for hour in range(10):
        event = bounce('full@example.net', 'quota-issues', status='deferred', code='452', dsn='4.2.2', time=T0 + hour)
        added, decision = suppressor.apply(event)
        assert (added, decision.why) == ([], 'not-a-final-bounce')


def soft(recipient: str, day: int, queue_id: str) -> Event:
    return bounce(
        recipient, 'quota-issues', status='expired', code='452', dsn='4.2.2', time=T0 + day * DAY, queue_id=queue_id
    )


def test_soft_bounces_below_the_threshold_do_not_suppress(suppressor: Suppressor) -> None:
    assert suppressor.apply(soft('full@example.net', 0, 'A1'))[0] == []
    assert suppressor.apply(soft('full@example.net', 5, 'A2'))[0] == []
    assert not suppressor.suppressions.is_suppressed('full@example.net', 'marketing')


def test_the_nth_soft_bounce_within_the_window_suppresses(suppressor: Suppressor) -> None:
    suppressor.apply(soft('full@example.net', 0, 'A1'))
    suppressor.apply(soft('full@example.net', 5, 'A2'))
    added, decision = suppressor.apply(soft('full@example.net', 10, 'A3'))
    assert decision.threshold == 3
    assert [(entry.scope, entry.reason, entry.category) for entry in added] == [
        ('marketing', 'soft-bounce', 'quota-issues')
    ]


def test_soft_bounces_outside_the_window_or_of_one_message_count_once(suppressor: Suppressor) -> None:
    suppressor.apply(soft('full@example.net', 0, 'A1'))
    suppressor.apply(soft('full@example.net', 40, 'A2'))  # the first is 40 days old: outside 30 days
    suppressor.apply(soft('full@example.net', 41, 'A2'))  # the same message again (a DSN and the log line)
    assert not suppressor.suppressions.is_suppressed('full@example.net', 'marketing')
    suppressor.apply(soft('full@example.net', 42, 'A3'))
    assert not suppressor.suppressions.is_suppressed('full@example.net', 'marketing')
    suppressor.apply(soft('full@example.net', 43, 'A4'))
    assert suppressor.suppressions.is_suppressed('full@example.net', 'marketing')


def test_a_soft_category_without_threshold_never_suppresses(suppressor: Suppressor) -> None:
    for day in range(5):
        event = bounce('slow@example.net', 'no-answer-from-host', status='expired', code='', dsn='4.4.1', time=T0 + day)
        assert suppressor.apply(event)[1].why == 'never-suppressed'


def test_unknown_stream_and_unclassified_events_are_ignored(suppressor: Suppressor) -> None:
    assert suppressor.apply(bounce('a@example.net', 'bad-mailbox', stream_name='other'))[1].why == 'unknown-stream'
    assert suppressor.apply(replace(bounce('a@example.net', 'bad-mailbox'), category=None))[1].why == 'unclassified'
    assert suppressor.suppressions.entries() == []


def test_the_same_event_twice_gives_one_row(suppressor: Suppressor) -> None:
    event = bounce('gone@example.net', 'bad-mailbox')
    assert len(suppressor.apply(event)[0]) == 1
    assert suppressor.apply(event)[0] == []
    complaint = feedback('angry@example.net', 'complaint', 'marketing')
    assert len(suppressor.apply(complaint)[0]) == 2
    assert suppressor.apply(complaint)[0] == []
    assert len(suppressor.suppressions.entries()) == 3


# --- complaints and unsubscribes: linked streams ------------------------------------------------------------------


def test_a_complaint_on_marketing_suppresses_cold_too_but_not_transactional(suppressor: Suppressor) -> None:
    suppressor.apply(feedback('angry@example.net', 'complaint', 'marketing'))
    assert scopes(suppressor, 'angry@example.net') == {'marketing': 'complaint', 'cold': 'complaint'}
    assert not suppressor.suppressions.is_suppressed('angry@example.net', 'transactional')


def test_an_unsubscribe_from_a_stream_without_links_stays_in_that_stream(suppressor: Suppressor) -> None:
    suppressor.apply(feedback('me@example.net', 'unsubscribe', 'transactional'))
    assert scopes(suppressor, 'me@example.net') == {'transactional': 'unsubscribe'}


def test_a_complaint_of_unknown_stream_suppresses_marketing_and_cold_only(suppressor: Suppressor) -> None:
    suppressor.apply(feedback('anon@example.net', 'complaint', None))
    assert scopes(suppressor, 'anon@example.net') == {'marketing': 'complaint', 'cold': 'complaint'}


def test_an_invalid_recipient_is_ignored(suppressor: Suppressor) -> None:
    assert suppressor.apply(feedback('not an address', 'complaint', 'marketing'))[1].why == 'invalid-address'
    assert address_problem('a..b@example.net') is not None
    assert address_problem('"quoted"@example.net') is not None
    assert address_problem('user@localhost') is not None
    assert address_problem('user+tag@mail.example.net') is None


@pytest.mark.parametrize(
    ('given', 'canonical'),
    [
        ('gone@Bücher.de', 'gone@xn--bcher-kva.de'),
        ('gone@bu\u0308cher.de', 'gone@xn--bcher-kva.de'),  # NFD
        ('<GONE@BÜCHER\u3002DE.>', 'gone@xn--bcher-kva.de'),
        ('gone@\uff42ücher\uff0ede', 'gone@xn--bcher-kva.de'),  # fullwidth letter and full stop
        ('gone@XN--BCHER-KVA.DE', 'gone@xn--bcher-kva.de'),
        ('"gone"@example\uff61net', 'gone@example.net'),
        ('gone@faß.de', 'gone@xn--fa-hia.de'),  # non-transitional; Python's IDNA 2003 codec gave fass.de
        ('gone@ΟΔΟΣ.gr', 'gone@xn--pxavbq.gr'),  # UTS 46 maps a final capital sigma to the plain one; str.lower() to ς
        ('gone@☃.net', 'gone@xn--n3h.net'),  # NV8: no IDNA 2008 label, but Postfix (ICU UTS 46) delivers it
        ('gone@bü\ncher.de', 'gone@xn--b\ncher-3ya.de'),  # not a domain: address_problem refuses it
    ],
)
def test_the_canonical_address_is_the_uts46_form(given: str, canonical: str) -> None:
    assert canonical_address(given) == canonical
    assert canonical_address(canonical) == canonical
    assert (address_problem(canonical) is None) == ('\n' not in canonical)


def test_the_legacy_form_is_the_one_idna_2003_gave() -> None:
    assert legacy_address('gone@Faß.de') == 'gone@fass.de'
    assert legacy_address('gone@xn--fa-hia.de') == 'gone@fass.de'
    assert legacy_address('gone@οδος.gr') == 'gone@xn--pxavbq.gr'  # final ς: IDNA 2003 mapped it to the plain sigma
    assert legacy_address('gone@bücher.de') is None  # the same in both
    assert legacy_address('gone@example.net') is None


def test_an_event_for_a_utf8_domain_suppresses_its_ascii_form(suppressor: Suppressor) -> None:
    """A bounce or complaint to ``gone@Bücher.de`` (Postfix logs an SMTPUTF8 recipient as received) was ignored as
    an invalid address; it suppresses the canonical form, which every spelling then finds."""
    added, decision = suppressor.apply(bounce('gone@Bücher.de', 'bad-mailbox'))
    assert decision.action != 'ignore'
    assert [entry.address for entry in added] == ['gone@xn--bcher-kva.de']
    for spelling in ('gone@bücher.de', 'GONE@XN--BCHER-KVA.DE', 'gone@bu\u0308cher\u3002de.'):
        assert suppressor.suppressions.is_suppressed(spelling, 'marketing'), spelling
    added, _ = suppressor.apply(feedback('angry@faß.de', 'complaint', 'marketing'))
    assert {entry.address for entry in added} == {'angry@xn--fa-hia.de'}
    assert not suppressor.suppressions.is_suppressed('angry@fass.de', 'marketing')  # another domain


def test_keyed_hashes_are_of_the_canonical_form() -> None:
    """Retention hashes an event's recipient as received; it must match the suppression row's hash."""
    assert address_hash(KEY, 'gone@Bücher.de.') == address_hash(KEY, 'gone@xn--bcher-kva.de')
    assert address_hash(KEY, '"gone"@example.net') == address_hash(KEY, 'gone@example.net')


def test_an_import_of_a_utf8_domain_keeps_the_ascii_form(db: Database) -> None:
    suppressions = SuppressionList(db, KEY)
    text = 'email\ngone@Bücher.de\ngone@xn--bcher-kva.de\nother@faß.de\n'
    report = import_csv(suppressions, text, 'utf8.csv', streams=['marketing'], now=T0)
    assert [(line.address, line.outcome) for line in report.lines] == [
        ('gone@xn--bcher-kva.de', 'taken'),
        ('gone@xn--bcher-kva.de', 'skipped'),
        ('other@xn--fa-hia.de', 'taken'),
    ]


def test_the_map_holds_the_utf8_spellings_of_an_idna_domain(db: Database) -> None:
    suppressions = SuppressionList(db, KEY)
    suppressions.add('*', 'gone@xn--fa-hia.de', 'import', 'k', created=T0)
    text, count, _ = map_text(suppressions.entries(), 'marketing', T0)
    assert count == 1
    assert [line.split()[0] for line in text.splitlines()[1:]] == [
        'gone@faß.de',
        'gone@faß\u3002de',
        'gone@faß\uff0ede',
        'gone@faß\uff61de',
        'gone@xn--fa-hia.de',
    ]


def test_an_a_label_that_decodes_to_no_utf8_keeps_the_map_writable(db: Database) -> None:
    # xn--ib9b is punycode for a lone surrogate: its "UTF-8 line" raised UnicodeEncodeError when the map was
    # written, and every later map of every stream failed with it
    suppressions = SuppressionList(db, KEY)
    suppressions.add('*', 'gone@xn--ib9b.de', 'import', 'k', created=T0)
    suppressions.add('*', 'u@axn--b.de', 'import', 'k', created=T0)  # "xn--" inside a label is no A-label
    text, count, _ = map_text(suppressions.entries(), 'marketing', T0)
    assert count == 2
    assert [line.split()[0] for line in text.splitlines()[1:]] == ['gone@xn--ib9b.de', 'u@axn--b.de']
    text.encode('utf-8')


def test_two_hosts_applying_the_same_events_at_once_add_each_row_once(store: Store) -> None:
    events = [bounce(f'user{n}@example.net', 'bad-mailbox') for n in range(40)]
    events += [feedback(f'angry{n}@example.net', 'complaint', 'marketing') for n in range(40)]
    events += [soft('full@example.net', day, f'M{day}') for day in range(3)]
    with connect(store) as setup:
        migrate(setup)
    added: list[int] = []

    def host(order: int) -> None:
        with connect(store) as database:
            worker = Suppressor(SuppressionList(database, KEY, webhook=True), Policy(STREAMS, 30 * DAY))
            added.append(len(worker.apply_all(events[::order]).added))

    threads = [threading.Thread(target=host, args=(order,)) for order in (1, -1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connect(store) as database:
        rows = database.execute('SELECT COUNT(*) FROM suppressions')[0][0]
        hooks = database.execute('SELECT COUNT(*) FROM suppression_webhooks')[0][0]
    assert (rows, hooks, sum(added)) == (121, 121, 121)  # 40 hard, 2 x 40 complaint scopes, 1 soft


def test_soft_bounces_counted_on_two_hosts_at_once_reach_the_threshold(store: Store) -> None:
    with connect(store) as setup:
        migrate(setup)
        Suppressor(SuppressionList(setup, KEY), Policy(STREAMS, 30 * DAY)).apply(soft('full@example.net', 0, 'M0'))
    barrier = threading.Barrier(2)

    def host(day: int) -> None:
        with connect(store) as database:
            worker = Suppressor(SuppressionList(database, KEY), Policy(STREAMS, 30 * DAY))
            barrier.wait()
            worker.apply(soft('full@example.net', day, f'M{day}'))

    threads = [threading.Thread(target=host, args=(day,)) for day in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connect(store) as database:
        assert SuppressionList(database, KEY).is_suppressed('full@example.net', 'marketing')


# --- the list ------------------------------------------------------------------------------------------------------


def test_hash_only_rows_still_answer_queries_but_stay_out_of_the_map(db: Database) -> None:
    hashed = SuppressionList(db, KEY, keep_address=False)
    entry = hashed.add('marketing', 'private@example.net', 'unsubscribe', 'http')
    assert entry is not None and entry.address is None
    assert entry.address_hash == address_hash(KEY, 'PRIVATE@example.net')
    assert hashed.is_suppressed('private@example.net', 'marketing')
    assert address_hash(b'another key', 'private@example.net') != entry.address_hash
    text, count, hash_only = map_text(hashed.entries(), 'marketing', T0)
    assert (count, hash_only) == (0, 1)
    assert 'example.net' not in text


def test_a_global_suppression_applies_to_every_stream_and_expiry_is_honoured(db: Database) -> None:
    suppressions = SuppressionList(db, KEY)
    suppressions.add('*', 'all@example.net', 'manual', 'manual', created=T0)
    suppressions.add('cold', 'later@example.net', 'manual', 'manual', created=T0, expires=int(T0) + DAY)
    assert all(suppressions.is_suppressed('all@example.net', name, T0) for name in ('marketing', 'transactional'))
    assert suppressions.is_suppressed('later@example.net', 'cold', T0 + 10)
    assert not suppressions.is_suppressed('later@example.net', 'cold', T0 + DAY + 1)
    assert suppressions.remove('*', 'all@example.net')
    assert not suppressions.is_suppressed('all@example.net', 'marketing', T0)


def test_the_map_lists_the_streams_own_and_global_suppressions(db: Database) -> None:
    suppressions = SuppressionList(db, KEY)
    suppressions.add('marketing', 'b@example.net', 'complaint', 'k1', created=T0)
    suppressions.add('*', 'a@example.net', 'import', 'k2', created=T0)
    suppressions.add('*', 'b@example.net', 'import', 'k3', created=T0)
    suppressions.add('cold', 'c@example.net', 'unsubscribe', 'k4', created=T0)
    text, count, _ = map_text(suppressions.entries(), 'marketing', T0)
    assert count == 2
    assert text.splitlines()[1:] == [
        'a@example.net 550 5.7.1 suppressed by mailinfra (import)',
        'b@example.net 550 5.7.1 suppressed by mailinfra (complaint)',
    ]


# --- import and export ---------------------------------------------------------------------------------------------

PROVIDER_CSV = """\
Email,Reason,Stream
one@example.net,bounce,
TWO@Example.net,complaint,marketing
not-an-address,,
two@example.net,complaint,marketing
three@example.net,,newsletter
four@example.net,,cold
"""


def test_import_reports_every_line(db: Database) -> None:
    suppressions = SuppressionList(db, KEY)
    suppressions.add('cold', 'four@example.net', 'complaint', 'k', created=T0)
    report = import_csv(suppressions, PROVIDER_CSV, 'old.csv', streams=['marketing', 'cold'], now=T0)
    assert [(line.line, line.outcome, line.why.split(':')[0]) for line in report.lines] == [
        (2, 'taken', 'scope *, reason import'),
        (3, 'taken', 'scope marketing, reason complaint'),
        (4, 'skipped', 'invalid address'),
        (5, 'skipped', 'duplicate'),
        (6, 'skipped', 'unknown stream "newsletter"'),
        (7, 'skipped', 'duplicate'),
    ]
    assert (report.taken, report.skipped) == (2, 4)
    assert report.text('old.csv').endswith('old.csv: 2 taken, 4 skipped\n')
    assert suppressions.is_suppressed('one@example.net', 'transactional')


def test_an_address_with_a_newline_never_reaches_the_map(db: Database) -> None:
    """A quoted CSV field may hold a newline; "$" let "gone\\n" pass as a local part, and its map line split into
    "gone" (postmap: "expected format: key whitespace value") and a key "@gmail.com" that access(5) never looks up."""
    assert address_problem('gone\n@gmail.com') is not None
    assert address_problem('gone@gmail.com\n') is not None
    suppressions = SuppressionList(db, KEY)
    report = import_csv(suppressions, 'email\n"gone\n@gmail.com"\nok@gmail.com\n', 'old.csv', streams=[], now=T0)
    assert [(line.line, line.outcome) for line in report.lines] == [(3, 'skipped'), (4, 'taken')]
    text, count, _ = map_text(suppressions.entries(), 'marketing', T0)
    assert count == 1
    assert [line.split()[0] for line in text.splitlines()[1:]] == ['ok@gmail.com']


def test_an_import_with_other_digits_as_its_time_takes_the_import_time(db: Database) -> None:
    """str.isdigit() takes a superscript two, int() refuses it: the line is taken with the import's time, no crash."""
    suppressions = SuppressionList(db, KEY)
    report = import_csv(suppressions, 'email,created\nsq@example.net,1\u00b2\n', 'old.csv', streams=[], now=T0)
    assert [(line.line, line.outcome) for line in report.lines] == [(2, 'taken')]
    assert suppressions.is_suppressed('sq@example.net', 'transactional')


@pytest.mark.parametrize(
    ('text', 'problem'),
    [('', 'the file is empty'), ('name,phone\nx,y\n', 'the header has no address column')],
)
def test_an_unusable_import_file_imports_nothing(db: Database, text: str, problem: str) -> None:
    report = import_csv(SuppressionList(db, KEY), text, 'bad.csv', streams=[], now=T0)
    assert report.problem is not None and report.problem.startswith(problem)
    assert report.lines == []


def test_export_round_trip(db: Database, tmp_path: Path) -> None:
    suppressions = SuppressionList(db, KEY)
    suppressions.add('marketing', 'b@example.net', 'complaint', 'k1', created=T0, category=None)
    suppressions.add('*', 'a@example.net', 'hard-bounce', 'k2', created=T0 + 1, category='bad-mailbox')
    exported = export_csv(suppressions.entries())
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [row['address'] for row in rows] == ['a@example.net', 'b@example.net']
    assert rows[0]['created'] == '2026-05-28T20:26:41Z'
    with connect_sqlite(tmp_path / 'other.db') as other:
        migrate(other)
        copy = SuppressionList(other, KEY)
        report = import_csv(copy, exported, 'export.csv', streams=['marketing'], now=T0 + 99)
        assert (report.taken, report.skipped) == (2, 0)

        def key(entries: SuppressionList) -> list[tuple[object, ...]]:
            return [(e.scope, e.address, e.address_hash, e.reason, e.created) for e in entries.entries()]

        assert key(copy) == key(suppressions)
    document = json.loads(export_json(suppressions.entries()))
    assert document['count'] == 2
    assert document['suppressions'][1] == {
        'scope': 'marketing',
        'address': 'b@example.net',
        'address_hash': address_hash(KEY, 'b@example.net'),
        'reason': 'complaint',
        'category': None,
        'source': 'k1',
        'created': '2026-05-28T20:26:40Z',
        'expires': None,
    }
    assert export_csv(suppressions.entries()) == exported  # deterministic


# --- the command ---------------------------------------------------------------------------------------------------


def write_contract(tmp_path: Path, maps: bool = False, **retention: Any) -> Path:
    from mailinfra_agent.contract import dump_contract_json, load_contract

    golden = sorted(Path('tests/golden/newsletter-publisher/mta').glob('*/etc/mailinfra/agent.json'))[0]
    contract = load_contract(golden)
    key_file = tmp_path / 'hash.key'
    key_file.write_text('command-test-key\n', encoding='utf-8')
    key_file.chmod(0o600)
    streams = tuple(
        replace(s, suppression_map=str(tmp_path / f'postfix-{s.name}') if maps else None) for s in contract.streams
    )
    contract = replace(
        contract,
        streams=streams,
        store=replace(contract.store, backend='sqlite', path=str(tmp_path / 'agent.db')),
        retention=replace(contract.retention, hash_key_file=str(key_file), **retention),
        webhook=replace(contract.webhook, url=None),
    )
    path = tmp_path / 'agent.json'
    path.write_text(dump_contract_json(contract), encoding='utf-8')
    return path


def test_the_command_imports_queries_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main

    contract = write_contract(tmp_path)
    assert main(['store', '--contract', str(contract), 'migrate']) == 0
    source = tmp_path / 'old.csv'
    source.write_text('email\nold@example.net\nbroken\n', encoding='utf-8')
    capsys.readouterr()
    assert main(['suppression', '--contract', str(contract), 'import', str(source)]) == 1
    out = capsys.readouterr().out
    assert f'{source}:2: taken old@example.net' in out
    assert f'{source}:3: skipped broken: invalid address' in out
    assert main(['suppression', '--contract', str(contract), 'query', 'old@example.net']) == 1
    assert 'suppressed (import, scope *' in capsys.readouterr().out
    assert main(['suppression', '--contract', str(contract), 'query', 'new@example.net']) == 0
    assert main(['suppression', '--contract', str(contract), 'query', 'not an address']) == 64
    assert main(['suppression', '--contract', str(contract), 'export', '--format', 'json']) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index('{') :])['count'] == 1


def test_the_command_reads_an_address_in_any_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """query refused ``gone@bücher.de`` as an invalid domain (it lower-cased, without UTS 46); query, add and remove
    read the address as the services read a recipient, and a row under the IDNA 2003 form is found and named."""
    from mailinfra_agent.cli import main

    contract = write_contract(tmp_path)
    assert main(['store', '--contract', str(contract), 'migrate']) == 0
    capsys.readouterr()

    def run(*arguments: str) -> tuple[int, str, str]:
        status = main(['suppression', '--contract', str(contract), *arguments])
        out, err = capsys.readouterr()
        return status, out, err

    assert run('add', 'gone@Bücher.de')[:2] == (0, 'suppressed\n')
    assert run('add', 'gone@bu\u0308cher\u3002de.')[:2] == (0, 'already suppressed\n')
    status, out, _ = run('query', 'gone@bücher.de')
    assert status == 1 and 'gone@xn--bcher-kva.de cold_outreach: suppressed (manual, scope *, manual)\n' in out, out
    assert run('query', '<GONE@XN--BCHER-KVA.DE.>')[0] == 1
    assert run('export', '--format', 'csv')[1].count('gone@xn--bcher-kva.de') == 1
    assert run('remove', 'gone@BÜCHER.de')[:2] == (0, 'lifted\n')
    assert run('query', 'gone@bücher.de')[0] == 0
    assert run('query', 'gone@b\ufffdcher.de')[0] == 64

    # A row the list wrote before UTS 46 (IDNA 2003 made faß.de fass.de): found, named, and not lifted by remove.
    with connect_sqlite(tmp_path / 'agent.db') as database:
        SuppressionList(database, b'command-test-key').add('*', 'gone@fass.de', 'manual', 'old')
    status, out, _ = run('query', 'gone@Faß.de', '--stream', 'cold_outreach')
    assert (status, out) == (
        1,
        'gone@xn--fa-hia.de cold_outreach: suppressed (manual, scope *, old) under its IDNA 2003 form gone@fass.de\n',
    )
    status, out, err = run('remove', 'gone@faß.de')
    assert (status, out) == (1, 'was not suppressed\n') and '"remove gone@fass.de" lifts it' in err, err
    assert run('remove', 'gone@fass.de')[:2] == (0, 'lifted\n')
    assert run('query', 'gone@faß.de')[0] == 0


def test_the_command_refuses_a_readable_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main

    contract = write_contract(tmp_path)
    os.chmod(tmp_path / 'hash.key', 0o644)
    assert main(['suppression', '--contract', str(contract), 'list']) == 2
    assert 'make it 0600' in capsys.readouterr().err


def test_hash_only_retention_drops_the_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mailinfra_agent.cli import main

    clear = write_contract(tmp_path)
    assert main(['store', '--contract', str(clear), 'migrate']) == 0
    assert main(['suppression', '--contract', str(clear), 'add', 'me@example.net']) == 0
    capsys.readouterr()
    assert main(['suppression', '--contract', str(clear), 'list']) == 0
    assert 'me@example.net' in capsys.readouterr().out
    hashed = write_contract(tmp_path, suppressions='hash')
    assert main(['suppression', '--contract', str(hashed), 'list']) == 0
    out = capsys.readouterr().out
    assert 'me@example.net' not in out
    assert address_hash(b'command-test-key', 'me@example.net') in out
    assert main(['suppression', '--contract', str(hashed), 'query', 'me@example.net']) == 1
    with connect_sqlite(tmp_path / 'agent.db') as database:  # list and query only read; the next writer drops
        assert database.execute('SELECT address FROM suppressions') == [('me@example.net',)]
    assert main(['suppression', '--contract', str(hashed), 'add', 'you@example.net']) == 0
    with connect_sqlite(tmp_path / 'agent.db') as database:
        assert database.execute('SELECT address FROM suppressions') == [(None,), (None,)]


def stored(db: Database, event: Event) -> None:
    """An event as ingest (migration 0002) stores it."""
    columns = [name for name in Event.__slots__ if getattr(event, name) is not None]
    db.execute(
        f'INSERT INTO feedback_events ({", ".join(columns)}) VALUES ({", ".join("?" for _ in columns)})',
        [getattr(event, name) for name in columns],
    )


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which('postmap'), reason='needs root and postmap')
def test_apply_reads_the_stored_events_and_writes_the_maps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import time

    from mailinfra_agent.cli import main

    contract = write_contract(tmp_path, maps=True)
    postfix = tmp_path / 'postfix'
    postfix.mkdir()
    (postfix / 'main.cf').write_text('compatibility_level = 3.6\n')
    assert main(['store', '--contract', str(contract), 'migrate']) == 0
    now = time.time()
    with connect_sqlite(tmp_path / 'agent.db') as database:
        stored(database, bounce('gone@example.net', 'bad-mailbox', stream_name='cold_outreach', time=now - 60))
        stored(
            database,
            bounce(
                'busy@gmail.com',
                'spam-related',
                stream_name='cold_outreach',
                status='deferred',
                code='421',
                dsn='4.7.28',
                time=now - 50,
            ),
        )
        stored(database, replace(feedback('angry@example.org', 'complaint', 'cold_outreach'), time=now - 40))
        stored(database, bounce('old@example.net', 'bad-mailbox', stream_name='cold_outreach', time=now - 90 * DAY))
    capsys.readouterr()
    command = ['suppression', '--contract', str(contract), 'apply', '--postfix-config', str(postfix)]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert 'suppressed gone@example.net in cold_outreach: hard-bounce' in out
    assert 'suppressed angry@example.org in marketing: complaint' in out
    assert '2 events, 3 new suppressions' in out  # the deferral is not read, the 90-day-old bounce is too old
    assert (tmp_path / 'postfix-cold_outreach').read_text().splitlines()[1:] == [
        'angry@example.org 550 5.7.1 suppressed by mailinfra (complaint)',
        'gone@example.net 550 5.7.1 suppressed by mailinfra (hard-bounce)',
    ]
    assert (tmp_path / 'postfix-transactional').read_text().splitlines()[1:] == []
    assert (tmp_path / 'postfix-cold_outreach.db').is_file()
    assert main(command) == 0
    out = capsys.readouterr().out
    assert '2 events, 0 new suppressions' in out
    assert f'{tmp_path}/postfix-cold_outreach: unchanged, 2 recipients' in out
