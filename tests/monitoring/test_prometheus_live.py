"""The rendered rules in a real Prometheus (Debian's) against real exporters of a healthy host, on loopback: the
agent's exporter reading real Postfix instances and a migrated feedback store, Debian's node_exporter reading the
blocklist and DNS-drift textfiles the agent writes, and Debian's blackbox exporter probing an SMTP server with
STARTTLS. Nothing but the heartbeat may be pending or firing; an exporter that stops, or a textfile that goes
missing, must show as an alert, which ends when it comes back; a listing the agent writes reaches its alert; the
first complaint of a new stream x IP x ISP reaches the rate rules' increase().

The scrape configuration is the rendered one with every target moved to loopback; Alertmanager is left out (no
rule watches it: the heartbeat does)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_agent.dnsbl.check import Report, Result, ZoneStatus
from mailinfra_agent.dnsbl.decode import Code
from mailinfra_agent.dnsbl.metrics import write_textfile as write_dnsbl
from mailinfra_agent.drift.runner import DriftReport, RecordResult
from mailinfra_agent.drift.textfile import write_textfile as write_drift
from mailinfra_agent.feedback.events import Event, event_key
from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events

from ..agent.test_exporter_process import needs_postfix, postfix_host, start_exporter  # noqa: F401
from .harness import monitoring_files, rules_spec, serve, stop, tool, wait, write_tree
from .test_blackbox_probe import BLACKBOX, smtp_server  # noqa: F401

PROMETHEUS = '/usr/bin/prometheus'
NODE_EXPORTER = '/usr/bin/prometheus-node-exporter'
HEALTHY = {'MailinfraHeartbeat'}
DNSBL_MTIME = r'node_textfile_mtime_seconds{file=~"(.*/)?mailinfra_dnsbl\\.prom"}'


def _serve(command: list[str], port: int, ready: str = '/metrics') -> subprocess.Popen[bytes]:
    return serve(command, f'http://127.0.0.1:{port}{ready}')


class Prometheus:
    def __init__(self, port: int) -> None:
        self.base = f'http://127.0.0.1:{port}/api/v1'

    def get(self, path: str, **query: str) -> Any:
        url = f'{self.base}/{path}?{urllib.parse.urlencode(query)}'
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)['data']

    def up(self) -> dict[str, float]:
        return {
            item['metric']['job']: float(item['value'][1])
            for item in self.get('query', query='min by (job) (up)')['result']
        }

    def alerts(self) -> set[tuple[str, str]]:
        """(alert name, the job or textfile it is about) of every pending or firing alert, after two more rounds of
        every rule group."""
        self.evaluated()
        found = self.get('alerts')['alerts']
        return {(a['labels']['alertname'], a['labels'].get('job') or a['labels'].get('textfile', '')) for a in found}

    def value(self, query: str) -> float | None:
        """The one value of an instant query, None when it has no result."""
        result = self.get('query', query=query)['result']
        assert len(result) <= 1, result
        return float(result[0]['value'][1]) if result else None

    def evaluated(self) -> None:
        def rounds() -> list[float]:
            groups = self.get('rules')['groups']
            return [dt_seconds(group['lastEvaluation']) for group in groups]

        start = max(rounds())
        wait(lambda: min(rounds()) > start + 1, 'two rounds of every rule group')


def dt_seconds(stamp: str) -> float:
    """An RFC 3339 time of the API (nanoseconds, ``Z``) as Unix seconds."""
    whole, _, fraction = stamp.rstrip('Z').partition('.')
    return dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC).timestamp() + float(f'0.{fraction or 0}')


def _loopback_config(rendered: dict[str, Any], ports: dict[str, int], smtp: int, rules: list[str]) -> dict[str, Any]:
    jobs = []
    for job in rendered['scrape_configs']:
        name = job['job_name']
        if name == 'alertmanager':
            continue
        for static in job['static_configs']:
            if job.get('metrics_path') == '/probe':
                static['targets'] = [f'127.0.0.1:{smtp}']
            else:
                static['targets'] = [f'127.0.0.1:{ports[name]}']
        for relabel in job.get('relabel_configs', []):
            if relabel.get('target_label') == '__address__':
                relabel['replacement'] = f'127.0.0.1:{ports["blackbox"]}'
        jobs.append(job)
    return {
        'global': {'scrape_interval': '1s', 'evaluation_interval': '1s'},
        'rule_files': rules,
        'scrape_configs': jobs,
    }


def _healthy_textfiles(directory: Path) -> None:
    now = time.time()
    zones = (ZoneStatus('zen.spamhaus.org', True, 'ok'), ZoneStatus('psbl.surriel.com', True, 'ok'))
    write_dnsbl(Report((), zones, started=now), directory / 'mailinfra_dnsbl.prom', success=True, now=now)
    records = [RecordResult('testco.example', 'TXT', 'spf', True, 'as expected', '127.0.0.1')]
    write_drift(DriftReport(records, ['127.0.0.1'], finished=now), directory / 'mailinfra_dns.prom')


@pytest.fixture
def host(
    tmp_path: Path,
    postfix_host: tuple[Path, dict[str, Any]],  # noqa: F811
    start_exporter: Any,  # noqa: F811
    smtp_server: int,  # noqa: F811
) -> Iterator[tuple[Prometheus, dict[str, Any]]]:
    root, contract = postfix_host
    store = tmp_path / 'agent.db'
    with connect_sqlite(store) as database:
        migrate(database)
    contract['store'] = {'backend': 'sqlite', 'path': str(store), 'dsn': None, 'password_file': None}
    exporter = start_exporter(contract, '--postfix-config-root', str(root / 'etc'))
    tree = write_tree(monitoring_files(rules_spec()), tmp_path / 'rendered')
    textfiles = tmp_path / 'textfiles'
    textfiles.mkdir()
    _healthy_textfiles(textfiles)
    ports = {'node': free_port(), 'mailinfra': exporter.port, 'blackbox': free_port(), 'prometheus': free_port()}
    node = [tool(NODE_EXPORTER), f'--web.listen-address=127.0.0.1:{ports["node"]}']
    node.append(f'--collector.textfile.directory={textfiles}')
    blackbox = [tool(BLACKBOX), f'--config.file={tree / "blackbox" / "blackbox.yml"}']
    blackbox.append(f'--web.listen-address=127.0.0.1:{ports["blackbox"]}')
    rendered = yaml.safe_load((tree / 'prometheus' / 'prometheus.yml').read_text())
    rules = [str(tree / 'prometheus' / name) for name in rendered['rule_files']]
    config = tmp_path / 'prometheus.yml'
    config.write_text(yaml.safe_dump(_loopback_config(rendered, ports, smtp_server, rules)))
    prometheus = [tool(PROMETHEUS), f'--config.file={config}', f'--storage.tsdb.path={tmp_path / "tsdb"}']
    prometheus.append(f'--web.listen-address=127.0.0.1:{ports["prometheus"]}')
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:  # the test restarts exporters: stop the ones running at the end
        processes['node'] = _serve(node, ports['node'])
        processes['blackbox'] = _serve(blackbox, ports['blackbox'])
        processes['prometheus'] = _serve(prometheus, ports['prometheus'], '/-/ready')
        server = Prometheus(ports['prometheus'])
        wait(
            lambda: server.up() == {job: 1.0 for job in ports} | {'blackbox_smtp_starttls': 1, 'blackbox_tcp': 1},
            'every target up',
        )
        yield (
            server,
            {
                'processes': processes,
                'commands': {'node': node, 'blackbox': blackbox},
                'ports': ports,
                'textfiles': textfiles,
                'store': store,
                'rules': tree / 'prometheus' / 'rules',
            },
        )
    finally:
        for process in processes.values():
            stop(process)


@needs_postfix
def test_a_healthy_host_raises_no_alert_and_a_stopped_exporter_does(host: tuple[Prometheus, dict[str, Any]]) -> None:
    server, parts = host
    assert {name for name, _ in server.alerts()} == HEALTHY

    # the blackbox exporter stops: the listener and certificate alerts cannot fire without it, so it must show
    stop(parts['processes']['blackbox'])
    wait(lambda: server.up()['blackbox'] == 0, 'blackbox seen down')
    assert ('MailinfraExporterDown', 'blackbox') in server.alerts()
    parts['processes']['blackbox'] = _serve(parts['commands']['blackbox'], parts['ports']['blackbox'])
    wait(lambda: server.up()['blackbox'] == 1, 'blackbox seen up')
    assert {name for name, _ in server.alerts()} == HEALTHY

    # node_exporter stops: its series go stale, so the textfiles are absent too; all ends when it is back
    stop(parts['processes']['node'])
    wait(lambda: server.up()['node'] == 0, 'node_exporter seen down')
    assert {
        ('MailinfraExporterDown', 'node'),
        ('MailinfraTextfileMissing', 'mailinfra_dnsbl.prom'),
        ('MailinfraTextfileMissing', 'mailinfra_dns.prom'),
    } <= server.alerts()
    parts['processes']['node'] = _serve(parts['commands']['node'], parts['ports']['node'])
    wait(lambda: server.up()['node'] == 1, 'node_exporter seen up')
    assert {name for name, _ in server.alerts()} == HEALTHY

    # a textfile goes missing (absent()), then comes back
    dnsbl = parts['textfiles'] / 'mailinfra_dnsbl.prom'
    dnsbl.rename(parts['textfiles'] / 'kept')
    wait(lambda: server.value(DNSBL_MTIME) is None, 'node_exporter scraped without mailinfra_dnsbl.prom')
    assert ('MailinfraTextfileMissing', 'mailinfra_dnsbl.prom') in server.alerts()
    (parts['textfiles'] / 'kept').rename(dnsbl)
    wait(lambda: server.value(DNSBL_MTIME) is not None, 'node_exporter scraped mailinfra_dnsbl.prom again')
    assert {name for name, _ in server.alerts()} == HEALTHY

    # a listing the agent writes reaches the listing alert with its labels and annotations
    now = time.time()
    listed = Result(
        'news.testco.example',
        'domain',
        'dbl.spamhaus.org',
        'listed',
        listings=(Code('127.0.1.2', ''),),
        severity='critical',
    )
    zones = (ZoneStatus('dbl.spamhaus.org', True, 'ok'),)
    since = {('news.testco.example', 'dbl.spamhaus.org'): int(now) - 3600}
    write_dnsbl(Report((listed,), zones, started=now), dnsbl, since, success=True, now=now)
    wait(lambda: server.value('count(mailinfra_dnsbl_listed)') is not None, 'the listing scraped')
    server.evaluated()
    [alert] = [a for a in server.get('alerts')['alerts'] if a['labels']['alertname'] == 'MailinfraDnsblListed']
    assert {key: alert['labels'][key] for key in ('subject', 'subject_kind', 'zone', 'code', 'severity')} == {
        'subject': 'testco.example',
        'subject_kind': 'domain',
        'zone': 'dbl.spamhaus.org',
        'code': '127.0.1.2',
        'severity': 'critical',
    }
    assert alert['annotations']['listed_names'] == 'news.testco.example'
    assert 'not documented' not in alert['annotations']['meaning']


@needs_postfix
def test_the_first_complaint_of_a_new_label_set_reaches_the_rate_rules(
    host: tuple[Prometheus, dict[str, Any]],
) -> None:
    """increase() ignores a series' first sample: the per-IP family's new series shows no increase, the rate family
    (served from 0) shows the complaint, in the expression MailinfraComplaintRateByIsp uses."""
    server, parts = host
    numerator = (
        'sum by (stream, isp) (max without (job, instance, host) (increase(mailinfra_feedback_rate_events_total'
        '{stream="transactional",event="complaint"}[6h])))'
    )
    rules = yaml.safe_load((parts['rules'] / 'feedback.yml').read_text())
    [by_isp] = [
        rule['expr']
        for group in rules['groups']
        for rule in group['rules']
        if rule['alert'] == 'MailinfraComplaintRateByIsp'
        and rule['labels'] == {'severity': 'warning', 'stream': 'transactional', 'window': '6h'}
    ]
    assert by_isp.startswith(f'({numerator} / ')
    zero = 'mailinfra_feedback_rate_events_total{stream="transactional",isp="yahoo",event="complaint"}'
    wait(lambda: server.value(zero) == 0, 'the zero rate series scraped')
    complaint = Event(
        key=event_key('live', 1),
        kind='complaint',
        status='complaint',
        stream='transactional',
        sending_ip='203.0.113.11',
        isp='yahoo',
        recipient='someone@yahoo.com',
        source='maildir:1.live',
        time=time.time(),
    )
    with connect_sqlite(parts['store']) as database, database.transaction():
        insert_events(database, [complaint])
    per_ip = 'mailinfra_complaints_total{stream="transactional",sending_ip="203.0.113.11",isp="yahoo"}'
    wait(lambda: (server.value(f'count_over_time({per_ip}[6h])') or 0) >= 2, 'the complaint scraped twice')
    assert server.value(f'sum(increase({per_ip}[6h]))') == 0, 'the per-IP series starts at its first event'
    by_isp_now = {
        item['metric']['isp']: float(item['value'][1]) for item in server.get('query', query=numerator)['result']
    }
    assert 1 <= by_isp_now.pop('yahoo') < 2  # one complaint, extrapolated to the window's end (up to about 1.55)
    assert by_isp_now and set(by_isp_now.values()) == {0}, 'every other ISP of the stream: 0'
