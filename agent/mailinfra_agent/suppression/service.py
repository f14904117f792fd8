"""Apply feedback events to the suppression list: the policy's decision, soft-bounce counting, the new rows.

Idempotent: applying the same event twice adds nothing the second time (unique suppression per scope and
address, one soft-bounce row per event key).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..contract import Contract
from ..feedback.events import Event
from ..store import Database
from .policy import Decision, Policy
from .suppressions import Entry, SuppressionList, address_problem, canonical_address

__all__ = ['EVENT_COLUMNS', 'Applied', 'Suppressor', 'stored_events']

EVENT_COLUMNS = ('key', 'kind', 'status', 'time', 'recipient', 'source', 'stream', 'queue_id', 'smtp_code', 'dsn')
_MORE = ('message_id', 'category')


@dataclass
class Applied:
    """What a run of :meth:`Suppressor.apply_all` did: the new suppressions and why other events changed nothing."""

    added: list[Entry] = field(default_factory=list)
    events: int = 0
    ignored: Counter[str] = field(default_factory=Counter)


class Suppressor:
    def __init__(self, suppressions: SuppressionList, policy: Policy) -> None:
        self.suppressions = suppressions
        self.policy = policy

    @classmethod
    def from_contract(cls, contract: Contract, suppressions: SuppressionList) -> Suppressor:
        return cls(suppressions, Policy(contract.streams, contract.suppression.soft_bounce_window))

    def decide(self, event: Event) -> Decision:
        decision = self.policy.decide(event)
        problem = address_problem(canonical_address(event.recipient))
        if decision.action != 'ignore' and problem is not None:
            return Decision('ignore', 'invalid-address')
        return decision

    def apply(self, event: Event) -> tuple[list[Entry], Decision]:
        """The suppressions ``event`` adds (none when it was applied before), and the policy's decision."""
        decision = self.decide(event)
        if decision.action == 'ignore' or decision.reason is None:
            return [], decision
        db = self.suppressions.db
        added: list[Entry] = []
        with db.transaction():
            if decision.action == 'count':
                scope = decision.scopes[0]
                hashed = self.suppressions.hash(event.recipient)
                if db.dialect == 'postgresql':
                    # Two hosts counting bounces of one recipient at once would each miss the other's row.
                    db.execute('SELECT pg_advisory_xact_lock(?)', (int(hashed[:15], 16),))
                db.execute(
                    'INSERT INTO suppression_soft_bounces (event_key, scope, address_hash, category, message, time) '
                    'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING',
                    (
                        event.key,
                        scope,
                        hashed,
                        event.category,
                        event.queue_id or event.message_id or event.key,
                        int(event.time),
                    ),
                )
                rows = db.execute(
                    'SELECT COUNT(DISTINCT message) FROM suppression_soft_bounces '
                    'WHERE scope = ? AND address_hash = ? AND category = ? AND time > ?',
                    (scope, hashed, event.category, int(event.time) - decision.window),
                )
                if int(rows[0][0]) < decision.threshold:
                    return [], decision
            for scope in decision.scopes:
                entry = self.suppressions.add(
                    scope, event.recipient, decision.reason, event.key, created=event.time, category=event.category
                )
                if entry is not None:
                    added.append(entry)
        return added, decision

    def apply_all(self, events: Iterable[Event]) -> Applied:
        result = Applied()
        for event in events:
            result.events += 1
            added, decision = self.apply(event)
            result.added += added
            if decision.action == 'ignore':
                result.ignored[decision.why] += 1
        return result


def stored_events(db: Database, since: float) -> list[Event]:
    """The events of the ingest table (``feedback_events``, migration 0002) since ``since`` that can suppress."""
    columns = (*EVENT_COLUMNS, *_MORE)
    rows = db.execute(
        f'SELECT {", ".join(columns)} FROM feedback_events WHERE time >= ? '
        "AND status IN ('bounced', 'expired', 'complaint', 'unsubscribe') ORDER BY time, key",
        (since,),
    )
    return [Event(**dict(zip(columns, row, strict=True))) for row in rows]
