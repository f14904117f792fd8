"""Hosts, IP pools and sending IPs."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from .base import HostName, Ipv4, Model, Slug

IpProvider = Literal['hetzner', 'vultr', 'linode', 'ovh', 'aws', 'static']
MtaName = Literal['postfix', 'powermta']
HostRole = Literal['mta', 'monitoring', 'database', 'dns']
HOST_ROLES: tuple[HostRole, ...] = ('mta', 'monitoring', 'database', 'dns')
"""Every host role, in the order groups and listings use."""


def _mta_only() -> list[HostRole]:
    return ['mta']


class Host(Model):
    """A machine of the deployment, a VM created at a provider or an existing machine, and what it runs.

    Roles (several can share a host): "mta" sends from its pools and, if it is an inbound host, receives
    bounces and feedback; "monitoring" runs Prometheus and Alertmanager, which deliver the alerts; "database"
    runs PostgreSQL, the store the host services share (at most one; without it each host keeps a local SQLite
    store); "dns" is an authoritative name server for the zones that list its fqdn in their "nameservers".
    Only "mta" hosts have pools, sending IPs and an MTA.
    """

    fqdn: HostName = Field(description='Host name of the machine (its own A record and default mail name).')
    provider: IpProvider = Field(description='Where the machine and its IPs live; "static" for existing ones.')
    region: str | None = Field(None, description='Provider region or location (VMs only), e.g. "fsn1".')
    size: str | None = Field(None, description='Provider machine type (VMs only), e.g. "cx32".')
    image: str = Field('debian-12', description='Operating-system image for VMs.')
    address: Ipv4 | None = Field(
        None, description='Management address of an existing machine; VMs get theirs from Terraform.'
    )
    ssh_user: str = Field('root', description='User Ansible connects as.')
    pools: list[Slug] = Field(default_factory=list, description='IP pools this host sends from ("mta" hosts only).')
    mta: MtaName | None = Field(None, description='Override the deployment-wide MTA for this host ("mta" hosts only).')
    roles: list[HostRole] = Field(
        default_factory=_mta_only,
        min_length=1,
        description='What the host runs: "mta", "monitoring", "database", "dns" (see above); several can share it.',
    )

    @field_validator('roles')
    @classmethod
    def _distinct_roles(cls, value: list[HostRole]) -> list[HostRole]:
        twice = sorted({role for role in value if value.count(role) > 1})
        if twice:
            raise ValueError(f'role "{twice[0]}" is listed twice')
        return value


class SendingIp(Model):
    """One dedicated sending address."""

    address: Ipv4 = Field(
        description='The IPv4 address, globally routable; RFC 5737 documentation addresses only in a spec that '
        'uses nothing else (an example).'
    )
    ptr: HostName = Field(description='Reverse-DNS name; its A record must point back to the address.')
    helo: HostName | None = Field(None, description='HELO/EHLO name; defaults to (and must equal) the PTR name.')
    host: Slug | None = Field(None, description='Host that carries the address; needed if the pool has several.')
    warmup_started: dt.date | None = Field(None, description='Day the warm-up of this IP started.')


class Allocation(Model):
    """Addresses to allocate at the host's provider (Terraform creates them)."""

    count: int = Field(ge=1, le=256, description='Number of IPv4 addresses to allocate for the pool.')
    ptr_pattern: str = Field(
        description='PTR name pattern; "{n}" is the 1-based index, "{pool}" and "{host}" are available too.',
        examples=['{pool}{n}.mta.example.com'],
    )
    warmup_started: dt.date | None = Field(None, description='Day the warm-up of these IPs started.')

    @field_validator('ptr_pattern')
    @classmethod
    def _has_index(cls, value: str) -> str:
        if '{n}' not in value:
            raise ValueError(f'ptr_pattern "{value}" must contain "{{n}}" so that every address gets its own name')
        try:
            value.format(n=1, pool='pool', host='host')
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                f'invalid ptr_pattern "{value}", only "{{n}}", "{{pool}}" and "{{host}}" can be used'
            ) from None
        return value


class Pool(Model):
    """A set of sending IPs dedicated to one stream."""

    description: str = Field('', description='What the pool is for.')
    ips: list[SendingIp] = Field(default_factory=list, description='Addresses the client already has.')
    allocate: Allocation | None = Field(None, description='Addresses to allocate at the provider.')
