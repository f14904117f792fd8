"""Every text of the corpus (tests/data/bounces/corpus.yml) gets its expected category from the shipped rules."""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

import pytest
import yaml

from mailinfra_agent.feedback.classify import Classifier
from mailinfra_iac.catalogue.bounce_rules import compile_rules
from mailinfra_iac.model.bounce import BOUNCE_CATEGORIES

from ..conftest import ROOT

CORPUS = ROOT / 'tests' / 'data' / 'bounces' / 'corpus.yml'
TEXTS: list[dict[str, Any]] = yaml.safe_load(CORPUS.read_text(encoding='utf-8'))['texts']
REQUIRED_PROVIDERS = {
    'gmail',
    'microsoft-consumer',
    'microsoft-365',
    'yahoo',
    'aol',
    'apple',
    'gmx_webde',
    'orange',
    't-online',
    'comcast',
    'postfix',
    'exim',
    'exchange',
}


@cache
def classifier() -> Classifier:
    rules = compile_rules()
    return Classifier(rules.rules, rules.max_text)


def test_corpus_is_large_sourced_and_covers_the_providers() -> None:
    assert len(TEXTS) >= 200
    for entry in TEXTS:
        assert set(entry) <= {'text', 'status', 'provider', 'isp', 'expected', 'source', 'synthetic'}, entry
        assert ('source' in entry) != bool(entry.get('synthetic')), f'a text has a URL or is synthetic: {entry}'
        assert 'source' not in entry or entry['source'].startswith(('http://', 'https://')), entry
        assert entry['expected'] in BOUNCE_CATEGORIES, entry
    assert set(Counter(entry['provider'] for entry in TEXTS)) >= REQUIRED_PROVIDERS
    texts = [entry['text'] for entry in TEXTS]
    assert len(texts) == len(set(texts)), 'each text once'


@pytest.mark.parametrize('entry', TEXTS, ids=[f'{i:03d}-{e["provider"]}' for i, e in enumerate(TEXTS)])
def test_text_gets_its_category(entry: dict[str, Any]) -> None:
    result = classifier().classify(entry['text'], status=entry.get('status'), isp=entry.get('isp'))
    assert result.category == entry['expected'], (result.rule, result.matched, entry['text'])
