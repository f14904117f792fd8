"""TLS and DKIM signing as the rendered MTA configuration says: Postfix instances and PowerMTA virtual MTAs."""

from __future__ import annotations

from functools import cache

from mailinfra_iac import api, load_spec, parse_spec
from mailinfra_iac.audit.rendered import (
    TlsFinding,
    postfix_tls,
    powermta_tls,
    signing_domains,
    suppression_enforced,
)

from ..conftest import ROOT

MAIN_CF = 'mta/mx2/etc/postfix-marketing/main.cf'
MASTER_CF = 'mta/mx2/etc/postfix-marketing/master.cf'


@cache
def files(example: str) -> dict[str, str]:
    spec = load_spec(ROOT / 'examples' / f'{example}.yml')
    return {path: out.content.decode() for path, out in api.render_files(spec, renderers=['mta']).items()}


def postfix(changes: dict[str, str]) -> dict[str, TlsFinding]:
    return {item.subject: item for item in postfix_tls({**files('newsletter-publisher'), **changes})}


def test_every_postfix_stream_instance_offers_tls() -> None:
    found = postfix({})
    assert sorted(found) == ['mx1 postfix-cold_outreach', 'mx1 postfix-transactional', 'mx2 postfix-marketing']
    assert all(item.ok for item in found.values())
    assert found['mx2 postfix-marketing'].reason == 'smtp_tls_security_level = may, no weaker -o override'


def test_postfix_without_tls_fails() -> None:
    main_cf = files('newsletter-publisher')[MAIN_CF]
    assert 'smtp_tls_security_level = may\n' in main_cf
    off = postfix({MAIN_CF: main_cf.replace('smtp_tls_security_level = may\n', 'smtp_tls_security_level = none\n')})
    assert not off['mx2 postfix-marketing'].ok
    assert off['mx2 postfix-marketing'].reason == 'main.cf smtp_tls_security_level is "none"'
    assert off['mx1 postfix-transactional'].ok
    unset = postfix({MAIN_CF: main_cf.replace('smtp_tls_security_level = may\n', '')})
    assert unset['mx2 postfix-marketing'].reason == (
        'main.cf smtp_tls_security_level is unset (Postfix default: no TLS)'
    )
    # the last assignment wins, as in Postfix
    later = postfix({MAIN_CF: main_cf + 'smtp_tls_security_level = none\n'})
    assert not later['mx2 postfix-marketing'].ok


def test_a_master_cf_override_that_turns_tls_off_fails() -> None:
    master_cf = files('newsletter-publisher')[MASTER_CF]
    line = '  -o smtp_bind_address=198.51.100.20\n'
    assert line in master_cf
    for override in ('  -o smtp_tls_security_level=none\n', '  -o { smtp_tls_security_level = none }\n'):
        found = postfix({MASTER_CF: master_cf.replace(line, line + override)})
        assert not found['mx2 postfix-marketing'].ok
        assert found['mx2 postfix-marketing'].reason.startswith('master.cf turns TLS off: out_198_51_100_20 ')
    stricter = postfix({MASTER_CF: master_cf.replace(line, line + '  -o smtp_tls_security_level=encrypt\n')})
    assert stricter['mx2 postfix-marketing'].ok


def test_every_powermta_queue_uses_starttls() -> None:
    rendered = files('high-volume-powermta')
    found = powermta_tls(rendered)
    assert found and all(item.ok for item in found)
    assert found[0].subject == 'pmta1 virtual-mta ' + found[0].subject.split()[-1]
    assert postfix_tls(rendered) == []


def test_a_powermta_queue_without_starttls_fails() -> None:
    rendered = files('high-volume-powermta')
    path = 'mta/pmta1/pmta/config'
    config = rendered[path]
    first = config.index('        use-starttls yes\n')
    broken = config[:first] + config[first:].replace('        use-starttls yes\n', '        use-starttls no\n', 1)
    found = powermta_tls({path: broken})
    failed = [item for item in found if not item.ok]
    assert len(failed) == 1
    assert 'no "use-starttls yes" in 1 of' in failed[0].reason
    assert 'apple.queue' in failed[0].reason


def test_signing_domains_from_opendkim_and_powermta() -> None:
    assert signing_domains(files('newsletter-publisher')) == {
        'dailybrief.example': {'dailybrief.example'},
        'news.dailybrief.example': {'news.dailybrief.example'},
        'partners.dailybrief.example': {'partners.dailybrief.example'},
    }
    powermta = signing_domains(files('high-volume-powermta'))
    assert powermta['news.shopmax.example'] == {'news.shopmax.example'}
    # a signing table entry whose key is not in the key table signs nothing
    rendered = dict(files('newsletter-publisher'))
    for path in [path for path in rendered if path.endswith('/opendkim/KeyTable')]:
        rendered[path] = ''
    assert 'dailybrief.example' not in signing_domains(rendered)


def test_suppressed_recipients_are_refused_by_the_postfix_instances() -> None:
    rendered = files('newsletter-publisher')
    assert suppression_enforced(rendered) == {'cold_outreach': ['mx1'], 'transactional': ['mx1'], 'marketing': ['mx2']}
    master_cf = rendered[MASTER_CF]
    line = next(line for line in master_cf.splitlines(keepends=True) if 'check_recipient_access' in line)
    without = {**rendered, MASTER_CF: master_cf.replace(line, '')}
    assert 'marketing' not in suppression_enforced(without)
    policy = line.replace(
        'check_recipient_access hash:/var/lib/mailinfra/suppression/postfix-marketing',
        'check_policy_service unix:private/suppression',
    )
    assert suppression_enforced({**rendered, MASTER_CF: master_cf.replace(line, policy)})['marketing'] == ['mx2']
    assert suppression_enforced(files('high-volume-powermta')) == {}
    # behind the suppression gate (feedback.suppression.powermta_gate) PowerMTA's streams are enforced too
    text = (ROOT / 'examples' / 'high-volume-powermta.yml').read_text()
    gated = parse_spec(
        text.replace('\nmonitoring:', '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:', 1), 'spec.yml'
    )
    rendered_gated = {path: out.content.decode() for path, out in api.render_files(gated, renderers=['mta']).items()}
    assert suppression_enforced(rendered_gated) == {
        'transactional': ['pmta1'],
        'marketing': ['pmta1', 'pmta2'],
        'reactivation': ['pmta3'],
    }
