"""Alertmanager configuration from ``monitoring.alerts`` and ``monitoring.smarthost``.

Secrets stay in files: the smarthost password as ``smtp_auth_password_file``, a webhook token as
``authorization.credentials_file`` (both supported by Alertmanager 0.25, Debian 12). Alert e-mail leaves through the
spec's smarthost, never through the MTAs being watched. The top route has no ``group_wait``, ``group_interval`` or
``repeat_interval``: roles/prometheus adds them from inventory variables.
"""

from __future__ import annotations

from typing import Any

from ...model.monitoring import Alert, smarthost_address
from ...problems import MailinfraError
from ..base import RenderContext
from .rules.heartbeat import ALERT as HEARTBEAT_ALERT
from .rules.probes import LISTENER_DOWN, STARTTLS_FAILED

ALERTS_RECEIVER = 'alerts'
HEARTBEAT_RECEIVER = 'heartbeat'
NULL_RECEIVER = 'null'
"""A receiver without configurations: what nobody is to receive ends there."""
HEARTBEAT_REPEAT = '5m'
"""The dead-man's switch must arrive often: the heartbeat route repeats it every 5 minutes."""
GROUP_BY = ['alertname', 'severity', 'stream', 'host']
INHIBIT_EQUAL = ['alertname', 'stream', 'isp', 'host', 'instance', 'subject', 'zone', 'name', 'check', 'textfile']
"""What a critical alert must share with a warning to silence it: the warning must be about the same thing (a
complaint rate at another ISP, a drift of another record of the same name, stays)."""
LISTENER_EQUAL = ['host', 'listener', 'instance']
"""What a listener that refuses TCP shares with its failing STARTTLS probe (both probe jobs label a listener alike,
render/monitoring/scrape.py): the STARTTLS warning of a down listener says nothing new."""


def _receiver(name: str, alerts: list[Alert]) -> dict[str, Any]:
    receiver: dict[str, Any] = {'name': name}
    emails = [{'to': alert.target, 'send_resolved': True} for alert in alerts if alert.kind == 'email']
    webhooks = []
    for alert in alerts:
        if alert.kind == 'webhook':
            webhook: dict[str, Any] = {'url': alert.target, 'send_resolved': True}
            if alert.token_file is not None:
                webhook['http_config'] = {'authorization': {'type': 'Bearer', 'credentials_file': alert.token_file}}
            webhooks.append(webhook)
    if emails:
        receiver['email_configs'] = emails
    if webhooks:
        receiver['webhook_configs'] = webhooks
    return receiver


def _global(context: RenderContext) -> dict[str, Any]:
    monitoring = context.deployment.monitoring
    smarthost = monitoring.smarthost
    if not any(alert.kind == 'email' for alert in monitoring.alerts):
        return {}
    if smarthost is None:
        raise MailinfraError(
            'monitoring.alerts has an e-mail alert but monitoring.smarthost is not set: alert mail must leave '
            'through a relay independent of the MTAs it watches'
        )
    settings: dict[str, Any] = {
        'smtp_smarthost': smarthost_address(smarthost.host),
        'smtp_from': smarthost.sender,
        'smtp_require_tls': smarthost.require_tls,
    }
    if smarthost.username is not None:
        settings['smtp_auth_username'] = smarthost.username
    if smarthost.password_file is not None:
        settings['smtp_auth_password_file'] = smarthost.password_file
    return settings


def alertmanager_config(context: RenderContext) -> dict[str, Any]:
    """The Alertmanager configuration (without the top route's timing, which is the role's)."""
    alerts = context.deployment.monitoring.alerts
    to_alerts = [alert for alert in alerts if alert.receives == 'alerts']
    to_heartbeat = [alert for alert in alerts if alert.receives == 'heartbeat']
    receivers = [{'name': NULL_RECEIVER}]
    if to_alerts:
        receivers.append(_receiver(ALERTS_RECEIVER, to_alerts))
    if to_heartbeat:
        receivers.append(_receiver(HEARTBEAT_RECEIVER, to_heartbeat))
    config: dict[str, Any] = {
        'route': {
            'receiver': ALERTS_RECEIVER if to_alerts else NULL_RECEIVER,
            'group_by': GROUP_BY,
            'routes': [
                {
                    'matchers': [f'alertname="{HEARTBEAT_ALERT}"'],
                    'receiver': HEARTBEAT_RECEIVER if to_heartbeat else NULL_RECEIVER,
                    'group_by': ['alertname'],
                    'repeat_interval': HEARTBEAT_REPEAT,
                    'continue': False,
                }
            ],
        },
        'receivers': receivers,
        'inhibit_rules': [
            {
                'source_matchers': ['severity="critical"'],
                'target_matchers': ['severity="warning"'],
                'equal': INHIBIT_EQUAL,
            },
            {
                'source_matchers': [f'alertname="{LISTENER_DOWN}"'],
                'target_matchers': [f'alertname="{STARTTLS_FAILED}"'],
                'equal': LISTENER_EQUAL,
            },
        ],
    }
    settings = _global(context)
    if settings:
        config['global'] = settings
    return config
