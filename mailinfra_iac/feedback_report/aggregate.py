"""Daily feedback figures per stream, sending IP, ISP and list segment, aggregated in SQL from the event store.

Reads the ``feedback_events`` table (one row per :class:`mailinfra_agent.feedback.events.Event`, its fields as
columns, ``time`` in POSIX seconds) through :mod:`mailinfra_agent.store`, on SQLite or PostgreSQL. Counting is
done by one ``GROUP BY`` per query in the database, so a report over millions of events moves only the groups
(the counts below are summed in Python from the events per group, kind, status and category).

What is counted, per group (day in UTC, stream, sending IP, ISP, list segment):

- ``sent``, ``deferred``, ``bounced``, ``expired``: ``kind = 'delivery'`` events (the MTA's record of each attempt)
  with that status. ``bounced`` is split by the classifier's category into ``hard_bounced`` (bad-mailbox,
  bad-domain, inactive-mailbox), ``policy_bounced`` (policy-related, spam-related: reputation blocks) and
  ``soft_bounced`` (every other category, and none).
- ``dsn_bounces``: ``kind = 'dsn'`` events. Shown apart and not added to ``bounced``: a DSN our own MTA sent for a
  bounce it logged comes back to the bounce MX, and adding it would count that bounce twice.
- ``complaints`` (``kind = 'complaint'``) and ``unsubscribes`` (``kind = 'unsubscribe'``), on the day they arrived.

The rates, each ``None`` when its denominator is 0 (see docs/feedback-report.md):

- ``bounce_rate = bounced / (sent + bounced)``; ``hard_bounce_rate = hard_bounced / (sent + bounced)``;
- ``complaint_rate = complaints / sent``: complaints per delivered message, as Gmail and Yahoo compute the
  user-reported spam rate (their line: below 0.3 %, 0.1 % recommended). Both count it per day;
- ``deferral_rate = deferred / (sent + deferred + bounced + expired)``: the share of delivery attempts deferred;
- ``delivery_rate = sent / (sent + bounced + expired)``: the share of final outcomes that were deliveries.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from mailinfra_agent.feedback.classify import HARD_CATEGORIES, REPUTATION_CATEGORIES
from mailinfra_agent.store import Database, StoreError

__all__ = [
    'COUNTS',
    'DIMENSIONS',
    'RATES',
    'Counts',
    'Group',
    'Reason',
    'Report',
    'build_report',
    'normalise_reason',
    'rollup',
]

TABLE = 'feedback_events'
EPOCH = date(1970, 1, 1)
DIMENSIONS = ('day', 'stream', 'sending_ip', 'isp', 'segment')
COUNTS = (
    'sent',
    'deferred',
    'bounced',
    'hard_bounced',
    'soft_bounced',
    'policy_bounced',
    'expired',
    'dsn_bounces',
    'complaints',
    'unsubscribes',
)
RATES = ('delivery_rate', 'bounce_rate', 'hard_bounce_rate', 'complaint_rate', 'deferral_rate')
TOP_REASONS_PER_GROUP = 3
RATE_DIGITS = 6


_SOFT_EXCLUDED = HARD_CATEGORIES | REPUTATION_CATEGORIES


def _adds(kind: object, status: object, category: object) -> tuple[int, ...]:
    """What one event of this kind, status and category adds to each of :data:`COUNTS` (module docstring)."""
    delivery = kind == 'delivery'
    bounced = delivery and status == 'bounced'
    return (
        int(delivery and status == 'sent'),
        int(delivery and status == 'deferred'),
        int(bounced),
        int(bounced and category in HARD_CATEGORIES),
        int(bounced and (category is None or category not in _SOFT_EXCLUDED)),
        int(bounced and category in REPUTATION_CATEGORIES),
        int(delivery and status == 'expired'),
        int(kind == 'dsn'),
        int(kind == 'complaint'),
        int(kind == 'unsubscribe'),
    )


_KEY_SQL = 'stream, sending_ip, isp, segment'
"""NULLs form one group in SQL; an empty text is grouped with them afterwards."""


def _day_sql(dialect: str) -> str:
    """The UTC day of ``time`` as a day number since 1970-01-01 (cheaper to group by than a date text)."""
    if dialect == 'postgresql':
        return 'CAST(floor("time" / 86400) AS BIGINT)'
    return 'CAST("time" / 86400 AS INTEGER)'


@dataclass(frozen=True)
class Counts:
    """Event counts of one group, and the rates computed from them (module docstring)."""

    sent: int = 0
    deferred: int = 0
    bounced: int = 0
    hard_bounced: int = 0
    soft_bounced: int = 0
    policy_bounced: int = 0
    expired: int = 0
    dsn_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, name) + getattr(other, name) for name in COUNTS))

    @property
    def delivery_rate(self) -> float | None:
        return _rate(self.sent, self.sent + self.bounced + self.expired)

    @property
    def bounce_rate(self) -> float | None:
        return _rate(self.bounced, self.sent + self.bounced)

    @property
    def hard_bounce_rate(self) -> float | None:
        return _rate(self.hard_bounced, self.sent + self.bounced)

    @property
    def complaint_rate(self) -> float | None:
        return _rate(self.complaints, self.sent)

    @property
    def deferral_rate(self) -> float | None:
        return _rate(self.deferred, self.sent + self.deferred + self.bounced + self.expired)

    def rates(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in RATES}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, RATE_DIGITS) if whole else None


@dataclass(frozen=True, order=True)
class Reason:
    """A diagnostic reason: the outcome it came with, its category and its normalised text."""

    status: str
    category: str | None
    text: str


@dataclass(frozen=True)
class Group:
    """One row of the report: a day, stream, sending IP, ISP and list segment (``None`` when unknown)."""

    day: str
    stream: str | None
    sending_ip: str | None
    isp: str | None
    segment: str | None
    counts: Counts
    top_reasons: tuple[tuple[Reason, int], ...] = ()

    @property
    def key(self) -> tuple[str, str | None, str | None, str | None, str | None]:
        return (self.day, self.stream, self.sending_ip, self.isp, self.segment)


@dataclass(frozen=True)
class Report:
    """The whole report: its period (inclusive UTC days), its rows in a stable order, and the top reasons overall."""

    first_day: str | None
    last_day: str | None
    groups: tuple[Group, ...]
    top_reasons: tuple[tuple[Reason, int], ...] = field(default=())

    @property
    def days(self) -> list[str]:
        return sorted({group.day for group in self.groups})

    @property
    def total(self) -> Counts:
        return sum((group.counts for group in self.groups), Counts())


def sort_key(value: str | None) -> tuple[bool, str]:
    """Unknown (``None``) after every name, names in code-point order: the same on every database."""
    return (value is None, value or '')


def _group_order(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    return tuple(sort_key(part) for part in key)


_ADDRESS = re.compile(r"<?[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)*>?")
# _IPV4, _CODES and _NUMBER_RUN are the plain patterns of _PLAIN_PATTERNS (the tests compare them) written to start
# with a character class: the regex engine then skips the positions that cannot start a match instead of trying
# each. A leading ``\b`` becomes a look-behind after the first character: ``\bd`` = ``d(?<!\wd)`` for a word
# character d. _HEX_ID spells out its class instead of using re.IGNORECASE.
_IPV4 = re.compile(r'\d(?<!\w\d)\d{0,2}(?:\.\d{1,3}){3}\b')
_IPV6 = re.compile(r'\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b', re.IGNORECASE)
_IPV6_HINT = re.compile(r':[0-9a-f]{0,4}:', re.IGNORECASE)
"""Part of every ``_IPV6`` match (its first two groups' colons): a quick test before the slow pattern."""
_ALNUM_IGNORECASE = '0-9A-Za-z\u0130\u0131\u017f\u212a'
"""What ``[0-9a-z]`` matches with ``re.IGNORECASE``, spelled out: without the flag the pattern runs faster."""
_HEX_ID = re.compile(rf'\b(?=[{_ALNUM_IGNORECASE}]*\d)[{_ALNUM_IGNORECASE}_-]{{10,}}\b')
_CODES = re.compile(r'[245](?<!\w[245])(?:\d\d(?:[ -][245]\.\d{1,3}\.\d{1,3})?\b|\.\d{1,3}\.\d{1,3}\b)')
_NUMBER = re.compile(r'\d+')
_NUMBER_RUN = re.compile(r'#[ .,:/-]*(?:#[ .,:/-]*)+')
_PLAIN_PATTERNS = {
    '_IPV4': (r'\b\d{1,3}(?:\.\d{1,3}){3}\b', 0),
    '_HEX_ID': (r'\b(?=[0-9a-z]*\d)[0-9a-z_-]{10,}\b', re.IGNORECASE),
    '_CODES': (r'\b[245]\d\d(?:[ -][245]\.\d{1,3}\.\d{1,3})?\b|\b[245]\.\d{1,3}\.\d{1,3}\b', 0),
    '_NUMBER_RUN': (r'(?:#[ .,:/-]*){2,}', 0),
}
"""The readable form of the rewritten patterns above: name, pattern, flags."""
_URL = re.compile(r'https?://[^\s<>"]+', re.IGNORECASE)
MAX_REASON = 160
_PLACEHOLDER = 0xE000
"""Private-use characters stand for the kept SMTP codes while numbers are replaced."""


def _url_host(match: re.Match[str]) -> str:
    return match.group(0).split('/')[2].split('?')[0]


def normalise_reason(text: str) -> str:
    """A diagnostic without what differs per message: addresses, IPs, ids and numbers (SMTP codes are kept).

    ``550 5.1.1 <ann@example.org>: Recipient address rejected`` and the same for ``bob@...`` give one reason.
    URLs are cut to their host, so a provider's help link stays readable.
    """
    text = ' '.join(text.split())
    # A pattern runs only where it can match (a URL holds "://", an address "@"): most texts skip the slow ones.
    if '://' in text:
        text = _URL.sub(_url_host, text)
    if '@' in text:
        text = _ADDRESS.sub('<address>', text)
    text = _IPV4.sub('<ip>', text)
    if _IPV6_HINT.search(text):
        text = _IPV6.sub('<ip>', text)
    codes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return chr(_PLACEHOLDER + len(codes) - 1)

    text = _CODES.sub(keep, text)
    text = _HEX_ID.sub('<id>', text)
    text = _NUMBER.sub('#', text)
    for index, code in enumerate(codes):
        text = text.replace(chr(_PLACEHOLDER + index), code)
    if '#' in text:
        text = _NUMBER_RUN.sub('# ', text)
    text = text.strip()
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 1] + '…'
    return text


def _day_bounds(first: date | None, last: date | None) -> tuple[float, float]:
    low = datetime.combine(first, time(), tzinfo=UTC).timestamp() if first else float('-inf')
    high = datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC).timestamp() if last else float('inf')
    return low, high


def _where(first: date | None, last: date | None) -> tuple[str, list[float]]:
    low, high = _day_bounds(first, last)
    # Null-sender mail (the bounce notices our MTAs send, the DSNs the bounce MX delivers) is not the sender's
    # traffic: counting it would lower every rate (the exporter's counters leave it out too).
    clauses: list[str] = ["(sender IS NULL OR sender <> '')"]
    params: list[float] = []
    if first is not None:
        clauses.append('"time" >= ?')
        params.append(low)
    if last is not None:
        clauses.append('"time" < ?')
        params.append(high)
    return ' WHERE ' + ' AND '.join(clauses), params


def _dimension(value: object) -> str | None:
    return None if value is None or value == '' else str(value)


GroupKey = tuple[str, str | None, str | None, str | None, str | None]
ReasonKey = tuple[str, str | None, str]
"""A :class:`Reason`'s fields."""


def _key(row: Sequence[object]) -> GroupKey:
    """The group of a result row: its day and the four dimensions (NULL or empty: unknown)."""
    day = (EPOCH + timedelta(days=int(str(row[0])))).isoformat()
    return (day, _dimension(row[1]), _dimension(row[2]), _dimension(row[3]), _dimension(row[4]))


def _outcomes(db: Database, day: str, where: str, params: list[float], *, packed: bool) -> list[tuple[Any, ...]]:
    """Rows of day, the four dimensions, kind, status, category and the number of such events.

    ``packed`` (SQLite): grouped by one JSON text of the eight, not by the eight columns.
    """
    columns = f'{day}, {_KEY_SQL}, kind, status, category'
    if packed:
        # SQLite groups by sorting every row; one text key compares in one memcmp, where eight columns compare
        # one by one (the benchmark store, 160,000 events: 0.14 s CPU instead of 0.25 s).
        try:
            rows = db.execute(f'SELECT json_array({columns}), COUNT(*) FROM {TABLE}{where} GROUP BY 1', params)
        except StoreError as error:
            # A BLOB value (JSON holds none) or a SQLite built without JSON: the plain query below. Anything else
            # (a locked or broken store) is the caller's error, not a reason to scan the table twice.
            if 'JSON cannot hold BLOB' not in str(error) and 'no such function: json_array' not in str(error):
                raise
        else:
            return [(*json.loads(text), number) for text, number in rows]
    return db.execute(f'SELECT {columns}, COUNT(*) FROM {TABLE}{where} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8', params)


def build_report(db: Database, first: date | None = None, last: date | None = None) -> Report:
    """The report of ``db``'s events from day ``first`` to day ``last`` (UTC, inclusive; ``None``: unbounded)."""
    if first is not None and last is not None and first > last:
        raise ValueError(f'the period starts ({first}) after it ends ({last})')
    day = _day_sql(db.dialect)
    where, params = _where(first, last)
    keys: dict[tuple[object, ...], GroupKey] = {}
    sums: dict[GroupKey, list[int]] = {}
    for row in _outcomes(db, day, where, params, packed=db.dialect == 'sqlite'):
        raw = tuple(row[:5])
        key = keys.get(raw) or keys.setdefault(raw, _key(raw))
        number = int(row[8])
        total = sums.setdefault(key, [0] * len(COUNTS))
        for index, add in enumerate(_adds(row[5], row[6], row[7])):
            total[index] += add * number
    counts = {key: Counts(*values) for key, values in sums.items()}

    reason_where = (
        where
        + ' AND '
        + ("kind IN ('delivery', 'dsn') AND status IN ('bounced', 'deferred', 'expired') AND diagnostic IS NOT NULL")
    )
    # The diagnostic first: the column that tells most groups apart, so the sort compares fewer columns.
    reason_rows = db.execute(
        f'SELECT {day}, {_KEY_SQL}, status, category, diagnostic, COUNT(*) FROM {TABLE}{reason_where} '
        'GROUP BY 8, 1, 2, 3, 4, 5, 6, 7',
        params,
    )
    # Counted by plain tuples (hashed in C); Reason objects are made for the top ones only.
    per_group: dict[GroupKey, Counter[ReasonKey]] = defaultdict(Counter)
    overall: Counter[ReasonKey] = Counter()
    normalised: dict[str, str] = {}
    for row in reason_rows:
        raw = row[:5]
        key = keys.get(raw) or keys.setdefault(raw, _key(raw))
        text = str(row[7])
        if text not in normalised:
            normalised[text] = normalise_reason(text)
        reason = (str(row[5]), _dimension(row[6]), normalised[text])
        per_group[key][reason] += int(row[8])
        overall[reason] += int(row[8])

    groups = tuple(
        Group(
            *key,
            counts=counts.get(key, Counts()),
            top_reasons=_top(per_group.get(key, Counter()), TOP_REASONS_PER_GROUP),
        )
        for key in sorted(set(counts) | set(per_group), key=_group_order)
    )
    days = sorted({group.day for group in groups})
    return Report(
        first_day=first.isoformat() if first else (days[0] if days else None),
        last_day=last.isoformat() if last else (days[-1] if days else None),
        groups=groups,
        top_reasons=_top(overall, 10),
    )


def _top(counter: Counter[ReasonKey], limit: int) -> tuple[tuple[Reason, int], ...]:
    """The most frequent reasons; ties in a fixed order (status, category, text)."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0][0], sort_key(item[0][1]), item[0][2]))
    return tuple((Reason(*reason), count) for reason, count in ranked[:limit])


def rollup(report: Report, dimension: str) -> dict[str | None, dict[str, Counts]]:
    """Counts summed per value of ``dimension`` (``isp``, ``segment``, ``stream``, ``sending_ip``) and day."""
    if dimension not in DIMENSIONS[1:]:
        raise ValueError(f'unknown dimension {dimension!r}')
    result: dict[str | None, dict[str, Counts]] = defaultdict(dict)
    for group in report.groups:
        by_day = result[getattr(group, dimension)]
        by_day[group.day] = by_day.get(group.day, Counts()) + group.counts
    return {name: dict(sorted(result[name].items())) for name in sorted(result, key=sort_key)}
