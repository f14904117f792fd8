"""Monitoring checks beyond the one-edit cases of test_checks.py: each rule with a passing and a failing spec."""

from __future__ import annotations

import json

import pytest

from mailinfra_iac.problems import Problem, format_path

from ..conftest import BASE, edit, problems

SMARTHOST = '  smarthost: {host: relay.example.net, sender: alerts@testco.example}\n'


def _monitoring(body: str) -> str:
    return edit('monitoring:\n', 'monitoring:\n' + body, BASE)


def _found(text: str, check: str) -> list[Problem]:
    return [problem for problem in problems(text) if problem.check == check]


def _custom(zone: str) -> str:
    return _monitoring(f'  dnsbl:\n    custom_zones:\n      - {zone}\n')


GOOD_IP_ZONE = (
    '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": spam, "127.0.0.3": proxy}, '
    'errors: {"127.0.0.254": refused}, test_point: 2.0.0.127, delisting_url: "https://bl.example.net/remove"}'
)
GOOD_BITMASK_ZONE = (
    '{zone: uri.example.net, kind: domain, operator: X, decoder: bitmask, listings: {"2": black, "4": grey}, '
    'errors: {"1": refused}, test_point: test.example}'
)
GOOD_IPV6_ZONE = '{zone: bl6.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, ipv6: true}'
GOOD_HOST_NAME_ZONE = (
    '{zone: hosts.example.net, kind: domain, operator: X, listings: {"127.0.0.2": x}, host_names: true}'
)


@pytest.mark.parametrize('zone', [GOOD_IP_ZONE, GOOD_BITMASK_ZONE, GOOD_IPV6_ZONE, GOOD_HOST_NAME_ZONE])
def test_well_formed_custom_zones_pass(zone: str) -> None:
    text = _custom(zone)
    assert _found(text, 'dnsbl-custom-zone') == []
    assert [p for p in problems(text) if p.severity == 'error'] == []


@pytest.mark.parametrize(
    ('zone', 'path', 'words'),
    [
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.1": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.127.0.0.1',
            'never a listing',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"128.0.0.2": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.128.0.0.2',
            'outside 127.0.0.0/8',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"spam": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.spam',
            'not an IPv4 address',
        ),
        (
            '{zone: u.example.net, kind: domain, operator: X, decoder: bitmask, listings: {"6": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.6',
            'not a bit value',
        ),
        (
            '{zone: u.example.net, kind: domain, operator: X, decoder: bitmask, listings: {"1": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.1',
            'never a listing',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, errors: {"127.0.0.2": y}}',
            'monitoring.dnsbl.custom_zones[0].listings.127.0.0.2',
            'both a listing and an error',
        ),
        (
            '{zone: zen.spamhaus.org, kind: ip, operator: X, listings: {"127.0.0.2": x}}',
            'monitoring.dnsbl.custom_zones[0].zone',
            'already in the catalogue',
        ),
        (
            '{zone: new.sorbs.net, kind: ip, operator: X, listings: {"127.0.0.2": x}}',
            'monitoring.dnsbl.custom_zones[0].zone',
            'decommissioned',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, test_point: 2.0.0.256}',
            'monitoring.dnsbl.custom_zones[0].test_point',
            'not a reversed IPv4',
        ),
        # digits to str.isdigit(), not to int(): a problem at the field, not a traceback
        (
            '{zone: u.example.net, kind: domain, operator: X, decoder: bitmask, listings: {"\u00b2": x}}',
            'monitoring.dnsbl.custom_zones[0].listings.\u00b2',
            'not a bit value',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, test_point: 2.0.0.1\u00b2}',
            'monitoring.dnsbl.custom_zones[0].test_point',
            'not a reversed IPv4',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, '
            'test_point: 2.0.0.127.bl.example.net}',
            'monitoring.dnsbl.custom_zones[0].test_point',
            'includes the zone name',
        ),
        (
            '{zone: u.example.net, kind: domain, operator: X, listings: {"127.0.0.2": x}, test_point: "bad name"}',
            'monitoring.dnsbl.custom_zones[0].test_point',
            'not a domain name',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, delisting_url: bl.example.net}',
            'monitoring.dnsbl.custom_zones[0].delisting_url',
            'not an http(s) URL',
        ),
        (
            '{zone: u.example.net, kind: domain, operator: X, listings: {"127.0.0.2": x}, ipv6: true}',
            'monitoring.dnsbl.custom_zones[0].ipv6',
            'ipv6 only applies to ip zones',
        ),
        (
            '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}, host_names: true}',
            'monitoring.dnsbl.custom_zones[0].host_names',
            'host_names only applies to domain zones',
        ),
    ],
)
def test_bad_custom_zones_fail_at_the_field(zone: str, path: str, words: str) -> None:
    [problem] = _found(_custom(zone), 'dnsbl-custom-zone')
    assert format_path(problem.path) == path
    assert words in problem.message
    assert problem.severity == 'error' and problem.line is not None and problem.expected


def test_custom_zone_given_twice() -> None:
    zone = '{zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}}'
    text = _monitoring(f'  dnsbl:\n    custom_zones:\n      - {zone}\n      - {zone}\n')
    [problem] = _found(text, 'dnsbl-custom-zone')
    assert format_path(problem.path) == 'monitoring.dnsbl.custom_zones[1].zone'


def test_selected_zones_catalogue_and_custom_pass() -> None:
    text = _monitoring(
        '  dnsbl:\n    zones: [zen.spamhaus.org, multi.uribl.com, bl.example.net]\n'
        '    custom_zones:\n      - {zone: bl.example.net, kind: ip, operator: X, listings: {"127.0.0.2": x}}\n'
    )
    assert _found(text, 'dnsbl-zone') == []


@pytest.mark.parametrize(
    ('zones', 'path', 'words'),
    [
        (
            '  dnsbl: {zones: [zen.spamhaus.org, rbl.example.net]}\n',
            'monitoring.dnsbl.zones[1]',
            'not in the catalogue',
        ),
        ('  dnsbl_zones: [rbl.example.net]\n', 'monitoring.dnsbl_zones[0]', 'not in the catalogue'),
        ('  dnsbl: {zones: [dnsbl.sorbs.net]}\n', 'monitoring.dnsbl.zones[0]', 'decommissioned'),
        ('  dnsbl: {zones: [rhsbl.sorbs.net]}\n', 'monitoring.dnsbl.zones[0]', 'decommissioned'),
        ('  dnsbl: {zones: [cbl.abuseat.org]}\n', 'monitoring.dnsbl.zones[0]', 'Spamhaus'),
    ],
)
def test_unknown_and_retired_zones_are_errors(zones: str, path: str, words: str) -> None:
    [problem] = _found(_monitoring(zones), 'dnsbl-zone')
    assert format_path(problem.path) == path
    assert words in problem.message
    assert problem.severity == 'error'


@pytest.mark.parametrize('server', ['127.0.0.1', '127.0.0.1:5353', '[::1]:53', '192.0.2.53'])
def test_own_resolvers_pass(server: str) -> None:
    assert _found(_monitoring(f'  dnsbl: {{nameservers: ["{server}"]}}\n'), 'dnsbl-nameserver') == []


@pytest.mark.parametrize(
    ('server', 'severity'),
    [('1.1.1.1', 'warning'), ('8.8.4.4:53', 'warning'), ('[2001:4860:4860::8888]:53', 'warning'), ('ns1', 'error')],
)
def test_public_or_malformed_resolvers(server: str, severity: str) -> None:
    [problem] = _found(_monitoring(f'  dnsbl: {{nameservers: ["{server}"]}}\n'), 'dnsbl-nameserver')
    assert problem.severity == severity
    assert format_path(problem.path) == 'monitoring.dnsbl.nameservers[0]'


def test_absolute_secret_files_pass() -> None:
    text = _monitoring(
        '  dnsbl: {dqs_key_file: /etc/mailinfra/secrets/dqs.key}\n'
        '  alerts: [{kind: webhook, target: "https://hooks.example.net/a", token_file: /etc/mailinfra/secrets/t}]\n'
        '  smarthost: {host: relay.example.net, sender: a@testco.example, username: u, '
        'password_file: /etc/mailinfra/secrets/p}\n'
    )
    assert _found(text, 'monitoring-secret-file') == []


def test_relative_secret_files_fail_each() -> None:
    text = _monitoring(
        '  alerts: [{kind: webhook, target: "https://hooks.example.net/a", token_file: token}]\n'
        '  smarthost: {host: relay.example.net, sender: a@testco.example, username: u, password_file: ./pw}\n'
    )
    found = _found(text, 'monitoring-secret-file')
    assert sorted(format_path(p.path) for p in found) == [
        'monitoring.alerts[0].token_file',
        'monitoring.smarthost.password_file',
    ]


def test_token_file_on_email_alert() -> None:
    text = _monitoring('  alerts: [{kind: email, target: ops@testco.example, token_file: /etc/t}]\n' + SMARTHOST)
    [problem] = _found(text, 'monitoring-secret-file')
    assert 'webhook alerts only' in problem.message


def test_email_alert_with_smarthost_and_webhook_alone_pass() -> None:
    assert (
        _found(_monitoring('  alerts: [{kind: email, target: ops@testco.example}]\n' + SMARTHOST), 'alert-smarthost')
        == []
    )
    assert (
        _found(_monitoring('  alerts: [{kind: webhook, target: "https://h.example.net/"}]\n'), 'alert-smarthost') == []
    )


def test_stream_overrides_of_known_streams_pass() -> None:
    text = _monitoring(
        '  queue: {streams: {marketing: {depth_warning: 50}}}\n'
        '  rates: {streams: {transactional: {bounce_warning: 0.01}}}\n'
    )
    text = text.replace('  queue: {depth_warning: 100, depth_critical: 1000}\n', '')
    assert _found(text, 'monitoring-streams') == []
    assert _found(text, 'queue-thresholds') == []


def test_rates_stream_unknown() -> None:
    text = _monitoring('  rates: {streams: {newsletter: {bounce_warning: 0.01}}}\n')
    [problem] = _found(text, 'monitoring-streams')
    assert format_path(problem.path) == 'monitoring.rates.streams.newsletter'
    assert 'marketing, transactional' in problem.expected


@pytest.mark.parametrize(
    ('override', 'path', 'value'),
    [
        ('{depth_warning: 2000}', 'monitoring.queue.streams.marketing.depth_warning', 2000),  # above the inherited 1000
        ('{depth_critical: 50}', 'monitoring.queue.streams.marketing.depth_critical', 50),  # below the inherited 100
        ('{depth_warning: 20, depth_critical: 10}', 'monitoring.queue.streams.marketing.depth_warning', 20),
        ('{age_critical: 10m}', 'monitoring.queue.streams.marketing.age_critical', None),  # below the inherited 1h
    ],
)
def test_queue_override_warning_above_critical(override: str, path: str, value: int | None) -> None:
    text = edit(
        'queue: {depth_warning: 100, depth_critical: 1000}',
        f'queue: {{depth_warning: 100, depth_critical: 1000, streams: {{marketing: {override}}}}}',
    )
    [problem] = _found(text, 'queue-thresholds')
    assert format_path(problem.path) == path
    assert 'stream marketing' in problem.message
    assert problem.value == value  # the value at the path (durations carry none, as at monitoring.queue.age_*)


def test_rates_per_stream_warning_above_critical() -> None:
    text = _monitoring('  rates: {streams: {marketing: {complaint_warning: 0.004}}}\n')
    [problem] = _found(text, 'rate-thresholds')
    assert format_path(problem.path) == 'monitoring.rates.streams.marketing.complaint_warning'
    assert _found(_monitoring('  rates: {streams: {marketing: {complaint_warning: 0.002}}}\n'), 'rate-thresholds') == []


def test_key_only_zone_needs_the_dqs_key_file() -> None:
    [problem] = _found(_monitoring('  dnsbl: {zones: [zen.spamhaus.org, authbl.spamhaus.org]}\n'), 'dnsbl-zone')
    assert format_path(problem.path) == 'monitoring.dnsbl.zones[1]'
    assert 'key' in problem.message
    with_key = _monitoring('  dnsbl: {zones: [authbl.spamhaus.org], dqs_key_file: /etc/mailinfra/secrets/dqs}\n')
    assert _found(with_key, 'dnsbl-zone') == []


def test_queue_age_thresholds_on_powermta_are_a_warning() -> None:
    """PowerMTA's API has no message age: MailinfraQueueAge is not rendered there, so set thresholds do nothing."""
    ages = (
        'queue: {depth_warning: 100, depth_critical: 1000, age_warning: 2h, streams: {marketing: {age_critical: 8h}}}'
    )
    postfix = edit('queue: {depth_warning: 100, depth_critical: 1000}', ages, edit('mta: auto', 'mta: postfix', BASE))
    assert _found(postfix, 'queue-age-powermta') == []
    powermta = postfix.replace('mta: postfix', 'mta: powermta', 1)
    found = _found(powermta, 'queue-age-powermta')
    assert [(format_path(p.path), p.severity) for p in found] == [
        ('monitoring.queue.age_warning', 'warning'),
        ('monitoring.queue.streams.marketing.age_critical', 'warning'),
    ]
    assert 'streams marketing, transactional' in found[0].message
    assert _found(edit('mta: auto', 'mta: powermta', BASE), 'queue-age-powermta') == []


def test_a_secret_given_for_its_file_is_not_shown() -> None:
    # a DQS key, token or password pasted where its file's path belongs must not reach validate's output (CI logs)
    text = _monitoring(
        '  dnsbl: {dqs_key_file: Dqs-S3cret-0123456789abcdef}\n'
        '  alerts: [{kind: webhook, target: "https://hooks.example.net/a", token_file: eyJh.Tok3n-S3cret.sig}]\n'
        '  smarthost: {host: relay.example.net, sender: a@testco.example, username: u, password_file: "P/w-S3cret"}\n'
    )
    found = _found(text, 'monitoring-secret-file')
    assert len(found) == 3
    assert not [problem for problem in found if 'S3cret' in f'{problem} {problem.value}']
    assert all('the value is not shown' in problem.message for problem in found)
    # on an e-mail alert too: a token given as its token_file, and a target URL with a password
    email = _monitoring(
        '  alerts:\n'
        '    - {kind: email, target: ops@testco.example, token_file: eyJh.Tok3n-S3cret.sig}\n'
        '    - {kind: email, target: "https://u:Pw-S3cret@hooks.example.net/a"}\n' + SMARTHOST
    )
    found = problems(email)
    assert {'monitoring-secret-file', 'alert-target'} <= {problem.check for problem in found}
    assert 'S3cret' not in json.dumps([problem.as_dict() for problem in found])  # what validate --format json prints
    assert 'S3cret' not in ' '.join(map(str, found))
