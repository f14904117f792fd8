"""Every cross-object check: the base spec passes it, one edit makes it fail at the exact place."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailinfra_iac.checks import default_registry
from mailinfra_iac.problems import format_path

from ..conftest import BASE, edit, position, problems


@dataclass(frozen=True)
class Case:
    check: str
    old: str
    new: str
    marker: str
    path: str
    severity: str = 'error'
    occurrence: int = 1
    setup: tuple[tuple[str, str], ...] = ()
    """Edits made first, for a check that needs more than one setting (old, new)."""


CASES = [
    Case(
        'ip-in-multiple-pools',
        'address: 192.0.2.21',
        'address: 192.0.2.10',
        '192.0.2.10',
        'pools.bulk.ips[1].address',
        occurrence=2,
    ),
    Case('ip-in-multiple-streams', 'pool: bulk\n', 'pool: tx\n', 'tx\n    domains: [news', 'streams.marketing.pool'),
    Case(
        'pool-without-ips',
        """ips:
      - address: 192.0.2.10
        ptr: tx1.testco.example
""",
        'ips: []\n',
        'ips: []',
        'pools.tx',
    ),
    Case('stream-without-pool', '    pool: tx\n', '', 'use_case: password resets', 'streams.transactional'),
    Case('pool-placement', 'pools: [tx, bulk]', 'pools: [tx, bulk, spare]', 'spare', 'hosts.mta1.pools[2]'),
    Case(
        'ptr-outside-zones',
        'ptr: tx1.testco.example',
        'ptr: tx1.other.example',
        'tx1.other.example',
        'pools.tx.ips[0].ptr',
    ),
    Case(
        'helo-differs-from-ptr',
        'ptr: tx1.testco.example',
        'ptr: tx1.testco.example\n        helo: mail.testco.example',
        'mail.testco.example',
        'pools.tx.ips[0].helo',
    ),
    Case(
        'dkim-key-size',
        'dkim: {selectors: [s2026q4]}\n    spf',
        'dkim: {selectors: [s2026q4], rsa_bits: 1024}\n    spf',
        '1024',
        'sending_domains[0].dkim.rsa_bits',
    ),
    Case(
        'allocated-ptr-name',
        '        ptr: bulk2.testco.example\n',
        "        ptr: bulk2.testco.example\n    allocate: {count: 2, ptr_pattern: 'b_{n}.testco.example'}\n",
        "'b_{n}",
        'pools.bulk.allocate.ptr_pattern',
        setup=(
            (
                '    provider: static\n    address: 192.0.2.1\n',
                '    provider: hetzner\n    region: fsn1\n    size: cx22\n',
            ),
        ),
    ),
    Case(
        'dkim-selector-reused',
        'selectors: [s2026q4], algorithm',
        'selectors: [s2026q4, s2026q4e], algorithm',
        's2026q4e',
        'sending_domains[1].dkim.selectors[1]',
    ),
    Case(
        'spf-too-many-lookups',
        'spf: {includes: [_spf.mailer.example]}',
        'spf: {includes: [{domain: _spf.mailer.example, lookups: 8}], mechanisms: [a, mx, "exists:x.testco.example"]}',
        '{includes',
        'sending_domains[0].spf',
    ),
    Case(
        'spf-too-many-void-lookups',
        'spf: {includes: [_spf.mailer.example]}',
        'spf: {includes: [{domain: _spf.mailer.example, void_lookups: 3}]}',
        '[{domain',
        'sending_domains[0].spf.includes',
    ),
    Case(
        'spf-record-size',
        'spf: {includes: [_spf.mailer.example]}',
        'spf: {includes: [_spf.mailer.example], mechanisms: ['
        + ', '.join(f'"ip4:198.51.100.{n}"' for n in range(1, 90, 3))
        + ']}',
        '{includes: [_spf.mailer.example], mechanisms',
        'sending_domains[0].spf',
        severity='warning',
    ),
    Case(
        'dmarc-missing-rua',
        'dmarc: {p: none, rua: [dmarc@testco.example]}\n  - domain: news',
        'dmarc: {p: none}\n  - domain: news',
        '{p: none}',
        'sending_domains[0].dmarc',
    ),
    Case(
        'dmarc-external-rua',
        'algorithm: rsa+ed25519}\n    dmarc: {p: none, rua: [dmarc@testco.example]}',
        'algorithm: rsa+ed25519}\n    dmarc: {p: none, rua: [dmarc@testco.example, r@vendor.example]}',
        'r@vendor.example',
        'sending_domains[1].dmarc.rua[1]',
        severity='warning',
    ),
    Case(
        'duplicate-domain',
        'client:\n  name: testco\n  domains: [testco.example]',
        'client:\n  name: testco\n  domains: [testco.example, testco.example]',
        'testco.example]',
        'client.domains[1]',
    ),
    Case(
        'unknown-domain',
        'domains: [news.testco.example]',
        'domains: [promo.testco.example]',
        'promo.testco.example',
        'streams.marketing.domains[0]',
    ),
    Case(
        'domain-outside-zones',
        'algorithm: rsa+ed25519}',
        'algorithm: rsa+ed25519}\n    tracking: {hostname: click.elsewhere.example, target: t.esp.example}',
        '{hostname',
        'sending_domains[1].tracking',
    ),
    Case(
        'fbl-address-outside-zones',
        '\nmonitoring:',
        '\ninbound: {fbl_address: fbl@isp-feedback.example.net}\nmonitoring:',
        'fbl@isp-feedback.example.net',
        'inbound.fbl_address',
        severity='warning',
    ),
    Case(
        'fbl-address-domain',
        '\nmonitoring:',
        '\ninbound: {fbl_address: fbl@testco.example}\nmonitoring:',
        'fbl@testco.example',
        'inbound.fbl_address',
    ),
    Case(
        'tracking-hostname',
        'algorithm: rsa+ed25519}',
        'algorithm: rsa+ed25519}\n    tracking: {hostname: bulk1.testco.example, target: t.esp.example}',
        'bulk1.testco.example, target',
        'sending_domains[1].tracking.hostname',
    ),
    Case(
        'dns-name-length',
        'selectors: [s2026q4], algorithm',
        f'selectors: [{"s" * 63}], algorithm',
        's' * 63,
        'sending_domains[1].dkim.selectors[0]',
    ),
    Case(
        'unknown-isp-profile',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n    isp_overrides: {gmial: {limits: {max_connections: 2}}}',
        'gmial',
        'streams.marketing.isp_overrides.gmial',
    ),
    Case(
        'throttle-out-of-range',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n    isp_overrides: {gmail: {limits: {max_connections: 0}}}',
        '0}}}',
        'streams.marketing.isp_overrides.gmail.limits.max_connections',
    ),
    Case(
        'stream-capacity',
        'peak_hourly: 3000}',
        'peak_hourly: 30000}',
        '30000}',
        'streams.marketing.volume.peak_hourly',
        severity='warning',
    ),
    Case('mta-choice', 'mta: auto', 'mta: powermta', 'powermta', 'mta', severity='warning'),
    Case(
        'powermta-gate-auth',
        'port: 2526, networks: [10.0.0.0/8]',
        'port: 2526, networks: [10.0.0.0/8], sasl_users: [app]',
        '[app]',
        'streams.marketing.injection.sasl_users',
        setup=(
            ('mta: auto', 'mta: powermta'),
            ('\nmonitoring:', '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:'),
        ),
    ),
    Case(
        'powermta-gate-networks',
        'port: 2526, networks: [10.0.0.0/8]',
        'port: 2526, networks: []',
        '[]',
        'streams.marketing.injection.networks',
        setup=(
            ('mta: auto', 'mta: powermta'),
            ('\nmonitoring:', '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:'),
        ),
    ),
    Case(
        'retry-schedule',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n    retry: {min_backoff: 2h, max_backoff: 1h}',
        '{min_backoff',
        'streams.marketing.retry',
    ),
    Case('queue-thresholds', 'depth_warning: 100,', 'depth_warning: 5000,', '5000', 'monitoring.queue.depth_warning'),
    Case(
        'queue-age-powermta',
        'depth_critical: 1000}',
        'depth_critical: 1000, age_warning: 2h}',
        '2h',
        'monitoring.queue.age_warning',
        severity='warning',
        setup=(('mta: auto', 'mta: powermta'),),
    ),
    Case(
        'dnsbl-zone',
        'monitoring:\n',
        'monitoring:\n  dnsbl_zones: [zen.spamhaus.org, dnsbl.sorbs.net]\n',
        'dnsbl.sorbs.net',
        'monitoring.dnsbl_zones[1]',
    ),
    Case(
        'dnsbl-custom-zone',
        'monitoring:\n',
        'monitoring:\n  dnsbl:\n    custom_zones:\n'
        '      - {zone: bl.example.net, kind: ip, operator: X, listings: {"10.0.0.2": x}}\n',
        '"10.0.0.2"',
        'monitoring.dnsbl.custom_zones[0].listings.10.0.0.2',
    ),
    Case(
        'dnsbl-nameserver',
        'monitoring:\n',
        'monitoring:\n  dnsbl: {nameservers: [8.8.8.8]}\n',
        '8.8.8.8',
        'monitoring.dnsbl.nameservers[0]',
        'warning',
    ),
    Case(
        'monitoring-secret-file',
        'monitoring:\n',
        'monitoring:\n  dnsbl: {dqs_key_file: dqs.key}\n',
        'dqs.key',
        'monitoring.dnsbl.dqs_key_file',
    ),
    Case(
        'alert-smarthost',
        'monitoring:\n',
        'monitoring:\n  alerts: [{kind: email, target: ops@testco.example}]\n',
        '{kind: email',
        'monitoring.alerts[0]',
    ),
    Case(
        'monitoring-streams',
        'queue: {depth_warning: 100, depth_critical: 1000}',
        'queue: {depth_warning: 100, depth_critical: 1000, streams: {markting: {depth_warning: 50}}}',
        'markting',
        'monitoring.queue.streams.markting',
    ),
    Case(
        'rate-thresholds',
        'monitoring:\n',
        'monitoring:\n  rates: {default: {bounce_warning: 0.1}}\n',
        '0.1}',
        'monitoring.rates.default.bounce_warning',
    ),
    Case(
        'host-provisioning',
        '    provider: static\n    address: 192.0.2.1\n',
        '    provider: hetzner\n    size: cx32\n',
        'fqdn: mta1',
        'hosts.mta1',
    ),
    Case('unknown-host', 'monitoring:\n', 'inbound: {hosts: [mta9]}\nmonitoring:\n', 'mta9', 'inbound.hosts[0]'),
    Case(
        'host-role-settings',
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  mon1: {fqdn: mon1.testco.example, provider: static, address: 192.0.2.2, '
        'roles: [monitoring], pools: [tx]}\n',
        '[tx]}',
        'hosts.mon1.pools',
    ),
    Case(
        'inbound-host-role',
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  mon1: {fqdn: mon1.testco.example, provider: static, address: 192.0.2.2, '
        'roles: [monitoring]}\ninbound: {hosts: [mon1]}\n',
        'mon1]}',
        'inbound.hosts[0]',
    ),
    Case(
        'idle-mta-host',
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  mta2: {fqdn: mta2.testco.example, provider: static, address: 192.0.2.2, '
        'roles: [mta]}\ninbound: {hosts: [mta1]}\n',
        'mta]}',
        'hosts.mta2.roles[0]',
        severity='warning',
    ),
    Case(
        'database-host-count',
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n    roles: [mta, database]\n  db2: {fqdn: db2.testco.example, provider: static, '
        'address: 192.0.2.3, roles: [database]}\n',
        'database]}',
        'hosts.db2.roles[0]',
    ),
    Case(
        'monitoring-host-missing',
        'monitoring:\n',
        'monitoring:\n  alerts: [{kind: email, target: ops@testco.example}]\n'
        '  smarthost: {host: relay.example.net, sender: alerts@testco.example}\n',
        '[{kind',
        'monitoring.alerts',
        severity='warning',
    ),
    Case(
        'dns-host-unused',
        'pools: [tx, bulk]\n',
        'pools: [tx, bulk]\n  ns1: {fqdn: ns1.testco.example, provider: static, address: 192.0.2.53, roles: [dns]}\n',
        'dns]}',
        'hosts.ns1.roles[0]',
        severity='warning',
    ),
    Case(
        'zone-nameservers',
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n',
        '',
        'ns.testco.example]',
        'dns.zones[0].nameservers[0]',
    ),
    Case(
        'zone-delegation',
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n',
        '      nameserver_addresses: {ns.testco.example: [192.0.2.53]}\n'
        '    - {name: sub.testco.example, provider: cloudflare}\n',
        'sub.testco.example',
        'dns.zones[1].name',
        severity='warning',
    ),
    # issue 11: specs that validated but were wrong
    Case('ip-not-global', 'address: 192.0.2.10', 'address: 10.0.0.10', '10.0.0.10', 'pools.tx.ips[0].address'),
    Case(
        'injection-port-conflict',
        'injection: {port: 2526,',
        'injection: {port: 2525,',
        '2525',
        'streams.marketing.injection.port',
        occurrence=2,
    ),
    # session 12: an IPv6 injection network validated, and the IPv4-only listener never took its clients
    Case(
        'injection-network-ipv6',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        "injection: {port: 2526, networks: [10.0.0.0/8, '2001:db8::/32']}",
        "'2001:db8::/32'",
        'streams.marketing.injection.networks[1]',
    ),
    # session 12: a domain under two providers validated, and one provider's limits were silently unused for it
    Case(
        'isp-domain-overlap',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n'
        '    isp_overrides: {yahoo: {recipient_domains: [outlook.com]}}',
        'outlook.com',
        'streams.marketing.isp_overrides.yahoo.recipient_domains[0]',
    ),
    # session 12: a stream on the SSH or an exporter port validated, and one of the two services could not start
    Case(
        'injection-port-reserved',
        'injection: {port: 2526,',
        'injection: {port: 9100,',
        '9100',
        'streams.marketing.injection.port',
    ),
    # session 12: 0.0.0.0/0 validated, and every listener relayed for the whole Internet
    Case(
        'injection-open-relay',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8, 0.0.0.0/0]}',
        '0.0.0.0/0',
        'streams.marketing.injection.networks[1]',
    ),
    # session 13: "app" and "app@<the instance's name>" are one sasldb entry; one password replaced the other
    Case(
        'sasl-user-same-login',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8], sasl_users: [app, app@bulk1.testco.example]}',
        'app@bulk1.testco.example',
        'streams.marketing.injection.sasl_users[1]',
    ),
    Case(
        'allocation-provider',
        """  bulk:
    ips:
      - address: 192.0.2.20
        ptr: bulk1.testco.example
      - address: 192.0.2.21
        ptr: bulk2.testco.example
""",
        '  bulk:\n    allocate: {count: 2, ptr_pattern: "bulk{n}.testco.example"}\n',
        'allocate:',
        'pools.bulk.allocate',
    ),
    Case(
        'alert-target',
        'monitoring:\n',
        'monitoring:\n  alerts: [{kind: webhook, target: "ops@testco.example"}]\n',
        '"ops@',
        'monitoring.alerts[0].target',
    ),
    Case(
        'host-provisioning',
        '    provider: static\n',
        '    provider: static\n    region: ""\n',
        '""',
        'hosts.mta1.region',
    ),
    Case(
        'volume-consistency',
        'volume: {monthly: 30000, peak_hourly: 300}',
        'volume: {monthly: 200, peak_hourly: 300}',
        '300}',
        'streams.transactional.volume.peak_hourly',
    ),
    Case(
        'stream-capacity-impossible',
        'volume: {monthly: 300000, peak_hourly: 3000}',
        'volume: {monthly: 3000000, peak_hourly: 2000000}',
        '2000000}',
        'streams.marketing.volume.peak_hourly',
    ),
    Case(
        'unknown-bounce-rule',
        '\nmonitoring:',
        '\nbounce_policy: {classification: {disable: [gmail-no-such-usr]}}\nmonitoring:',
        'gmail-no-such-usr',
        'bounce_policy.classification.disable[0]',
    ),
    Case(
        'duplicate-bounce-rule',
        '\nmonitoring:',
        '\nbounce_policy: {classification: {rules: [{id: gmail-no-such-user, category: bad-mailbox, codes: ["550"]}]}}'
        '\nmonitoring:',
        'gmail-no-such-user',
        'bounce_policy.classification.rules[0].id',
    ),
    Case(
        'unknown-bounce-rule-isp',
        'injection: {port: 2526, networks: [10.0.0.0/8]}',
        'injection: {port: 2526, networks: [10.0.0.0/8]}\n    bounce_policy: {classification: {rules: '
        '[{id: mine, category: bad-mailbox, regex: gone, isp: gmial}]}}',
        'gmial',
        'streams.marketing.bounce_policy.classification.rules[0].isp',
    ),
    Case(
        'feedback-unknown-stream',
        '\nmonitoring:',
        '\nfeedback: {streams: {marketting: {}}}\nmonitoring:',
        'marketting',
        'feedback.streams.marketting',
    ),
    Case(
        'complaint-link-transactional',
        '\nmonitoring:',
        '\nfeedback: {streams: {marketing: {complaint_links: [transactional]}}}\nmonitoring:',
        'transactional]',
        'feedback.streams.marketing.complaint_links[0]',
        severity='warning',
    ),
    Case(
        'verp-return-path',
        '\nmonitoring:',
        '\nfeedback: {streams: {marketing: {verp: {return_path_domain: bounce.testco.example}}}}\nmonitoring:',
        'bounce.testco.example',
        'feedback.streams.marketing.verp.return_path_domain',
    ),
    Case(
        'verp-capacity',
        '  marketing:\n    use_case: newsletter',
        '  newsletters_and_promotions_for_customers:\n    use_case: newsletter',
        'newsletters_and_promotions_for_customers',
        'streams.newsletters_and_promotions_for_customers',
    ),
    Case(
        'return-path-reserved-local-part',
        '\nmonitoring:',
        '\ninbound: {fbl_address: b-fbl@bounces.testco.example}\nmonitoring:',
        'b-fbl@bounces.testco.example',
        'inbound.fbl_address',
    ),
    Case(
        'unsubscribe-hostname',
        '\nmonitoring:',
        '\nfeedback: {unsubscribe: {hostname: unsubscribe.other.example, tls_certificate: /etc/ssl/u.pem, '
        'tls_key: /etc/ssl/u.key}}\nmonitoring:',
        'unsubscribe.other.example',
        'feedback.unsubscribe.hostname',
    ),
    Case(
        'unsubscribe-port',
        '\nmonitoring:',
        '\nfeedback: {unsubscribe: {hostname: u.testco.example, tls_certificate: /etc/ssl/u.pem, '
        'tls_key: /etc/ssl/u.key, port: 2526}}\nmonitoring:',
        '2526}}',
        'feedback.unsubscribe.port',
    ),
    Case('inbound-powermta', 'mta: auto', 'mta: powermta', 'mta1', 'hosts.mta1', severity='warning'),
    Case(
        'inbound-powermta',
        'mta: auto',
        'mta: powermta\ninbound: {hosts: [mta1]}',
        'mta1]',
        'inbound.hosts[0]',
        severity='warning',
    ),
    Case(
        'webhook-url',
        '\nmonitoring:',
        '\nfeedback: {webhook: {url: "http://crm.testco.example/hook", secret_file: /etc/mailinfra/hook}}\nmonitoring:',
        '"http:',
        'feedback.webhook.url',
    ),
    Case(
        'feedback-file-path',
        '\nmonitoring:',
        '\nfeedback: {signing_key_file: secrets/key}\nmonitoring:',
        'secrets/key',
        'feedback.signing_key_file',
    ),
]


def test_every_check_has_a_case() -> None:
    assert sorted({case.check for case in CASES}) == default_registry().ids()


def test_base_spec_passes_every_check() -> None:
    found = [problem for problem in problems(BASE) if problem.check != 'mta-choice']
    assert found == []
    [advice] = problems(BASE)
    assert advice.check == 'mta-choice'
    assert advice.severity == 'advice'


@pytest.mark.parametrize('case', CASES, ids=[case.check for case in CASES])
def test_check_fails_at_the_edit(case: Case) -> None:
    text = BASE
    for old, new in case.setup:
        text = edit(old, new, text)
    text = edit(case.old, case.new, text)
    found = [problem for problem in problems(text) if problem.check == case.check]
    assert len(found) == 1, [str(problem) for problem in problems(text)]
    problem = found[0]
    assert format_path(problem.path) == case.path
    assert problem.severity == case.severity
    assert (problem.line, problem.column) == position(text, case.marker, case.occurrence)
    assert problem.file == 'spec.yml'
    assert problem.expected, 'every problem says what was expected'
    others = [p.check for p in problems(text) if p.check not in (case.check, 'mta-choice') and p.severity == 'error']
    assert others == [], f'one edit should trip one check, also got {others}'
