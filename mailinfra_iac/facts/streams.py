"""Per-stream facts: kind, IPs, hosts, retries per bounce category and reply rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..catalogue import bounces, streams
from ..model import STREAM_KINDS, CategoryPolicy, Deployment, Injection, ReplyRule, RetrySchedule, Volume
from ..model.bounce import BOUNCE_CATEGORIES
from .ips import IpFact
from .isps import EffectiveIsp, deployment_isps, stream_isps


@dataclass(frozen=True)
class CategoryFact:
    """How one bounce category is handled in one stream."""

    name: str
    retry: bool
    retry_after: tuple[int, ...]
    expire_after: int
    suppress_after: int | Literal['never']


@dataclass(frozen=True)
class RetryFact:
    """Resolved queue timing of a stream (seconds)."""

    min_backoff: int
    max_backoff: int
    queue_lifetime: int


@dataclass(frozen=True)
class StreamFact:
    """Everything the renderers need to know about one stream."""

    name: str
    kind: str
    use_case: str
    volume: Volume
    pool: str | None
    domains: tuple[str, ...]
    injection: Injection
    retry: RetryFact
    ips: tuple[IpFact, ...]
    hosts: tuple[str, ...]
    isps: dict[str, EffectiveIsp]
    categories: dict[str, CategoryFact]
    reply_rules: tuple[ReplyRule, ...]


def stream_kind(name: str, declared: str | None) -> str:
    if declared is not None:
        return declared
    return name if name in STREAM_KINDS else 'custom'


def _retry(kind: str, *layers: RetrySchedule) -> RetryFact:
    merged = streams.RETRY[kind].model_dump()
    for layer in layers:
        merged.update({key: value for key, value in layer.model_dump().items() if value is not None})
    return RetryFact(**merged)


def _category(name: str, kind: str, retry: RetryFact, layers: list[CategoryPolicy]) -> CategoryFact:
    schedule = streams.REPUTATION_SCHEDULE[kind] if name in bounces.REPUTATION else streams.SCHEDULE[kind]
    suppress = bounces.SUPPRESS_AFTER.get(name, 'never')
    values: dict[str, object] = {
        'retry': name not in bounces.PERMANENT,
        'retry_after': tuple(schedule),
        'expire_after': retry.queue_lifetime,
        'suppress_after': suppress,
    }
    for layer in layers:
        for key, value in layer.model_dump().items():
            if value is not None:
                values[key] = tuple(value) if key == 'retry_after' else value
    if not values['retry']:
        values['retry_after'] = ()
    return CategoryFact(name=name, **values)  # type: ignore[arg-type]


def stream_facts(deployment: Deployment, ips: list[IpFact]) -> dict[str, StreamFact]:
    base_isps = deployment_isps(deployment)
    by_pool: dict[str, list[IpFact]] = {}
    for ip in ips:
        by_pool.setdefault(ip.pool, []).append(ip)
    result = {}
    for name, stream in deployment.streams.items():
        kind = stream_kind(name, stream.kind)
        retry = _retry(kind, stream.retry)
        pool_ips = tuple(by_pool.get(stream.pool, ())) if stream.pool is not None else ()
        hosts = tuple(sorted({ip.host for ip in pool_ips if ip.host is not None}))
        categories = {
            category: _category(
                category,
                kind,
                retry,
                [
                    layer
                    for policy in (deployment.bounce_policy, stream.bounce_policy)
                    if (layer := policy.categories.get(category)) is not None  # type: ignore[call-overload]
                ],
            )
            for category in BOUNCE_CATEGORIES
        }
        rules = (*stream.bounce_policy.reply_rules, *deployment.bounce_policy.reply_rules, *bounces.REPLY_RULES)
        result[name] = StreamFact(
            name=name,
            kind=kind,
            use_case=stream.use_case,
            volume=stream.volume,
            pool=stream.pool,
            domains=tuple(stream.domains),
            injection=stream.injection,
            retry=retry,
            ips=pool_ips,
            hosts=hosts,
            isps=stream_isps(deployment, name, base_isps),
            categories=categories,
            reply_rules=rules,
        )
    return result
