"""Rotation state machine: legal and illegal transitions, overlap window, DNS view, planning,
persistence, and the store-backed steps."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra_iac.dkim import (
    DEFAULT_OVERLAP,
    Action,
    DkimError,
    IllegalTransitionError,
    KeyAlgorithm,
    KeyMismatchError,
    KeyRef,
    KeyState,
    KeyStore,
    OverlapWindowError,
    Rotation,
    RotationFileError,
    ServerAnswers,
    VerificationError,
    fingerprint,
    generate_private_key,
    load_rotation,
    next_step,
    public_txt_value,
    revoked_txt_value,
    rotation_lock,
    rotation_path,
    run_step,
    save_rotation,
    signing_keys,
)
from mailinfra_iac.dkim.keys import PrivateKey
from mailinfra_iac.dkim.rotation import TRANSITIONS

T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
OPERATOR_ACTIONS = (Action.PUBLISH, Action.VERIFY, Action.ACTIVATE, Action.REVOKE, Action.REMOVE)


def make_ref(selector: str, key: PrivateKey, *, domain: str = 'example.com', client: str = 'acme') -> KeyRef:
    algorithm = KeyAlgorithm.RSA if isinstance(key, rsa.RSAPrivateKey) else KeyAlgorithm.ED25519
    return KeyRef(
        client=client,
        domain=domain,
        selector=selector,
        algorithm=algorithm,
        bits=2048 if algorithm is KeyAlgorithm.RSA else 256,
        path=Path(f'/nonexistent/{selector}.{algorithm.value}.key'),
        public_txt=public_txt_value(key),
        fingerprint=fingerprint(key),
    )


def dns_of(rotation: Rotation, servers: Sequence[str] = ('ns1', 'ns2')):  # type: ignore[no-untyped-def]
    """An answers function serving what the rotation says belongs in DNS (DNS applied)."""

    def answers(fqdn: str) -> Mapping[str, list[str]]:
        values = [r.value for r in rotation.dns_records() if r.fqdn == fqdn]
        return {server: list(values) for server in servers}

    return answers


def empty_dns(fqdn: str) -> Mapping[str, list[str]]:
    return {'ns1': [], 'ns2': []}


class Scenario:
    """A rotation of acme's example.com with a clock that only moves forward."""

    def __init__(self, key: rsa.RSAPrivateKey, overlap: timedelta = DEFAULT_OVERLAP) -> None:
        self.rotation = Rotation('acme', 'example.com', overlap=overlap)
        self.key = key
        self.now = T0

    def tick(self, delta: timedelta = timedelta(hours=1)) -> datetime:
        self.now += delta
        return self.now

    def add(self, selector: str, key: PrivateKey | None = None) -> None:
        self.rotation.add(make_ref(selector, key or self.key), self.tick())

    def bring(self, selector: str, state: KeyState, key: PrivateKey | None = None) -> None:
        """Move a new selector to ``state`` along the legal path."""
        r = self.rotation
        self.add(selector, key)
        if state is KeyState.GENERATED:
            return
        r.publish(selector, self.tick())
        if state is KeyState.PUBLISHED:
            return
        r.verify(selector, self.tick(), dns_of(r))
        if state is KeyState.VERIFIED:
            return
        r.activate(selector, self.tick())
        if state is KeyState.ACTIVE:
            return
        self.bring(selector + 'n', KeyState.ACTIVE, key)  # a successor retires it
        if state is KeyState.RETIRING:
            return
        r.revoke(selector, self.tick(r.overlap))
        if state is KeyState.REVOKED:
            return
        r.remove(selector, self.tick())


def state_of(rotation: Rotation, selector: str) -> KeyState:
    return rotation.entry(selector).state


# The whole life of a key ----------------------------------------------------------------------


def test_full_rotation(rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    r = s.rotation
    s.bring('s2026q3', KeyState.ACTIVE)
    assert r.signing_selectors() == {KeyAlgorithm.RSA: 's2026q3'}

    s.add('s2026q4', other_rsa_key)
    assert [d.selector for d in r.dns_records()] == ['s2026q3']  # generated: not in DNS yet
    r.publish('s2026q4', s.tick())
    assert [d.selector for d in r.dns_records()] == ['s2026q3', 's2026q4']
    with pytest.raises(VerificationError, match='ns1: no TXT record'):
        r.verify('s2026q4', s.tick(), empty_dns)
    assert state_of(r, 's2026q4') is KeyState.PUBLISHED
    result = r.verify('s2026q4', s.tick(), dns_of(r))
    assert result.ok and result.servers == ('ns1', 'ns2')
    activated_at = s.tick()
    r.activate('s2026q4', activated_at)
    assert r.signing_selectors() == {KeyAlgorithm.RSA: 's2026q4'}
    old = r.entry('s2026q3')
    assert old.state is KeyState.RETIRING
    assert old.retire_after == activated_at + timedelta(days=7)

    with pytest.raises(OverlapWindowError, match=r'ends at 2026-10-08T.*Z .*from now'):
        r.revoke('s2026q3', activated_at + timedelta(days=6, hours=23))
    r.revoke('s2026q3', activated_at + timedelta(days=7))
    records = {d.selector: d for d in r.dns_records()}
    assert records['s2026q3'].value == 'v=DKIM1; k=rsa; p=' and records['s2026q3'].revoked
    assert records['s2026q4'].value == public_txt_value(other_rsa_key)
    r.remove('s2026q3', activated_at + timedelta(days=8))
    assert [d.selector for d in r.dns_records()] == ['s2026q4']
    history = [(t.from_state, t.to_state) for t in r.entry('s2026q3').history]
    assert history == [
        (None, KeyState.GENERATED),
        (KeyState.GENERATED, KeyState.PUBLISHED),
        (KeyState.PUBLISHED, KeyState.VERIFIED),
        (KeyState.VERIFIED, KeyState.ACTIVE),
        (KeyState.ACTIVE, KeyState.RETIRING),
        (KeyState.RETIRING, KeyState.REVOKED),
        (KeyState.REVOKED, KeyState.REMOVED),
    ]


# Every legal and every illegal transition ------------------------------------------------------

LEGAL = [(state, action) for state, moves in TRANSITIONS.items() for action in moves]
ILLEGAL = [(state, action) for state in KeyState for action in OPERATOR_ACTIONS if action not in TRANSITIONS[state]]


def test_transition_table_is_complete() -> None:
    assert set(TRANSITIONS) == set(KeyState)
    assert len(LEGAL) + len(ILLEGAL) == len(KeyState) * len(OPERATOR_ACTIONS)
    assert len(LEGAL) == 9


def _apply(s: Scenario, action: Action, selector: str, now: datetime) -> None:
    if action is Action.VERIFY:
        s.rotation.verify(selector, now, dns_of(s.rotation))
    else:
        s.rotation.apply(action, selector, now)


@pytest.mark.parametrize(('state', 'action'), LEGAL, ids=[f'{s}-{a}' for s, a in LEGAL])
def test_legal_transition(rsa_key: rsa.RSAPrivateKey, state: KeyState, action: Action) -> None:
    s = Scenario(rsa_key)
    s.bring('s1', state)
    _apply(s, action, 's1', s.tick(timedelta(days=30)))
    assert state_of(s.rotation, 's1') is TRANSITIONS[state][action]


@pytest.mark.parametrize(('state', 'action'), ILLEGAL, ids=[f'{s}-{a}' for s, a in ILLEGAL])
def test_illegal_transition(rsa_key: rsa.RSAPrivateKey, state: KeyState, action: Action) -> None:
    s = Scenario(rsa_key)
    s.bring('s1', state)
    before = s.rotation.to_json()
    allowed = ', '.join(TRANSITIONS[state]) or 'none'
    expected = f'cannot {action.value} selector "s1": it is "{state.value}"; allowed next steps: {allowed}'
    with pytest.raises(IllegalTransitionError) as info:
        _apply(s, action, 's1', s.tick(timedelta(days=30)))
    assert str(info.value).startswith(expected)
    assert s.rotation.to_json() == before


def test_illegal_transition_hints(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s1', KeyState.ACTIVE)
    with pytest.raises(IllegalTransitionError, match=r'allowed next steps: none \(it stops being active only when'):
        s.rotation.revoke('s1', s.tick())


def test_unknown_selector(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.add('s1')
    with pytest.raises(DkimError, match=r'selector "s9" is not part of the rotation .*known selectors: s1'):
        s.rotation.publish('s9', s.tick())


def test_selectors_never_reused(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s1', KeyState.REMOVED)
    with pytest.raises(DkimError, match='already part of the rotation \\(state "removed"\\); selectors are never'):
        s.add('s1')


def test_add_refuses_key_of_other_domain(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    with pytest.raises(DkimError, match=r'belongs to example\.org'):
        s.rotation.add(make_ref('s1', rsa_key, domain='example.org'), s.tick())


def test_verify_only_from_published(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.add('s1')
    with pytest.raises(IllegalTransitionError, match='cannot verify selector "s1": it is "generated"'):
        s.rotation.verify('s1', s.tick(), dns_of(s.rotation))


# Activation, roll back, overlap ----------------------------------------------------------------


def test_rollback_reactivates_retiring_key(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('old', KeyState.ACTIVE)
    s.bring('new', KeyState.ACTIVE)
    assert state_of(s.rotation, 'old') is KeyState.RETIRING
    rolled_back_at = s.tick()
    s.rotation.activate('old', rolled_back_at)
    assert s.rotation.signing_selectors() == {KeyAlgorithm.RSA: 'old'}
    assert s.rotation.entry('old').retire_after is None
    new = s.rotation.entry('new')
    assert new.state is KeyState.RETIRING  # it signed mail: stays published for the window
    assert new.retire_after == rolled_back_at + DEFAULT_OVERLAP
    assert s.rotation.entry('old').history[-1].reason == 'rolled back from new'


def test_activation_per_algorithm(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s1', KeyState.ACTIVE)
    s.bring('s1e', KeyState.ACTIVE, ed_key)
    assert s.rotation.signing_selectors() == {KeyAlgorithm.RSA: 's1', KeyAlgorithm.ED25519: 's1e'}
    s.bring('s2e', KeyState.ACTIVE, ed_key)
    assert state_of(s.rotation, 's1') is KeyState.ACTIVE  # RSA untouched
    assert state_of(s.rotation, 's1e') is KeyState.RETIRING


def test_ed25519_alone_refused(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s1e', KeyState.VERIFIED, ed_key)
    with pytest.raises(IllegalTransitionError, match='while no RSA key is active'):
        s.rotation.activate('s1e', s.tick())
    assert state_of(s.rotation, 's1e') is KeyState.VERIFIED


def test_custom_overlap(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key, overlap=timedelta(days=3))
    s.bring('old', KeyState.ACTIVE)
    s.bring('new', KeyState.VERIFIED)
    at = s.tick()
    s.rotation.activate('new', at, overlap=timedelta(days=14))
    assert s.rotation.entry('old').retire_after == at + timedelta(days=14)
    s.rotation.overlap = timedelta(days=2)
    assert s.rotation.overlap == timedelta(days=2)


def test_overlap_boundary(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('old', KeyState.ACTIVE)
    s.bring('new', KeyState.VERIFIED)
    at = s.tick()
    s.rotation.activate('new', at)
    with pytest.raises(OverlapWindowError, match=r'\(1s from now\)'):
        s.rotation.revoke('old', at + DEFAULT_OVERLAP - timedelta(seconds=1))
    s.rotation.revoke('old', at + DEFAULT_OVERLAP)
    assert state_of(s.rotation, 'old') is KeyState.REVOKED


@pytest.mark.parametrize('overlap', [timedelta(seconds=-1), 7])
def test_bad_overlap_refused(overlap: Any) -> None:
    with pytest.raises(ValueError, match='invalid overlap window'):
        Rotation('acme', 'example.com', overlap=overlap)


def test_zero_overlap_allows_immediate_revocation(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key, overlap=timedelta(0))
    s.bring('old', KeyState.ACTIVE)
    s.bring('new', KeyState.ACTIVE)
    s.rotation.revoke('old', s.now)
    assert state_of(s.rotation, 'old') is KeyState.REVOKED


def test_time_must_be_aware(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    with pytest.raises(ValueError, match='timezone-aware'):
        s.rotation.add(make_ref('s1', rsa_key), datetime(2026, 10, 1))


def test_times_normalised_to_utc(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('old', KeyState.ACTIVE)
    s.bring('new', KeyState.VERIFIED)
    paris = timezone(timedelta(hours=1))
    s.rotation.activate('new', datetime(2026, 11, 1, 13, 0, 0, 123456, tzinfo=paris))
    assert s.rotation.entry('old').retire_after == datetime(2026, 11, 8, 12, 0, tzinfo=UTC)


# DNS view --------------------------------------------------------------------------------------


def test_dns_records_by_state(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> None:
    s = Scenario(rsa_key)
    for state in KeyState:
        s.bring(f'x-{state.value}', state, ed_key if state is KeyState.GENERATED else None)
    records = {d.selector: d for d in s.rotation.dns_records()}
    key_txt = public_txt_value(rsa_key)
    assert 'x-generated' not in records
    assert 'x-removed' not in records
    for state in (KeyState.PUBLISHED, KeyState.VERIFIED, KeyState.ACTIVE, KeyState.RETIRING):
        assert records[f'x-{state.value}'].value == key_txt
    assert records['x-revoked'].value == revoked_txt_value('rsa')
    record = records['x-published']
    assert (record.name, record.fqdn) == ('x-published._domainkey', 'x-published._domainkey.example.com')
    assert list(records) == sorted(records)


# Planning --------------------------------------------------------------------------------------


def test_next_step_for_a_new_domain() -> None:
    rotation = Rotation('acme', 'example.com')
    step = next_step(rotation, T0, period='quarterly', algorithms='rsa+ed25519')
    assert step.action is Action.GENERATE
    assert step.selectors == ('s2026q4', 's2026q4e')


def test_next_step_follows_the_states(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    r = s.rotation
    s.add('s2026q4')
    assert next_step(r, s.now, period='quarterly').action is Action.PUBLISH
    r.publish('s2026q4', s.tick())
    assert next_step(r, s.now, period='quarterly').action is Action.VERIFY
    r.verify('s2026q4', s.tick(), dns_of(r))
    step = next_step(r, s.now, period='quarterly')
    assert (step.action, step.selectors) == (Action.ACTIVATE, ('s2026q4',))
    r.activate('s2026q4', s.tick())
    step = next_step(r, s.now, period='quarterly')
    assert step.action is Action.NONE
    assert str(step) == 'nothing to do; the next rotation is due on 2027-01-01'


def test_next_step_wait_then_revoke_then_remove(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s2026q4', KeyState.ACTIVE)
    s.bring('s2026q4r2', KeyState.ACTIVE)
    retire_after = s.rotation.entry('s2026q4').retire_after
    step = next_step(s.rotation, s.now, period='quarterly')
    assert step.action is Action.WAIT
    assert step.not_before == retire_after
    assert 'must stay published until 2026-10-08T' in step.message
    assert retire_after is not None
    step = next_step(s.rotation, retire_after, period='quarterly')
    assert (step.action, step.selectors) == (Action.REVOKE, ('s2026q4',))
    s.rotation.revoke('s2026q4', retire_after)
    assert next_step(s.rotation, retire_after, period='quarterly').action is Action.REMOVE


def test_rotation_due_in_new_period(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s2026q4', KeyState.ACTIVE)
    assert next_step(s.rotation, datetime(2026, 12, 31, 23, 59, tzinfo=UTC), period='quarterly').action is Action.NONE
    step = next_step(s.rotation, datetime(2027, 1, 1, tzinfo=UTC), period='quarterly')
    assert (step.action, step.selectors) == (Action.GENERATE, ('s2027q1',))
    # a half-yearly period is not over yet
    assert next_step(s.rotation, datetime(2026, 12, 1, tzinfo=UTC), period=180).action is Action.NONE


def test_rotation_due_after_rollback(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.now = datetime(2026, 9, 1, tzinfo=UTC)
    s.bring('s2026q3', KeyState.ACTIVE)
    s.now = datetime(2026, 10, 2, tzinfo=UTC)
    s.bring('s2026q4', KeyState.ACTIVE)
    s.rotation.activate('s2026q3', s.tick())  # roll back
    step = next_step(s.rotation, s.now, period='quarterly')
    assert (step.action, step.selectors) == (Action.GENERATE, ('s2026q4r2',))


def test_no_generation_while_a_key_is_in_progress(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.bring('s2026q3', KeyState.ACTIVE)
    s.add('s2026q4')
    steps = s.rotation.next_steps(datetime(2027, 1, 5, tzinfo=UTC), period='quarterly')
    assert [st.action for st in steps] == [Action.PUBLISH]


def test_due_keys_for_missing_algorithm(rsa_key: rsa.RSAPrivateKey) -> None:
    s = Scenario(rsa_key)
    s.now = datetime(2026, 10, 2, tzinfo=UTC)
    s.bring('s2026q4', KeyState.ACTIVE)
    due = s.rotation.due_keys(s.now, period='quarterly', algorithms='rsa+ed25519')
    assert due == [('s2026q4e', KeyAlgorithm.ED25519)]
    assert s.rotation.next_free_selector(s.now, 'quarterly') == 's2026q4r2'


# Persistence -----------------------------------------------------------------------------------


def _busy_rotation(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey) -> Rotation:
    s = Scenario(rsa_key)
    s.bring('s2026q3', KeyState.ACTIVE)
    s.bring('s2026q3e', KeyState.ACTIVE, ed_key)
    s.bring('s2026q4', KeyState.ACTIVE)
    s.bring('s2026q4e', KeyState.GENERATED, ed_key)
    return s.rotation


def test_json_round_trip_and_determinism(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, store: KeyStore
) -> None:
    rotation = _busy_rotation(rsa_key, ed_key)
    text = rotation.to_json()
    assert text.endswith('}\n')
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + '\n'
    again = Rotation.from_json(text)
    assert again.to_json() == text
    assert again.signing_selectors() == rotation.signing_selectors()
    assert again.entry('s2026q3').retire_after == rotation.entry('s2026q3').retire_after
    data = json.loads(text)
    assert data['selectors']['s2026q3']['retire_after'].endswith('Z')
    assert data['overlap_seconds'] == 7 * 86400
    assert 'do not edit by hand' in data['comment']


def test_save_and_load(rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, store: KeyStore) -> None:
    assert load_rotation(store, 'acme', 'example.com').entries == []
    rotation = _busy_rotation(rsa_key, ed_key)
    path = save_rotation(store, rotation)
    assert path == store.root / 'acme' / 'example.com' / 'rotation.json' == rotation_path(store, 'acme', 'example.com')
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_rotation(store, 'acme', 'example.com').to_json() == rotation.to_json()
    save_rotation(store, rotation)
    assert path.read_text() == rotation.to_json()
    assert sorted(p.name for p in path.parent.iterdir()) == ['rotation.json']


def test_load_refuses_other_domains_file(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, store: KeyStore
) -> None:
    rotation = _busy_rotation(rsa_key, ed_key)
    target = rotation_path(store, 'acme', 'example.org')
    store.prepare_domain_dir('acme', 'example.org')
    target.write_text(rotation.to_json())
    with pytest.raises(RotationFileError, match=r'holds the rotation of example\.com'):
        load_rotation(store, 'acme', 'example.org')


def _corrupt(text: str, change: Any) -> str:
    data = json.loads(text)
    change(data)
    return json.dumps(data)


CORRUPTIONS = [
    ('bad-json', None, 'invalid JSON'),
    ('version', lambda d: d.update(format=2), 'format: unsupported format 2'),
    (
        'state',
        lambda d: d['selectors']['s2026q4'].update(state='live'),
        'selectors.s2026q4.state: invalid value "live"',
    ),
    (
        'fingerprint',
        lambda d: d['selectors']['s2026q4'].update(fingerprint='sha256:00'),
        'selectors.s2026q4.fingerprint: sha256:00 does not match',
    ),
    (
        'time',
        lambda d: d['selectors']['s2026q3'].update(retire_after='soon'),
        'selectors.s2026q3.retire_after: invalid time',
    ),
    ('missing', lambda d: d['selectors']['s2026q4'].pop('public_txt'), 'selectors.s2026q4: missing "public_txt"'),
    ('type', lambda d: d.update(overlap_seconds='7d'), "overlap_seconds: unexpected value '7d'"),
    ('negative', lambda d: d.update(overlap_seconds=-5), 'overlap_seconds: negative value'),
    (
        'selector',
        lambda d: d['selectors'].update({'Bad!': d['selectors']['s2026q4']}),
        'selectors.Bad!: invalid DKIM selector',
    ),
    (
        'two-active',
        lambda d: d['selectors']['s2026q3'].update(state='active', retire_after=None),
        'two active rsa selectors',
    ),
    ('retiring', lambda d: d['selectors']['s2026q3'].update(retire_after=None), 'has no retire_after'),
    ('history', lambda d: d['selectors']['s2026q4']['history'][0].update(to='x'), r'history\[0\].to: invalid value'),
]


@pytest.mark.parametrize(('change', 'message'), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS])
def test_corrupt_files_refused(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, change: Any, message: str
) -> None:
    text = _busy_rotation(rsa_key, ed_key).to_json()
    broken = '{"format": ' if change is None else _corrupt(text, change)
    with pytest.raises(RotationFileError, match=rf'^rotation.json: .*{message}'):
        Rotation.from_json(broken, source='rotation.json')


# Store-backed steps (what the CLI runs) --------------------------------------------------------


def test_run_step_full_cycle_with_store(store: KeyStore) -> None:
    rotation = load_rotation(store, 'acme', 'example.com')
    now = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
    result = run_step(rotation, 'generate', now, store=store, period='quarterly', algorithms='rsa+ed25519')
    assert result.changed == ['s2026q4', 's2026q4e']
    assert [r.selector for r in store.list_keys('acme', 'example.com')] == ['s2026q4', 's2026q4e']
    again = run_step(rotation, 'generate', now, store=store, period='quarterly', algorithms='rsa+ed25519')
    assert again.changed == []  # idempotent: keys in progress
    assert run_step(rotation, 'publish', now).changed == ['s2026q4', 's2026q4e']

    failed = run_step(rotation, 'verify', now, answers=empty_dns)
    assert not failed.ok and failed.changed == [] and len(failed.problems) == 2
    verified = run_step(rotation, 'verify', now, answers=dns_of(rotation))
    assert verified.ok and verified.changed == ['s2026q4', 's2026q4e']

    not_activated = run_step(rotation, 'activate', now, store=store, answers=empty_dns)
    assert not_activated.changed == [] and len(not_activated.problems) == 2
    assert not_activated.problems[0].startswith('not activating s2026q4: s2026q4._domainkey.example.com is not')
    assert rotation.signing_selectors() == {}
    activated = run_step(rotation, 'activate', now, store=store, answers=dns_of(rotation))
    assert activated.changed == ['s2026q4', 's2026q4e']  # RSA first
    refs = signing_keys(rotation, store)
    assert [(r.selector, r.algorithm.value) for r in refs] == [('s2026q4e', 'ed25519'), ('s2026q4', 'rsa')]
    references = [r.inventory_reference() for r in refs]
    assert {ref['selector'] for ref in references} == {'s2026q4', 's2026q4e'}
    assert all('BEGIN' not in str(ref) for ref in references)
    save_rotation(store, rotation)
    assert load_rotation(store, 'acme', 'example.com').signing_selectors() == rotation.signing_selectors()

    assert run_step(rotation, 'revoke', now).changed == []  # nothing retiring
    assert run_step(rotation, 'remove', now).changed == []  # never abandons keys by default
    assert run_step(rotation, 'wait', now).changed == []


def generate_private_key_rsa() -> rsa.RSAPrivateKey:
    key = generate_private_key('rsa')
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def test_run_step_generate_needs_store_and_verify_needs_answers() -> None:
    rotation = Rotation('acme', 'example.com')
    with pytest.raises(ValueError, match='needs the key store'):
        run_step(rotation, 'generate', T0)
    assert run_step(rotation, 'verify', T0).changed == []  # nothing published: nothing to check
    s = Scenario(generate_private_key_rsa())
    s.bring('s1', KeyState.PUBLISHED)
    with pytest.raises(ValueError, match='needs an answers function'):
        run_step(s.rotation, 'verify', s.tick())


def test_run_step_named_selectors(store: KeyStore) -> None:
    rotation = Rotation('acme', 'example.com')
    result = run_step(rotation, 'generate', T0, store=store, selectors=['s2026q4r2', ('mail1', 'ed25519')])
    assert result.changed == ['s2026q4r2', 'mail1']
    assert rotation.entry('mail1').algorithm is KeyAlgorithm.ED25519
    run_step(rotation, 'remove', T0, selectors=['mail1'])  # abandon an unpublished key
    assert rotation.entry('mail1').state is KeyState.REMOVED
    with pytest.raises(IllegalTransitionError, match='cannot activate selector "s2026q4r2": it is "generated"'):
        run_step(rotation, 'activate', T0, selectors=['s2026q4r2'])
    with pytest.raises(DkimError, match='does not follow the naming convention'):
        run_step(rotation, 'generate', T0, store=store, selectors=['mail2'])
    store.delete('acme', 'example.com', 'mail1', 'ed25519')
    with pytest.raises(DkimError, match='selectors are never reused'):
        run_step(rotation, 'generate', T0, store=store, selectors=[('mail1', 'ed25519')])
    assert not store.exists('acme', 'example.com', 'mail1', 'ed25519')  # no orphan key written


def test_activation_refuses_replaced_key_file(store: KeyStore) -> None:
    rotation = Rotation('acme', 'example.com')
    run_step(rotation, 'generate', T0, store=store, period='quarterly')
    run_step(rotation, 'publish', T0)
    run_step(rotation, 'verify', T0, answers=dns_of(rotation))
    store.delete('acme', 'example.com', 's2026q4', 'rsa')
    store.create('acme', 'example.com', 's2026q4', 'rsa')
    with pytest.raises(KeyMismatchError, match='the key file was replaced'):
        run_step(rotation, 'activate', T0, store=store)
    assert rotation.entry('s2026q4').state is KeyState.VERIFIED


def test_verify_against_dns_responder(dns_responder: Any, dns_responder_2: Any, store: KeyStore) -> None:
    rotation = Rotation('acme', 'example.com')
    run_step(rotation, 'generate', T0, store=store, period='quarterly', algorithms='rsa+ed25519')
    run_step(rotation, 'publish', T0)
    for record in rotation.dns_records():
        dns_responder.set_txt(record.fqdn, record.value)  # chunked into 255-byte strings
    answers = ServerAnswers([dns_responder.address, dns_responder_2.address], timeout=1.0)
    result = run_step(rotation, 'verify', T0, answers=answers)
    assert result.changed == []  # the second server does not serve the records yet
    assert all(f'{dns_responder_2.address}: no TXT record' in p for p in result.problems)
    for record in rotation.dns_records():
        dns_responder_2.set_txt(record.fqdn, record.value)
    assert run_step(rotation, 'verify', T0, answers=answers).changed == ['s2026q4', 's2026q4e']


def test_rotation_lock(store: KeyStore) -> None:
    with (
        rotation_lock(store, 'acme', 'example.com'),
        pytest.raises(DkimError, match='locked by another process'),
        rotation_lock(store, 'acme', 'example.com', timeout=0.1),
    ):
        pass  # pragma: no cover
    with rotation_lock(store, 'acme', 'example.com', timeout=0.1):
        pass
    lock = store.domain_dir('acme', 'example.com') / '.rotation.lock'
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_rotation_logs_have_no_key_material(store: KeyStore, caplog: pytest.LogCaptureFixture) -> None:
    rotation = Rotation('acme', 'example.com')
    with caplog.at_level(logging.DEBUG, logger='mailinfra_iac.dkim'):
        run_step(rotation, 'generate', T0, store=store, period='quarterly')
        run_step(rotation, 'publish', T0)
        run_step(rotation, 'verify', T0, answers=dns_of(rotation))
        run_step(rotation, 'activate', T0, store=store)
        save_rotation(store, rotation)
    key_file = store.key_path('acme', 'example.com', 's2026q4', 'rsa')
    body = [line for line in key_file.read_text().splitlines() if not line.startswith('-----')]
    saved = rotation_path(store, 'acme', 'example.com').read_text()
    for text in (caplog.text, saved, repr(rotation), repr(rotation.entries)):
        assert all(line not in text for line in body)
    assert 's2026q4 verified -> active' in caplog.text
    assert os.stat(key_file).st_mode & 0o077 == 0


def test_run_step_emergency_rotation_with_short_overlap(store: KeyStore) -> None:
    rotation = Rotation('acme', 'example.com')
    for step in ('generate', 'publish'):
        run_step(rotation, step, T0, store=store, period='quarterly')
    run_step(rotation, 'verify', T0, answers=dns_of(rotation))
    run_step(rotation, 'activate', T0, store=store)
    later = T0 + timedelta(days=1)
    assert run_step(rotation, 'generate', later, store=store, period='quarterly').changed == []
    run_step(rotation, 'generate', later, store=store, selectors=[rotation.next_free_selector(later, 'quarterly')])
    run_step(rotation, 'publish', later)
    run_step(rotation, 'verify', later, answers=dns_of(rotation))
    run_step(rotation, 'activate', later, store=store, overlap=timedelta(hours=1))
    assert rotation.entry('s2026q4').retire_after == later + timedelta(hours=1)
    assert run_step(rotation, 'revoke', later + timedelta(minutes=59)).changed == []
    assert run_step(rotation, 'revoke', later + timedelta(hours=1)).changed == ['s2026q4']
    assert rotation.signing_selectors() == {KeyAlgorithm.RSA: 's2026q4r2'}
