"""store/events.py's batch helpers: text checks over whole batches, message records merged before the upsert."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from mailinfra_agent.contract import Store
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.store import connect, migrate
from mailinfra_agent.store.events import (
    _EVENT_TEXTS,
    EVENT_COLUMNS,
    MessageRecord,
    _storable_rows,
    insert_events,
    storable,
    upsert_messages,
)


def test_the_text_columns_of_events_are_all_but_the_times() -> None:
    assert [name for name, text in zip(EVENT_COLUMNS, _EVENT_TEXTS, strict=True) if not text] == ['time', 'delay']


def test_a_batch_of_plain_text_is_taken_as_it_is() -> None:
    rows = [('a', None, 1.0, ''), ('b', 'c', 2.5, None)]
    assert _storable_rows(rows, (True, True, False, True)) is rows
    assert _storable_rows(rows) is rows
    other = [('a', None, 1.0, ''), ('b\u00e9', 'c', 2.5, None)]  # not ASCII: checked value by value, unchanged
    assert _storable_rows(other, (True, True, False, True)) == other == _storable_rows(other)


def test_nul_and_lone_surrogates_are_replaced_in_text_columns() -> None:
    rows = [('a', None, 1.0, 'x'), ('b\x00', 'c\udcff', 2.5, None)]
    expected = [('a', None, 1.0, 'x'), ('b\ufffd', 'c\ufffd', 2.5, None)]
    assert _storable_rows(rows, (True, True, False, True)) == expected
    assert _storable_rows(rows) == expected


def test_a_column_that_is_not_text_after_all_takes_the_general_check() -> None:
    rows = [(7, 'a\x00'), (None, 'b')]
    assert _storable_rows(rows, (True, True)) == [(7, 'a\ufffd'), (None, 'b')]
    assert _storable_rows([(7, 'a'), (None, 'b')], (True, True)) == [(7, 'a'), (None, 'b')]


def _messages(path: Path, calls: list[list[MessageRecord]]) -> list[tuple[Any, ...]]:
    with connect(Store(backend='sqlite', path=str(path))) as db:
        migrate(db)
        for records in calls:
            with db.transaction():
                upsert_messages(db, 'mx1', records)
        return db.execute('SELECT rowid, host, stream, queue_id, sender, message_id, time FROM feedback_messages')


def test_records_merged_in_one_call_leave_what_one_call_per_record_leaves(tmp_path: Path) -> None:
    """Repeated queue ids, both instances, times out of order, empty senders: the same rows (and the same rowids when
    the records come in key order) as one upsert per record."""
    rng = random.Random(13)
    records = [
        MessageRecord(
            rng.choice([None, 'marketing', '']),
            rng.choice(['A1', 'B2', 'C3', 'D4', 'E5']),
            float(rng.randint(1, 9)),
            sender=rng.choice([None, None, '', 'bounce+x@example.org', 'other@example.org']),
            message_id=rng.choice([None, None, 'm1@example.org', 'm2@example.org']),
        )
        for _ in range(300)
    ]
    merged = _messages(tmp_path / 'merged.db', [records])
    ordered = sorted(records, key=lambda record: (record.stream or '', record.queue_id))
    assert merged == _messages(tmp_path / 'one-by-one.db', [[record] for record in ordered])
    assert len(merged) == 10
    # In two calls: the second fills what the first lacked and keeps the later time.
    split = _messages(tmp_path / 'split.db', [records[:150], records[150:]])
    assert [row[1:] for row in sorted(split, key=lambda row: row[2:4])] == [
        row[1:] for row in sorted(merged, key=lambda row: row[2:4])
    ]


def test_events_with_text_postgresql_refuses_are_stored_with_replacements(tmp_path: Path) -> None:
    event = Event('k', 'delivery', 'bounced', 1.0, 'a@example.org', 'log', diagnostic='550 bad\x00 \udcff', delay=2.0)
    with connect(Store(backend='sqlite', path=str(tmp_path / 'store.db'))) as db:
        migrate(db)
        insert_events(db, [event])
        assert db.execute('SELECT diagnostic, delay FROM feedback_events') == [(storable(event.diagnostic), 2.0)]
        assert db.execute('SELECT diagnostic FROM feedback_events') == [('550 bad\ufffd \ufffd',)]
