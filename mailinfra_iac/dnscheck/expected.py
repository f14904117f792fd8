"""What the DNS should say, taken from the same record set and facts the renderers use.

Nothing here derives a record: addresses, PTR and HELO names come from ``facts.ips``, the
addresses each domain sends from from ``facts.streams``, DKIM keys from the key source exactly as
:func:`~mailinfra_iac.facts.records.derive_records` received them, MX hosts, MTA-STS ids and TLS-RPT values
from the derived :class:`~mailinfra_iac.facts.records.RecordSet` (and, for a receiving domain outside the
managed zones, from the MTA-STS policy the record set carries).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..dkim import RecordFormatError, record_key
from ..dkim.keys import KeyAlgorithm
from ..dkim.source import DkimSource, DkimTxt
from ..facts import Facts, IpFact
from ..facts.naming import organisation
from ..facts.records import Record, RecordSet, derive_records
from ..model import Deployment, SpfInclude
from .addresses import ip_address


class RecordingDkim:
    """Wraps a key source: remembers what :func:`derive_records` asked for and got, and never refuses.

    A selector without a local key is not an error here: the DNS check still looks at what is served
    and reports that it has nothing to compare with.
    """

    def __init__(self, source: DkimSource) -> None:
        self.source = source
        self.wanted: dict[str, list[tuple[str, str]]] = {}
        self.found: dict[tuple[str, str], DkimTxt] = {}

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        found, _missing = self.source.records(domain, wanted)
        self.wanted[domain] = list(wanted)
        for txt in found:
            self.found[(domain, txt.selector)] = txt
        return found, []


@dataclass(frozen=True)
class IpSubject:
    ip: IpFact
    address: str | None
    """From the spec or ``terraform output``; None while Terraform has not allocated it."""


@dataclass(frozen=True)
class SpfSubject:
    name: str
    roles: tuple[str, ...]
    """``From domain of X`` / ``return-path of X``."""
    addresses: tuple[str, ...]
    unknown: tuple[str, ...]
    """Ids of sending IPs whose address is not known yet."""
    declared: dict[str, SpfInclude] = field(default_factory=dict)
    """Includes the spec declares for the domain, with the lookups they are said to cost."""
    rendered: str | None = None
    """The SPF record the renderers publish at ``name``; None when the name is in no managed zone."""
    address_values: frozenset[tuple[int, int]] | None = field(init=False, repr=False, compare=False)
    """``addresses`` as (IP version, integer), parsed once; None if one does not parse (judged one by one then)."""

    def __post_init__(self) -> None:
        try:
            values: frozenset[tuple[int, int]] | None = frozenset(ip_address(text) for text in self.addresses)
        except ValueError:
            values = None
        object.__setattr__(self, 'address_values', values)


@dataclass(frozen=True)
class DkimSubject:
    domain: str
    selector: str
    algorithm: str
    expected: str | None
    """The key record the key source holds; None when it has no key for the selector."""
    expected_key: tuple[KeyAlgorithm, bytes] | str | None = field(init=False, repr=False, compare=False)
    """``expected`` decoded once (:func:`~mailinfra_iac.dkim.record_key`), or why it cannot be."""

    def __post_init__(self) -> None:
        key: tuple[KeyAlgorithm, bytes] | str | None = None
        if self.expected is not None:
            try:
                key = record_key(self.expected)
            except RecordFormatError as error:
                key = str(error)
        object.__setattr__(self, 'expected_key', key)

    @property
    def fqdn(self) -> str:
        return f'{self.selector}._domainkey.{self.domain}'


@dataclass(frozen=True)
class DmarcSubject:
    domain: str
    policy: str
    rua: tuple[str, ...]
    rendered: str | None = None
    """The DMARC record the renderers publish; None when ``_dmarc.<domain>`` is in no managed zone."""

    @property
    def fqdn(self) -> str:
        return f'_dmarc.{self.domain}'


@dataclass(frozen=True)
class ReceivingSubject:
    name: str
    mx_hosts: tuple[str, ...]
    mta_sts: str | None
    """The rendered ``_mta-sts`` TXT value, when the name is in a managed zone."""
    tls_rpt: str | None
    mta_sts_id: str | None = field(init=False, repr=False, compare=False)
    """The ``id=`` of ``mta_sts``, read once."""

    def __post_init__(self) -> None:
        found = None
        if self.mta_sts:
            for part in self.mta_sts.split(';'):  # as receiving._tags reads it: the first id= wins
                name, sep, value = part.partition('=')
                if sep and name.strip().lower() == 'id':
                    found = value.strip()
                    break
        object.__setattr__(self, 'mta_sts_id', found)


@dataclass(frozen=True)
class Expectations:
    zones: tuple[str, ...]
    client_domains: tuple[str, ...]
    ips: tuple[IpSubject, ...]
    spf: tuple[SpfSubject, ...]
    dkim: tuple[DkimSubject, ...]
    dmarc: tuple[DmarcSubject, ...]
    receiving: tuple[ReceivingSubject, ...]
    records: RecordSet
    _organisations: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Names already looked up by :meth:`organisation` (the same domains come back for every check)."""

    def organisation(self, name: str) -> str:
        found = self._organisations.get(name)
        if found is None:
            if len(self._organisations) > 65536:  # bounded: names come from served records too
                self._organisations.clear()
            found = self._organisations[name] = organisation(name, frozenset(self.client_domains))
        return found


def _index(records: RecordSet) -> dict[tuple[str, str], Record]:
    return {(record.fqdn, record.type): record for record in records.records}


def _rendered(index: dict[tuple[str, str], Record], name: str, prefix: str) -> str | None:
    record = index.get((name, 'TXT'))
    found = [value for value in record.values if value[: len(prefix)].lower() == prefix] if record else []
    return found[0] if len(found) == 1 else None


def _spf_subjects(
    deployment: Deployment, facts: Facts, addresses: dict[str, str], index: dict[tuple[str, str], Record]
) -> tuple[SpfSubject, ...]:
    ips_of: dict[str, list[IpFact]] = defaultdict(list)
    for stream in facts.streams.values():  # the same fact read as dns.records' SPF values
        for used in stream.domains:
            ips_of[used] += stream.ips
    names: dict[str, tuple[list[str], list[IpFact], dict[str, SpfInclude]]] = {}
    for domain in deployment.sending_domains:
        declared = {include.domain: include for include in domain.spf.includes}
        for name, role in (
            (domain.domain, f'From domain of {domain.domain}'),
            (domain.bounce_domain, f'return-path of {domain.domain}'),
        ):
            roles, ips, includes = names.setdefault(name, ([], [], {}))
            roles.append(role)
            ips += [ip for ip in ips_of.get(domain.domain, []) if ip not in ips]
            includes.update(declared)
    subjects = []
    for name, (roles, ips, includes) in names.items():
        known = [ip.address or addresses.get(ip.id) for ip in ips]
        subjects.append(
            SpfSubject(
                name,
                tuple(roles),
                tuple(dict.fromkeys(address for address in known if address)),
                tuple(ip.id for ip, address in zip(ips, known, strict=True) if not address),
                includes,
                _rendered(index, name, 'v=spf1'),
            )
        )
    return tuple(subjects)


def _receiving(records: RecordSet, index: dict[tuple[str, str], Record]) -> tuple[ReceivingSubject, ...]:
    subjects = []
    for name, policy in sorted(records.mta_sts_policies.items()):
        mx = index.get((name, 'MX'))
        if mx is not None:
            hosts = tuple(sorted(value.split()[-1].rstrip('.').lower() for value in mx.values))
        else:
            hosts = tuple(sorted(line[3:].strip().lower() for line in policy.splitlines() if line.startswith('mx:')))
        sts = index.get((f'_mta-sts.{name}', 'TXT'))
        rpt = index.get((f'_smtp._tls.{name}', 'TXT'))
        subjects.append(ReceivingSubject(name, hosts, sts.values[0] if sts else None, rpt.values[0] if rpt else None))
    return tuple(subjects)


def expectations(
    deployment: Deployment, facts: Facts, dkim: DkimSource, addresses: dict[str, str] | None = None
) -> Expectations:
    """Everything the DNS checks compare with, from ``derive_records`` and the facts."""
    addresses = addresses or {}
    recording = RecordingDkim(dkim)
    records = derive_records(deployment, facts, recording).resolve(addresses)
    index = _index(records)
    ips = tuple(IpSubject(ip, ip.address or addresses.get(ip.id)) for ip in facts.ips)
    dkim_subjects = tuple(
        DkimSubject(
            domain.domain,
            selector,
            algorithm,
            txt.value if (txt := recording.found.get((domain.domain, selector))) is not None else None,
        )
        for domain in deployment.sending_domains
        for selector, algorithm in recording.wanted.get(domain.domain, [])
    )
    dmarc = tuple(
        DmarcSubject(
            domain.domain,
            domain.dmarc.p,
            tuple(domain.dmarc.rua),
            _rendered(index, f'_dmarc.{domain.domain}', 'v=dmarc1'),
        )
        for domain in deployment.sending_domains
    )
    return Expectations(
        zones=tuple(zone.name for zone in deployment.dns.zones),
        client_domains=tuple(deployment.client.domains),
        ips=ips,
        spf=_spf_subjects(deployment, facts, addresses, index),
        dkim=dkim_subjects,
        dmarc=dmarc,
        receiving=_receiving(records, index),
        records=records,
    )
