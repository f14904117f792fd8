"""The YAML emitter: what PyYAML (and so Ansible) reads back is exactly what we wrote."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mailinfra_iac.render.serialise import (
    _NON_PRINTABLE,
    Shared,
    _escape,
    _orjson_writes_it_alike,
    _string,
    to_json,
    to_yaml,
)

TRICKY = [
    'yes',
    'No',
    'on',
    'OFF',
    'y',
    'null',
    '~',
    '',
    ' x',
    'x ',
    '1',
    '1.5',
    '0x1f',
    '0o17',
    '1_000',
    '12:30',
    '-all',
    '~all',
    '.inf',
    '-.inf',
    '.NaN',
    '2026-11-28',
    '192.0.2.10',
    '10.0.0.0/8',
    '*.example',
    '&a',
    '*a',
    '!tag',
    '%x',
    '@x',
    '`x',
    'a: b',
    'a #b',
    '#x',
    '[x]',
    '{x}',
    '"q"',
    "'q'",
    'line\nbreak',
    'tab\there',
    'ünïcödé',
    '.mail.protection.outlook.com',
    'v=spf1 -all',
    '^4\\d\\d[ -]4\\.2\\.2',
    '\\',
    '- x',
    '? x',
    '|',
    '>',
    'true',
    'True',
    'NULL',
    'nan',
    'Inf',
]


@pytest.mark.parametrize('text', TRICKY)
def test_tricky_strings_round_trip(text: str) -> None:
    data = {'value': text, 'list': [text], text or 'empty': 1}
    assert yaml.safe_load(to_yaml(data)) == data


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400)
@given(json_like)
def test_anything_round_trips(data: Any) -> None:
    assert yaml.safe_load(to_yaml(data)) == data


def test_header_and_shape() -> None:
    assert to_yaml({'b': [1, {'x': 'w', 'z': []}], 'a': {}}, 'Generated\n\nhere') == (
        b'# Generated\n#\n# here\n---\na: {}\nb:\n  - 1\n  - x: w\n    z: []\n'
    )


JSON_DATA = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(JSON_DATA)
def test_to_json_is_the_standard_librarys_output(data: Any) -> None:
    """The orjson fast path writes exactly what json.dumps(indent=2, sort_keys=True) writes, or is not taken."""
    expected = (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + '\n').encode()
    assert to_json(data) == expected


def test_to_json_fast_path_is_taken_for_plain_data() -> None:
    plain = {'b': [1, 'x', None, True, {'é': '\u2028\x01"\\/'}], 'a': {}, 'c': [], 'd': 2**63}
    assert _orjson_writes_it_alike(plain)
    for odd in ({'x': 1e-05}, {1: 'int key'}, [2**64], {'s': OrderedDict()}):
        assert not _orjson_writes_it_alike(odd)


@settings(max_examples=200, deadline=None)
@given(json_like, json_like)
def test_shared_data_writes_the_same_yaml(part: Any, other: Any) -> None:
    """An object shared between documents, at several indentations and as a list item, is written as without."""
    documents = [{'a': part, 'b': {'c': part}}, [part, {'d': [part]}], {'e': other, 'f': [[part]]}]
    shared = Shared()
    shared.add(part)
    for document in documents:
        assert to_yaml(document, 'h', shared) == to_yaml(document, 'h')
    for document in reversed(documents):  # now from the lines written before
        assert to_yaml(document, 'h', shared) == to_yaml(document, 'h')


def test_shared_data_is_written_once_per_indentation() -> None:
    part = {'x': ['y']}
    shared = Shared()
    shared.add(part)
    first = to_yaml({'a': part}, '', shared)
    part['x'] = ['changed']  # against the rule (shared data must not change): shows the earlier lines are reused
    assert to_yaml({'b': part}, '', shared) == first.replace(b'a:', b'b:')
    assert to_yaml({'b': {'c': part}}, '', shared) == b'---\nb:\n  c:\n    x:\n      - changed\n'
    shared.clear()
    assert to_yaml({'a': part}, '', shared) == b'---\na:\n  x:\n    - changed\n'


def test_the_string_cache_lasts_as_long_as_the_shared_data() -> None:
    """A render's documents quote each string once (``Shared``); clearing the render's data drops the cache."""
    shared = Shared()
    first = to_yaml({'key': 'yes', 'a b': ['x']}, '', shared)
    assert shared._strings == {'a b': '"a b"', 'key': 'key', 'yes': '"yes"', 'x': 'x'}
    shared._strings['x'] = 'poisoned'  # against the rule: shows the next document reads the cache
    assert to_yaml({'k': 'x'}, '', shared) == b'---\nk: poisoned\n'
    shared.clear()
    assert not shared._strings
    assert to_yaml({'key': 'yes', 'a b': ['x']}, '', shared) == first
    assert to_yaml({'k': 'x'}) == b'---\nk: x\n'  # without shared data: a cache of its own for one document


def test_shared_data_is_checked_for_json_once_and_only_when_alike() -> None:
    part = {'b': [1, 'x']}
    odd = {'f': 1e-05}
    shared = Shared()
    shared.add(part)
    shared.add(odd)
    assert to_json({'a': [odd, part]}, shared) == to_json({'a': [odd, part]})  # the standard library's path
    assert not shared._json_checked  # nothing is taken as checked from a document that failed
    assert to_json({'a': part}, shared) == to_json({'a': part})
    assert shared._json_checked == {id(part)}
    part['b'].append(1e-05)  # against the rule: shows the shared object is not walked again
    assert _orjson_writes_it_alike({'c': part}, shared)
    assert not _orjson_writes_it_alike({'c': part})


def _quoted_as_before(value: str) -> str:
    """The double-quoted scalar as the emitter wrote it before its ASCII shortcut (session 9)."""
    return _NON_PRINTABLE.sub(_escape, json.dumps(value, ensure_ascii=False))


@settings(max_examples=1000)
@given(st.text(st.characters(codec='utf-8')) | st.text(st.sampled_from('ab:-\x7f\x85\u2028\u2029\t\n\x00"\\ é')))
def test_quoted_strings_are_written_as_before(text: str) -> None:
    written = _string(text)
    assert written == text or written == _quoted_as_before(text)
    assert yaml.safe_load(f'value: {written}\n') == {'value': text}


@pytest.mark.parametrize(
    ('text', 'written'),
    [
        ('a\x7fb', '"a\\u007fb"'),
        ('tab\there', '"tab\\there"'),
        ('v=spf1 -all', '"v=spf1 -all"'),
        ('a\x85', '"a\\u0085"'),
    ],
)
def test_quoted_strings_escape_what_yaml_cannot_hold(text: str, written: str) -> None:
    """DEL is the one ASCII character JSON leaves raw and YAML refuses: the shortcut must not skip it."""
    assert _string(text) == written
    assert yaml.safe_load(to_yaml({'value': text})) == {'value': text}
