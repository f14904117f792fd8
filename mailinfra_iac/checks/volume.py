"""Volume: can each pool carry its stream, and does the MTA fit the volume?"""

from __future__ import annotations

from collections.abc import Iterator

from ..facts.capacity import IspCapacity
from ..problems import Problem
from .base import Check, CheckContext

IMPOSSIBLE_FACTOR = 10
"""A pool this many times short of its stream's peak cannot be a matter of tuning: an error, not a warning."""


def _shortfalls(ctx: CheckContext, name: str) -> list[IspCapacity]:
    """Rows short of capacity; limits below 1/hour are left to throttle-out-of-range (they would divide by 0)."""
    return [row for row in ctx.facts.capacity[name].shortfalls if row.per_ip_per_hour >= 1]


def _factor(row: IspCapacity) -> float:
    return row.needed_per_hour / max(row.capacity_per_hour, 1)


def stream_capacity(ctx: CheckContext) -> Iterator[Problem]:
    for name, capacity in ctx.facts.capacity.items():
        if capacity.ip_count == 0:
            continue  # reported by stream-without-pool / pool-without-ips
        shortfalls = _shortfalls(ctx, name)
        if any(_factor(row) >= IMPOSSIBLE_FACTOR for row in shortfalls):
            continue  # reported by stream-capacity-impossible
        for row in shortfalls:
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


def stream_capacity_impossible(ctx: CheckContext) -> Iterator[Problem]:
    for name, capacity in ctx.facts.capacity.items():
        if capacity.ip_count == 0:
            continue
        rows = [row for row in _shortfalls(ctx, name) if _factor(row) >= IMPOSSIBLE_FACTOR]
        if not rows:
            continue
        row = max(rows, key=_factor)
        ips_needed = -(-row.needed_per_hour // row.per_ip_per_hour)
        yield ctx.problem(
            'stream-capacity-impossible',
            f'stream "{name}" peaks at {capacity.peak_hourly:,} mails/hour; {row.isp} alone needs '
            f'{row.needed_per_hour:,}/hour, {_factor(row):,.0f} times what {capacity.ip_count} IP(s) at '
            f'{row.per_ip_per_hour:,}/hour each can carry',
            ('streams', name, 'volume', 'peak_hourly'),
            expected=f'at least {ips_needed} IPs in the pool, or a peak the pool can carry',
            value=capacity.peak_hourly,
            isp=row.isp,
            needed_per_hour=row.needed_per_hour,
            capacity_per_hour=row.capacity_per_hour,
        )


def volume_consistency(ctx: CheckContext) -> Iterator[Problem]:
    for name, stream in ctx.deployment.streams.items():
        volume = stream.volume
        if volume.peak_hourly > volume.monthly:
            yield ctx.problem(
                'volume-consistency',
                f'stream "{name}" sends {volume.peak_hourly:,} mails in its busiest hour but only '
                f'{volume.monthly:,} in a whole month',
                ('streams', name, 'volume', 'peak_hourly'),
                expected=f'peak_hourly at most monthly ({volume.monthly:,})',
                value=volume.peak_hourly,
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
    Check(
        'stream-capacity-impossible',
        'error',
        f'A pool at least {IMPOSSIBLE_FACTOR} times too small for its stream under the ISP limits.',
        stream_capacity_impossible,
    ),
    Check('volume-consistency', 'error', 'A busiest hour larger than the whole month.', volume_consistency),
    Check('mta-choice', 'advice', 'The MTA chosen against the volume.', mta_choice),
)
