"""Property: any mutation of a valid spec gives a valid model or a structured error, never a crash."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailinfra_iac import Spec, SpecInvalid, parse_spec

from ..conftest import AS_OF, BASE, ROOT

SOURCES = [BASE, *(path.read_text() for path in sorted((ROOT / 'examples').glob('*.yml')))]
DATA = [yaml.safe_load(text) for text in SOURCES]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(['192.0.2.99', 'x.testco.example', '10m', '-all', 'none', 'gmail', '']),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _containers(value, (*path, key)) if isinstance(value, dict | list) else []
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _containers(value, (*path, index)) if isinstance(value, dict | list) else []
    return found


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> str:
    data = copy.deepcopy(draw(st.sampled_from(DATA)))
    for _ in range(draw(st.integers(1, 4))):
        container = _get(data, draw(st.sampled_from(_containers(data))))
        action = draw(st.sampled_from(['replace', 'delete', 'add', 'duplicate']))
        if isinstance(container, dict) and container:
            key = draw(st.sampled_from(sorted(container, key=str)))
            if action == 'replace':
                container[key] = draw(values)
            elif action == 'delete':
                del container[key]
            elif action == 'add':
                container[draw(st.text(min_size=1, max_size=10))] = draw(values)
            else:
                container[f'{key}2'] = copy.deepcopy(container[key])
        elif isinstance(container, list) and container:
            index = draw(st.integers(0, len(container) - 1))
            if action == 'replace':
                container[index] = draw(values)
            elif action == 'delete':
                del container[index]
            else:
                container.append(copy.deepcopy(container[index]))
    return yaml.safe_dump(data, sort_keys=False)


def _outcome(text: str) -> None:
    try:
        spec = parse_spec(text, 'mutant.yml', as_of=AS_OF)
    except SpecInvalid as invalid:
        assert invalid.errors, 'an invalid spec names at least one error'
        for problem in invalid.problems:
            assert problem.check and problem.message
            assert problem.file == 'mutant.yml'
            str(problem)
            problem.as_dict()
        return
    assert isinstance(spec, Spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_structural_mutations(text: str) -> None:
    _outcome(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SOURCES), st.data())
def test_text_mutations(source: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(source)))
    insert = data.draw(
        st.sampled_from(['', ':', '- ', '{', ']', '\t', '"', '&a ', '*a', '\n  x: 1\n', '!!python/object '])
    )
    _outcome(source[:cut] + insert + source[cut + data.draw(st.integers(0, 5)) :])
