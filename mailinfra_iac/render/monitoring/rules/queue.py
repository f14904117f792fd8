"""Queue depth and age per stream (``monitoring.queue`` and its per-stream overrides; age only where a host of the
stream is Postfix: PowerMTA's API has no message age), a deferred queue that grows while its stream delivers nothing,
and damaged queue files set aside."""

from __future__ import annotations

from ...base import RenderContext
from .base import Rule, duration
from .feedback import EVENTS

NAME = 'queue'

DEPTH_FOR = 600
AGE_FOR = 300
STUCK_WINDOW = 1800
STUCK_FOR = 900
STUCK_FLOOR = 10
"""Deferred messages an instance must hold to be stuck: a few messages waiting for dead MXes are not."""
SENT_OWN = f'{EVENTS}{{event="sent", store=~"sqlite-.+"}}'
"""Deliveries counted by a host's own SQLite store (``store="sqlite-<host>"``): that host's only, matched per host
(the feedback store's counters; absent without a store, and then the rule reads the queue alone)."""
SENT_SHARED = f'{EVENTS}{{event="sent", store=~"postgresql-.+"}}'
"""Deliveries counted by a shared PostgreSQL store: the same counts on every host, which cannot tell hosts apart,
matched per stream."""


def _thresholds(context: RenderContext, stream: str) -> dict[str, tuple[int, int]]:
    """``{'warning': (depth, age), 'critical': (depth, age)}`` for one stream."""
    queue = context.deployment.monitoring.queue
    override = queue.streams.get(stream)

    def pick(own: int | None, default: int) -> int:
        return own if own is not None else default

    if override is None:
        return {
            'warning': (queue.depth_warning, queue.age_warning),
            'critical': (queue.depth_critical, queue.age_critical),
        }
    return {
        'warning': (pick(override.depth_warning, queue.depth_warning), pick(override.age_warning, queue.age_warning)),
        'critical': (
            pick(override.depth_critical, queue.depth_critical),
            pick(override.age_critical, queue.age_critical),
        ),
    }


def rules(context: RenderContext) -> list[Rule]:
    found: list[Rule] = []
    for stream in sorted(context.deployment.streams):
        for severity, (depth, age) in _thresholds(context, stream).items():
            found.append(
                Rule(
                    'MailinfraQueueDepth',
                    f'sum by (stream) (mailinfra_queue_messages{{stream="{stream}"}}) > {depth}',
                    DEPTH_FOR,
                    {'severity': severity, 'stream': stream},
                    {
                        'summary': f'Stream {stream}: {{{{ $value }}}} messages queued (over {depth})',
                        'description': f'Messages of stream {stream} in all queues of all hosts have been over '
                        f'{depth} for {duration(DEPTH_FOR)} (monitoring.queue depth_{severity}).',
                    },
                )
            )
            if not context.facts.queue_age_exported(stream):
                continue  # the rule could never fire
            found.append(
                Rule(
                    'MailinfraQueueAge',
                    'max by (stream) (mailinfra_queue_oldest_message_age_seconds'
                    f'{{stream="{stream}",queue="deferred"}}) > {age}',
                    AGE_FOR,
                    {'severity': severity, 'stream': stream},
                    {
                        'summary': f'Stream {stream}: oldest deferred message is '
                        '{{ $value | humanizeDuration }} old',
                        'description': f'The oldest deferred message of stream {stream} is older than '
                        f'{duration(age)} (monitoring.queue age_{severity}).',
                    },
                )
            )
    window = duration(STUCK_WINDOW)
    deferred = 'mailinfra_queue_messages{queue="deferred"}'
    found.append(
        Rule(
            'MailinfraQueueStuck',
            # deriv, not delta or resets: the agent counts deferred/, and every queue run moves the due messages to
            # active and back, so a stuck queue dips at each run; the slope over the window still grows.
            f'({deferred} >= {STUCK_FLOOR} and deriv({deferred}[{window}]) > 0)'
            f' unless on (stream, host) (sum by (stream, host) (increase({SENT_OWN}[{window}])) > 0)'
            f' unless on (stream) (sum by (stream) (increase({SENT_SHARED}[{window}])) > 0)',
            STUCK_FOR,
            {'severity': 'warning'},
            {
                'summary': 'Stream {{ $labels.stream }} on {{ $labels.host }}: the deferred queue grows and nothing '
                'is delivered',
                'description': 'The deferred queue of {{ $labels.mta_instance }} on {{ $labels.host }} holds '
                f'{{{{ $value }}}} messages (at least {STUCK_FLOOR}), grew over {window} (the trend: queue runs move '
                'messages to active and back), and stream {{ $labels.stream }} delivered nothing on that host over '
                'that time (a shared store: on no host; without the feedback store: the queue alone).',
            },
        )
    )
    found.append(
        Rule(
            'MailinfraQueueCorruptFiles',
            'mailinfra_queue_corrupt_files > 0',
            0,
            {'severity': 'warning'},
            {
                'summary': '{{ $labels.mta_instance }} on {{ $labels.host }}: {{ $value }} damaged queue files in '
                'corrupt/',
                'description': 'Postfix found {{ $value }} queue files of {{ $labels.mta_instance }} on '
                '{{ $labels.host }} damaged and moved them to corrupt/ in its queue directory: their messages are '
                'not delivered and no queue listing shows them. The mail log says why (postcat reads what is left); '
                'remove them when done.',
            },
        )
    )
    return found
