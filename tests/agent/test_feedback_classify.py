"""The host's bounce classifier: conditions, first match, fallback, safe regular expressions, bounded input."""

from __future__ import annotations

import time

import pytest

from mailinfra_agent.contract import BounceRule
from mailinfra_agent.feedback.classify import (
    MAX_PATTERN,
    Classifier,
    Rule,
    code_matches,
    outcome,
    parse_codes,
    pattern_problem,
)

RULES = [
    {'id': 'stream-only', 'category': 'spam-related', 'regex': 'marketing word', 'stream': 'marketing'},
    {'id': 'isp-only', 'category': 'inactive-mailbox', 'regex': 'mailbox unavailable', 'isp': 'microsoft'},
    {'id': 'both', 'category': 'bad-mailbox', 'codes': ['55x'], 'enhanced': ['x.1.1'], 'regex': 'unknown'},
    {'id': 'code', 'category': 'quota-issues', 'enhanced': ['x.2.2']},
    {'id': 'text', 'category': 'bad-mailbox', 'regex': 'mailbox unavailable'},
]


def classifier() -> Classifier:
    return Classifier(RULES)


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('550 5.1.1 <a@b.example>: User unknown', ('550', '5.1.1')),
        ('550-5.7.26 Unauthenticated 550-5.7.26 more', ('550', '5.7.26')),
        ('smtp; 550 #5.1.0 Address rejected.', ('550', '5.1.0')),
        ('host mx[192.0.2.1] said: 554 5.6.0 spam (in reply to end of DATA command)', ('554', '5.6.0')),
        ('connect to mx[192.0.2.1]:25: Connection timed out', (None, None)),
        ('421 4.7.0 [TSS04] deferred - 4.16.55.1; see https://example.com', ('421', '4.7.0')),
    ],
)
def test_parse_codes(text: str, expected: tuple[str | None, str | None]) -> None:
    assert parse_codes(text) == expected


def test_code_patterns() -> None:
    assert code_matches('5xx', '550') and code_matches('55x', '554') and not code_matches('55x', '450')
    assert code_matches('x.1.1', '5.1.1') and code_matches('5.7.x', '5.7.26') and not code_matches('x.1.1', '5.1.10')


def test_every_condition_must_hold_and_the_first_match_wins() -> None:
    result = classifier().classify('550 5.1.1 user unknown')
    assert (result.rule, result.category, result.outcome) == ('both', 'bad-mailbox', 'hard')
    assert set(result.matched) == {'code', 'enhanced', 'regex'}
    # 450: the code condition fails, so "both" does not match; nothing else does: fallback on 4.1.1
    result = classifier().classify('450 4.1.1 user unknown')
    assert (result.rule, result.origin, result.category, result.outcome) == (None, 'fallback', 'bad-mailbox', 'soft')


def test_isp_and_stream_conditions() -> None:
    text = '550 Requested action not taken: mailbox unavailable'
    assert classifier().classify(text).rule == 'text'
    assert classifier().classify(text, isp='microsoft').rule == 'isp-only'
    assert classifier().classify('550 marketing word', stream='marketing').rule == 'stream-only'
    assert classifier().classify('550 marketing word', stream='transactional').rule is None


def test_status_fills_in_what_the_text_lacks() -> None:
    result = classifier().classify('Mailbox is full', status='5.2.2')
    assert (result.rule, result.enhanced, result.permanent) == ('code', '5.2.2', True)
    assert classifier().classify('552 5.2.2 full', status='4.0.0').enhanced == '5.2.2', 'the text wins'
    assert classifier().classify('odd', status='not-a-code').enhanced is None


@pytest.mark.parametrize(
    ('text', 'category', 'matched'),
    [
        ('550 5.4.9 odd', 'routing-errors', 'subject'),
        ('451 4.7.99 odd', 'policy-related', 'subject'),
        ('554 odd', 'other', 'class'),
        ('no code at all', 'other', 'class'),
    ],
)
def test_fallback_on_the_status_code(text: str, category: str, matched: str) -> None:
    result = Classifier([]).classify(text)
    assert (result.category, result.rule, result.origin) == (category, None, 'fallback')
    assert list(result.matched) == [matched]


def test_outcomes() -> None:
    assert outcome('bad-mailbox', permanent=True) == 'hard'
    assert outcome('bad-mailbox', permanent=False) == 'soft'
    assert outcome('quota-issues', permanent=True) == 'soft'
    assert outcome('spam-related', permanent=True) == 'policy'
    assert outcome('policy-related', permanent=False) == 'policy'
    assert outcome('other', permanent=False, delivered=True) == 'delivered'


@pytest.mark.parametrize(
    ('pattern', 'problem'),
    [
        ('(a+)+$', 'quantified group'),
        ('(?:x|y*)*z', 'quantified group'),
        (r'(\w+)\1', 'back-references'),
        ('(unclosed', 'invalid regular expression'),
        ('x' * (MAX_PATTERN + 1), 'characters long'),
    ],
)
def test_unsafe_patterns_are_refused(pattern: str, problem: str) -> None:
    found = pattern_problem(pattern)
    assert found is not None and problem in found
    with pytest.raises(ValueError, match='bounce rule "bad"'):
        Rule.from_data({'id': 'bad', 'category': 'other', 'regex': pattern})


def test_safe_patterns_pass_and_rules_need_a_condition() -> None:
    assert pattern_problem(r'user (?:unknown|not found)|[\w.-]+ does not exist') is None
    with pytest.raises(ValueError, match='matches nothing'):
        Rule.from_data({'id': 'empty', 'category': 'other'})
    with pytest.raises(ValueError, match='invalid reply code pattern'):
        Rule.from_data({'id': 'code', 'category': 'other', 'codes': ['5.1.1']})


def test_contract_rules_are_accepted() -> None:
    rule = BounceRule(id='c', category='bad-mailbox', enhanced=('x.1.1',), origin='spec')
    result = Classifier([rule]).classify('550 5.1.1 gone')
    assert (result.rule, result.origin) == ('c', 'spec')


def test_input_is_bounded() -> None:
    """A huge reply is cut to max_text before matching: a rule beyond the limit does not see it, and it is fast."""
    rules = [
        {'id': 'tail', 'category': 'spam-related', 'regex': 'needle'},
        {'id': 'a', 'category': 'other', 'regex': 'a.*b.*c'},
    ]
    text = '550 ' + 'a ' * 2_000_000 + 'needle'
    started = time.monotonic()
    result = Classifier(rules, max_text=1000).classify(text)
    assert result.rule is None
    assert time.monotonic() - started < 1
    assert Classifier(rules).classify('550 x needle').rule == 'tail'
