"""Stream isolation: every IP in one pool, every pool used by one stream, nothing dangling."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterator

from ..facts.hosts import reserved_ports
from ..problems import Problem
from .base import Check, CheckContext


def ip_in_multiple_pools(ctx: CheckContext) -> Iterator[Problem]:
    seen: dict[str, tuple[str, int]] = {}
    for pool_name, pool in ctx.deployment.pools.items():
        for index, ip in enumerate(pool.ips):
            first = seen.get(ip.address)
            if first is None:
                seen[ip.address] = (pool_name, index)
                continue
            where = 'twice in pool' if first[0] == pool_name else 'also in pool'
            yield ctx.problem(
                'ip-in-multiple-pools',
                f'address {ip.address} is {where} "{first[0]}": an IP shared between pools breaks isolation',
                ('pools', pool_name, 'ips', index, 'address'),
                expected='each address in exactly one pool',
                value=ip.address,
            )


def ip_in_multiple_streams(ctx: CheckContext) -> Iterator[Problem]:
    users: dict[str, list[str]] = defaultdict(list)
    for name, stream in ctx.deployment.streams.items():
        if stream.pool is not None:
            users[stream.pool].append(name)
    for name, stream in ctx.deployment.streams.items():
        if stream.pool is not None and users[stream.pool][0] != name:
            yield ctx.problem(
                'ip-in-multiple-streams',
                f'pool "{stream.pool}" is already used by stream "{users[stream.pool][0]}": its IPs would carry '
                'two streams, so a complaint spike in one would hurt the other',
                ('streams', name, 'pool'),
                expected='a pool of its own for every stream',
                value=stream.pool,
            )


def injection_port_conflict(ctx: CheckContext) -> Iterator[Problem]:
    first: dict[tuple[str, int], str] = {}
    for name, stream in ctx.deployment.streams.items():
        port = stream.injection.port
        for host in ctx.facts.pool_hosts.get(stream.pool or '', []):
            other = first.setdefault((host, port), name)
            if other != name:
                yield ctx.problem(
                    'injection-port-conflict',
                    f'stream "{name}" listens on port {port} of host "{host}", where stream "{other}" listens too',
                    ('streams', name, 'injection', 'port'),
                    expected='a port of its own for every stream on a host',
                    value=port,
                )
                break


def injection_port_reserved(ctx: CheckContext) -> Iterator[Problem]:
    for name, stream in ctx.deployment.streams.items():
        port = stream.injection.port
        for host in ctx.facts.pool_hosts.get(stream.pool or '', []):
            holder = reserved_ports(ctx.deployment, host, ctx.facts.host_mta.get(host)).get(port)
            if holder is not None:
                yield ctx.problem(
                    'injection-port-reserved',
                    f'stream "{name}" would listen on port {port} of host "{host}", which {holder} holds: '
                    'one of the two would not start',
                    ('streams', name, 'injection', 'port'),
                    expected='a port no service of the host uses (e.g. 2525-2599)',
                    value=port,
                )
                break


OPEN_RELAY_PREFIX = {4: 8, 6: 16}
"""A public injection network this wide or wider (prefix length at most this) lets much of the Internet relay."""


def injection_open_relay(ctx: CheckContext) -> Iterator[Problem]:
    """The listeners relay for their networks on every interface: a network like 0.0.0.0/0 is an open relay."""
    for name, stream in ctx.deployment.streams.items():
        for index, text in enumerate(stream.injection.networks):
            network = ipaddress.ip_network(text, strict=False)
            if network.prefixlen <= OPEN_RELAY_PREFIX[network.version] and not network.is_private:
                yield ctx.problem(
                    'injection-open-relay',
                    f'stream "{name}" would relay for {network} on port {stream.injection.port}: '
                    f"{network.num_addresses:,} addresses, most of them anyone's on the Internet (an open relay)",
                    ('streams', name, 'injection', 'networks', index),
                    expected="the applications' own networks (or sasl_users)",
                    value=text,
                )


def injection_network_ipv6(ctx: CheckContext) -> Iterator[Problem]:
    """A stream's Postfix instances listen on IPv4 only (``inet_protocols = ipv4``): an IPv6 network never connects.

    An error beside IPv4 networks too: Postfix reads ``2001:db8::/32`` in ``mynetworks`` as a lookup table (IPv6
    needs brackets there), so clients that no earlier network matches get 451 instead of a refusal, and every
    client does when the IPv6 network comes first (tests/checks/test_mta_values.py, on a real Postfix).
    """
    for name, stream in ctx.deployment.streams.items():
        hosts = ctx.facts.pool_hosts.get(stream.pool or '', [])
        postfix = [host for host in hosts if ctx.facts.host_mta.get(host) == 'postfix']
        if not postfix:
            continue
        for index, text in enumerate(stream.injection.networks):
            if ipaddress.ip_network(text, strict=False).version == 6:
                yield ctx.problem(
                    'injection-network-ipv6',
                    f'stream "{name}" allows {text}, but its Postfix instance on {", ".join(postfix)} listens on '
                    'IPv4 only (every sending address is IPv4): clients there could never inject, and Postfix would '
                    'read the network as a lookup table and answer other clients 451 (temporary lookup failure)',
                    ('streams', name, 'injection', 'networks', index),
                    expected='IPv4 networks of the applications',
                    value=text,
                )


def _same_login(users: list[str], realm: str) -> Iterator[tuple[int, str, str]]:
    """Each user that is an earlier one's login when a name without "@" gets ``realm``: (index, earlier, login)."""
    seen: dict[str, str] = {}
    for index, user in enumerate(users):
        login = user if '@' in user else f'{user}@{realm}'
        if login in seen:
            yield index, seen[login], login
        else:
            seen[login] = user


def sasl_user_same_login(ctx: CheckContext) -> Iterator[Problem]:
    """Two SASL users of a stream that are one sasldb entry on a Postfix host: saslpasswd2 gives a name without "@"
    the instance's host name as realm, so "app" and "app@<that name>" share one password (the last one set).
    Every such user is reported once, at the first host where it collides."""
    for name, stream in ctx.deployment.streams.items():
        fact, users = ctx.facts.streams.get(name), stream.injection.sasl_users
        if fact is None or not users:
            continue
        reported: set[int] = set()
        for host in ctx.facts.pool_hosts.get(stream.pool or '', []):
            realm = next((ip.helo for ip in fact.ips if ip.host == host), None)
            if not realm or ctx.facts.host_mta.get(host) != 'postfix':
                continue
            for index, earlier, login in _same_login(users, realm):
                if index in reported:
                    continue
                reported.add(index)
                yield ctx.problem(
                    'sasl-user-same-login',
                    f'stream "{name}" lists SASL users "{earlier}" and "{users[index]}", one login ({login}) in the '
                    f'sasldb of its Postfix instance on {host}: one password would replace the other',
                    ('streams', name, 'injection', 'sasl_users', index),
                    expected='one name per login',
                    value=users[index],
                )


def pool_without_ips(ctx: CheckContext) -> Iterator[Problem]:
    for name, pool in ctx.deployment.pools.items():
        if not pool.ips and pool.allocate is None:
            yield ctx.problem(
                'pool-without-ips',
                f'pool "{name}" has no addresses',
                ('pools', name),
                expected='"ips" or "allocate"',
            )


def stream_without_pool(ctx: CheckContext) -> Iterator[Problem]:
    pools = ctx.deployment.pools
    for name, stream in ctx.deployment.streams.items():
        if stream.pool is None:
            yield ctx.problem(
                'stream-without-pool',
                f'stream "{name}" has no IP pool',
                ('streams', name),
                expected=f'"pool" naming one of: {", ".join(pools)}',
            )
        elif stream.pool not in pools:
            yield ctx.problem(
                'stream-without-pool',
                f'stream "{name}" uses pool "{stream.pool}", which is not defined',
                ('streams', name, 'pool'),
                expected=f'one of: {", ".join(pools)}',
                value=stream.pool,
            )


def pool_placement(ctx: CheckContext) -> Iterator[Problem]:
    deployment = ctx.deployment
    for host_name, host in deployment.hosts.items():
        for index, pool_ref in enumerate(host.pools):
            if pool_ref not in deployment.pools:
                yield ctx.problem(
                    'pool-placement',
                    f'host "{host_name}" serves pool "{pool_ref}", which is not defined',
                    ('hosts', host_name, 'pools', index),
                    expected=f'one of: {", ".join(deployment.pools)}',
                    value=pool_ref,
                )
    for pool_name, pool in deployment.pools.items():
        hosts = ctx.facts.pool_hosts.get(pool_name, [])
        if not hosts:
            yield ctx.problem(
                'pool-placement',
                f'no host serves pool "{pool_name}"',
                ('pools', pool_name),
                expected='the pool listed under "pools" of at least one host',
            )
            continue
        for index, ip in enumerate(pool.ips):
            if ip.host is not None and ip.host not in hosts:
                yield ctx.problem(
                    'pool-placement',
                    f'address {ip.address} is placed on host "{ip.host}", which does not serve pool "{pool_name}"',
                    ('pools', pool_name, 'ips', index, 'host'),
                    expected=f'one of: {", ".join(hosts)}',
                    value=ip.host,
                )
            elif ip.host is None and len(hosts) > 1:
                yield ctx.problem(
                    'pool-placement',
                    f'address {ip.address} needs a "host": pool "{pool_name}" is served by {", ".join(hosts)}',
                    ('pools', pool_name, 'ips', index),
                    expected=f'"host" set to one of: {", ".join(hosts)}',
                )


def inbound_hosts(ctx: CheckContext) -> Iterator[Problem]:
    for index, host in enumerate(ctx.deployment.inbound.hosts):
        if host not in ctx.deployment.hosts:
            yield ctx.problem(
                'unknown-host',
                f'inbound host "{host}" is not defined',
                ('inbound', 'hosts', index),
                expected=f'one of: {", ".join(ctx.deployment.hosts)}',
                value=host,
            )


CHECKS = (
    Check('ip-in-multiple-pools', 'error', 'An address appears in two pools (or twice in one).', ip_in_multiple_pools),
    Check('ip-in-multiple-streams', 'error', 'Two streams send from the same pool.', ip_in_multiple_streams),
    Check(
        'injection-port-conflict',
        'error',
        'Two streams on one host with the same injection port.',
        injection_port_conflict,
    ),
    Check(
        'injection-port-reserved',
        'error',
        "A stream's injection port is one the MTA host's own services hold (SSH, exporters, the bounce MX).",
        injection_port_reserved,
    ),
    Check(
        'injection-network-ipv6',
        'error',
        'An IPv6 injection network of a stream on Postfix, which listens on IPv4 only.',
        injection_network_ipv6,
    ),
    Check(
        'injection-open-relay',
        'error',
        'An injection network that lets the Internet relay through a stream.',
        injection_open_relay,
    ),
    Check(
        'sasl-user-same-login',
        'error',
        'Two SASL users of a stream that are one login in its Postfix instance\'s sasldb ("app", "app@<its name>").',
        sasl_user_same_login,
    ),
    Check('pool-without-ips', 'error', 'A pool has neither addresses nor an allocation.', pool_without_ips),
    Check('stream-without-pool', 'error', 'A stream has no pool, or an undefined one.', stream_without_pool),
    Check('pool-placement', 'error', 'Pools and their addresses must sit on hosts that serve them.', pool_placement),
    Check('unknown-host', 'error', 'A reference to a host that is not defined.', inbound_hosts),
)
