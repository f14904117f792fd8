"""Can a stream's pool send its peak hour under the ISP limits (and the warm-up caps)?"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mailinfra_agent.shaping.warmup import curve_cap

from ..catalogue.isps import DEFAULT_LIMITS
from .isps import other_share
from .streams import StreamFact

WARMUP_DAILY = ((1, 50), (2, 100), (3, 200), (4, 400), (5, 800), (6, 1500), (7, 3000), (14, 25_000), (30, 175_000))
"""KumoMTA's conservative schedule: messages per IP per day, by warm-up day."""
WARMUP_CURVES = {'conservative': WARMUP_DAILY}
"""Named curves of the spec's ``warmup.curve``; ``custom`` takes the spec's own ``steps``."""
WARMUP_SOURCES = {
    'conservative': 'KumoMTA warm-up helper, "conservative" schedule (assets/policy-extras/warmup.toml, '
    'pull request #546; mta.md section 2.2)',
}
WARMUP_ACTIVE_HOURS = 12


def warmup_curve(curve: str, steps: dict[int, int] | None = None) -> tuple[tuple[int, int], ...]:
    """The points of a spec's curve: a named one, or the custom ``steps``."""
    if curve == 'custom':
        return tuple(sorted((steps or {}).items()))
    return WARMUP_CURVES[curve]


def warmup_daily_cap(
    started: dt.date | None, as_of: dt.date, curve: tuple[tuple[int, int], ...] = WARMUP_DAILY
) -> int | None:
    """Daily cap of an IP on ``as_of``; None when it is not warming up (or finished).

    The host's shaping service computes the same numbers (``mailinfra_agent.shaping.warmup.curve_cap``).
    """
    if started is None:
        return None
    return curve_cap(curve, (as_of - started).days + 1)


@dataclass(frozen=True)
class IspCapacity:
    isp: str
    share: float
    needed_per_hour: int
    capacity_per_hour: int
    per_ip_per_hour: int


@dataclass(frozen=True)
class StreamCapacity:
    stream: str
    peak_hourly: int
    ip_count: int
    warmup_capacity_per_hour: int | None
    by_isp: tuple[IspCapacity, ...]

    @property
    def shortfalls(self) -> tuple[IspCapacity, ...]:
        return tuple(row for row in self.by_isp if row.needed_per_hour > row.capacity_per_hour)

    @property
    def warmup_shortfall(self) -> bool:
        return self.warmup_capacity_per_hour is not None and self.peak_hourly > self.warmup_capacity_per_hour


def stream_capacity(
    stream: StreamFact, as_of: dt.date, curve: tuple[tuple[int, int], ...] = WARMUP_DAILY
) -> StreamCapacity:
    count = len(stream.ips)
    rows = []
    shares = [(name, isp.share, isp.limits.messages_per_hour) for name, isp in stream.isps.items()]
    shares.append(('other', other_share(stream.isps), DEFAULT_LIMITS.messages_per_hour or 0))
    for name, share, per_ip in shares:
        if share <= 0:
            continue
        rows.append(
            IspCapacity(
                isp=name,
                share=share,
                needed_per_hour=round(stream.volume.peak_hourly * share),
                capacity_per_hour=per_ip * count,
                per_ip_per_hour=per_ip,
            )
        )
    caps = [warmup_daily_cap(ip.warmup_started, as_of, curve) for ip in stream.ips]
    warmup = None
    if any(cap is not None for cap in caps):
        unlimited = sum(1 for cap in caps if cap is None)
        warmup = sum(cap // WARMUP_ACTIVE_HOURS for cap in caps if cap is not None) + unlimited * 10**9
        warmup = warmup if unlimited == 0 else None
    return StreamCapacity(stream.name, stream.volume.peak_hourly, count, warmup, tuple(rows))
