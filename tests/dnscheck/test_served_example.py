"""Every DNS check against a real Knot serving examples/newsletter-publisher.yml: the served example
passes, and breaking one record in the server fails exactly the checks that look at it."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from mailinfra_iac.dkim import generate_private_key, public_txt_value
from mailinfra_iac.dnscheck import CHECKS

from ..conftest import TEST_DKIM
from .conftest import Served, changed, reason, statuses

D = 'dailybrief.example'
PARTNERS = f'partners.{D}'
NEWS = f'news.{D}'
AUTHORISATION = f'{PARTNERS}._report._dmarc.dmarc-vendor.example'

# (check id, status) -> the test that produces it; test_every_check_has_a_pass_and_a_fail_case reads this
COVERED: dict[tuple[str, str], str] = {}


def covers(*cases: tuple[str, str]):  # type: ignore[no-untyped-def]
    def mark(function):  # type: ignore[no-untyped-def]
        for case in cases:
            COVERED.setdefault(case, function.__name__)
        return function

    return mark


@pytest.fixture(scope='module')
def other_rsa_txt() -> str:
    return public_txt_value(generate_private_key('rsa'))


@pytest.fixture(scope='module')
def weak_rsa_txt() -> str:
    # below what the package will generate (it refuses < 2048 bits): made with cryptography directly
    return public_txt_value(rsa.generate_private_key(public_exponent=65537, key_size=1024))


# -- the example as served -------------------------------------------------------------------------

EXPECTED_COUNTS = {
    ('fcrdns', 'pass'): 5,
    ('spf-present', 'pass'): 6,
    ('spf-authorises-ips', 'pass'): 6,
    ('spf-lookups', 'pass'): 5,
    ('spf-lookups', 'warn'): 1,
    ('dkim-present', 'pass'): 4,
    ('dkim-key-matches', 'pass'): 4,
    ('dkim-key-size', 'pass'): 4,
    ('dkim-not-revoked', 'pass'): 4,
    ('dmarc-present', 'pass'): 3,
    ('dmarc-policy', 'pass'): 3,
    ('dmarc-rua', 'pass'): 3,
    ('mx', 'pass'): 3,
    ('mta-sts', 'pass'): 3,
    ('tls-rpt', 'pass'): 3,
}


@covers(*((check, 'pass') for check in CHECKS if check != 'dmarc-report-authorised'))
def test_served_example_passes(served: Served) -> None:
    results = served.check()
    assert Counter((r.check, r.status) for r in results) == EXPECTED_COUNTS
    assert {r.subject for r in results if r.check == 'fcrdns'} == {
        '198.51.100.10', '198.51.100.20', '198.51.100.21', '198.51.100.22', '198.51.100.30'
    }  # fmt: skip
    assert {r.subject for r in results if r.check == 'spf-present'} == {
        D, f'rp.{D}', NEWS, f'rp.{NEWS}', PARTNERS, f'rp.{PARTNERS}'
    }  # fmt: skip
    assert {r.subject for r in results if r.check == 'dkim-present'} == {
        f's2026q4._domainkey.{D}', f's2026q4._domainkey.{NEWS}', f's2026q4e._domainkey.{NEWS}',
        f's2026q4._domainkey.{PARTNERS}',
    }  # fmt: skip
    assert {r.subject for r in results if r.check == 'mx'} == {f'rp.{D}', f'rp.{NEWS}', f'rp.{PARTNERS}'}
    assert reason(results, 'fcrdns', '198.51.100.10') == (
        f'PTR t1.mail.{D}, whose A holds 198.51.100.10; HELO t1.mail.{D}'
    )
    assert reason(results, 'dkim-key-size', f's2026q4e._domainkey.{NEWS}') == 'Ed25519 (256 bits)'
    assert reason(results, 'mx', f'rp.{D}') == f'mx1.mail.{D} (198.51.100.5)'
    # the one warning: a third-party include nobody could be asked about, counted as the spec declares
    assert reason(results, 'spf-lookups', D).startswith('1 DNS lookup, 0 void (limits 10 and 2); not verified: ')
    assert all(r.server == served.server for r in results)


def test_with_a_resolver_the_third_party_include_is_counted(
    served: Served, baseline: dict[tuple[str, str], str]
) -> None:
    results = served.check(resolver=True)
    assert changed(baseline, results) == {('spf-lookups', D): 'pass'}
    assert reason(results, 'spf-lookups', D) == '1 DNS lookup, 0 void (limits 10 and 2)'


def test_the_reference_engine_gives_the_same_results(served: Served) -> None:
    fast = served.check(resolver=True)
    reference = served.check(resolver=True, engine='dnspython')
    assert [r.as_dict() for r in reference] == [r.as_dict() for r in fast]


def test_each_question_is_asked_once(served: Served) -> None:
    report = served.report(resolver=True)
    assert len(report.questions) == len(set(report.questions))
    assert report.datagrams == len(report.questions)  # no retries on loopback
    assert ('_spf.google.com', 'TXT', served.server) in report.questions


# -- FCrDNS ----------------------------------------------------------------------------------------


@covers(('fcrdns', 'fail'))
def test_wrong_ptr(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({('10.100.51.198.in-addr.arpa', 'PTR'): (f'mx2.mail.{D}.',)})
    results = served.check()
    assert changed(baseline, results) == {('fcrdns', '198.51.100.10'): 'fail'}
    assert (
        reason(results, 'fcrdns', '198.51.100.10') == f'PTR of 198.51.100.10 names mx2.mail.{D}, expected t1.mail.{D}'
    )


def test_ptr_name_whose_a_lacks_the_address(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f't1.mail.{D}', 'A'): ('198.51.100.99',)})
    results = served.check()
    assert changed(baseline, results) == {('fcrdns', '198.51.100.10'): 'fail'}
    assert reason(results, 'fcrdns', '198.51.100.10') == (
        f'PTR names t1.mail.{D}, but t1.mail.{D} has 198.51.100.99, not 198.51.100.10: '
        'reverse DNS is not forward-confirmed'
    )


def test_missing_ptr_and_two_ptrs(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {
            ('20.100.51.198.in-addr.arpa', 'PTR'): None,
            ('21.100.51.198.in-addr.arpa', 'PTR'): (f'n2.mail.{D}.', f'mx1.mail.{D}.'),
        }
    )
    results = served.check()
    assert changed(baseline, results) == {('fcrdns', '198.51.100.20'): 'fail', ('fcrdns', '198.51.100.21'): 'fail'}
    assert reason(results, 'fcrdns', '198.51.100.20').startswith('no PTR record at 20.100.51.198.in-addr.arpa')
    assert reason(results, 'fcrdns', '198.51.100.21').startswith('2 PTR records at 21.100.51.198.in-addr.arpa')


# -- SPF -------------------------------------------------------------------------------------------

NESTED = {
    # 11 DNS-querying terms in all, through three levels of includes, every one of them resolving
    (PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 include:l1.spf.{D} ~all',),
    (f'l1.spf.{D}', 'TXT'): (f'v=spf1 a:mx1.mail.{D} mx:rp.{D} include:l2.spf.{D} -all',),
    (f'l2.spf.{D}', 'TXT'): (f'v=spf1 a:mx2.mail.{D} exists:mx1.mail.{D} include:l3.spf.{D} -all',),
    (f'l3.spf.{D}', 'TXT'): (f'v=spf1 a:t1.mail.{D} a:n1.mail.{D} a:n2.mail.{D} a:n3.mail.{D} -all',),
}


@covers(('spf-lookups', 'fail'))
def test_spf_needing_11_lookups_through_nested_includes(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(NESTED)
    results = served.check()
    assert changed(baseline, results) == {('spf-lookups', PARTNERS): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == (
        'permerror: 11 DNS lookups counted through include/redirect (at most 10)'
    )
    # one lookup less is fine
    served.change({**NESTED, (f'l3.spf.{D}', 'TXT'): (f'v=spf1 a:t1.mail.{D} a:n1.mail.{D} a:n2.mail.{D} -all',)})
    results = served.check()
    assert changed(baseline, results) == {}
    assert reason(results, 'spf-lookups', PARTNERS) == '10 DNS lookups, 0 void (limits 10 and 2)'


def test_spf_with_3_void_lookups(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {(PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 a:nx1.{D} mx:nx2.{D} exists:nx3.{D} ~all',)}
    )  # fmt: skip
    results = served.check()
    assert changed(baseline, results) == {('spf-lookups', PARTNERS): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == (
        f'permerror: 3 void lookups (a:nx1.{D}, mx:nx2.{D}, exists:nx3.{D}; at most 2)'
    )
    served.change({(PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 a:nx1.{D} mx:nx2.{D} ~all',)})
    assert changed(baseline, served.check()) == {}


def test_spf_include_loop_and_missing_include(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {
            (PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 include:loop.spf.{D} ~all',),
            (f'loop.spf.{D}', 'TXT'): (f'v=spf1 include:{PARTNERS} -all',),
            (f'rp.{PARTNERS}', 'TXT'): (f'v=spf1 ip4:198.51.100.30 include:gone.spf.{D} ~all',),
        }
    )
    results = served.check()
    assert changed(baseline, results) == {('spf-lookups', PARTNERS): 'fail', ('spf-lookups', f'rp.{PARTNERS}'): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == (f'permerror: loop: {PARTNERS} -> loop.spf.{D} -> {PARTNERS}')
    assert reason(results, 'spf-lookups', f'rp.{PARTNERS}') == (
        f'permerror: include:gone.spf.{D}: no SPF record at gone.spf.{D} (permerror)'
    )


@covers(('spf-authorises-ips', 'fail'))
def test_spf_missing_an_address(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(NEWS, 'TXT'): ('v=spf1 ip4:198.51.100.20/31 -all',)})
    results = served.check()
    assert changed(baseline, results) == {('spf-authorises-ips', NEWS): 'fail'}
    assert reason(results, 'spf-authorises-ips', NEWS) == '198.51.100.22 gets fail (of 3 sending addresses)'


def test_spf_authorising_through_an_include_and_a(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {
            (NEWS, 'TXT'): (f'v=spf1 include:outbound.spf.{D} -all',),
            (f'outbound.spf.{D}', 'TXT'): (f'v=spf1 a:n1.mail.{D} a:n2.mail.{D} a:n3.mail.{D} ~all',),
        }
    )
    results = served.check()
    assert changed(baseline, results) == {}
    assert reason(results, 'spf-lookups', NEWS) == '4 DNS lookups, 0 void (limits 10 and 2)'


@covers(('spf-present', 'fail'))
def test_two_spf_records(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'rp.{PARTNERS}', 'TXT'): ('v=spf1 ip4:198.51.100.30 ~all', 'v=spf1 -all')})
    results = served.check()
    assert changed(baseline, results) == {
        ('spf-present', f'rp.{PARTNERS}'): 'fail',
        ('spf-authorises-ips', f'rp.{PARTNERS}'): 'absent',
        ('spf-lookups', f'rp.{PARTNERS}'): 'absent',
    }
    assert reason(results, 'spf-present', f'rp.{PARTNERS}') == (
        '2 v=spf1 records: receivers return permerror with more than one'
    )


def test_spf_syntax_error_and_missing_record(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(PARTNERS, 'TXT'): ('v=spf1 ip4:198.51.100.300 ~all',), (f'rp.{PARTNERS}', 'TXT'): None})
    results = served.check()
    assert statuses(results)[('spf-present', PARTNERS)] == 'fail'
    assert reason(results, 'spf-present', PARTNERS) == (
        'invalid record "v=spf1 ip4:198.51.100.300 ~all": invalid address in "ip4:198.51.100.300"'
    )
    assert reason(results, 'spf-present', f'rp.{PARTNERS}') == 'no v=spf1 TXT record (NOERROR, 0 other TXT)'


# -- DKIM ------------------------------------------------------------------------------------------


@covers(('dkim-present', 'fail'))
def test_missing_dkim(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    name = f's2026q4._domainkey.{PARTNERS}'
    served.change({(name, 'TXT'): None})
    results = served.check()
    assert changed(baseline, results) == {
        ('dkim-present', name): 'fail',
        ('dkim-not-revoked', name): 'absent',
        ('dkim-key-size', name): 'absent',
        ('dkim-key-matches', name): 'absent',
    }
    assert reason(results, 'dkim-present', name) == 'no TXT record (NXDOMAIN): mail signed with s2026q4 fails DKIM'


@covers(('dkim-key-matches', 'fail'))
def test_dkim_with_a_different_key(served: Served, baseline: dict[tuple[str, str], str], other_rsa_txt: str) -> None:
    name = f's2026q4._domainkey.{D}'
    served.change({(name, 'TXT'): (other_rsa_txt.replace('; ', ';'),)})
    results = served.check()
    assert changed(baseline, results) == {('dkim-key-matches', name): 'fail'}
    assert reason(results, 'dkim-key-matches', name).startswith('serves rsa key sha256:')
    assert 'the key store has rsa key sha256:c0d83a80' in reason(results, 'dkim-key-matches', name)


def test_dkim_same_key_written_differently_matches(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    name = f's2026q4._domainkey.{D}'
    key = TEST_DKIM.values['rsa'].split('p=')[1]
    # other spacing, an extra tag, base64 folded with a space: the same key
    served.change({(name, 'TXT'): (f'v=DKIM1;k=rsa;  t=s; p={key[:100]} {key[100:]}',)})
    assert changed(baseline, served.check()) == {}
    served.change({(name, 'TXT'): (f'k=rsa; v=DKIM1; p={key}',)})  # v= must come first
    results = served.check()
    assert changed(baseline, results)[('dkim-present', name)] == 'fail'
    assert reason(results, 'dkim-present', name) == 'invalid DKIM key record: "v=" must be the first tag'


@covers(('dkim-not-revoked', 'fail'))
def test_revoked_dkim(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    name = f's2026q4._domainkey.{NEWS}'
    served.change({(name, 'TXT'): ('v=DKIM1; k=rsa; p=',)})
    results = served.check()
    assert changed(baseline, results) == {
        ('dkim-not-revoked', name): 'fail',
        ('dkim-key-size', name): 'absent',
        ('dkim-key-matches', name): 'absent',
    }
    assert reason(results, 'dkim-not-revoked', name) == 'empty p=: the selector is revoked, signatures fail'


@covers(('dkim-key-size', 'fail'))
def test_1024_bit_dkim(served: Served, baseline: dict[tuple[str, str], str], weak_rsa_txt: str) -> None:
    name = f's2026q4._domainkey.{PARTNERS}'
    served.change({(name, 'TXT'): (weak_rsa_txt,)})
    results = served.check()
    assert changed(baseline, results) == {('dkim-key-size', name): 'fail', ('dkim-key-matches', name): 'fail'}
    assert reason(results, 'dkim-key-size', name).startswith('RSA key of 1024 bits: at least 2048 (RFC 8301)')


# -- DMARC -----------------------------------------------------------------------------------------


@covers(('dmarc-rua', 'fail'))
def test_dmarc_without_rua(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_dmarc.{PARTNERS}', 'TXT'): ('v=DMARC1; p=none; adkim=r; aspf=r',)})
    results = served.check()
    assert changed(baseline, results) == {('dmarc-rua', f'_dmarc.{PARTNERS}'): 'fail'}
    assert reason(results, 'dmarc-rua', f'_dmarc.{PARTNERS}') == 'no rua=: nobody receives aggregate reports'


@covers(('dmarc-present', 'fail'))
def test_dmarc_missing(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_dmarc.{NEWS}', 'TXT'): None})
    results = served.check()
    assert changed(baseline, results) == {
        ('dmarc-present', f'_dmarc.{NEWS}'): 'fail',
        ('dmarc-policy', f'_dmarc.{NEWS}'): 'absent',
        ('dmarc-rua', f'_dmarc.{NEWS}'): 'absent',
    }
    assert reason(results, 'dmarc-present', f'_dmarc.{NEWS}') == (
        'no v=DMARC1 record (NXDOMAIN): receivers apply no DMARC policy'
    )


@covers(('dmarc-policy', 'fail'), ('dmarc-policy', 'warn'))
def test_dmarc_policy(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    rua = f'rua=mailto:dmarc@{D}'
    served.change(
        {
            (f'_dmarc.{D}', 'TXT'): (f'v=DMARC1; p=none; {rua}',),
            (f'_dmarc.{NEWS}', 'TXT'): (f'v=DMARC1; p=monitor; {rua}',),
        }
    )
    results = served.check()
    assert changed(baseline, results) == {
        ('dmarc-policy', f'_dmarc.{D}'): 'warn',
        ('dmarc-policy', f'_dmarc.{NEWS}'): 'fail',
    }
    assert reason(results, 'dmarc-policy', f'_dmarc.{D}') == 'p=none, the spec asks for p=quarantine'


EXTERNAL_RUA = (f'v=DMARC1; p=none; rua=mailto:dmarc@{D},mailto:reports@dmarc-vendor.example; adkim=r; aspf=r',)


@covers(('dmarc-report-authorised', 'fail'), ('dmarc-report-authorised', 'pass'), ('dmarc-report-authorised', 'warn'))
def test_external_rua_needs_authorisation(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_dmarc.{PARTNERS}', 'TXT'): EXTERNAL_RUA})
    results = served.check(resolver=True)
    assert changed(baseline, results) == {
        ('spf-lookups', D): 'pass',  # the resolver also answers for the third-party SPF include
        ('dmarc-report-authorised', AUTHORISATION): 'fail',
    }
    assert reason(results, 'dmarc-report-authorised', AUTHORISATION) == (
        'no v=DMARC1 record (NXDOMAIN): receivers send no reports there'
    )
    # without a resolver nobody can be asked about the other domain
    assert statuses(served.check())[('dmarc-report-authorised', AUTHORISATION)] == 'warn'
    # the destination authorises it
    served.change({(f'_dmarc.{PARTNERS}', 'TXT'): EXTERNAL_RUA, (AUTHORISATION, 'TXT'): ('v=DMARC1',)})
    assert statuses(served.check(resolver=True))[('dmarc-report-authorised', AUTHORISATION)] == 'pass'
    # ... or authorises every domain with a wildcard, which Knot expands
    served.change(
        {
            (f'_dmarc.{PARTNERS}', 'TXT'): EXTERNAL_RUA,
            ('*._report._dmarc.dmarc-vendor.example', 'TXT'): ('v=DMARC1',),
        }
    )
    assert statuses(served.check(resolver=True))[('dmarc-report-authorised', AUTHORISATION)] == 'pass'


# -- MX, MTA-STS, TLS-RPT --------------------------------------------------------------------------


@covers(('mx', 'fail'))
def test_mx_wrong(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'rp.{NEWS}', 'MX'): (f'10 mx2.mail.{D}.',)})
    results = served.check()
    assert changed(baseline, results) == {('mx', f'rp.{NEWS}'): 'fail'}
    assert reason(results, 'mx', f'rp.{NEWS}') == (
        f'points at mx2.mail.{D}; not at mx1.mail.{D}; mx2.mail.{D} is not an inbound host'
    )


def test_mx_host_without_address(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'mx1.mail.{D}', 'A'): None})
    results = served.check()
    assert changed(baseline, results) == {
        ('mx', f'rp.{D}'): 'fail',
        ('mx', f'rp.{NEWS}'): 'fail',
        ('mx', f'rp.{PARTNERS}'): 'fail',
    }
    assert reason(results, 'mx', f'rp.{D}') == f'mx1.mail.{D} has no A record (NXDOMAIN)'


@covers(('mta-sts', 'fail'), ('mta-sts', 'warn'))
def test_mta_sts_missing(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_mta-sts.rp.{D}', 'TXT'): None, (f'_mta-sts.rp.{NEWS}', 'TXT'): ('v=STSv1; id=20261128',)})
    results = served.check()
    assert changed(baseline, results) == {
        ('mta-sts', f'_mta-sts.rp.{D}'): 'fail',
        ('mta-sts', f'_mta-sts.rp.{NEWS}'): 'warn',
    }
    assert reason(results, 'mta-sts', f'_mta-sts.rp.{D}') == 'no v=STSv1 record (NXDOMAIN)'


@covers(('tls-rpt', 'fail'))
def test_tls_rpt_missing(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {(f'_smtp._tls.rp.{PARTNERS}', 'TXT'): None, (f'_smtp._tls.rp.{D}', 'TXT'): ('v=TLSRPTv1; rua=ftp://x',)}
    )
    results = served.check()
    assert changed(baseline, results) == {
        ('tls-rpt', f'_smtp._tls.rp.{PARTNERS}'): 'fail',
        ('tls-rpt', f'_smtp._tls.rp.{D}'): 'fail',
    }
    assert reason(results, 'tls-rpt', f'_smtp._tls.rp.{PARTNERS}') == 'no v=TLSRPTv1 record (NXDOMAIN)'


# -- bookkeeping -----------------------------------------------------------------------------------


def test_every_check_has_a_pass_and_a_fail_case() -> None:
    missing = [(check, status) for check in CHECKS for status in ('pass', 'fail') if (check, status) not in COVERED]
    assert missing == []
