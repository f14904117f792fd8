"""Mail streams: transactional, marketing, cold outreach, or custom."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from .base import DnsName, Model, Network, Slug
from .bounce import BouncePolicy, RetrySchedule
from .isp import IspOverride

StreamKind = Literal['transactional', 'marketing', 'cold_outreach', 'custom']
STREAM_KINDS: tuple[str, ...] = StreamKind.__args__  # type: ignore[attr-defined]


class Volume(Model):
    """Expected sending volume."""

    monthly: int = Field(ge=0, description='Messages per month.')
    peak_hourly: int = Field(ge=0, description='Messages in the busiest hour.')


_SASL_LOCAL = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}')
_SASL_REALM_LABEL = re.compile(r'[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?')


def sasl_user(value: str) -> str:
    """``value`` if a SASL login every consumer reads as one name, else ValueError.

    Cyrus SASL (saslpasswd2 and the sasldb lookup) splits a login at its first "@" into user and realm;
    PowerMTA's ``<smtp-user NAME>`` (its checker: ``[A-Za-z0-9][A-Za-z0-9_.@+-]*``) and the role's digest lines
    ("user digest") end a name at white space; saslpasswd2 reads a leading "-" as an option.
    """
    local, at, realm = value.partition('@')
    realm_ok = len(realm) <= 253 and all(map(_SASL_REALM_LABEL.fullmatch, realm.split('.')))
    if not _SASL_LOCAL.fullmatch(local) or (at and not realm_ok):
        raise ValueError(
            f'invalid SASL user "{value}", expected a name of 1-64 ASCII letters, digits and "_.+-" starting '
            'with a letter or digit, optionally followed by "@" and a realm such as "example.com"'
        )
    return value


SaslUser = Annotated[str, AfterValidator(sasl_user)]


class Injection(Model):
    """How applications hand mail to the stream's MTA instance."""

    port: int = Field(ge=1, le=65535, description="TCP port of the stream's injection listener.")
    networks: list[Network] = Field(
        default_factory=list, description='Client networks allowed to inject without authentication.'
    )
    sasl_users: list[SaslUser] = Field(
        default_factory=list,
        description='SASL user names allowed to inject: "app" or "app@example.com" (ASCII letters, digits, "_.+-").',
    )

    @field_validator('sasl_users')
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen = set()
        for user in value:
            if user in seen:
                raise ValueError(f'SASL user "{user}" is listed twice, expected each user once')
            seen.add(user)
        return value


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
