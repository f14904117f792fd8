"""DNS zones the deployment controls and who serves them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import DnsName, HostName, Model

DnsProvider = Literal['cloudflare', 'route53', 'rfc2136', 'zonefile']


class Zone(Model):
    """A forward or reverse (in-addr.arpa) zone and its provider."""

    name: DnsName = Field(description='Zone apex, e.g. "example.com" or "2.0.192.in-addr.arpa".')
    provider: DnsProvider = Field(description='Who serves the zone; "zonefile" renders a BIND zone file only.')
    zone_id: str | None = Field(None, description='Provider zone id (Cloudflare, Route 53).')
    server: str | None = Field(None, description='RFC 2136 server address for dynamic updates.')
    nameservers: list[HostName] = Field(
        default_factory=list, description='Authoritative servers (NS); used in exported zone files and DNS checks.'
    )


class Dns(Model):
    """DNS settings."""

    zones: list[Zone] = Field(min_length=1, description='Zones whose records the deployment manages.')
    ttl: int = Field(3600, ge=60, le=86400, description='TTL of generated records, in seconds.')
