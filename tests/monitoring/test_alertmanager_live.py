"""The rendered Alertmanager configuration in Debian's Alertmanager, on loopback: which alerts its inhibit rule
suppresses. A critical alert silences the warning of the same alert about the same thing, never the warning about
another ISP or another DNS record."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.postfix.trial import free_port

from .harness import monitoring_files, rules_spec, serve, stop, tool, write_tree

ALERTMANAGER = '/usr/bin/prometheus-alertmanager'


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    tree = write_tree(monitoring_files(rules_spec()), tmp_path / 'rendered')
    address = f'127.0.0.1:{free_port()}'
    command = [tool(ALERTMANAGER), f'--config.file={tree / "alertmanager" / "alertmanager.yml"}']
    command += [f'--storage.path={tmp_path / "data"}', f'--web.listen-address={address}', '--cluster.listen-address=']
    process = serve(command, f'http://{address}/-/ready')
    try:
        yield f'http://{address}/api/v2'
    finally:
        stop(process)


def _suppressed(base: str, critical: dict[str, str], warning: dict[str, str]) -> bool:
    """Whether Alertmanager inhibits ``warning`` while ``critical`` fires (both alerts of the same name)."""
    alerts = [{'labels': {**critical, 'severity': 'critical'}}, {'labels': {**warning, 'severity': 'warning'}}]
    request = urllib.request.Request(
        f'{base}/alerts', json.dumps(alerts).encode(), {'Content-Type': 'application/json'}, method='POST'
    )
    urllib.request.urlopen(request, timeout=10).close()
    with urllib.request.urlopen(f'{base}/alerts?filter=severity%3D%22warning%22', timeout=10) as response:
        [found] = [a for a in json.load(response) if a['labels'] == {**warning, 'severity': 'warning'}]
    return bool(found['status']['inhibitedBy'])


def test_a_critical_alert_inhibits_only_the_warning_about_the_same_thing(alertmanager: str) -> None:
    cert = {'alertname': 'MailinfraTlsCertExpiry', 'instance': '192.0.2.1:25', 'host': 'mta1', 'listener': 'mx'}
    assert _suppressed(alertmanager, cert, cert)
    isp = {'alertname': 'MailinfraComplaintRateByIsp', 'stream': 'marketing', 'window': '1d'}
    assert _suppressed(alertmanager, {**isp, 'isp': 'gmail'}, {**isp, 'isp': 'gmail'})
    assert not _suppressed(alertmanager, {**isp, 'isp': 'microsoft'}, {**isp, 'isp': 'yahoo'})
    drift = {'alertname': 'MailinfraDnsDrift', 'name': 'testco.example', 'type': 'TXT'}
    assert not _suppressed(alertmanager, {**drift, 'check': 'spf'}, {**drift, 'check': 'other'})
