"""The labelled DNSBL replay corpus (benchmarks/dnsbl/replay.json) against our checker and pydnsbl.

Every documented listing code and error answer of the benchmark zones (catalogue zones and the custom test
zones under dnsbl.test), NXDOMAIN, SERVFAIL, a silent
server and a resolver that rewrites NXDOMAIN to 203.0.113.7, served by Knot and a responder on loopback.
Our checker must give every case its label; pydnsbl reads every A record as a listing, so it must fail
exactly the error answers and the rewritten NXDOMAINs (which shows the corpus catches that mistake).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailinfra_agent.dnsbl.catalogue import load_catalogue

BENCH = Path(__file__).resolve().parents[2] / 'benchmarks' / 'dnsbl'


def _module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f'dnsbl_bench_{name}', BENCH / f'{name}.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


replay = _module('replay')
responder = _module('responder')


@pytest.fixture(scope='module')
def corpus() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BENCH / 'replay.json').read_text())
    return data


@pytest.fixture(scope='module')
def results(corpus: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = replay.replay(corpus, load_catalogue())
    return out


def test_corpus_covers_every_documented_answer_of_its_zones(corpus: dict[str, Any]) -> None:
    index = replay.zone_index(corpus, load_catalogue())
    assert len(corpus['zones']) >= 10
    for name in corpus['zones']:
        zone = index.get(name)
        assert zone is not None, f'{name} is neither in the catalogue nor a custom zone: regenerate (replay.py --write)'
        cases = [case for case in corpus['cases'] if case['zone'] == name]
        bits = zone.decoder == 'bitmask'
        codes = {f'127.0.0.{c}' if bits else c for c in zone.codes}
        errors = {f'127.0.0.{c}' if bits and '.' not in c else c for c in zone.errors}
        assert {case['served'][0] for case in cases if case['scenario'] == 'code'} == codes, name
        assert {case['served'][0] for case in cases if case['scenario'] == 'error'} == errors, name
        assert {case['scenario'] for case in cases} >= {'code', 'nxdomain', 'servfail', 'timeout', 'hijack'}
    assert any(case['scenario'] == 'error' for case in corpus['cases'])


def test_ours_gives_every_case_its_label(results: dict[str, list[dict[str, Any]]]) -> None:
    wrong = [(case['id'], case['expect'], case['got']) for case in results['ours'] if case['got'] != case['expect']]
    assert wrong == []


def test_pydnsbl_reads_error_answers_and_rewritten_nxdomain_as_listings(
    results: dict[str, list[dict[str, Any]]],
) -> None:
    wrong = {case['id'] for case in results['pydnsbl'] if case['got'] != case['expect']}
    misread = {case['id'] for case in results['pydnsbl'] if case['scenario'] in ('error', 'hijack')}
    assert wrong == misread
    assert all(case['got'] == 'listed' for case in results['pydnsbl'] if case['id'] in misread)


def test_responder_answers_each_mode_and_ignores_garbage() -> None:
    query = bytes.fromhex('abcd0100000100000000000004746573740000010001')  # "test" A, RD
    hijacked = responder.answer(query, 'hijack')
    assert hijacked[:2] == b'\xab\xcd' and hijacked[-4:] == bytes([203, 0, 113, 7])
    assert responder.answer(query, 'servfail')[3] & 0x0F == 2
    assert responder.answer(query, 'silent') is None
    assert responder.answer(b'\x00' * 5, 'hijack') is None
    assert responder.answer(hijacked, 'hijack') is None  # a response is not answered
