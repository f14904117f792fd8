"""Benchmark: ``dns check`` of the 1,000-IP / 500-domain synthetic deployment against a real Knot on
loopback, next to Debian's ``dnsperf`` sending the very same questions to the same server.

1. The synthetic spec of ``benchmarks/render/synth.py`` (scale 1) is validated; allocated IPs and VM hosts
   get made-up ``terraform output`` addresses (100.127.0.0/16) and every selector one fixed public key
   (``tests/data/dkim_public.json``), so every zone can be exported.
2. Its zones, exactly as ``dns.zonefile.zone_files`` writes them, are served by Knot
   (``tests/dnsserver/knot.py``) on 127.0.0.1 and a random port, with stub zones for what lies
   outside the deployment (provider reverse zones, the SPF vendors' includes, the DMARC report
   vendor); the same server is passed as ``--resolver`` so every check really asks.
3. The check runs once to warm up and record the questions it asks (each (name, type) once).
4. Those questions go into a dnsperf data file ("name TYPE" per line).
5. ``--rounds`` rounds, each: ``--checks`` full checks, each with a fresh client (empty cache),
   then ``dnsperf -e`` (EDNS, 100 queries in flight, one client) looping through the file for
   ``--dnsperf-seconds``. Interleaving keeps both under the same machine load; a round's checks
   take about as long as its dnsperf run. Reported: questions per second of the whole check
   (querying and judging, after the expectations were built) and of its query phase (first
   question to last answer), as medians over the rounds and as a ratio to dnsperf's
   (goal: at least 30%).

    python benchmarks/dnscheck/run.py                    # table
    python benchmarks/dnscheck/run.py --json             # machine-readable
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'benchmarks' / 'render'))
sys.path.insert(0, str(ROOT))

import synth  # noqa: E402

from mailinfra_iac import Spec, parse_spec  # noqa: E402
from mailinfra_iac.dkim.source import StaticDkimSource  # noqa: E402
from mailinfra_iac.dnscheck import DnsCheckReport, expectations, run_expectations  # noqa: E402
from mailinfra_iac.dnscheck.expected import Expectations  # noqa: E402
from mailinfra_iac.facts.records import Record, derive_records, served_delegations  # noqa: E402
from mailinfra_iac.render.zonefile import zone_files, zone_text  # noqa: E402
from tests.dnsserver.knot import KnotServer  # noqa: E402

GOAL = 0.30
STUB_SPF = 'v=spf1 ip4:192.0.2.0/24 ~all'
STUB_NS = 'ns.stub.invalid'
"""The stub zones' NS (zone files need one; nothing asks it)."""
TTL = 3600
DKIM_KEYS = json.loads((ROOT / 'tests' / 'data' / 'dkim_public.json').read_text())


class OneKeyDkim:
    """Every selector publishes the same committed public key (RSA 2048 or Ed25519)."""

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[Any], list[tuple[str, str]]]:
        table = {(domain, selector): DKIM_KEYS[algorithm] for selector, algorithm in wanted}
        return StaticDkimSource(table).records(domain, wanted)


def allocated_addresses(spec: Spec) -> dict[str, str]:
    """Made-up ``terraform output`` addresses for the IPs the providers would allocate."""
    pool = ipaddress.IPv4Network('100.127.0.0/16').hosts()
    addresses = {ip.id: str(next(pool)) for ip in spec.facts.ips if ip.address is None}
    addresses.update(
        {f'host_{name}': str(next(pool)) for name, host in spec.deployment.hosts.items() if host.address is None}
    )
    return addresses


def external_zones(spec: Spec, records: Any) -> dict[str, list[Record]]:
    """Stub zones for the names outside the deployment that the check asks about."""
    zones: dict[str, list[Record]] = {}
    for ptr in records.provider_ptrs:
        pointer = ipaddress.ip_address(ptr.address).reverse_pointer
        label, zone = pointer.split('.', 1)
        zones.setdefault(zone, []).append(Record(zone, label, 'PTR', (ptr.ptr + '.',), TTL, 'ptr'))
    for domain in spec.deployment.sending_domains:
        for include in domain.spf.includes:
            zones.setdefault(include.domain, [Record(include.domain, '@', 'TXT', (STUB_SPF,), TTL, 'spf')])
        for address in (*domain.dmarc.rua, *domain.dmarc.ruf):
            target = address.rpartition('@')[2]
            if not any(target == z.name or target.endswith('.' + z.name) for z in spec.deployment.dns.zones):
                record = Record(target, '*._report._dmarc', 'TXT', ('v=DMARC1',), TTL, 'dmarc-authorisation')
                zones.setdefault(target, [record])
    return zones


def build(spec: Spec) -> tuple[Expectations, dict[str, str], float]:
    addresses = allocated_addresses(spec)
    started = time.perf_counter()
    expected = expectations(spec.deployment, spec.facts, OneKeyDkim(), addresses)
    seconds = time.perf_counter() - started
    records = derive_records(spec.deployment, spec.facts, OneKeyDkim()).resolve(addresses)
    # provider-hosted zones name no nameservers in the spec; Knot needs an NS in every zone file
    nameservers = {zone.name: list(zone.nameservers) or [STUB_NS] for zone in spec.deployment.dns.zones}
    zones = zone_files(records, nameservers, spec.deployment.dns.ttl, delegations=served_delegations(spec.deployment))
    for zone, zone_records in external_zones(spec, records).items():
        zones[zone] = zone_text(zone, zone_records, [STUB_NS], TTL)
    return expected, zones, seconds


def run_check(expected: Expectations, server: str, engine: str, window: int) -> DnsCheckReport:
    gc.collect()
    return run_expectations(expected, [server], resolver=server, engine=engine, window=window)  # type: ignore[arg-type]


def _run_queue_ns() -> int | None:
    """Nanoseconds this process has waited for a CPU while runnable (Linux ``/proc/self/schedstat``)."""
    try:
        return int(Path('/proc/self/schedstat').read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None


def timed_check(expected: Expectations, server: str, window: int) -> tuple[DnsCheckReport, float, float | None]:
    """One check, its CPU time and its time waiting for a CPU (both for the whole call, expectations excluded).

    The wall time is about CPU time plus run-queue wait (on a shared machine: other jobs, or Knot's workers).
    """
    gc.collect()
    waited, cpu = _run_queue_ns(), time.process_time()
    report = run_expectations(expected, [server], resolver=server, engine='fast', window=window)
    cpu = time.process_time() - cpu
    after = _run_queue_ns()
    return report, cpu, None if waited is None or after is None else (after - waited) / 1e9


def dnsperf(server: str, questions: list[tuple[str, str, str]], seconds: float, workdir: Path) -> dict[str, Any]:
    binary = shutil.which('dnsperf')
    if binary is None:
        raise SystemExit('dnsperf is not installed: apt-get install dnsperf')
    data = workdir / 'queries.txt'
    data.write_text(''.join(f'{name} {rdtype}\n' for name, rdtype, _ in questions))
    address, port = server.rsplit(':', 1)
    command = [binary, '-s', address, '-p', port, '-d', str(data), '-e', '-l', str(seconds)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)

    def number(label: str) -> float:
        match = re.search(rf'{label}:\s+([0-9.]+)', output)
        if match is None:
            raise SystemExit(f'cannot read "{label}" from dnsperf output:\n{output}')
        return float(match.group(1))

    return {
        'command': ' '.join(['dnsperf', *command[1:4], 'PORT', '-d', 'queries.txt', *command[7:]]),
        'qps': number('Queries per second'),
        'sent': int(number('Queries sent')),
        'completed': int(number('Queries completed')),
        'lost': int(number('Queries lost')),
        'seconds': number(r'Run time \(s\)'),
        # dnsperf runs a sender and a receiver thread: CPU seconds (user + system) per second of its run
        'cores': (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) / number(r'Run time \(s\)'),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    spec = parse_spec(synth.generate(args.scale), 'synthetic.yml', as_of=synth.AS_OF)
    expected, zones, expect_seconds = build(spec)
    prepared = time.perf_counter() - started
    workdir = Path(tempfile.mkdtemp(prefix='mailinfra-dnsbench-'))
    try:
        knot_started = time.perf_counter()
        with KnotServer(zones, udp_workers=args.knot_workers, root=workdir / 'knot') as knot:
            start_seconds = time.perf_counter() - knot_started
            server = knot.nameserver
            some_zone = next(zone for zone in sorted(zones) if 'v=DMARC1; p=' in zones[zone])
            reload_seconds = []
            for text in (zones[some_zone].replace('v=DMARC1; p=', 'v=DMARC1;  p=', 1), zones[some_zone]):
                reload_started = time.perf_counter()
                knot.set_zones({some_zone: text})  # returns once Knot answers the new serial
                reload_seconds.append(time.perf_counter() - reload_started)
            warm = run_check(expected, server, 'fast', args.window)
            rounds: list[list[DnsCheckReport]] = []
            cpus: list[float] = []
            waits: list[float] = []
            perfs: list[dict[str, Any]] = []
            for _ in range(args.rounds):  # interleaved, so both see the same machine
                checks = []
                for _ in range(args.checks):
                    report, cpu, waited = timed_check(expected, server, args.window)
                    checks.append(report)
                    cpus.append(cpu)
                    if waited is not None:
                        waits.append(waited)
                rounds.append(checks)
                perfs.append(dnsperf(server, warm.questions, args.dnsperf_seconds, workdir))
            reference = run_check(expected, server, 'dnspython', args.window) if args.reference else None
            knot_info = {
                'workers_udp': args.knot_workers,
                'zones': len(zones),
                'start_s': start_seconds,
                'reload_s': statistics.median(reload_seconds),
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    questions = len(warm.questions)
    runs = [run for checks in rounds for run in checks]
    check_qps = [questions * len(checks) / sum(run.seconds for run in checks) for checks in rounds]
    query_qps = [questions * len(checks) / sum(run.query_seconds for run in checks) for checks in rounds]
    perf_qps = [perf['qps'] for perf in perfs]
    ratios = [ours / theirs for ours, theirs in zip(check_qps, perf_qps, strict=True)]
    result = {
        'machine': {
            'python': platform.python_version(),
            'cpus': os.cpu_count(),
            'platform': platform.platform(),
            'loadavg_before': load_before,
            'loadavg_after': os.getloadavg(),
        },
        'spec': {
            'scale': args.scale,
            'ips': len(spec.facts.ips),
            'sending_domains': len(spec.deployment.sending_domains),
            'zones_in_spec': len(spec.deployment.dns.zones),
        },
        'prepare_s': prepared,
        'expectations_s': expect_seconds,
        'knot': knot_info,
        'questions': questions,
        'questions_by_type': dict(Counter(rdtype for _, rdtype, _ in warm.questions)),
        'results': {
            'count': len(warm.results),
            'by_status': warm.summary(),
            'by_check': {
                f'{check} {status}': count
                for (check, status), count in sorted(Counter((r.check, r.status) for r in warm.results).items())
            },
        },
        'rounds': args.rounds,
        'checks_per_round': args.checks,
        'check': {
            'window': args.window,
            'qps': check_qps,
            'questions_identical': all(sorted(run.questions) == sorted(warm.questions) for run in runs),
            'qps_median': statistics.median(check_qps),
            'query_phase_qps_median': statistics.median(query_qps),
            'seconds_median': statistics.median(run.seconds for run in runs),
            'cpu_seconds_median': statistics.median(cpus),
            'run_queue_seconds_median': statistics.median(waits) if waits else None,
            'datagrams': [run.datagrams for run in runs],
        },
        'dnsperf': {
            **perfs[0],
            'qps': perf_qps,
            'qps_median': statistics.median(perf_qps),
            'cores': [perf['cores'] for perf in perfs],
            'cores_median': statistics.median(perf['cores'] for perf in perfs),
        },
        'ratio': ratios,
        'ratio_median': statistics.median(ratios),
        'goal': GOAL,
    }
    if reference is not None:
        result['dnspython'] = {
            'qps': questions / reference.seconds,
            'same_results': [r.as_dict() for r in reference.results] == [r.as_dict() for r in warm.results],
        }
    return result


def table(result: dict[str, Any]) -> str:
    check, perf, spec, knot = result['check'], result['dnsperf'], result['spec'], result['knot']
    load = result['machine']
    ratio = result['ratio_median']
    lines = [
        f'dns check benchmark: {spec["ips"]} sending IPs, {spec["sending_domains"]} sending domains, '
        f'{knot["zones"]} zones served by Knot ({knot["workers_udp"]} UDP workers) on loopback',
        f'machine: Python {load["python"]}, {load["cpus"]} CPUs, load average '
        f'{load["loadavg_before"][0]:.1f} before, {load["loadavg_after"][0]:.1f} after',
        f'questions per check: {result["questions"]} '
        f'({", ".join(f"{k} {v}" for k, v in sorted(result["questions_by_type"].items()))})',
        f'results: {result["results"]["count"]} '
        f'({", ".join(f"{v} {k}" for k, v in result["results"]["by_status"].items())})',
        '',
        f'{result["rounds"]} rounds, each {result["checks_per_round"]} full checks then {perf["seconds"]:.0f} s of '
        'dnsperf; medians of the rounds:',
        f'{"client":<50} {"qps":>9} {"vs dnsperf":>11}',
        f'{"-" * 50} {"-" * 9} {"-" * 11}',
        f'{"dnsperf -e, 100 in flight, the same questions":<50} {perf["qps_median"]:>9,.0f} {"100%":>11}',
        f'{"dns check (querying and judging)":<50} {check["qps_median"]:>9,.0f} {ratio:>11.0%}',
        f'{"  of which the query phase alone":<50} {check["query_phase_qps_median"]:>9,.0f} '
        f'{check["query_phase_qps_median"] / perf["qps_median"]:>11.0%}',
    ]
    if 'dnspython' in result:
        reference = result['dnspython']
        lines.append(
            f'{"dns check --engine dnspython (one run)":<50} {reference["qps"]:>9,.0f} '
            f'{reference["qps"] / perf["qps_median"]:>11.0%}'
        )
    lines += [
        '',
        f'per round, dns check / dnsperf: {", ".join(f"{r:.0%}" for r in result["ratio"])}',
        f'goal: at least {result["goal"]:.0%} of dnsperf: ' + ('met' if ratio >= result['goal'] else 'NOT met'),
        f'one check: {check["seconds_median"] * 1000:.0f} ms; building the expectations from the spec '
        f'{result["expectations_s"] * 1000:.0f} ms (not counted)',
        f'one check, medians: {check["cpu_seconds_median"] * 1000:.0f} ms of CPU (one thread)'
        + (
            f', {check["run_queue_seconds_median"] * 1000:.0f} ms runnable but waiting for a CPU'
            if check['run_queue_seconds_median'] is not None
            else ''
        )
        + f'; dnsperf used {perf["cores_median"]:.2f} CPUs (sender and receiver threads, user + system)',
        f'knot: started in {knot["start_s"] * 1000:.0f} ms with {knot["zones"]} zones; a blocking zone reload '
        f'{knot["reload_s"] * 1000:.0f} ms',
    ]
    if 'dnspython' in result:
        lines.append(f'the dnspython engine gives the same results: {result["dnspython"]["same_results"]}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--scale', type=int, default=1, help='synthetic spec scale (1 = 1,000 IPs, 500 domains)')
    parser.add_argument('--rounds', type=int, default=5, help='rounds of (--checks checks, one dnsperf run)')
    parser.add_argument('--checks', type=int, default=5, help='checks per round, each with an empty cache')
    parser.add_argument('--window', type=int, default=64, help='queries in flight of the check engine')
    parser.add_argument('--knot-workers', type=int, default=os.cpu_count() or 2, help='Knot UDP workers')
    parser.add_argument('--dnsperf-seconds', type=float, default=2.0, help='length of each dnsperf run')
    parser.add_argument('--no-reference', dest='reference', action='store_false', help='skip the dnspython engine')
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args(argv)
    result = measure(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
