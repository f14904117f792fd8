"""OVHcloud: addresses of an IP block the account already has; the module sets their reverse DNS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...facts.ips import IpFact
from .base import IpProvider, Plugin, Root


def settings(root: Root) -> dict[str, Any]:
    endpoint = root.variable(
        'ovh_endpoint',
        'OVHcloud API endpoint. Credentials come from OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET and '
        'OVH_CONSUMER_KEY.',
        'string',
        default='ovh-eu',
        nullable=False,
    )
    return {'endpoint': endpoint}


PLUGIN = Plugin('ovh', 'ovh/ovh', '~> 2.19.0', settings=settings)


def arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    description = 'The OVHcloud IP block (CIDR) the sending addresses belong to.'
    return {'ip_block': root.variable('ovh_ip_block', description, 'string')}


PROVIDER = IpProvider('ovh', 'OVHcloud', PLUGIN, arguments)
