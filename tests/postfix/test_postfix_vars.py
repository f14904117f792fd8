"""Targeted assertions on the generated Postfix and OpenDKIM configuration (what the roles deploy)."""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_iac import SpecInvalid, load_spec, parse_spec, render_files
from mailinfra_iac.facts.isps import DEFAULTS
from mailinfra_iac.model import ReplyRule
from mailinfra_iac.render import RendererRegistry
from mailinfra_iac.render.rolevars.postfix import HOURLY_DELAY_THRESHOLD, rate_delay, status_filter_entry

from ..conftest import AS_OF, BASE, ROOT, TEST_DKIM, edit
from .role_files import context_of, host_variables, inventory_renderer, render_role_files

NEWSLETTER = ROOT / 'examples' / 'newsletter-publisher.yml'
SAAS = ROOT / 'examples' / 'saas-transactional.yml'


@pytest.fixture(scope='module')
def newsletter() -> dict[str, Any]:
    spec = load_spec(NEWSLETTER.relative_to(ROOT), as_of=AS_OF)
    context = context_of(spec)
    return {
        'spec': spec,
        'files': render_role_files(context),
        'vars': {host: host_variables(context, host) for host in spec.deployment.hosts},
    }


def master_services(master_cf: str) -> dict[str, dict[str, Any]]:
    """Services of a master.cf: name (``name/inet`` for listeners) -> fields and -o options."""
    services: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in master_cf.splitlines():
        if not line.strip() or line.startswith('#'):
            continue
        if line[0].isspace():
            assert current is not None
            option = line.split()
            if option[0] == '-o':
                name, _, value = option[1].partition('=')
                current['options'][name] = value
            continue
        fields = line.split()
        current = {'type': fields[1], 'chroot': fields[4], 'maxproc': fields[6], 'command': fields[7], 'options': {}}
        services[fields[0] + ('/inet' if fields[1] == 'inet' else '')] = current
    return services


def main_cf(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#') and ' = ' in line:
            name, _, value = line.partition(' = ')
            values[name] = value
    return values


# --- Stream isolation ----------------------------------------------------------------------------------


def test_each_stream_has_its_own_instance_queue_listener_and_networks(newsletter: dict[str, Any]) -> None:
    spec, files = newsletter['spec'], newsletter['files']
    seen_queues = set()
    for stream in spec.facts.streams.values():
        for host in stream.hosts:
            config = main_cf(files[f'{host}/etc/postfix-{stream.name}/main.cf'])
            services = master_services(files[f'{host}/etc/postfix-{stream.name}/master.cf'])
            assert config['queue_directory'] == f'/var/spool/postfix-{stream.name}'
            assert config['queue_directory'] not in seen_queues
            seen_queues.add(config['queue_directory'])
            assert config['mynetworks'] == ', '.join(stream.injection.networks)
            assert config['smtpd_relay_restrictions'] == (
                'permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination'
            )
            assert (config['smtpd_sasl_auth_enable'] == 'yes') == bool(stream.injection.sasl_users)
            listeners = [name for name, service in services.items() if service['type'] == 'inet']
            assert listeners == [f'{stream.injection.port}/inet']
            assert 'smtp' not in services, 'no plain smtp transport: nothing may leave from another address'
            assert all(service['chroot'] == 'n' for service in services.values())
            primary = main_cf(files[f'{host}/etc/postfix/main.cf'])
            assert f'/etc/postfix-{stream.name}' in primary['multi_instance_directories'].split()


def test_each_streams_transports_bind_to_exactly_its_ips(newsletter: dict[str, Any]) -> None:
    spec, files = newsletter['spec'], newsletter['files']
    for stream in spec.facts.streams.values():
        for host in stream.hosts:
            own = {ip.address: ip.ptr for ip in stream.ips if ip.host == host}
            services = master_services(files[f'{host}/etc/postfix-{stream.name}/master.cf'])
            transports = {name: s for name, s in services.items() if s['command'] == 'smtp'}
            bound = {s['options']['smtp_bind_address'] for s in transports.values()}
            assert bound == set(own), f'{stream.name} on {host} binds to {bound}, expected {set(own)}'
            for transport in transports.values():
                assert transport['options']['smtp_helo_name'] == own[transport['options']['smtp_bind_address']]
            config = main_cf(files[f'{host}/etc/postfix-{stream.name}/main.cf'])
            assert config['smtp_bind_address_enforce'] == 'yes'
            assert config['inet_protocols'] == 'ipv4'


def test_ordinary_mail_is_spread_over_the_streams_ips(newsletter: dict[str, Any]) -> None:
    config = main_cf(newsletter['files']['mx2/etc/postfix-marketing/main.cf'])
    assert config['sender_dependent_default_transport_maps'] == (
        'randmap:{out_198_51_100_20:, out_198_51_100_21:, out_198_51_100_22:}'
    )
    assert config['transport_maps'] == (
        'pipemap:{unionmap:{randmap:{198_51_100_20, 198_51_100_21, 198_51_100_22}, '
        'pcre:$config_directory/transport_isp}, texthash:$config_directory/transport_ip_isp}'
    )
    single = main_cf(newsletter['files']['mx1/etc/postfix-transactional/main.cf'])
    assert single['default_transport'] == 'out_198_51_100_10:'
    assert 'sender_dependent_default_transport_maps' not in single


# --- Per-ISP transports and limits ----------------------------------------------------------------------


def test_gmail_transport_concurrency_equals_the_streams_effective_max_connections(
    newsletter: dict[str, Any],
) -> None:
    spec, files = newsletter['spec'], newsletter['files']
    for stream in spec.facts.streams.values():
        gmail = stream.isps['gmail'].limits
        for host in stream.hosts:
            config = main_cf(files[f'{host}/etc/postfix-{stream.name}/main.cf'])
            services = master_services(files[f'{host}/etc/postfix-{stream.name}/master.cf'])
            for ip in (ip for ip in stream.ips if ip.host == host):
                name = f'out_{ip.address.replace(".", "_")}__gmail'  # type: ignore[union-attr]
                assert config[f'{name}_destination_concurrency_limit'] == str(gmail.max_connections)
                assert services[name]['maxproc'] == str(gmail.max_connections)
                assert config[f'{name}_destination_recipient_limit'] == str(gmail.recipients_per_message)
                assert services[name]['options']['smtp_connection_reuse_count_limit'] == str(
                    gmail.messages_per_connection
                )
                assert f'{name}_transport_rate_delay' not in config  # 3600/h: no delay, see rate_delay()
    marketing = main_cf(files['mx2/etc/postfix-marketing/main.cf'])
    assert marketing['out_198_51_100_20__gmail_destination_concurrency_limit'] == '4'  # the stream's override
    transactional = main_cf(files['mx1/etc/postfix-transactional/main.cf'])
    assert transactional['out_198_51_100_10__gmail_destination_concurrency_limit'] == '5'  # the catalogue


def test_every_ip_and_isp_pair_has_a_transport_and_a_route(newsletter: dict[str, Any]) -> None:
    spec, files = newsletter['spec'], newsletter['files']
    stream = spec.facts.streams['marketing']
    services = master_services(files['mx2/etc/postfix-marketing/master.cf'])
    table = [
        line.split() for line in files['mx2/etc/postfix-marketing/transport_ip_isp'].splitlines() if line[:1].isdigit()
    ]
    routed = {key: value.rstrip(':') for key, value in table}
    routable = [name for name, isp in stream.isps.items() if isp.recipient_domains]
    assert 'office365' not in routable  # known by MX names only, which Postfix cannot route on
    for ip in stream.ips:
        key = ip.address.replace('.', '_')  # type: ignore[union-attr]
        for isp in routable:
            assert routed[f'{key},{isp}'] == f'out_{key}__{isp}'
            assert f'out_{key}__{isp}' in services
    assert len(routed) == len(stream.ips) * len(routable)
    patterns = files['mx2/etc/postfix-marketing/transport_isp']
    assert r'/@(gmail\.com|googlemail\.com)$/ gmail' in patterns


@pytest.mark.parametrize(
    ('hourly', 'delay'),
    [(100_000, 0), (3600, 0), (3599, 2), (2000, 2), (1500, 3), (1000, 4), (60, 60), (1, 3600)],
)
def test_rate_delay_is_used_below_one_message_a_second_and_never_exceeds_the_limit(hourly: int, delay: int) -> None:
    # the plan's limits are always resolved (tests/facts/test_plan.py): there is no "no hourly limit" case any more
    assert rate_delay(dataclasses.replace(DEFAULTS, messages_per_hour=hourly)) == delay
    if delay:
        assert 3600 / delay <= hourly < HOURLY_DELAY_THRESHOLD
        assert delay == math.ceil(3600 / hourly)


def test_a_rate_delay_means_one_connection_and_a_cached_connection(newsletter: dict[str, Any]) -> None:
    files = newsletter['files']
    config = main_cf(files['mx2/etc/postfix-marketing/main.cf'])
    services = master_services(files['mx2/etc/postfix-marketing/master.cf'])
    # T-Online: 1000/h per IP -> one delivery every 4 s through the transport, one at a time
    assert config['out_198_51_100_20__t_online_transport_rate_delay'] == '4s'
    assert config['out_198_51_100_20__t_online_destination_concurrency_limit'] == '1'
    assert services['out_198_51_100_20__t_online']['maxproc'] == '1'
    assert services['out_198_51_100_20__t_online']['options']['smtp_connection_cache_time_limit'] == '5s'
    assert config['connection_cache_ttl_limit'] == '5s'
    # GMX requires TLS
    assert services['out_198_51_100_20__gmx_webde']['options']['smtp_tls_security_level'] == 'encrypt'


def test_retries_are_the_streams(newsletter: dict[str, Any]) -> None:
    spec, files = newsletter['spec'], newsletter['files']
    for stream in spec.facts.streams.values():
        for host in stream.hosts:
            config = main_cf(files[f'{host}/etc/postfix-{stream.name}/main.cf'])
            assert config['minimal_backoff_time'] == f'{stream.retry.min_backoff}s'
            assert config['maximal_backoff_time'] == f'{stream.retry.max_backoff}s'
            assert config['maximal_queue_lifetime'] == f'{stream.retry.queue_lifetime}s'
            assert int(config['queue_run_delay'].rstrip('s')) <= stream.retry.min_backoff


# --- Reply rules -----------------------------------------------------------------------------------------


def pcre_table(text: str) -> list[tuple[re.Pattern[str], str]]:
    """The entries of a generated pcre table (pattern line, indented result line), compiled like Postfix."""
    lines = [line for line in text.splitlines() if line and not line.startswith('#')]
    entries = []
    for pattern, result in zip(lines[::2], lines[1::2], strict=True):
        assert pattern[0] == pattern[-1] and result.startswith('  ')
        entries.append((re.compile(pattern[1:-1], re.IGNORECASE), result.strip()))
    return entries


def substitute(result: str, match: re.Match[str]) -> str:
    """Postfix's ``${n}`` substitution in a pcre table result."""
    return re.sub(r'\$\{(\d+)\}', lambda group: match.group(int(group.group(1))) or '', result)


def apply_filter(entries: list[tuple[re.Pattern[str], str]], status: str) -> str:
    for pattern, result in entries:
        match = pattern.search(status)
        if match:
            return substitute(result, match)
    return status


@pytest.mark.parametrize(
    ('status', 'expected'),
    [
        (
            '4.1.1 host mx.example[192.0.2.1] said: 450 4.1.1 <a@example.net>: Recipient address rejected: '
            'User unknown in virtual mailbox table (in reply to RCPT TO command)',
            '5.1.1 ',
        ),
        (
            '4.2.2 host mx.example[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)',
            '4.2.2 ',
        ),
        (
            '5.7.1 host mx.example[192.0.2.1] said: 550 5.7.1 Service temporarily unavailable, try again later '
            '(in reply to end of DATA command)',
            '4.7.1 ',
        ),
        (
            '4.7.0 host mx.example[192.0.2.1] said: 421 4.7.0 [TS04] Messages from 192.0.2.10 temporarily '
            'deferred (in reply to MAIL FROM command)',
            '4.7.0 ',
        ),
        ('4.4.1 connect to mx.example[192.0.2.1]:25: Connection timed out', None),
        ('5.1.1 host mx.example[192.0.2.1] said: 550 5.1.1 No such user (in reply to RCPT TO command)', None),
        (
            '4.0.0 host mx.example[192.0.2.1] said: 451 mailbox disabled for now (in reply to RCPT TO command)',
            '5.0.0 ',
        ),
    ],
)
def test_delivery_status_filter_applies_the_reply_rules(
    newsletter: dict[str, Any], status: str, expected: str | None
) -> None:
    entries = pcre_table(newsletter['files']['mx1/etc/postfix-transactional/delivery_status_filter'])
    result = apply_filter(entries, status)
    if expected is None:
        assert result == status
    else:
        assert result.startswith(expected)
        assert result[len(expected) :] == status.split(' ', 1)[1], 'the text must be kept'


def test_status_filter_keeps_the_rules_own_groups_and_anchors() -> None:
    rule = ReplyRule(pattern=r'^(4\d\d) (?:4\.\d\.\d )?over (quota|limit)$', category='quota-issues', action='bounce')
    entry = status_filter_entry(rule)
    pattern = re.compile(entry['pattern'][1:-1])
    status = '4.2.2 host mx[192.0.2.1] said: 452 4.2.2 over quota (in reply to RCPT TO command)'
    match = pattern.search(status)
    assert match is not None
    assert entry['result'] == '5.${3} ${4}'
    assert match.group(3) == '2.2'
    assert (
        pattern.search('4.2.2 host mx[192.0.2.1] said: 452 4.2.2 over quota today (in reply to RCPT TO command)')
        is None
    )
    slashed = status_filter_entry(ReplyRule(pattern='a/b', category='other', action='defer'))
    assert slashed['pattern'].startswith('/^') and slashed['pattern'].endswith('$/') and 'a\\/b' in slashed['pattern']


def postmap_filter(tmp_path: Path, rules: list[ReplyRule], status: str) -> tuple[str, str]:
    """Debian's postmap looks ``status`` up in a pcre table of ``rules``: (result or "", warnings)."""
    (tmp_path / 'main.cf').write_text('compatibility_level = 3.6\n')
    lines = []
    for rule in rules:
        entry = status_filter_entry(rule)
        lines += [f'# {entry["description"]}', entry['pattern'], f'  {entry["result"]}']
    (tmp_path / 'filter').write_text('\n'.join(lines) + '\n')
    found = subprocess.run(
        ['postmap', '-c', str(tmp_path), '-q', status, f'pcre:{tmp_path}/filter'],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return found.stdout.strip(), found.stderr.strip()


def test_a_pattern_with_every_delimiter_renders_and_postfix_matches_it(tmp_path: Path) -> None:
    rule = ReplyRule(pattern='a/b#c%d!e@f~g [/]', category='other', action='defer')
    result, warnings = postmap_filter(
        tmp_path, [rule], '5.7.1 host mx[192.0.2.1] said: 550 a/b#c%d!e@f~g / (in reply to RCPT TO command)'
    )
    assert warnings == ''
    assert result == '4.7.1 host mx[192.0.2.1] said: 550 a/b#c%d!e@f~g / (in reply to RCPT TO command)'


@pytest.mark.parametrize('pattern', [r'spamhaus\.org/query', 'a/b#c', 'a/b#c%d', '[/#!]x'])
def test_a_pattern_with_a_slash_is_a_rule_postfix_reads(tmp_path: Path, pattern: str) -> None:
    """A "/" made the delimiter "#" (a comment line to Postfix: the rule was skipped) or "!" (a negation)."""
    rule = ReplyRule(pattern=pattern, category='other', action='defer')
    text = {'spamhaus\\.org/query': 'see https://www.spamhaus.org/query/ip/192.0.2.10'}.get(pattern, pattern)
    text = text.replace('[/#!]', '#')
    status = f'5.7.1 host mx[192.0.2.1] said: 554 5.7.1 {text} (in reply to RCPT TO command)'
    assert postmap_filter(tmp_path, [rule], status) == (status.replace('5.7.1 host', '4.7.1 host', 1), '')


def test_a_multi_line_description_stays_one_comment(tmp_path: Path) -> None:
    rule = ReplyRule(pattern='over quota', category='other', action='defer', description='why\n/./ 5.0.0 bounced\r\n')
    assert rule.description == 'why /./ 5.0.0 bounced'
    status = '4.2.2 host mx[192.0.2.1] said: 452 4.2.2 Mailbox full (in reply to RCPT TO command)'
    assert postmap_filter(tmp_path, [rule], status) == ('', '')


# Python re accepts all of these; Postfix's PCRE2 refuses the rule, or the line break splits it.
PCRE_REFUSES = [
    *(r'caf\u00e9', r'[\u00e9]', r'\U0001F4E7', r'\N{EM DASH} blocked', '(?u)full', '(?a:full)', 'a\nb'),
    *('(?x)full # comment', 'a{1,70000}', 'a{70000}', f'(?P<{"g" * 33}>a)', 'a\0b'),
]
PCRE_TAKES = [
    *(r'(?i)full', r'(?x) full ', r'\\u00e9', '[(?u)]', r'(?P<x>a)(?P=x)', 'café', r'full\Z'),
    *(r'(?x)full \# [#]', 'a#b', 'a{1,65535}', f'(?P<{"g" * 32}>a)', r'a\{,3}', '[{,3}]', 'a{2,}'),
]


@pytest.mark.parametrize('pattern', PCRE_REFUSES)
def test_a_pattern_postfixs_pcre_refuses_is_refused_by_the_spec(tmp_path: Path, pattern: str) -> None:
    re.compile(pattern)
    unchecked = ReplyRule.model_construct(pattern=pattern, category='other', action='defer', description='')
    assert 'warning' in postmap_filter(tmp_path, [unchecked], 'x')[1]  # on the host: the rule is ignored
    with pytest.raises(ValueError, match=r"Postfix's PCRE|line break"):
        ReplyRule(pattern=pattern, category='other', action='defer')


@pytest.mark.parametrize('pattern', PCRE_TAKES)
def test_a_pattern_postfixs_pcre_takes_is_accepted(tmp_path: Path, pattern: str) -> None:
    rule = ReplyRule(pattern=pattern, category='other', action='defer')
    assert postmap_filter(tmp_path, [rule], 'x')[1] == ''


@pytest.mark.parametrize('pattern', ['550 x{,3}y', '550 x{,}y'])
def test_a_pattern_postfixs_pcre_reads_as_text_is_refused(tmp_path: Path, pattern: str) -> None:
    status = '5.1.1 host mx[192.0.2.1] said: 550 xxy (in reply to RCPT TO command)'
    assert re.search(pattern, status)  # Python: a repeat; PCRE2 10.42: the text "{,3}"
    unchecked = ReplyRule.model_construct(pattern=pattern, category='other', action='defer', description='')
    assert postmap_filter(tmp_path, [unchecked], status) == ('', '')
    with pytest.raises(ValueError, match=r"Postfix's PCRE reads"):
        ReplyRule(pattern=pattern, category='other', action='defer')


def test_a_pcre_refused_reply_rule_is_a_located_spec_error() -> None:
    text = edit(
        'monitoring:\n',
        'bounce_policy:\n  reply_rules:\n'
        '    - {pattern: "caf\\\\u00e9", category: other, action: defer}\nmonitoring:\n',
        BASE,
    )
    with pytest.raises(SpecInvalid) as raised:
        parse_spec(text, 'spec.yml', as_of=AS_OF)
    problem = raised.value.problems[0]
    assert problem.path == ('bounce_policy', 'reply_rules', 0, 'pattern') and problem.line is not None
    assert '\\u escape' in problem.message


# --- MX, TLS, logging ------------------------------------------------------------------------------------


def test_the_primary_instance_is_the_mx_on_inbound_hosts_only(newsletter: dict[str, Any]) -> None:
    files = newsletter['files']
    mx1 = master_services(files['mx1/etc/postfix/master.cf'])
    mx2 = master_services(files['mx2/etc/postfix/master.cf'])
    assert 'smtp/inet' in mx1 and 'smtp/inet' not in mx2
    aliases = files['mx1/etc/postfix/inbound_aliases']
    for domain in ('rp.dailybrief.example', 'rp.news.dailybrief.example', 'rp.partners.dailybrief.example'):
        assert f'@{domain} mailinfra-inbound' in aliases
    assert 'mx2/etc/postfix/inbound_aliases' not in files
    mx1_config = main_cf(files['mx1/etc/postfix/main.cf'])
    assert mx1_config['smtpd_tls_security_level'] == 'may'
    assert mx1_config['myhostname'] == 'mx1.mail.dailybrief.example'


def test_banners_tls_and_logging(newsletter: dict[str, Any]) -> None:
    for path, text in newsletter['files'].items():
        if path.endswith('/main.cf'):
            config = main_cf(text)
            assert config['smtpd_banner'] == '$myhostname ESMTP', 'no software name or version in the banner'
            assert config['smtp_tls_security_level'] == 'may'
            assert config['smtp_tls_protocols'] == '>=TLSv1.2'
            assert config['smtpd_tls_protocols'] == '>=TLSv1.2'
            assert config['maillog_file'].startswith('/var/log/postfix/')
    for host in newsletter['spec'].deployment.hosts:
        names = [
            main_cf(text)['maillog_file']
            for path, text in newsletter['files'].items()
            if path.startswith(f'{host}/') and path.endswith('/main.cf')
        ]
        assert len(names) == len(set(names)), 'one log file per instance'


def test_stream_instances_do_not_answer_as_the_mx(newsletter: dict[str, Any]) -> None:
    """A server greeting with our own myhostname is a loop to Postfix: bounces to our own MX would fail."""
    files = newsletter['files']
    primary = main_cf(files['mx1/etc/postfix/main.cf'])['myhostname']
    for stream in ('transactional', 'cold_outreach'):
        assert main_cf(files[f'mx1/etc/postfix-{stream}/main.cf'])['myhostname'] != primary
    assert main_cf(files['mx1/etc/postfix-transactional/main.cf'])['myhostname'] == 't1.mail.dailybrief.example'


# --- OpenDKIM --------------------------------------------------------------------------------------------


def test_opendkim_tables_sign_with_the_signing_selector_only(newsletter: dict[str, Any]) -> None:
    files, variables = newsletter['files'], newsletter['vars']
    assert files['mx2/etc/opendkim/SigningTable'].splitlines()[-1] == (
        '*@news.dailybrief.example s2026q4._domainkey.news.dailybrief.example'
    )
    assert files['mx2/etc/opendkim/SigningTable.ed25519'].splitlines()[-1] == (
        '*@news.dailybrief.example s2026q4e._domainkey.news.dailybrief.example'
    )
    assert 'SignatureAlgorithm      ed25519-sha256' in files['mx2/etc/opendkim/opendkim-ed25519.conf']
    assert 'mx1/etc/opendkim/opendkim-ed25519.conf' not in files  # no dual-signing domain on mx1
    assert variables['mx2']['postfix__milters'] == [
        'unix:/run/opendkim/opendkim.sock',
        'unix:/run/opendkim/opendkim-ed25519.sock',
    ]
    assert variables['mx1']['postfix__milters'] == ['unix:/run/opendkim/opendkim.sock']
    # a host holds the keys of its streams' domains only
    assert {key['domain'] for key in variables['mx1']['opendkim__keys']} == {
        'dailybrief.example',
        'partners.dailybrief.example',
    }
    trusted = files['mx1/etc/opendkim/TrustedHosts'].splitlines()
    assert trusted[-3:] == ['127.0.0.1', '::1', '10.1.0.0/24']


def test_every_selector_is_in_the_key_table_and_only_the_first_signs() -> None:
    text = edit('dkim: {selectors: [s2026q4]}\n', 'dkim: {selectors: [s2026q4, s2027q1]}\n')
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    files = render_role_files(context_of(spec))
    key_table = files['mta1/etc/opendkim/KeyTable']
    assert 's2026q4._domainkey.testco.example testco.example:s2026q4:' in key_table
    assert 's2027q1._domainkey.testco.example testco.example:s2027q1:' in key_table
    signing = [line for line in files['mta1/etc/opendkim/SigningTable'].splitlines() if line.startswith('*@testco')]
    assert signing == ['*@testco.example s2026q4._domainkey.testco.example']


# --- Inventory --------------------------------------------------------------------------------------------


def test_inventory_carries_the_role_variables_and_no_key_material() -> None:
    spec = load_spec(SAAS.relative_to(ROOT), as_of=AS_OF)
    registry = RendererRegistry([inventory_renderer()])
    files = render_files(spec, registry=registry, dkim=TEST_DKIM)
    host = yaml.safe_load(files['inventory/host_vars/mta1.yml'].content)
    assert [instance['name'] for instance in host['postfix__instances']] == ['postfix-transactional']
    assert host['opendkim__keys'][0]['key_ref'] == 'acme/acme.example/s2026q4.rsa.key'
    assert host['postfix__unallocated_ips'] == []
    for output in files.values():
        assert b'PRIVATE KEY' not in output.content


def test_unallocated_ips_get_no_transport_and_stop_the_role() -> None:
    text = edit(
        '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n',
        '    allocate: {count: 1, ptr_pattern: "bulk{n}a.testco.example"}\n',
    )
    text = edit('    provider: static\n', '    provider: hetzner\n', text)  # a static host cannot get allocations
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    context = context_of(spec)
    variables = host_variables(context, 'mta1')
    assert variables['postfix__unallocated_ips'] == ['bulk_alloc1']
    marketing = next(i for i in variables['postfix__instances'] if i['stream'] == 'marketing')
    assert {t['ip'] for t in marketing['transports']} == {'192_0_2_20'}
    allocated = context_of(spec, {'bulk_alloc1': '192.0.2.29'})
    marketing = next(i for i in host_variables(allocated, 'mta1')['postfix__instances'] if i['stream'] == 'marketing')
    assert {t['ip'] for t in marketing['transports']} == {'192_0_2_20', 'alloc1'}


def test_powermta_hosts_get_no_postfix_variables() -> None:
    spec = load_spec((ROOT / 'examples' / 'high-volume-powermta.yml').relative_to(ROOT), as_of=AS_OF)
    context = context_of(spec)
    for host, mta in spec.facts.host_mta.items():
        variables = host_variables(context, host)
        assert ('postfix__instances' in variables) == (mta == 'postfix')
        assert ('opendkim__keys' in variables) == (mta == 'postfix')
