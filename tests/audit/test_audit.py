"""``mailinfra audit``: the newsletter example served by a real Knot (tests/dnscheck/conftest.py), its rendered MTA
configuration, and one broken thing at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailinfra_iac import api, parse_spec
from mailinfra_iac.audit import REQUIREMENTS, AuditReport, Finding, audit, volumes
from mailinfra_iac.catalogue.isps import builtin_isps
from mailinfra_iac.cli.main import main
from mailinfra_iac.dkim import KeyStore
from mailinfra_iac.dkim.source import KeyStoreDkimSource
from mailinfra_iac.dnscheck.runner import DnsCheckReport, run_dns_checks
from mailinfra_iac.facts.records import derive_records, served_delegations
from mailinfra_iac.render.zonefile import zone_files

from ..conftest import AS_OF
from ..dnscheck.conftest import EXAMPLE, EXTERNAL, Served

NEWS = 'news.dailybrief.example'
RP_NEWS = 'rp.news.dailybrief.example'


def rendered(spec: api.Spec) -> dict[str, bytes]:
    return {path: output.content for path, output in api.render_files(spec, renderers=['mta']).items()}


def run_audit(served: Served, spec: api.Spec | None = None, files: dict[str, bytes] | None = None) -> AuditReport:
    spec = spec or served.spec
    return audit(spec, served.report(resolver=True), files if files is not None else rendered(spec))


def find(report: AuditReport, requirement: str, subject: str) -> Finding:
    found = [item for item in report.findings if (item.requirement, item.subject) == (requirement, subject)]
    assert len(found) == 1, f'{requirement} {subject}: {found}'
    return found[0]


def statuses(report: AuditReport) -> dict[tuple[str, str], str]:
    return {(item.requirement, item.subject): item.status for item in report.findings}


@pytest.fixture(scope='module')
def baseline(session_served: Served) -> AuditReport:
    return run_audit(session_served)


def test_the_served_example_meets_every_requirement_but_the_unmeasurable_spam_rate(baseline: AuditReport) -> None:
    assert not baseline.failed and not baseline.incomplete
    by_status: dict[str, set[str]] = {}
    for item in baseline.findings:
        by_status.setdefault(item.status, set()).add(item.requirement)
    assert by_status['not measurable'] == {'spam-rate'}
    assert by_status['not applicable'] == {'one-click-unsubscribe'}
    assert set(by_status['pass']) == set(REQUIREMENTS) - {'spam-rate'}
    # every From domain of a stream, every sending IP, every stream instance, every stream
    domains = ['dailybrief.example', NEWS, 'partners.dailybrief.example']
    for requirement in ('spf', 'dkim', 'dmarc', 'dmarc-alignment', 'spam-rate'):
        assert [item.subject for item in baseline.findings if item.requirement == requirement] == domains
    assert [item.subject for item in baseline.findings if item.requirement == 'tls'] == [
        'mx1 postfix-cold_outreach',
        'mx1 postfix-transactional',
        'mx2 postfix-marketing',
    ]
    assert find(baseline, 'fcrdns', '198.51.100.20').reason.startswith('PTR: PTR n1.mail.dailybrief.example')
    assert find(baseline, 'one-click-unsubscribe', 'stream transactional').status == 'not applicable'
    assert find(baseline, 'one-click-unsubscribe', 'stream cold_outreach').status == 'pass'
    assert 'd=news.dailybrief.example' in find(baseline, 'dkim', NEWS).reason


def test_the_spam_rate_is_never_a_pass(baseline: AuditReport) -> None:
    rates = [item for item in baseline.findings if item.requirement == 'spam-rate']
    assert rates and all(item.status == 'not measurable' for item in rates)
    assert 'Postmaster Tools' in rates[0].reason and rates[0].fix


def test_bulk_threshold_per_primary_domain(baseline: AuditReport) -> None:
    (volume,) = baseline.volumes
    assert volume.domain == 'dailybrief.example'
    assert volume.per_day == round((60000 + 1900000 + 6000) / 30)
    assert volume.bulk and volume.streams == ('transactional', 'marketing', 'cold_outreach')
    small = parse_spec(EXAMPLE.read_text().replace('monthly: 1900000', 'monthly: 50000'), 'spec.yml', as_of=AS_OF)
    (below,) = volumes(small)
    assert below.per_day == round((60000 + 50000 + 6000) / 30) and not below.bulk


def test_spf_that_does_not_authorise_the_ips_fails_with_source_and_fix(served: Served) -> None:
    served.change({(RP_NEWS, 'TXT'): ('v=spf1 ip4:192.0.2.99 -all',)})
    report = run_audit(served)
    finding = find(report, 'spf', NEWS)
    assert finding.status == 'fail'
    assert f'spf-authorises-ips {RP_NEWS}' in finding.reason
    assert finding.fix == REQUIREMENTS['spf'].fix
    assert any('support.google.com/a/answer/81126' in source for source in finding.sources)
    # SPF no longer passes, but DKIM is aligned and passes: DMARC still passes
    assert find(report, 'dmarc-alignment', NEWS).status == 'pass'
    assert report.failed
    changed = {key for key, status in statuses(report).items() if status == 'fail'}
    assert changed == {('spf', NEWS)}


def test_missing_dkim_key_fails_and_alignment_then_rests_on_spf(served: Served) -> None:
    served.change({(f's2026q4._domainkey.{NEWS}', 'TXT'): None})
    report = run_audit(served)
    assert find(report, 'dkim', NEWS).status == 'fail'
    assert 'dkim-present' in find(report, 'dkim', NEWS).reason
    assert find(report, 'dmarc-alignment', NEWS).status == 'pass'  # relaxed SPF alignment of rp.news...


def test_no_dmarc_record_fails(served: Served) -> None:
    served.change({(f'_dmarc.{NEWS}', 'TXT'): None})
    finding = find(run_audit(served), 'dmarc', NEWS)
    assert finding.status == 'fail' and 'no v=DMARC1 record' in finding.reason
    assert finding.fix == REQUIREMENTS['dmarc'].fix


def test_a_stricter_served_policy_meets_the_requirement_and_is_noted(served: Served) -> None:
    served.change({(f'_dmarc.{NEWS}', 'TXT'): ('v=DMARC1; p=reject; rua=mailto:dmarc@dailybrief.example',)})
    finding = find(run_audit(served), 'dmarc', NEWS)
    assert finding.status == 'pass'
    assert 'p=reject' in finding.reason and 'the spec asks for p=none' in finding.reason


def test_a_ptr_naming_another_host_fails_fcrdns(served: Served) -> None:
    served.change({('20.100.51.198.in-addr.arpa', 'PTR'): ('elsewhere.dailybrief.example.',)})
    report = run_audit(served)
    assert find(report, 'fcrdns', '198.51.100.20').status == 'fail'
    assert find(report, 'fcrdns', '198.51.100.21').status == 'pass'


def test_unaligned_return_path_and_no_signing_fails_alignment(served: Served) -> None:
    """Strict SPF alignment with a return-path under the From domain, and the signing table dropped."""
    text = EXAMPLE.read_text().replace(
        '    dmarc: {p: none, rua: [dmarc@dailybrief.example], ruf: [dmarc-forensic@dailybrief.example]}',
        '    dmarc: {p: none, rua: [dmarc@dailybrief.example], ruf: [dmarc-forensic@dailybrief.example], aspf: s}',
    )
    spec = parse_spec(text, 'spec.yml', as_of=AS_OF)
    files = {path: content for path, content in rendered(spec).items() if '/opendkim/SigningTable' not in path}
    report = audit(spec, served.report(resolver=True), files)
    alignment = find(report, 'dmarc-alignment', NEWS)
    assert alignment.status == 'fail'
    assert f'SPF return-path {RP_NEWS} not aligned' in alignment.reason
    assert 'DKIM not aligned (signed with nothing)' in alignment.reason
    assert find(report, 'dkim', NEWS).status == 'fail'
    assert 'no rendered MTA configuration signs mail From' in find(report, 'dkim', NEWS).reason


def test_marketing_without_the_unsubscribe_endpoint_fails(served: Served) -> None:
    text = EXAMPLE.read_text()
    start = text.index('  unsubscribe:\n')
    end = text.index('  webhook:')
    spec = parse_spec(text[:start] + text[end:], 'spec.yml', as_of=AS_OF)
    report = audit(spec, served.report(resolver=True), rendered(spec))
    assert find(report, 'one-click-unsubscribe', 'stream marketing').status == 'fail'
    assert find(report, 'one-click-unsubscribe', 'stream cold_outreach').status == 'fail'
    assert find(report, 'one-click-unsubscribe', 'stream transactional').status == 'not applicable'


def test_unsubscribes_must_be_honoured_somewhere(served: Served) -> None:
    """Without the instance's suppression map, marketing relies on the webhook; without both it fails."""
    spec = served.spec
    files = rendered(spec)
    master = 'mta/mx2/etc/postfix-marketing/master.cf'
    lines = files[master].decode().splitlines(keepends=True)
    files[master] = ''.join(line for line in lines if 'check_recipient_access' not in line).encode()
    dns = served.report(resolver=True)
    webhook = find(audit(spec, dns, files), 'one-click-unsubscribe', 'stream marketing')
    assert webhook.status == 'pass' and 'the application drops them (feedback.webhook)' in webhook.reason
    text = EXAMPLE.read_text()
    start = text.index('  webhook: {url:')
    no_webhook = parse_spec(text[:start] + text[text.index('\n', start) + 1 :], 'spec.yml', as_of=AS_OF)
    finding = find(audit(no_webhook, dns, files), 'one-click-unsubscribe', 'stream marketing')
    assert finding.status == 'fail' and 'nothing honours an unsubscribe' in finding.reason
    assert 'feedback.webhook' in finding.fix
    enforced = find(audit(no_webhook, dns, rendered(no_webhook)), 'one-click-unsubscribe', 'stream marketing')
    assert enforced.status == 'pass' and 'refused at injection on mx2' in enforced.reason


def test_unchecked_dns_is_unchecked_not_pass(served: Served, tmp_path: Path) -> None:
    """An empty key store: the served DKIM keys cannot be compared, so DKIM is unchecked, never a pass."""
    empty = KeyStoreDkimSource(KeyStore(tmp_path / 'keys'), 'dailybrief')
    dns = run_dns_checks(served.spec, [served.server], dkim=empty, resolver=served.server)
    report = audit(served.spec, dns, rendered(served.spec))
    finding = find(report, 'dkim', NEWS)
    assert finding.status == 'unchecked' and 'the key store has no key' in finding.reason
    assert finding.fix == REQUIREMENTS['dkim'].fix
    assert report.incomplete and not report.failed
    allowed = run_dns_checks(served.spec, [served.server], dkim=empty, resolver=served.server, allow_unchecked=True)
    assert not audit(served.spec, allowed, rendered(served.spec)).incomplete


def test_no_dns_results_at_all_is_unchecked(example_spec: api.Spec) -> None:
    empty = DnsCheckReport([], ['192.0.2.53'])
    report = audit(example_spec, empty, rendered(example_spec))
    assert {item.status for item in report.findings if item.requirement in ('spf', 'dmarc', 'fcrdns')} == {'unchecked'}


# --- the command ---------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp('audit-cli') / 'keys'
    assert main(['dkim', 'generate', str(EXAMPLE), '--keys', str(store)]) == 0
    return store


@pytest.fixture
def served_from_keys(served: Served, keys: Path) -> Served:
    """The example's zones with the key store's public keys, and the stub zones a --resolver needs."""
    spec = served.spec
    records = derive_records(spec.deployment, spec.facts, KeyStoreDkimSource(KeyStore(keys), 'dailybrief'))
    nameservers = {zone.name: list(zone.nameservers) for zone in spec.deployment.dns.zones}
    zones = zone_files(records, nameservers, spec.deployment.dns.ttl, delegations=served_delegations(spec.deployment))
    served.knot.set_zones({**zones, **served.texts({zone: served.base[zone] for zone in EXTERNAL})})
    return served


def test_command_text_and_exit_codes(capsys: pytest.CaptureFixture[str], served_from_keys: Served, keys: Path) -> None:
    ns = served_from_keys.server
    argv = ['audit', str(EXAMPLE), '--nameserver', ns, '--keys', str(keys)]
    assert main([*argv, '--resolver', ns]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Bulk senders: 5,000 or more mails a day per primary domain (Gmail, Microsoft):\n')
    assert '  dailybrief.example: about 65,533 a day (monthly volume / 30 of transactional, marketing, ' in out
    assert 'by recipient mix: gmail about ' in out
    assert '  NOT MEASURABLE  news.dailybrief.example: Gmail sends no complaint reports' in out
    assert 'source: Google, Email sender guidelines <https://support.google.com/a/answer/81126>' in out
    assert out.rstrip().endswith('26 findings: 22 pass, 3 not measurable, 1 not applicable')
    # the same option meanings as dns check: keys the store lacks leave DKIM unchecked -> 2, unless allowed
    empty = ['audit', str(EXAMPLE), '--nameserver', ns, '--resolver', ns, '--keys', str(keys.parent / 'none')]
    assert main(empty) == 2
    assert 'some requirements could not be checked' in capsys.readouterr().err
    assert main([*empty, '--allow-unchecked']) == 0
    capsys.readouterr()


def test_command_json_and_a_failure(capsys: pytest.CaptureFixture[str], served: Served) -> None:
    served.change({(RP_NEWS, 'TXT'): ('v=spf1 -all',)})
    ns = served.server
    code = main(['audit', str(EXAMPLE), '--nameserver', ns, '--resolver', ns, '--format', 'json'])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document['exit'] == 1 and not document['ok']
    failed = [item for item in document['findings'] if item['status'] == 'fail']
    assert {(item['requirement'], item['subject']) for item in failed} >= {('spf', NEWS)}
    spf = next(item for item in failed if item['requirement'] == 'spf')
    assert spf['fix'] and spf['sources'][0] == {
        'title': 'Google, Email sender guidelines',
        'url': 'https://support.google.com/a/answer/81126',
    }
    assert document['volumes'] == [
        {
            'domain': 'dailybrief.example',
            'per_day': 65533,
            'streams': ['transactional', 'marketing', 'cold_outreach'],
            'bulk': True,
            # marketing's recipient_mix (gmail 0.4, microsoft 0.2); the other two streams the catalogue's shares
            'by_provider': {
                name: round((1900000 * mix + 66000 * builtin_isps()[name].default_share) / 30)
                for name, mix in (('gmail', 0.4), ('microsoft', 0.2))
            },
        }
    ]


def test_command_cannot_check_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(['audit', str(EXAMPLE), '--nameserver', '127.0.0.1:9', '--timeout', '0.2'])
    assert code == 2
    assert capsys.readouterr().err.startswith('cannot check: ')


def test_command_rejects_a_bad_server_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['audit', str(EXAMPLE), '--nameserver', 'not-an-address']) == 1
    assert capsys.readouterr().err.startswith('error: ')
