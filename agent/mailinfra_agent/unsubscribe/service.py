"""What one unsubscribe request does, without HTTP: check the token, store the event, suppress the address.

The same token applied twice is one event (its key comes from what the token says) and one suppression per
scope; both calls answer success, because providers retry. A store that cannot be used raises
:class:`~mailinfra_agent.store.StoreError` before anything is committed, so the caller answers "try again
later" and nothing is lost. Tokens and addresses never reach a log: :func:`short_hash` names them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from ..contract import Contract
from ..feedback.events import Event, event_key
from ..feedback.tokens import TokenError, UnsubscribeToken, verify_token
from ..store import Database, StoreError, connect
from ..store.events import Problem, add_problems, insert_events
from ..suppression import Entry, Policy, SuppressionList, Suppressor, canonical_address

__all__ = ['OUTCOMES', 'Outcome', 'Result', 'Unsubscriber', 'short_hash', 'unsubscribe_event']

Outcome = Literal[
    'accepted', 'duplicate', 'confirm', 'forged', 'expired', 'malformed', 'rate-limited', 'store-unavailable'
]
OUTCOMES: tuple[Outcome, ...] = (
    'accepted',
    'duplicate',
    'confirm',
    'forged',
    'expired',
    'malformed',
    'rate-limited',
    'store-unavailable',
)
SOURCE = 'http'
"""``Event.source`` of the endpoint's events."""
PROBLEM_KIND = 'unsubscribe'
"""``ingest_problems.source_kind`` of refused tokens (forged, expired, malformed) and of valid tokens whose address
cannot be suppressed (``invalid-address``): exported like ingest problems."""
INVALID_ADDRESS = 'invalid-address'
"""The suppression policy's ``why`` for an address it refuses to store."""


def short_hash(text: str) -> str:
    """12 hex digits of SHA-256: tells log lines of one token apart without showing it."""
    return hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:12]


def unsubscribe_event(token: UnsubscribeToken, now: float) -> Event:
    """The event of a valid token; its key depends only on the token's content, so a retry is the same event."""
    return Event(
        key=event_key('unsubscribe', token.recipient.lower(), token.stream, token.segment, token.issued),
        kind='unsubscribe',
        status='unsubscribe',
        time=now,
        # the form the gate and the policy service look recipients up in (IDNA domain, no trailing dot)
        recipient=canonical_address(token.recipient),
        source=SOURCE,
        stream=token.stream,
        segment=token.segment,
    )


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    token: UnsubscribeToken | None = None
    added: tuple[Entry, ...] = ()
    reason: str = ''
    """Why a token was refused (TokenError's message, which never shows the token), or why a valid one suppressed
    nothing (``not suppressed: invalid-address``)."""


class Unsubscriber:
    """Checks tokens with ``keys`` (newest first) and writes to the store ``open_store`` connects to."""

    def __init__(
        self,
        keys: Sequence[bytes],
        max_age: float,
        open_store: Callable[[], Database],
        policy: Policy,
        hash_key: bytes,
        *,
        keep_address: bool = True,
        webhook: bool = False,
        host: str = '',
    ) -> None:
        if not keys:
            raise ValueError('no signing key: tokens cannot be checked')
        self.keys = tuple(keys)
        self.max_age = max_age
        self.open_store = open_store
        self.policy = policy
        self.hash_key = hash_key
        self.keep_address = keep_address
        self.webhook = webhook
        self.host = host

    @classmethod
    def from_contract(cls, contract: Contract, keys: Sequence[bytes], hash_key: bytes) -> Unsubscriber:
        return cls(
            keys,
            contract.unsubscribe.token_max_age,
            lambda: connect(contract.store),
            Policy(contract.streams, contract.suppression.soft_bounce_window),
            hash_key,
            keep_address=contract.retention.suppressions == 'address',
            webhook=contract.webhook.url is not None,
            host=contract.host.name,
        )

    def check(self, token: str, now: float) -> Result:
        """Verify a token without writing anything (the confirmation page)."""
        try:
            return Result('confirm', verify_token(token, self.keys, now, self.max_age))
        except TokenError as error:
            outcome: Outcome = {'forged': 'forged', 'expired': 'expired'}.get(error.reason, 'malformed')  # type: ignore[assignment]
            return Result(outcome, reason=str(error))

    def unsubscribe(self, token: str, now: float) -> Result:
        """Verify, store the event and apply the suppression in one transaction; raises StoreError (nothing kept)."""
        checked = self.check(token, now)
        if checked.token is None:
            self._note_refused(checked, token, now)
            return checked
        event = unsubscribe_event(checked.token, now)
        with self.open_store() as db:
            suppressions = SuppressionList(db, self.hash_key, keep_address=self.keep_address, webhook=self.webhook)
            with db.transaction():
                seen = db.execute('SELECT 1 FROM feedback_events WHERE key = ?', (event.key,))
                insert_events(db, [event])
                added, decision = Suppressor(suppressions, self.policy).apply(event)
                reason = ''
                if decision.why == INVALID_ADDRESS:
                    # a token we signed for an address the suppression list cannot hold: mail to it goes on
                    reason = f'not suppressed: {INVALID_ADDRESS}'
                    if not seen:
                        add_problems(
                            db,
                            self.host,
                            [Problem(PROBLEM_KIND, INVALID_ADDRESS, f'http:{short_hash(token)}')],
                            int(now),
                        )
        return Result('duplicate' if seen else 'accepted', checked.token, tuple(added), reason)

    def _note_refused(self, result: Result, token: str, now: float) -> None:
        """Count a refused token in the store's problem table; best effort (an outage must not make it a 503)."""
        try:
            with self.open_store() as db, db.transaction():
                add_problems(
                    db, self.host, [Problem(PROBLEM_KIND, result.outcome, f'http:{short_hash(token)}')], int(now)
                )
        except StoreError:
            pass
