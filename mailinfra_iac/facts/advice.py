"""Advice with its arithmetic: which MTA fits the volume, dedicated or shared infrastructure, what dedicated
infrastructure earns against what it costs, and how many IPs a stream needs.

Every figure carries the rule it follows (``reason``, with the arithmetic) and the inputs it came from, each with
its source: a flag, a spec path, the ISP catalogue, or a rule of this module. ``explain`` shows the MTA advice;
``mailinfra advise`` shows all of it (docs/advisor.md).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..catalogue.isps import DEFAULT_LIMITS, builtin_isps
from ..model import Deployment
from .capacity import WARMUP_ACTIVE_HOURS, WARMUP_DAILY, warmup_daily_cap
from .isps import DEFAULTS, EffectiveIsp, Limits, other_share

MONTH_DAYS = 30
"""Days per month when a monthly volume becomes a daily one."""
POWERMTA_THRESHOLD_PER_DAY = 1_000_000
"""Above about 1M mails a day PowerMTA's per-domain throttling and accounting pay for its licence."""
DEDICATED_PER_MONTH = 500_000
"""The conventional threshold: from 500,000 mails a month dedicated IPs carry a reputation of their own."""
ENGAGED_SHARED_PER_MONTH = 1_000_000
"""An engaged marketing list (few complaints and bounces) can stay on shared infrastructure up to about 1M a month."""
TRANSACTIONAL_DEDICATED_PER_MONTH = WARMUP_DAILY[0][1] * MONTH_DAYS
"""Transactional mail justifies dedicated IPs far below the conventional threshold; the floor is the warm-up
curve's first daily step (50/day): less mail a day gives the ISPs too little to judge an IP of its own by."""
SEED_COST_DIFFERENCE = (Decimal(300), Decimal(600))
"""The seed's estimate of what dedicated infrastructure costs more than shared, per month (IPs, a host, its care)."""
WARMED_PER_IP_PER_DAY = WARMUP_DAILY[-1][1]
"""The last step of the default warm-up curve: the daily volume an IP has a reputation for once warmed."""
RULE = 'rule, docs/advisor.md'
"""The source of a threshold of this module."""
DERIVED = 'figure above'
"""The source of an input that is an earlier figure of the same section."""
DASH, TIMES = '\u2013', '\u00d7'
"""A range's en dash (``€300\u2013600``) and the multiplication sign of the arithmetic shown."""


@dataclass(frozen=True)
class MtaAdvice:
    chosen: str
    recommended: str
    daily_volume: int
    reasons: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return self.chosen == self.recommended


def recommend_mta(daily: int, transactional: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The MTA for ``daily`` mails a day, and why; ``transactional`` names the transactional streams."""
    reasons = []
    if daily > POWERMTA_THRESHOLD_PER_DAY:
        recommended = 'powermta'
        reasons.append(
            f"about {daily:,} mails/day is above {POWERMTA_THRESHOLD_PER_DAY:,}/day: PowerMTA's per-domain "
            'throttling, back-off patterns and accounting files pay for the licence at this volume'
        )
    else:
        recommended = 'postfix'
        reasons.append(
            f'about {daily:,} mails/day is below {POWERMTA_THRESHOLD_PER_DAY:,}/day: Postfix with one instance '
            'per stream and per-ISP transports handles it without a licence'
        )
    if transactional:
        reasons.append(
            f'stream(s) {", ".join(sorted(transactional))} are transactional: dedicated IPs are worth it even at low '
            'volume, so password resets and receipts never share reputation with bulk mail'
        )
    return recommended, reasons


def daily_volume(monthly: int) -> int:
    return round(monthly / MONTH_DAYS)


def advise_mta(deployment: Deployment, kinds: dict[str, str]) -> MtaAdvice:
    monthly = sum(stream.volume.monthly for stream in deployment.streams.values())
    daily = daily_volume(monthly)
    recommended, reasons = recommend_mta(daily, [name for name, kind in kinds.items() if kind == 'transactional'])
    chosen = recommended if deployment.mta == 'auto' else deployment.mta
    if deployment.mta != 'auto' and chosen != recommended:
        reasons.append(f'the spec asks for {chosen}; {recommended} would fit the volume')
    return MtaAdvice(chosen, recommended, daily, tuple(reasons))


# --- figures with their reasons and inputs ---------------------------------------------------------------------


def _number(value: Decimal) -> int | float:
    """A JSON number: an int when whole."""
    return int(value) if value == value.to_integral_value() else float(value)


def money(value: Decimal, currency: str) -> str:
    """``€19,000``, ``€0.10``, ``-€1,250.50``: cents when there are some or the value is below 1."""
    sign = '-' if value < 0 else ''
    value = abs(value)
    if value == value.to_integral_value() and value >= 1:
        return f'{sign}{currency}{value:,.0f}'
    exponent = value.as_tuple().exponent
    places = 2 if not isinstance(exponent, int) or exponent >= -2 else -exponent
    return f'{sign}{currency}{value:,.{places}f}'


def amount(value: Decimal) -> str:
    """``190,000``; ``1,234.5`` when not whole."""
    return f'{value:,.0f}' if value == value.to_integral_value() else f'{value.normalize():,f}'


def percent(share: Decimal) -> str:
    """``0.78`` -> ``78%``; ``0.975`` -> ``97.5%``."""
    shown = (share * 100).normalize()
    return f'{shown:f}%'


@dataclass(frozen=True)
class Input:
    """A value a figure was computed from, and where it came from."""

    name: str
    value: Any
    """JSON value (number, string, or ``{"low", "high"}``)."""
    shown: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {'name': self.name, 'value': self.value, 'shown': self.shown, 'source': self.source}


@dataclass(frozen=True)
class Figure:
    """One number (or choice) of the advice, its rule and arithmetic, and its inputs."""

    name: str
    value: Any
    shown: str
    reason: str
    inputs: tuple[Input, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            'name': self.name,
            'value': self.value,
            'shown': self.shown,
            'reason': self.reason,
            'inputs': [item.as_dict() for item in self.inputs],
        }


@dataclass(frozen=True)
class Section:
    """One question answered: ``topic`` (economics, infrastructure, mta, ips), for ``subject`` (a stream or None)."""

    topic: str
    subject: str | None
    verdict: str
    figures: tuple[Figure, ...] = field(default=())

    def figure(self, name: str) -> Figure:
        for item in self.figures:
            if item.name == name:
                return item
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            'topic': self.topic,
            'subject': self.subject,
            'verdict': self.verdict,
            'figures': [item.as_dict() for item in self.figures],
        }


def derived(figure: Figure) -> Input:
    """A figure of the same section as the input of a later one."""
    return Input(figure.name, figure.value, figure.shown, DERIVED)


def volume_input(monthly: int, source: str) -> Input:
    return Input('monthly_volume', monthly, f'{monthly:,} mails/month', source)


# --- economics ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    """Monthly costs of shared and dedicated infrastructure (``economics`` without them: the seed's estimate)."""

    shared: Decimal
    dedicated: Decimal
    source_shared: str = '--cost-shared'
    source_dedicated: str = '--cost-dedicated'


def economics(
    monthly: Input,
    revenue_per_inbox: Decimal,
    placement_shared: Decimal,
    placement_dedicated: Decimal,
    costs: Costs | None = None,
    currency: str = '€',
) -> Section:
    """The added revenue of dedicated infrastructure's inbox placement against what it costs more, per month.

    Added revenue = monthly volume x (dedicated placement - shared placement) x revenue per inbox-delivered mail.
    """
    volume = Decimal(monthly.value)
    revenue = Input(
        'revenue_per_inbox', _number(revenue_per_inbox), money(revenue_per_inbox, currency), '--revenue-per-inbox'
    )
    shared = Input('placement_shared', _number(placement_shared), percent(placement_shared), '--placement-shared')
    dedicated = Input(
        'placement_dedicated', _number(placement_dedicated), percent(placement_dedicated), '--placement-dedicated'
    )
    gain = placement_dedicated - placement_shared
    extra = volume * gain
    added = extra * revenue_per_inbox
    figures = [
        Figure(
            'extra_inbox_mails',
            _number(extra),
            f'{amount(extra)} mails/month',
            f'{monthly.shown} {TIMES} ({dedicated.shown} - {shared.shown}) = {amount(extra)} more mails/month in '
            'the inbox rather than the spam folder',
            (monthly, shared, dedicated),
        ),
        Figure(
            'added_revenue',
            _number(added),
            f'{money(added, currency)}/month',
            f'{monthly.shown} {TIMES} ({dedicated.shown} - {shared.shown}) {TIMES} {revenue.shown} per '
            f'inbox-delivered mail = {money(added, currency)}/month',
            (monthly, shared, dedicated, revenue),
        ),
    ]
    if costs is None:
        low, high = SEED_COST_DIFFERENCE
        cost_inputs: tuple[Input, ...] = (
            Input(
                'cost_difference',
                {'low': _number(low), 'high': _number(high)},
                f'{_range(low, high, currency)}/month',
                "the seed's estimate; --cost-shared/--cost-dedicated not given",
            ),
        )
        cost_reason = (
            f'{cost_inputs[0].shown}: what dedicated IPs, their host and their care cost more than shared '
            'infrastructure, as the seed estimates it; give --cost-shared and --cost-dedicated for your own'
        )
    else:
        low = high = costs.dedicated - costs.shared
        cost_inputs = (
            Input('cost_shared', _number(costs.shared), f'{money(costs.shared, currency)}/month', costs.source_shared),
            Input(
                'cost_dedicated',
                _number(costs.dedicated),
                f'{money(costs.dedicated, currency)}/month',
                costs.source_dedicated,
            ),
        )
        cost_reason = f'{cost_inputs[1].shown} - {cost_inputs[0].shown} = {money(low, currency)}/month'
    cost_shown = _range(low, high, currency)
    figures.append(
        Figure(
            'cost_difference',
            {'low': _number(low), 'high': _number(high)} if low != high else _number(low),
            f'{cost_shown}/month',
            cost_reason,
            cost_inputs,
        )
    )
    net_low, net_high = added - high, added - low
    figures.append(
        Figure(
            'net_gain',
            {'low': _number(net_low), 'high': _number(net_high)} if low != high else _number(net_low),
            f'{_range(net_low, net_high, currency)}/month',
            f'{money(added, currency)} - {cost_shown} = {_range(net_low, net_high, currency)} per month',
            (derived(figures[1]), derived(figures[2])),
        )
    )
    per_mail = gain * revenue_per_inbox
    if per_mail > 0:
        be_low, be_high = (max(0, math.ceil(cost / per_mail)) for cost in (low, high))
        shown = f'{be_low:,}' if be_low == be_high else f'{be_low:,}{DASH}{be_high:,}'
        figures.append(
            Figure(
                'break_even_volume',
                be_low if be_low == be_high else {'low': be_low, 'high': be_high},
                f'{shown} mails/month',
                f'{cost_shown} / (({dedicated.shown} - {shared.shown}) {TIMES} {revenue.shown}) = {shown} mails/month: '
                'from this volume the added revenue covers the cost difference',
                (derived(figures[2]), shared, dedicated, revenue),
            )
        )
    if net_low > 0:
        verdict = (
            f'dedicated infrastructure pays: {money(added, currency)}/month added revenue against a '
            f'{cost_shown}/month cost difference'
        )
    elif net_high > 0:
        verdict = (
            f'dedicated infrastructure may pay: {money(added, currency)}/month added revenue against a '
            f'{cost_shown}/month cost difference; it depends on where in that range your costs fall'
        )
    else:
        verdict = (
            f'dedicated infrastructure does not pay on placement alone: {money(added, currency)}/month added '
            f'revenue against a {cost_shown}/month cost difference'
        )
    return Section('economics', None, verdict, tuple(figures))


def _range(low: Decimal, high: Decimal, currency: str) -> str:
    if low == high:
        return money(low, currency)
    high_shown = money(high, currency)
    return f'{money(low, currency)}{DASH}{high_shown[len(currency) :] if high >= 0 and low >= 0 else high_shown}'


# --- dedicated or shared -----------------------------------------------------------------------------------------


def infrastructure(subject: str | None, monthly: Input, use_case: Input) -> Section:
    """Dedicated or shared infrastructure for a monthly volume, by use case (``use_case.value``)."""
    kind = use_case.value
    volume = int(monthly.value)
    if kind == 'transactional':
        threshold = TRANSACTIONAL_DEDICATED_PER_MONTH
        rule = (
            'transactional mail (password resets, receipts) justifies dedicated infrastructure far below the '
            f'conventional {DEDICATED_PER_MONTH:,}/month, so it never shares reputation with bulk mail; the floor is '
            f"the warm-up curve's first step, {WARMUP_DAILY[0][1]}/day {TIMES} {MONTH_DAYS} days: less gives the "
            'ISPs too little to judge an IP of its own by'
        )
    elif kind == 'engaged_marketing':
        threshold = ENGAGED_SHARED_PER_MONTH
        rule = (
            f'an engaged marketing list (few complaints and bounces) can stay on shared infrastructure up to '
            f'{ENGAGED_SHARED_PER_MONTH:,}/month or more; the economics decide beyond it'
        )
    else:
        threshold = DEDICATED_PER_MONTH
        rule = (
            f'the conventional threshold: from {DEDICATED_PER_MONTH:,}/month a sender has the volume for IPs with a '
            'reputation of their own'
        )
        if kind == 'marketing':
            rule += (
                f'; an engaged list can stay on shared infrastructure up to {ENGAGED_SHARED_PER_MONTH:,}/month '
                '(--engaged)'
            )
    limit = Input('threshold', threshold, f'{threshold:,} mails/month', RULE)
    # the conventional and the transactional thresholds are where dedicated begins, the engaged one where shared ends
    engaged = kind == 'engaged_marketing'
    dedicated = volume > threshold if engaged else volume >= threshold
    choice = 'dedicated' if dedicated else 'shared'
    compare = ('>' if engaged else '≥') if dedicated else ('≤' if engaged else '<')
    figure = Figure(
        'infrastructure',
        choice,
        choice,
        f'{monthly.shown} {compare} {limit.shown} for {use_case.shown}: {rule}',
        (monthly, use_case, limit),
    )
    return Section('infrastructure', subject, f'{choice} infrastructure', (figure,))


# --- MTA ---------------------------------------------------------------------------------------------------------


def mta_section(monthly: Input, transactional: Sequence[str] = (), advice: MtaAdvice | None = None) -> Section:
    """The MTA for a monthly volume (all streams together); ``advice``: the spec's (``facts.mta``)."""
    daily = daily_volume(int(monthly.value))
    day = Figure(
        'daily_volume',
        daily,
        f'{daily:,} mails/day',
        f'{monthly.shown} / {MONTH_DAYS} days = {daily:,} mails/day',
        (monthly,),
    )
    if advice is None:
        recommended, reasons = recommend_mta(daily, transactional)
        verdict = recommended
    else:
        recommended, reasons = advice.recommended, list(advice.reasons)
        verdict = recommended if advice.agrees else f'{recommended} (the spec asks for {advice.chosen})'
    limit = Input('threshold', POWERMTA_THRESHOLD_PER_DAY, f'{POWERMTA_THRESHOLD_PER_DAY:,} mails/day', RULE)
    choice = Figure(
        'mta',
        recommended,
        recommended,
        '; '.join(reasons),
        (derived(day), limit),
    )
    return Section('mta', None, verdict, (day, choice))


# --- IPs per stream ----------------------------------------------------------------------------------------------


def catalogue_isps() -> dict[str, EffectiveIsp]:
    """The catalogue's providers with their default shares and limits, for advice without a spec."""
    return {
        name: EffectiveIsp(
            name=name,
            display_name=profile.display_name,
            recipient_domains=tuple(profile.recipient_domains),
            mx_patterns=tuple(profile.mx_patterns),
            limits=Limits.resolve(profile.limits.over(DEFAULT_LIMITS)),
            backoff_rules=tuple(profile.backoff_rules),
            share=profile.default_share,
        )
        for name, profile in builtin_isps().items()
    }


@dataclass(frozen=True)
class Curve:
    """A warm-up curve (``facts/capacity.py``): (day, messages per IP that day) points, and where they come from."""

    points: tuple[tuple[int, int], ...] = WARMUP_DAILY
    source: str = "KumoMTA's conservative curve (facts/capacity.py)"

    @property
    def last(self) -> tuple[int, int]:
        return self.points[-1]

    @classmethod
    def of_spec(cls, name: str, points: tuple[tuple[int, int], ...]) -> Curve:
        """The spec's ``warmup.curve`` with its points (``facts.warmup.curve_points``)."""
        return cls(points, cls.source if name == 'conservative' else f'the {name} curve (spec: warmup.steps)')


def ip_count(
    subject: str | None,
    monthly: Input,
    peak: Input,
    isps: dict[str, EffectiveIsp],
    share_source: str,
    limit_source: str,
    pool_size: int | None = None,
    warmup: tuple[Input, int] | None = None,
    curve: Curve = Curve(),
    reach: dt.date | None = None,
) -> Section:
    """IPs a stream needs: for its peak hour under each ISP's per-IP limit, and for its daily volume once warmed.

    ``share_source``/``limit_source`` say where the shares and limits came from; ``pool_size``: the IPs it has;
    ``warmup``: the day (as an input) and what the pool's warming IPs carry per hour that day (``facts.capacity``);
    ``curve``: the warm-up curve (the spec's ``warmup``; KumoMTA's conservative one by default); ``reach``: the day
    the pool's warming IPs, from their own start days, first carry the daily volume (``facts.warmup``).
    """
    peak_hourly = int(peak.value)
    daily = daily_volume(int(monthly.value))
    rows: list[tuple[str, float, Limits]] = [(name, isp.share, isp.limits) for name, isp in isps.items()]
    rows.append(('other', other_share(isps), DEFAULTS))
    figures = []
    binding: tuple[str, int, float] = ('', 0, 0.0)
    for name, share, limits in rows:
        per_ip = limits.messages_per_hour
        if share <= 0 or per_ip < 1:
            continue
        needed = round(peak_hourly * share)
        count = -(-needed // per_ip)
        inputs = (
            peak,
            Input(f'share.{name}', share, f'{share:.0%}', share_source if name != 'other' else 'the rest'),
            Input(
                f'messages_per_hour.{name}',
                per_ip,
                f'{per_ip:,}/hour per IP',
                limit_source if name != 'other' else 'catalogue default limits',
            ),
        )
        figures.append(
            Figure(
                f'ips_for_peak.{name}',
                count,
                f'{count} IP(s)',
                f'{peak.shown} {TIMES} {share:.0%} to {name} = {needed:,}/hour; / {per_ip:,}/hour per IP '
                f'= {count} IP(s)',
                inputs,
            )
        )
        if (count, needed / per_ip) > binding[1:]:
            binding = (name, count, needed / per_ip)
    for_peak = binding[1]
    figures.append(
        Figure(
            'ips_for_peak',
            for_peak,
            f'{for_peak} IP(s)',
            f"the most any ISP needs in the peak hour ({binding[0]}: {binding[2]:.2f} IPs' worth)"
            if binding[0]
            else 'no ISP gets mail in the peak hour',
            tuple(derived(figure) for figure in figures),
        )
    )
    last_day, per_day = curve.last
    warmed = Input(
        'warmed_per_ip_per_day',
        per_day,
        f'{per_day:,}/day per IP',
        f'the last step of the warm-up curve, day {last_day}: {curve.source}',
    )
    for_daily = -(-daily // per_day)
    figures.append(
        Figure(
            'ips_for_daily_volume',
            for_daily,
            f'{for_daily} IP(s)',
            f'{monthly.shown} / {MONTH_DAYS} = {daily:,}/day; / {warmed.shown} = {for_daily} IP(s): a warmed IP has a '
            'reputation for about that much a day, not more',
            (monthly, warmed),
        )
    )
    count = max(1, for_peak, for_daily)
    figures.append(
        Figure(
            'ip_count',
            count,
            f'{count} IP(s)',
            f'max(1, {for_peak} for the peak hour, {for_daily} for the daily volume) = {count}',
            (derived(figures[-2]), derived(figures[-1])),
        )
    )
    days = warmup_days(count, daily, peak_hourly, curve.points)
    figures.append(
        Figure(
            'full_volume_day',
            days,
            f'day {days}',
            f'{count} new IP(s) on the warm-up curve ({WARMUP_ACTIVE_HOURS} sending hours a day) first carry '
            f'{daily:,}/day and {peak_hourly:,} in an hour on warm-up day {days}',
            (monthly, peak, warmed),
        )
    )
    verdict = f'{count} IP(s), full volume on warm-up day {days}'
    if pool_size is not None:
        pool = Input('pool_ips', pool_size, f'{pool_size} IP(s)', "spec: the stream's pool")
        short = count - pool_size
        state = 'enough' if short <= 0 else f'{short} short'
        figures.append(
            Figure(
                'pool_ips',
                pool_size,
                f'{pool_size} IP(s)',
                f'the pool has {pool_size} IP(s), {count} needed: {state}',
                (pool,),
            )
        )
        verdict += f'; the pool has {pool_size} ({state})'
    if warmup is not None:
        day, per_hour = warmup
        state = 'enough' if per_hour >= peak_hourly else f'{peak_hourly - per_hour:,}/hour short'
        figures.append(
            Figure(
                'warmup_capacity',
                per_hour,
                f'{per_hour:,} mails/hour',
                f"on {day.shown} the pool's IPs together carry about {per_hour:,}/hour under their warm-up caps "
                f'(daily cap / {WARMUP_ACTIVE_HOURS} hours each, facts/capacity.py), the peak is {peak.shown}: {state}',
                (day, peak),
            )
        )
        verdict += f'; warm-up on {day.shown}: {state}'
    if reach is not None:
        figures.append(
            Figure(
                'pool_full_volume_date',
                reach.isoformat(),
                reach.isoformat(),
                f"the pool's IPs, each from its warmup_started day on {curve.source}, together first carry "
                f'{daily:,}/day on {reach.isoformat()} (facts/warmup.py, as `mailinfra warmup plan` prints it)',
                (monthly,),
            )
        )
        verdict += f'; the pool reaches the daily volume on {reach.isoformat()}'
    return Section('ips', subject, verdict, tuple(figures))


def warmup_days(count: int, daily: int, peak_hourly: int, points: tuple[tuple[int, int], ...] = WARMUP_DAILY) -> int:
    """The first warm-up day on which ``count`` new IPs together carry ``daily`` a day and ``peak_hourly`` an hour
    (the day after the curve's last step at the latest: then nothing is capped)."""
    start = dt.date(2000, 1, 1)
    day = 1
    while True:
        cap = warmup_daily_cap(start, start + dt.timedelta(days=day - 1), points)
        if cap is None or (count * cap >= daily and count * (cap // WARMUP_ACTIVE_HOURS) >= peak_hourly):
            return day  # None: the curve has ended (after day ``last``), nothing is capped any more
        day += 1
