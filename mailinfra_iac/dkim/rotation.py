"""DKIM key rotation as an explicit state machine, persisted next to the keys.

Each selector of a client's domain goes through::

    generated --publish--> published --verify--> verified --activate--> active
                                                                          |
                   (activating the next key of the same algorithm)       v
    removed <--remove-- revoked <--revoke (after the overlap window)-- retiring

* ``generated``: the key exists on the controller; its record is not in DNS yet.
* ``published``: its record belongs in DNS (the DNS renderer includes it); apply DNS now.
* ``verified``: every authoritative server answers with the record (:meth:`Rotation.verify`).
* ``active``: the MTAs sign with it. The key of the same algorithm that was active becomes
  ``retiring``, with ``retire_after = now + overlap`` (default 7 days).
* ``retiring``: no longer signs, but stays in DNS for mail still in flight or queued.
* ``revoked``: published with an empty ``p=``; allowed only once ``retire_after`` has passed.
* ``removed``: its record is gone from DNS.

Other moves: a ``generated``, ``published`` or ``verified`` key that never signed can be
``removed`` (abandoned); a ``retiring`` key can be activated again (roll back), which makes
the key active at that moment ``retiring``. Anything else raises
:class:`~mailinfra_iac.dkim.errors.IllegalTransitionError`.

Time is always passed in (``now``, timezone-aware), so the machine is deterministic.
The state lives in ``<keys root>/<client>/<domain>/rotation.json``, written atomically with
sorted keys. It holds public data only: selectors, states, times, public key records and
fingerprints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from . import _fs
from .dnscheck import AnswersFunc, CheckResult, check_record
from .errors import (
    DkimError,
    IllegalTransitionError,
    KeyMismatchError,
    OverlapWindowError,
    RecordFormatError,
    RotationFileError,
    VerificationError,
)
from .keys import KeyAlgorithm, parse_algorithm, parse_algorithms, record_fingerprint, revoked_txt_value
from .selectors import (
    DEFAULT_PERIOD,
    DEFAULT_PREFIX,
    RotationPeriod,
    parse_period,
    parse_selector,
    period_bounds,
    selector_for,
)
from .store import KeyRef, KeyStore, check_client, check_domain, check_selector

__all__ = [
    'DEFAULT_OVERLAP',
    'FILE_NAME',
    'TRANSITIONS',
    'Action',
    'DnsRecord',
    'KeyState',
    'Rotation',
    'SelectorEntry',
    'Step',
    'StepResult',
    'Transition',
    'load_rotation',
    'next_step',
    'rotation_lock',
    'rotation_path',
    'run_step',
    'save_rotation',
    'signing_keys',
]

logger = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(days=7)
FILE_NAME = 'rotation.json'
LOCK_NAME = '.rotation.lock'
FORMAT_VERSION = 1
_MARKER = 'managed by "mailinfra dkim rotate"; do not edit by hand'


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


def _utc(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f'invalid time {now!r}: pass a timezone-aware datetime')
    return now.astimezone(UTC).replace(microsecond=0)


def _format_time(moment: datetime) -> str:
    return _utc(moment).isoformat().replace('+00:00', 'Z')


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
        moment = _utc(now)
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
        moment = _utc(now)
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
                _format_time(old.retire_after),
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
        moment = _utc(now)
        entry = self._legal(selector, Action.REVOKE)
        if entry.retire_after is not None and moment < entry.retire_after:
            raise OverlapWindowError(
                f'cannot revoke selector "{selector}" yet: its overlap window ends at '
                f'{_format_time(entry.retire_after)} '
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
        moment = _utc(now)
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
        moment = _utc(now)
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
                    f'wait: {", ".join(names(waiting))} must stay published until {_format_time(until)} '
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
        moment = _utc(now)
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
        return self._free_selector(_utc(now), parse_period(period), parse_algorithm(algorithm), prefix)

    # Persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (see :meth:`to_json`)."""
        return {
            'comment': _MARKER,
            'format': FORMAT_VERSION,
            'client': self.client,
            'domain': self.domain,
            'overlap_seconds': int(self._overlap.total_seconds()),
            'selectors': {
                e.selector: {
                    'algorithm': e.algorithm.value,
                    'fingerprint': e.fingerprint,
                    'public_txt': e.public_txt,
                    'state': e.state.value,
                    'retire_after': None if e.retire_after is None else _format_time(e.retire_after),
                    'history': [
                        {
                            'at': _format_time(t.at),
                            'from': None if t.from_state is None else t.from_state.value,
                            'to': t.to_state.value,
                            'reason': t.reason,
                        }
                        for t in e.history
                    ],
                }
                for e in self.entries
            },
        }

    def to_json(self) -> str:
        """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=True) + '\n'

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = 'rotation state') -> Rotation:
        """Rebuild from :meth:`to_dict` output; raises :class:`RotationFileError` naming the field."""
        return _Reader(source).rotation(data)

    @classmethod
    def from_json(cls, text: str, *, source: str = 'rotation state') -> Rotation:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise RotationFileError(f'{source}: invalid JSON: {error}') from None
        return cls.from_dict(data, source=source)


class _Reader:
    """Validating reader for rotation.json; every error names the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> RotationFileError:
        return RotationFileError(f'{self.source}: {where}: {message}')

    def get(self, data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
        if not isinstance(data, Mapping):
            raise self.fail(where, 'expected an object')
        if key not in data:
            raise self.fail(where, f'missing "{key}"')
        value = data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise self.fail(f'{where}.{key}', f'unexpected value {value!r}')
        return value

    def enum(self, value: Any, kind: type[StrEnum], where: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            allowed = ', '.join(member.value for member in kind)
            raise self.fail(where, f'invalid value "{value}", expected one of: {allowed}') from None

    def time(self, value: Any, where: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(value)
            return _utc(parsed)
        except (TypeError, ValueError):
            raise self.fail(where, f'invalid time {value!r}, expected e.g. "2026-11-05T12:00:00Z"') from None

    def rotation(self, data: Any) -> Rotation:
        version = self.get(data, 'format', int, 'top level')
        if version != FORMAT_VERSION:
            raise self.fail('format', f'unsupported format {version}, expected {FORMAT_VERSION}')
        client = self.get(data, 'client', str, 'top level')
        domain = self.get(data, 'domain', str, 'top level')
        overlap = self.get(data, 'overlap_seconds', int, 'top level')
        if overlap < 0:
            raise self.fail('overlap_seconds', f'negative value {overlap}')
        selectors = self.get(data, 'selectors', dict, 'top level')
        entries = [self.entry(name, value) for name, value in selectors.items()]
        try:
            return Rotation(client, domain, overlap=timedelta(seconds=overlap), entries=entries)
        except (DkimError, ValueError) as error:
            raise self.fail('top level', str(error)) from None

    def entry(self, name: str, data: Any) -> SelectorEntry:
        where = f'selectors.{name}'
        try:
            check_selector(name)
        except DkimError as error:
            raise self.fail(where, str(error)) from None
        algorithm = self.enum(self.get(data, 'algorithm', str, where), KeyAlgorithm, f'{where}.algorithm')
        state = self.enum(self.get(data, 'state', str, where), KeyState, f'{where}.state')
        public_txt = self.get(data, 'public_txt', str, where)
        fingerprint = self.get(data, 'fingerprint', str, where)
        try:
            published = record_fingerprint(public_txt)
        except (RecordFormatError, DkimError) as error:
            raise self.fail(f'{where}.public_txt', str(error)) from None
        if published != fingerprint:
            raise self.fail(f'{where}.fingerprint', f'{fingerprint} does not match the key in public_txt')
        retire_raw = self.get(data, 'retire_after', (str, type(None)), where)
        retire_after = None if retire_raw is None else self.time(retire_raw, f'{where}.retire_after')
        history = []
        for index, item in enumerate(self.get(data, 'history', list, where)):
            at = f'{where}.history[{index}]'
            before = self.get(item, 'from', (str, type(None)), at)
            history.append(
                Transition(
                    at=self.time(self.get(item, 'at', str, at), f'{at}.at'),
                    from_state=None if before is None else self.enum(before, KeyState, f'{at}.from'),
                    to_state=self.enum(self.get(item, 'to', str, at), KeyState, f'{at}.to'),
                    reason=self.get(item, 'reason', str, at) if 'reason' in item else '',
                )
            )
        return SelectorEntry(
            selector=name,
            algorithm=algorithm,
            public_txt=public_txt,
            fingerprint=fingerprint,
            state=state,
            retire_after=retire_after,
            history=history,
        )


# Store integration ---------------------------------------------------------------------------


def rotation_path(store: KeyStore, client: str, domain: str) -> Path:
    """``<root>/<client>/<domain>/rotation.json``."""
    return store.domain_dir(client, domain) / FILE_NAME


def load_rotation(store: KeyStore, client: str, domain: str) -> Rotation:
    """Load the domain's rotation state; an empty one if there is no state file yet."""
    path = rotation_path(store, client, domain)
    try:
        text = path.read_text(encoding='utf-8')
    except FileNotFoundError:
        return Rotation(client, domain)
    except OSError as error:
        raise RotationFileError(f'cannot read {path}: {error.strerror}') from None
    rotation = Rotation.from_json(text, source=str(path))
    if (rotation.client, rotation.domain) != (check_client(client), check_domain(domain)):
        raise RotationFileError(
            f'{path}: holds the rotation of {rotation.domain} ({rotation.client}), '
            f'not of {check_domain(domain)} ({client})'
        )
    return rotation


def save_rotation(store: KeyStore, rotation: Rotation) -> Path:
    """Write the state atomically (0644, in the domain's 0700 directory); returns the path."""
    store.prepare_domain_dir(rotation.client, rotation.domain)
    path = rotation_path(store, rotation.client, rotation.domain)
    _fs.atomic_write(path, rotation.to_json().encode('utf-8'), _fs.PUBLIC_FILE_MODE)
    return path


@contextlib.contextmanager
def rotation_lock(store: KeyStore, client: str, domain: str, *, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive lock on the domain's rotation while loading, changing and saving it.

    Raises:
        DkimError: another process held the lock for longer than ``timeout`` seconds.
    """
    directory = store.prepare_domain_dir(client, domain)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, _fs.PRIVATE_FILE_MODE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as error:
                if error.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                    raise DkimError(
                        f'the rotation of {domain} ({client}) is locked by another process; try again later'
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def signing_keys(rotation: Rotation, store: KeyStore) -> list[KeyRef]:
    """The active keys, loaded from the store and checked against the rotation state.

    This is what the MTA inventory needs; pass each :meth:`KeyRef.inventory_reference` on.

    Raises:
        KeyNotFoundError: an active key's file is missing.
        KeyMismatchError: the key file is not the key the rotation state published.
    """
    refs = []
    for algorithm, selector in sorted(rotation.signing_selectors().items()):
        refs.append(_checked_ref(rotation, store, selector, algorithm))
    return refs


def _checked_ref(rotation: Rotation, store: KeyStore, selector: str, algorithm: KeyAlgorithm) -> KeyRef:
    ref = store.get(rotation.client, rotation.domain, selector, algorithm)
    expected = rotation.entry(selector).fingerprint
    if ref.fingerprint != expected:
        raise KeyMismatchError(
            f'key file {ref.path} holds {ref.fingerprint}, but selector "{selector}" published {expected}; '
            'the key file was replaced: restore it, or abandon the selector and generate a new key'
        )
    return ref


@dataclass
class StepResult:
    """What :func:`run_step` did."""

    action: Action
    changed: list[str] = field(default_factory=list)
    """Selectors whose state changed (or, for ``generate``, that were generated)."""
    problems: list[str] = field(default_factory=list)
    """Why selectors could not move (verification failures); empty on full success."""
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no problems."""
        return not self.problems


def run_step(
    rotation: Rotation,
    action: Action | str,
    now: datetime,
    *,
    store: KeyStore | None = None,
    selectors: Iterable[str | tuple[str, str | KeyAlgorithm]] | None = None,
    answers: AnswersFunc | None = None,
    servers: Iterable[str] | None = None,
    period: RotationPeriod | str | int | timedelta = DEFAULT_PERIOD,
    algorithms: str | Iterable[str | KeyAlgorithm] = (KeyAlgorithm.RSA,),
    rsa_bits: int | None = None,
    prefix: str = DEFAULT_PREFIX,
    overlap: timedelta | None = None,
) -> StepResult:
    """Carry out one operator step on the selectors it applies to; what ``--step`` runs.

    Without ``selectors``, the step applies to every selector where it is the next step:
    ``publish`` to the generated ones, ``verify`` to the published, ``activate`` to the verified
    (RSA first), ``revoke`` to the retiring whose window has passed, ``remove`` to the revoked.
    ``remove`` never abandons unpublished keys unless they are named in ``selectors``.
    ``generate`` needs ``store`` and creates the keys :meth:`Rotation.due_keys` lists, or the
    named ``selectors`` (a name following the naming convention, whose suffix gives the
    algorithm, or a ``(selector, algorithm)`` pair). ``activate`` first checks, with a
    ``store``, that each key file is the key that was published, and, with ``answers``, that
    DNS still serves each verified key (a failure is a problem, and that key stays verified);
    ``overlap`` overrides :attr:`Rotation.overlap` for this activation.

    Illegal steps on named selectors raise :class:`IllegalTransitionError`;
    verification failures are collected in :attr:`StepResult.problems` and leave the state as is.
    """
    step = Action(action)
    result = StepResult(step)
    if step is Action.GENERATE:
        if store is None:
            raise ValueError('the generate step needs the key store')
        if selectors is None:
            keys = rotation.due_keys(now, period=period, algorithms=algorithms, prefix=prefix)
        else:
            keys = [_named_key(item, prefix) for item in selectors]
        result.changed = _generate(rotation, store, keys, now, rsa_bits)
        return result
    if step in (Action.WAIT, Action.NONE):
        return result
    if selectors is None:
        targets = _default_targets(rotation, step, now)
    else:
        targets = [item if isinstance(item, str) else item[0] for item in selectors]
    if step is Action.ACTIVATE:
        targets.sort(key=lambda s: (rotation.entry(s).algorithm is not KeyAlgorithm.RSA, s))
    for name in targets:
        problem = None
        if step is Action.VERIFY:
            if answers is None:
                raise ValueError('the verify step needs an answers function')
            try:
                result.checks.append(rotation.verify(name, now, answers, servers=servers))
            except VerificationError as error:
                problem = str(error)
        elif step is Action.ACTIVATE:
            problem = _activation_problem(rotation, name, store, answers, servers)
            if problem is None:
                rotation.activate(name, now, overlap=overlap)
        else:
            rotation.apply(step, name, now)
        if problem is None:
            result.changed.append(name)
        else:
            result.problems.append(problem)
    return result


def _named_key(item: str | tuple[str, str | KeyAlgorithm], prefix: str) -> tuple[str, KeyAlgorithm]:
    if isinstance(item, str):
        return item, parse_selector(item, prefix=prefix).algorithm
    return item[0], parse_algorithm(item[1])


def _generate(
    rotation: Rotation,
    store: KeyStore,
    keys: Iterable[tuple[str, KeyAlgorithm]],
    now: datetime,
    rsa_bits: int | None,
) -> list[str]:
    generated = []
    keys = list(keys)
    for name, _ in keys:
        rotation.check_new_selector(name)  # before any key file is written
    for name, algorithm in keys:
        bits = rsa_bits if algorithm is KeyAlgorithm.RSA else None
        ref = store.ensure(rotation.client, rotation.domain, name, algorithm, bits=bits)
        rotation.add(ref, now)
        generated.append(name)
    return generated


def _activation_problem(
    rotation: Rotation,
    selector: str,
    store: KeyStore | None,
    answers: AnswersFunc | None,
    servers: Iterable[str] | None,
) -> str | None:
    """Check the key file (with a store) and, for a verified key, DNS again (with answers)."""
    entry = rotation.entry(selector)
    if store is not None:
        _checked_ref(rotation, store, selector, entry.algorithm)
    if answers is None or entry.state is not KeyState.VERIFIED:
        return None
    check = check_record(rotation.fqdn(selector), entry.public_txt, answers, servers=servers)
    try:
        check.raise_for_problems()
    except VerificationError as error:
        return f'not activating {selector}: {error}'
    return None


def _default_targets(rotation: Rotation, step: Action, now: datetime) -> list[str]:
    moment = _utc(now)
    source = {
        Action.PUBLISH: KeyState.GENERATED,
        Action.VERIFY: KeyState.PUBLISHED,
        Action.ACTIVATE: KeyState.VERIFIED,
        Action.REVOKE: KeyState.RETIRING,
        Action.REMOVE: KeyState.REVOKED,
    }[step]
    entries = rotation.in_state(source)
    if step is Action.REVOKE:
        entries = [e for e in entries if e.retire_after is not None and e.retire_after <= moment]
    return [e.selector for e in entries]


def next_step(
    rotation: Rotation,
    now: datetime,
    *,
    period: RotationPeriod | str | int | timedelta = DEFAULT_PERIOD,
    algorithms: str | Iterable[str | KeyAlgorithm] = (KeyAlgorithm.RSA,),
    prefix: str = DEFAULT_PREFIX,
) -> Step:
    """The one thing the operator must do next (``none`` when everything is up to date)."""
    steps = rotation.next_steps(now, period=period, algorithms=algorithms, prefix=prefix)
    if steps:
        return steps[0]
    _, end = period_bounds(_utc(now), period)
    return Step(Action.NONE, (), f'nothing to do; the next rotation is due on {end.isoformat()}')
