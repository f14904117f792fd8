"""The labelled replay corpus (``replay.json``): every answer a blocklist zone of the benchmark can give, and
what a checker must make of it; run against our checker and pydnsbl.

Scenarios, per zone of the benchmark (the catalogue's listing zones padded with the custom test zones of
``testzones.py``, as ``zones.pick_zones`` takes them; the corpus carries those custom-zone entries):

* ``code``: each documented listing code (``codes`` zones) or listing bit (``bitmask`` zones) -> ``listed``;
* ``error``: each documented error answer (Spamhaus 127.255.255.252/254/255, DBL 127.0.1.255, URIBL and
  SURBL bit 1, ...) -> ``error``, never a listing;
* ``nxdomain``: no record -> ``clean``;
* ``servfail``: the server answers SERVFAIL -> ``error`` (could not check);
* ``timeout``: the server never answers -> ``error``;
* ``hijack``: the resolver rewrites NXDOMAIN into 203.0.113.7 (RFC 5737), an address outside 127.0.0.0/8
  -> ``error`` (the answer means nothing: not a listing, not clean).

The first three are served by Knot (with each zone's test point answering as documented), the last three
by ``responder.py`` on loopback. Labels come from the catalogue's documentation of each zone (the
custom-zone entry for a test zone), not from either checker.

    python benchmarks/dnsbl/replay.py              # run both checkers, table per scenario
    python benchmarks/dnsbl/replay.py --write      # regenerate replay.json from the catalogue
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import testzones  # noqa: E402
import zones as plan_zones  # noqa: E402
from responder import HIJACK_ADDRESS, Responder  # noqa: E402

CORPUS = HERE / 'replay.json'
ADDRESS = '127.0.0.78'
OUTAGE_IP = '198.18.250.1'
OUTAGE_DOMAIN = 'replay-outage.example'
OUTAGES = {'servfail': 'servfail', 'timeout': 'silent', 'hijack': 'hijack'}
"""Scenario -> responder mode."""


def _zone_cases(zone: Any) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    outage = OUTAGE_IP if zone.kind == 'ip' else OUTAGE_DOMAIN

    def case(scenario: str, served: list[str], expect: str, why: str, outage_subject: bool = False) -> None:
        number = len(cases) + 1
        subject = f'replay{number:04d}.example'
        if zone.kind == 'ip':
            subject = f'198.18.{200 + number // 250}.{number % 250 + 1}'
        cases.append({
            'id': f'{zone.zone}/{scenario}/{",".join(served) or "-"}',
            'zone': zone.zone, 'kind': zone.kind, 'subject': outage if outage_subject else subject,
            'scenario': scenario, 'served': served, 'expect': expect, 'why': why,
        })  # fmt: skip

    for code, meaning in sorted(zone.codes.items()):
        case('code', [f'127.0.0.{code}' if zone.decoder == 'bitmask' else code], 'listed', meaning)
    for code, error in sorted(zone.errors.items()):
        served = f'127.0.0.{code}' if zone.decoder == 'bitmask' and '.' not in code else code
        case('error', [served], 'error', f'{error.id}: {error.meaning}')
    case('nxdomain', [], 'clean', 'not listed')
    case('servfail', [], 'error', 'the server answered SERVFAIL', True)
    case('timeout', [], 'error', 'no answer', True)
    case('hijack', [HIJACK_ADDRESS], 'error', 'the resolver rewrote NXDOMAIN to a public address', True)
    return cases


def build_corpus(catalogue: Any, ip_zones: int = 40, domain_zones: int = 10) -> dict[str, Any]:
    ips, domains = plan_zones.pick_zones(catalogue, ip_zones, domain_zones, testzones.all_zones())
    picked = (*ips, *domains)
    return {
        'about': 'Labelled DNSBL answers for benchmarks/dnsbl/replay.py; regenerate with --write. Labels: the '
        'catalogue documentation of each zone (mailinfra_agent/dnsbl/zones.toml), or its custom_zones entry.',
        'zones': [zone.zone for zone in picked],
        'custom_zones': testzones.entries_for(picked),
        'cases': [case for zone in picked for case in _zone_cases(zone)],
    }


def zone_index(corpus: dict[str, Any], catalogue: Any) -> dict[str, Any]:
    """The corpus's zones by name: from the catalogue, else built from the corpus's custom-zone entries."""
    custom = testzones.all_zones(corpus.get('custom_zones', ()))
    found = {name: testzones.lookup(catalogue, name, custom) for name in corpus['zones']}
    return {name: zone for name, zone in found.items() if zone is not None}


def knot_zones(corpus: dict[str, Any], catalogue: Any) -> dict[str, str]:
    """Zone texts for the Knot scenarios: the served answers plus each zone's test point."""
    lines: dict[str, list[str]] = {}
    index = zone_index(corpus, catalogue)
    for name in corpus['zones']:
        zone = index.get(name)
        lines[name] = [f'$ORIGIN {name}.', '$TTL 300', plan_zones.SOA.rstrip('\n')]
        if zone is not None and zone.test_point:
            lines[name] += [f'{zone.test_point} 300 IN A {a}' for a in plan_zones._test_point_answers(zone)]
    for case in corpus['cases']:
        if case['scenario'] in ('code', 'error'):
            label = plan_zones.query_label(case['subject'], case['kind'])
            lines[case['zone']] += [f'{label} 300 IN A {answer}' for answer in case['served']]
    return {name: '\n'.join(text) + '\n' for name, text in lines.items()}


def _groups(cases: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(server, subject kind) -> cases; server = 'knot' or a responder mode. One run per group and tool."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for case in cases:
        groups.setdefault((OUTAGES.get(case['scenario'], 'knot'), case['kind']), []).append(case)
    return groups


Verdicts = dict[tuple[str, str], str]
"""(subject, zone) -> listed | clean | error."""


def run_ours(cases: list[dict[str, Any]], server: str, timeout: float, index: dict[str, Any]) -> Verdicts:
    from mailinfra_agent.dnsbl import check, subjects_from

    zones = [index.get(name) for name in sorted({case['zone'] for case in cases})]
    values = sorted({case['subject'] for case in cases})
    kind = cases[0]['kind']
    subjects = subjects_from(ips=values if kind == 'ip' else [], domains=values if kind == 'domain' else [])
    report = check(subjects, [zone for zone in zones if zone is not None], [server], timeout=timeout, retries=0)
    status = {'untrusted': 'error'}  # zone not working here: its answers are not trusted, an error
    return {(r.subject, r.zone): status.get(r.status, r.status) for r in report.results}


def run_pydnsbl(cases: list[dict[str, Any]], server: str, timeout: float, index: dict[str, Any]) -> Verdicts:
    import aiodns
    from pydnsbl import DNSBLDomainChecker, DNSBLIpChecker
    from pydnsbl.providers import Provider

    zones = sorted({case['zone'] for case in cases})
    values = sorted({case['subject'] for case in cases})
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # bulk_check gathers on the current loop
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)
            cls = DNSBLIpChecker if cases[0]['kind'] == 'ip' else DNSBLDomainChecker
            checker = cls(providers=[Provider(zone) for zone in zones], timeout=timeout, tries=1, loop=loop)
            address, _, port = server.rpartition(':')
            checker._resolver = aiodns.DNSResolver(
                nameservers=[address], udp_port=int(port), tcp_port=int(port), timeout=timeout, tries=1, loop=loop
            )
            out: Verdicts = {}
            for result in checker.bulk_check(values):
                failed = {provider.host for provider in result.failed_providers}
                for zone in zones:
                    verdict = 'listed' if zone in result.detected_by else 'error' if zone in failed else 'clean'
                    out[(result.addr, zone)] = verdict
            return out
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def replay(corpus: dict[str, Any], catalogue: Any, *, timeout: float = 0.5) -> dict[str, list[dict[str, Any]]]:
    """Every case with each tool's verdict: {'ours': [...], 'pydnsbl': [...]} (the cases plus a 'got' key)."""
    from tests.dnsserver.knot import KnotServer

    groups = _groups(corpus['cases'])
    index = zone_index(corpus, catalogue)  # pydnsbl only uses the names
    runners = {'ours': run_ours, 'pydnsbl': run_pydnsbl}
    out: dict[str, list[dict[str, Any]]] = {tool: [] for tool in runners}
    with (
        KnotServer(knot_zones(corpus, catalogue), address=ADDRESS) as knot,
        Responder('hijack') as hijack,
        Responder('servfail') as servfail,
        Responder('silent') as silent,
    ):
        servers = {'knot': knot.nameserver, 'hijack': hijack.nameserver, 'servfail': servfail.nameserver,
                   'silent': silent.nameserver}  # fmt: skip
        for (server, _), cases in groups.items():
            for tool, runner in runners.items():
                got = runner(cases, servers[server], timeout, index)
                out[tool] += [{**c, 'got': got.get((c['subject'], c['zone']), 'missing')} for c in cases]
    return out


def summary(results: dict[str, list[dict[str, Any]]]) -> str:
    scenarios = ['code', 'error', 'nxdomain', 'servfail', 'timeout', 'hijack']
    lines = [f'{"scenario":<10} {"cases":>6} ' + ' '.join(f'{tool + " wrong":>14}' for tool in results)]
    for scenario in scenarios:
        counts = []
        total = 0
        for cases in results.values():
            mine = [case for case in cases if case['scenario'] == scenario]
            total = len(mine)
            counts.append(sum(case['got'] != case['expect'] for case in mine))
        lines.append(f'{scenario:<10} {total:>6} ' + ' '.join(f'{count:>14}' for count in counts))
    for tool, cases in results.items():
        wrong = Counter(f'{case["expect"]} read as {case["got"]} ({case["scenario"]})' for case in cases
                        if case['got'] != case['expect'])  # fmt: skip
        lines.append(f'{tool}: {sum(wrong.values())} wrong of {len(cases)}')
        lines += [f'  {count:>5}  {what}' for what, count in sorted(wrong.items())]
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--write', action='store_true', help='regenerate replay.json from the catalogue')
    parser.add_argument('--json', action='store_true', help='every case with both verdicts')
    args = parser.parse_args(argv)
    from mailinfra_agent.dnsbl.catalogue import load_catalogue

    catalogue = load_catalogue()
    if args.write:
        CORPUS.write_text(json.dumps(build_corpus(catalogue), indent=1) + '\n')
        print(f'wrote {CORPUS}')
        return 0
    results = replay(json.loads(CORPUS.read_text()), catalogue)
    print(json.dumps(results, indent=1) if args.json else summary(results))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
