"""Sending domains and their authentication: DKIM, SPF, DMARC."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from ..dkim.store import check_selector
from .base import DnsName, Duration, Email, Model


class Dkim(Model):
    """DKIM keys for one domain."""

    selectors: list[str] = Field(
        min_length=1,
        description='Published selectors, the signing one first; name them by period, e.g. "s2026q4".',
    )
    algorithm: Literal['rsa', 'rsa+ed25519'] = Field(
        'rsa', description='"rsa+ed25519" dual-signs with an Ed25519 key next to the RSA key (RFC 8463).'
    )
    rsa_bits: int = Field(2048, description='RSA key size in bits (at least 2048).')
    rotation: Duration = Field(180 * 86400, description='How often the key is rotated, e.g. "90d".')

    @field_validator('selectors')
    @classmethod
    def _selector_names(cls, value: list[str]) -> list[str]:
        for selector in value:
            check_selector(selector)  # the key store's own rule; its InvalidNameError is a ValueError
        return value


class SpfInclude(Model):
    """A third-party SPF include and what it costs."""

    domain: DnsName = Field(description='Domain named in "include:".')
    lookups: int = Field(1, ge=1, le=10, description='DNS lookups the include costs, its nested ones counted.')
    void_lookups: int = Field(0, ge=0, le=10, description='Lookups inside it known to return no records.')


class Spf(Model):
    """SPF policy for a sending or return-path domain; the stream IPs are added automatically."""

    includes: list[SpfInclude] = Field(
        default_factory=list, description='Extra "include:" domains: a name, or {domain, lookups, void_lookups}.'
    )
    mechanisms: list[str] = Field(
        default_factory=list, description='Extra mechanisms such as "a", "mx" or "ip4:198.51.100.0/24".'
    )
    all: Literal['-all', '~all'] = Field('-all', description='Terminating qualifier.')

    @field_validator('includes', mode='before')
    @classmethod
    def _include_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [{'domain': item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator('mechanisms')
    @classmethod
    def _mechanisms(cls, value: list[str]) -> list[str]:
        allowed = re.compile(r'^[+?~-]?(a|mx|ptr|exists|ip4|ip6|include)(?:[:/].+)?$')
        for mechanism in value:
            if not allowed.match(mechanism):
                raise ValueError(
                    f'invalid SPF mechanism "{mechanism}", expected a, mx, ptr, exists:, ip4:, ip6: or include:'
                )
        return value


class Dmarc(Model):
    """DMARC policy (RFC 7489 tags)."""

    p: Literal['none', 'quarantine', 'reject'] = Field('none', description='Policy for the domain.')
    sp: Literal['none', 'quarantine', 'reject'] | None = Field(None, description='Policy for sub-domains.')
    rua: list[Email] = Field(default_factory=list, description='Aggregate-report addresses (mailto).')
    ruf: list[Email] = Field(default_factory=list, description='Failure-report addresses (mailto).')
    adkim: Literal['r', 's'] = Field('r', description='DKIM alignment: relaxed or strict.')
    aspf: Literal['r', 's'] = Field('r', description='SPF alignment: relaxed or strict.')
    fo: str = Field('1', description='Failure-reporting options: 0, 1, d, s joined by ":".')

    @field_validator('fo')
    @classmethod
    def _fo(cls, value: str) -> str:
        if not value or any(part not in {'0', '1', 'd', 's'} for part in str(value).split(':')):
            raise ValueError(f'invalid DMARC fo "{value}", expected 0, 1, d or s joined by ":"')
        return str(value)


class Tracking(Model):
    """Click/open tracking host name pointing at the tracking service."""

    hostname: DnsName = Field(description='Tracking host name inside the sending domain.')
    target: DnsName = Field(description='CNAME target of the tracking service.')


class SendingDomain(Model):
    """A From domain and everything published for it."""

    domain: DnsName = Field(description='The From domain.')
    return_path: DnsName | None = Field(
        None, description='Return-path (bounce) domain; default "bounces.<domain>". MX points at our inbound hosts.'
    )
    dkim: Dkim = Field(description='DKIM keys.')
    spf: Spf = Field(default_factory=Spf, description='SPF policy.')
    dmarc: Dmarc = Field(default_factory=Dmarc, description='DMARC policy.')
    tracking: Tracking | None = Field(None, description='Optional tracking CNAME.')

    @property
    def bounce_domain(self) -> str:
        return self.return_path or f'bounces.{self.domain}'
