"""Effective ISP profiles: the catalogue, then the deployment's changes, then each stream's."""

from __future__ import annotations

from dataclasses import dataclass, fields

from mailinfra_agent import contract

from ..catalogue.isps import DEFAULT_LIMITS, builtin_isps
from ..model import BackoffRule, Deployment, IspLimits, IspOverride, IspProfile


@dataclass(frozen=True)
class Limits(contract.Limits):
    """Throttles towards one provider per sending IP, every field resolved (``IspLimits`` with nothing unset).

    The fields are the agent contract's ``Limits`` (the host reads the same type); their names are those of
    ``IspLimits``; durations are seconds.
    """

    @classmethod
    def resolve(cls, limits: IspLimits) -> Limits:
        """``limits`` with every field set; a gap is a programming error (layers end with ``DEFAULT_LIMITS``)."""
        values = limits.model_dump()
        missing = [field.name for field in fields(cls) if values.get(field.name) is None]
        if missing:
            raise ValueError(f'ISP limits {", ".join(missing)} not set: resolve them over DEFAULT_LIMITS')
        return cls(**values)

    def as_dict(self) -> dict[str, int | bool]:
        return {name: getattr(self, name) for name in _LIMIT_NAMES}


_LIMIT_NAMES = tuple(field.name for field in fields(Limits))
DEFAULTS = Limits.resolve(DEFAULT_LIMITS)
"""The limits of recipients that no profile matches (``catalogue.isps.DEFAULT_LIMITS``), resolved."""


@dataclass(frozen=True)
class EffectiveIsp:
    """A provider with the limits that apply to one stream."""

    name: str
    display_name: str
    recipient_domains: tuple[str, ...]
    mx_patterns: tuple[str, ...]
    limits: Limits
    backoff_rules: tuple[BackoffRule, ...]
    share: float


def _union(first: list[str], extra: list[str]) -> list[str]:
    """The catalogue's names in their order, then the new ones."""
    return [*first, *(name for name in extra if name not in first)]


def _apply(profile: IspProfile | None, name: str, override: IspOverride) -> IspProfile:
    if profile is None:
        return IspProfile(
            name=name,
            display_name=override.display_name or name,
            recipient_domains=override.recipient_domains,
            mx_patterns=override.mx_patterns,
            limits=override.limits.over(DEFAULT_LIMITS),
            backoff_rules=override.backoff_rules,
        )
    return profile.model_copy(
        update={
            'display_name': override.display_name or profile.display_name,
            'recipient_domains': _union(profile.recipient_domains, override.recipient_domains),
            'mx_patterns': _union(profile.mx_patterns, override.mx_patterns),
            'limits': override.limits.over(profile.limits),
            'backoff_rules': [*override.backoff_rules, *profile.backoff_rules],
        }
    )


def deployment_isps(deployment: Deployment) -> dict[str, IspProfile]:
    """The catalogue with the deployment-level changes (and new providers) applied."""
    profiles = dict(builtin_isps())
    for name, override in deployment.isp_profiles.items():
        profiles[name] = _apply(profiles.get(name), name, override)
    return dict(sorted(profiles.items()))


def stream_isps(deployment: Deployment, stream_name: str, base: dict[str, IspProfile]) -> dict[str, EffectiveIsp]:
    """Profiles as they apply to one stream, with its overrides and recipient mix."""
    stream = deployment.streams[stream_name]
    profiles = dict(base)
    for name, override in stream.isp_overrides.items():
        profiles[name] = _apply(profiles.get(name), name, override)
    mix = stream.recipient_mix
    result = {}
    for name, profile in sorted(profiles.items()):
        share = mix.get(name, 0.0) if mix is not None else profile.default_share
        result[name] = EffectiveIsp(
            name=name,
            display_name=profile.display_name,
            recipient_domains=tuple(profile.recipient_domains),
            mx_patterns=tuple(profile.mx_patterns),
            limits=Limits.resolve(profile.limits.over(DEFAULT_LIMITS)),
            backoff_rules=tuple(profile.backoff_rules),
            share=share,
        )
    return result


def other_share(isps: dict[str, EffectiveIsp]) -> float:
    """Share of recipients that no profile matches (they get the default limits)."""
    return max(0.0, 1.0 - sum(isp.share for isp in isps.values()))
