"""Names the deployment publishes must lie in zones it controls; HELO must equal PTR."""

from __future__ import annotations

from collections.abc import Collection, Iterator

from mailinfra_agent.names import enclosing

from ..model.base import parse_host_name
from ..problems import Path, Problem
from .base import Check, CheckContext


def in_zones(name: str, zones: Collection[str]) -> bool:
    return enclosing(name, zones) is not None


def forward_zones(ctx: CheckContext) -> list[str]:
    return sorted(zone.name for zone in ctx.deployment.dns.zones if not zone.name.endswith('.arpa'))


def ptr_outside_zones(ctx: CheckContext) -> Iterator[Problem]:
    zone_list = forward_zones(ctx)
    zones = set(zone_list)
    expected = 'a name inside one of the managed zones: ' + ', '.join(zone_list)
    for pool_name, pool in ctx.deployment.pools.items():
        for index, ip in enumerate(pool.ips):
            if not in_zones(ip.ptr, zones):
                yield ctx.problem(
                    'ptr-outside-zones',
                    f'PTR name "{ip.ptr}" of {ip.address} is outside the zones this deployment manages, so its '
                    'forward A record cannot be published (no forward-confirmed reverse DNS)',
                    ('pools', pool_name, 'ips', index, 'ptr'),
                    expected=expected,
                    value=ip.ptr,
                )
        if pool.allocate is not None:
            sample = pool.allocate.ptr_pattern.format(n=1, pool=pool_name, host='host').lower()
            if not in_zones(sample.removesuffix('.'), zones):  # a trailing dot is allocated-ptr-name's to report
                yield ctx.problem(
                    'ptr-outside-zones',
                    f'PTR pattern "{pool.allocate.ptr_pattern}" gives names such as "{sample}" outside the zones '
                    'this deployment manages',
                    ('pools', pool_name, 'allocate', 'ptr_pattern'),
                    expected=expected,
                    value=pool.allocate.ptr_pattern,
                )
    for host_name, host in ctx.deployment.hosts.items():
        if not in_zones(host.fqdn, zones):
            yield ctx.problem(
                'ptr-outside-zones',
                f'host name "{host.fqdn}" is outside the zones this deployment manages',
                ('hosts', host_name, 'fqdn'),
                expected=expected,
                value=host.fqdn,
            )


def _not_a_host_name(name: str) -> str | None:
    labels = name.split('.')
    longest = max(labels, key=len)
    if len(longest) > 63:
        return f'its label "{longest}" has {len(longest)} characters, DNS allows 63'
    if len(name) > 253:
        return f'it has {len(name)} characters, DNS allows 253'
    if name.endswith('.') and '..' not in name:
        return 'it ends with a dot; the pattern gives the name without one (PTR and A records add it)'
    if '.' not in name:
        return 'it is a single label; a host name has its domain too, e.g. "mta1.example.com"'
    try:
        if parse_host_name(name) == name:
            return None
    except ValueError:
        pass
    return 'a host name has labels of letters, digits and inner hyphens only (no "_", spaces or empty labels)'


def allocated_ptr_names(ctx: CheckContext) -> Iterator[Problem]:
    """The names a ptr_pattern makes get A and PTR records and are HELO names: BIND refuses "_" in them
    (check-names), and a label over 63 characters or an empty one cannot be written at all."""
    reported: set[str] = set()
    for ip in ctx.facts.ips:
        if not ip.allocated or ip.pool in reported:
            continue
        pool = ctx.deployment.pools[ip.pool]
        reason = _not_a_host_name(ip.ptr)
        if reason is None or pool.allocate is None:
            continue
        reported.add(ip.pool)
        yield ctx.problem(
            'allocated-ptr-name',
            f'PTR pattern "{pool.allocate.ptr_pattern}" of pool "{ip.pool}" gives "{ip.ptr}", which is not a host '
            f'name: {reason}',
            ('pools', ip.pool, 'allocate', 'ptr_pattern'),
            expected='a pattern that gives host names for every address, e.g. "{n}.mta.example.com"',
            value=pool.allocate.ptr_pattern,
        )


def helo_differs_from_ptr(ctx: CheckContext) -> Iterator[Problem]:
    for pool_name, pool in ctx.deployment.pools.items():
        for index, ip in enumerate(pool.ips):
            if ip.helo is not None and ip.helo != ip.ptr:
                path: Path = ('pools', pool_name, 'ips', index, 'helo')
                yield ctx.problem(
                    'helo-differs-from-ptr',
                    f'HELO name "{ip.helo}" of {ip.address} differs from its PTR name "{ip.ptr}"; receivers '
                    '(GMX, WEB.DE, T-Online among them) expect the HELO to match the reverse DNS',
                    path,
                    expected=f'"{ip.ptr}" (or leave "helo" out)',
                    value=ip.helo,
                )


CHECKS = (
    Check('ptr-outside-zones', 'error', 'PTR or host names outside the managed zones.', ptr_outside_zones),
    Check('allocated-ptr-name', 'error', 'PTR patterns that give host names.', allocated_ptr_names),
    Check('helo-differs-from-ptr', 'error', 'A HELO name that is not the PTR name.', helo_differs_from_ptr),
)
