"""A Grafana dashboard: queues per stream, blocklist status, deferrals and deliveries per ISP."""

from __future__ import annotations

from typing import Any

from ..base import RenderContext

DATASOURCE = {'type': 'prometheus', 'uid': '${datasource}'}
DELIVERY_COUNTERS = (
    'Delivery attempts per second by ISP and outcome (sent, deferred, bounced, expired), from the feedback store '
    '(mailinfra_deliveries_total).'
)
DELIVERIES_PER_ISP = (
    'sum by (isp, status) (max without (job, instance, host) (rate(mailinfra_deliveries_total{stream=~"$stream"}[5m])))'
)
"""Every host of a shared store serves the same counts (same ``store``): their maximum counts them once."""


def _panel(panel_id: int, title: str, kind: str, exprs: list[tuple[str, str]], x: int, y: int, **extra: Any) -> dict:
    panel: dict[str, Any] = {
        'id': panel_id,
        'title': title,
        'type': kind,
        'datasource': DATASOURCE,
        'gridPos': {'h': 8, 'w': 12, 'x': x, 'y': y},
        'targets': [
            {'refId': chr(ord('A') + index), 'expr': expr, 'legendFormat': legend, 'datasource': DATASOURCE}
            for index, (expr, legend) in enumerate(exprs)
        ],
    }
    panel.update(extra)
    return panel


def dashboard(context: RenderContext) -> dict[str, Any]:
    client = context.deployment.client.name
    panels = [
        _panel(
            1,
            'Queued messages per stream',
            'timeseries',
            [('sum by (stream, queue) (mailinfra_queue_messages{stream=~"$stream"})', '{{stream}} {{queue}}')],
            0,
            0,
        ),
        _panel(
            2,
            'Oldest deferred message per stream',
            'timeseries',
            [
                (
                    'max by (stream) (mailinfra_queue_oldest_message_age_seconds{stream=~"$stream",queue="deferred"})',
                    '{{stream}}',
                )
            ],
            12,
            0,
            fieldConfig={'defaults': {'unit': 's'}, 'overrides': []},
        ),
        _panel(
            3,
            'Blocklist listings',
            'table',
            [('mailinfra_dnsbl_listed', '')],
            0,
            8,
            description='One row per listed subject and zone (mailinfra-agent dnsbl check).',
        ),
        _panel(
            4,
            'Blocklist zones not working here',
            'stat',
            [('count(mailinfra_dnsbl_zone_working == 0) or vector(0)', 'zones')],
            12,
            8,
        ),
        _panel(
            5,
            'Deferred messages per ISP',
            'timeseries',
            [('sum by (isp) (mailinfra_queue_deferred_messages_by_isp{stream=~"$stream"})', '{{isp}}')],
            0,
            16,
        ),
        _panel(
            6,
            'Deferral reasons',
            'timeseries',
            [('sum by (status) (mailinfra_queue_deferral_reasons{stream=~"$stream"})', '{{status}}')],
            12,
            16,
        ),
        _panel(
            7,
            'Deliveries per ISP',
            'timeseries',
            [(DELIVERIES_PER_ISP, '{{isp}} {{status}}')],
            0,
            24,
            description=DELIVERY_COUNTERS,
        ),
        _panel(
            8,
            'DNS records that drifted',
            'table',
            [('mailinfra_dns_record_ok == 0', '')],
            12,
            24,
        ),
    ]
    return {
        'title': f'Mail infrastructure: {client}',
        'uid': 'mailinfra',
        'tags': ['mailinfra'],
        'schemaVersion': 38,
        'version': 1,
        'editable': True,
        'time': {'from': 'now-6h', 'to': 'now'},
        'refresh': '1m',
        'panels': panels,
        'templating': {
            'list': [
                {'name': 'datasource', 'type': 'datasource', 'query': 'prometheus', 'label': 'Data source'},
                {
                    'name': 'stream',
                    'type': 'custom',
                    'label': 'Stream',
                    'multi': True,
                    'includeAll': True,
                    'allValue': '.*',
                    'query': ','.join(sorted(context.deployment.streams)),
                    'current': {'text': 'All', 'value': '$__all'},
                },
            ]
        },
    }
