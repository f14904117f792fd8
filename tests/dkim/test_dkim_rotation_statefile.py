"""rotation.json as a pydantic model: files written before the split still read, bad files are refused clearly."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailinfra_iac.dkim import KeyState, KeyStore, Rotation, RotationFileError, load_rotation, save_rotation
from mailinfra_iac.dkim.rotation.statefile import MARKER, RotationDocument

FORMAT_1 = Path(__file__).resolve().parent / 'data' / 'rotation-format-1.json'
"""Written by rotation.py before it was split (hand-written reader): every state but retiring."""


def document() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FORMAT_1.read_text(encoding='utf-8'))
    return data


def test_existing_file_reads_and_writes_back_byte_for_byte(store: KeyStore) -> None:
    text = FORMAT_1.read_text(encoding='utf-8')
    rotation = Rotation.from_json(text)
    assert {e.selector: e.state for e in rotation.entries} == {
        's2026q1': KeyState.REMOVED,
        's2026q2': KeyState.REVOKED,
        's2026q2e': KeyState.ACTIVE,
        's2026q3': KeyState.ACTIVE,
        's2026q4': KeyState.PUBLISHED,
        's2026q4e': KeyState.GENERATED,
        's2026q4r2': KeyState.VERIFIED,
    }
    assert rotation.to_json() == text
    store.prepare_domain_dir('acme', 'example.com')
    shutil.copyfile(FORMAT_1, store.domain_dir('acme', 'example.com') / 'rotation.json')
    loaded = load_rotation(store, 'acme', 'example.com')
    assert save_rotation(store, loaded).read_text(encoding='utf-8') == text


def test_optional_fields_of_format_1() -> None:
    data = document()
    del data['comment']
    for entry in data['selectors'].values():
        for transition in entry['history']:
            del transition['reason']
    rotation = Rotation.from_dict(data)
    assert json.loads(rotation.to_json())['comment'] == MARKER
    assert {t.reason for e in rotation.entries for t in e.history} == {''}


def _set(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value  # type: ignore[index]

    return change


REFUSED = [
    ('missing-format', lambda d: d.pop('format'), 'top level: missing "format"'),
    ('unknown-top', _set('extra', value=1), 'top level: unknown field "extra"'),
    ('unknown-entry', _set('selectors', 's2026q3', 'note', value='x'), 'selectors.s2026q3: unknown field "note"'),
    (
        'unknown-history',
        _set('selectors', 's2026q3', 'history', 0, 'by', value='me'),
        r'selectors.s2026q3.history\[0\]: unknown field "by"',
    ),
    ('bool-for-int', _set('overlap_seconds', value=True), 'overlap_seconds: unexpected value True'),
    ('number-for-name', _set('client', value=5), 'client: unexpected value 5'),
    ('entry-type', _set('selectors', 's2026q3', value='x'), 'selectors.s2026q3: expected an object'),
    ('history-type', _set('selectors', 's2026q3', 'history', value={}), 'selectors.s2026q3.history: unexpected value'),
    (
        'naive-time',
        _set('selectors', 's2026q2', 'history', 0, 'at', value='2026-11-05T12:00:00'),
        r'selectors.s2026q2.history\[0\].at: invalid time',
    ),
    (
        'bad-record',
        _set('selectors', 's2026q3', 'public_txt', value='v=DKIM1; k=rsa; p=@@'),
        'selectors.s2026q3.public_txt: invalid DKIM key record',
    ),
    (
        'algorithm',
        _set('selectors', 's2026q3', 'algorithm', value='dsa'),
        'selectors.s2026q3.algorithm: invalid value "dsa", expected',
    ),
    ('client-name', _set('client', value='Bad Client'), 'top level: invalid client name "Bad Client"'),
]


@pytest.mark.parametrize(('change', 'message'), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_bad_files_are_refused(change: Callable[[dict[str, Any]], None], message: str) -> None:
    data = document()
    change(data)
    with pytest.raises(RotationFileError, match=rf'^rotation.json: (.*; )?{message}'):
        Rotation.from_dict(data, source='rotation.json')


def test_every_problem_at_once() -> None:
    data = document()
    data['extra'] = 1
    data['overlap_seconds'] = -1
    data['selectors']['s2026q3']['state'] = 'live'
    with pytest.raises(RotationFileError) as raised:
        Rotation.from_dict(data, source='rotation.json')
    assert str(raised.value) == (
        'rotation.json: overlap_seconds: negative value -1; selectors.s2026q3.state: invalid value "live", expected '
        'one of: generated, published, verified, active, retiring, revoked, removed; top level: unknown field "extra"'
    )


def test_another_format_is_only_its_version() -> None:
    with pytest.raises(RotationFileError) as raised:
        Rotation.from_dict({'format': 2, 'keys': []}, source='rotation.json')
    assert str(raised.value) == 'rotation.json: format: unsupported format 2, expected 1'


def test_not_an_object() -> None:
    with pytest.raises(RotationFileError, match=r'^rotation.json: top level: expected an object$'):
        Rotation.from_json('[1, 2]', source='rotation.json')


def test_the_model_forbids_extra_fields() -> None:
    assert RotationDocument.model_config.get('extra') == 'forbid'
    RotationDocument.model_validate(document())
