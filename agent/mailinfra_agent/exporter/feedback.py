"""Feedback counters of the exporter: deliveries, bounces and complaints from the store's events table.

The counters are the store's own counts, so they survive an exporter restart. A scrape never runs a GROUP BY over
the whole table: the collector keeps a running aggregate and adds only the rows inserted since the last scrape, found
by the table's insert sequence (SQLite: ``rowid``; PostgreSQL: the ``seq`` identity column). The first scrape after
a start reads everything once.

PostgreSQL hands out sequence numbers before commit, so a row may become visible after a higher one. There the
collector only counts up to the highest number it saw at least ``SETTLE_SECONDS`` earlier; a transaction still
open after that would be missed (ingest commits in short batches). SQLite has one writer at a time: every row below
the highest visible one is committed, nothing waits.

Labels are bounded: streams, ISPs and sending IPs of the contract (a shared store: of the deployment, the same on
every host; else ``other``; a missing value ``unknown``),
bounce categories the classifier can give (else ``other``). Deliveries of our own bounce notices (null sender ``''``)
are not counted: they are not mail a stream sent. ``store`` tells series of one shared PostgreSQL store
(the same on every host, so rules take the maximum across hosts) from those of each host's own SQLite store.
No store file or no events table (feedback not installed on the host) means no feedback series, not a failure.

The per-IP families only get a series with its label set's first event, and ``increase()`` ignores a series' first
sample: a rate rule reading them misses the first complaint of every new stream x IP x ISP. The rate rules read
``mailinfra_feedback_rate_events_total`` instead: the same counts without the sending IP and the category, one series
per stream of the bounds x ISP (the bounds', ``other``, ``unknown``) x ``RATE_EVENTS``, served from 0 once the
store has been read up to what it held at the start (served before that, 0 would turn its whole history into an
increase).

A host of a shared store leaves out of the per-IP families the rows of IPs another host sends from: that host serves
them, and a copy on every host would multiply the per-IP series by the number of hosts. Rows of IPs no host owns
(``other``) or without one (``unknown``) count on every host alike; the rate family counts every row everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..contract import DEFAULT_ISP, Contract
from ..feedback.classify import FALLBACK_BY_SUBJECT, HARD_CATEGORIES, REPUTATION_CATEGORIES
from ..store import Database, StoreError, connect

log = logging.getLogger('mailinfra_agent.exporter')

EVENTS_TABLE = 'feedback_events'
PROBLEMS_TABLE = 'ingest_problems'
SEQUENCE_COLUMN = {'sqlite': 'rowid', 'postgresql': 'seq'}
SETTLE_SECONDS = 10.0
"""PostgreSQL: how long a sequence number must have been seen before the rows up to it are counted."""

OTHER = 'other'
UNKNOWN = 'unknown'
DELIVERY_STATUSES = ('sent', 'deferred', 'bounced', 'expired')
BOUNCE_KINDS = ('delivery', 'dsn')
"""``kind`` label of a bounce: the MTA's own log/accounting, or a DSN that came back (our own MTA's DSNs come back to
the bounce MX too, so rates use ``delivery`` only; ``dsn`` shows asynchronous bounces)."""
RATE_EVENTS = (*DELIVERY_STATUSES, 'hard_bounce', 'complaint')
"""``event`` of the rate family: a delivery status, a hard bounce (kind ``delivery``, a hard category), a complaint."""
KNOWN_CATEGORIES = frozenset(
    {*FALLBACK_BY_SUBJECT.values(), *HARD_CATEGORIES, *REPUTATION_CATEGORIES, 'quota-issues', 'no-answer-from-host'}
)

COUNT_SQL = (
    'SELECT kind, status, stream, sending_ip, isp, category, COUNT(*) FROM {table} WHERE {seq} > ? AND {seq} <= ? '
    "AND (kind = 'delivery' OR kind = 'complaint' OR status = 'bounced') AND (sender IS NULL OR sender <> '') "
    'GROUP BY kind, status, stream, sending_ip, isp, category'
)

PROBLEMS_SQL = f'SELECT source_kind, reason, count FROM {PROBLEMS_TABLE} WHERE host = ?'
PROBLEM_LABEL = re.compile(r'[a-z][a-z0-9_-]{0,31}')
"""A reason or source kind as ingest writes them (EventError reasons); anything else is ``other``."""

Key = tuple[str, ...]


@dataclass(frozen=True)
class Bounds:
    """The label values the counters may carry; anything else is ``other``."""

    streams: frozenset[str]
    isps: frozenset[str]
    ips: Mapping[str, str]
    """An address or IP id as events carry it -> the label (the address, or the id while it has none)."""
    categories: frozenset[str] = KNOWN_CATEGORIES
    foreign_ips: frozenset[str] = frozenset()
    """A shared store: the labels of other hosts' IPs, whose rows stay out of this host's per-IP families."""

    @staticmethod
    def _pick(value: object, known: frozenset[str] | Mapping[str, str]) -> str:
        if value is None or value == '':
            return UNKNOWN
        text = str(value)
        if isinstance(known, Mapping):
            return known.get(text, OTHER)
        return text if text in known else OTHER

    def stream(self, value: object) -> str:
        return self._pick(value, self.streams)

    def isp(self, value: object) -> str:
        return self._pick(value, self.isps)

    def sending_ip(self, value: object) -> str:
        return self._pick(value, self.ips)

    def category(self, value: object) -> str:
        return self._pick(value, self.categories)


def bounds_for(contract: Contract) -> Bounds:
    """The label bounds of a host: its streams, the contract's ISPs (not the catch-all), its sending IPs; of a
    shared store, the deployment's (``exporter.shared_labels``), so every host labels the same events alike."""
    shared = contract.exporter.shared_labels
    if shared is None or contract.store.backend != 'postgresql':  # a host's own store holds only its events
        streams = [stream.name for stream in contract.streams]
        isps = [isp.name for isp in contract.isps]
        sending = [(ip.id, ip.address) for ip in contract.ips]
    else:
        streams, isps = list(shared.streams), list(shared.isps)
        sending = [(ip.id, ip.address) for ip in shared.ips]
    ips: dict[str, str] = {}
    for ip_id, address in sending:
        label = address or ip_id
        ips[ip_id] = label
        if address:
            ips[address] = label
    own = {ip.id for ip in contract.ips}
    foreign = frozenset(address or ip_id for ip_id, address in sending if ip_id not in own)
    categories = {rule.category for rule in contract.bounce_rules.rules} | KNOWN_CATEGORIES
    return Bounds(
        frozenset(streams),
        frozenset(name for name in isps if name != DEFAULT_ISP),
        ips,
        frozenset(categories),
        foreign,
    )


def store_label(contract: Contract) -> str:
    """``store`` label: the host for its own SQLite store, a digest of the DSN (never the DSN) for PostgreSQL."""
    store = contract.store
    if store.backend == 'postgresql':
        return 'postgresql-' + hashlib.sha256((store.dsn or '').encode()).hexdigest()[:12]
    return f'sqlite-{contract.host.name}'


@dataclass
class Counts:
    """The running aggregate, keyed by bounded label values."""

    deliveries: dict[Key, float] = field(default_factory=dict)
    bounces: dict[Key, float] = field(default_factory=dict)
    complaints: dict[Key, float] = field(default_factory=dict)
    rate_events: dict[Key, float] = field(default_factory=dict)
    """(stream, isp, event): what the rate rules read."""

    @staticmethod
    def _add(target: dict[Key, float], key: Key, amount: float) -> None:
        target[key] = target.get(key, 0) + amount


class FeedbackMetrics(Collector):
    """prometheus_client collector of the feedback counters (names and labels: docs/monitoring.md, "Exporter")."""

    def __init__(
        self,
        open_store: Callable[[], Database | None],
        bounds: Bounds,
        store: str,
        host: str,
        clock: Callable[[], float] = time.monotonic,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        """``open_store`` returns a connection, or None when the store does not exist (yet) on this host."""
        self.open_store = open_store
        self.bounds = bounds
        self.store = store
        self.host = host
        self.clock = clock
        self.settle_seconds = settle_seconds
        self.counts = Counts()
        self.problems: dict[Key, float] = {}
        """This host's ingest problems as the store counts them (a small table, read whole at each scrape)."""
        self.watermark = 0
        """Every row with a sequence number up to this one is counted."""
        self._start_top: int | None = None
        """The highest sequence number at the first read; counted up to it, the zero rate series are served."""
        self.rows_counted = 0
        self._db: Database | None = None
        self._seen: list[tuple[float, int]] = []
        """PostgreSQL: (when, highest sequence number) of earlier collections, waiting to settle."""
        self._lock = threading.Lock()
        self._state = 'absent'
        """``up``, ``down`` or ``absent`` (no store or no events table: no series at all)."""
        self._errors: dict[str, float] = {'store': 0}
        self._duration = 0.0
        self._problem: str | None = None

    # --- reading the store ------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Add the rows inserted since the last call to the running aggregate (one call at a time)."""
        with self._lock:
            started = time.perf_counter()
            try:
                self._refresh()
            except StoreError as error:
                self._close()
                self._state = 'down'
                self._errors['store'] += 1
                self._report(f'store: {error}')
            finally:
                self._duration = time.perf_counter() - started

    def _refresh(self) -> None:
        if self._db is None:
            self._db = self.open_store()
            if self._db is None:
                self._state = 'absent'
                self._report(None)
                return
        db = self._db
        seq = SEQUENCE_COLUMN[db.dialect]
        if not db.has_tables(EVENTS_TABLE, PROBLEMS_TABLE):
            self._state = 'absent'
            self._report(None)
            return
        top_row = db.execute(f'SELECT MAX({seq}) FROM {EVENTS_TABLE}')
        newest = int(top_row[0][0]) if top_row and top_row[0][0] is not None else 0
        if newest < self.watermark:
            # A store replaced or emptied: start again (Prometheus sees a counter reset, as after a restart).
            log.warning(
                'feedback events: the store has fewer rows than counted (%d < %d); counting again',
                newest,
                self.watermark,
            )
            self.counts, self.watermark, self._seen, self._start_top = Counts(), 0, [], None
        if self._start_top is None:
            self._start_top = newest
        upto = self._settled(newest) if db.dialect == 'postgresql' else newest
        if upto > self.watermark:
            rows = db.execute(COUNT_SQL.format(table=EVENTS_TABLE, seq=seq), (self.watermark, upto))
            self._add_rows(rows)
            self.watermark = upto
        problems: dict[Key, float] = {}
        for source_kind, reason, count in db.execute(PROBLEMS_SQL, (self.host,)):
            key = (_problem_label(source_kind), _problem_label(reason))
            problems[key] = problems.get(key, 0) + float(count)
        self.problems = problems
        self._state = 'up'
        self._report(None)

    def _settled(self, newest: int) -> int:
        now = self.clock()
        self._seen.append((now, newest))
        ready = [top for when, top in self._seen if now - when >= self.settle_seconds]
        self._seen = [(when, top) for when, top in self._seen if now - when < self.settle_seconds]
        return max(ready, default=self.watermark)

    def _add_rows(self, rows: Iterable[tuple[object, ...]]) -> None:
        bounds, counts = self.bounds, self.counts
        for kind, status, stream, sending_ip, isp, category, number in rows:
            amount = float(number)  # type: ignore[arg-type]
            self.rows_counted += int(amount)
            stream_label, isp_label, ip_label = bounds.stream(stream), bounds.isp(isp), bounds.sending_ip(sending_ip)
            where = (stream_label, ip_label, isp_label)
            per_ip = ip_label not in bounds.foreign_ips  # another host of the shared store serves its IPs' rows
            if kind == 'delivery' and status in DELIVERY_STATUSES:
                if per_ip:
                    counts._add(counts.deliveries, (*where, str(status)), amount)
                counts._add(counts.rate_events, (stream_label, isp_label, str(status)), amount)
            if status == 'bounced' and kind in BOUNCE_KINDS:
                category_label = bounds.category(category)
                if per_ip:
                    counts._add(counts.bounces, (*where, str(kind), category_label), amount)
                if kind == 'delivery' and category_label in HARD_CATEGORIES:
                    counts._add(counts.rate_events, (stream_label, isp_label, 'hard_bounce'), amount)
            if kind == 'complaint':
                if per_ip:
                    counts._add(counts.complaints, where, amount)
                counts._add(counts.rate_events, (stream_label, isp_label, 'complaint'), amount)

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):  # a broken connection may fail to close; it is dropped anyway
                self._db.close()
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _report(self, problem: str | None) -> None:
        """Log a problem once when it starts or changes, and the recovery once."""
        if problem == self._problem:
            return
        if problem is None:
            log.warning('feedback counters: working again')
        else:
            log.error('feedback counters: %s', problem)
        self._problem = problem

    # --- exposition -------------------------------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        # Nothing to describe ahead: registering must not read the store.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        with self._lock:
            state, counts = self._state, self.counts
            errors, duration = dict(self._errors), self._duration
            deliveries, bounces = sorted(counts.deliveries.items()), sorted(counts.bounces.items())
            complaints = sorted(counts.complaints.items())
            rate_events = dict(counts.rate_events)
            primed = self._start_top is not None and self.watermark >= self._start_top
            problems = sorted(self.problems.items())
        if state == 'absent' and not deliveries and not bounces and not complaints:
            return
        if primed:
            isps = sorted({*self.bounds.isps, OTHER, UNKNOWN})
            for series in itertools.product(sorted(self.bounds.streams), isps, RATE_EVENTS):
                rate_events.setdefault(series, 0.0)
        where = ['store', 'stream', 'sending_ip', 'isp']
        families = [
            (
                CounterMetricFamily(
                    'mailinfra_deliveries',
                    'Delivery attempts by outcome (sent, deferred, bounced, expired), from the feedback store.',
                    labels=[*where, 'status'],
                ),
                deliveries,
            ),
            (
                CounterMetricFamily(
                    'mailinfra_bounces',
                    'Bounces by source (delivery: MTA log/accounting, dsn: a DSN received) and classifier category.',
                    labels=[*where, 'kind', 'category'],
                ),
                bounces,
            ),
            (
                CounterMetricFamily(
                    'mailinfra_complaints', 'Complaints (ARF feedback reports), from the feedback store.', labels=where
                ),
                complaints,
            ),
            (
                CounterMetricFamily(
                    'mailinfra_feedback_rate_events',
                    'What the rate alerts read: delivery outcomes, hard bounces (MTA log/accounting) and complaints '
                    "by stream and ISP; the series of the contract's streams and ISPs start at 0.",
                    labels=['store', 'stream', 'isp', 'event'],
                ),
                sorted(rate_events.items()),
            ),
        ]
        for family, values in families:
            for key, value in values:
                family.add_metric([self.store, *key], value)
            yield family
        ingest = CounterMetricFamily(
            'mailinfra_ingest_problems',
            "Input this host's ingest could not read (logged with its location), by kind of source and reason.",
            labels=['source_kind', 'reason'],
        )
        for key, value in problems:
            ingest.add_metric(list(key), value)
        yield ingest
        up = GaugeMetricFamily(
            'mailinfra_feedback_up',
            'Whether the feedback store could be read at this scrape (1) or not (0).',
            labels=['store'],
        )
        up.add_metric([self.store], 1 if state == 'up' else 0)
        took = GaugeMetricFamily(
            'mailinfra_feedback_scrape_duration_seconds',
            'Time reading the feedback store took at this scrape.',
            labels=['store'],
        )
        took.add_metric([self.store], duration)
        failed = CounterMetricFamily(
            'mailinfra_feedback_errors',
            'Failed reads of the feedback store since the exporter started, by kind.',
            labels=['store', 'kind'],
        )
        for kind, value in sorted(errors.items()):
            failed.add_metric([self.store, kind], value)
        yield from (up, took, failed)


def _problem_label(value: object) -> str:
    return value if isinstance(value, str) and PROBLEM_LABEL.fullmatch(value) else OTHER


def open_contract_store(contract: Contract) -> Callable[[], Database | None]:
    """Open the contract's store read-only when it exists; the exporter never creates or changes one."""

    def open_store() -> Database | None:
        store = contract.store
        if store.backend == 'sqlite' and (store.path is None or not Path(store.path).is_file()):
            return None
        return connect(store, read_only=True)

    return open_store


def feedback_metrics(contract: Contract) -> FeedbackMetrics:
    return FeedbackMetrics(
        open_contract_store(contract), bounds_for(contract), store_label(contract), contract.host.name
    )
