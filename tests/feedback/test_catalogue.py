"""The rule catalogue and the spec's overrides: located errors, compiled order, the contract, the checks."""

from __future__ import annotations

import json

import pytest

from mailinfra_agent.contract import dump_contract, load_contract
from mailinfra_agent.feedback.classify import Classifier
from mailinfra_iac import SpecInvalid, parse_spec
from mailinfra_iac.catalogue.bounce_rules import builtin_rules, compile_rules, load_catalogue
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract

from ..conftest import AS_OF, BASE, edit, position, problems

STREAM_END = 'injection: {port: 2526, networks: [10.0.0.0/8]}'
GOOD = """
bounce_policy:
  classification:
    disable: [text-quota]
    rules:
      - id: our-relay-full
        category: quota-issues
        codes: ['45x']
        regex: 'relay is full'
        description: our own relay
      - id: ms-unavailable
        category: inactive-mailbox
        regex: 'mailbox unavailable'
        isp: microsoft
monitoring:"""
STREAM_RULE = (
    f'{STREAM_END}\n    bounce_policy: {{classification: {{rules: '
    "[{id: marketing-only, category: spam-related, regex: 'relay is full'}]}}"
)


def good_spec() -> str:
    return edit(STREAM_END, STREAM_RULE, edit('\nmonitoring:', GOOD))


def test_builtin_catalogue_loads_with_unique_ids() -> None:
    rules = builtin_rules()
    assert len(rules) > 50
    assert len({entry.rule.id for entry in rules}) == len(rules)
    assert all(entry.line is not None and entry.file.endswith('.yml') for entry in rules)


def test_catalogue_file_problems_have_file_line_and_field() -> None:
    text = """rules:
  - id: ok-rule
    category: bad-mailbox
    regex: fine
  - id: bad-regex
    category: bad-mailbox
    regex: '(a+)+'
  - id: bad-field
    category: bad-mailbox
    regx: typo
  - id: bad-category
    category: no-such-category
    codes: ['550']
  - id: ok-rule
    category: other
    codes: ['5xx']
  - id: isp-rule
    category: other
    codes: ['5xx']
    isp: nosuchisp
"""
    with pytest.raises(SpecInvalid) as raised:
        load_catalogue([('rules.yml', text)])
    found = {(p.check, p.line, str(p.path[-1])) for p in raised.value.problems}
    # the schema errors stop the file before the cross-rule checks; check those on a valid file
    assert ('bounce-rule-schema', 7, 'regex') in found
    assert ('bounce-rule-schema', 10, 'regx') in found
    assert ('bounce-rule-schema', 12, 'category') in found
    assert all(p.file == 'rules.yml' for p in raised.value.problems)
    valid = (
        text.replace("regex: '(a+)+'", 'regex: x')
        .replace('regx: typo', 'regex: y')
        .replace('no-such-category', 'other')
    )
    with pytest.raises(SpecInvalid) as raised:
        load_catalogue([('a.yml', valid.split('  - id: ok-rule\n    category: other')[0]), ('b.yml', valid)])
    found = {(p.check, p.file, p.line) for p in raised.value.problems}
    assert ('bounce-rule-duplicate-id', 'b.yml', 2) in found  # ok-rule again, in the second file
    assert ('bounce-rule-unknown-isp', 'b.yml', 20) in found


def test_catalogue_yaml_errors_are_located() -> None:
    with pytest.raises(SpecInvalid) as raised:
        load_catalogue([('broken.yml', 'rules:\n  - id: x\n    category: [\n')])
    assert raised.value.problems[0].check == 'yaml-syntax'
    assert raised.value.problems[0].file == 'broken.yml' and raised.value.problems[0].line is not None


def test_valid_overrides_pass_every_check() -> None:
    assert [p.check for p in problems(good_spec()) if p.severity == 'error'] == []


def test_overrides_compile_in_order_stream_deployment_catalogue() -> None:
    spec = parse_spec(good_spec(), 'spec.yml', as_of=AS_OF)
    compiled = compile_rules(spec.deployment)
    ids = [rule.id for rule in compiled.rules]
    assert ids[:3] == ['marketing-only', 'our-relay-full', 'ms-unavailable']
    assert compiled.rules[0].stream == 'marketing' and compiled.rules[0].origin == 'spec'
    assert 'text-quota' not in ids and 'text-user-unknown' in ids
    classifier = Classifier(compiled.rules)
    assert classifier.classify('452 relay is full', stream='marketing').rule == 'marketing-only'
    assert classifier.classify('452 relay is full', stream='transactional').rule == 'our-relay-full'
    text = '550 Requested action not taken: mailbox unavailable'
    assert classifier.classify(text, isp='microsoft').category == 'inactive-mailbox'
    assert classifier.classify(text, isp='gmail').category == 'bad-mailbox'
    assert classifier.classify('552 mailbox full').rule != 'text-quota'


@pytest.mark.parametrize(
    ('snippet', 'marker', 'message'),
    [
        ("regex: '(x+)+y'", '(x+)+y', 'quantified group'),
        ("regex: '(unclosed'", '(unclosed', 'invalid regular expression'),
        ("codes: ['5.1.1']", "['5.1.1']", 'invalid reply code pattern'),
        ("enhanced: ['5.1']", "['5.1']", 'invalid enhanced status code pattern'),
        ('isp: gmail', '{id: Bad', 'matches nothing'),
    ],
)
def test_bad_rules_in_the_spec_are_located_schema_errors(snippet: str, marker: str, message: str) -> None:
    rule_id = 'Bad' if 'matches nothing' in message else 'bad'
    text = edit(
        '\nmonitoring:',
        f'\nbounce_policy: {{classification: {{rules: [{{id: {rule_id}, category: other, {snippet}}}]}}}}\nmonitoring:',
    )
    found = [p for p in problems(text) if p.severity == 'error']
    assert found, 'an unsafe or empty rule is refused'
    assert any(message in p.message or 'invalid rule id' in p.message for p in found), [str(p) for p in found]
    first = found[0]
    assert first.file == 'spec.yml' and first.line == position(text, marker)[0]


def test_disable_under_a_stream_is_refused() -> None:
    text = edit(STREAM_END, f'{STREAM_END}\n    bounce_policy: {{classification: {{disable: [text-quota]}}}}')
    found = [p for p in problems(text) if p.severity == 'error']
    assert [p.check for p in found] == ['unknown-bounce-rule']
    assert found[0].line == position(text, 'text-quota]')[0]


def test_stream_rule_may_not_repeat_a_deployment_rule_id() -> None:
    text = edit(STREAM_END, STREAM_RULE.replace('marketing-only', 'our-relay-full'), edit('\nmonitoring:', GOOD))
    assert [p.check for p in problems(text) if p.severity == 'error'] == ['duplicate-bounce-rule']


def test_contract_carries_the_compiled_rules_and_old_contracts_still_load() -> None:
    spec = parse_spec(good_spec(), 'spec.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts, spec.name, {}, None)
    host = sorted(spec.deployment.hosts)[0]
    contract = host_contract(context, host)
    data = json.loads(json.dumps(dump_contract(contract)))
    loaded = load_contract(data)
    assert loaded.bounce_rules == contract.bounce_rules
    assert loaded.bounce_rules.rules[0].id == 'marketing-only'
    del data['bounce_rules']
    assert load_contract(data).bounce_rules.rules == ()
    data['bounce_rules'] = {'rules': [{'id': 'x', 'category': 'other', 'regex': 'y', 'unknown': 1}], 'max_text': 10}
    with pytest.raises(Exception, match='unknown'):
        load_contract(data)


def test_base_spec_is_untouched() -> None:
    assert 'bounce_policy' not in BASE
