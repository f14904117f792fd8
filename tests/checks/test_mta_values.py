"""Spec values that reach the MTAs as written: SASL users, MX patterns, bounce-category retry times, IPv6 injection
networks. Each is refused at validation with a located error, or rendered into something the real tool reads."""

from __future__ import annotations

import smtplib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.powermta import check_text, parse
from mailinfra_iac import parse_spec, render_files
from mailinfra_iac.checks import default_registry
from mailinfra_iac.checks.base import CheckRegistry
from mailinfra_iac.problems import Problem, format_path
from mailinfra_iac.render import RenderContext
from mailinfra_iac.render.mta_configs import GENERATED_MARK, template_environment
from mailinfra_iac.render.rolevars.powermta import PowerMtaVars

from ..agent import test_suppression_postfix as harness
from ..conftest import AS_OF, TEST_DKIM, edit, position, problems

MARKETING = 'injection: {port: 2526, networks: [10.0.0.0/8]}'


def errors(text: str) -> list[Problem]:
    return [p for p in problems(text) if p.severity == 'error']


def with_users(users: str) -> str:
    return edit(MARKETING, MARKETING.replace('}', f', sasl_users: {users}}}'))


# --- sasl_users: one name for saslpasswd2, the sasldb lookup, PowerMTA's <smtp-user> and the role's digest lines ---

BAD_USERS = [
    'a b',  # <smtp-user a b>; the digest line "a b <digest>"
    'a:b',  # the digest joins instance, host, user and password with ":"
    'a,b',
    'a#b',
    'a=b',  # PowerMTA's checker refuses it: the role would stop
    'bücher',  # AUTH PLAIN has no normalisation: the client's spelling decides
    '-u',  # saslpasswd2 reads it as an option
    'x@',  # Cyrus splits at the first "@": an empty realm
    '@example.com',  # an empty user
    'a@b@example.com',  # realm "b@example.com"
    'a@-x.example',
    'a' * 65,
]


@pytest.mark.parametrize('user', BAD_USERS)
def test_a_sasl_user_the_tools_read_otherwise_is_a_located_error(user: str) -> None:
    text = with_users(f'[app, {user!r}]')
    [problem] = errors(text)
    assert problem.check == 'schema-value-error'
    assert format_path(problem.path) == 'streams.marketing.injection.sasl_users[1]'
    assert problem.line == position(text, 'sasl_users')[0]
    assert 'ASCII letters' in problem.expected


def test_the_empty_sasl_user_is_a_located_error() -> None:
    [problem] = errors(with_users("['']"))
    assert format_path(problem.path) == 'streams.marketing.injection.sasl_users[0]'


def test_a_sasl_user_listed_twice_is_an_error() -> None:
    [problem] = errors(with_users('[app, bob, app]'))
    assert format_path(problem.path) == 'streams.marketing.injection.sasl_users'
    assert 'listed twice' in problem.message


@pytest.mark.parametrize(
    ('mta', 'users', 'flagged'),
    [
        # saslpasswd2 -u <instance name> stores "app" as app@bulk1.testco.example: one entry, the last password
        ('postfix', '[app, app@bulk1.testco.example]', True),
        ('postfix', '[app@bulk1.testco.example, app]', True),
        ('postfix', '[app, app@bulk2.testco.example]', False),  # the instance on mta1 answers as bulk1
        ('powermta', '[app, app@bulk1.testco.example]', False),  # two <smtp-user> blocks
    ],
)
def test_two_sasl_users_that_are_one_sasldb_login_are_an_error(mta: str, users: str, flagged: bool) -> None:
    found = [(p.check, format_path(p.path)) for p in errors(edit('mta: auto\n', f'mta: {mta}\n', with_users(users)))]
    assert found == ([('sasl-user-same-login', 'streams.marketing.injection.sasl_users[1]')] if flagged else [])


def test_every_sasl_user_that_shares_a_login_is_reported_at_once() -> None:
    users = '[app, app@bulk1.testco.example, bob, bob@bulk1.testco.example]'
    found = [(p.check, format_path(p.path)) for p in errors(edit('mta: auto\n', 'mta: postfix\n', with_users(users)))]
    assert found == [('sasl-user-same-login', f'streams.marketing.injection.sasl_users[{index}]') for index in (1, 3)]


GOOD_USERS = ['app', 'Mail_App.1+news-x', 'app@example.com', 'newsletter@Mail.Example.COM', 'a' * 64]


def _pmta_config(text: str, passwords: dict[str, str]) -> str:
    """The base spec on PowerMTA, its configuration as the role templates it with the passwords."""
    spec = parse_spec(edit('mta: auto', 'mta: powermta', text), 'spec.yml', as_of=AS_OF)
    context = RenderContext(spec.deployment, spec.facts)
    variables = {**PowerMtaVars().group_vars(context), **PowerMtaVars().host_vars(context, 'mta1')}
    variables['ansible_managed'] = GENERATED_MARK
    variables['powermta__smtp_passwords'] = passwords
    return template_environment().get_template('powermta/templates/etc/pmta/config.j2').render(variables)


def test_accepted_sasl_users_are_smtp_users_powermtas_checker_takes() -> None:
    text = with_users('[' + ', '.join(GOOD_USERS) + ']')
    assert errors(text) == []
    config = _pmta_config(text, {user: 'a-Passw0rd-1234' for user in GOOD_USERS})
    assert check_text(config) == []
    root, _ = parse(config)
    assert sorted(block.argument for block in root.blocks if block.name == 'smtp-user') == sorted(GOOD_USERS)


# --- mx_patterns: printed in PowerMTA's notes and docs, passed to the agent contract ---

BAD_PATTERNS = [
    '".z.example\\n    max-smtp-out 0"',  # the line break wrote a directive that stops delivery into pmta/config
    'google.com',  # no leading dot: also "notgoogle.com"
    '"ZZ Top"',
    '.a_b.example',
    '.',
    '..x.example',
    '.example',
]


@pytest.mark.parametrize('pattern', BAD_PATTERNS)
def test_an_mx_pattern_that_is_no_host_name_suffix_is_a_located_error(pattern: str) -> None:
    profile = f'isp_profiles:\n  zmail: {{display_name: Z, mx_patterns: [{pattern}]}}\n'
    text = edit('monitoring:\n', f'{profile}monitoring:\n')
    [problem] = errors(text)
    assert problem.check == 'schema-value-error'
    assert format_path(problem.path) == 'isp_profiles.zmail.mx_patterns[0]'
    assert problem.line == position(text, 'mx_patterns')[0]


def test_an_mx_pattern_is_written_lower_case_without_its_trailing_dot() -> None:
    text = edit(
        'monitoring:\n', 'isp_profiles:\n  zmail: {display_name: Z, mx_patterns: [.MX.Z.Example.]}\nmonitoring:\n'
    )
    spec = parse_spec(edit('mta: auto', 'mta: powermta', text), 'spec.yml', as_of=AS_OF)
    config = render_files(spec, dkim=TEST_DKIM)['mta/mta1/pmta/config'].content.decode()
    assert 'zmail: recognised only by MX (.mx.z.example);' in config


# --- a bounce category's retry_after and expire_after: the stream's retry range, 1s to 365d ---


@pytest.mark.parametrize(
    ('policy', 'path'),
    [
        ('retry_after: [5m, 366d]', 'retry_after[1]'),
        ('retry_after: [100000d]', 'retry_after[0]'),
        ('expire_after: 366d', 'expire_after'),
        ('expire_after: 100000d', 'expire_after'),
    ],
)
def test_a_category_time_beyond_the_retry_range_is_a_located_error(policy: str, path: str) -> None:
    text = edit(MARKETING, f'{MARKETING}\n    bounce_policy: {{categories: {{other: {{{policy}}}}}}}')
    [problem] = errors(text)
    assert problem.check == 'schema-value-error'
    assert format_path(problem.path) == f'streams.marketing.bounce_policy.categories.other.{path}'
    assert 'out of range: 1s to 365d' in problem.message
    assert problem.line == position(text, 'bounce_policy')[0]


def test_category_times_at_the_retry_range_bounds_render() -> None:
    policy = '{other: {retry_after: [1s, 365d], expire_after: 365d}, quota-issues: {expire_after: 1s}}'
    retry = 'retry: {queue_lifetime: 365d}'
    text = edit(MARKETING, f'{MARKETING}\n    {retry}\n    bounce_policy: {{categories: {policy}}}')
    spec = parse_spec(edit('mta: auto', 'mta: powermta', text), 'spec.yml', as_of=AS_OF)
    config = render_files(spec, dkim=TEST_DKIM)['mta/mta1/pmta/config'].content.decode()
    assert check_text(config) == []
    assert 'bounce-after 365d' in config


# --- IPv6 injection networks on Postfix: an error even beside IPv4 ones ---


@pytest.mark.parametrize('networks', ["[10.0.0.0/8, '2001:db8::/32']", "['2001:db8::/32', 10.0.0.0/8]", "['::1/128']"])
def test_an_ipv6_injection_network_on_postfix_is_an_error_beside_ipv4_ones_too(networks: str) -> None:
    text = edit('mta: auto\n', 'mta: postfix\n', edit(MARKETING, MARKETING.replace('[10.0.0.0/8]', networks)))
    assert [p.check for p in errors(text)] == ['injection-network-ipv6']


def _rendered_mynetworks(networks: str) -> str:
    """The marketing instance's mynetworks as rendered with the IPv6 check left out."""
    text = edit('mta: auto\n', 'mta: postfix\n', edit(MARKETING, MARKETING.replace('[10.0.0.0/8]', networks)))
    checks = CheckRegistry(check for check in default_registry() if check.id != 'injection-network-ipv6')
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF, checks=checks)
    main_cf = render_files(spec, dkim=TEST_DKIM)['mta/mta1/etc/postfix-marketing/main.cf'].content.decode()
    [line] = [line for line in main_cf.splitlines() if line.startswith('mynetworks = ')]
    return line.removeprefix('mynetworks = ')


@contextmanager
def _instance(mynetworks: str) -> Iterator[int]:
    """A throw-away Postfix instance relaying for ``mynetworks`` (the suppression tests' harness); its port."""
    harness.needs_postfix()
    port = free_port()
    original = harness.MAIN_CF
    harness.MAIN_CF = original.replace('mynetworks = 127.0.0.0/8', f'mynetworks = {mynetworks}')
    try:
        with tempfile.TemporaryDirectory(prefix='mailinfra-mynetworks-test-') as directory:
            Path(directory).chmod(0o755)
            with harness.running(Path(directory) / 'instance', f'127.0.0.1:{port} inet n - n - - smtpd\n'):
                yield port
    finally:
        harness.MAIN_CF = original


def _relay_reply(port: int) -> int:
    with smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20) as client:
        client.ehlo()
        client.mail('news@example.com')
        return client.rcpt('someone@elsewhere.example')[0]


def test_an_ipv6_injection_network_is_not_merely_unused_on_postfix() -> None:
    """Why injection-network-ipv6 stays an error beside IPv4 networks: the rendered IPv6 network (no brackets)
    is a lookup table "2001:db8::/32" of type "2001" to Postfix, so a client no earlier entry matches gets 451
    "Temporary lookup failure" instead of a refusal, and every client does when the IPv6 network comes first."""
    assert _rendered_mynetworks("[10.0.0.0/8, '2001:db8::/32']") == '10.0.0.0/8, 2001:db8::/32'
    with _instance('10.0.0.0/8') as port:
        assert _relay_reply(port) == 554  # 127.0.0.1 is not listed: refused
    with _instance('10.0.0.0/8, 2001:db8::/32') as port:
        assert _relay_reply(port) == 451
    with _instance('2001:db8::/32, 127.0.0.0/8') as port:
        assert _relay_reply(port) == 451  # although 127.0.0.1 is listed
