"""The exporters themselves: node_exporter and mailinfra-agent exporter down, a queue collector failing."""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule

NAME = 'health'

DOWN_FOR = 300


def rules(context: RenderContext) -> list[Rule]:
    return [
        Rule(
            'MailinfraExporterDown',
            'up{job=~"mailinfra|node"} == 0',
            DOWN_FOR,
            {'severity': 'critical'},
            {
                'summary': 'Exporter {{ $labels.job }} on {{ $labels.host }} is down',
                'description': 'Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}): the '
                'queues, blocklists or host of {{ $labels.host }} are not watched.',
            },
        ),
        Rule(
            'MailinfraCollectorDown',
            'mailinfra_collector_up == 0',
            DOWN_FOR,
            {'severity': 'warning'},
            {
                'summary': 'Queue collector {{ $labels.collector }} on {{ $labels.host }} fails',
                'description': 'The exporter answers but its {{ $labels.collector }} collector failed for '
                '{{ $labels.mta_instance }}: queue metrics are missing (see mailinfra_collector_errors_total).',
            },
        ),
    ]
