"""The rotation state machine: states, the transitions between them, and what is due next.

The states and their moves are described in the package docstring (``mailinfra_iac.dkim.rotation``).
Time is always passed in (``now``, timezone-aware), so the machine is deterministic. Nothing here
reads or writes files: the state file is ``statefile.py``, the operator steps ``steps.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..dnscheck import AnswersFunc, CheckResult, check_record
from ..errors import DkimError, IllegalTransitionError, OverlapWindowError
from ..keys import KeyAlgorithm, parse_algorithm, parse_algorithms, revoked_txt_value
from ..selectors import (
    DEFAULT_PERIOD,
    DEFAULT_PREFIX,
    RotationPeriod,
    parse_period,
    period_bounds,
    selector_for,
)
from ..store import KeyRef, check_client, check_domain, check_selector

logger = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(days=7)


class KeyState(StrEnum):
    """Where a selector is in its life."""

    GENERATED = 'generated'
    PUBLISHED = 'published'
    VERIFIED = 'verified'
    ACTIVE = 'active'
    RETIRING = 'retiring'
    REVOKED = 'revoked'
    REMOVED = 'removed'


class Action(StrEnum):
    """An operator step (``mailinfra dkim rotate SPEC --step <action>``)."""

    GENERATE = 'generate'
    PUBLISH = 'publish'
    VERIFY = 'verify'
    ACTIVATE = 'activate'
    REVOKE = 'revoke'
    REMOVE = 'remove'
    WAIT = 'wait'
    NONE = 'none'


TRANSITIONS: Mapping[KeyState, Mapping[Action, KeyState]] = {
    KeyState.GENERATED: {Action.PUBLISH: KeyState.PUBLISHED, Action.REMOVE: KeyState.REMOVED},
    KeyState.PUBLISHED: {Action.VERIFY: KeyState.VERIFIED, Action.REMOVE: KeyState.REMOVED},
    KeyState.VERIFIED: {Action.ACTIVATE: KeyState.ACTIVE, Action.REMOVE: KeyState.REMOVED},
    KeyState.ACTIVE: {},
    KeyState.RETIRING: {Action.REVOKE: KeyState.REVOKED, Action.ACTIVATE: KeyState.ACTIVE},
    KeyState.REVOKED: {Action.REMOVE: KeyState.REMOVED},
    KeyState.REMOVED: {},
}
"""Operator actions allowed in each state, and the state each leads to.

Not listed: ``active -> retiring``, which happens only as a side effect of activating another
key of the same algorithm.
"""

_IMPLICIT_HINTS: Mapping[KeyState, str] = {
    KeyState.ACTIVE: ('it stops being active only when another verified key of the same algorithm is activated'),
    KeyState.REMOVED: 'a removed selector is final and never reused; generate a new key',
}

_IN_DNS_WITH_KEY = frozenset({KeyState.PUBLISHED, KeyState.VERIFIED, KeyState.ACTIVE, KeyState.RETIRING})
_IN_PROGRESS = frozenset({KeyState.GENERATED, KeyState.PUBLISHED, KeyState.VERIFIED})


def utc(now: datetime) -> datetime:
    """``now`` in UTC, whole seconds; a naive or non-datetime value is a ValueError."""
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f'invalid time {now!r}: pass a timezone-aware datetime')
    return now.astimezone(UTC).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    """``2026-11-05T12:00:00Z``: how times are shown and stored."""
    return utc(moment).isoformat().replace('+00:00', 'Z')


def _format_delta(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f'{days}d' if days else '', f'{hours}h' if hours else '', f'{minutes}m' if minutes else '']
    return ''.join(parts) or f'{seconds}s'


def _check_overlap(overlap: timedelta) -> timedelta:
    if not isinstance(overlap, timedelta) or overlap < timedelta(0):
        raise ValueError(f'invalid overlap window {overlap!r}, expected a timedelta of zero or more')
    return overlap


@dataclass(frozen=True)
class Transition:
    """One recorded state change."""

    at: datetime
    from_state: KeyState | None
    to_state: KeyState
    reason: str = ''


@dataclass
class SelectorEntry:
    """Rotation state of one selector (one key)."""

    selector: str
    algorithm: KeyAlgorithm
    public_txt: str = field(repr=False)
    fingerprint: str
    state: KeyState
    retire_after: datetime | None = None
    history: list[Transition] = field(default_factory=list, repr=False)

    @property
    def generated_at(self) -> datetime | None:
        """When the key entered the rotation (first recorded transition)."""
        return self.history[0].at if self.history else None

    def allowed_actions(self) -> tuple[Action, ...]:
        """Actions allowed from the current state."""
        return tuple(TRANSITIONS[self.state])


@dataclass(frozen=True)
class DnsRecord:
    """A DKIM key record that belongs in DNS."""

    selector: str
    algorithm: KeyAlgorithm
    state: KeyState
    name: str
    """Relative to the domain: ``<selector>._domainkey``."""
    fqdn: str
    value: str
    """TXT value, unsplit; split it with :func:`~mailinfra_iac.dkim.keys.txt_chunks`."""

    @property
    def revoked(self) -> bool:
        """True for a revocation record (empty ``p=``)."""
        return self.state is KeyState.REVOKED


@dataclass(frozen=True)
class Step:
    """What the operator should do next."""

    action: Action
    selectors: tuple[str, ...]
    message: str
    not_before: datetime | None = None
    """For ``wait``: when the waited-for step becomes possible."""

    def __str__(self) -> str:
        return self.message


class Rotation:
    """The rotation state of one client's domain: its selectors and their states."""

    def __init__(
        self,
        client: str,
        domain: str,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        entries: Iterable[SelectorEntry] = (),
    ) -> None:
        self.client = check_client(client)
        self.domain = check_domain(domain)
        self._overlap = _check_overlap(overlap)
        self._entries: dict[str, SelectorEntry] = {}
        for entry in entries:
            if entry.selector in self._entries:
                raise ValueError(f'selector "{entry.selector}" listed twice')
            self._entries[entry.selector] = entry
        self._check_invariants()

    def __repr__(self) -> str:
        states = ', '.join(f'{e.selector}={e.state.value}' for e in self.entries)
        return f'Rotation({self.client!r}, {self.domain!r}, [{states}])'

    # Reading -------------------------------------------------------------------------------

    @property
    def overlap(self) -> timedelta:
        """Default overlap window for activations (how long the previous key stays published)."""
        return self._overlap

    @overlap.setter
    def overlap(self, value: timedelta) -> None:
        self._overlap = _check_overlap(value)

    @property
    def entries(self) -> list[SelectorEntry]:
        """All selectors, sorted by name."""
        return [self._entries[name] for name in sorted(self._entries)]

    def __contains__(self, selector: object) -> bool:
        return selector in self._entries

    def entry(self, selector: str) -> SelectorEntry:
        """The entry of a selector; raises :class:`DkimError` naming the known ones."""
        try:
            return self._entries[selector]
        except KeyError:
            known = ', '.join(sorted(self._entries)) or 'none'
            raise DkimError(
                f'selector "{selector}" is not part of the rotation of {self.domain} ({self.client}); '
                f'known selectors: {known}'
            ) from None

    def in_state(self, *states: KeyState) -> list[SelectorEntry]:
        """Entries in any of ``states``, sorted by selector."""
        return [e for e in self.entries if e.state in states]

    def signing_selectors(self) -> dict[KeyAlgorithm, str]:
        """The active (signing) selector of each algorithm."""
        return {e.algorithm: e.selector for e in self.in_state(KeyState.ACTIVE)}

    def dns_records(self) -> list[DnsRecord]:
        """Records that belong in DNS, sorted by selector.

        ``published``, ``verified``, ``active`` and ``retiring`` selectors publish their key,
        ``revoked`` ones an empty ``p=``; ``generated`` and ``removed`` ones have no record.
        """
        records = []
        for e in self.entries:
            if e.state in _IN_DNS_WITH_KEY:
                value = e.public_txt
            elif e.state is KeyState.REVOKED:
                value = revoked_txt_value(e.algorithm)
            else:
                continue
            records.append(
                DnsRecord(
                    selector=e.selector,
                    algorithm=e.algorithm,
                    state=e.state,
                    name=f'{e.selector}._domainkey',
                    fqdn=f'{e.selector}._domainkey.{self.domain}',
                    value=value,
                )
            )
        return records

    def fqdn(self, selector: str) -> str:
        """``<selector>._domainkey.<domain>``."""
        return f'{check_selector(selector)}._domainkey.{self.domain}'

    # Transitions ---------------------------------------------------------------------------

    def add(self, ref: KeyRef, now: datetime) -> SelectorEntry:
        """Register a newly generated key as ``generated``.

        Raises:
            DkimError: the key belongs to another client or domain, or the selector is already
                known (selectors are never reused, even after removal).
        """
        moment = utc(now)
        if (ref.client, ref.domain) != (self.client, self.domain):
            raise DkimError(f'key {ref} belongs to {ref.domain} ({ref.client}), not to {self.domain} ({self.client})')
        self.check_new_selector(ref.selector)
        entry = SelectorEntry(
            selector=ref.selector,
            algorithm=ref.algorithm,
            public_txt=ref.public_txt,
            fingerprint=ref.fingerprint,
            state=KeyState.GENERATED,
            history=[Transition(moment, None, KeyState.GENERATED)],
        )
        self._entries[ref.selector] = entry
        logger.info('%s: %s added as generated (%s)', self.domain, ref.selector, ref.fingerprint)
        return entry

    def check_new_selector(self, selector: str) -> None:
        """Raise :class:`DkimError` if ``selector`` was ever part of this rotation."""
        if selector in self._entries:
            current = self._entries[selector]
            raise DkimError(
                f'selector "{selector}" is already part of the rotation (state "{current.state}"); '
                'selectors are never reused, generate the key under a new selector'
            )

    def publish(self, selector: str, now: datetime) -> SelectorEntry:
        """``generated -> published``: the key's record now belongs in DNS."""
        return self._move(selector, Action.PUBLISH, now)

    def verify(
        self,
        selector: str,
        now: datetime,
        answers: AnswersFunc,
        *,
        servers: Iterable[str] | None = None,
    ) -> CheckResult:
        """``published -> verified``, if every authoritative server serves the key's record.

        Raises:
            IllegalTransitionError: the selector is not ``published``.
            VerificationError: some server does not serve the record; the state is unchanged.
        """
        entry = self._legal(selector, Action.VERIFY)
        result = check_record(self.fqdn(selector), entry.public_txt, answers, servers=servers)
        result.raise_for_problems()
        self._move(selector, Action.VERIFY, now, reason=f'served by {", ".join(result.servers)}')
        return result

    def activate(self, selector: str, now: datetime, *, overlap: timedelta | None = None) -> SelectorEntry:
        """``verified -> active`` (or ``retiring -> active`` to roll back).

        The key of the same algorithm that was active becomes ``retiring`` with
        ``retire_after = now + overlap`` (default: :attr:`overlap`).

        Raises:
            IllegalTransitionError: the selector is neither ``verified`` nor ``retiring``, or it
                is an Ed25519 key while no RSA key is active (Ed25519 only dual-signs).
        """
        moment = utc(now)
        window = self._overlap if overlap is None else _check_overlap(overlap)
        entry = self._legal(selector, Action.ACTIVATE)
        if entry.algorithm is KeyAlgorithm.ED25519 and KeyAlgorithm.RSA not in self.signing_selectors():
            raise IllegalTransitionError(
                f'cannot activate Ed25519 selector "{selector}" while no RSA key is active: Ed25519 '
                'keys only sign next to an RSA key (many receivers do not verify Ed25519); '
                'activate an RSA key first'
            )
        previous = self.signing_selectors().get(entry.algorithm)
        if previous is not None:
            old = self._entries[previous]
            old.state = KeyState.RETIRING
            old.retire_after = moment + window
            old.history.append(Transition(moment, KeyState.ACTIVE, KeyState.RETIRING, reason=f'replaced by {selector}'))
            logger.info(
                '%s: %s retiring, stays published until %s',
                self.domain,
                previous,
                format_time(old.retire_after),
            )
        reason = f'replaces {previous}' if previous else ''
        if entry.state is KeyState.RETIRING:
            reason = 'rolled back' + (f' from {previous}' if previous else '')
        entry.retire_after = None
        return self._move(selector, Action.ACTIVATE, moment, reason=reason)

    def revoke(self, selector: str, now: datetime) -> SelectorEntry:
        """``retiring -> revoked``, once the overlap window has passed.

        Raises:
            OverlapWindowError: ``now`` is before the selector's ``retire_after``.
        """
        moment = utc(now)
        entry = self._legal(selector, Action.REVOKE)
        if entry.retire_after is not None and moment < entry.retire_after:
            raise OverlapWindowError(
                f'cannot revoke selector "{selector}" yet: its overlap window ends at '
                f'{format_time(entry.retire_after)} '
                f'({_format_delta(entry.retire_after - moment)} from now); '
                'mail signed with it may still be in flight'
            )
        return self._move(selector, Action.REVOKE, moment)

    def remove(self, selector: str, now: datetime) -> SelectorEntry:
        """``revoked -> removed``, or abandon a ``generated``, ``published`` or ``verified`` key."""
        return self._move(selector, Action.REMOVE, now)

    def apply(self, action: Action | str, selector: str, now: datetime) -> SelectorEntry:
        """Apply ``publish``, ``activate``, ``revoke`` or ``remove`` by name (not ``verify``)."""
        step = Action(action)
        if step is Action.PUBLISH:
            return self.publish(selector, now)
        if step is Action.ACTIVATE:
            return self.activate(selector, now)
        if step is Action.REVOKE:
            return self.revoke(selector, now)
        if step is Action.REMOVE:
            return self.remove(selector, now)
        raise ValueError(f'action "{step}" is not a single-selector transition')

    def _legal(self, selector: str, action: Action) -> SelectorEntry:
        entry = self.entry(selector)
        if action not in TRANSITIONS[entry.state]:
            allowed = ', '.join(TRANSITIONS[entry.state]) or 'none'
            hint = _IMPLICIT_HINTS.get(entry.state)
            raise IllegalTransitionError(
                f'cannot {action.value} selector "{selector}": it is "{entry.state.value}"; '
                f'allowed next steps: {allowed}' + (f' ({hint})' if hint else '')
            )
        return entry

    def _move(self, selector: str, action: Action, now: datetime, *, reason: str = '') -> SelectorEntry:
        moment = utc(now)
        entry = self._legal(selector, action)
        target = TRANSITIONS[entry.state][action]
        entry.history.append(Transition(moment, entry.state, target, reason))
        logger.info('%s: %s %s -> %s', self.domain, selector, entry.state.value, target.value)
        entry.state = target
        if target is not KeyState.RETIRING:
            entry.retire_after = None
        self._check_invariants()
        return entry

    def _check_invariants(self) -> None:
        seen: dict[KeyAlgorithm, str] = {}
        for e in self.entries:
            if e.state is KeyState.ACTIVE:
                if e.algorithm in seen:
                    raise DkimError(
                        f'{self.domain}: two active {e.algorithm.value} selectors ({seen[e.algorithm]}, '
                        f'{e.selector}); only one may sign per algorithm'
                    )
                seen[e.algorithm] = e.selector
            if e.state is KeyState.RETIRING and e.retire_after is None:
                raise DkimError(f'{self.domain}: retiring selector "{e.selector}" has no retire_after')

    # Planning ------------------------------------------------------------------------------

    def next_steps(
        self,
        now: datetime,
        *,
        period: RotationPeriod | str | int | timedelta = DEFAULT_PERIOD,
        algorithms: str | Iterable[str | KeyAlgorithm] = (KeyAlgorithm.RSA,),
        prefix: str = DEFAULT_PREFIX,
    ) -> list[Step]:
        """Everything the operator should do, most urgent first; empty when nothing is due.

        Args:
            now: the current time.
            period: rotation period (default half-yearly); a new key is due once the current
                period's selector does not exist yet.
            algorithms: algorithms that should sign (``"rsa"`` or ``"rsa+ed25519"``).
            prefix: selector prefix (see :func:`~mailinfra_iac.dkim.selectors.selector_for`).
        """
        moment = utc(now)
        steps: list[Step] = []

        def names(entries: Sequence[SelectorEntry]) -> tuple[str, ...]:
            return tuple(e.selector for e in entries)

        generated = self.in_state(KeyState.GENERATED)
        if generated:
            steps.append(
                Step(
                    Action.PUBLISH,
                    names(generated),
                    f'publish {", ".join(names(generated))}: run the publish step, then apply the DNS '
                    'changes (the records are now rendered)',
                )
            )
        published = self.in_state(KeyState.PUBLISHED)
        if published:
            steps.append(
                Step(
                    Action.VERIFY,
                    names(published),
                    f'verify {", ".join(names(published))}: check that every authoritative server '
                    'answers with the new key',
                )
            )
        verified = self.in_state(KeyState.VERIFIED)
        if verified:
            steps.append(
                Step(
                    Action.ACTIVATE,
                    names(verified),
                    f'activate {", ".join(names(verified))}: switch signing to the new key and deploy the '
                    f'MTA configuration right away; the previous key stays published for '
                    f'{_format_delta(self._overlap)}',
                )
            )
        retiring = self.in_state(KeyState.RETIRING)
        due = [e for e in retiring if e.retire_after is not None and e.retire_after <= moment]
        if due:
            steps.append(
                Step(
                    Action.REVOKE,
                    names(due),
                    f'revoke {", ".join(names(due))}: the overlap window has passed; publish an empty '
                    'p= and apply the DNS changes',
                )
            )
        revoked = self.in_state(KeyState.REVOKED)
        if revoked:
            steps.append(
                Step(
                    Action.REMOVE,
                    names(revoked),
                    f'remove {", ".join(names(revoked))}: check that the revocation is served, then '
                    'drop the records and apply the DNS changes',
                )
            )
        to_generate = tuple(
            name for name, _ in self.due_keys(moment, period=period, algorithms=algorithms, prefix=prefix)
        )
        if to_generate:
            steps.append(
                Step(
                    Action.GENERATE,
                    to_generate,
                    f'generate {", ".join(to_generate)}: a new key is due',
                )
            )
        waiting = [e for e in retiring if e not in due]
        if waiting:
            until = min(e.retire_after for e in waiting if e.retire_after is not None)
            steps.append(
                Step(
                    Action.WAIT,
                    names(waiting),
                    f'wait: {", ".join(names(waiting))} must stay published until {format_time(until)} '
                    f'({_format_delta(until - moment)} from now), then revoke',
                    not_before=until,
                )
            )
        return steps

    def due_keys(
        self,
        now: datetime,
        *,
        period: RotationPeriod | str | int | timedelta = DEFAULT_PERIOD,
        algorithms: str | Iterable[str | KeyAlgorithm] = (KeyAlgorithm.RSA,),
        prefix: str = DEFAULT_PREFIX,
    ) -> list[tuple[str, KeyAlgorithm]]:
        """Keys to generate now: ``(selector, algorithm)`` pairs.

        For each wanted algorithm with no key in progress (generated, published or verified),
        a key is due when none of that algorithm is active, or when the active one was generated
        before the current period began (so after a roll back to an older key, too). The
        selector is the current period's, with the first revision not used yet.
        """
        moment = utc(now)
        named = parse_period(period)
        start, _ = period_bounds(moment, named)
        period_start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        signing = self.signing_selectors()
        due: list[tuple[str, KeyAlgorithm]] = []
        for algorithm in parse_algorithms(algorithms):
            if any(e.algorithm is algorithm for e in self.in_state(*_IN_PROGRESS)):
                continue
            active = self._entries[signing[algorithm]] if algorithm in signing else None
            if active is None or active.generated_at is None or active.generated_at < period_start:
                due.append((self._free_selector(moment, named, algorithm, prefix), algorithm))
        return due

    def _free_selector(self, moment: datetime, period: RotationPeriod, algorithm: KeyAlgorithm, prefix: str) -> str:
        revision = 1
        while True:
            name = selector_for(moment, period, algorithm=algorithm, revision=revision, prefix=prefix)
            if name not in self._entries:
                return name
            revision += 1

    def next_free_selector(
        self,
        now: datetime,
        period: RotationPeriod | str | int | timedelta,
        algorithm: str | KeyAlgorithm = KeyAlgorithm.RSA,
        *,
        prefix: str = DEFAULT_PREFIX,
    ) -> str:
        """The current period's selector, with the first revision not used yet."""
        return self._free_selector(utc(now), parse_period(period), parse_algorithm(algorithm), prefix)

    # Persistence (the file format is in statefile.py) ------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :meth:`to_json`)."""
        from .statefile import to_document  # statefile builds Rotation objects: imported when used

        return to_document(self)

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
        from .statefile import dumps

        return dumps(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = 'rotation state') -> Rotation:
        """Rebuild from :meth:`to_dict` output; raises :class:`RotationFileError` naming the field."""
        from .statefile import from_document

        return from_document(data, source=source)

    @classmethod
    def from_json(cls, text: str, *, source: str = 'rotation state') -> Rotation:
        """Parse :meth:`to_json` output."""
        from .statefile import loads

        return loads(text, source=source)
