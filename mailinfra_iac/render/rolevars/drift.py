"""``contract.dns_expectations`` of a monitoring host: the public records ``mailinfra-agent dns-drift`` compares.

Built from the same record list every DNS renderer uses (``facts.records``), with allocated addresses filled in
where Terraform outputs are known; a record that still names an unknown address is left out, since nothing
could match it. Public records only: DKIM TXT records carry the public key, never the private one.
"""

from __future__ import annotations

import ipaddress

from mailinfra_agent import contract as c

from ...dkim.source import DkimTxt
from ...facts.records import RecordSet, derive_records
from ..base import RenderContext
from ..dns_records import record_set

CHECK_OF_PURPOSE = {
    'a': 'a',
    'nameserver': 'a',
    'ptr': 'ptr',
    'spf': 'spf',
    'dkim': 'dkim',
    'dmarc': 'dmarc',
    'dmarc-authorisation': 'dmarc',
    'mx': 'mx',
    'mta-sts': 'mta_sts',
    'tls-rpt': 'tls_rpt',
}
"""Record purpose (``facts.records.Record.purpose``) -> the ``check`` label of ``mailinfra_dns_record_ok``."""

_NAME_TYPES = frozenset({'CNAME', 'NS', 'PTR'})


class _WithoutDkim:
    """A DKIM source with no keys and nothing missing: the expectations then leave DKIM out."""

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        return [], []


def _value(rtype: str, value: str) -> str:
    """A value as ``mailinfra_agent.dns`` reports it (names lower case, without the trailing dot)."""
    if rtype in _NAME_TYPES:
        return value.rstrip('.').lower()
    if rtype == 'MX':
        preference, _, host = value.partition(' ')
        return f'{preference} {host.rstrip(".").lower()}'
    return value


def _records(context: RenderContext) -> RecordSet:
    if context.dkim is not None:
        return record_set(context)
    return derive_records(context.deployment, context.facts, _WithoutDkim()).resolve(context.addresses)


def dns_expectations(context: RenderContext) -> tuple[c.DnsExpectation, ...]:
    """Every published record set with known values, and the PTRs set through the IP provider, sorted."""
    found: dict[tuple[str, str], c.DnsExpectation] = {}
    records = _records(context)
    for record in records.records:
        if record.placeholders():
            continue
        name = record.fqdn.lower()
        found[(name, record.type)] = c.DnsExpectation(
            name=name,
            type=record.type,
            values=tuple(sorted(_value(record.type, value) for value in record.values)),
            check=CHECK_OF_PURPOSE.get(record.purpose, 'other'),
        )
    for ptr in records.provider_ptrs:
        if ptr.address is None:
            continue
        name = ipaddress.ip_address(ptr.address).reverse_pointer
        found[(name, 'PTR')] = c.DnsExpectation(name, 'PTR', (_value('PTR', ptr.ptr),), 'ptr')
    return tuple(found[key] for key in sorted(found))
