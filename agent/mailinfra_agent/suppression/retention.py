"""Retention of personal data in the feedback store (the spec's ``feedback.retention``, the contract's ``Retention``).

Events keep the recipient address for ``Retention.events`` seconds. After that, in events older than the cut-off:

- ``after: hash``: the recipient becomes ``h:<keyed hash>`` (the same HMAC-SHA256 as the suppression list's
  ``address_hash``, so an old event still matches a suppression or an erasure request by hash); ``erase``: it
  becomes the empty string;
- the envelope sender becomes NULL unless it is the null sender ``''`` (a VERP return path can carry the
  recipient), and addresses in the diagnostic text become ``<address>``;
- the message records (``feedback_messages``: queue id -> VERP sender, Message-ID) are deleted: they only serve
  to complete events while a message is in flight;
- webhook outbox rows (``suppression_webhooks``, whose body holds the address) created before the cut-off are
  deleted, delivered or not: a row given up is kept for ``list`` and the metrics only that long.

Soft-bounce rows (``suppression_soft_bounces``) older than the soft-bounce window are deleted when the window is
given: the threshold counts only rows inside it, so older ones would only grow the table.

Counts, categories, streams, ISPs and times stay, so reports and metrics of old days are unchanged. Work is done in
batches (one transaction each) so a run on a big store stays short; rows already done are never touched again
(their recipient is ``''`` or starts with ``h:``), so the pass is idempotent and can be interrupted at any point.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..store import Database

__all__ = ['HASHED_PREFIX', 'RetentionResult', 'apply_retention', 'scrub_addresses']

HASHED_PREFIX = 'h:'
BATCH = 5000
"""Events per transaction."""
_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")


def scrub_addresses(text: str | None) -> str | None:
    """``text`` with every e-mail address replaced by ``<address>``."""
    return None if text is None else _ADDRESS.sub('<address>', text)


@dataclass(frozen=True)
class RetentionResult:
    events: int
    """Events whose addresses were hashed or erased in this run."""
    messages: int
    """Message records deleted."""
    webhooks: int
    """Webhook outbox rows deleted (older than the cut-off)."""
    soft_bounces: int
    """Soft-bounce rows deleted (older than the soft-bounce window)."""
    complete: bool
    """False when ``max_batches`` stopped the run before every old event was done (the next run goes on)."""


def apply_retention(
    db: Database,
    *,
    now: float,
    keep: int,
    after: Literal['hash', 'erase'],
    hash_address: Callable[[str], str],
    soft_bounce_window: int | None = None,
    max_batches: int = 20,
    batch: int = BATCH,
) -> RetentionResult:
    """Hash or erase the addresses of events older than ``now - keep`` seconds; delete old message records, old
    webhook outbox rows and, given ``soft_bounce_window`` (seconds), the soft-bounce rows outside it.

    ``hash_address`` is the suppression list's keyed hash (``SuppressionList.hash``)."""
    cutoff = now - keep
    done = 0
    complete = False
    for _ in range(max_batches):
        rows = db.execute(
            'SELECT key, recipient, sender, diagnostic FROM feedback_events '
            "WHERE time < ? AND recipient <> '' AND recipient NOT LIKE 'h:%' ORDER BY time, key LIMIT ?",
            (cutoff, batch),
        )
        if not rows:
            complete = True
            break
        updates = [
            (
                HASHED_PREFIX + hash_address(str(recipient)) if after == 'hash' else '',
                '' if sender == '' else None,
                scrub_addresses(diagnostic),
                event_key,
            )
            for event_key, recipient, sender, diagnostic in rows
        ]
        with db.transaction():
            for update in updates:
                db.execute('UPDATE feedback_events SET recipient = ?, sender = ?, diagnostic = ? WHERE key = ?', update)
        done += len(updates)
    with db.transaction():
        deleted = db.execute('DELETE FROM feedback_messages WHERE time < ? RETURNING queue_id', (cutoff,))
        webhooks = db.execute('DELETE FROM suppression_webhooks WHERE created < ? RETURNING id', (cutoff,))
        soft_bounces = (
            db.execute(
                'DELETE FROM suppression_soft_bounces WHERE time < ? RETURNING event_key', (now - soft_bounce_window,)
            )
            if soft_bounce_window is not None
            else []
        )
    return RetentionResult(
        events=done,
        messages=len(deleted),
        webhooks=len(webhooks),
        soft_bounces=len(soft_bounces),
        complete=complete,
    )
