"""DNS zones the deployment controls and who serves them."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from .base import DnsName, HostName, Model

DnsProvider = Literal['cloudflare', 'route53', 'rfc2136', 'zonefile']


def _ip_address(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f'invalid IP address "{value}", expected e.g. "192.0.2.53" or "2001:db8::53"') from None


IpAddress = Annotated[str, BeforeValidator(_ip_address)]


class Zone(Model):
    """A forward or reverse (in-addr.arpa) zone and its provider.

    A zone inside another zone of the spec (sub.example.com beside example.com) must be delegated at the
    parent: NS records for it there, which the records of the parent do not hold. ``validate`` warns
    (``zone-delegation``) with the records to add, unless both zones list the same nameservers, the parent
    is "zonefile" and the child "zonefile" or "rfc2136": then the parent's zone file delegates to the child
    (its NS records). An "rfc2136" parent's records come from Terraform without them, so it gets the warning.
    """

    name: DnsName = Field(description='Zone apex, e.g. "example.com" or "2.0.192.in-addr.arpa".')
    provider: DnsProvider = Field(description='Who serves the zone; "zonefile" renders a BIND zone file only.')
    zone_id: str | None = Field(None, description='Provider zone id (Cloudflare, Route 53).')
    server: str | None = Field(None, description='RFC 2136 server address for dynamic updates.')
    nameservers: list[HostName] = Field(
        default_factory=list,
        description='Authoritative servers (NS). Required for "zonefile"; for other providers the zone file '
        "export is written only when they are listed (the provider's own servers).",
    )
    nameserver_addresses: dict[HostName, Annotated[list[IpAddress], Field(min_length=1)]] = Field(
        default_factory=dict,
        description='Addresses (A/AAAA) of nameservers named inside a managed zone, published with the records '
        '(glue), e.g. {ns1.example.com: [192.0.2.53]}. A nameserver that is a host of the deployment needs none.',
    )

    @field_validator('nameserver_addresses', mode='before')
    @classmethod
    def _distinct_nameservers(cls, value: Any) -> Any:
        # Keys that differ only in case or a trailing dot are one name: the later list would replace the earlier.
        if isinstance(value, dict):
            seen: dict[str, Any] = {}
            for key in value:
                name = str(key).strip().rstrip('.').lower()
                if name in seen:
                    raise ValueError(
                        f'"{seen[name]}" and "{key}" are the same nameserver {name}, expected each nameserver '
                        'once with all its addresses in one list'
                    )
                seen[name] = key
        return value


class Dns(Model):
    """DNS settings."""

    zones: list[Zone] = Field(min_length=1, description='Zones whose records the deployment manages.')
    ttl: int = Field(3600, ge=60, le=86400, description='TTL of generated records, in seconds.')
