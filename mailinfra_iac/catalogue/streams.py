"""Defaults per stream kind: how quickly to retry and when to give up."""

from __future__ import annotations

from ..model.bounce import RetrySchedule

RETRY: dict[str, RetrySchedule] = {
    # Password resets and receipts are worthless after a few hours: retry fast, give up soon.
    'transactional': RetrySchedule(min_backoff=60, max_backoff=900, queue_lifetime=4 * 3600),
    # Newsletters can wait; long back-off protects reputation during blocks.
    'marketing': RetrySchedule(min_backoff=600, max_backoff=7200, queue_lifetime=2 * 86400),
    # Cold outreach must not hammer anyone: slow retries, short lifetime.
    'cold_outreach': RetrySchedule(min_backoff=900, max_backoff=4 * 3600, queue_lifetime=86400),
    'custom': RetrySchedule(min_backoff=300, max_backoff=3600, queue_lifetime=3 * 86400),
}

SCHEDULE: dict[str, tuple[int, ...]] = {
    'transactional': (60, 300, 600, 900),
    'marketing': (600, 1800, 3600, 7200),
    'cold_outreach': (900, 3600, 7200, 14400),
    'custom': (300, 900, 1800, 3600),
}
"""Retry intervals for ordinary temporary failures; the last one repeats."""

REPUTATION_SCHEDULE: dict[str, tuple[int, ...]] = {
    'transactional': (900, 1800, 3600),
    'marketing': (1800, 3600, 7200, 14400),
    'cold_outreach': (3600, 7200, 14400),
    'custom': (1800, 3600, 7200),
}
"""Retry intervals for policy- and spam-related deferrals (the "slow down" categories)."""
