"""The IP plan: every sending address with its pool, stream, host and names."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..model import Deployment


@dataclass(frozen=True)
class IpFact:
    """A sending address as the renderers see it."""

    id: str
    pool: str
    host: str | None
    ptr: str
    helo: str
    address: str | None
    """None for an address the provider allocates (known after ``terraform apply``)."""
    provider: str | None
    warmup_started: dt.date | None
    index: int
    """1-based position inside the pool."""

    @property
    def allocated(self) -> bool:
        return self.address is None


def ip_id(pool: str, address: str | None, index: int) -> str:
    """Stable ids: explicit addresses by address, allocated ones by position in their pool."""
    if address is not None:
        return f'{pool}_{address.replace(".", "_")}'
    return f'{pool}_alloc{index}'


def pool_hosts(deployment: Deployment) -> dict[str, list[str]]:
    """Hosts serving each pool, in host order (only hosts with the "mta" role serve pools)."""
    hosts: dict[str, list[str]] = {name: [] for name in deployment.pools}
    for host_name, host in deployment.hosts.items():
        if 'mta' not in host.roles:
            continue
        for pool in host.pools:
            if pool in hosts and host_name not in hosts[pool]:
                hosts[pool].append(host_name)
    return hosts


def plan_ips(deployment: Deployment) -> list[IpFact]:
    """Every sending IP of every pool, explicit ones first, then allocations spread over the pool's hosts."""
    served_by = pool_hosts(deployment)
    facts = []
    for pool_name, pool in deployment.pools.items():
        hosts = served_by.get(pool_name, [])
        index = 0
        for ip in pool.ips:
            index += 1
            host = ip.host if ip.host is not None else (hosts[0] if len(hosts) == 1 else None)
            provider = deployment.hosts[host].provider if host in deployment.hosts else None
            facts.append(
                IpFact(
                    ip_id(pool_name, ip.address, index),
                    pool_name,
                    host,
                    ip.ptr,
                    ip.helo or ip.ptr,
                    ip.address,
                    provider,
                    ip.warmup_started,
                    index,
                )
            )
        if pool.allocate is not None:
            for n in range(1, pool.allocate.count + 1):
                index += 1
                host = hosts[(n - 1) % len(hosts)] if hosts else None
                ptr = pool.allocate.ptr_pattern.format(n=n, pool=pool_name, host=host or 'host').lower()
                provider = deployment.hosts[host].provider if host is not None else None
                facts.append(
                    IpFact(
                        ip_id(pool_name, None, n),
                        pool_name,
                        host,
                        ptr,
                        ptr,
                        None,
                        provider,
                        pool.allocate.warmup_started,
                        index,
                    )
                )
    return facts
