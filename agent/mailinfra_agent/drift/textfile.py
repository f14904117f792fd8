"""``mailinfra_dns.prom`` for node_exporter's textfile collector, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .runner import DriftReport

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


class TextfileError(Exception):
    """The metrics could not be written (no prometheus_client, or the directory is not writable)."""


def _registry(report: DriftReport) -> CollectorRegistry:
    try:
        from prometheus_client import CollectorRegistry, Gauge
    except ImportError:  # the agent's "metrics" extra
        raise TextfileError('prometheus_client is not installed: install mailinfra-agent[metrics]') from None
    registry = CollectorRegistry()
    ok = Gauge(
        'mailinfra_dns_record_ok',
        'Whether the resolver answers the record set the deployment publishes (1) or not (0).',
        ['name', 'type', 'check'],
        registry=registry,
    )
    seen: set[tuple[str, str, str]] = set()
    for result in report.results:
        labels = (result.name, result.type, result.check)
        if labels not in seen:
            seen.add(labels)
            ok.labels(*labels).set(1 if result.ok else 0)
    Gauge(
        'mailinfra_dns_check_last_run_timestamp_seconds',
        'When the DNS drift check last ran (end of the run).',
        registry=registry,
    ).set(report.finished)
    Gauge(
        'mailinfra_dns_check_success',
        'Whether the last DNS drift check could ask a resolver (1) or not (0); drift itself is in record_ok.',
        registry=registry,
    ).set(1 if report.success else 0)
    return registry


def render_metrics(report: DriftReport) -> str:
    from prometheus_client import generate_latest

    return generate_latest(_registry(report)).decode()


def write_textfile(report: DriftReport, path: str | Path) -> None:
    """Write the metrics to ``path`` through a temporary file renamed over it (prometheus_client's own way)."""
    registry = _registry(report)
    from prometheus_client import write_to_textfile

    try:
        write_to_textfile(str(path), registry)
    except OSError as error:
        raise TextfileError(f'cannot write {path}: {error}') from None
