"""The DNS benchmarks still run to their end: each in its smallest form, as a whole process (their figures are in
benchmarks/README.md; nothing here is timed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> dict[str, object]:
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join((str(ROOT), str(ROOT / 'agent')))}
    done = subprocess.run(
        [sys.executable, str(ROOT / 'benchmarks' / script), *args, '--json'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_dns_check_benchmark_runs() -> None:
    result = run('dnscheck/run.py', '--rounds', '1', '--checks', '1', '--dnsperf-seconds', '0.5', '--no-reference')
    knot = result['knot']
    assert isinstance(knot, dict) and knot['zones'] > 0 and knot['start_s'] > 0 and knot['reload_s'] > 0


def test_the_dnsbl_benchmark_runs() -> None:
    result = run(
        'dnsbl/run.py',
        '--rounds',
        '1',
        '--ips',
        '20',
        '--domains',
        '5',
        '--ip-zones',
        '4',
        '--domain-zones',
        '2',
        '--dnsperf-seconds',
        '0.5',
    )
    assert set(result['tools']) == {'ours', 'pydnsbl'}  # type: ignore[arg-type]
