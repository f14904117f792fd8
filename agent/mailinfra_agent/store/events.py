"""Feedback events and ingest bookkeeping (tables of migration 0002): events, messages, checkpoints, problems.

Every write is idempotent (``INSERT ... ON CONFLICT``, the same in SQLite and PostgreSQL), so one batch of
events, the messages it names, its problem counts and the checkpoint after it can be stored in one
transaction: after a crash the store holds either the whole batch or none of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress, cycle
from operator import attrgetter
from typing import Any, Protocol

from ..feedback.events import Event
from .database import Database

EVENT_COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(Event))
"""The columns of ``feedback_events``: the fields of :class:`Event`, in order."""

ROWS_PER_STATEMENT = 100
"""Events per multi-row INSERT (SQLite allows 32766 parameters per statement)."""


class MessageFields(Protocol):
    """What :func:`upsert_messages` reads of a record: :class:`MessageRecord`, or the Postfix parser's own
    ``MessageSeen`` (taken as it is, without a copy per log line)."""

    @property
    def stream(self) -> str | None: ...
    @property
    def queue_id(self) -> str: ...
    @property
    def time(self) -> float: ...
    @property
    def sender(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...


@dataclass(frozen=True)
class MessageRecord:
    """What the log says about one queued message: the sender and Message-ID of a queue id."""

    stream: str | None
    """None: the primary instance (stored as '')."""
    queue_id: str
    time: float
    sender: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """How far a log file has been read: the file's identity and the byte position after the last stored line."""

    device: int
    inode: int
    first_line: str
    """Hash of the file's first line: tells a new file from an old one that got the same inode."""
    position: int
    line: int
    """Number of the last line stored (0 at the start), for problem locations."""


def storable(value: Any) -> Any:
    """Text both databases take: PostgreSQL refuses NUL characters and lone surrogates (U+FFFD instead)."""
    if not isinstance(value, str) or (value.isascii() and '\x00' not in value):
        return value
    value = value.replace('\x00', '\ufffd')
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        value = ''.join('\ufffd' if '\ud800' <= char <= '\udfff' else char for char in value)
    return value


def _storable_rows(rows: list[tuple[Any, ...]], texts: tuple[bool, ...] | None = None) -> list[tuple[Any, ...]]:
    """``rows`` with every text value :func:`storable`; one check over the whole batch in the usual all-ASCII case.

    ``texts`` marks the columns that hold text or None: then the check picks them out at C speed (a column that
    holds something else after all takes the general path)."""
    joined: str | None = None
    if texts is not None:
        try:
            joined = ''.join(filter(None, compress(chain.from_iterable(rows), cycle(texts))))
        except TypeError:
            joined = None
    if joined is None:
        joined = ''.join([value for row in rows for value in row if value.__class__ is str])
    if joined.isascii() and '\x00' not in joined:
        return rows
    return [tuple(storable(value) for value in row) for row in rows]


_event_row = attrgetter(*EVENT_COLUMNS)
_EVENT_TEXTS = tuple('float' not in str(field.type) for field in dataclasses.fields(Event))
"""Which of :data:`EVENT_COLUMNS` hold text or None (all but the times)."""


def insert_events(db: Database, events: Sequence[Event]) -> None:
    """Store events; one whose key is already stored is left as it is."""
    _insert_rows(
        db,
        f'INSERT INTO feedback_events ({", ".join(EVENT_COLUMNS)}) VALUES',
        'ON CONFLICT (key) DO NOTHING',
        _storable_rows(list(map(_event_row, events)), _EVENT_TEXTS),
        len(EVENT_COLUMNS),
    )


def _insert_rows(
    db: Database, head: str, tail: str, rows: list[tuple[Any, ...]], width: int, per: int = ROWS_PER_STATEMENT
) -> None:
    """``head (...), (...) tail``: ``per`` rows per statement, few statements (PostgreSQL: one round trip each);
    SQLite runs one single-row statement over all rows (``executemany``: no flattening, no Python per row)."""
    one = '(' + ', '.join(['?'] * width) + ')'
    if db.dialect == 'sqlite':
        db.executemany(f'{head} {one} {tail}', rows)
        return
    full = f'{head} {", ".join([one] * per)} {tail}'
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        sql = full if len(chunk) == per else f'{head} {", ".join([one] * len(chunk))} {tail}'
        db.execute(sql, list(chain.from_iterable(chunk)))


def events(db: Database, where: str = '', params: Sequence[Any] = ()) -> list[Event]:
    """Stored events (``where`` is an SQL condition with ``?`` placeholders), ordered by time and key."""
    clause = f'WHERE {where}' if where else ''
    rows = db.execute(f'SELECT {", ".join(EVENT_COLUMNS)} FROM feedback_events {clause} ORDER BY time, key', params)
    return [Event(**dict(zip(EVENT_COLUMNS, row, strict=True))) for row in rows]


def upsert_messages(db: Database, host: str, records: Iterable[MessageFields]) -> None:
    """Remember the sender and Message-ID of queue ids; a later record fills what an earlier one lacked.

    Records of one queue id are merged first (the last sender and Message-ID that are not None, the latest
    time: what one upsert per record would leave), so that a multi-row upsert names each row once, as
    PostgreSQL requires; rows go in key order, one order for every writer.
    """
    merged: dict[tuple[str, str], tuple[Any, ...]] = {}
    get = merged.get
    for stream, queue_id, sender, message_id, time in map(_message_fields, records):
        key = (stream or '', queue_id)
        row = get(key)
        if row is None:
            merged[key] = (host, key[0], queue_id, sender, message_id, time)
        else:
            merged[key] = (
                host,
                key[0],
                queue_id,
                row[3] if sender is None else sender,
                row[4] if message_id is None else message_id,
                time if time > row[5] else row[5],
            )
    rows = [merged[key] for key in sorted(merged)]
    stored = _storable_rows(rows, _MESSAGE_TEXTS)
    # Text that had to be replaced may make two keys equal: then one row per statement (later rows update).
    _insert_rows(db, _MESSAGE_HEAD, _MESSAGE_TAIL, stored, 6, 100 if stored is rows else 1)


_message_fields = attrgetter('stream', 'queue_id', 'sender', 'message_id', 'time')
_MESSAGE_TEXTS = (True, True, True, True, True, False)
"""Which columns of a message row (host, stream, queue id, sender, Message-ID, time) hold text or None."""
_MESSAGE_HEAD = 'INSERT INTO feedback_messages (host, stream, queue_id, sender, message_id, time) VALUES'
_MESSAGE_TAIL = (
    'ON CONFLICT (host, stream, queue_id) DO UPDATE SET '
    'sender = COALESCE(excluded.sender, feedback_messages.sender), '
    'message_id = COALESCE(excluded.message_id, feedback_messages.message_id), '
    'time = CASE WHEN excluded.time > feedback_messages.time THEN excluded.time '
    'ELSE feedback_messages.time END'
)


def messages(
    db: Database, host: str, stream: str | None, queue_ids: Iterable[str]
) -> dict[str, tuple[str | None, str | None]]:
    """queue id -> (sender, Message-ID) of the stored messages among ``queue_ids`` of one stream."""
    wanted = sorted(set(queue_ids))
    found: dict[str, tuple[str | None, str | None]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = db.execute(
            'SELECT queue_id, sender, message_id FROM feedback_messages '
            f'WHERE host = ? AND stream = ? AND queue_id IN ({", ".join(["?"] * len(chunk))})',
            (host, stream or '', *chunk),
        )
        found.update({str(queue_id): (sender, message_id) for queue_id, sender, message_id in rows})
    return found


def checkpoint(db: Database, host: str, source: str) -> Checkpoint | None:
    rows = db.execute(
        'SELECT device, inode, first_line, position, line FROM ingest_checkpoints WHERE host = ? AND source = ?',
        (host, storable(source)),
    )
    if not rows:
        return None
    device, inode, first_line, position, line = rows[0]
    return Checkpoint(int(device), int(inode), str(first_line), int(position), int(line))


def save_checkpoint(db: Database, host: str, source: str, point: Checkpoint, now: int) -> None:
    db.execute(
        'INSERT INTO ingest_checkpoints (host, source, device, inode, first_line, position, line, updated) '
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host, source) DO UPDATE SET device = excluded.device, '
        'inode = excluded.inode, first_line = excluded.first_line, position = excluded.position, '
        'line = excluded.line, updated = excluded.updated',
        (host, storable(source), point.device, point.inode, point.first_line, point.position, point.line, now),
    )


def maildir_done(db: Database, host: str, source: str, names: Iterable[str]) -> set[str]:
    """Which of ``names`` (Maildir names without flags) are already stored."""
    wanted = sorted(set(names))
    done: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ', '.join(['?'] * len(chunk))
        rows = db.execute(
            f'SELECT name FROM ingest_maildir WHERE host = ? AND source = ? AND name IN ({marks})',
            (host, source, *chunk),
        )
        done.update(str(row[0]) for row in rows)
    return done


def mark_maildir_done(db: Database, host: str, source: str, name: str, now: int) -> None:
    db.execute(
        'INSERT INTO ingest_maildir (host, source, name, done) VALUES (?, ?, ?, ?) '
        'ON CONFLICT (host, source, name) DO NOTHING',
        (host, source, name, now),
    )


@dataclass(frozen=True)
class Problem:
    source_kind: str
    """``postfix-log``, ``powermta-acct``, ``maildir`` or ``pipe``."""
    reason: str
    """The parser's ``EventError.reason``."""
    location: str
    """Where: ``file:line`` or ``maildir:<name>``."""


def add_problems(db: Database, host: str, problems: Sequence[Problem], now: int) -> None:
    """Count problems per (host, kind of source, reason), keeping the newest location."""
    grouped: dict[tuple[str, str], tuple[int, str]] = {}
    for problem in problems:
        count, _ = grouped.get((problem.source_kind, problem.reason), (0, ''))
        grouped[(problem.source_kind, problem.reason)] = (count + 1, problem.location)
    for (kind, reason), (count, location) in sorted(grouped.items()):
        db.execute(
            'INSERT INTO ingest_problems (host, source_kind, reason, count, last_location, last_seen) '
            'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, source_kind, reason) DO UPDATE SET '
            'count = ingest_problems.count + excluded.count, last_location = excluded.last_location, '
            'last_seen = excluded.last_seen',
            (host, kind, storable(reason), count, storable(location), now),
        )


def problem_counts(db: Database, host: str | None = None) -> dict[tuple[str, str, str], int]:
    """(host, kind of source, reason) -> count."""
    where, params = ('WHERE host = ?', (host,)) if host is not None else ('', ())
    rows = db.execute(f'SELECT host, source_kind, reason, count FROM ingest_problems {where}', params)
    return {(str(h), str(k), str(r)): int(c) for h, k, r, c in rows}
