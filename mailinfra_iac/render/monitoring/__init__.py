"""Monitoring renderers: alert rules, scrape, Alertmanager and blackbox configurations, a Grafana dashboard.

One concept per module: ``rules/`` (one module per rule family), ``scrape``, ``alertmanager``, ``blackbox``,
``grafana``; ``targets`` says who is watched where. ``MonitoringRenderer`` writes them under ``monitoring/`` for
deployments with a monitoring host; ``rolevars/prometheus.py`` gives the same data to roles/prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..base import GENERATED_MARK, OutputFile, RenderContext
from ..serialise import to_json, to_yaml
from .alertmanager import alertmanager_config
from .blackbox import blackbox_config
from .grafana import dashboard
from .rules import FAMILIES, rule_groups
from .scrape import prometheus_config, scrape_configs
from .targets import monitoring_hosts

RULES_DIR = 'prometheus/rules'


class MonitoringRenderer:
    """Writes ``monitoring/``: what roles/prometheus deploys on the monitoring hosts, for review and promtool."""

    name = 'monitoring'
    description = 'Prometheus rules and scrape configuration, Alertmanager, blackbox exporter, Grafana dashboard.'

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        if not monitoring_hosts(context):
            return
        header = f'{GENERATED_MARK}\nSpec: {context.spec_name}.'
        shared = context.shared  # the render's YAML string cache
        rule_files = []
        for family, group in zip(FAMILIES, rule_groups(context), strict=True):
            path = f'{RULES_DIR}/{family.NAME}.yml'
            rule_files.append(path.removeprefix('prometheus/'))
            yield OutputFile(f'monitoring/{path}', to_yaml({'groups': [group]}, header, shared))
        yield OutputFile(
            'monitoring/prometheus/prometheus.yml', to_yaml(prometheus_config(context, rule_files), header, shared)
        )
        yield OutputFile(
            'monitoring/alertmanager/alertmanager.yml', to_yaml(alertmanager_config(context), header, shared)
        )
        yield OutputFile('monitoring/blackbox/blackbox.yml', to_yaml(blackbox_config(), header, shared))
        yield OutputFile('monitoring/grafana/mailinfra.json', to_json(dashboard(context)))


__all__ = ['MonitoringRenderer', 'alertmanager_config', 'blackbox_config', 'dashboard', 'rule_groups', 'scrape_configs']
