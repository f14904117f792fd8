"""The blocklist textfile for node_exporter's textfile collector (``mailinfra_dnsbl.prom``), written atomically
with prometheus_client (the agent's ``metrics`` extra). Names and labels: BRIEF12 "DNSBL metrics" and
docs/monitoring.md. Only listed pairs appear in ``mailinfra_dnsbl_listed``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .check import Report

TEXTFILE_NAME = 'mailinfra_dnsbl.prom'
DEFAULT_TEXTFILE = f'/var/lib/prometheus/node-exporter/{TEXTFILE_NAME}'


class MetricsError(Exception):
    """The textfile cannot be written (prometheus_client missing, directory unwritable)."""


def registry_for(
    report: Report | None,
    since: Mapping[tuple[str, str], int] | None = None,
    *,
    success: bool | None = None,
    now: float | None = None,
) -> Any:
    """A prometheus_client registry with the run's metrics. ``report`` None: the run could not happen at all
    (only ``run_success`` 0 and the timestamp). ``since``: (subject, zone) -> first seen (Unix seconds)."""
    try:
        from prometheus_client import CollectorRegistry, Gauge
    except ImportError:
        raise MetricsError(
            'the textfile needs prometheus_client: install mailinfra-agent with the "metrics" extra'
        ) from None
    registry = CollectorRegistry()
    listed = Gauge(
        'mailinfra_dnsbl_listed',
        'A subject is listed in a blocklist zone (1); only listed pairs are present.',
        ['subject', 'subject_kind', 'zone', 'severity', 'code'],
        registry=registry,
    )
    listed_since = Gauge(
        'mailinfra_dnsbl_listed_since_timestamp_seconds',
        'When the current listing of a subject in a zone was first seen (Unix time).',
        ['subject', 'subject_kind', 'zone'],
        registry=registry,
    )
    working = Gauge(
        'mailinfra_dnsbl_zone_working',
        'The zone answered its test points as documented and without errors in the last run (1), or not (0).',
        ['zone'],
        registry=registry,
    )
    zone_errors = Gauge(
        'mailinfra_dnsbl_zone_errors',
        'Answers of a zone that were errors or refusals in the last run, by short error id.',
        ['zone', 'error'],
        registry=registry,
    )
    subjects = Gauge(
        'mailinfra_dnsbl_subjects', 'Subjects checked in the last run.', ['subject_kind'], registry=registry
    )
    last_run = Gauge(
        'mailinfra_dnsbl_last_run_timestamp_seconds',
        'When the last blocklist run ended (Unix time).',
        registry=registry,
    )
    run_success = Gauge(
        'mailinfra_dnsbl_run_success',
        'The last run checked every subject in every zone with trustworthy answers (1), or not (0).',
        registry=registry,
    )
    if report is not None:
        for result in report.listed:
            for code in sorted({listing.code for listing in result.listings}):
                listed.labels(result.subject, result.subject_kind, result.zone, result.severity, code).set(1)
            first = (since or {}).get((result.subject, result.zone))
            if first is not None:
                listed_since.labels(result.subject, result.subject_kind, result.zone).set(first)
        for zone in report.zones:
            working.labels(zone.zone).set(1 if zone.working else 0)
            for error_id, count in sorted(zone.errors.items()):
                zone_errors.labels(zone.zone, error_id).set(count)
        kinds = Counter(subject.kind for subject in report.subjects)
        for kind in ('ip', 'domain'):
            subjects.labels(kind).set(kinds.get(kind, 0))
        last_run.set(now if now is not None else report.started + report.duration)
        run_success.set(1 if (report.complete if success is None else success) else 0)
    else:
        if now is not None:
            last_run.set(now)
        run_success.set(0)
    return registry


def write_textfile(
    report: Report | None,
    path: str | Path,
    since: Mapping[tuple[str, str], int] | None = None,
    *,
    success: bool | None = None,
    now: float | None = None,
) -> None:
    """Write the metrics to ``path`` atomically (prometheus_client writes a temporary file and renames it)."""
    registry = registry_for(report, since, success=success, now=now)
    from prometheus_client import write_to_textfile

    target = Path(path)
    if not target.parent.is_dir():
        raise MetricsError(f'{target.parent} does not exist (node_exporter textfile directory)')
    try:
        write_to_textfile(str(target), registry)
    except OSError as error:
        raise MetricsError(f'cannot write {target}: {error.strerror or error}') from None
