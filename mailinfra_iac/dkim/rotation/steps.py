"""The operator's steps (``mailinfra dkim rotate --step``) and the signing keys, on a rotation and its key store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..dnscheck import AnswersFunc, CheckResult, check_record
from ..errors import KeyMismatchError, VerificationError
from ..keys import KeyAlgorithm, parse_algorithm
from ..selectors import DEFAULT_PERIOD, DEFAULT_PREFIX, RotationPeriod, parse_selector, period_bounds
from ..store import KeyRef, KeyStore
from .machine import Action, KeyState, Rotation, Step, utc


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
    moment = utc(now)
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
    _, end = period_bounds(utc(now), period)
    return Step(Action.NONE, (), f'nothing to do; the next rotation is due on {end.isoformat()}')
