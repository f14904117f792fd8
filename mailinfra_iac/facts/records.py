"""One ordered list of DNS records derived from the model; every DNS renderer starts from it.

Values are logical (a TXT value is one unsplit string; each provider chunks it its own way).
An address that Terraform allocates is written as the placeholder ``<ip:ID>`` (``<host:NAME>`` for a
VM's own address) until the renderer resolves it from Terraform outputs or a Terraform expression.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from mailinfra_agent.names import enclosing

from ..dkim.source import DkimSource, DkimTxt, MissingDkimKeys
from ..model import Deployment, SendingDomain
from . import Facts
from .hosts import inbound_hosts
from .naming import ed25519_selector, organisation

PLACEHOLDER = re.compile(r'<(ip|host):([a-z0-9_]+)>')
MX_PREFERENCE = 10
SELF_SERVED = frozenset({'zonefile', 'rfc2136'})
"""Providers whose zones the spec's own nameservers load (from the zone file, or updated with RFC 2136)."""


@dataclass(frozen=True, order=True)
class Record:
    """A record set: every value of one name and type."""

    zone: str
    name: str
    """Relative to the zone; ``@`` for the apex."""
    type: str
    values: tuple[str, ...]
    ttl: int = field(compare=False)
    purpose: str = field(compare=False)
    """Why it exists: a, ptr, nameserver, spf, dkim, dmarc, dmarc-authorisation, mx, mta-sts, tls-rpt, tracking."""

    @property
    def fqdn(self) -> str:
        return self.zone if self.name == '@' else f'{self.name}.{self.zone}'

    @property
    def key(self) -> str:
        """A stable id: ``<name>/<type>`` inside the zone."""
        return f'{self.name}/{self.type}'

    def placeholders(self) -> set[str]:
        return {match.group(0) for value in self.values if '<' in value for match in PLACEHOLDER.finditer(value)}


@dataclass(frozen=True)
class ProviderPtr:
    """A PTR set through the IP provider's reverse-DNS API (not in a zone we serve)."""

    ip_id: str
    address: str | None
    ptr: str
    provider: str | None
    host: str | None


@dataclass(frozen=True)
class RecordSet:
    """All records of a deployment, and the PTRs that only the IP provider can set."""

    records: tuple[Record, ...]
    provider_ptrs: tuple[ProviderPtr, ...]
    mta_sts_policies: dict[str, str]
    """Receiving domain -> MTA-STS policy text (served at https://mta-sts.<domain>/.well-known/mta-sts.txt)."""

    def by_zone(self) -> dict[str, list[Record]]:
        zones: dict[str, list[Record]] = defaultdict(list)
        for record in self.records:
            zones[record.zone].append(record)
        return dict(zones)

    def resolve(self, addresses: dict[str, str]) -> RecordSet:
        """Replace ``<ip:ID>``/``<host:NAME>`` placeholders with known addresses (others stay)."""
        if not addresses:
            return self

        def fill(value: str) -> str:
            if '<' not in value:  # no placeholder (most values)
                return value
            return PLACEHOLDER.sub(lambda m: addresses.get(_address_key(m), m.group(0)), value)

        records = tuple(
            Record(r.zone, r.name, r.type, tuple(fill(v) for v in r.values), r.ttl, r.purpose) for r in self.records
        )
        ptrs = tuple(
            ProviderPtr(p.ip_id, p.address or addresses.get(p.ip_id), p.ptr, p.provider, p.host)
            for p in self.provider_ptrs
        )
        return RecordSet(records, ptrs, self.mta_sts_policies)

    def unresolved(self) -> list[str]:
        return sorted({placeholder for record in self.records for placeholder in record.placeholders()})


def _address_key(match: re.Match[str]) -> str:
    return match.group(2) if match.group(1) == 'ip' else f'host_{match.group(2)}'


class _Zones:
    def __init__(self, deployment: Deployment) -> None:
        names = {zone.name for zone in deployment.dns.zones}
        self.forward = {name for name in names if not name.endswith('.arpa')}
        self.reverse = {name for name in names if name.endswith('.in-addr.arpa')}

    def split(self, fqdn: str) -> tuple[str, str] | None:
        zone = enclosing(fqdn, self.forward)
        if zone is None:
            return None
        return zone, '@' if fqdn == zone else fqdn[: -len(zone) - 1]

    def reverse_of(self, address: str) -> tuple[str, str] | None:
        if not self.reverse:
            return None
        pointer = ipaddress.ip_address(address).reverse_pointer
        zone = enclosing(pointer, self.reverse)
        if zone is None or zone == pointer:
            return None
        return zone, pointer[: -len(zone) - 1]


def served_delegations(deployment: Deployment) -> dict[str, dict[str, tuple[str, ...]]]:
    """Parent zone -> {child zone: its nameservers} for each managed zone directly inside a "zonefile" zone that
    the same nameservers serve (the child "zonefile" or "rfc2136"): the parent's zone file delegates to the child
    (NS at the child's name), so the parent's own data no longer says the child's names do not exist (BIND refuses
    an MX of the parent that names a host of the child otherwise). An "rfc2136" parent's data is what Terraform
    sends, which holds no such NS: ``zone-delegation`` asks for them there."""
    by_name = {zone.name: zone for zone in deployment.dns.zones}
    found: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)
    for zone in deployment.dns.zones:
        dot = zone.name.find('.')
        parent_name = enclosing(zone.name[dot + 1 :], by_name) if dot >= 0 else None
        if parent_name is None:
            continue
        parent = by_name[parent_name]
        same_servers = bool(zone.nameservers) and set(zone.nameservers) == set(parent.nameservers)
        if same_servers and parent.provider == 'zonefile' and zone.provider in SELF_SERVED:
            found[parent_name][zone.name] = tuple(zone.nameservers)
    return dict(found)


def _ip4_terms(addresses: list[str]) -> list[str]:
    known = [ipaddress.IPv4Network(a) for a in addresses if not PLACEHOLDER.fullmatch(a)]
    terms = [
        f'ip4:{network.network_address}' if network.prefixlen == 32 else f'ip4:{network}'
        for network in ipaddress.collapse_addresses(known)
    ]
    return terms + [f'ip4:{a}' for a in sorted(a for a in addresses if PLACEHOLDER.fullmatch(a))]


def spf_value(domain: SendingDomain, ip4_terms: list[str], *, with_policy: bool = True) -> str:
    """``v=spf1`` with the streams' IPs first (no lookups), then the declared mechanisms and includes."""
    terms = ['v=spf1', *ip4_terms]
    if with_policy:
        terms += domain.spf.mechanisms
        terms += [f'include:{include.domain}' for include in domain.spf.includes]
    terms.append(domain.spf.all)
    return ' '.join(terms)


def mailto(address: str) -> str:
    """The address as a mailto: URI, percent-encoded as RFC 6068 section 2 asks ("%", "&", ";", "=", "/", "?",
    "#", "[", "]" and what a URI cannot hold) and also "!" and ",", which delimit DMARC's URI list (RFC 7489 6.2)."""
    return 'mailto:' + quote(address, safe="@$'()*+")


def dmarc_value(domain: SendingDomain) -> str:
    dmarc = domain.dmarc
    tags = [f'v=DMARC1; p={dmarc.p}']
    if dmarc.sp is not None:
        tags.append(f'sp={dmarc.sp}')
    if dmarc.rua:
        tags.append('rua=' + ','.join(mailto(address) for address in dmarc.rua))
    if dmarc.ruf:
        tags.append('ruf=' + ','.join(mailto(address) for address in dmarc.ruf))
    tags += [f'adkim={dmarc.adkim}', f'aspf={dmarc.aspf}']
    if dmarc.ruf:
        tags.append(f'fo={dmarc.fo}')
    return '; '.join(tags)


def mta_sts_policy(mode: str, mx_hosts: list[str], max_age: int) -> str:
    lines = ['version: STSv1', f'mode: {mode}', *(f'mx: {host}' for host in mx_hosts), f'max_age: {max_age}']
    return '\r\n'.join(lines) + '\r\n'


def spf_records(deployment: Deployment, facts: Facts) -> Iterator[tuple[int, str, str]]:
    """(index of the sending domain, name, value) of every SPF record: at the sending domain and its return path."""
    terms = _sending_terms(facts)
    for index, domain in enumerate(deployment.sending_domains):
        ips = terms.get(domain.domain, [])
        yield index, domain.domain, spf_value(domain, ips)
        yield index, domain.bounce_domain, spf_value(domain, ips, with_policy=False)


def _sending_terms(facts: Facts) -> dict[str, list[str]]:
    """Sending domain -> SPF ip4: terms for the addresses of every stream allowed to use it."""
    streams_of: dict[str, list[str]] = defaultdict(list)
    for stream in facts.streams.values():
        for domain in stream.domains:
            streams_of[domain].append(stream.name)
    cache: dict[tuple[str, ...], list[str]] = {}
    result = {}
    for domain, names in streams_of.items():
        key = tuple(names)
        if key not in cache:
            cache[key] = _ip4_terms([ip.address or f'<ip:{ip.id}>' for name in names for ip in facts.streams[name].ips])
        result[domain] = cache[key]
    return result


class _Builder:
    """Collects record sets by (zone, name, type); names outside the managed zones are left to the checks."""

    def __init__(self, deployment: Deployment) -> None:
        self.zones = _Zones(deployment)
        self.ttl = deployment.dns.ttl
        self.sets: dict[tuple[str, str, str], tuple[list[str], str]] = {}

    def add(self, fqdn: str, rtype: str, value: str, purpose: str) -> None:
        where = self.zones.split(fqdn)
        if where is not None:
            self.add_in(where[0], where[1], rtype, value, purpose)

    def add_in(self, zone: str, name: str, rtype: str, value: str, purpose: str) -> None:
        values, _ = self.sets.setdefault((zone, name, rtype), ([], purpose))
        if value not in values:
            values.append(value)

    def records(self) -> tuple[Record, ...]:
        # Record's order is (zone, name, type, values) and (zone, name, type) is unique here: sorting the keys (in C)
        # gives the same order as sorting the records (a Python __lt__ per comparison, n log n of them).
        records = []
        for key in sorted(self.sets):
            zone, name, rtype = key
            values, purpose = self.sets[key]
            records.append(
                Record(zone, name, rtype, tuple(sorted(values) if rtype == 'MX' else values), self.ttl, purpose)
            )
        return tuple(records)


def _address_records(builder: _Builder, deployment: Deployment, facts: Facts) -> list[ProviderPtr]:
    """A for every sending name and host; PTR in our reverse zones, the rest through the IP provider."""
    ptrs = []
    for ip in facts.ips:
        builder.add(ip.ptr, 'A', ip.address or f'<ip:{ip.id}>', 'a')
        reverse = builder.zones.reverse_of(ip.address) if ip.address else None
        if reverse is not None:
            builder.add_in(reverse[0], reverse[1], 'PTR', ip.ptr + '.', 'ptr')
        else:
            ptrs.append(ProviderPtr(ip.id, ip.address, ip.ptr, ip.provider, ip.host))
    for name, host in deployment.hosts.items():
        builder.add(host.fqdn, 'A', host.address or f'<host:{name}>', 'a')
    return ptrs


def _nameserver_records(builder: _Builder, deployment: Deployment) -> None:
    """A/AAAA for the nameservers whose addresses the spec gives (in-zone nameservers need them to load)."""
    for zone in deployment.dns.zones:
        for name, addresses in zone.nameserver_addresses.items():
            for address in addresses:
                rtype = 'A' if ipaddress.ip_address(address).version == 4 else 'AAAA'
                builder.add(name, rtype, address, 'nameserver')


def _glue_records(builder: _Builder, deployment: Deployment) -> None:
    """A/AAAA of a nameserver inside a managed child zone also in each zone whose NS names it (glue): BIND
    refuses a zone with an in-zone NS name without address records, even below a zone cut."""
    for zone in deployment.dns.zones:
        if zone.name not in builder.zones.forward:
            continue
        for server in zone.nameservers:
            owner = builder.zones.split(server)
            if owner is None or owner[0] == zone.name or enclosing(server, (zone.name,)) is None:
                continue  # outside every managed zone, already in this zone, or outside this zone
            name = server[: -len(zone.name) - 1]
            for rtype in ('A', 'AAAA'):
                found = builder.sets.get((owner[0], owner[1], rtype))
                if found is not None:
                    for value in found[0]:
                        builder.add_in(zone.name, name, rtype, value, found[1])


def _tracking_records(builder: _Builder, deployment: Deployment) -> None:
    for domain in deployment.sending_domains:
        if domain.tracking is not None:
            builder.add(domain.tracking.hostname, 'CNAME', domain.tracking.target + '.', 'tracking')


def _domain_records(
    builder: _Builder, deployment: Deployment, facts: Facts, dkim: DkimSource, *, spf_addresses: bool = True
) -> list[tuple[str, str, str]]:
    """SPF, DKIM, DMARC (and report authorisations) and tracking for every sending domain; returns missing keys.

    Without ``spf_addresses`` the SPF values lack the streams' ip4: terms (the names are the same, and cheaper).
    """
    terms = _sending_terms(facts) if spf_addresses else {}
    client_domains = set(deployment.client.domains)
    missing: list[tuple[str, str, str]] = []
    for domain in deployment.sending_domains:
        ips = terms.get(domain.domain, [])
        builder.add(domain.domain, 'TXT', spf_value(domain, ips), 'spf')
        builder.add(domain.bounce_domain, 'TXT', spf_value(domain, ips, with_policy=False), 'spf')
        wanted = [(selector, 'rsa') for selector in domain.dkim.selectors]
        if domain.dkim.algorithm == 'rsa+ed25519':
            wanted += [(ed25519_selector(selector), 'ed25519') for selector in domain.dkim.selectors]
        found, absent = dkim.records(domain.domain, sorted(wanted))
        missing += [(domain.domain, selector, algorithm) for selector, algorithm in absent]
        for txt in found:
            builder.add(f'{txt.selector}._domainkey.{domain.domain}', 'TXT', txt.value, 'dkim')
        builder.add(f'_dmarc.{domain.domain}', 'TXT', dmarc_value(domain), 'dmarc')
        own = organisation(domain.domain, client_domains)
        for address in (*domain.dmarc.rua, *domain.dmarc.ruf):
            target = address.rpartition('@')[2]
            if organisation(target, client_domains) != own:  # RFC 7489 section 7.1
                builder.add(f'{domain.domain}._report._dmarc.{target}', 'TXT', 'v=DMARC1', 'dmarc-authorisation')
    return missing


def _receiving_records(builder: _Builder, deployment: Deployment) -> dict[str, str]:
    """MX, MTA-STS and TLS-RPT for the return-path and feedback-loop domains; returns the MTA-STS policies."""
    inbound = [name for name in inbound_hosts(deployment) if name in deployment.hosts]
    mx_hosts = sorted(deployment.hosts[name].fqdn for name in inbound)
    receiving = {domain.bounce_domain for domain in deployment.sending_domains}
    if deployment.inbound.fbl_address:
        receiving.add(deployment.inbound.fbl_address.rpartition('@')[2])
    tls_rua = deployment.inbound.tls_rpt.rua or [deployment.client.postmaster]
    mta_sts = deployment.inbound.mta_sts
    policies = {}
    policy = mta_sts_policy(mta_sts.mode, mx_hosts, mta_sts.max_age)
    policy_id = hashlib.sha256(policy.encode()).hexdigest()[:20]
    for name in sorted(receiving):
        for mx in mx_hosts:
            builder.add(name, 'MX', f'{MX_PREFERENCE} {mx}.', 'mx')
        policies[name] = policy
        builder.add(f'_mta-sts.{name}', 'TXT', f'v=STSv1; id={policy_id}', 'mta-sts')
        for host_name in inbound:
            address = deployment.hosts[host_name].address or f'<host:{host_name}>'
            builder.add(f'mta-sts.{name}', 'A', address, 'mta-sts')
        builder.add(f'_smtp._tls.{name}', 'TXT', 'v=TLSRPTv1; rua=' + ','.join(mailto(a) for a in tls_rua), 'tls-rpt')
    return policies


def _unsubscribe_records(builder: _Builder, deployment: Deployment) -> None:
    """A for the one-click unsubscribe host name: the inbound hosts, which serve the endpoint."""
    unsubscribe = deployment.feedback.unsubscribe
    if unsubscribe is not None:
        for name in inbound_hosts(deployment):
            if name in deployment.hosts:
                address = deployment.hosts[name].address or f'<host:{name}>'
                builder.add(unsubscribe.hostname, 'A', address, 'unsubscribe')


def derive_records(deployment: Deployment, facts: Facts, dkim: DkimSource) -> RecordSet:
    """Every record the deployment publishes, sorted by zone, name and type."""
    builder = _Builder(deployment)
    ptrs = _address_records(builder, deployment, facts)
    _nameserver_records(builder, deployment)
    missing = _domain_records(builder, deployment, facts, dkim)
    _tracking_records(builder, deployment)
    policies = _receiving_records(builder, deployment)
    _unsubscribe_records(builder, deployment)
    _glue_records(builder, deployment)
    if missing:
        raise MissingDkimKeys(sorted(missing), 'the DKIM key source')
    return RecordSet(builder.records(), tuple(ptrs), policies)


def host_name_types(deployment: Deployment, facts: Facts) -> dict[str, set[str]]:
    """Name -> record types of the names that can hold hosts (A, AAAA, CNAME), without needing DKIM keys."""
    builder = _Builder(deployment)
    _address_records(builder, deployment, facts)
    _nameserver_records(builder, deployment)
    _tracking_records(builder, deployment)
    _receiving_records(builder, deployment)
    _unsubscribe_records(builder, deployment)
    types: dict[str, set[str]] = defaultdict(set)
    for zone, name, rtype in builder.sets:  # no Record objects, no sort: only the names' types are needed
        types[zone if name == '@' else f'{name}.{zone}'].add(rtype)
    return dict(types)


class _AnyKey:
    """A DKIM source with a key for every selector: the names of the DKIM records without reading keys."""

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        return [DkimTxt(selector, algorithm, '') for selector, algorithm in wanted], []


class _At(_Builder):
    """Keeps only the record sets at the given names (forward names: no PTR is looked at)."""

    def __init__(self, deployment: Deployment, names: Collection[str]) -> None:
        super().__init__(deployment)
        self.names = names
        self.zones.reverse = set()

    def add(self, fqdn: str, rtype: str, value: str, purpose: str) -> None:
        if fqdn in self.names:
            super().add(fqdn, rtype, value, purpose)


def types_at(deployment: Deployment, facts: Facts, names: Collection[str]) -> dict[str, set[str]]:
    """Name -> types of the records the deployment publishes at each of ``names`` (DKIM included, no keys read)."""
    builder = _At(deployment, names)
    _address_records(builder, deployment, facts)
    _nameserver_records(builder, deployment)
    _domain_records(builder, deployment, facts, _AnyKey(), spf_addresses=False)
    _tracking_records(builder, deployment)
    _receiving_records(builder, deployment)
    _unsubscribe_records(builder, deployment)
    types: dict[str, set[str]] = defaultdict(set)
    for zone, name, rtype in builder.sets:
        types[zone if name == '@' else f'{name}.{zone}'].add(rtype)
    return dict(types)


def iter_txt_lengths(records: RecordSet) -> Iterator[tuple[Record, int]]:
    for record in records.records:
        if record.type == 'TXT':
            for value in record.values:
                yield record, len(value.encode())
