"""Mailbox-provider (ISP) profiles: how to recognise a provider and how hard to push it."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import DnsName, Duration, Model, Slug, format_duration, parse_host_name
from .bounce import OneLine

BACKOFF_DURATION = (60, 7 * 86400)
"""Accepted ``duration`` of a back-off rule (seconds, inclusive)."""
TRIGGER_WINDOW = (60, 86400)
"""Accepted ``trigger.window`` (seconds, inclusive): the host keeps the matches of one window per rule."""
TRIGGER_COUNT_MAX = 1000


def mx_pattern(value: str) -> str:
    """A host-name suffix ".mx.example.com", lower-case without a trailing dot; ValueError otherwise (the
    pattern is printed in generated comments and docs and passed to the agent contract, so it is one suffix)."""
    if not value.startswith('.'):
        raise ValueError(f'invalid MX pattern "{value}", expected a host-name suffix with a leading dot: ".google.com"')
    try:
        return '.' + parse_host_name(value[1:])
    except ValueError:
        raise ValueError(
            f'invalid MX pattern "{value}", expected a leading dot and a host name of two or more labels of '
            'letters, digits and hyphens (".google.com")'
        ) from None


MxPattern = Annotated[str, AfterValidator(mx_pattern)]


class BackoffTrigger(Model):
    """When a rule acts: on `count` matching replies within `window` (per stream, sending IP and provider)."""

    count: int = Field(1, description='Matching replies that start the action; 1 acts on the first match.')
    window: Duration | None = Field(
        None, description='Time the "count" matches must fall within ("1h" for "N per hour"); needed when count > 1.'
    )

    @model_validator(mode='after')
    def _sensible(self) -> BackoffTrigger:
        if not 1 <= self.count <= TRIGGER_COUNT_MAX:
            raise ValueError(f'trigger count {self.count} is out of range: 1 to {TRIGGER_COUNT_MAX} matches')
        if self.count == 1 and self.window is not None:
            raise ValueError(
                f'trigger window {format_duration(self.window)} with count 1 means nothing (the first match acts); '
                'drop the window or count more matches'
            )
        if self.count > 1 and self.window is None:
            raise ValueError(f'trigger count {self.count} needs a window, e.g. {{count: {self.count}, window: 1h}}')
        low, high = TRIGGER_WINDOW
        if self.window is not None and not low <= self.window <= high:
            raise ValueError(
                f'trigger window {format_duration(self.window)} is out of range: '
                f'{format_duration(low)} to {format_duration(high)}'
            )
        return self


class BackoffRule(Model):
    """A remote reply that slows down or pauses delivery from one sending IP (as KumoMTA's traffic shaping rules).

    Postfix hosts enforce it with the shaping service (docs/shaping.md), PowerMTA with its pattern lists
    (docs/powermta.md). The first rule whose pattern matches a reply counts it, per stream, sending IP and provider.
    """

    pattern: str = Field(description='Regular expression matched against the SMTP reply (code and text).')
    action: Literal['backoff', 'suspend', 'suspend_ip'] = Field(
        'backoff',
        description='"backoff" lowers the rate to the backoff limits; "suspend" stops delivery from the IP to the '
        'provider; "suspend_ip" stops delivery from the IP to every provider. Each lasts "duration".',
    )
    duration: Duration = Field(
        3600, description='How long the reaction lasts after the last match before normal mode resumes (1m to 7d).'
    )
    trigger: BackoffTrigger = Field(
        default_factory=BackoffTrigger,
        description='Matches within a window that start the action, e.g. {count: 5, window: 1h}; default: the first.',
    )
    failover: bool | None = Field(
        None,
        description='"suspend" only: the pool\'s other IPs take the provider\'s mail meanwhile (true), or the mail '
        'waits (false, the default).',
    )
    description: OneLine = Field(
        '', description='Why this reply matters (shown in generated comments; line breaks become spaces).'
    )

    @field_validator('pattern')
    @classmethod
    def _compiles(cls, value: str) -> str:
        if not value:
            raise ValueError('empty pattern: it would match every reply')
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f'invalid regular expression "{value}": {error}') from None
        return value

    @field_validator('duration')
    @classmethod
    def _bounded(cls, value: int) -> int:
        low, high = BACKOFF_DURATION
        if not low <= value <= high:
            raise ValueError(
                f'duration {format_duration(value)} is out of range: {format_duration(low)} to {format_duration(high)}'
            )
        return value

    @model_validator(mode='after')
    def _failover_for_suspend(self) -> BackoffRule:
        if self.failover is not None and self.action != 'suspend':
            raise ValueError(
                f'failover applies to action "suspend" only (the IP\'s mail to one provider moves to the other IPs); '
                f'action "{self.action}" '
                + (
                    'already takes the IP out of rotation for every provider'
                    if self.action == 'suspend_ip'
                    else 'keeps delivering from the IP'
                )
            )
        return self

    @property
    def fails_over(self) -> bool:
        """A suspension that lets the pool's other IPs take the provider's mail."""
        return self.action == 'suspend' and bool(self.failover)


class AnyIspRules(Model):
    """Back-off rules for every provider (``catalogue/isps/_any.yml``): the IP itself is blocked, whoever says so."""

    backoff_rules: list[BackoffRule] = Field(description="Rules checked after each provider's own.")
    sources: list[str] = Field(default_factory=list, description='Where the rules come from.')

    @model_validator(mode='after')
    def _suspend_ip_only(self) -> AnyIspRules:
        for rule in self.backoff_rules:
            if rule.action != 'suspend_ip':
                raise ValueError(
                    f'rule "{rule.pattern}": action "{rule.action}" acts on one provider and needs one; '
                    'rules for every provider can only be "suspend_ip" (put the rule in a provider\'s profile)'
                )
        return self


class IspLimits(Model):
    """Throttles towards one provider, per sending IP. Unset fields inherit from the layer below."""

    max_connections: int | None = Field(None, description='Simultaneous SMTP connections per sending IP.')
    messages_per_connection: int | None = Field(None, description='Messages delivered over one connection.')
    messages_per_hour: int | None = Field(None, description='Messages per hour per sending IP.')
    recipients_per_message: int | None = Field(None, description='Recipients in one SMTP transaction.')
    retry_after: Duration | None = Field(None, description='First retry interval after a temporary failure.')
    backoff_messages_per_hour: int | None = Field(
        None, description='Messages per hour per IP while the provider is in backoff mode.'
    )
    backoff_retry_after: Duration | None = Field(None, description='Retry interval while in backoff mode.')
    backoff_to_normal_after: Duration | None = Field(
        None, description='How long backoff mode lasts before returning to normal limits.'
    )
    require_tls: bool | None = Field(None, description='Refuse to deliver to this provider without TLS.')

    def over(self, base: IspLimits) -> IspLimits:
        """Return these limits with unset fields taken from ``base``."""
        merged = base.model_dump()
        merged.update({key: value for key, value in self.model_dump().items() if value is not None})
        return IspLimits(**merged)


THROTTLE_RANGES: dict[str, tuple[int, int]] = {
    'max_connections': (1, 1000),
    'messages_per_connection': (1, 10_000),
    'messages_per_hour': (1, 10_000_000),
    'recipients_per_message': (1, 1000),
    'retry_after': (60, 7 * 86400),
    'backoff_messages_per_hour': (1, 10_000_000),
    'backoff_retry_after': (60, 7 * 86400),
    'backoff_to_normal_after': (60, 7 * 86400),
}
"""Accepted range of every numeric throttle (inclusive); checked by ``throttle-out-of-range``."""


class IspProfile(Model):
    """A mailbox provider recognised by recipient domain or by the host names of its MX."""

    name: Slug = Field(description='Identifier used in overrides, transports and queue names.')
    display_name: OneLine = Field(description='Provider name as people know it.')
    recipient_domains: list[DnsName] = Field(
        default_factory=list, description='Recipient domains routed to this profile.'
    )
    mx_patterns: list[MxPattern] = Field(
        default_factory=list,
        description='MX host-name suffixes (".google.com") that identify the provider for other domains.',
    )
    limits: IspLimits = Field(description='Starting limits per sending IP.')
    backoff_rules: list[BackoffRule] = Field(default_factory=list, description='Replies that trigger back-off.')
    default_share: float = Field(
        0.0, ge=0, le=1, description='Typical share of a consumer list, used only for capacity estimates.'
    )
    sources: list[str] = Field(default_factory=list, description='Where the starting limits come from.')


class IspOverride(Model):
    """Deployment- or stream-level changes to a catalogued provider (or a new provider)."""

    display_name: OneLine | None = Field(
        None, description='Provider name, required for a provider not in the catalogue.'
    )
    recipient_domains: list[DnsName] = Field(
        default_factory=list, description='Extra recipient domains for this provider.'
    )
    mx_patterns: list[MxPattern] = Field(
        default_factory=list, description='Extra MX host-name suffixes (".google.com").'
    )
    limits: IspLimits = Field(default_factory=IspLimits, description='Limits that replace the catalogue values.')
    backoff_rules: list[BackoffRule] = Field(default_factory=list, description='Extra back-off rules.')


IspName = Slug
