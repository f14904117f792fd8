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

from .harness import monitoring_files, rules_spec, serve, stop, tool, wait, write_tree

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


def _inhibited(base: str, labels: dict[str, str]) -> bool:
    with urllib.request.urlopen(f'{base}/alerts?filter=severity%3D%22warning%22', timeout=10) as response:
        [found] = [a for a in json.load(response) if a['labels'] == labels]
    return bool(found['status']['inhibitedBy'])


def _suppressed(base: str, critical: dict[str, str], warning: dict[str, str]) -> bool:
    """Whether Alertmanager inhibits ``warning`` while ``critical`` fires (both alerts of the same name).

    The inhibitor learns of posted alerts asynchronously: a control warning about the same thing as ``critical`` is
    posted with it, and ``warning`` is asked only once the control is inhibited."""
    critical, warning = {**critical, 'severity': 'critical'}, {**warning, 'severity': 'warning'}
    control = {**critical, 'severity': 'warning'}
    alerts = [{'labels': labels} for labels in (critical, control, warning)]
    request = urllib.request.Request(
        f'{base}/alerts', json.dumps(alerts).encode(), {'Content-Type': 'application/json'}, method='POST'
    )
    urllib.request.urlopen(request, timeout=10).close()
    wait(lambda: _inhibited(base, control), f'{control} inhibited by {critical}')
    return _inhibited(base, warning)


def test_a_critical_alert_inhibits_only_the_warning_about_the_same_thing(alertmanager: str) -> None:
    cert = {'alertname': 'MailinfraTlsCertExpiry', 'instance': '192.0.2.1:25', 'host': 'mta1', 'listener': 'mx'}
    assert _suppressed(alertmanager, cert, cert)
    isp = {'alertname': 'MailinfraComplaintRateByIsp', 'stream': 'marketing', 'window': '1d'}
    assert _suppressed(alertmanager, {**isp, 'isp': 'gmail'}, {**isp, 'isp': 'gmail'})
    assert not _suppressed(alertmanager, {**isp, 'isp': 'microsoft'}, {**isp, 'isp': 'yahoo'})
    drift = {'alertname': 'MailinfraDnsDrift', 'name': 'testco.example', 'type': 'TXT'}
    assert not _suppressed(alertmanager, {**drift, 'check': 'spf'}, {**drift, 'check': 'other'})


def test_a_listener_down_inhibits_the_starttls_warning_of_that_listener_only(alertmanager: str) -> None:
    down = {'alertname': 'MailinfraListenerDown', 'severity': 'critical', 'host': 'mta1', 'listener': 'mx'}
    starttls = {'alertname': 'MailinfraStarttlsFailed', 'severity': 'warning', 'host': 'mta1', 'listener': 'mx'}
    same, other = '192.0.2.1:25', '192.0.2.2:25'
    injection = {**starttls, 'instance': '192.0.2.1:2525', 'listener': 'injection'}  # the same host's other listener
    alerts = [
        {'labels': {**down, 'instance': same}},
        {'labels': {**starttls, 'instance': same}},
        {'labels': {**starttls, 'instance': other, 'host': 'mta2'}},
        {'labels': injection},
    ]
    request = urllib.request.Request(
        f'{alertmanager}/alerts', json.dumps(alerts).encode(), {'Content-Type': 'application/json'}, method='POST'
    )
    urllib.request.urlopen(request, timeout=10).close()
    wait(lambda: _inhibited(alertmanager, {**starttls, 'instance': same}), 'STARTTLS warning of the down listener')
    assert not _inhibited(alertmanager, {**starttls, 'instance': other, 'host': 'mta2'})
    assert not _inhibited(alertmanager, injection)
