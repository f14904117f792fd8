"""The blocklist textfile for node_exporter's textfile collector (``mailinfra_dnsbl.prom``), written atomically
with prometheus_client (the agent's ``metrics`` extra). Names and labels: BRIEF12 "DNSBL metrics" and
docs/monitoring.md. Only listed pairs appear in ``mailinfra_dnsbl_listed``: those listed in this run, and those the
history holds listed whose zone gave no answer this time (an error, a zone not working here, a missing key), which
keep their last known state until an answer confirms or clears them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .check import Report, Result
from .query import SubjectError, registered_domain

TEXTFILE_NAME = 'mailinfra_dnsbl.prom'
DEFAULT_TEXTFILE = f'/var/lib/prometheus/node-exporter/{TEXTFILE_NAME}'
UNANSWERED = frozenset({'error', 'untrusted', 'skipped'})
"""Result statuses that say nothing about a listing: a listing known before is kept."""


@dataclass(frozen=True)
class KeptListing:
    """An open listing of the history (the store's ``listing_state``)."""

    codes: tuple[str, ...]
    first_seen: int
    last_seen: int
    """When an answer last confirmed it (Unix seconds)."""


@cache
def subject_group(subject: str, kind: str) -> str:
    """What a listing alert is about: an IP itself; a domain's registered domain, which a wildcard listing (the DBL's)
    lists with every name below it."""
    if kind != 'domain':
        return subject
    try:
        return registered_domain(subject)
    except SubjectError:
        return subject


class MetricsError(Exception):
    """The textfile cannot be written (prometheus_client missing, directory unwritable)."""


def registry_for(
    report: Report | None,
    since: Mapping[tuple[str, str], int] | None = None,
    *,
    success: bool | None = None,
    now: float | None = None,
    kept: Mapping[tuple[str, str], KeptListing] | None = None,
) -> Any:
    """A prometheus_client registry with the run's metrics. ``report`` None: the run could not happen at all
    (only ``run_success`` 0 and the timestamp). ``since``: (subject, zone) -> first seen (Unix seconds). ``kept``:
    the history's open listings, shown as they were for the pairs this run got no answer for."""
    try:
        from prometheus_client import CollectorRegistry, Gauge
    except ImportError:
        raise MetricsError(
            'the textfile needs prometheus_client: install mailinfra-agent with the "metrics" extra'
        ) from None
    registry = CollectorRegistry()
    listed = Gauge(
        'mailinfra_dnsbl_listed',
        'A subject is listed in a blocklist zone (1); only listed pairs are present, kept as last seen while the '
        'zone answers errors. subject_group: the IP, or the registered domain of a domain.',
        ['subject', 'subject_kind', 'zone', 'severity', 'code', 'subject_group'],
        registry=registry,
    )
    listed_since = Gauge(
        'mailinfra_dnsbl_listed_since_timestamp_seconds',
        'When the current listing of a subject in a zone was first seen (Unix time).',
        ['subject', 'subject_kind', 'zone'],
        registry=registry,
    )
    confirmed = Gauge(
        'mailinfra_dnsbl_listed_confirmed_timestamp_seconds',
        'When an answer last confirmed the listing (Unix time): before the last run when it is kept as last seen.',
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
        ended = now if now is not None else report.started + report.duration
        for result, codes, last in _listings(report, kept or {}, ended):
            group = subject_group(result.subject, result.subject_kind)
            for code in codes:
                listed.labels(result.subject, result.subject_kind, result.zone, result.severity, code, group).set(1)
            first = (since or {}).get((result.subject, result.zone))
            if first is not None:
                listed_since.labels(result.subject, result.subject_kind, result.zone).set(first)
            confirmed.labels(result.subject, result.subject_kind, result.zone).set(last)
        for zone in report.zones:
            working.labels(zone.zone).set(1 if zone.working else 0)
            for error_id, count in sorted(zone.errors.items()):
                zone_errors.labels(zone.zone, error_id).set(count)
        kinds = Counter(subject.kind for subject in report.subjects)
        for kind in ('ip', 'domain'):
            subjects.labels(kind).set(kinds.get(kind, 0))
        last_run.set(ended)
        run_success.set(1 if (report.complete if success is None else success) else 0)
    else:
        if now is not None:
            last_run.set(now)
        run_success.set(0)
    return registry


def _listings(
    report: Report, kept: Mapping[tuple[str, str], KeptListing], ended: float
) -> list[tuple[Result, list[str], float]]:
    """(result, codes, last confirmed) of the pairs to show listed: listed now, or kept from the history."""
    found = []
    for result in report.results:
        if result.status == 'listed':
            found.append((result, sorted({listing.code for listing in result.listings}), ended))
        elif result.status in UNANSWERED:
            known = kept.get((result.subject, result.zone))
            if known is not None and known.codes:
                found.append((result, sorted(set(known.codes)), float(known.last_seen)))
    return found


def write_textfile(
    report: Report | None,
    path: str | Path,
    since: Mapping[tuple[str, str], int] | None = None,
    *,
    success: bool | None = None,
    now: float | None = None,
    kept: Mapping[tuple[str, str], KeptListing] | None = None,
) -> None:
    """Write the metrics to ``path`` atomically (prometheus_client writes a temporary file and renames it)."""
    registry = registry_for(report, since, success=success, now=now, kept=kept)
    from prometheus_client import write_to_textfile

    target = Path(path)
    if not target.parent.is_dir():
        raise MetricsError(f'{target.parent} does not exist (node_exporter textfile directory)')
    try:
        write_to_textfile(str(target), registry)
    except OSError as error:
        raise MetricsError(f'cannot write {target}: {error.strerror or error}') from None
