"""The feedback part of the contract: filled from the spec's ``feedback`` section, loaded strictly, no secret values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mailinfra_agent.contract import ContractError, Unsubscribe, Webhook, dump_contract, load_contract
from mailinfra_iac import parse_spec, render_files
from mailinfra_iac.facts.dnsbl import dnsbl_subjects
from mailinfra_iac.facts.records import derive_records
from mailinfra_iac.model.feedback import DEFAULT_HASH_KEY_FILE, DEFAULT_SIGNING_KEY_FILE
from mailinfra_iac.render.rolevars.agent import INBOUND_MAILDIR, SUPPRESSION_MAP_DIR, host_contract
from mailinfra_iac.render.rolevars.postfix import LOG_DIR

from ..conftest import AS_OF, ROOT, TEST_DKIM, edit
from .test_agent_vars import context

COLD = """  cold:
    kind: cold_outreach
    use_case: outreach
    volume: {monthly: 3000, peak_hourly: 30}
    pool: cold
    domains: [news.testco.example]
    injection: {port: 2527, networks: [10.0.0.0/8]}
sending_domains:"""
COLD_POOL = """pools:
  cold:
    ips:
      - address: 192.0.2.30
        ptr: cold1.testco.example
"""
FEEDBACK = """feedback:
  old_signing_key_files: [/etc/mailinfra/secrets/old-key]
  streams:
    marketing: {verp: {prefix: m, separator: "+", return_path_domain: bounces.testco.example}}
  suppression: {soft_bounce_window: 7d}
  retention: {events: 30d, after: erase, suppressions: hash}
  unsubscribe:
    hostname: unsubscribe.testco.example
    tls_certificate: /etc/ssl/unsubscribe.pem
    tls_key: /etc/ssl/private/unsubscribe.key
    port: 8443
    token_max_age: 60d
    rate_limit: 10
  webhook: {url: "https://crm.testco.example/hook", secret_file: /etc/mailinfra/secrets/hook, retries: 3}
monitoring:"""


def _spec() -> str:
    text = edit('sending_domains:', COLD)
    text = edit('pools:\n', COLD_POOL, text)
    text = edit('pools: [tx, bulk]', 'pools: [tx, bulk, cold]', text)
    return edit('monitoring:', FEEDBACK, text)


def test_defaults_fill_the_contract() -> None:
    contract = host_contract(context(), 'mta1')
    assert contract.suppression.signing_key_file == DEFAULT_SIGNING_KEY_FILE
    assert contract.suppression.soft_bounce_window == 30 * 86400
    assert contract.retention.hash_key_file == DEFAULT_HASH_KEY_FILE
    assert contract.unsubscribe == Unsubscribe() and contract.webhook == Webhook()
    marketing = contract.streams[1]
    assert marketing.verp.enabled and marketing.verp.domains == {'news.testco.example': 'bounces.news.testco.example'}
    assert [stream.complaint_links for stream in contract.streams] == [(), ()]
    assert marketing.suppression_map == f'{SUPPRESSION_MAP_DIR}/postfix-marketing'
    assert [(log.instance, log.path, log.syslog_name, log.stream) for log in contract.logs] == [
        ('postfix', f'{LOG_DIR}/postfix.log', 'postfix', None),
        ('postfix-transactional', f'{LOG_DIR}/postfix-transactional.log', 'postfix-transactional', 'transactional'),
        ('postfix-marketing', f'{LOG_DIR}/postfix-marketing.log', 'postfix-marketing', 'marketing'),
    ]
    assert contract.feedback_maildirs == (INBOUND_MAILDIR,)


def test_the_spec_section_reaches_the_contract() -> None:
    contract = host_contract(context(_spec()), 'mta1')
    assert load_contract(dump_contract(contract)) == contract
    streams = {stream.name: stream for stream in contract.streams}
    assert streams['marketing'].verp.prefix == 'm' and streams['marketing'].verp.separator == '+'
    assert streams['marketing'].verp.domains == {'news.testco.example': 'bounces.testco.example'}
    assert {name: stream.complaint_links for name, stream in streams.items()} == {
        'transactional': (),
        'marketing': ('cold',),
        'cold': ('marketing',),
    }
    assert contract.suppression.old_signing_key_files == ('/etc/mailinfra/secrets/old-key',)
    assert contract.suppression.soft_bounce_window == 7 * 86400
    assert (contract.retention.events, contract.retention.after, contract.retention.suppressions) == (
        30 * 86400,
        'erase',
        'hash',
    )
    assert contract.unsubscribe == Unsubscribe(
        enabled=True,
        hostname='unsubscribe.testco.example',
        port=8443,
        tls_certificate_file='/etc/ssl/unsubscribe.pem',
        tls_key_file='/etc/ssl/private/unsubscribe.key',
        token_max_age=60 * 86400,
        rate_limit=10,
    )
    assert contract.webhook == Webhook('https://crm.testco.example/hook', '/etc/mailinfra/secrets/hook', 3, 10)


def test_unsubscribe_only_enabled_on_inbound_hosts_and_its_a_record() -> None:
    second = '    pools: [tx]\n  mta2:\n    fqdn: mta2.testco.example\n    provider: static\n    address: 192.0.2.2\n'
    text = edit('    pools: [tx, bulk, cold]\n', second + '    pools: [bulk, cold]\n', _spec())
    text = edit('monitoring:', 'inbound: {hosts: [mta2]}\nmonitoring:', text)
    ctx = context(text)
    assert not host_contract(ctx, 'mta1').unsubscribe.enabled
    assert host_contract(ctx, 'mta1').unsubscribe.hostname == 'unsubscribe.testco.example'
    assert host_contract(ctx, 'mta1').feedback_maildirs == ()
    assert host_contract(ctx, 'mta2').unsubscribe.enabled
    records = derive_records(ctx.deployment, ctx.facts, TEST_DKIM).records
    found = [(r.fqdn, r.type, r.values) for r in records if r.purpose == 'unsubscribe']
    assert found == [('unsubscribe.testco.example', 'A', ('192.0.2.2',))]


def test_rendered_contract_names_secret_files_only() -> None:
    spec = parse_spec(_spec(), 'spec.yml', as_of=AS_OF)
    files = {path: output.content for path, output in render_files(spec, dkim=TEST_DKIM).items()}
    rendered = json.loads(files['mta/mta1/etc/mailinfra/agent.json'])
    load_contract(rendered)
    assert rendered['webhook']['secret_file'] == '/etc/mailinfra/secrets/hook'
    zone = files['dns/zones/testco.example.zone'].decode()
    assert 'unsubscribe 3600 IN A 192.0.2.1' in zone


@pytest.mark.parametrize(
    ('section', 'key', 'value', 'problem'),
    [
        ('webhook', 'secret_file', 'hook', '$.webhook.secret_file: (the value is not shown) is not an absolute path'),
        (
            'unsubscribe',
            'tls_key_file',
            'k.pem',
            '$.unsubscribe.tls_key_file: (the value is not shown) is not an absolute path',
        ),
        (
            'retention',
            'hash_key_file',
            'h',
            '$.retention.hash_key_file: (the value is not shown) is not an absolute path',
        ),
        ('retention', 'after', 'shred', '$.retention.after: expected one of "hash", "erase", got a string ("shred")'),
        (
            'suppression',
            'old_signing_key_files',
            ['o'],
            '$.suppression.old_signing_key_files[0]: (the value is not shown) is not an absolute path',
        ),
    ],
)
def test_loader_refuses_bad_feedback_values(section: str, key: str, value: object, problem: str) -> None:
    data = dump_contract(host_contract(context(_spec()), 'mta1'))
    data[section][key] = value
    with pytest.raises(ContractError) as raised:
        load_contract(data)
    assert problem in raised.value.problems


def test_a_contract_without_the_feedback_keys_still_loads() -> None:
    data = dump_contract(host_contract(context(_spec()), 'mta1'))
    for key in ('logs', 'feedback_maildirs', 'retention', 'unsubscribe', 'webhook'):
        del data[key]
    for key in ('old_signing_key_files', 'soft_bounce_window'):
        del data['suppression'][key]
    for stream in data['streams']:
        for key in ('verp', 'complaint_links', 'suppression_map'):
            del stream[key]
    contract = load_contract(data)
    assert contract.logs == () and contract.unsubscribe == Unsubscribe() and not contract.streams[0].verp.enabled


def test_role_paths_agree() -> None:
    """The contract's Maildir is the postfix role's default; the map directory is absolute."""
    defaults = yaml.safe_load((ROOT / 'roles' / 'postfix' / 'defaults' / 'main.yml').read_text())
    assert str(Path(defaults['postfix__inbound_home']) / 'Maildir') == INBOUND_MAILDIR
    assert defaults['postfix__primary']['maillog_file'] == f'{LOG_DIR}/postfix.log'
    assert SUPPRESSION_MAP_DIR.startswith('/')


def test_powermta_hosts_read_the_accounting_files() -> None:
    contract = host_contract(context(edit('mta: auto', 'mta: powermta')), 'mta1')
    assert [(log.format, log.path, log.instance) for log in contract.logs] == [
        ('powermta-acct', '/var/log/pmta/acct.csv', 'powermta'),
        ('powermta-acct', '/var/log/pmta/diag.csv', 'powermta'),
    ]
    assert [stream.suppression_map for stream in contract.streams] == [None, None]
    assert contract.feedback_maildirs == ()


def test_unsubscribe_host_is_a_blocklist_subject() -> None:
    spec = parse_spec(_spec(), 'spec.yml', as_of=AS_OF)
    assert 'unsubscribe.testco.example' in dnsbl_subjects(spec.deployment, spec.facts).domains
    base = parse_spec(edit('monitoring:', 'monitoring:'), 'spec.yml', as_of=AS_OF)
    assert not any('unsubscribe' in name for name in dnsbl_subjects(base.deployment, base.facts).domains)
