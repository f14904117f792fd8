"""Vultr: reserved IPv4 addresses attached to existing instances, with their reverse DNS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...facts.ips import IpFact
from .base import IpProvider, Plugin, Root, Token, listed_hosts

PLUGIN = Plugin('vultr', 'vultr/vultr', '~> 2.32.0', Token('api_key', 'vultr_api_key', 'Vultr API key.'))


def arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    regions = sorted({h.region for h in root.deployment.hosts.values() if h.provider == 'vultr' and h.region})
    region = regions[0] if len(regions) == 1 else None
    return {
        'region': region or root.variable('vultr_region', 'Vultr region of the reserved IPs, such as "fra".', 'string'),
        'instance_ids': root.variable(
            'vultr_instance_ids',
            f'Vultr instance id (UUID) of each host, keyed by host name: {listed_hosts(ips)}.',
            'map(string)',
            nullable=False,
        ),
    }


PROVIDER = IpProvider('vultr', 'Vultr', PLUGIN, arguments, allocation_targets=('vultr_reserved_ip.this',))
