"""Mail streams: transactional, marketing, cold outreach, or custom."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import DnsName, Model, Network, Slug
from .bounce import BouncePolicy, RetrySchedule
from .isp import IspOverride

StreamKind = Literal['transactional', 'marketing', 'cold_outreach', 'custom']
STREAM_KINDS: tuple[str, ...] = StreamKind.__args__  # type: ignore[attr-defined]


class Volume(Model):
    """Expected sending volume."""

    monthly: int = Field(ge=0, description='Messages per month.')
    peak_hourly: int = Field(ge=0, description='Messages in the busiest hour.')


class Injection(Model):
    """How applications hand mail to the stream's MTA instance."""

    port: int = Field(ge=1, le=65535, description="TCP port of the stream's injection listener.")
    networks: list[Network] = Field(
        default_factory=list, description='Client networks allowed to inject without authentication.'
    )
    sasl_users: list[str] = Field(default_factory=list, description='SASL user names allowed to inject.')


class Stream(Model):
    """A kind of mail with its own reputation, IP pool and queue."""

    kind: StreamKind | None = Field(
        None, description='Stream kind; defaults to the stream name when it is a known kind, else "custom".'
    )
    use_case: str = Field(description='What the stream sends, e.g. "password resets and receipts".')
    volume: Volume = Field(description='Messages per month and in the busiest hour.')
    pool: Slug | None = Field(None, description='IP pool the stream sends from (one pool per stream).')
    domains: list[DnsName] = Field(min_length=1, description='Sending (From) domains the stream may use.')
    injection: Injection = Field(description='Listener applications inject into.')
    retry: RetrySchedule = Field(default_factory=RetrySchedule, description='Queue retry timing.')
    isp_overrides: dict[Slug, IspOverride] = Field(
        default_factory=dict, description='Per-provider limits for this stream only.'
    )
    bounce_policy: BouncePolicy = Field(
        default_factory=BouncePolicy, description='Per-category retry and suppression for this stream.'
    )
    recipient_mix: dict[Slug, float] | None = Field(
        None,
        description='Share of recipients per provider (0-1) for capacity estimates; default: catalogue shares.',
    )
