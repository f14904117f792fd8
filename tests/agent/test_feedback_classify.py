"""The host's bounce classifier: conditions, first match, fallback, safe regular expressions, bounded input."""

from __future__ import annotations

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
    required_literals,
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
        # RFC 3463 X.2.0: the mailbox exists; never a hard bounce (Amazon SES, sisimai lhost-receivingses-07.eml)
        ('550 5.2.0 Message Filtered', 'other', 'subject'),
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
    """A huge reply is cut to max_text before matching: a rule beyond the limit does not see it (nor does the
    backtracking rule see 4 MB; its time is not asserted, the cut is)."""
    rules = [
        {'id': 'tail', 'category': 'spam-related', 'regex': 'needle'},
        {'id': 'a', 'category': 'other', 'regex': 'a.*b.*c'},
    ]
    text = '550 ' + 'a ' * 2_000_000 + 'needle'
    result = Classifier(rules, max_text=1000).classify(text)
    assert result.rule is None
    assert Classifier(rules).classify('550 x needle').rule == 'tail'


# --- the literal prefilter --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('pattern', 'expected'),
    [
        ('User unknown', {'user unknown'}),
        ('mailbox (?:is )?full|over ?quota', {'mailbox ', 'quota'}),
        (r'\bSPF\b|\[(?:TS|TSS)0[1-9]\]', {'spf', '[ts'}),  # re's parser moves the common "TS" out
        (r'DNS Error: .*(?:NXDOMAIN|Null MX)', {'dns error: '}),
        (r'bloqu\u00e9e pour spam', {'e pour spam'}),  # the non-ASCII letter ends a run
        (r'\d{3}\w+', None),  # no literal a match must contain
        (r'(?:abc|\d+)', None),  # one branch without one: nothing to tell
        (r'(?:abc|)', None),
    ],
)
def test_required_literals(pattern: str, expected: set[str] | None) -> None:
    found = required_literals(pattern)
    assert (None if found is None else set(found)) == expected


def _every_rule(classifier: Classifier, text: str, **condition: str | None) -> str | None:
    """The first rule whose conditions all hold, trying every rule's regex (what the prefilter must not change)."""
    text = ' '.join(text[: classifier.max_text].split())
    code, enhanced = parse_codes(text)
    for rule in classifier.rules:
        if rule.explain(code, enhanced, text, condition.get('isp'), condition.get('stream')) is not None:
            return rule.id
    return None


def test_the_prefilter_changes_no_result_on_the_corpus() -> None:
    """Every corpus text, also upper-cased, lower-cased and behind a Postfix prefix, gets the rule that running
    every rule's regex gives; the prefilter skips most regexes."""
    import yaml

    from mailinfra_iac.catalogue.bounce_rules import compile_rules

    from ..conftest import ROOT

    rules = compile_rules()
    classifier = Classifier(rules.rules, rules.max_text)
    texts = yaml.safe_load((ROOT / 'tests' / 'data' / 'bounces' / 'corpus.yml').read_text(encoding='utf-8'))['texts']
    checked = 0
    for entry in texts:
        text = str(entry['text'])
        for variant in (text, text.upper(), text.lower(), f'host mx.example.com[192.0.2.1] said: {text}'):
            for isp in (None, 'gmail', 'microsoft', 'yahoo'):
                assert classifier.classify(variant, isp=isp).rule == _every_rule(classifier, variant, isp=isp), variant
                checked += 1
    assert checked >= 200 * 4 * 4
    assert (
        sum(needles is not None for needles in classifier._needles)
        >= len([rule for rule in classifier.rules if rule.regex]) * 9 // 10
    )


def test_the_prefilter_lowers_only_ascii_texts() -> None:
    """IGNORECASE matches the Kelvin sign (U+212A) for "k" and the long s (U+017F) for "s": a text with non-ASCII
    characters runs every regex, so these still match."""
    classifier = Classifier([{'id': 'k', 'category': 'spam-related', 'regex': 'blocked using spamhaus'}])
    assert classifier.classify('554 BLOCKED USING SPAMHAUS').rule == 'k'
    assert classifier.classify('554 bloc\u212aed u\u017fing spamhaus').rule == 'k'
    assert classifier.classify('554 blocked using spamcop').rule is None


def test_remembered_code_matches_give_the_first_matching_pattern_each_time() -> None:
    """Which pattern matched a code is remembered per (patterns, code): a second classification reads the same."""
    rules = [
        {'id': 'codes', 'category': 'bad-mailbox', 'codes': ['54x', '55x', '5xx']},
        {'id': 'enhanced', 'category': 'quota-issues', 'enhanced': ['4.2.x', 'x.2.2']},
    ]
    for _ in range(2):
        first = Classifier(rules).classify('552 over there')
        assert (first.rule, first.matched) == ('codes', {'code': '552 matches 55x'})
        second = Classifier(rules).classify('452 4.2.2 mailbox full')
        assert (second.rule, second.matched) == ('enhanced', {'enhanced': '4.2.2 matches 4.2.x'})
        # No pattern matches: neither rule, the fallback decides (a remembered miss stays a miss).
        third = Classifier(rules).classify('421 4.4.2 gone')
        assert (third.rule, third.origin) == (None, 'fallback')
