"""``mailinfra records``: the deployment's DNS records as a table, JSON or BIND zone files."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from .. import api
from ..facts.records import served_delegations
from ..render.base import RenderContext
from ..render.dns_records import record_set, records_data
from ..render.zonefile import zone_files
from .common import addresses_from


def cmd_records(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec)
    context = RenderContext(
        spec.deployment,
        spec.facts,
        spec.name,
        addresses_from(args.terraform_output, spec),
        api.keystore_dkim(spec, args.keys),
    )
    records = record_set(context)
    if args.format == 'json':
        print(json.dumps(records_data(records), indent=2, sort_keys=True))
    elif args.format == 'zone':
        nameservers = {zone.name: list(zone.nameservers) for zone in spec.deployment.dns.zones}
        delegations = served_delegations(spec.deployment)
        for text in zone_files(records, nameservers, spec.deployment.dns.ttl, delegations=delegations).values():
            print(text)
        for zone in sorted(set(records.by_zone()) - {name for name, servers in nameservers.items() if servers}):
            print(f'; zone {zone} not exported: the spec names no "nameservers" for it')
    else:
        width = max((len(record.fqdn) for record in records.records), default=10)
        for record in records.records:
            for value in record.values:
                shown = value if len(value) <= 90 or args.full else value[:87] + '...'
                print(f'{record.fqdn:<{width}}  {record.ttl:>6}  {record.type:<5}  {shown}')
        for ptr in records.provider_ptrs:
            print(
                f'{(ptr.address or "<" + ptr.ip_id + ">"):<{width}}  {"":>6}  PTR    {ptr.ptr}.  (via {ptr.provider})'
            )
    return 0


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    records = with_spec('records', 'print every DNS record the deployment publishes', sub)
    records.add_argument('--format', choices=['table', 'json', 'zone'], default='table')
    records.add_argument('--full', action='store_true', help='do not shorten long values in the table')
    records.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    records.add_argument('--terraform-output', metavar='FILE', help='`terraform output -json` for allocated addresses')
    records.set_defaults(func=cmd_records)
