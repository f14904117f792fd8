"""Volume: can each pool carry its stream, and does the MTA fit the volume?"""

from __future__ import annotations

from collections.abc import Iterator

from ..problems import Problem
from .base import Check, CheckContext


def stream_capacity(ctx: CheckContext) -> Iterator[Problem]:
    for name, capacity in ctx.facts.capacity.items():
        if capacity.ip_count == 0:
            continue  # reported by stream-without-pool / pool-without-ips
        for row in capacity.shortfalls:
            ips_needed = -(-row.needed_per_hour // row.per_ip_per_hour)
            yield ctx.problem(
                'stream-capacity',
                f'stream "{name}" peaks at {capacity.peak_hourly:,} mails/hour; about {row.share:.0%} '
                f'({row.needed_per_hour:,}/hour) go to {row.isp}, but {capacity.ip_count} IP(s) at '
                f'{row.per_ip_per_hour:,}/hour each carry only {row.capacity_per_hour:,}/hour',
                ('streams', name, 'volume', 'peak_hourly'),
                severity='warning',
                expected=f'at least {ips_needed} IPs in the pool, a higher {row.isp} limit, or a flatter peak',
                value=capacity.peak_hourly,
                isp=row.isp,
                needed_per_hour=row.needed_per_hour,
                capacity_per_hour=row.capacity_per_hour,
            )
        if capacity.warmup_shortfall:
            yield ctx.problem(
                'stream-capacity',
                f'stream "{name}" peaks at {capacity.peak_hourly:,} mails/hour, but its IPs are warming up and '
                f'together may send about {capacity.warmup_capacity_per_hour:,}/hour on {ctx.facts.as_of}',
                ('streams', name, 'volume', 'peak_hourly'),
                severity='warning',
                expected='a peak inside the warm-up schedule, or more warmed IPs',
                value=capacity.peak_hourly,
                warmup_capacity_per_hour=capacity.warmup_capacity_per_hour,
            )


def mta_choice(ctx: CheckContext) -> Iterator[Problem]:
    advice = ctx.facts.mta
    yield ctx.problem(
        'mta-choice',
        f'{advice.chosen} ({"recommended" if advice.agrees else "recommended: " + advice.recommended}): '
        + '; '.join(advice.reasons),
        ('mta',),
        severity='advice' if advice.agrees else 'warning',
        expected=advice.recommended,
        value=ctx.deployment.mta,
        daily_volume=advice.daily_volume,
    )


CHECKS = (
    Check('stream-capacity', 'warning', 'A pool too small for its stream under the ISP limits.', stream_capacity),
    Check('mta-choice', 'advice', 'The MTA chosen against the volume.', mta_choice),
)
