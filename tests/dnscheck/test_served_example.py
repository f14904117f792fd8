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
    ('spf-lookups', 'unchecked'): 1,
    ('spf-matches-spec', 'pass'): 6,
    ('dkim-present', 'pass'): 4,
    ('dkim-key-matches', 'pass'): 4,
    ('dkim-key-size', 'pass'): 4,
    ('dkim-not-revoked', 'pass'): 4,
    ('dmarc-present', 'pass'): 3,
    ('dmarc-policy', 'pass'): 3,
    ('dmarc-rua', 'pass'): 3,
    ('dmarc-matches-spec', 'pass'): 3,
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
    # the one unchecked result: a third-party include nobody could be asked about, counted as the spec declares
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
    # no retries on loopback; one more datagram: the resolver is asked whether it answers at all
    assert report.datagrams == len(report.questions) + 1
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
    assert changed(baseline, results) == {('spf-lookups', PARTNERS): 'fail', ('spf-matches-spec', PARTNERS): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == (
        'permerror: 11 DNS lookups counted through include/redirect (at most 10)'
    )
    # one lookup less is fine
    served.change({**NESTED, (f'l3.spf.{D}', 'TXT'): (f'v=spf1 a:t1.mail.{D} a:n1.mail.{D} a:n2.mail.{D} -all',)})
    results = served.check()
    assert changed(baseline, results) == {('spf-matches-spec', PARTNERS): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == '10 DNS lookups, 0 void (limits 10 and 2)'


def test_spf_with_3_void_lookups(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {(PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 a:nx1.{D} mx:nx2.{D} exists:nx3.{D} ~all',)}
    )  # fmt: skip
    results = served.check()
    assert changed(baseline, results) == {('spf-lookups', PARTNERS): 'fail', ('spf-matches-spec', PARTNERS): 'fail'}
    assert reason(results, 'spf-lookups', PARTNERS) == (
        f'permerror: 3 void lookups (a:nx1.{D}, mx:nx2.{D}, exists:nx3.{D}; at most 2)'
    )
    served.change({(PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 a:nx1.{D} mx:nx2.{D} ~all',)})
    assert changed(baseline, served.check()) == {('spf-matches-spec', PARTNERS): 'fail'}


def test_spf_include_loop_and_missing_include(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {
            (PARTNERS, 'TXT'): (f'v=spf1 ip4:198.51.100.30 include:loop.spf.{D} ~all',),
            (f'loop.spf.{D}', 'TXT'): (f'v=spf1 include:{PARTNERS} -all',),
            (f'rp.{PARTNERS}', 'TXT'): (f'v=spf1 ip4:198.51.100.30 include:gone.spf.{D} ~all',),
        }
    )
    results = served.check()
    assert changed(baseline, results) == {
        ('spf-lookups', PARTNERS): 'fail',
        ('spf-lookups', f'rp.{PARTNERS}'): 'fail',
        ('spf-matches-spec', PARTNERS): 'fail',
        ('spf-matches-spec', f'rp.{PARTNERS}'): 'fail',
    }
    assert reason(results, 'spf-lookups', PARTNERS) == (f'permerror: loop: {PARTNERS} -> loop.spf.{D} -> {PARTNERS}')
    assert reason(results, 'spf-lookups', f'rp.{PARTNERS}') == (
        f'permerror: include:gone.spf.{D}: no SPF record at gone.spf.{D} (permerror)'
    )


@covers(('spf-authorises-ips', 'fail'))
def test_spf_missing_an_address(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(NEWS, 'TXT'): ('v=spf1 ip4:198.51.100.20/31 -all',)})
    results = served.check()
    assert changed(baseline, results) == {('spf-authorises-ips', NEWS): 'fail', ('spf-matches-spec', NEWS): 'fail'}
    assert reason(results, 'spf-authorises-ips', NEWS) == '198.51.100.22 gets fail (of 3 sending addresses)'


def test_spf_authorising_through_an_include_and_a(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change(
        {
            (NEWS, 'TXT'): (f'v=spf1 include:outbound.spf.{D} -all',),
            (f'outbound.spf.{D}', 'TXT'): (f'v=spf1 a:n1.mail.{D} a:n2.mail.{D} a:n3.mail.{D} ~all',),
        }
    )
    results = served.check()
    # authorised all the same, but not the record the spec renders
    assert changed(baseline, results) == {('spf-matches-spec', NEWS): 'fail'}
    assert reason(results, 'spf-lookups', NEWS) == '4 DNS lookups, 0 void (limits 10 and 2)'


@covers(('spf-present', 'fail'))
def test_two_spf_records(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'rp.{PARTNERS}', 'TXT'): ('v=spf1 ip4:198.51.100.30 ~all', 'v=spf1 -all')})
    results = served.check()
    assert changed(baseline, results) == {
        ('spf-present', f'rp.{PARTNERS}'): 'fail',
        ('spf-authorises-ips', f'rp.{PARTNERS}'): 'skip',
        ('spf-lookups', f'rp.{PARTNERS}'): 'skip',
        ('spf-matches-spec', f'rp.{PARTNERS}'): 'skip',
    }
    assert reason(results, 'spf-lookups', f'rp.{PARTNERS}') == 'not run: no single valid SPF record'
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
        ('dkim-not-revoked', name): 'skip',
        ('dkim-key-size', name): 'skip',
        ('dkim-key-matches', name): 'skip',
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
    # other spacing, tag order, base64 folded with a space: the same record
    served.change({(name, 'TXT'): (f'v=DKIM1;h=sha256 ;  k=rsa; p={key[:100]} {key[100:]}',)})
    assert changed(baseline, served.check()) == {}
    # an extra tag: the same key, but not the rendered record
    served.change({(name, 'TXT'): (f'v=DKIM1; k=rsa; h=sha256; t=s; p={key}',)})
    results = served.check()
    assert changed(baseline, results) == {('dkim-key-matches', name): 'fail'}
    assert reason(results, 'dkim-key-matches', name) == (
        "the key store's key, but t=s where the rendered record has (none)"
    )
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
        ('dkim-key-size', name): 'skip',
        ('dkim-key-matches', name): 'skip',
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
    assert changed(baseline, results) == {
        ('dmarc-rua', f'_dmarc.{PARTNERS}'): 'fail',
        ('dmarc-matches-spec', f'_dmarc.{PARTNERS}'): 'fail',
    }
    assert reason(results, 'dmarc-rua', f'_dmarc.{PARTNERS}') == 'no rua=: nobody receives aggregate reports'


@covers(('dmarc-present', 'fail'))
def test_dmarc_missing(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_dmarc.{NEWS}', 'TXT'): None})
    results = served.check()
    assert changed(baseline, results) == {
        ('dmarc-present', f'_dmarc.{NEWS}'): 'fail',
        ('dmarc-policy', f'_dmarc.{NEWS}'): 'skip',
        ('dmarc-rua', f'_dmarc.{NEWS}'): 'skip',
        ('dmarc-matches-spec', f'_dmarc.{NEWS}'): 'skip',
    }
    assert reason(results, 'dmarc-present', f'_dmarc.{NEWS}') == (
        'no v=DMARC1 record (NXDOMAIN): receivers apply no DMARC policy'
    )


@covers(('dmarc-policy', 'fail'), ('dmarc-matches-spec', 'fail'))
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
        ('dmarc-policy', f'_dmarc.{D}'): 'fail',
        ('dmarc-policy', f'_dmarc.{NEWS}'): 'fail',
        ('dmarc-matches-spec', f'_dmarc.{D}'): 'fail',
        ('dmarc-matches-spec', f'_dmarc.{NEWS}'): 'fail',
    }
    assert reason(results, 'dmarc-policy', f'_dmarc.{D}') == 'p=none, the spec asks for p=quarantine'


EXTERNAL_RUA = (f'v=DMARC1; p=none; rua=mailto:dmarc@{D},mailto:reports@dmarc-vendor.example; adkim=r; aspf=r',)


@covers(('dmarc-report-authorised', 'fail'), ('dmarc-report-authorised', 'pass'))
def test_external_rua_needs_authorisation(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_dmarc.{PARTNERS}', 'TXT'): EXTERNAL_RUA})
    results = served.check(resolver=True)
    assert changed(baseline, results) == {
        ('spf-lookups', D): 'pass',  # the resolver also answers for the third-party SPF include
        ('dmarc-report-authorised', AUTHORISATION): 'fail',
        ('dmarc-matches-spec', f'_dmarc.{PARTNERS}'): 'fail',  # the spec has no such rua
    }
    assert reason(results, 'dmarc-report-authorised', AUTHORISATION) == (
        'no v=DMARC1 record (NXDOMAIN): receivers send no reports there'
    )
    # without a resolver nobody can be asked about the other domain: not checked, which fails the run
    report = served.report()
    assert statuses(report.results)[('dmarc-report-authorised', AUTHORISATION)] == 'unchecked'
    assert report.incomplete and not report.ok
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


@covers(('mta-sts', 'fail'))
def test_mta_sts_missing(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    served.change({(f'_mta-sts.rp.{D}', 'TXT'): None, (f'_mta-sts.rp.{NEWS}', 'TXT'): ('v=STSv1; id=20261128',)})
    results = served.check()
    assert changed(baseline, results) == {
        ('mta-sts', f'_mta-sts.rp.{D}'): 'fail',
        ('mta-sts', f'_mta-sts.rp.{NEWS}'): 'fail',  # an id the rendered policy does not have
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


# -- compared with the spec, not only with the RFCs --------------------------------------------------


@covers(('spf-matches-spec', 'fail'))
def test_spf_that_differs_from_the_spec_fails(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    # +all where the spec says ~all: every address still "passes", so only the comparison sees it
    served.change({(PARTNERS, 'TXT'): ('v=spf1 ip4:198.51.100.30 +all',)})
    results = served.check()
    assert changed(baseline, results) == {('spf-matches-spec', PARTNERS): 'fail'}
    assert reason(results, 'spf-matches-spec', PARTNERS) == (
        'differs from the rendered "v=spf1 ip4:198.51.100.30 ~all": serves +all not in the spec; lacks ~all'
    )
    # the class: another qualifier, an extra term, a missing include, the same terms reordered
    served.change(
        {
            (PARTNERS, 'TXT'): ('v=spf1 ip4:198.51.100.30 -all',),
            (f'rp.{PARTNERS}', 'TXT'): ('v=spf1 ip4:198.51.100.30 ip4:192.0.2.1 ~all',),
            (D, 'TXT'): ('v=spf1 ip4:198.51.100.10 -all',),
            (f'rp.{D}', 'TXT'): ('v=spf1 -all ip4:198.51.100.10',),
        }
    )
    results = served.check()
    for name in (PARTNERS, f'rp.{PARTNERS}', D, f'rp.{D}'):
        assert statuses(results)[('spf-matches-spec', name)] == 'fail', name
    assert reason(results, 'spf-matches-spec', f'rp.{D}').endswith('the same terms in another order')


def test_spf_written_in_an_equivalent_form_matches(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    # RFC 7208: several spaces, an explicit "+", mechanism names in any case
    served.change({(PARTNERS, 'TXT'): ('v=spf1  +IP4:198.51.100.30   ~ALL',)})
    assert changed(baseline, served.check()) == {}


DMARC_D = f'v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}; adkim=s; aspf=r'


@covers(('dmarc-matches-spec', 'pass'))
def test_dmarc_written_in_an_equivalent_form_matches(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    equivalent = (
        f'v = DMARC1 ; p = quarantine ; rua = mailto:dmarc@{D} ; adkim = s ; aspf = r',  # spaces (RFC 7489 ABNF)
        f'V=DMARC1;p=Quarantine;adkim=s;rua=mailto:dmarc@{D}',  # "v" and keywords in any case, order, aspf default
        f'v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}; adkim=s; aspf=r; pct=100; fo=0; ri=86400;',  # defaults
        f'v=DMARC1\t; p=quarantine;\trua=mailto:dmarc@{D}; adkim=s',
    )
    for value in equivalent:
        served.change({(f'_dmarc.{D}', 'TXT'): (value,)})
        results = served.check()
        assert changed(baseline, results) == {}, value


def test_dmarc_that_differs_from_the_spec_fails(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    different = {
        'adkim': f'v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}; adkim=r; aspf=r',
        'pct': f'v=DMARC1; p=quarantine; rua=mailto:dmarc@{D}; adkim=s; pct=10',
        'rua': f'v=DMARC1; p=quarantine; rua=mailto:dmarc@{D},mailto:other@{D}; adkim=s',
        'sp': f'v=DMARC1; p=quarantine; sp=none; rua=mailto:dmarc@{D}; adkim=s',
    }
    for tag, value in different.items():
        served.change({(f'_dmarc.{D}', 'TXT'): (value,)})
        results = served.check()
        assert changed(baseline, results) == {('dmarc-matches-spec', f'_dmarc.{D}'): 'fail'}, value
        assert f'{tag}=' in reason(results, 'dmarc-matches-spec', f'_dmarc.{D}')


def test_dmarc_version_is_exact(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    # "DMARC1" is case-sensitive in the ABNF (%x44.4d...), and must end at ";" or the end
    for value in (f'v=dmarc1; p=quarantine; rua=mailto:dmarc@{D}', f'v=DMARC1x; p=quarantine; rua=mailto:dmarc@{D}'):
        served.change({(f'_dmarc.{D}', 'TXT'): (value,)})
        assert statuses(served.check())[('dmarc-present', f'_dmarc.{D}')] == 'fail', value


# -- RFC details -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('tags', 'present', 'matches'),
    [
        ('h=sha1', 'fail', 'skip'),
        ('h=sha1:sha512', 'fail', 'skip'),
        ('s=other', 'fail', 'skip'),
        ('h=sha256; s=other:x', 'fail', 'skip'),
        ('h=sha1:sha256', 'pass', 'fail'),  # usable, but not the rendered record (h=sha256)
        ('h=sha256; s=email:*', 'pass', 'fail'),
        ('h=SHA256', 'pass', 'pass'),  # names are case-insensitive: the rendered record
    ],
)
def test_dkim_key_record_that_cannot_verify_our_signatures(
    served: Served, tags: str, present: str, matches: str
) -> None:
    """RFC 6376 3.6.1: h= lists the hashes the key may be used with, s= the service types."""
    name = f's2026q4._domainkey.{D}'
    key = TEST_DKIM.values['rsa'].split('p=')[1]
    served.change({(name, 'TXT'): (f'v=DKIM1; k=rsa; {tags}; p={key}',)})
    results = statuses(served.check())
    assert (results[('dkim-present', name)], results[('dkim-key-matches', name)]) == (present, matches)


def test_dkim_h_excluding_sha256_is_explained(served: Served) -> None:
    name = f's2026q4e._domainkey.{NEWS}'
    key = TEST_DKIM.values['ed25519'].split('p=')[1]
    served.change({(name, 'TXT'): (f'v=DKIM1; k=ed25519; h=sha1; p={key}',)})
    assert reason(served.check(), 'dkim-present', name) == (
        'h=sha1 excludes sha256: the key cannot verify our rsa-sha256/ed25519-sha256 signatures (RFC 6376 3.6.1)'
    )


@pytest.mark.parametrize('engine', ['fast', 'dnspython'])
def test_null_mx_is_reported_as_such(served: Served, baseline: dict[tuple[str, str], str], engine: str) -> None:
    """RFC 7505: "0 ." The engines write the root differently; both must come out as a null MX."""
    served.change(
        {
            (f'rp.{NEWS}', 'MX'): ('0 .',),
            (f'rp.{PARTNERS}', 'MX'): ('0 .', f'10 mx1.mail.{D}.'),
            (f'rp.{D}', 'TXT'): (f'v=spf1 mx:rp.{NEWS} ip4:198.51.100.10 -all',),  # an mx term on a null MX
        }
    )
    report = served.report(engine=engine)
    results = report.results
    assert changed(baseline, results) == {
        ('mx', f'rp.{NEWS}'): 'fail',
        ('mx', f'rp.{PARTNERS}'): 'fail',
        ('spf-matches-spec', f'rp.{D}'): 'fail',
    }
    assert reason(results, 'mx', f'rp.{NEWS}') == (
        'null MX (RFC 7505): the domain refuses all mail, bounces and replies included'
    )
    assert reason(results, 'mx', f'rp.{PARTNERS}').startswith('a null MX (RFC 7505) among other MX records')
    assert reason(results, 'spf-lookups', f'rp.{D}') == '1 DNS lookup, 0 void (limits 10 and 2)'
    asked = {(name, rdtype) for name, rdtype, _ in report.questions}
    assert not asked & {('0', 'A'), ('', 'A'), ('.', 'A')}


# -- defaults and output ---------------------------------------------------------------------------


@covers(('zone-text', 'pass'), ('zone-text', 'fail'))
def test_zone_text_with_a_long_string_fails_though_the_answer_looks_right(
    served: Served, baseline: dict[tuple[str, str], str], example_zones: dict[str, str]
) -> None:
    """Knot loads a 400-byte character-string and serves it split: only the zone text shows it."""
    name = f's2026q4._domainkey.{D}'
    value = TEST_DKIM.values['rsa']
    rendered = example_zones[D]
    line = next(line for line in rendered.splitlines() if line.startswith('s2026q4._domainkey '))
    head = line[: line.index('"')]
    one_string = rendered.replace(line, f'{head}"{value}"')
    split_elsewhere = rendered.replace(line, f'{head}"{value[:100]}" "{value[100:200]}" ( "{value[200:]}" )')
    assert one_string != rendered and len(value.encode()) > 255
    for text, status in ((rendered, 'pass'), (split_elsewhere, 'pass'), (one_string, 'fail')):
        served.knot.set_zones({**served.knot.zones, D: text})
        report = served.report(zone_files={'dailybrief.example.zone': text})
        # the served answer is the same every time: the rendered key, whatever the chunking
        assert changed(baseline, report.results) == {('zone-text', 'dailybrief.example.zone'): status}
        assert statuses(report.results)[('dkim-key-matches', name)] == 'pass'
    assert reason(report.results, 'zone-text', 'dailybrief.example.zone').startswith(
        f'line {one_string.splitlines().index(f"{head}{chr(34)}{value}{chr(34)}") + 1}: s2026q4._domainkey TXT has a '
        f'character-string of {len(value.encode())} bytes'
    )


def test_unchecked_fails_unless_allowed(served: Served) -> None:
    report = served.report()
    assert not report.failed and report.incomplete and not report.ok
    assert [r.check for r in report.results if r.status == 'unchecked'] == ['spf-lookups']
    allowed = served.report(allow_unchecked=True)
    assert allowed.ok and not allowed.incomplete
    assert served.report(resolver=True).ok


def test_the_same_checks_are_reported_whatever_breaks(served: Served, baseline: dict[tuple[str, str], str]) -> None:
    """Checks that depend on a failed one are reported as skipped, with the reason: the count never varies."""
    served.change(
        {
            (f's2026q4._domainkey.{PARTNERS}', 'TXT'): None,
            (f'_dmarc.{NEWS}', 'TXT'): None,
            (f'rp.{PARTNERS}', 'TXT'): None,
            (f's2026q4._domainkey.{NEWS}', 'TXT'): ('v=DKIM1; k=rsa; p=',),
        }
    )
    results = served.check()
    assert set(statuses(results)) == set(baseline)
    assert Counter(r.status for r in results)['skip'] == 3 + 3 + 3 + 2
    assert reason(results, 'dkim-key-size', f's2026q4._domainkey.{NEWS}') == 'not run: the selector is revoked'
    assert reason(results, 'dmarc-policy', f'_dmarc.{NEWS}') == 'not run: no single valid DMARC record'
