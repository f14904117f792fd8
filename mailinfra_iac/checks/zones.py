"""Zones that a name server can load: NS records whose names resolve, with addresses where we publish them.

The rules are BIND's (``named-checkzone``) and Knot's (``kzonecheck``) for the NS of a zone: a nameserver
inside the zone needs an address record in it ("has no address records", "missing glue record") and must
not be a CNAME ("is a CNAME (illegal)"). A nameserver inside another zone we manage is held to the same
rule: there we publish its name too, and nobody could reach it without an address.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailinfra_agent.names import enclosing

from ..facts.records import host_name_types
from ..problems import Problem
from .base import Check, CheckContext

ADDRESS_TYPES = frozenset({'A', 'AAAA'})


def zone_nameservers(ctx: CheckContext) -> Iterator[Problem]:
    zones = ctx.deployment.dns.zones
    forward = {zone.name for zone in zones if not zone.name.endswith('.arpa')}
    types = host_name_types(ctx.deployment, ctx.facts)
    for index, zone in enumerate(zones):
        where = ('dns', 'zones', index)
        if zone.provider == 'zonefile' and not zone.nameservers:
            yield ctx.problem(
                'zone-nameservers',
                f'zone {zone.name} is served from its rendered zone file (provider "zonefile"), which needs NS '
                'records, but the zone lists no nameservers: BIND and Knot refuse a zone without NS',
                (*where, 'provider'),
                expected='"nameservers": the names of the servers that load the zone file',
                value=zone.provider,
            )
        for position, server in enumerate(zone.nameservers):
            owner = enclosing(server, forward)
            if owner is None:
                continue  # served by someone else; its address is theirs to publish
            found = types.get(server, set())
            inside = 'inside the zone' if owner == zone.name else f'inside zone {owner}, which we publish'
            if 'CNAME' in found:
                yield ctx.problem(
                    'zone-nameservers',
                    f'nameserver {server} of zone {zone.name} is a CNAME (a tracking hostname): an NS must name '
                    'a host with address records (RFC 2181 section 10.3), and BIND refuses the zone',
                    (*where, 'nameservers', position),
                    expected='a nameserver name that is not a CNAME',
                    value=server,
                )
            elif not found & ADDRESS_TYPES:
                yield ctx.problem(
                    'zone-nameservers',
                    f'nameserver {server} of zone {zone.name} is {inside} but has no address record: BIND '
                    'refuses the zone ("has no address records") and resolvers could not reach the server',
                    (*where, 'nameservers', position),
                    expected=f'its addresses under "nameserver_addresses" ({server}: [ADDRESS, ...]), or a host '
                    'of the deployment with that fqdn',
                    value=server,
                )
        for server in zone.nameserver_addresses:
            if server not in zone.nameservers:
                problem = f'is not among the nameservers of zone {zone.name}'
            elif enclosing(server, forward) is None:
                problem = 'is outside every zone we manage, so its address records cannot be published'
            else:
                continue
            yield ctx.problem(
                'zone-nameservers',
                f'"nameserver_addresses" gives addresses for {server}, which {problem}',
                (*where, 'nameserver_addresses', server),
                expected='addresses only for nameservers of the zone that lie inside a managed zone',
                value=server,
                at_key=True,
            )


CHECKS = (
    Check(
        'zone-nameservers',
        'error',
        'Zones name nameservers that BIND and Knot accept: present for "zonefile", with addresses where in-zone.',
        zone_nameservers,
    ),
)
