"""Linode (Akamai): sending IPv4 addresses added to existing instances, with their reverse DNS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...facts.ips import IpFact
from .base import IpProvider, Plugin, Root, Token, listed_hosts

PLUGIN = Plugin('linode', 'linode/linode', '~> 3.13.0', Token('token', 'linode_token', 'Linode (Akamai) API token.'))


def arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    return {
        'instance_ids': root.variable(
            'linode_instance_ids',
            f'Linode instance id of each host, keyed by host name: {listed_hosts(ips)}.',
            'map(string)',
            nullable=False,
        )
    }


PROVIDER = IpProvider('linode', 'Linode', PLUGIN, arguments, allocation_targets=('linode_instance_ip.this',))
