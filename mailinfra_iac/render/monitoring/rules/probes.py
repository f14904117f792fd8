"""Blackbox probes of the MX and injection listeners: certificate expiry and a listener that stops answering."""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule

NAME = 'probes'

CERT_WARNING_DAYS = 14
CERT_CRITICAL_DAYS = 3
DOWN_FOR = 300
LISTENER_DOWN = 'MailinfraListenerDown'
STARTTLS_FAILED = 'MailinfraStarttlsFailed'


def rules(context: RenderContext) -> list[Rule]:
    found = [
        Rule(
            'MailinfraTlsCertExpiry',
            f'probe_ssl_earliest_cert_expiry - time() < {days} * 86400',
            0,
            {'severity': severity},
            {
                'summary': 'TLS certificate of {{ $labels.instance }} expires in {{ $value | humanizeDuration }}',
                'description': f'The certificate {{{{ $labels.instance }}}} offers with STARTTLS expires in less '
                f'than {days} days (host {{{{ $labels.host }}}}, {{{{ $labels.listener }}}} listener).',
            },
        )
        for severity, days in (('warning', CERT_WARNING_DAYS), ('critical', CERT_CRITICAL_DAYS))
    ]
    found.append(
        Rule(
            LISTENER_DOWN,
            'probe_success{job="blackbox_tcp"} == 0',
            DOWN_FOR,
            {'severity': 'critical'},
            {
                'summary': 'Listener {{ $labels.instance }} does not answer',
                'description': 'The {{ $labels.listener }} listener {{ $labels.instance }} on {{ $labels.host }} '
                'does not accept TCP connections.',
            },
        )
    )
    found.append(
        Rule(
            STARTTLS_FAILED,
            'probe_success{job="blackbox_smtp_starttls"} == 0',
            DOWN_FOR,
            {'severity': 'warning'},
            {
                'summary': 'SMTP with STARTTLS fails on {{ $labels.instance }}',
                'description': 'The {{ $labels.listener }} listener {{ $labels.instance }} on {{ $labels.host }} '
                'did not complete EHLO, STARTTLS and EHLO again (no TLS offered, or the handshake failed).',
            },
        )
    )
    return found
