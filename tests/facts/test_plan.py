"""The delivery plan (``facts.plan``): one resolved plan per stream x sending IP x ISP that every MTA translates."""

from __future__ import annotations

import dataclasses
import types
import typing

import pytest

from mailinfra_iac import Spec, load_spec, parse_spec
from mailinfra_iac.catalogue import bounces
from mailinfra_iac.catalogue.isps import DEFAULT_LIMITS, any_isp_rules, builtin_isps
from mailinfra_iac.facts import DEFAULT_ISP, Backoff, Limits
from mailinfra_iac.facts.plan import queue_schedule
from mailinfra_iac.model import IspLimits
from mailinfra_iac.model.bounce import BOUNCE_CATEGORIES

from ..conftest import AS_OF, BASE, ROOT, edit

EXAMPLES = sorted((ROOT / 'examples').glob('*.yml'))
GMAIL = builtin_isps()['gmail']
ANY = any_isp_rules().backoff_rules


def _spec(text: str = BASE) -> Spec:
    return parse_spec(text, 'spec.yml', as_of=AS_OF)


def _with_overrides() -> Spec:
    """Deployment-level gmail changes and a new provider, and marketing's own gmail changes."""
    text = edit(
        'monitoring:\n',
        'isp_profiles:\n'
        '  gmail:\n'
        '    limits: {max_connections: 7, messages_per_hour: 3000}\n'
        '    backoff_rules: [{pattern: "421 deployment", action: suspend, duration: 2h}]\n'
        '  seznam:\n'
        '    display_name: Seznam.cz\n'
        '    recipient_domains: [seznam.cz]\n'
        '    limits: {max_connections: 3}\n'
        'monitoring:\n',
    )
    return _spec(
        edit(
            'injection: {port: 2526, networks: [10.0.0.0/8]}\n',
            'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
            '    isp_overrides:\n'
            '      gmail:\n'
            '        limits: {messages_per_hour: 1234, require_tls: true}\n'
            '        backoff_rules: [{pattern: "421 stream", duration: 5m}]\n',
            text,
        )
    )


# --- resolved limits --------------------------------------------------------------------------------------------------


def test_limits_have_the_fields_of_isp_limits_none_optional() -> None:
    hints = typing.get_type_hints(Limits)
    assert list(hints) == list(IspLimits.model_fields)
    for name, hint in hints.items():
        assert hint in (int, bool), name
        assert not isinstance(hint, types.UnionType), name
    assert hints['require_tls'] is bool


@pytest.mark.parametrize('example', EXAMPLES, ids=lambda path: path.stem)
def test_every_entry_has_every_limit_resolved(example: object) -> None:
    spec = load_spec(example, as_of=AS_OF)  # type: ignore[arg-type]
    entries = spec.facts.plan.entries
    assert entries
    for entry in entries:
        for field in dataclasses.fields(Limits):
            value = getattr(entry.limits, field.name)
            assert type(value) is (bool if field.name == 'require_tls' else int), (entry, field.name)
        assert entry.retry_after and all(type(value) is int for value in entry.retry_after)


def test_a_gap_in_limits_is_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match='messages_per_hour, require_tls not set'):
        Limits.resolve(DEFAULT_LIMITS.model_copy(update={'messages_per_hour': None, 'require_tls': None}))


def test_recipients_of_no_profile_get_the_catalogue_default_limits() -> None:
    plan = _spec().facts.plan.for_stream('transactional')
    assert plan.default.isp == DEFAULT_ISP
    assert plan.default.limits == Limits.resolve(DEFAULT_LIMITS)
    assert plan.isp('no-such-isp') is plan.default


def test_precedence_catalogue_then_deployment_then_stream() -> None:
    plan = _with_overrides().facts.plan
    marketing, transactional = plan.limits('marketing', 'gmail'), plan.limits('transactional', 'gmail')
    # the stream's override wins over the deployment's
    assert marketing.messages_per_hour == 1234
    assert transactional.messages_per_hour == 3000
    # the deployment's wins over the catalogue, for every stream
    assert marketing.max_connections == transactional.max_connections == 7
    # the catalogue fills what neither sets; the catalogue defaults fill what the profile does not set
    assert marketing.messages_per_connection == GMAIL.limits.messages_per_connection == 50
    assert transactional.require_tls is False and marketing.require_tls is True
    # a provider only the deployment knows: its own values, the rest from the catalogue defaults
    seznam = plan.limits('transactional', 'seznam')
    assert seznam.max_connections == 3
    assert seznam.messages_per_hour == DEFAULT_LIMITS.messages_per_hour
    assert plan.for_stream('marketing').isps['seznam'].recipient_domains == ('seznam.cz',)


def test_limits_are_the_same_for_every_ip_of_a_stream() -> None:
    plan = _spec().facts.plan
    marketing = [entry for entry in plan.entries if entry.stream == 'marketing' and entry.isp == 'gmail']
    assert [entry.ip for entry in marketing] == sorted(plan.for_stream('marketing').ips)
    assert len(marketing) == 2
    assert {entry.limits for entry in marketing} == {plan.limits('marketing', 'gmail')}


# --- entries ----------------------------------------------------------------------------------------------------------


def test_entries_cover_stream_ip_isp_sorted() -> None:
    spec = _spec()
    plan = spec.facts.plan
    keys = [(entry.stream, entry.ip, entry.isp) for entry in plan.entries]
    assert keys == sorted(keys)
    expected = {
        (stream.name, ip, isp)
        for stream in plan.streams.values()
        for ip in stream.ips
        for isp in [DEFAULT_ISP, *stream.isps]
    }
    assert set(keys) == expected and len(keys) == len(expected)
    assert {isp for _, _, isp in keys} == {DEFAULT_ISP, *builtin_isps()}
    for ip in spec.facts.ips:
        assert plan.entries_of_ip(ip.id) == tuple(entry for entry in plan.entries if entry.ip == ip.id)
    assert plan.entries_of_ip('nowhere') == ()


def test_an_unknown_stream_is_named() -> None:
    with pytest.raises(KeyError, match='no stream "bulk" in the delivery plan'):
        _spec().facts.plan.for_stream('bulk')


# --- retries ----------------------------------------------------------------------------------------------------------


def test_retry_schedule_per_category_follows_the_kind_and_the_policies() -> None:
    text = edit(
        'monitoring:\n',
        'bounce_policy:\n  categories:\n    quota-issues: {retry_after: [30m, 2h]}\nmonitoring:\n',
    )
    text = edit(
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        '    bounce_policy:\n'
        '      categories:\n'
        '        quota-issues: {retry_after: [1h]}\n'
        '        other: {retry: false}\n',
        text,
    )
    plan = _spec(text).facts.plan
    transactional, marketing = plan.for_stream('transactional'), plan.for_stream('marketing')
    assert set(transactional.categories) == set(BOUNCE_CATEGORIES)
    # built-in: ordinary and reputation schedules by kind, nothing for permanent categories
    assert transactional.retry_schedule('routing-errors') == (60, 300, 600, 900)
    assert transactional.retry_schedule('policy-related') == (900, 1800, 3600)
    assert all(transactional.retry_schedule(name) == () for name in bounces.PERMANENT)
    # the deployment's policy, then the stream's
    assert plan.retry_schedule('transactional', 'quota-issues') == (1800, 7200)
    assert plan.retry_schedule('marketing', 'quota-issues') == (3600,)
    assert marketing.categories['other'].retry is False and marketing.retry_schedule('other') == ()
    assert transactional.retry == _spec().facts.streams['transactional'].retry


def test_ordinary_retries_towards_an_isp_start_with_its_retry_after() -> None:
    plan = _spec().facts.plan
    # transactional: schedule 1m, 5m, 10m, 15m, max_backoff 15m; Gmail retries after 10m at the earliest
    assert plan.retry_after('transactional', 'gmail') == (600, 900)
    assert plan.retry_after('transactional', DEFAULT_ISP) == (900,)  # default retry_after 15m
    assert plan.retry_after('marketing', 'gmail') == (600, 1800, 3600, 7200)


def test_ordinary_retries_fall_back_to_the_backoff_bounds_when_other_is_not_retried() -> None:
    text = edit(
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n    bounce_policy: {categories: {other: {retry: false}}}\n',
    )
    assert _spec(text).facts.plan.retry_after('marketing', 'gmail') == (600, 7200)


@pytest.mark.parametrize(
    ('kind', 'provider_first', 'expected'),
    [
        # transactional: schedule 60,300,600,900, max_backoff 900; the provider's first retry is a floor
        ('transactional', 600, (600, 900)),
        ('transactional', 1200, (1200,)),  # the provider waits longer than the stream's max_backoff: provider wins
        ('transactional', 60, (60, 300, 600, 900)),
        # marketing: schedule 600,1800,3600,7200, max_backoff 7200
        ('marketing', 600, (600, 1800, 3600, 7200)),
        ('marketing', 900, (900, 1800, 3600, 7200)),
        ('marketing', 5400, (5400, 7200)),
    ],
)
def test_queue_schedule(kind: str, provider_first: int, expected: tuple[int, ...]) -> None:
    stream = _spec().facts.streams[kind]
    assert queue_schedule(stream.categories['other'].retry_after, stream.retry, provider_first) == expected


def test_queue_schedule_keeps_later_retries_within_the_streams_backoff_bounds() -> None:
    text = edit(
        'injection: {port: 2525, networks: [10.0.0.0/8]}\n',
        'injection: {port: 2525, networks: [10.0.0.0/8]}\n    retry: {min_backoff: 2m, max_backoff: 5m}\n',
    )
    stream = _spec(text).facts.streams['transactional']
    assert stream.categories['other'].retry_after == (60, 300, 600, 900)
    # 1m is below min_backoff; 10m and 15m are above max_backoff
    assert queue_schedule(stream.categories['other'].retry_after, stream.retry, 60) == (120, 300)
    assert _spec(text).facts.plan.retry_after('transactional', 'gmail') == (600,)  # Gmail's 10m first retry wins


# --- back-off ---------------------------------------------------------------------------------------------------------


def _reputation_deferrals() -> list[str]:
    return [
        rule.pattern for rule in bounces.REPLY_RULES if rule.action == 'defer' and rule.category in bounces.REPUTATION
    ]


def test_backoff_rules_are_the_providers_then_the_streams_reputation_deferrals() -> None:
    plan = _spec().facts.plan
    rules = plan.backoff_rules('transactional', 'gmail')
    own = [rule for rule in rules if rule.origin == 'isp']
    assert [(rule.pattern, rule.action, rule.duration) for rule in own] == [
        (rule.pattern, rule.action, rule.duration) for rule in [*GMAIL.backoff_rules, *ANY]
    ]
    assert rules[: len(own)] == tuple(own)
    deferrals = rules[len(own) :]
    assert [rule.pattern for rule in deferrals] == _reputation_deferrals()
    assert len(deferrals) == 2  # quota-issues (not reputation) and the bounce rule are not back-off triggers
    limits = plan.limits('transactional', 'gmail')
    for rule in deferrals:
        assert (rule.origin, rule.action, rule.category) == ('reply-rule', 'backoff', 'policy-related')
        assert rule.duration == limits.backoff_to_normal_after
    # recipients of no profile: the rules for every provider, then the reputation deferrals
    assert [rule.pattern for rule in plan.backoff_rules('transactional', DEFAULT_ISP)] == [
        *(rule.pattern for rule in ANY),
        *_reputation_deferrals(),
    ]


def test_backoff_rules_of_stream_and_deployment_come_before_the_catalogues() -> None:
    rules = _with_overrides().facts.plan
    marketing = [rule.pattern for rule in rules.backoff_rules('marketing', 'gmail') if rule.origin == 'isp']
    transactional = [rule.pattern for rule in rules.backoff_rules('transactional', 'gmail') if rule.origin == 'isp']
    catalogue = [rule.pattern for rule in [*GMAIL.backoff_rules, *ANY]]
    assert marketing == ['421 stream', '421 deployment', *catalogue]
    assert transactional == ['421 deployment', *catalogue]
    suspend = rules.backoff_rules('transactional', 'gmail')[0]
    assert suspend == Backoff('421 deployment', 'suspend', 7200, '', 'isp')


def test_a_stream_reply_rule_with_a_providers_pattern_is_not_repeated() -> None:
    pattern = GMAIL.backoff_rules[0].pattern
    text = edit(
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        '    bounce_policy:\n'
        f"      reply_rules: [{{pattern: '{pattern}', category: spam-related, action: defer}}]\n",
    )
    plan = _spec(text).facts.plan
    gmail = [(rule.pattern, rule.origin) for rule in plan.backoff_rules('marketing', 'gmail')]
    assert gmail.count((pattern, 'isp')) == 1 and (pattern, 'reply-rule') not in gmail
    # where no provider rule has it, the stream's rule is a back-off trigger of its own
    default = [rule for rule in plan.backoff_rules('marketing', DEFAULT_ISP) if rule.origin == 'reply-rule']
    assert (default[0].pattern, default[0].category) == (pattern, 'spam-related')


def test_triggers_and_failover_reach_the_plan() -> None:
    text = edit(
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        '    isp_overrides:\n'
        '      gmail:\n'
        '        backoff_rules:\n'
        '          - {pattern: "421 busy", action: suspend, failover: true, duration: 20m,'
        ' trigger: {count: 5, window: 1h}}\n'
        '          - {pattern: "421 wait", action: suspend, duration: 20m}\n'
        '          - {pattern: "554 listed", action: suspend_ip, duration: 1d}\n',
    )
    rules = _spec(text).facts.plan.backoff_rules('marketing', 'gmail')
    assert rules[:3] == (
        Backoff('421 busy', 'suspend', 1200, '', 'isp', trigger_count=5, trigger_window=3600, failover=True),
        Backoff('421 wait', 'suspend', 1200, '', 'isp'),
        Backoff('554 listed', 'suspend_ip', 86400, '', 'isp'),
    )
    assert rules[0].first_match is False and rules[1].first_match is True
    # the catalogue's own rules carry theirs: Gmail 4.7.28 suspends at once and the mail waits
    gmail = {rule.pattern: rule for rule in rules}
    assert (gmail[r'4\.7\.28'].action, gmail[r'4\.7\.28'].trigger_count, gmail[r'4\.7\.28'].failover) == (
        'suspend',
        1,
        False,
    )
    assert (gmail[r'4\.7\.0 .*(rate|unusual)'].trigger_count, gmail[r'4\.7\.0 .*(rate|unusual)'].trigger_window) == (
        2,
        3600,
    )


def test_backoff_rules_are_made_once_per_plan_and_equal_to_their_rules() -> None:
    """A provider's rule recurs in every stream's plan for that provider: one frozen Backoff, shared."""
    spec = _with_overrides()
    streams = list(spec.facts.plan.streams.values())
    assert len(streams) > 1
    first, second = (stream.isps['gmail'] for stream in streams[:2])
    shared = [rule for rule in first.backoff if rule.origin == 'isp' and rule in second.backoff]
    assert shared and all(any(rule is other for other in second.backoff) for rule in shared)
    any_isp = {rule.pattern for rule in ANY}
    assert any_isp <= {rule.pattern for rule in shared}  # the rules for every provider, in both plans, one object each
    stream_own = [rule for rule in first.backoff if rule.pattern == '421 stream'] + [
        rule for rule in second.backoff if rule.pattern == '421 stream'
    ]
    assert len(stream_own) == 1  # marketing's own rule: not in another stream's plan
