"""AWS: Elastic IPs associated with existing instances, with their reverse DNS. Route 53 uses the same plug-in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...facts.ips import IpFact
from .base import IpProvider, Plugin, Root, TerraformRenderError, listed_hosts


def settings(root: Root) -> dict[str, Any]:
    regions = sorted({h.region for h in root.deployment.hosts.values() if h.provider == 'aws' and h.region})
    if len(regions) > 1:
        raise TerraformRenderError(
            f'AWS hosts are in several regions ({", ".join(regions)}); one root module serves one region'
        )
    region = root.variable(
        'aws_region',
        'AWS region of the provider (Elastic IPs are created there; Route 53 is global). Credentials come '
        'from the AWS environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE).',
        'string',
        default=regions[0] if regions else 'us-east-1',
        nullable=False,
    )
    return {'region': region}


PLUGIN = Plugin('aws', 'hashicorp/aws', '~> 6.25.0', settings=settings)


def arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    return {
        'instance_ids': root.variable(
            'aws_instance_ids',
            f'EC2 instance id of each host whose Elastic IPs are associated, keyed by host name: {listed_hosts(ips)}.',
            'map(string)',
            default={},
            nullable=False,
        ),
        'tags': {'mailinfra:client': root.deployment.client.name},
    }


PROVIDER = IpProvider('aws', 'AWS', PLUGIN, arguments, allocation_targets=('aws_eip.this',))
