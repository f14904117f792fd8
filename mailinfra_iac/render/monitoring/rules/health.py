"""The exporters themselves: node_exporter, mailinfra-agent exporter or the blackbox exporter down (without it the
probes' series vanish and no listener or certificate alert can fire), a queue collector failing."""

from __future__ import annotations

from ...base import RenderContext
from ..scrape import AGENT_JOB, BLACKBOX_JOB, NODE_JOB
from .base import Rule

NAME = 'health'

DOWN_FOR = 300


def rules(context: RenderContext) -> list[Rule]:
    return [
        Rule(
            'MailinfraExporterDown',
            f'up{{job=~"{AGENT_JOB}|{NODE_JOB}|{BLACKBOX_JOB}"}} == 0',
            DOWN_FOR,
            {'severity': 'critical'},
            {
                'summary': 'Exporter {{ $labels.job }} on {{ $labels.host }} is down',
                'description': 'Prometheus cannot scrape {{ $labels.instance }} (job {{ $labels.job }}): the '
                'queues, blocklists, listeners or host of {{ $labels.host }} are not watched.',
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
