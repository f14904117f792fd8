"""The delivery plan: what every MTA must do, per stream x sending IP x ISP, in no MTA's terms.

Built once with the facts (``Facts.plan``) from the stream facts. For each stream it holds:

- per ISP, and per ``DEFAULT_ISP`` for the recipients that no profile matches: the limits per sending IP with
  every field resolved (catalogue -> deployment ``isp_profiles`` -> stream ``isp_overrides``), the retry schedule
  of ordinary temporary failures towards that ISP, and the back-off rules (replies that mean "slow down");
- per bounce category: the stream's retry schedule, expiry and suppression (``CategoryFact``);
- the stream's queue timing (``RetryFact``) and its reply rules (reclassify a reply, first match wins).

Limits apply per sending IP and are the same for every IP of a stream, so the plan keeps them per (stream, ISP);
``entries`` spells them out per stream x IP x ISP. Renderers (Postfix, PowerMTA, the agent contract) translate the
plan into their MTA's terms and say what their MTA cannot express; they neither resolve nor re-check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from ..catalogue import bounces
from ..catalogue.isps import any_isp_rules
from ..model import BackoffRule, ReplyRule
from .isps import DEFAULTS, EffectiveIsp, Limits
from .streams import CategoryFact, RetryFact, StreamFact

DEFAULT_ISP = '*'
"""The ISP name of the recipients that no profile matches (not a valid profile name, so it never collides)."""

ORDINARY = 'other'
"""The bounce category of ordinary temporary failures: an MTA with one retry list per queue retries on its schedule."""


@dataclass(frozen=True)
class Backoff:
    """A reply that slows delivery from one sending IP down (``backoff``), stops it towards one ISP (``suspend``) or
    towards every ISP (``suspend_ip``), once ``trigger_count`` replies matched within ``trigger_window``."""

    pattern: str
    """Python regular expression, matched against ``"<code> <enhanced code> <text>"``."""
    action: Literal['backoff', 'suspend', 'suspend_ip']
    duration: int
    """Seconds the reaction lasts (a reply rule's: the ISP's ``backoff_to_normal_after``)."""
    description: str
    origin: Literal['isp', 'reply-rule']
    """``isp``: one of the provider's ``backoff_rules``; ``reply-rule``: a stream reply rule deferring a reputation
    category."""
    category: str | None = None
    """The reply rule's bounce category (``None`` for a provider's rule)."""
    trigger_count: int = 1
    """Matches per stream x sending IP x ISP that start the action."""
    trigger_window: int = 0
    """Seconds the matches must fall within; 0: the first match acts."""
    failover: bool = False
    """``suspend`` only: the pool's other IPs take the ISP's mail meanwhile; False: the mail waits."""

    @property
    def first_match(self) -> bool:
        """The rule acts on its first match (no threshold)."""
        return self.trigger_count == 1


@dataclass(frozen=True)
class IspPlan:
    """How one stream delivers to one ISP (or to ``DEFAULT_ISP``), per sending IP."""

    stream: str
    isp: str
    display_name: str
    recipient_domains: tuple[str, ...]
    """Empty for ``DEFAULT_ISP`` and for providers known only by their MX host names."""
    mx_patterns: tuple[str, ...]
    limits: Limits
    retry_after: tuple[int, ...]
    """Retry intervals (seconds) of ordinary temporary failures towards this ISP; the last one repeats."""
    backoff: tuple[Backoff, ...]
    """The provider's rules first, then the stream's reputation deferrals (first match wins)."""


@dataclass(frozen=True)
class StreamPlan:
    """The plan of one stream: its queue timing, its bounce categories and one ``IspPlan`` per ISP."""

    name: str
    kind: str
    ips: tuple[str, ...]
    """IP ids of the stream's pool (every host), in the IP plan's order."""
    retry: RetryFact
    categories: dict[str, CategoryFact]
    """Per bounce category: retried or not, retry schedule, expiry, suppression."""
    reply_rules: tuple[ReplyRule, ...]
    default: IspPlan
    """Recipients that no profile matches (``DEFAULT_ISP``)."""
    isps: dict[str, IspPlan]
    """Every provider of the stream, by name (sorted); ``DEFAULT_ISP`` is not among them."""

    def isp(self, name: str) -> IspPlan:
        """The plan towards ``name``; ``default`` for ``DEFAULT_ISP`` and for a provider the stream does not know."""
        return self.isps.get(name, self.default)

    def retry_schedule(self, category: str) -> tuple[int, ...]:
        """The stream's retry intervals for a bounce category (empty when it is not retried)."""
        return self.categories[category].retry_after


@dataclass(frozen=True)
class PlanEntry:
    """One stream x sending IP x ISP, everything resolved."""

    stream: str
    ip: str
    """The IP's id (``IpFact.id``)."""
    isp: str
    """A profile name, or ``DEFAULT_ISP``."""
    limits: Limits
    retry_after: tuple[int, ...]
    backoff: tuple[Backoff, ...]


@dataclass(frozen=True)
class DeliveryPlan:
    """The plan of every stream (spec order)."""

    streams: dict[str, StreamPlan]

    def for_stream(self, name: str) -> StreamPlan:
        try:
            return self.streams[name]
        except KeyError:
            raise KeyError(f'no stream "{name}" in the delivery plan') from None

    def limits(self, stream: str, isp: str) -> Limits:
        return self.for_stream(stream).isp(isp).limits

    def retry_after(self, stream: str, isp: str) -> tuple[int, ...]:
        return self.for_stream(stream).isp(isp).retry_after

    def retry_schedule(self, stream: str, category: str) -> tuple[int, ...]:
        return self.for_stream(stream).retry_schedule(category)

    def backoff_rules(self, stream: str, isp: str) -> tuple[Backoff, ...]:
        return self.for_stream(stream).isp(isp).backoff

    @cached_property
    def entries(self) -> tuple[PlanEntry, ...]:
        """Every stream x IP x ISP (``DEFAULT_ISP`` included), sorted by (stream, IP id, ISP); built on first use."""
        return tuple(sorted((entry for entries in self._by_ip.values() for entry in entries), key=_entry_key))

    def entries_of_ip(self, ip: str) -> tuple[PlanEntry, ...]:
        """The entries of one sending IP, sorted by (stream, ISP); empty for an IP of no stream."""
        return self._by_ip.get(ip, ())

    @cached_property
    def _by_ip(self) -> dict[str, tuple[PlanEntry, ...]]:
        by_ip: dict[str, list[PlanEntry]] = {}
        for stream in self.streams.values():
            plans = sorted([stream.default, *stream.isps.values()], key=lambda plan: plan.isp)
            for ip in stream.ips:
                by_ip.setdefault(ip, []).extend(
                    PlanEntry(stream.name, ip, plan.isp, plan.limits, plan.retry_after, plan.backoff) for plan in plans
                )
        return {ip: tuple(sorted(entries, key=_entry_key)) for ip, entries in by_ip.items()}


def _entry_key(entry: PlanEntry) -> tuple[str, str, str]:
    return entry.stream, entry.ip, entry.isp


def queue_schedule(ordinary: Sequence[int], retry: RetryFact, provider_first: int) -> tuple[int, ...]:
    """Retry intervals of ordinary temporary failures towards one provider; the last one repeats.

    The stream's schedule of category "other" (``[min_backoff, max_backoff]`` when that category is not retried),
    where the provider's ``retry_after`` is the earliest first retry, and the stream's ``min_backoff`` a floor and
    ``max_backoff`` a ceiling of the later intervals (never shortening the provider's first one). Intervals that
    would not grow are dropped.
    """
    intervals = list(ordinary) or [retry.min_backoff, retry.max_backoff]
    first = max(intervals[0], provider_first, retry.min_backoff)
    ceiling = max(retry.max_backoff, first)
    schedule = [first]
    for interval in intervals[1:]:
        value = min(interval, ceiling)
        if value > schedule[-1]:
            schedule.append(value)
    return tuple(schedule)


class _Backoffs:
    """The back-off rules of one delivery plan, each made once: the same provider rule (and the same reply rule with
    the same duration) recurs in every stream x ISP plan; equal frozen values, shared instead of copied."""

    def __init__(self) -> None:
        self._own: dict[int, tuple[BackoffRule, Backoff]] = {}
        self._slow: dict[tuple[int, int], tuple[ReplyRule, Backoff]] = {}

    def own(self, rule: BackoffRule) -> Backoff:
        found = self._own.get(id(rule))
        if found is None:
            found = self._own[id(rule)] = (rule, _own(rule))  # the rule kept alive: its id names no other
        return found[1]

    def slow_down(self, rule: ReplyRule, duration: int) -> Backoff:
        key = (id(rule), duration)
        found = self._slow.get(key)
        if found is None:
            backoff = Backoff(rule.pattern, 'backoff', duration, rule.description, 'reply-rule', rule.category)
            found = self._slow[key] = (rule, backoff)
        return found[1]


def _slow_down(stream: StreamFact, limits: Limits, made: _Backoffs) -> list[Backoff]:
    """The stream's reply rules that mean "slow down": deferrals of the reputation categories."""
    return [
        made.slow_down(rule, limits.backoff_to_normal_after)
        for rule in stream.reply_rules
        if rule.action == 'defer' and rule.category in bounces.REPUTATION
    ]


def _own(rule: BackoffRule) -> Backoff:
    """A provider's rule, its trigger and failover resolved (no window: the first match acts)."""
    return Backoff(
        rule.pattern,
        rule.action,
        rule.duration,
        rule.description,
        'isp',
        trigger_count=rule.trigger.count,
        trigger_window=rule.trigger.window or 0,
        failover=rule.fails_over,
    )


def _isp_plan(stream: StreamFact, name: str, isp: EffectiveIsp | None, made: _Backoffs) -> IspPlan:
    limits = isp.limits if isp is not None else DEFAULTS
    own = [made.own(rule) for rule in (*(isp.backoff_rules if isp is not None else ()), *any_isp_rules().backoff_rules)]
    seen = {rule.pattern for rule in own}
    return IspPlan(
        stream=stream.name,
        isp=name,
        display_name=isp.display_name if isp is not None else 'other recipients',
        recipient_domains=isp.recipient_domains if isp is not None else (),
        mx_patterns=isp.mx_patterns if isp is not None else (),
        limits=limits,
        retry_after=queue_schedule(stream.categories[ORDINARY].retry_after, stream.retry, limits.retry_after),
        backoff=(*own, *(rule for rule in _slow_down(stream, limits, made) if rule.pattern not in seen)),
    )


def stream_plan(stream: StreamFact, made: _Backoffs | None = None) -> StreamPlan:
    made = made if made is not None else _Backoffs()
    return StreamPlan(
        name=stream.name,
        kind=stream.kind,
        ips=tuple(ip.id for ip in stream.ips),
        retry=stream.retry,
        categories=stream.categories,
        reply_rules=stream.reply_rules,
        default=_isp_plan(stream, DEFAULT_ISP, None, made),
        isps={name: _isp_plan(stream, name, isp, made) for name, isp in sorted(stream.isps.items())},
    )


def delivery_plan(streams: dict[str, StreamFact]) -> DeliveryPlan:
    """The plan of every stream, from the stream facts."""
    made = _Backoffs()
    return DeliveryPlan({name: stream_plan(stream, made) for name, stream in streams.items()})


__all__ = [
    'DEFAULTS',
    'DEFAULT_ISP',
    'ORDINARY',
    'Backoff',
    'CategoryFact',
    'DeliveryPlan',
    'IspPlan',
    'Limits',
    'PlanEntry',
    'RetryFact',
    'StreamPlan',
    'delivery_plan',
    'queue_schedule',
]
