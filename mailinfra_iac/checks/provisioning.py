"""What Terraform needs to provision hosts: found at validation, not when rendering."""

from __future__ import annotations

from collections.abc import Iterator

from ..problems import Problem
from .base import Check, CheckContext


def host_provisioning(ctx: CheckContext) -> Iterator[Problem]:
    hosts = ctx.deployment.hosts
    for name, host in hosts.items():
        for field in ('region', 'size'):
            if getattr(host, field) == '':
                yield ctx.problem(
                    'host-provisioning',
                    f'host "{name}" has an empty {field}',
                    ('hosts', name, field),
                    expected=f'no "{field}" key (an existing machine has none)'
                    if host.provider == 'static'
                    else f'the {host.provider} {field} (e.g. ' + ('"fsn1")' if field == 'region' else '"cx32")'),
                    value='',
                )
        if host.provider == 'hetzner' and host.address is None:
            for field in ('region', 'size'):
                if getattr(host, field) is None:
                    yield ctx.problem(
                        'host-provisioning',
                        f'host "{name}" has no address, so Terraform creates it at Hetzner; that needs its {field}',
                        ('hosts', name),
                        expected=f'"{field}" (e.g. ' + ('"fsn1")' if field == 'region' else '"cx32")'),
                    )
        if host.provider == 'static' and host.address is None:
            yield ctx.problem(
                'host-provisioning',
                f'host "{name}" is an existing machine ("static") without an address',
                ('hosts', name),
                expected='"address" of the machine, or a provider that creates it',
            )
    aws = sorted({(host.region, name) for name, host in hosts.items() if host.provider == 'aws' and host.region})
    if len({region for region, _ in aws}) > 1:
        first_region = aws[0][0]
        for region, name in aws:
            if region != first_region:
                yield ctx.problem(
                    'host-provisioning',
                    f'AWS host "{name}" is in {region}, others in {first_region}: one deployment uses one AWS region',
                    ('hosts', name, 'region'),
                    expected=f'"{first_region}", or a separate deployment per region',
                    value=region,
                )


def allocation_provider(ctx: CheckContext) -> Iterator[Problem]:
    for pool_name, pool in ctx.deployment.pools.items():
        if pool.allocate is None:
            continue
        static = [
            host for host in ctx.facts.pool_hosts.get(pool_name, []) if ctx.deployment.hosts[host].provider == 'static'
        ]
        if static:
            yield ctx.problem(
                'allocation-provider',
                f'pool "{pool_name}" allocates addresses, but host "{static[0]}" that serves it is an existing '
                'machine ("static"): no provider can allocate addresses to it',
                ('pools', pool_name, 'allocate'),
                at_key=True,
                expected='"ips" with the addresses the machine has, or hosts at a provider that allocates',
            )


CHECKS = (
    Check('host-provisioning', 'error', 'Hosts Terraform creates need what it needs.', host_provisioning),
    Check(
        'allocation-provider', 'error', 'Allocations only on hosts at a provider that allocates.', allocation_provider
    ),
)
