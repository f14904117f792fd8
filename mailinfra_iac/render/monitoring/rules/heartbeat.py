"""The dead-man's switch: always firing, routed only to the receivers with ``receives: heartbeat``."""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule

NAME = 'heartbeat'
ALERT = 'MailinfraHeartbeat'


def rules(context: RenderContext) -> list[Rule]:
    return [
        Rule(
            ALERT,
            'vector(1)',
            0,
            {'severity': 'none'},
            {
                'summary': 'Alerting pipeline heartbeat',
                'description': 'Always firing. The receiver raises the alarm when it stops arriving: then '
                'Prometheus, Alertmanager or the path to the receiver is broken.',
            },
        )
    ]
