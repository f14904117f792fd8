"""The client who owns the deployment."""

from __future__ import annotations

from pydantic import Field

from .base import DnsName, Email, Model, Slug


class Client(Model):
    """Who the sending infrastructure belongs to."""

    name: Slug = Field(description='Short identifier of the client, used in file, inventory and resource names.')
    display_name: str = Field('', description='Human-readable client name for reports and comments.')
    domains: list[DnsName] = Field(
        min_length=1,
        description='Organisational domains the client controls; PTR and HELO names must lie inside them.',
    )
    postmaster: Email = Field(description='Postmaster contact (RFC 5321), used for registrations and reports.')
    abuse: Email = Field(description='Abuse contact published for the sending IPs and domains.')
