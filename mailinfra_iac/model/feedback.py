"""Bounce, complaint and unsubscribe processing: VERP, suppression links, retention, one-click unsubscribe."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from .base import DnsName, Duration, HostName, Model, Slug, duration_in_range

DEFAULT_SIGNING_KEY_FILE = '/etc/mailinfra/secrets/feedback-signing-key'
DEFAULT_HASH_KEY_FILE = '/etc/mailinfra/secrets/feedback-hash-key'

_VERP_PREFIX = re.compile(r'^[a-z0-9]{1,8}$')

LINKED_KINDS: dict[str, tuple[str, ...]] = {'marketing': ('cold_outreach',), 'cold_outreach': ('marketing',)}
"""Default complaint links by stream kind: a complaint on one also suppresses on the others (never transactional)."""


class Verp(Model):
    """Return-path encoding of a stream: ``<prefix><separator><signed data>@<return-path domain>``."""

    enabled: bool = Field(True, description='Encode list segment, campaign and message id in the return path.')
    return_path_domain: DnsName | None = Field(
        None,
        description='Return-path domain of every message of the stream; default the return-path domain '
        "(sending_domains[].return_path) of the message's From domain.",
    )
    prefix: str = Field('b', description='First part of the local part: 1-8 lower-case letters or digits.')
    separator: Literal['-', '+', '='] = Field('-', description='Between the prefix and the encoded data.')

    @field_validator('prefix')
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not _VERP_PREFIX.match(value):
            raise ValueError(f'invalid VERP prefix "{value}", expected 1-8 lower-case letters or digits such as "b"')
        return value


class StreamFeedback(Model):
    """Feedback settings of one stream."""

    verp: Verp = Field(default_factory=Verp, description='Return-path (VERP) format.')
    complaint_links: list[Slug] | None = Field(
        None,
        description='Streams a complaint or unsubscribe on this stream also suppresses; default: marketing and '
        'cold_outreach streams link to each other, transactional and custom streams to none.',
    )


class SuppressionPolicy(Model):
    """When recipients are suppressed (per-category counts: bounce_policy.categories[].suppress_after)."""

    soft_bounce_window: Duration = Field(
        30 * 86400, description='Soft bounces count towards suppress_after only within this window.'
    )
    powermta_gate: bool = Field(
        False,
        description="PowerMTA hosts: refuse suppressed recipients at the injection ports with mailinfra's SMTP gate "
        'in front of PowerMTA, which then listens on loopback only; each port then selects its stream '
        '(docs/powermta.md). Not with SMTP AUTH users on PowerMTA streams.',
    )


class Retention(Model):
    """How long personal data is kept."""

    events: Duration = Field(
        180 * 86400, description='Delivery, bounce and complaint events keep the recipient address this long.'
    )
    after: Literal['hash', 'erase'] = Field(
        'hash', description='Then the address is replaced by a keyed hash ("hash") or removed ("erase").'
    )
    suppressions: Literal['address', 'hash'] = Field(
        'address', description='Keep suppressed recipients as addresses (exportable) or only as keyed hashes.'
    )
    hash_key_file: str = Field(
        DEFAULT_HASH_KEY_FILE, description='Key (0600 file, never rotated) of the keyed hashes; an absolute path.'
    )


TOKEN_MAX_AGE = (30 * 86400, 3650 * 86400)
"""Accepted ``unsubscribe.token_max_age``: a link must work for 30 days after sending (CAN-SPAM,
15 U.S.C. 7704(a)(3))."""


class Unsubscribe(Model):
    """The one-click unsubscribe endpoint (RFC 8058), served over HTTPS on the inbound hosts."""

    hostname: HostName = Field(description='Host name of the endpoint; its A records point at the inbound hosts.')
    tls_certificate: str = Field(description='Certificate chain (PEM) for the host name; an absolute path.')
    tls_key: str = Field(description='Private key (PEM, 0600) of the certificate; an absolute path.')
    listen_address: str = Field('0.0.0.0', description='Address the endpoint listens on.')
    port: int = Field(443, ge=1, le=65535, description='TCP port of the endpoint.')
    token_max_age: Duration = Field(
        180 * 86400,
        description='Unsubscribe links older than this are refused (30d to 10y: CAN-SPAM wants them to work for 30 '
        'days after sending).',
    )
    rate_limit: int = Field(
        60, ge=1, description="Requests a minute from one client address (a valid token's first POST is not limited)."
    )

    @field_validator('token_max_age')
    @classmethod
    def _max_age(cls, value: int) -> int:
        return duration_in_range(value, TOKEN_MAX_AGE)

    @field_validator('listen_address')
    @classmethod
    def _address(cls, value: Any) -> str:
        try:
            return str(ipaddress.ip_address(str(value)))
        except ValueError:
            raise ValueError(f'invalid listen address "{value}", expected an IP address such as "0.0.0.0"') from None


class Webhook(Model):
    """A signed HTTP POST for every new suppression."""

    url: str = Field(description='https URL (http only to a loopback address).')
    secret_file: str = Field(description='HMAC key (0600 file) that signs each request; an absolute path.')
    retries: int = Field(8, ge=0, le=20, description='Retries with exponential back-off before giving up.')
    timeout: Duration = Field(10, description='Time one request may take.')


class Feedback(Model):
    """Bounce, complaint and unsubscribe processing on the hosts."""

    signing_key_file: str = Field(
        DEFAULT_SIGNING_KEY_FILE, description='Key (0600 file) that signs VERP addresses and unsubscribe tokens.'
    )
    old_signing_key_files: list[str] = Field(
        default_factory=list, description='Earlier keys that still verify (key rotation); nothing is signed with them.'
    )
    streams: dict[Slug, StreamFeedback] = Field(
        default_factory=dict, description='Per-stream VERP and complaint links; streams not listed get the defaults.'
    )
    suppression: SuppressionPolicy = Field(default_factory=SuppressionPolicy, description='Suppression policy.')
    retention: Retention = Field(default_factory=Retention, description='Retention and erasure of addresses.')
    unsubscribe: Unsubscribe | None = Field(None, description='One-click unsubscribe endpoint; none by default.')
    webhook: Webhook | None = Field(None, description='Webhook called on each new suppression; none by default.')

    def stream(self, name: str) -> StreamFeedback:
        """The stream's settings, defaults when it is not listed."""
        return self.streams.get(name) or StreamFeedback()

    def complaint_links(self, kinds: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
        """Stream -> the other streams a complaint on it also suppresses; ``kinds`` maps stream names to kinds."""
        by_kind: dict[str, list[str]] = {}
        for other, kind in kinds.items():
            by_kind.setdefault(kind, []).append(other)
        links = {}
        for name in kinds:
            explicit = self.stream(name).complaint_links
            if explicit is not None:
                linked = [other for other in explicit if other != name]
            else:
                wanted = LINKED_KINDS.get(kinds[name], ())
                linked = [other for kind in wanted for other in by_kind.get(kind, ()) if other != name]
            links[name] = tuple(sorted(dict.fromkeys(linked)))
        return links
