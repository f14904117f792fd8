"""The warm-up calendar of each warming IP and ISP, and the contract section the hosts follow.

One curve (``capacity.warmup_curve``: KumoMTA's conservative one, or the spec's custom steps) and one split
(``mailinfra_agent.shaping.warmup.split_cap``): the plan printed here is the calendar the hosts apply, as long as
no day is held for its bounce or complaint rate (the host decides that from its store, day by day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from mailinfra_agent import contract as c
from mailinfra_agent.shaping.warmup import PPM, DayCounts, Progress, progress, split_cap, store_history
from mailinfra_agent.store import Database

from ..model import Deployment
from .capacity import WARMUP_SOURCES, warmup_curve
from .ips import IpFact
from .streams import StreamFact

MAX_DAYS = 3 * 366
"""How far ahead the date a pool reaches its stream's volume is looked for."""


def curve_points(deployment: Deployment) -> tuple[tuple[int, int], ...]:
    return warmup_curve(deployment.warmup.curve, deployment.warmup.steps)


def curve_source(deployment: Deployment) -> str:
    return WARMUP_SOURCES.get(deployment.warmup.curve, 'the spec (warmup.steps)')


def shares_ppm(stream: StreamFact) -> dict[str, int]:
    """Each ISP's part of a daily cap (parts per million): its share of the stream's recipients (ISPs without a
    share count with the other recipients)."""
    return {name: round(isp.share * PPM) for name, isp in sorted(stream.isps.items()) if round(isp.share * PPM) > 0}


def daily_volume(stream: StreamFact) -> int:
    """The stream's volume of an average day: monthly / 30, as the advisor counts it."""
    return round(stream.volume.monthly / 30)


def stream_limits(deployment: Deployment, stream: StreamFact) -> c.WarmupStream:
    """The stream's rate lines (``monitoring.rates`` warnings) and ISP shares, as the contract carries them."""
    rates = deployment.monitoring.rates
    thresholds = rates.streams.get(stream.name, rates.default)
    return c.WarmupStream(
        stream=stream.name,
        hard_bounce_limit_ppm=round(thresholds.bounce_warning * PPM),
        complaint_limit_ppm=round(thresholds.complaint_warning * PPM),
        shares=shares_ppm(stream),
    )


def schedule(deployment: Deployment, streams: list[StreamFact]) -> c.Warmup:
    """The spec's warm-up as the contract states it, for these streams."""
    spec = deployment.warmup
    return c.Warmup(
        curve=spec.curve,
        steps=tuple(c.WarmupStep(day, cap) for day, cap in curve_points(deployment)),
        time_zone=spec.time_zone,
        on_threshold=spec.on_threshold,
        min_sent=spec.min_sent,
        streams=tuple(stream_limits(deployment, stream) for stream in streams),
    )


def contract_warmup(deployment: Deployment, streams: list[StreamFact]) -> c.Warmup:
    """The contract's warm-up section of a host with these streams; empty when none of their IPs warms up."""
    if not any(ip.warmup_started is not None for stream in streams for ip in stream.ips):
        return c.Warmup()
    return schedule(deployment, streams)


History = Mapping[str, Mapping[dt.date, DayCounts]]
"""Counts per IP (address, or id while unallocated) and day, as the host reads them from its store."""


def store_histories(
    db: Database, deployment: Deployment, streams: dict[str, StreamFact], today: dt.date
) -> dict[str, dict[dt.date, DayCounts]]:
    """What the hosts read from the store to judge the warming IPs' past days (before ``today``)."""
    plan = schedule(deployment, list(streams.values()))
    limits = {item.stream: item for item in plan.streams}
    result = {}
    for stream in streams.values():
        for ip in stream.ips:
            if ip.warmup_started is None or ip.address is None:
                continue
            host_ip = c.SendingIp(
                ip.id, ip.address, ip.ptr, ip.helo, ip.pool, stream.name, ip.warmup_started.isoformat()
            )
            result[ip.address] = store_history(db, plan, limits[stream.name], host_ip, ip.warmup_started, today)
    return result


@dataclass(frozen=True)
class CalendarDay:
    """One day of one warming IP: its cap and the cap's split across ISPs."""

    stream: str
    pool: str
    ip: str
    """The address, or the IP id while the provider has not allocated it."""
    day: int
    date: dt.date
    cap: int
    isps: dict[str, int]
    step: int
    """The curve day the IP is on: ``day`` unless the store showed held days (``History``)."""
    held: str | None = None
    """Why this day did not advance the IP (its rates), from the store; None: it did, or it is not judged yet."""


@dataclass(frozen=True)
class PoolReach:
    """When a stream's pool may send the stream's daily volume (every IP at its cap)."""

    stream: str
    pool: str | None
    daily_volume: int
    date: dt.date | None
    """None: not within ``MAX_DAYS`` (or the pool has no IP)."""
    warming: bool
    """Whether any IP of the pool warms up (False: no cap, the pool can send from the start)."""


@dataclass(frozen=True)
class WarmupPlan:
    curve: str
    source: str
    points: tuple[tuple[int, int], ...]
    time_zone: str
    days: tuple[CalendarDay, ...]
    reach: tuple[PoolReach, ...]


def _ip_name(ip: IpFact) -> str:
    return ip.address or ip.id


class _Ip:
    """One warming IP's calendar: its step and cap on each date (held days from ``history``)."""

    def __init__(self, plan: c.Warmup, limits: c.WarmupStream, started: dt.date, history: Mapping[dt.date, DayCounts]):
        self.plan, self.limits, self.started, self.history = plan, limits, started, history
        self._memo: dict[dt.date, Progress] = {}

    def on(self, date: dt.date) -> Progress:
        if date not in self._memo:
            self._memo[date] = progress(self.plan, self.limits, self.started, date, self.history)
        return self._memo[date]

    def held(self, date: dt.date) -> str | None:
        before, after = self.on(date).held, self.on(date + dt.timedelta(days=1)).held
        return after[-1].split(': ', 1)[1] if len(after) > len(before) else None


def _reach(stream: StreamFact, calendars: Mapping[str, _Ip]) -> PoolReach:
    volume = daily_volume(stream)
    warming = [calendars[ip.id] for ip in stream.ips if ip.id in calendars]
    if not warming:
        return PoolReach(stream.name, stream.pool, volume, None, False)
    if len(warming) < len(stream.ips):  # an IP without a cap carries the volume from the start
        return PoolReach(stream.name, stream.pool, volume, min(ip.started for ip in warming), True)
    first = min(ip.started for ip in warming)
    for offset in range(MAX_DAYS):
        date = first + dt.timedelta(days=offset)
        caps = [ip.on(date).daily_cap for ip in warming]
        if any(cap is None for cap in caps) or sum(cap for cap in caps if cap is not None) >= volume:
            return PoolReach(stream.name, stream.pool, volume, date, True)
    return PoolReach(stream.name, stream.pool, volume, None, True)


def warmup_plan(
    deployment: Deployment,
    streams: dict[str, StreamFact],
    history: History | None = None,
) -> WarmupPlan:
    """The calendar of every warming IP from its start to the end of its warm-up.

    Without ``history`` every day advances the IP (the calendar the hosts follow when no day is held); with the
    store's counts (``store_histories``) past days over the rate lines hold it, as on the host.
    """
    plan = schedule(deployment, list(streams.values()))
    limits = {item.stream: item for item in plan.streams}
    calendars: dict[str, _Ip] = {}
    days = []
    for stream in streams.values():
        shares = shares_ppm(stream)
        for ip in stream.ips:
            if ip.warmup_started is None:
                continue
            calendar = _Ip(plan, limits[stream.name], ip.warmup_started, (history or {}).get(_ip_name(ip), {}))
            calendars[ip.id] = calendar
            for offset in range(MAX_DAYS):
                date = ip.warmup_started + dt.timedelta(days=offset)
                where = calendar.on(date)
                if where.daily_cap is None:
                    break
                days.append(
                    CalendarDay(
                        stream.name,
                        ip.pool,
                        _ip_name(ip),
                        where.day,
                        date,
                        where.daily_cap,
                        split_cap(where.daily_cap, shares),
                        where.step,
                        calendar.held(date),
                    )
                )
    return WarmupPlan(
        curve=deployment.warmup.curve,
        source=curve_source(deployment),
        points=curve_points(deployment),
        time_zone=deployment.warmup.time_zone,
        days=tuple(days),
        reach=tuple(_reach(stream, calendars) for stream in streams.values()),
    )
