"""Prometheus scrape configurations: exporters on the MTA and monitoring hosts, and the blackbox probes."""

from __future__ import annotations

from typing import Any

from ...facts.hosts import ALERTMANAGER_PORT, BLACKBOX_PORT, NODE_EXPORTER_PORT, PROMETHEUS_PORT
from ..base import RenderContext
from .blackbox import SMTP_STARTTLS, TCP_CONNECT
from .targets import (
    AGENT_EXPORTER_PORT,
    BLACKBOX_ADDRESS,
    Listener,
    listeners,
    monitoring_hosts,
    mta_hosts,
    target_address,
)

AGENT_JOB = 'mailinfra'
NODE_JOB = 'node'
BLACKBOX_JOB = 'blackbox'

INSTANCE_RELABEL = [
    # The exporter's "instance" label (Postfix instance or pmta) clashes with the target's: Prometheus renames it
    # exported_instance, kept here as mta_instance.
    {'source_labels': ['exported_instance'], 'target_label': 'mta_instance'},
    {'regex': 'exported_instance', 'action': 'labeldrop'},
]


def _job(context: RenderContext, name: str, hosts: list[str], port: int) -> dict[str, Any]:
    return {
        'job_name': name,
        'static_configs': [
            {'targets': [f'{target_address(context, host)}:{port}'], 'labels': {'host': host}} for host in hosts
        ],
    }


def _probe_job(name: str, module: str, probed: list[Listener]) -> dict[str, Any]:
    static = []
    for listener in probed:
        labels = {'host': listener.host, 'listener': listener.kind}
        if listener.stream:
            labels['stream'] = listener.stream
        static.append({'targets': [listener.target], 'labels': labels})
    return {
        'job_name': name,
        'metrics_path': '/probe',
        'params': {'module': [module]},
        'static_configs': static,
        'relabel_configs': [
            {'source_labels': ['__address__'], 'target_label': '__param_target'},
            {'source_labels': ['__param_target'], 'target_label': 'instance'},
            {'target_label': '__address__', 'replacement': BLACKBOX_ADDRESS},
        ],
    }


def _local_job(name: str, host: str, port: int) -> dict[str, Any]:
    """A service of the monitoring host itself, scraped over loopback (the role binds them to 127.0.0.1)."""
    return {'job_name': name, 'static_configs': [{'targets': [f'127.0.0.1:{port}'], 'labels': {'host': host}}]}


def scrape_configs(context: RenderContext, host: str | None = None) -> list[dict[str, Any]]:
    """The scrape configuration of the Prometheus on monitoring host ``host`` (default: the first one).

    Every Prometheus scrapes the exporters of all hosts, and its own Prometheus, Alertmanager and blackbox
    exporter over loopback.
    """
    mtas, monitors = mta_hosts(context), monitoring_hosts(context)
    nodes = mtas + [name for name in monitors if name not in mtas]
    agent = _job(context, AGENT_JOB, mtas, AGENT_EXPORTER_PORT)
    agent['metric_relabel_configs'] = INSTANCE_RELABEL
    probed = listeners(context)
    local = host if host is not None else (monitors[0] if monitors else None)
    own = (
        [
            _local_job('prometheus', local, PROMETHEUS_PORT),
            _local_job('alertmanager', local, ALERTMANAGER_PORT),
            _local_job(BLACKBOX_JOB, local, BLACKBOX_PORT),
        ]
        if local is not None
        else []
    )
    return [
        _job(context, NODE_JOB, nodes, NODE_EXPORTER_PORT),
        agent,
        *own,
        _probe_job('blackbox_smtp_starttls', SMTP_STARTTLS, [listener for listener in probed if listener.starttls]),
        _probe_job('blackbox_tcp', TCP_CONNECT, probed),
    ]


def prometheus_config(context: RenderContext, rule_files: list[str]) -> dict[str, Any]:
    """The whole prometheus.yml of the render output (the role writes its own from the same scrape configs,
    with the intervals from inventory variables; Prometheus' defaults here)."""
    return {
        'alerting': {'alertmanagers': [{'static_configs': [{'targets': [f'127.0.0.1:{ALERTMANAGER_PORT}']}]}]},
        'rule_files': rule_files,
        'scrape_configs': scrape_configs(context),
    }
