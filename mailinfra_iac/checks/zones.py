"""Zones that a name server can load: NS records whose names resolve, with addresses where we publish them.

The rules are BIND's (``named-checkzone``) and Knot's (``kzonecheck``) for the NS of a zone: a nameserver
inside the zone needs an address record in it ("has no address records", "missing glue record") and must
not be a CNAME ("is a CNAME (illegal)"). A nameserver inside another zone we manage is held to the same
rule: there we publish its name too, and nobody could reach it without an address.

A managed zone inside another managed zone needs NS records for it at the parent (a delegation, RFC 1034
section 4.2.1), which the record list does not hold: without them resolvers get NXDOMAIN for the child's names
from the parent's servers. A "zonefile" parent whose nameservers serve the child too ("zonefile" or "rfc2136")
delegates to it in its zone file (``served_delegations``). An "rfc2136" parent gets its data from Terraform,
without the delegation: its servers answer for the child from the child's zone, but the parent's own data says
the child's names do not exist (what a secondary, a DNSSEC signer or BIND's check-mx go by), so it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator

from mailinfra_agent.names import enclosing

from ..facts.records import SELF_SERVED, host_name_types, served_delegations
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


def zone_delegation(ctx: CheckContext) -> Iterator[Problem]:
    zones = ctx.deployment.dns.zones
    by_name = {zone.name: zone for zone in zones}
    delegated = served_delegations(ctx.deployment)
    for index, zone in enumerate(zones):
        dot = zone.name.find('.')
        parent_name = enclosing(zone.name[dot + 1 :], by_name) if dot >= 0 else None
        if parent_name is None or zone.name in delegated.get(parent_name, {}):
            continue  # not inside another managed zone, or delegated in the parent's zone file
        if zone.nameservers:
            records = ', '.join(f'{zone.name}. NS {server}.' for server in zone.nameservers)
            inside = [server for server in zone.nameservers if enclosing(server, (zone.name,))]
            if inside:
                records += f' with glue (their A/AAAA) for {", ".join(inside)}'
        else:
            servers = f'{zone.provider} assigns to it' if zone.provider not in SELF_SERVED else 'that serve it'
            records = f'{zone.name}. NS records naming the nameservers {servers}'
        parent = by_name[parent_name]
        same_servers = bool(zone.nameservers) and set(zone.nameservers) == set(parent.nameservers)
        if same_servers and {zone.provider, parent.provider} <= SELF_SERVED:
            effect = (
                f'its servers answer for {zone.name} from that zone, but the data of {parent_name} (sent with RFC '
                f'2136) says the names in {zone.name} do not exist, and secondaries or DNSSEC signing of '
                f'{parent_name} go by it'
            )
        else:
            effect = f'resolvers asking the servers of {parent_name} get NXDOMAIN for every name in {zone.name}'
        yield ctx.problem(
            'zone-delegation',
            f'zone {zone.name} lies inside zone {parent_name}, whose records we publish without a delegation to it '
            f'(no NS records for {zone.name}): {effect}',
            (*('dns', 'zones', index), 'name'),
            severity='warning',
            expected=f'at the parent zone {parent_name}: {records}; or a "zonefile" parent with the same '
            'nameservers (its zone file delegates to the child)',
            value=zone.name,
        )


CHECKS = (
    Check(
        'zone-nameservers',
        'error',
        'Zones name nameservers that BIND and Knot accept: present for "zonefile", with addresses where in-zone.',
        zone_nameservers,
    ),
    Check(
        'zone-delegation',
        'warning',
        'A managed zone inside another managed zone is delegated there: NS records the user adds at the parent.',
        zone_delegation,
    ),
)
