"""The back-off rule format (``model.isp.BackoffRule``), the catalogue's rules and their way into the contract."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from mailinfra_agent import contract as c
from mailinfra_agent.contract import CONTRACT_VERSION, SUPPORTED_VERSIONS, ContractError, dump_contract, load_contract
from mailinfra_iac import Spec, parse_spec
from mailinfra_iac.catalogue.isps import any_isp_rules, builtin_isps
from mailinfra_iac.facts import DEFAULT_ISP, Backoff
from mailinfra_iac.model.isp import AnyIspRules
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.rolevars.agent import host_contract

from ..conftest import AS_OF, BASE, ROOT, edit, position, problems

CORPUS = yaml.safe_load((ROOT / 'tests/data/bounces/corpus.yml').read_text(encoding='utf-8'))['texts']


def _contract(spec: Spec) -> c.Contract:
    """The contract of the spec's first MTA host."""
    host = next(name for name in spec.deployment.hosts if spec.facts.host_mta.get(name))
    return host_contract(RenderContext(spec.deployment, spec.facts, spec.name, {}, None), host)


def _with_rule(rule: str) -> str:
    return edit('monitoring:\n', f'isp_profiles:\n  gmail:\n    backoff_rules: [{rule}]\nmonitoring:\n')


# --- the format: every mistake a located, plain error ------------------------------------------------------------


@pytest.mark.parametrize(
    ('rule', 'field', 'message'),
    [
        ('{pattern: "421 x", trigger: {count: 0, window: 1h}}', 'trigger', 'trigger count 0 is out of range'),
        ('{pattern: "421 x", trigger: {count: 5000, window: 1h}}', 'trigger', 'trigger count 5000 is out of range'),
        ('{pattern: "421 x", trigger: {count: 5}}', 'trigger', 'trigger count 5 needs a window'),
        ('{pattern: "421 x", trigger: {count: 5, window: 30s}}', 'trigger', 'trigger window 30s is out of range'),
        ('{pattern: "421 x", trigger: {count: 5, window: 2d}}', 'trigger', 'trigger window 2d is out of range'),
        ('{pattern: "421 x", trigger: {count: 1, window: 1h}}', 'trigger', 'with count 1 means nothing'),
        ('{pattern: "421 x", duration: 10s}', 'duration', 'duration 10s is out of range: 1m to 7d'),
        ('{pattern: "421 x", duration: 8d}', 'duration', 'duration 8d is out of range: 1m to 7d'),
        ('{pattern: "421 x", failover: true}', None, 'failover applies to action "suspend" only'),
        ('{pattern: "421 x", action: suspend_ip, failover: false}', None, 'already takes the IP out of rotation'),
        ('{pattern: "  "}', 'pattern', 'empty pattern: it would match every reply'),
        ('{pattern: "421 (x"}', 'pattern', 'invalid regular expression "421 (x"'),
        ('{pattern: "421 x", action: pause}', 'action', 'invalid value "pause"'),
    ],
)
def test_a_bad_rule_is_a_located_error(rule: str, field: str | None, message: str) -> None:
    text = _with_rule(rule)
    found = [problem for problem in problems(text) if problem.severity == 'error']
    assert len(found) == 1, found
    [problem] = found
    assert problem.path == ('isp_profiles', 'gmail', 'backoff_rules', 0, *((field,) if field else ()))
    assert message in problem.message
    assert problem.line == position(text, '[{pattern')[0]


@pytest.mark.parametrize(
    'rule',
    [
        '{pattern: "421 x", trigger: {count: 5, window: 1h}, action: suspend, failover: true, duration: 2h}',
        '{pattern: "421 x", trigger: {count: 2, window: 1m}, duration: 1m}',
        '{pattern: "421 x", trigger: {count: 1000, window: 1d}, duration: 7d}',
        '{pattern: "421 x", action: suspend_ip}',
        '{pattern: "421 x", trigger: {count: 1}}',
    ],
)
def test_a_good_rule_loads(rule: str) -> None:
    assert [problem for problem in problems(_with_rule(rule)) if problem.severity == 'error'] == []


def test_rules_for_every_provider_are_suspend_ip_only() -> None:
    good = {'backoff_rules': [{'pattern': 'listed', 'action': 'suspend_ip'}]}
    assert AnyIspRules.model_validate(good).backoff_rules[0].action == 'suspend_ip'
    for action in ('backoff', 'suspend'):
        with pytest.raises(ValueError, match=f'action "{action}" acts on one provider and needs one'):
            AnyIspRules.model_validate({'backoff_rules': [{'pattern': 'listed', 'action': action}]})


# --- the catalogue: each rule matches the real replies it is for -------------------------------------------------


def _first(stream_isp: str, text: str) -> Backoff | None:
    """The rule the shaping service applies to ``text`` from ``stream_isp`` (first match wins)."""
    plan = parse_spec(BASE, 'spec.yml', as_of=AS_OF).facts.plan
    return next((rule for rule in plan.backoff_rules('marketing', stream_isp) if re.search(rule.pattern, text)), None)


def _corpus(needle: str) -> str:
    return next(entry['text'] for entry in CORPUS if needle in entry['text'])


@pytest.mark.parametrize(
    ('isp', 'needle', 'action', 'count', 'failover'),
    [
        ('gmail', '421 4.7.28 [192.0.2.1] Our system has detected an unusual rate', 'suspend', 1, False),
        ('gmail', '421 4.7.0 Our system has detected an unusual rate', 'backoff', 2, False),
        ('gmail', 'the message has been blocked. - gsmtp', 'suspend', 5, False),
        ('yahoo', '[TSS04]', 'suspend', 1, False),
        ('yahoo', '[TSS09]', 'suspend', 1, False),
        ('yahoo', '[TS02]', 'backoff', 3, False),
        ('yahoo', '[BL21]', 'suspend', 5, False),
        ('microsoft', '(S3150)', 'suspend', 5, False),
        ('microsoft', 'blocked using Spamhaus', 'suspend_ip', 1, False),
        (
            'office365',
            'FT063.mail.protection.outlook.com #5.7.1 smtp;550 5.7.1 Service unavailable',
            'suspend_ip',
            1,
            False,
        ),
        (DEFAULT_ISP, 'blocked using zen.spamhaus.org; https://www.spamhaus.org/sbl/', 'suspend_ip', 1, False),
    ],
)
def test_catalogue_rules_act_on_the_replies_they_cite(
    isp: str, needle: str, action: str, count: int, failover: bool
) -> None:
    text = _corpus(needle)
    rule = _first(isp, text)
    assert rule is not None, text
    assert (rule.action, rule.trigger_count, rule.failover) == (action, count, failover)
    assert rule.trigger_window == (0 if count == 1 else 3600)


@pytest.mark.parametrize(
    ('isp', 'text'),
    [
        ('gmail', '450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents delivery'),
        (DEFAULT_ISP, '450 4.7.1 Client host rejected: greylisted, try again in 5 minutes'),
        # a domain of the message on the Spamhaus DBL: the IP is not listed, no suspend_ip
        (
            DEFAULT_ISP,
            '554 5.7.1 Service unavailable; Sender address [news@example.com] blocked using dbl.spamhaus.org',
        ),
        ('yahoo', '421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred'),
    ],
)
def test_ordinary_replies_trigger_nothing(isp: str, text: str) -> None:
    rule = _first(isp, text)
    assert rule is None or rule.origin == 'reply-rule', rule


def test_the_any_provider_rules_come_after_the_providers_own() -> None:
    plan = parse_spec(BASE, 'spec.yml', as_of=AS_OF).facts.plan
    patterns = [rule.pattern for rule in plan.backoff_rules('marketing', 'yahoo') if rule.origin == 'isp']
    assert patterns[-len(any_isp_rules().backoff_rules) :] == [rule.pattern for rule in any_isp_rules().backoff_rules]
    assert patterns[0] == r'\[TS?S04\]|TS04'


# --- the contract: version 4 carries trigger, action and failover; version 3 still loads ---------------------------


def test_contract_carries_the_rule_format() -> None:
    text = _with_rule(
        '{pattern: "^421 .*slow", action: suspend, failover: true, duration: 20m, trigger: {count: 3, window: 10m}}'
    )
    contract = _contract(parse_spec(text, 'spec.yml', as_of=AS_OF))
    assert contract.version == CONTRACT_VERSION == 6
    gmail = next(isp for isp in contract.streams[0].isps if isp.isp == 'gmail')
    first = gmail.backoff_rules[0]
    assert (first.pattern, first.action, first.duration, first.trigger_count, first.trigger_window, first.failover) == (
        '^421 .*slow',
        'suspend',
        1200,
        3,
        600,
        True,
    )
    suspend_ip = [rule for rule in gmail.backoff_rules if rule.action == 'suspend_ip']
    assert suspend_ip and all(not rule.failover for rule in suspend_ip)
    data = dump_contract(contract)
    assert load_contract(data) == contract
    assert json.loads(json.dumps(data))['streams'][0]['isps']


def _v3(data: dict[str, Any]) -> dict[str, Any]:
    """A version 3 contract: no trigger or failover keys, no suspend_ip rules."""
    data = json.loads(json.dumps(data))
    data['version'] = 3
    for stream in data['streams']:
        for isp in stream['isps']:
            isp['backoff_rules'] = [rule for rule in isp['backoff_rules'] if rule['action'] != 'suspend_ip']
            for rule in isp['backoff_rules']:
                for key in ('trigger_count', 'trigger_window', 'failover'):
                    rule.pop(key, None)
    return data


def test_a_version_3_contract_still_loads_with_first_match_defaults() -> None:
    assert 3 in SUPPORTED_VERSIONS and 4 in SUPPORTED_VERSIONS
    current = dump_contract(_contract(parse_spec(BASE, 'spec.yml', as_of=AS_OF)))
    old = load_contract(_v3(current))
    rules = [rule for stream in old.streams for isp in stream.isps for rule in isp.backoff_rules]
    assert rules and all((r.trigger_count, r.trigger_window, r.failover) == (1, 0, False) for r in rules)


def test_a_wrong_trigger_in_the_contract_is_a_located_error() -> None:
    data = dump_contract(_contract(parse_spec(BASE, 'spec.yml', as_of=AS_OF)))
    data['streams'][0]['isps'][0]['backoff_rules'][0]['trigger_count'] = 'five'
    data['streams'][0]['isps'][0]['backoff_rules'][0]['action'] = 'pause'
    with pytest.raises(ContractError) as raised:
        load_contract(data)
    text = str(raised.value)
    assert '$.streams[0].isps[0].backoff_rules[0].trigger_count' in text
    assert '$.streams[0].isps[0].backoff_rules[0].action' in text


def test_catalogue_patterns_combine_into_one_alternation() -> None:
    """Scoped flags only (``(?i:...)``): a leading ``(?i)`` would break a combined regex and change every rule."""
    patterns = [rule.pattern for profile in builtin_isps().values() for rule in profile.backoff_rules]
    patterns += [rule.pattern for rule in any_isp_rules().backoff_rules]
    assert len(patterns) > 10
    combined = re.compile('|'.join(f'(?P<r{index}>{pattern})' for index, pattern in enumerate(patterns)))
    assert combined.search('421 4.7.28 rate limited') is not None
    with pytest.raises(re.error):
        re.compile('|'.join(f'(?:{pattern})' for pattern in [*patterns, '(?i)global flag']))
