"""Retry timing, queue thresholds and DNSBL zones."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from ..catalogue.dnsbl import RETIRED, by_zone
from ..model import format_duration
from ..model.base import parse_email
from ..problems import Problem
from .base import Check, CheckContext


def retry_schedule(ctx: CheckContext) -> Iterator[Problem]:
    for name, stream in ctx.facts.streams.items():
        retry = stream.retry
        if retry.min_backoff > retry.max_backoff:
            yield ctx.problem(
                'retry-schedule',
                f'min_backoff {format_duration(retry.min_backoff)} is longer than max_backoff '
                f'{format_duration(retry.max_backoff)}',
                ('streams', name, 'retry'),
                expected='min_backoff <= max_backoff',
            )
        if retry.queue_lifetime < retry.min_backoff:
            yield ctx.problem(
                'retry-schedule',
                f'queue_lifetime {format_duration(retry.queue_lifetime)} ends before the first retry '
                f'({format_duration(retry.min_backoff)})',
                ('streams', name, 'retry'),
                expected='queue_lifetime >= min_backoff',
            )


def queue_thresholds(ctx: CheckContext) -> Iterator[Problem]:
    queue = ctx.deployment.monitoring.queue
    if queue.depth_warning > queue.depth_critical:
        yield ctx.problem(
            'queue-thresholds',
            f'depth_warning {queue.depth_warning} is above depth_critical {queue.depth_critical}',
            ('monitoring', 'queue', 'depth_warning'),
            expected='depth_warning <= depth_critical',
            value=queue.depth_warning,
        )
    if queue.age_warning > queue.age_critical:
        yield ctx.problem(
            'queue-thresholds',
            f'age_warning {format_duration(queue.age_warning)} is above age_critical '
            f'{format_duration(queue.age_critical)}',
            ('monitoring', 'queue', 'age_warning'),
            expected='age_warning <= age_critical',
        )


def alert_target(ctx: CheckContext) -> Iterator[Problem]:
    for index, alert in enumerate(ctx.deployment.monitoring.alerts):
        if alert.kind == 'email':
            try:
                parse_email(alert.target)
                continue
            except ValueError:
                expected = 'an e-mail address such as ops@example.com'
        else:
            url = urlsplit(alert.target)
            try:
                url.port  # noqa: B018 - raises ValueError for a bad port
                host = url.hostname
            except ValueError:
                host = None
            if url.scheme in ('http', 'https') and host and ' ' not in alert.target:
                continue
            expected = 'an http:// or https:// URL with a host, such as https://hooks.example.com/alerts'
        yield ctx.problem(
            'alert-target',
            f'{alert.kind} alert target "{alert.target}" is not '
            + ('an e-mail address' if alert.kind == 'email' else 'a URL'),
            ('monitoring', 'alerts', index, 'target'),
            expected=expected,
            value=alert.target,
        )


def dnsbl_zones(ctx: CheckContext) -> Iterator[Problem]:
    known = by_zone()
    for index, zone in enumerate(ctx.deployment.monitoring.dnsbl_zone_names() or []):
        if zone in RETIRED:
            yield ctx.problem(
                'dnsbl-zone',
                f'DNSBL zone {zone} must not be queried: {RETIRED[zone]}',
                ('monitoring', 'dnsbl_zones', index),
                expected='a live zone, e.g. ' + ', '.join(sorted(known)[:3]),
                value=zone,
            )
        elif zone not in known:
            yield ctx.problem(
                'dnsbl-zone',
                f'DNSBL zone {zone} is not in the catalogue: only 127.0.0.2 will be read as a listing',
                ('monitoring', 'dnsbl_zones', index),
                severity='warning',
                expected='one of: ' + ', '.join(sorted(known)),
                value=zone,
            )


CHECKS = (
    Check('retry-schedule', 'error', 'Back-off and queue lifetime that make sense together.', retry_schedule),
    Check('queue-thresholds', 'error', 'Warning thresholds below critical ones.', queue_thresholds),
    Check('alert-target', 'error', 'Alert targets that are e-mail addresses or URLs.', alert_target),
    Check('dnsbl-zone', 'error', 'DNSBL zones that are live and decodable.', dnsbl_zones),
)
