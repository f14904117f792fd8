"""The exporter's metrics: computed at scrape time from the host's queue collectors.

``QueueMetrics`` is a prometheus_client custom collector. Each scrape asks every ``QueueCollector`` for its streams;
a collector that fails is reported as ``mailinfra_collector_up 0`` with its error counted, and the other collectors'
series are still served. Scrapes that arrive while a collection runs wait for it and share its result, so concurrent
scrapes never pile up collections. Label values are bounded here whatever a collector returns: the top N recipient
domains plus ``other``, deferral reasons as enhanced status codes or ``unknown``, ISPs of the contract or ``other``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..queue.base import QUEUE_NAMES, CollectorError, QueueCollector, StreamQueue

log = logging.getLogger('mailinfra_agent.exporter')

OTHER = 'other'
UNKNOWN = 'unknown'
ENHANCED_STATUS = re.compile(r'[245]\.\d{1,3}\.\d{1,3}')
"""RFC 3463 enhanced status code: class.subject.detail."""
INTERNAL = 'internal'
"""Error kind of a collector that failed with something other than CollectorError (a bug, reported, not fatal)."""
KIND = re.compile(r'[a-z][a-z0-9_]{0,31}')


@dataclass
class CollectorResult:
    """What one collector gave at one collection."""

    name: str
    instance: str
    up: bool
    duration: float
    streams: list[StreamQueue] = field(default_factory=list)


@dataclass
class Collection:
    finished: float
    results: list[CollectorResult]


def _instance_of(collector: QueueCollector) -> str:
    """The ``instance`` label of a collector's own series: its ``instance`` attribute, else its name."""
    value = getattr(collector, 'instance', None)
    return value if isinstance(value, str) and value else collector.name


def _kind(value: object) -> str:
    """A bounded error-kind label."""
    return value if isinstance(value, str) and KIND.fullmatch(value) else INTERNAL


def _bounded_top(counts: Mapping[str, float], limit: int) -> dict[str, float]:
    ranked = sorted(((k, n) for k, n in counts.items() if k != OTHER), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:limit])
    rest = sum(n for _, n in ranked[limit:]) + counts.get(OTHER, 0)
    if rest or OTHER in counts:
        kept[OTHER] = rest
    return kept


def _number(value: object) -> float | None:
    """A finite, non-negative number, else None (a collector bug; the sample is dropped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


class QueueMetrics(Collector):
    """prometheus_client collector of the queue metrics (names and labels: docs/monitoring.md, "Exporter")."""

    def __init__(
        self,
        collectors: Sequence[QueueCollector],
        version: str,
        isps: Iterable[str] = (),
        top_domains: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collectors = list(collectors)
        self.version = version
        self.isps = frozenset(isps)
        self.top_domains = top_domains
        self.clock = clock
        self._lock = threading.Lock()
        self._last: Collection | None = None
        self._errors: dict[tuple[str, str, str], float] = {}
        self._problems: dict[str, str] = {}
        """Collector name -> the problem last logged, so a lasting problem is logged once, not at every scrape."""
        for collector in self.collectors:
            # Declared at start, so the counters exist (at 0) before the first error.
            self._errors[(collector.name, _instance_of(collector), 'collect')] = 0
        self.collections = 0
        """Collections run so far (the tests check that concurrent scrapes share one)."""
        self.companions: list[Collector] = []
        """Collectors of other concerns served beside the queue metrics (the feedback counters: ``feedback.py``)."""

    # --- collection -------------------------------------------------------------------------------------------------

    @property
    def last(self) -> Collection | None:
        """The latest collection, if any."""
        return self._last

    def collection(self) -> Collection:
        """A collection that finished after this call began: a running one is waited for and shared."""
        arrived = self.clock()
        with self._lock:
            if self._last is not None and self._last.finished >= arrived:
                return self._last
            results = [self._collect_one(collector) for collector in self.collectors]
            self.collections += 1
            self._last = Collection(self.clock(), results)
            return self._last

    def _collect_one(self, collector: QueueCollector) -> CollectorResult:
        instance = _instance_of(collector)
        started = time.perf_counter()
        try:
            streams = collector.collect()
            if not isinstance(streams, list) or not all(isinstance(s, StreamQueue) for s in streams):
                raise TypeError(f'collect() returned {type(streams).__name__}, not a list of StreamQueue')
        except CollectorError as error:
            kind = _kind(error.kind)
            self._count(collector.name, instance, kind, 1)
            self._problem(collector.name, f'{kind}: {error}')
            return CollectorResult(collector.name, instance, False, time.perf_counter() - started)
        except Exception as error:
            self._count(collector.name, instance, INTERNAL, 1)
            self._problem(collector.name, f'{INTERNAL}: {type(error).__name__}: {error}')
            return CollectorResult(collector.name, instance, False, time.perf_counter() - started)
        for stream in streams:
            for kind, count in stream.errors.items():
                number = _number(count)
                if number:
                    self._count(collector.name, stream.instance, _kind(kind), number)
        self._problem(collector.name, None)
        return CollectorResult(collector.name, instance, True, time.perf_counter() - started, streams)

    def _count(self, collector: str, instance: str, kind: str, amount: float) -> None:
        key = (collector, instance, kind)
        self._errors[key] = self._errors.get(key, 0) + amount

    def _problem(self, collector: str, problem: str | None) -> None:
        """Log a collector's problem once when it starts or changes, and its recovery once."""
        before = self._problems.get(collector)
        if problem == before:
            return
        if problem is None:
            self._problems.pop(collector)
            log.warning('collector %s: working again', collector)
        else:
            self._problems[collector] = problem
            log.error('collector %s: %s', collector, problem)

    # --- exposition -------------------------------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        # Nothing to describe ahead: registering must not run a collection.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        collection = self.collection()
        labels = ['stream', 'instance']
        messages = GaugeMetricFamily(
            'mailinfra_queue_messages', 'Messages in the queue (PowerMTA: recipients).', labels=[*labels, 'queue']
        )
        oldest = GaugeMetricFamily(
            'mailinfra_queue_oldest_message_age_seconds',
            'Age of the oldest message in the queue (0 when empty).',
            labels=[*labels, 'queue'],
        )
        by_isp = GaugeMetricFamily(
            'mailinfra_queue_deferred_messages_by_isp',
            'Deferred messages by destination ISP (catalogue name or other).',
            labels=[*labels, 'isp'],
        )
        domains = GaugeMetricFamily(
            'mailinfra_queue_recipient_domain_messages',
            'Queued messages by recipient domain: the top domains and other.',
            labels=[*labels, 'domain'],
        )
        reasons = GaugeMetricFamily(
            'mailinfra_queue_deferral_reasons',
            'Deferred messages by enhanced status code of the deferral (or unknown).',
            labels=[*labels, 'status'],
        )
        corrupt = GaugeMetricFamily(
            'mailinfra_queue_corrupt_files',
            "Damaged queue files the MTA set aside (Postfix's corrupt/), never delivered.",
            labels=labels,
        )
        up = GaugeMetricFamily(
            'mailinfra_collector_up',
            'Whether the collector read its queues (1) or not (0).',
            labels=['collector', 'instance'],
        )
        duration = GaugeMetricFamily(
            'mailinfra_collector_scrape_duration_seconds',
            'Time the collector took at this scrape.',
            labels=['collector', 'instance'],
        )
        errors = CounterMetricFamily(
            'mailinfra_collector_errors',
            'Problems met by the collectors since the exporter started, by kind.',
            labels=['collector', 'instance', 'kind'],
        )
        build = GaugeMetricFamily(
            'mailinfra_exporter_build_info', 'Version of the exporter (always 1).', labels=['version']
        )
        build.add_metric([self.version], 1)

        series: dict[str, dict[tuple[str, ...], float]] = {
            name: {} for name in ('messages', 'oldest', 'isp', 'domain', 'reason', 'corrupt')
        }
        for result in collection.results:
            for instance, instance_up in self._instances(result):
                up.add_metric([result.name, instance], 1 if instance_up else 0)
                duration.add_metric([result.name, instance], result.duration)
            for stream_queue in result.streams:
                if stream_queue.up:
                    self._add_stream(stream_queue, series)
        for key, value in sorted(series['messages'].items()):
            messages.add_metric(list(key), value)
        for key, value in sorted(series['oldest'].items()):
            oldest.add_metric(list(key), value)
        for key, value in sorted(series['isp'].items()):
            by_isp.add_metric(list(key), value)
        for key, value in self._top(series['domain']):
            domains.add_metric(list(key), value)
        for key, value in sorted(series['reason'].items()):
            reasons.add_metric(list(key), value)
        for key, value in sorted(series['corrupt'].items()):
            corrupt.add_metric(list(key[:2]), value)
        with self._lock:
            counted = sorted(self._errors.items())
        for (collector, instance, kind), value in counted:
            errors.add_metric([collector, instance, kind], value)
        yield from (messages, oldest, by_isp, domains, reasons, corrupt, up, duration, errors, build)

    @staticmethod
    def _instances(result: CollectorResult) -> list[tuple[str, bool]]:
        """``up`` per instance: each instance the collector reported (down if any of its streams could not be read),
        else the collector's own instance label (a collector that failed, or that found no instance)."""
        if not result.up or not result.streams:
            return [(result.instance, result.up)]
        found: dict[str, bool] = {}
        for stream_queue in result.streams:
            found[stream_queue.instance] = found.get(stream_queue.instance, True) and bool(stream_queue.up)
        return sorted(found.items())

    def _add_stream(self, stream: StreamQueue, series: dict[str, dict[tuple[str, ...], float]]) -> None:
        """Add one stream's figures; a second StreamQueue for the same stream and instance adds up."""
        key = (str(stream.stream), str(stream.instance))

        def add(name: str, label: str, value: object, combine: Callable[[float, float], float] = float.__add__) -> None:
            number = _number(value)
            if number is not None:
                at = (*key, label)
                series[name][at] = combine(series[name][at], number) if at in series[name] else number

        for queue in QUEUE_NAMES:
            add('messages', queue, stream.messages.get(queue, 0))
        for queue, age in stream.oldest_age_seconds.items():
            if queue in QUEUE_NAMES:
                add('oldest', queue, age, max)
        for isp, count in stream.deferred_by_isp.items():
            add('isp', isp if isp in self.isps and isp != '*' else OTHER, count)
        for domain, count in stream.recipient_domains.items():
            add('domain', str(domain).lower()[:253], count)
        for status, count in stream.deferral_reasons.items():
            add('reason', status if isinstance(status, str) and ENHANCED_STATUS.fullmatch(status) else UNKNOWN, count)
        if stream.corrupt is not None:
            add('corrupt', '', stream.corrupt)

    def _top(self, counts: dict[tuple[str, ...], float]) -> list[tuple[tuple[str, ...], float]]:
        """Per stream and instance, the top N domains plus ``other`` (a collector's own cut is kept if smaller)."""
        grouped: dict[tuple[str, str], dict[str, float]] = {}
        for (stream, instance, domain), value in counts.items():
            domains = grouped.setdefault((stream, instance), {})
            domains[domain] = domains.get(domain, 0) + value
        out: list[tuple[tuple[str, ...], float]] = []
        for (stream, instance), domains in sorted(grouped.items()):
            for domain, value in sorted(_bounded_top(domains, self.top_domains).items()):
                out.append(((stream, instance, domain), value))
        return out
