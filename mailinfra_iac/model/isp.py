"""Mailbox-provider (ISP) profiles: how to recognise a provider and how hard to push it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from .base import DnsName, Duration, Model, Slug


class BackoffRule(Model):
    """A remote reply that should slow down or pause delivery to one provider."""

    pattern: str = Field(description='Regular expression matched against the SMTP reply (code and text).')
    action: Literal['backoff', 'suspend'] = Field(
        'backoff',
        description='"backoff" lowers the rate to the backoff limits; "suspend" stops delivery for "duration".',
    )
    duration: Duration = Field(3600, description='How long the reaction lasts before normal mode resumes.')
    description: str = Field('', description='Why this reply matters (shown in generated comments).')

    @field_validator('pattern')
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(f'invalid regular expression "{value}": {error}') from None
        return value


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
    display_name: str = Field(description='Provider name as people know it.')
    recipient_domains: list[DnsName] = Field(
        default_factory=list, description='Recipient domains routed to this profile.'
    )
    mx_patterns: list[str] = Field(
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

    display_name: str | None = Field(None, description='Provider name, required for a provider not in the catalogue.')
    recipient_domains: list[DnsName] = Field(
        default_factory=list, description='Extra recipient domains for this provider.'
    )
    mx_patterns: list[str] = Field(default_factory=list, description='Extra MX host-name suffixes.')
    limits: IspLimits = Field(default_factory=IspLimits, description='Limits that replace the catalogue values.')
    backoff_rules: list[BackoffRule] = Field(default_factory=list, description='Extra back-off rules.')


IspName = Slug
