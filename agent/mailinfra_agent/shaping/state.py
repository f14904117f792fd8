"""The shaping service's durable state in the store (tables of migration 0004_shaping).

All writes go through these functions inside the caller's transaction; the same SQL serves SQLite and
PostgreSQL. ISP ``''`` in a row stands for "every ISP" (``suspend_ip``), ``None`` in an :class:`Action`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..store import Database
from .actions import Action, ActionKind

Event = Literal['applied', 'extended', 'expired', 'released']
ALL_ISPS = ''
"""The ``isp`` column of an action on every ISP of the IP (``suspend_ip``)."""
TABLES = ('shaping_actions', 'shaping_matches', 'shaping_deliveries', 'shaping_counters')

_ACTION_COLUMNS = 'stream, ip, isp, kind, failover, since, until, reason, rule'


@dataclass(frozen=True)
class Active:
    """A stored action: the :class:`Action` with when it began and the rule that caused it."""

    action: Action
    since: float
    rule: str


def _isp_column(isp: str | None) -> str:
    return ALL_ISPS if isp is None else isp


def _active(row: tuple[object, ...]) -> Active:
    stream, ip, isp, kind, failover, since, until, reason, rule = row
    action = Action(
        stream=str(stream),
        ip=str(ip),
        isp=None if isp == ALL_ISPS else str(isp),
        kind=str(kind),  # type: ignore[arg-type]
        failover=bool(failover),
        until=float(until),  # type: ignore[arg-type]
        reason=str(reason),
    )
    return Active(action, float(since), str(rule))  # type: ignore[arg-type]


def has_tables(db: Database) -> bool:
    """Whether the store has the shaping tables (migration 0004 applied)."""
    return db.has_tables(*TABLES)


def active(db: Database, host: str, stream: str | None = None) -> list[Active]:
    """The stored actions of the host (of one stream), in a stable order."""
    where, params = ('host = ?', [host]) if stream is None else ('host = ? AND stream = ?', [host, stream])
    rows = db.execute(
        f'SELECT {_ACTION_COLUMNS} FROM shaping_actions WHERE {where} ORDER BY stream, ip, isp, kind', params
    )
    return [_active(row) for row in rows]


def find(db: Database, host: str, stream: str, ip: str, isp: str | None, kind: ActionKind) -> Active | None:
    rows = db.execute(
        f'SELECT {_ACTION_COLUMNS} FROM shaping_actions WHERE host = ? AND stream = ? AND ip = ? AND isp = ? '
        'AND kind = ?',
        (host, stream, ip, _isp_column(isp), kind),
    )
    return _active(rows[0]) if rows else None


def put(db: Database, host: str, action: Action, since: float, rule: str) -> None:
    """Insert or replace the action of (stream, ip, isp, kind)."""
    db.execute(
        f'INSERT INTO shaping_actions (host, {_ACTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) '
        'ON CONFLICT (host, stream, ip, isp, kind) DO UPDATE SET failover = excluded.failover, '
        'since = excluded.since, until = excluded.until, reason = excluded.reason, rule = excluded.rule',
        (
            host,
            action.stream,
            action.ip,
            _isp_column(action.isp),
            action.kind,
            int(action.failover),
            since,
            action.until,
            action.reason,
            rule,
        ),
    )


def remove(db: Database, host: str, action: Action) -> None:
    db.execute(
        'DELETE FROM shaping_actions WHERE host = ? AND stream = ? AND ip = ? AND isp = ? AND kind = ?',
        (host, action.stream, action.ip, _isp_column(action.isp), action.kind),
    )


def count(db: Database, host: str, action: Action, event: Event) -> None:
    """Add one to the counter of ``event`` for the action's stream, IP, ISP and kind."""
    db.execute(
        'INSERT INTO shaping_counters (host, stream, ip, isp, kind, event, count) VALUES (?, ?, ?, ?, ?, ?, 1) '
        'ON CONFLICT (host, stream, ip, isp, kind, event) DO UPDATE SET count = shaping_counters.count + 1',
        (host, action.stream, action.ip, _isp_column(action.isp), action.kind, event),
    )


def counters(db: Database, host: str) -> list[tuple[str, str, str | None, str, str, int]]:
    """(stream, ip, isp or None for every ISP, kind, event, count) of the host."""
    rows = db.execute(
        'SELECT stream, ip, isp, kind, event, count FROM shaping_counters WHERE host = ? '
        'ORDER BY stream, ip, isp, kind, event',
        (host,),
    )
    return [(str(s), str(i), None if p == ALL_ISPS else str(p), str(k), str(e), int(c)) for s, i, p, k, e, c in rows]


def add_match(db: Database, host: str, event_key: str, stream: str, ip: str, isp: str, rule: str, time: float) -> bool:
    """Record a matching line; False when that line was recorded before (read twice)."""
    rows = db.execute(
        'INSERT INTO shaping_matches (host, event_key, stream, ip, isp, rule, time) VALUES (?, ?, ?, ?, ?, ?, ?) '
        'ON CONFLICT (host, event_key) DO NOTHING RETURNING 1',
        (host, event_key, stream, ip, isp, rule, time),
    )
    return bool(rows)


def matches_since(db: Database, host: str, stream: str, ip: str, isp: str, rule: str, since: float | None) -> int:
    """Recorded matches of the rule for (stream, ip, isp) at or after ``since`` (None: all of them)."""
    sql = 'SELECT COUNT(*) FROM shaping_matches WHERE host = ? AND stream = ? AND ip = ? AND isp = ? AND rule = ?'
    params: list[object] = [host, stream, ip, isp, rule]
    if since is not None:
        sql += ' AND time >= ?'
        params.append(since)
    rows = db.execute(sql, params)
    return int(rows[0][0]) if rows else 0


def forget_matches(db: Database, host: str, before: float) -> None:
    """Drop matches older than ``before`` (no trigger window reaches them)."""
    db.execute('DELETE FROM shaping_matches WHERE host = ? AND time < ?', (host, before))


def add_deliveries(db: Database, host: str, counts: Iterable[tuple[tuple[str, str, str, int], int]]) -> None:
    """Add delivery counts per (stream, ip, isp, day start)."""
    for (stream, ip, isp, day_start), number in sorted(counts):
        db.execute(
            'INSERT INTO shaping_deliveries (host, stream, ip, isp, day_start, count) VALUES (?, ?, ?, ?, ?, ?) '
            'ON CONFLICT (host, stream, ip, isp, day_start) DO UPDATE '
            'SET count = shaping_deliveries.count + excluded.count',
            (host, stream, ip, isp, day_start, number),
        )


def deliveries(db: Database, host: str, stream: str, ip: str, isp: str, day_start: int) -> int:
    rows = db.execute(
        'SELECT count FROM shaping_deliveries WHERE host = ? AND stream = ? AND ip = ? AND isp = ? AND day_start = ?',
        (host, stream, ip, isp, day_start),
    )
    return int(rows[0][0]) if rows else 0


def forget_deliveries(db: Database, host: str, before: int) -> None:
    """Drop the counts of days that started before ``before``."""
    db.execute('DELETE FROM shaping_deliveries WHERE host = ? AND day_start < ?', (host, before))
