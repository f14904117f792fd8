"""The textfile metrics of the monitoring host's timers: stale, missing, or unreadable by node_exporter."""

from __future__ import annotations

from ...base import RenderContext
from ..targets import DNS_DRIFT_INTERVAL, DNS_DRIFT_TEXTFILE, DNSBL_TEXTFILE
from .base import Rule, duration

NAME = 'textfile'

STALE_RUNS = 3
"""A file is stale after this many intervals of its timer without a new write."""


def _selector(name: str) -> str:
    # node_exporter >= 1.4 puts the full path in "file", older ones the base name: match both.
    pattern = '(.*/)?' + name.replace('.', '\\\\.')
    return f'node_textfile_mtime_seconds{{file=~"{pattern}"}}'


def rules(context: RenderContext) -> list[Rule]:
    files = [
        (DNSBL_TEXTFILE, context.deployment.monitoring.dnsbl_check_interval(), 'mailinfra-agent dnsbl check'),
        (DNS_DRIFT_TEXTFILE, DNS_DRIFT_INTERVAL, 'mailinfra-agent dns-drift'),
    ]
    found: list[Rule] = []
    for name, interval, writer in files:
        limit = STALE_RUNS * interval
        found.append(
            Rule(
                'MailinfraTextfileStale',
                f'time() - {_selector(name)} > {limit}',
                0,
                {'severity': 'warning', 'textfile': name},
                {
                    'summary': f'{name} on {{{{ $labels.host }}}} was last written '
                    '{{ $value | humanizeDuration }} ago',
                    'description': f'{writer} runs every {duration(interval)}; {name} is older than '
                    f'{STALE_RUNS} runs ({duration(limit)}): its metrics and alerts are out of date.',
                },
            )
        )
        found.append(
            Rule(
                'MailinfraTextfileMissing',
                f'absent({_selector(name)})',
                limit,
                {'severity': 'warning', 'textfile': name},
                {
                    'summary': f'No host exports {name}',
                    'description': f'node_exporter on no host has read {name} for {duration(limit)}: '
                    f'{writer} has not run, or writes elsewhere than the textfile directory.',
                },
            )
        )
    found.append(
        Rule(
            'MailinfraTextfileScrapeError',
            'node_textfile_scrape_error == 1',
            0,
            {'severity': 'warning'},
            {
                'summary': 'node_exporter on {{ $labels.host }} cannot read a textfile',
                'description': 'node_textfile_scrape_error is 1 on {{ $labels.host }}: a .prom file in the textfile '
                'directory is unreadable or malformed, so its metrics are missing.',
            },
        )
    )
    return found
