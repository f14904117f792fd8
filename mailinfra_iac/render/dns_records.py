"""DNS outputs: the record list as JSON, BIND zone files, MTA-STS policies and PTR requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..dns import RecordSet, derive_records
from ..dns.zonefile import zone_text
from .base import GENERATED_MARK, OutputFile, RenderContext
from .serialise import to_json


def record_set(context: RenderContext) -> RecordSet:
    """The deployment's records with every address Terraform already reported filled in."""
    records = derive_records(context.deployment, context.facts, context.dkim_source())
    return records.resolve(context.addresses)


def records_data(records: RecordSet) -> dict[str, Any]:
    return {
        'records': [
            {
                'zone': r.zone,
                'name': r.name,
                'fqdn': r.fqdn,
                'type': r.type,
                'ttl': r.ttl,
                'purpose': r.purpose,
                'values': list(r.values),
            }
            for r in records.records
        ],
        'provider_ptrs': [
            {'ip_id': p.ip_id, 'address': p.address, 'ptr': p.ptr, 'provider': p.provider, 'host': p.host}
            for p in records.provider_ptrs
        ],
        'unresolved': records.unresolved(),
    }


class DnsRecordsRenderer:
    """Writes dns/records.json, dns/zones/<zone>.zone, dns/mta-sts/<domain>.txt and dns/ptr-requests.txt."""

    name = 'dns'
    description = 'DNS record list, BIND zone files, MTA-STS policies and reverse-DNS requests.'

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        records = record_set(context)
        yield OutputFile('dns/records.json', to_json(records_data(records)))
        nameservers = {zone.name: list(zone.nameservers) for zone in context.deployment.dns.zones}
        pending = []
        for zone, zone_records in sorted(records.by_zone().items()):
            if any(record.placeholders() for record in zone_records):
                pending.append(zone)
                continue
            text = zone_text(zone, zone_records, nameservers.get(zone, []), context.deployment.dns.ttl)
            yield OutputFile(f'dns/zones/{zone}.zone', text.encode())
        if pending:
            lines = [
                f'# {GENERATED_MARK}',
                '# Zones not exported: addresses are allocated by Terraform.',
                '# Render again with --terraform-output once `terraform apply` has run.',
                *pending,
            ]
            yield OutputFile('dns/zones/PENDING', ('\n'.join(lines) + '\n').encode())
        for domain, policy in sorted(records.mta_sts_policies.items()):
            yield OutputFile(f'dns/mta-sts/{domain}.txt', policy.encode())
        static = [p for p in records.provider_ptrs if p.provider == 'static']
        if static:
            lines = [f'# {GENERATED_MARK}', '# Reverse DNS to request from the owner of these addresses:']
            lines += [f'{p.address or "<" + p.ip_id + ">"} -> {p.ptr}' for p in static]
            yield OutputFile('dns/ptr-requests.txt', ('\n'.join(lines) + '\n').encode())
