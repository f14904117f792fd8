"""The promtool harness: a spec for the rule tests, the rendered monitoring files, promtool and amtool runs."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mailinfra_iac import parse_spec, render_files
from mailinfra_iac.api import Spec

from ..conftest import AS_OF, TEST_DKIM, edit

HERE = Path(__file__).resolve().parent
RULE_TESTS = HERE / 'rules'
"""One promtool test file per rule family: ``rules/<family>.yml`` tests ``prometheus/rules/<family>.yml``."""

PROMTOOL = '/usr/bin/promtool'
AMTOOL = '/usr/bin/amtool'

MONITORING = """monitoring:
  queue:
    depth_warning: 100
    depth_critical: 1000
    age_warning: 1h
    age_critical: 4h
    streams: {transactional: {depth_warning: 10, age_warning: 10m}}
  rates:
    streams: {transactional: {bounce_warning: 0.01, bounce_critical: 0.03, complaint_warning: 0.0005,
                              complaint_critical: 0.002, window: 6h}}
  dnsbl:
    zones: [zen.spamhaus.org, dbl.spamhaus.org, psbl.surriel.com]
    interval: 15m
    custom_zones:
      - {zone: bl.example.net, kind: ip, operator: Example, decoder: bitmask,
         listings: {'2': spam source, '4': open proxy}}
  alerts:
    - {kind: email, target: ops@testco.example}
    - {kind: webhook, target: 'https://hooks.testco.example/alerts', token_file: /etc/prometheus/secrets/hook-token}
    - {kind: webhook, target: 'https://heartbeat.testco.example/ping', receives: heartbeat}
  smarthost: {host: 'relay.example.net:587', sender: alerts@testco.example, username: alerts,
              password_file: /etc/prometheus/secrets/smarthost-password}
"""
"""What the rule tests are written against: thresholds, zones and receivers (tests/fixtures/base.yml + this)."""

SECRETS = ('/etc/prometheus/secrets/hook-token', '/etc/prometheus/secrets/smarthost-password')


def rules_spec_text() -> str:
    text = edit('    pools: [tx, bulk]\n', '    pools: [tx, bulk]\n    roles: [mta, monitoring]\n')
    return edit('monitoring:\n  queue: {depth_warning: 100, depth_critical: 1000}\n', MONITORING, text)


def rules_spec() -> Spec:
    return parse_spec(rules_spec_text(), 'spec.yml', as_of=AS_OF)


def monitoring_files(spec: Spec) -> dict[str, bytes]:
    """The rendered ``monitoring/`` tree, paths relative to it."""
    files = render_files(spec, renderers=['monitoring'], dkim=TEST_DKIM)
    return {path.removeprefix('monitoring/'): output.content for path, output in files.items()}


def write_tree(files: dict[str, bytes], root: Path) -> Path:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return root


def tool(path: str) -> str:
    """A Debian tool the tests need; a missing one fails (script/bootstrap installs it), never skips."""
    if shutil.which(path) is None:
        raise AssertionError(
            f'{path} is missing: run script/bootstrap (Debian packages prometheus, prometheus-alertmanager)'
        )
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def serve(command: list[str], ready: str) -> subprocess.Popen[bytes]:
    """Start a daemon (output discarded) and wait until the URL ``ready`` answers."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f'{command[0]} exited'
        try:
            urllib.request.urlopen(ready, timeout=2).close()
            return process
        except OSError:
            if time.monotonic() > deadline:
                stop(process)
                raise AssertionError(f'{command[0]}: {ready} did not answer within 60 s') from None
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a daemon; kill it when it has not ended 20 s later."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait(ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` until it holds; fail after 60 s."""
    deadline = time.monotonic() + 60
    while not ready():
        assert time.monotonic() < deadline, f'{what}: not within 60 s'
        time.sleep(0.2)


def family_names() -> list[str]:
    from mailinfra_iac.render.monitoring.rules import FAMILIES

    return [family.NAME for family in FAMILIES]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
