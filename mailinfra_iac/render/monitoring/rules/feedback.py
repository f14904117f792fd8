"""Bounce, complaint and deferral rates per stream (and complaints per ISP), from ``monitoring.rates``.

Counters come from the exporter's feedback collector: ``mailinfra_feedback_rate_events_total{stream, isp, event}``,
whose series all start at 0, because ``increase()`` ignores a series' first sample and the per-IP families
(``mailinfra_deliveries_total`` ...) appear with their first event: over those, the first complaint of every new
stream x IP x ISP would be lost. Rates are increases over the stream's ``window`` (default 24h: Gmail and Yahoo judge
daily rates), plus a one-hour window at the critical line for bounces and complaints, so a bad list import pages
within the hour. A rate needs ``MIN_VOLUME`` messages in its window before it alerts: one bounce out of two mails is
not a 50 % bounce rate worth waking anyone for.

Every host of a shared PostgreSQL store exports the same counters (same ``store`` label): ``max without`` the
target's labels counts them once; each host's own SQLite store has its own ``store`` label and is summed. Hard
bounces (``event="hard_bounce"``: hard categories with ``kind="delivery"``) are the MTAs' own: DSNs of our own MTAs
come back to the bounce MX and would count twice.
"""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule, duration

NAME = 'feedback'

MIN_VOLUME = 1000
"""Messages (the rate's denominator) a window needs before its rate can alert."""
SHORT_WINDOW = 3600
LONG_FOR = 900
SHORT_FOR = 300
DOWN_FOR = 600
TARGET_LABELS = 'job, instance, host'
"""The labels Prometheus adds per scraped host (see render/monitoring/scrape.py)."""

EVENTS = 'mailinfra_feedback_rate_events_total'
ATTEMPTS = 'sent|bounced|expired'
"""Final outcomes of delivery attempts: the bounce rate's denominator."""
ALL_ATTEMPTS = 'sent|deferred|bounced|expired'


def _percent(fraction: float) -> str:
    return f'{fraction * 100:g}%'


def _increase(metric: str, matchers: str, window: int, by: str) -> str:
    return f'sum by ({by}) (max without ({TARGET_LABELS}) (increase({metric}{{{matchers}}}[{duration(window)}])))'


def _ratio(
    numerator: tuple[str, str], denominator: tuple[str, str], stream: str, window: int, by: str, threshold: float
) -> str:
    """``numerator / denominator > threshold``, only where the denominator has ``MIN_VOLUME`` messages."""
    top = _increase(numerator[0], f'stream="{stream}",{numerator[1]}', window, by)
    bottom = _increase(denominator[0], f'stream="{stream}",{denominator[1]}', window, by)
    return f'({top} / on ({by}) {bottom}) > {threshold:g} and on ({by}) {bottom} >= {MIN_VOLUME}'


_KINDS = {
    # alert: (what, numerator, denominator, thresholds attribute, rate of what)
    'MailinfraBounceRate': (
        'hard-bounce rate',
        (EVENTS, 'event="hard_bounce"'),
        (EVENTS, f'event=~"{ATTEMPTS}"'),
        'bounce',
        'finished delivery attempts (sent, bounced, expired)',
    ),
    'MailinfraComplaintRate': (
        'complaint rate',
        (EVENTS, 'event="complaint"'),
        (EVENTS, 'event="sent"'),
        'complaint',
        'delivered messages',
    ),
    'MailinfraDeferralRate': (
        'deferral rate',
        (EVENTS, 'event="deferred"'),
        (EVENTS, f'event=~"{ALL_ATTEMPTS}"'),
        'deferral',
        'delivery attempts',
    ),
}


def _rule(alert: str, stream: str, severity: str, threshold: float, window: int, per_isp: bool = False) -> Rule:
    what, numerator, denominator, attribute, of = _KINDS[alert]
    by = 'stream, isp' if per_isp else 'stream'
    name = f'{alert}ByIsp' if per_isp else alert
    who = f'Stream {stream} at {{{{ $labels.isp }}}}' if per_isp else f'Stream {stream}'
    return Rule(
        name,
        _ratio(numerator, denominator, stream, window, by, threshold),
        SHORT_FOR if window == SHORT_WINDOW else LONG_FOR,
        {'severity': severity, 'stream': stream, 'window': duration(window)},
        {
            'summary': f'{who}: {what} {{{{ $value | humanizePercentage }}}} over {duration(window)} '
            f'(over {_percent(threshold)})',
            'description': f'The {what} of stream {stream}{" at {{ $labels.isp }}" if per_isp else ""} over the last '
            f'{duration(window)} is over {_percent(threshold)} of {of} (monitoring.rates {attribute}_{severity}; '
            f'at least {MIN_VOLUME} messages).',
        },
    )


def rules(context: RenderContext) -> list[Rule]:
    rates = context.deployment.monitoring.rates
    found: list[Rule] = []
    for stream in sorted(context.deployment.streams):
        limits = rates.streams.get(stream, rates.default)
        for alert in _KINDS:
            attribute = _KINDS[alert][3]
            for severity in ('warning', 'critical'):
                threshold = getattr(limits, f'{attribute}_{severity}')
                found.append(_rule(alert, stream, severity, threshold, limits.window))
                if alert == 'MailinfraComplaintRate':
                    found.append(_rule(alert, stream, severity, threshold, limits.window, per_isp=True))
            if alert != 'MailinfraDeferralRate' and limits.window > SHORT_WINDOW:
                found.append(_rule(alert, stream, 'critical', getattr(limits, f'{attribute}_critical'), SHORT_WINDOW))
    found.append(
        Rule(
            'MailinfraFeedbackStoreDown',
            'mailinfra_feedback_up == 0',
            DOWN_FOR,
            {'severity': 'warning'},
            {
                'summary': 'The feedback counters on {{ $labels.host }} cannot read their store',
                'description': 'The exporter on {{ $labels.host }} cannot read the feedback store {{ $labels.store }}: '
                'delivery, bounce and complaint counters stand still and the rate alerts cannot fire (see '
                'mailinfra_feedback_errors_total and the exporter log).',
            },
        )
    )
    return found
