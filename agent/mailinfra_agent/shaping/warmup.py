"""IP warm-up on the host: today's daily cap of each warming IP per ISP, from the contract's schedule and the store.

The contract carries the curve and each IP's start date, never today's number: the host moves to the next step at
midnight in the warm-up time zone, so nobody re-renders to advance a warm-up. The controller's
``mailinfra warmup plan`` uses the same functions (``curve_cap``, ``split_cap``), so the calendar it prints is the
one the host follows (when no day is held).

Progress: every local day from the start day to yesterday moves the IP one step up the curve, unless the store's
events of that IP on that day show a hard-bounce rate or a complaint rate above its stream's limits (the spec's
``monitoring.rates`` warning lines, 2 % and 0.1 % by default). Such a day holds the step (``on_threshold: hold``) or
moves it one step back (``cut_back``). A day with fewer than ``min_sent`` deliveries is not judged. Rates as the
feedback report defines them: hard bounces / (sent + bounced), complaints / sent.

A daily cap is split across the stream's ISPs by their share of its recipients (the ISP's ``default_share`` or the
stream's ``recipient_mix``), rounded down; ``DEFAULT_ISP`` (every other recipient) gets the rest, so the parts add
up to the cap. The shaping service counts deliveries per IP and ISP since ``Cap.since`` and suspends the transport
when the count reaches ``Cap.cap`` until ``Cap.until`` (the next local midnight).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..contract import DEFAULT_ISP, Contract, SendingIp, Warmup, WarmupStep, WarmupStream
from ..feedback.classify import HARD_CATEGORIES
from ..store import Database

PPM = 1_000_000
BUCKET = 900
"""Seconds of the store query's time buckets: every time zone offset in use is a multiple of 15 minutes."""
EVENTS_TABLE = 'feedback_events'


class WarmupError(Exception):
    """The contract's warm-up section cannot be used (the message says which value and why)."""


@dataclass(frozen=True)
class DayCounts:
    """One IP's deliveries on one local day, as the feedback store counts them."""

    sent: int = 0
    bounced: int = 0
    hard_bounced: int = 0
    complaints: int = 0

    def __add__(self, other: DayCounts) -> DayCounts:
        return DayCounts(
            self.sent + other.sent,
            self.bounced + other.bounced,
            self.hard_bounced + other.hard_bounced,
            self.complaints + other.complaints,
        )

    @property
    def hard_bounce_rate(self) -> float | None:
        total = self.sent + self.bounced
        return self.hard_bounced / total if total else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.sent if self.sent else None


@dataclass(frozen=True)
class Progress:
    """Where one IP stands on the curve today."""

    day: int
    """Calendar day of the warm-up (1 = the start day; below 1: not started yet)."""
    step: int
    """Curve day after held and cut-back days (equals ``day`` when every day was good)."""
    daily_cap: int | None
    """Messages the IP may send today; None: the warm-up is over (no cap)."""
    held: tuple[str, ...] = ()
    """The days that did not advance the step, each with its reason."""


@dataclass(frozen=True)
class Cap:
    """Today's cap of one warming IP towards one ISP (``DEFAULT_ISP``: every recipient no profile matches)."""

    stream: str
    ip: str
    isp: str
    cap: int
    isps: tuple[str, ...]
    """The contract ISPs whose deliveries count towards this cap and whose transports stop when it is reached:
    ``(isp,)``, or for ``DEFAULT_ISP`` also every ISP of the stream without a share of its own."""
    day: int
    step: int
    since: float
    """Unix time today began in the warm-up time zone: deliveries from then on count."""
    until: float
    """Unix time of the next local midnight: the count starts again, at the next step."""
    reason: str


def curve_cap(steps: Sequence[WarmupStep] | Sequence[tuple[int, int]], day: int) -> int | None:
    """The daily cap of curve day ``day``: 0 before day 1, a published point as is, a day between two points
    interpolated geometrically (rounded down), None after the last point (the warm-up is over)."""
    points = [(step.day, step.cap) if isinstance(step, WarmupStep) else step for step in steps]
    if not points:
        return None
    if day < 1:
        return 0
    previous = points[0]
    for point in points:
        if day == point[0]:
            return point[1]
        if day < point[0]:
            span = point[0] - previous[0]
            ratio = (point[1] / previous[1]) ** ((day - previous[0]) / span)
            return int(previous[1] * ratio)
        previous = point
    return None


def split_cap(cap: int, shares: Mapping[str, int]) -> dict[str, int]:
    """``cap`` split by ``shares`` (ISP -> parts per million), rounded down; ``DEFAULT_ISP`` gets the rest.

    An ISP without a share (0) gets no part of its own: its recipients count with ``DEFAULT_ISP``'s.
    """
    parts = {isp: cap * ppm // PPM for isp, ppm in sorted(shares.items()) if isp != DEFAULT_ISP and ppm > 0}
    parts[DEFAULT_ISP] = cap - sum(parts.values())
    return parts


def check_warmup(warmup: Warmup) -> list[str]:
    """Every problem of a warm-up section (empty: usable); paths as the contract loader writes them."""
    problems = []
    try:
        time_zone(warmup)
    except WarmupError as error:
        problems.append(str(error))
    days = [step.day for step in warmup.steps]
    if warmup.steps and days[0] != 1:
        problems.append(f'$.warmup.steps: the curve must start on day 1, not day {days[0]}')
    if any(later <= earlier for earlier, later in itertools.pairwise(days)):
        problems.append(f'$.warmup.steps: days must increase, got {days}')
    if any(step.cap < 1 for step in warmup.steps):
        problems.append('$.warmup.steps: every cap must be at least 1')
    if warmup.min_sent < 0:
        problems.append(f'$.warmup.min_sent: {warmup.min_sent} is negative')
    for index, stream in enumerate(warmup.streams):
        for isp, ppm in sorted(stream.shares.items()):
            if not 0 <= ppm <= PPM:
                problems.append(f'$.warmup.streams[{index}].shares.{isp}: {ppm} is not between 0 and {PPM}')
        if sum(stream.shares.values()) > PPM:
            problems.append(f'$.warmup.streams[{index}].shares: they add up to more than {PPM} (100 %)')
    return problems


def time_zone(warmup: Warmup) -> ZoneInfo:
    try:
        return ZoneInfo(warmup.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise WarmupError(
            f'$.warmup.time_zone: unknown time zone "{warmup.time_zone}" (an IANA name such as "Europe/Berlin")'
        ) from None


def local_date(warmup: Warmup, now: float) -> dt.date:
    """The date at ``now`` in the warm-up time zone."""
    return dt.datetime.fromtimestamp(now, time_zone(warmup)).date()


def midnight(warmup: Warmup, day: dt.date) -> float:
    """Unix time ``day`` begins in the warm-up time zone."""
    return dt.datetime.combine(day, dt.time(), tzinfo=time_zone(warmup)).timestamp()


def day_bounds(warmup: Warmup, now: float) -> tuple[float, float]:
    """Unix times today (in the warm-up time zone) begins and ends."""
    today = local_date(warmup, now)
    return midnight(warmup, today), midnight(warmup, today + dt.timedelta(days=1))


def start_date(value: str, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise WarmupError(f'{where}: "{value}" is not a date (YYYY-MM-DD)') from None


def _over(counts: DayCounts, limits: WarmupStream, min_sent: int) -> str | None:
    """Why a day does not advance the warm-up; None when it does."""
    if counts.sent < max(min_sent, 1):
        return None
    hard, complaints = counts.hard_bounce_rate, counts.complaint_rate
    if hard is not None and hard * PPM > limits.hard_bounce_limit_ppm:
        return f'hard-bounce rate {hard:.2%} > {limits.hard_bounce_limit_ppm / PPM:.2%}'
    if complaints is not None and complaints * PPM > limits.complaint_limit_ppm:
        return f'complaint rate {complaints:.3%} > {limits.complaint_limit_ppm / PPM:.3%}'
    return None


def progress(
    warmup: Warmup,
    limits: WarmupStream,
    started: dt.date,
    today: dt.date,
    history: Mapping[dt.date, DayCounts] | None = None,
) -> Progress:
    """Where an IP that started on ``started`` stands ``today``, given its past days' counts (``history``).

    Once the step passes the curve's last point the warm-up is over: later days are not judged.
    """
    day = (today - started).days + 1
    step = min(day, 1)
    held = []
    last = warmup.steps[-1].day if warmup.steps else 0
    for offset in range(max(day - 1, 0)):
        if step > last:
            break
        date = started + dt.timedelta(days=offset)
        why = _over((history or {}).get(date, DayCounts()), limits, warmup.min_sent)
        if why is None:
            step += 1
        elif warmup.on_threshold == 'cut_back':
            step = max(1, step - 1)
            held.append(f'{date}: {why}, one step back')
        else:
            held.append(f'{date}: {why}, held')
    return Progress(day, step, curve_cap(warmup.steps, step), tuple(held))


def store_history(
    db: Database,
    warmup: Warmup,
    limits: WarmupStream,
    ip: SendingIp,
    started: dt.date,
    today: dt.date,
    memo: dict[tuple[str, dt.date], DayCounts] | None = None,
) -> dict[dt.date, DayCounts]:
    """The store's counts of ``ip``'s past days, as far as its warm-up needs them.

    Read in windows, each as long as the good days the IP still needs to finish, so that the traffic after the
    warm-up (no cap, much more of it) is never read. ``memo`` keeps finished days between calls (``caps``).
    """
    assert ip.address is not None
    memo = {} if memo is None else memo
    history: dict[dt.date, DayCounts] = {}
    last = warmup.steps[-1].day if warmup.steps else 0
    date = started
    while date < today:
        where = progress(warmup, limits, started, date, history)
        if where.step > last:
            break
        if (ip.address, date) not in memo:
            end = min(today, date + dt.timedelta(days=max(1, last - where.step + 1)))
            found = daily_counts(db, warmup, [(ip.address, ip.id)], midnight(warmup, date), midnight(warmup, end))
            days = found.get(ip.address, {})
            for offset in range((end - date).days):
                day = date + dt.timedelta(days=offset)
                memo[(ip.address, day)] = days.get(day, DayCounts())
        history[date] = memo[(ip.address, date)]
        date += dt.timedelta(days=1)
    return history


def _day_sql(dialect: str) -> str:
    if dialect == 'postgresql':
        return f'CAST(floor("time" / {BUCKET}) AS BIGINT)'
    return f'CAST("time" / {BUCKET} AS INTEGER)'


def daily_counts(
    db: Database, warmup: Warmup, ips: Iterable[tuple[str, ...]], since: float, until: float
) -> dict[str, dict[dt.date, DayCounts]]:
    """Counts per IP and local day between ``since`` and ``until``; ``ips`` are the names an IP's events may
    carry (its address, its id), the first one the key of the result."""
    key_of = {name: names[0] for names in ips for name in names}
    if not key_of:
        return {}
    hard = ', '.join(f"'{category}'" for category in sorted(HARD_CATEGORIES))
    marks = ', '.join('?' for _ in key_of)
    rows = db.execute(
        f'SELECT sending_ip, {_day_sql(db.dialect)}, '
        "SUM(CASE WHEN kind = 'delivery' AND status = 'sent' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN kind = 'delivery' AND status = 'bounced' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN kind = 'delivery' AND status = 'bounced' AND category IN ({hard}) THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN kind = 'complaint' THEN 1 ELSE 0 END) "
        f'FROM {EVENTS_TABLE} WHERE "time" >= ? AND "time" < ? AND sending_ip IN ({marks}) '
        "AND (sender IS NULL OR sender <> '') GROUP BY 1, 2",
        [since, until, *sorted(key_of)],
    )
    zone = time_zone(warmup)
    result: dict[str, dict[dt.date, DayCounts]] = {}
    for row in rows:
        date = dt.datetime.fromtimestamp(int(row[1]) * BUCKET, zone).date()
        days = result.setdefault(key_of[str(row[0])], {})
        days[date] = days.get(date, DayCounts()) + DayCounts(*(int(value or 0) for value in row[2:6]))
    return result


def caps(
    contract: Contract,
    db: Database | None,
    now: float,
    memo: dict[tuple[str, dt.date], DayCounts] | None = None,
) -> tuple[Cap, ...]:
    """Today's caps of the contract's warming IPs, per stream, IP and ISP (sorted); ``db`` None: no holds.

    An IP without a start date or past the curve's end gets no cap. Raises ``WarmupError`` on a bad section.
    ``memo``: a dict the caller keeps between calls, so that finished days are read from the store once.
    """
    warmup = contract.warmup
    problems = check_warmup(warmup)
    if problems:
        raise WarmupError('; '.join(problems))
    if not warmup.steps:
        return ()
    today = local_date(warmup, now)
    since, until = day_bounds(warmup, now)
    limits = {stream.stream: stream for stream in warmup.streams}
    stream_isps = {stream.name: {isp.isp for isp in stream.isps} for stream in contract.streams}
    warming = []
    for index, ip in enumerate(contract.ips):
        if ip.warmup_started is None or ip.address is None or ip.stream is None:
            continue
        warming.append((ip, start_date(ip.warmup_started, f'$.ips[{index}].warmup_started')))
    result = []
    for ip, started in warming:
        assert ip.address is not None and ip.stream is not None
        stream = limits.get(ip.stream, WarmupStream(ip.stream))
        history = store_history(db, warmup, stream, ip, started, today, memo) if db is not None else None
        where = progress(warmup, stream, started, today, history)
        if where.daily_cap is None:
            continue
        reason = f'warm-up ({warmup.curve or "custom"} curve) day {where.day}, step {where.step}'
        if where.day < 1:
            reason = f'warm-up starts on {started}'
        elif where.held:
            reason += f' ({len(where.held)} day(s) not advanced, last {where.held[-1]})'
        parts = split_cap(where.daily_cap, stream.shares)
        unshared = sorted(stream_isps.get(ip.stream, set()) - set(parts))
        for isp, cap in sorted(parts.items()):
            isps = (DEFAULT_ISP, *unshared) if isp == DEFAULT_ISP else (isp,)
            result.append(Cap(ip.stream, ip.address, isp, cap, isps, where.day, where.step, since, until, reason))
    return tuple(sorted(result, key=lambda cap: (cap.stream, cap.ip, cap.isp)))
