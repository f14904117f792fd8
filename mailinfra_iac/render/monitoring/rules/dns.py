"""DNS drift: published records that no longer match the spec (``mailinfra-agent dns-drift``, textfile)."""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule

NAME = 'dns'

CRITICAL_CHECKS = 'spf|dkim|dmarc|ptr|mx|a'
"""Records without which mail is rejected or unauthenticated; the others (MTA-STS, TLS-RPT) only warn."""


def rules(context: RenderContext) -> list[Rule]:
    annotations = {
        'summary': 'DNS {{ $labels.check }} record {{ $labels.name }} {{ $labels.type }} changed under us',
        'description': 'The published {{ $labels.type }} record of {{ $labels.name }} does not match the spec '
        '({{ $labels.check }} check of mailinfra-agent dns-drift). Run mailinfra dns check for details.',
    }
    return [
        Rule(
            'MailinfraDnsDrift',
            f'mailinfra_dns_record_ok{{check=~"{CRITICAL_CHECKS}"}} == 0',
            0,
            {'severity': 'critical'},
            annotations,
        ),
        Rule(
            'MailinfraDnsDrift',
            f'mailinfra_dns_record_ok{{check!~"{CRITICAL_CHECKS}"}} == 0',
            0,
            {'severity': 'warning'},
            annotations,
        ),
        Rule(
            'MailinfraDnsDriftCheckFailed',
            'mailinfra_dns_check_success == 0',
            0,
            {'severity': 'warning'},
            {
                'summary': 'The DNS drift check on {{ $labels.host }} failed',
                'description': 'The last run of mailinfra-agent dns-drift could not check the records (resolver '
                'unreachable?): drift would go unnoticed.',
            },
        ),
    ]
