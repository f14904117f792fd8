"""Shaping metrics of the exporter, read from the store at each scrape (the tables are small).

- ``mailinfra_shaping_active{stream,ip,isp,action}``: 1 for each action in force (``isp="*"`` for ``suspend_ip``);
- ``mailinfra_shaping_active_since_seconds{...}``: Unix time the action began;
- ``mailinfra_shaping_actions_total{stream,ip,isp,action,event}``: applied, extended, expired, released.

Values come from the shaping service's store (``mailinfra_agent.shaping.state``), so they survive restarts of
either process. No store or no shaping tables (no shaping service on the host): no series, not a failure.
Label values are the contract's streams and addresses, and ISP names of its rules: bounded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..contract import Contract
from ..shaping import state
from ..store import Database, StoreError
from .feedback import open_contract_store

log = logging.getLogger('mailinfra_agent.exporter')

ALL_ISPS_LABEL = '*'


class ShapingMetrics(Collector):
    """prometheus_client collector of the shaping state of one host."""

    def __init__(self, open_store: Callable[[], Database | None], host: str) -> None:
        self.open_store = open_store
        self.host = host
        self._db: Database | None = None
        self._lock = threading.Lock()
        self._problem: str | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())

    def _read(self) -> tuple[list[state.Active], list[tuple[str, str, str | None, str, str, int]]] | None:
        with self._lock:
            try:
                if self._db is None:
                    self._db = self.open_store()
                if self._db is None or not state.has_tables(self._db):
                    return None
                result = state.active(self._db, self.host), state.counters(self._db, self.host)
            except StoreError as error:
                self._close()
                if str(error) != self._problem:
                    log.error('shaping metrics: %s', error)
                    self._problem = str(error)
                return None
            if self._problem is not None:
                log.warning('shaping metrics: working again')
                self._problem = None
            return result

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None

    def close(self) -> None:
        with self._lock:
            self._close()

    def collect(self) -> Iterator[Metric]:
        read = self._read()
        if read is None:
            return
        actions, counts = read
        labels = ['stream', 'ip', 'isp', 'action']
        active = GaugeMetricFamily(
            'mailinfra_shaping_active',
            'Shaping actions in force (1), by stream, sending IP, ISP ("*" for suspend_ip) and action.',
            labels=labels,
        )
        since = GaugeMetricFamily(
            'mailinfra_shaping_active_since_seconds',
            'Unix time the shaping action in force began.',
            labels=labels,
        )
        for item in actions:
            action = item.action
            key = [action.stream, action.ip, action.isp or ALL_ISPS_LABEL, action.kind]
            active.add_metric(key, 1)
            since.add_metric(key, item.since)
        total = CounterMetricFamily(
            'mailinfra_shaping_actions',
            'Shaping actions applied, extended, expired and released, by stream, sending IP, ISP and action.',
            labels=[*labels, 'event'],
        )
        for stream, ip, isp, kind, event, value in counts:
            total.add_metric([stream, ip, isp or ALL_ISPS_LABEL, kind, event], value)
        yield from (active, since, total)


def shaping_metrics(contract: Contract) -> ShapingMetrics:
    return ShapingMetrics(open_contract_store(contract), contract.host.name)
