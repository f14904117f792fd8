"""Blocklist history (table ``listing_state``): when a subject was listed in a zone, and when it was cleared."""

from __future__ import annotations

from dataclasses import dataclass

from .database import Database


@dataclass(frozen=True)
class Listing:
    subject: str
    zone: str
    codes: str
    """The zone's answers, comma-separated (``127.0.0.2,127.0.0.4``)."""
    first_seen: int
    last_seen: int
    cleared: int | None


_COLUMNS = 'subject, zone, codes, first_seen, last_seen, cleared'


def observe(db: Database, subject: str, zone: str, codes: list[str], now: int) -> None:
    """Record one lookup: listed (``codes`` not empty) opens or extends a listing, not listed closes it."""
    with db.transaction():
        open_rows = db.execute(
            'SELECT first_seen FROM listing_state WHERE subject = ? AND zone = ? AND cleared IS NULL', (subject, zone)
        )
        if codes:
            joined = ','.join(sorted(set(codes)))
            if open_rows:
                db.execute(
                    'UPDATE listing_state SET last_seen = ?, codes = ? '
                    'WHERE subject = ? AND zone = ? AND cleared IS NULL',
                    (now, joined, subject, zone),
                )
            else:
                db.execute(
                    f'INSERT INTO listing_state ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)',
                    (subject, zone, joined, now, now),
                )
        elif open_rows:
            db.execute(
                'UPDATE listing_state SET cleared = ? WHERE subject = ? AND zone = ? AND cleared IS NULL',
                (now, subject, zone),
            )


def history(db: Database, subject: str | None = None) -> list[Listing]:
    """Every listing (of one subject, or all), oldest first."""
    where, params = ('WHERE subject = ?', (subject,)) if subject is not None else ('', ())
    rows = db.execute(f'SELECT {_COLUMNS} FROM listing_state {where} ORDER BY first_seen, subject, zone', params)
    return [Listing(*row) for row in rows]


def open_listings(db: Database) -> list[Listing]:
    rows = db.execute(f'SELECT {_COLUMNS} FROM listing_state WHERE cleared IS NULL ORDER BY subject, zone')
    return [Listing(*row) for row in rows]
