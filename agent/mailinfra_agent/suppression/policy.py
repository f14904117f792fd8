"""What one feedback event means for the suppression list, by the policy of the stream it left through.

- Hard bounce (a permanent reply in ``classify.HARD_CATEGORIES``: bad-mailbox, bad-domain, inactive-mailbox):
  suppressed in that stream at once, unless the stream's category says ``suppress_after: never``.
- Soft bounce (a final ``bounced``/``expired`` outcome of any other category that is not a reputation one):
  suppressed in that stream once ``suppress_after`` distinct messages bounced within ``soft_bounce_window``
  seconds; a category without ``suppress_after`` never suppresses. Deferrals never count: they are retries of
  one message, and the message's final outcome counts once.
- Policy and spam blocks (``classify.REPUTATION_CATEGORIES``): never; they are counted and alerted on elsewhere.
- Complaint and unsubscribe: at once, in that stream and in the streams the contract links to it
  (``Stream.complaint_links``: the controller resolves the default, marketing and cold outreach together, never a
  transactional stream unless the spec names it). An event whose stream is unknown suppresses in every marketing
  and cold-outreach stream of the contract (never a transactional one). Ingest stores a complaint only when our own
  data attributes its recipient (``ingest.store``: ``unattributed-complaint``), so a forged report is no event here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..contract import Stream
from ..feedback.classify import outcome
from ..feedback.events import Event
from .suppressions import Reason

__all__ = ['LINKED_BY_DEFAULT', 'Decision', 'Policy']

LINKED_BY_DEFAULT = frozenset({'marketing', 'cold_outreach'})
"""Stream kinds a complaint of unknown stream suppresses in."""

Action = Literal['suppress', 'count', 'ignore']


@dataclass(frozen=True)
class Decision:
    """``suppress``: now, in ``scopes``; ``count``: a soft bounce, suppressed once ``threshold`` distinct messages
    bounced within ``window`` seconds; ``ignore``: nothing to do, ``why`` says why (a short stable id)."""

    action: Action
    why: str
    reason: Reason | None = None
    scopes: tuple[str, ...] = ()
    threshold: int = 0
    window: int = 0


class Policy:
    def __init__(self, streams: Iterable[Stream], soft_bounce_window: int) -> None:
        self.streams = {stream.name: stream for stream in streams}
        self.soft_bounce_window = soft_bounce_window

    def decide(self, event: Event) -> Decision:
        if event.kind in ('complaint', 'unsubscribe'):
            reason: Reason = 'complaint' if event.kind == 'complaint' else 'unsubscribe'
            return Decision('suppress', event.kind, reason, self._linked(event.stream))
        if event.status not in ('bounced', 'expired'):
            return Decision('ignore', 'not-a-final-bounce')
        if event.category is None:
            return Decision('ignore', 'unclassified')
        stream = self.streams.get(event.stream or '')
        if stream is None:
            return Decision('ignore', 'unknown-stream')
        permanent = event.status == 'bounced' and (event.dsn or event.smtp_code or '').startswith('5')
        result = outcome(event.category, permanent)
        if result == 'policy':
            return Decision('ignore', 'reputation')
        categories = {category.name: category for category in stream.bounce_categories}
        policy = categories.get(event.category)
        if result == 'hard':
            if policy is not None and policy.suppress_after is None:
                return Decision('ignore', 'never-suppressed')
            return Decision('suppress', 'hard-bounce', 'hard-bounce', (stream.name,))
        if policy is None or policy.suppress_after is None:
            return Decision('ignore', 'never-suppressed')
        return Decision(
            'count',
            'soft-bounce',
            'soft-bounce',
            (stream.name,),
            threshold=max(1, policy.suppress_after),
            window=self.soft_bounce_window,
        )

    def _linked(self, name: str | None) -> tuple[str, ...]:
        stream = self.streams.get(name or '')
        if stream is None:
            scopes = [other.name for other in self.streams.values() if other.kind in LINKED_BY_DEFAULT]
        else:
            scopes = [stream.name, *(link for link in stream.complaint_links if link != stream.name)]
        return tuple(dict.fromkeys(scopes))
