"""Rules and dashboard ask for the metrics that exist: the names agreed for issue 12 (exporter, DNSBL and DNS-drift
textfiles, node_exporter's textfile collector, the blackbox exporter), so a typo cannot give a rule that never fires.
Dashboard queries are valid PromQL (checked by promtool as recording rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .harness import PROMTOOL, load_yaml, monitoring_files, rules_spec, run, tool, write_tree

KNOWN = frozenset(
    {
        # mailinfra-agent exporter (MTA hosts)
        'mailinfra_queue_messages',
        'mailinfra_queue_oldest_message_age_seconds',
        'mailinfra_queue_deferred_messages_by_isp',
        'mailinfra_queue_recipient_domain_messages',
        'mailinfra_queue_deferral_reasons',
        'mailinfra_queue_corrupt_files',
        'mailinfra_collector_up',
        'mailinfra_collector_scrape_duration_seconds',
        'mailinfra_collector_errors_total',
        'mailinfra_exporter_build_info',
        # the exporter's feedback counters (issue 13)
        'mailinfra_deliveries_total',
        'mailinfra_bounces_total',
        'mailinfra_complaints_total',
        'mailinfra_feedback_rate_events_total',
        'mailinfra_ingest_problems_total',
        'mailinfra_feedback_up',
        'mailinfra_feedback_scrape_duration_seconds',
        'mailinfra_feedback_errors_total',
        # the exporter's shaping metrics (issue 14, agent/mailinfra_agent/exporter/shaping.py)
        'mailinfra_shaping_active',
        'mailinfra_shaping_active_since_seconds',
        'mailinfra_shaping_actions_total',
        # mailinfra_dnsbl.prom and mailinfra_dns.prom (monitoring host)
        'mailinfra_dnsbl_listed',
        'mailinfra_dnsbl_listed_since_timestamp_seconds',
        'mailinfra_dnsbl_listed_confirmed_timestamp_seconds',
        'mailinfra_dnsbl_zone_working',
        'mailinfra_dnsbl_zone_errors',
        'mailinfra_dnsbl_subjects',
        'mailinfra_dnsbl_last_run_timestamp_seconds',
        'mailinfra_dnsbl_run_success',
        'mailinfra_dns_record_ok',
        'mailinfra_dns_check_last_run_timestamp_seconds',
        'mailinfra_dns_check_success',
        # node_exporter's textfile collector, Prometheus, the blackbox exporter
        'node_textfile_mtime_seconds',
        'node_textfile_scrape_error',
        'up',
        'probe_success',
        'probe_ssl_earliest_cert_expiry',
    }
)
PENDING: frozenset[str] = frozenset()
"""Metrics still to come; only a dashboard panel marked pending may ask for them."""

METRIC = re.compile(r'\b(mailinfra_[a-z_]+|node_[a-z_]+|probe_[a-z_]+|up)\b(?=\s*[{\[)]|\s*$|\s*[<>=!*/+-])')


def _names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(METRIC.findall(without_strings))


def test_metric_pattern_finds_names() -> None:
    assert _names('sum by (stream) (mailinfra_queue_messages{stream="x"}) > 5') == {'mailinfra_queue_messages'}
    assert _names('up{job=~"mailinfra|node"} == 0') == {'up'}
    assert _names('time() - node_textfile_mtime_seconds{file=~"(.*/)?mailinfra_dns\\\\.prom"} > 3') == {
        'node_textfile_mtime_seconds'
    }


def test_rules_ask_only_for_known_metrics(tmp_path: Path) -> None:
    rules = write_tree(monitoring_files(rules_spec()), tmp_path) / 'prometheus' / 'rules'
    used: set[str] = set()
    for path in rules.glob('*.yml'):
        for group in load_yaml(path)['groups']:
            for rule in group['rules']:
                names = _names(rule['expr'])
                assert names or rule['expr'] == 'vector(1)', rule['expr']
                assert names <= KNOWN, (rule['alert'], names - KNOWN)
                used |= names
    assert {'mailinfra_queue_messages', 'mailinfra_dnsbl_listed', 'probe_success', 'up'} <= used


def test_dashboard_queries_are_valid_and_known(tmp_path: Path) -> None:
    files = monitoring_files(rules_spec())
    dashboard = json.loads(files['grafana/mailinfra.json'])
    assert len({panel['id'] for panel in dashboard['panels']}) == len(dashboard['panels'])
    records = []
    for panel in dashboard['panels']:
        for target in panel['targets']:
            names = _names(target['expr'])
            assert names, target['expr']
            if names - KNOWN:
                assert names - KNOWN <= PENDING and 'pending' in panel['title'].lower(), panel['title']
                assert 'bounces-and-complaints issue' in panel['description']
            expr = target['expr'].replace('$stream', '.*')
            records.append({'record': f'panel_{panel["id"]}_{target["refId"]}', 'expr': expr})
    check = tmp_path / 'dashboard-queries.yml'
    check.write_text(yaml.safe_dump({'groups': [{'name': 'dashboard', 'rules': records}]}))
    result = run(tool(PROMTOOL), 'check', 'rules', str(check))
    assert result.returncode == 0, result.stdout + result.stderr
