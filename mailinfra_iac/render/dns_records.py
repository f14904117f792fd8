"""DNS outputs: the record list as JSON, BIND zone files, MTA-STS policies and PTR requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ..facts.records import RecordSet, derive_records, served_delegations
from .base import GENERATED_MARK, OutputFile, RenderContext
from .zonefile import written_delegations, zone_text


def derived_records(context: RenderContext) -> RecordSet:
    """The deployment's records as derived (placeholders kept); computed once per render."""
    return context.memoize('records', lambda: derive_records(context.deployment, context.facts, context.dkim_source()))


def record_set(context: RenderContext) -> RecordSet:
    """The deployment's records with every address Terraform already reported filled in; computed once per render."""
    return context.memoize('records:resolved', lambda: derived_records(context).resolve(context.addresses))


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


def records_json(records: RecordSet) -> bytes:
    """The record list as JSON with one record per line: readable in diffs, and quick to write."""
    data = records_data(records)
    parts = []
    for key in sorted(data):
        items = data[key]
        lines = ',\n'.join('    ' + json.dumps(item, sort_keys=True, ensure_ascii=False) for item in items)
        parts.append(f'  {json.dumps(key)}: [\n{lines}\n  ]' if items else f'  {json.dumps(key)}: []')
    return ('{\n' + ',\n'.join(parts) + '\n}\n').encode()


class DnsRecordsRenderer:
    """Writes dns/records.json, dns/zones/<zone>.zone, dns/mta-sts/<domain>.txt and dns/ptr-requests.txt."""

    name = 'dns'
    description = 'DNS record list, BIND zone files, MTA-STS policies and reverse-DNS requests.'

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        records = record_set(context)
        yield OutputFile('dns/records.json', records_json(records))
        nameservers = {zone.name: list(zone.nameservers) for zone in context.deployment.dns.zones}
        pending, unserved, written = [], [], {}
        for zone, zone_records in sorted(records.by_zone().items()):
            if not nameservers.get(zone):
                unserved.append(zone)
            elif any(record.placeholders() for record in zone_records):
                pending.append(zone)
            else:
                written[zone] = zone_records
        delegations = written_delegations(served_delegations(context.deployment), written)
        for zone, zone_records in written.items():
            text = zone_text(zone, zone_records, nameservers[zone], context.deployment.dns.ttl, delegations.get(zone))
            yield OutputFile(f'dns/zones/{zone}.zone', text.encode())
        if pending:
            lines = [
                f'# {GENERATED_MARK}',
                '# Zones not exported: addresses are allocated by Terraform.',
                '# Render again with --terraform-output once `terraform apply` has run.',
                *pending,
            ]
            yield OutputFile('dns/zones/PENDING', ('\n'.join(lines) + '\n').encode())
        if unserved:
            lines = [
                f'# {GENERATED_MARK}',
                '# Zones not exported: the spec names no "nameservers" for them (their provider serves them).',
                '# List the nameservers the provider assigned to get a zone file that loads in BIND.',
                *unserved,
            ]
            yield OutputFile('dns/zones/NO-NAMESERVERS', ('\n'.join(lines) + '\n').encode())
        policies = sorted(set(records.mta_sts_policies.values()))
        if len(policies) == 1:  # the usual case: one policy, served for every receiving domain
            yield OutputFile('dns/mta-sts/mta-sts.txt', policies[0].encode())
            domains = '\n'.join(sorted(records.mta_sts_policies))
            yield OutputFile(
                'dns/mta-sts/domains.txt',
                f'# served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt\n{domains}\n'.encode(),
            )
        else:
            for domain, policy in sorted(records.mta_sts_policies.items()):
                yield OutputFile(f'dns/mta-sts/{domain}.txt', policy.encode())
        static = [p for p in records.provider_ptrs if p.provider == 'static']
        if static:
            lines = [f'# {GENERATED_MARK}', '# Reverse DNS to request from the owner of these addresses:']
            lines += [f'{p.address or "<" + p.ip_id + ">"} -> {p.ptr}' for p in static]
            yield OutputFile('dns/ptr-requests.txt', ('\n'.join(lines) + '\n').encode())
