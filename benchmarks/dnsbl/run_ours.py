"""One whole run of our DNSBL checker (``mailinfra_agent.dnsbl.check``, H1's library; the same code as
``mailinfra-agent dnsbl check``) against a given name server; writes every (subject, zone) verdict.

Same inputs and output as ``run_pydnsbl.py``, plus ``--custom-zones``: a JSON list of custom-zone entries
(the spec's ``monitoring.dnsbl.custom_zones`` shape; the benchmark's test zones, ``testzones.py``). Zones are
taken by name from the catalogue, else from those entries, so their documented codes decide what is a listing.
Verdicts: ``listed``; ``error`` for a zone error or an answer not trusted (zone not working); ``clean``;
anything else (score, allowlisted, skipped) as reported.

    python benchmarks/dnsbl/run_ours.py --server 127.0.0.77:PORT --ips ips.txt --domains domains.txt \\
        --ip-zones zones-ip.txt --domain-zones zones-domain.txt --custom-zones custom-zones.json --out ours.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from testzones import all_zones

from mailinfra_agent.dnsbl import check, load_catalogue, subjects_from

STATUS = {'listed': 'listed', 'clean': 'clean', 'error': 'error', 'untrusted': 'error'}


def _lines(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--server', required=True, help='address:port of the name server')
    parser.add_argument('--ips', required=True)
    parser.add_argument('--domains', required=True)
    parser.add_argument('--ip-zones', required=True)
    parser.add_argument('--domain-zones', required=True)
    parser.add_argument('--custom-zones', help='JSON list of custom-zone entries (spec custom_zones shape)')
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    catalogue = load_catalogue()
    entries = json.loads(Path(args.custom_zones).read_text()) if args.custom_zones else []
    custom = {zone.zone: zone for zone in all_zones(entries)}  # built as the spec's custom_zones are
    names = _lines(args.ip_zones) + _lines(args.domain_zones)
    zones = []
    for name in names:
        zone = catalogue.get(name) or custom.get(name)
        if zone is None:
            raise SystemExit(f'{name} is neither in the catalogue nor a custom zone')
        zones.append(zone)
    subjects = subjects_from(ips=_lines(args.ips), domains=_lines(args.domains))
    report = check(subjects, zones, [args.server])
    pairs: list[list[Any]] = [
        [r.subject, r.zone, STATUS.get(r.status, r.status), sorted(r.answers)] for r in report.results
    ]
    zone_status = {z.zone: {'working': z.working, 'test': z.test} for z in report.zones}
    Path(args.out).write_text(json.dumps({'tool': 'mailinfra_agent.dnsbl', 'pairs': pairs, 'zones': zone_status}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
