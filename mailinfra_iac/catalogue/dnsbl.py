"""The blocklist catalogue, as the controller sees it: a thin view of the agent's catalogue.

The data lives in ``mailinfra_agent/dnsbl/zones.toml`` (one place, read by the host and by the controller);
this module keeps the names other controller modules used before it moved.
"""

from __future__ import annotations

from mailinfra_agent import dnsbl as agent_dnsbl
from mailinfra_agent.dnsbl import Zone, load_catalogue

from ..model.monitoring import CustomZone

DnsblZone = Zone
"""One zone and how to read it (the agent's record)."""

CATALOGUE: tuple[Zone, ...] = load_catalogue().zones
"""Every queryable zone: listing zones, allowlists, reputation and key-only zones."""

RETIRED: dict[str, str] = {entry.zone: f'{entry.note} ({entry.source})' for entry in load_catalogue().retired}
"""Zones that must never be queried (``*.`` covers every zone under the domain), with the reason."""


def by_zone() -> dict[str, Zone]:
    return {zone.zone: zone for zone in CATALOGUE}


def default_zones() -> list[str]:
    """The zones selected when the spec names none."""
    return sorted(zone.zone for zone in load_catalogue().default_zones())


def custom_zone(spec: CustomZone) -> Zone:
    """The agent's zone for a spec's custom zone: the one conversion the controller's ``dnsbl check`` and the
    host contract share. Raises ValueError for what the ``dnsbl-custom-zone`` check refuses."""
    return agent_dnsbl.custom_zone(
        zone=agent_dnsbl.zone_key(spec.zone),
        kind=spec.kind,
        operator=spec.operator,
        decoder=spec.decoder,
        codes=dict(spec.listings),
        errors=dict(spec.errors),
        severity=spec.severity,
        test_point=spec.test_point,
        delisting_url=spec.delisting_url,
        ipv6=spec.ipv6,
        host_names=spec.host_names,
    )


def refusal(name: str) -> str | None:
    """Why a zone is never queried (retired or unsupported), or None."""
    return load_catalogue().refusal(name)
