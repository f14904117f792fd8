"""The blocklist catalogue (data, checked at load), exact decoding of every decoder kind, and query names."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from typing import Any

import pytest

from mailinfra_agent.dnsbl import (
    CatalogueError,
    SubjectError,
    custom_zone,
    decode,
    load_catalogue,
    query_prefix,
    registered_domain,
    subjects_from,
)
from mailinfra_agent.dnsbl.catalogue import parse_catalogue
from mailinfra_agent.dnsbl.decode import answers_as_documented

from ..conftest import ROOT

# Every retired or dead zone named in dnsbl.md section 4.
RETIRED_IN_REFERENCE = (
    'dnsbl.sorbs.net',
    'spam.dnsbl.sorbs.net',
    'rhsbl.sorbs.net',
    'aspews.ext.sorbs.net',
    'ix.dnsbl.manitu.net',
    'db.wpbl.info',
    'dnsbl.cyberlogic.net',
    'virbl.bit.nl',
    'wormrbl.imp.ch',
    'combined.rbl.msrbl.net',
    'bl.spamcannibal.org',
    'dnsbl.ahbl.org',
    'rhsbl.ahbl.org',
    'dnsbl.njabl.org',
    'dynip.rothen.com',
    'cbl.abuseat.org',
)


def raw() -> dict[str, Any]:
    return tomllib.loads(resources.files('mailinfra_agent.dnsbl').joinpath('zones.toml').read_text(encoding='utf-8'))


def test_the_shipped_catalogue_loads_and_has_every_section() -> None:
    catalogue = load_catalogue()
    assert catalogue.listing and catalogue.allowlists and catalogue.reputation and catalogue.key_only
    assert catalogue.retired and catalogue.unsupported
    assert {zone.decoder for zone in catalogue.zones} == {'codes', 'bitmask', 'score'}
    assert catalogue.get('ZEN.spamhaus.org.') is catalogue.get('zen.spamhaus.org')


def test_no_retired_zone_is_in_the_live_catalogue() -> None:
    catalogue = load_catalogue()
    live = {zone.zone for zone in catalogue.zones}
    for name in RETIRED_IN_REFERENCE:
        assert name not in live, name
        assert catalogue.refusal(name) is not None, f'{name} is not refused'
    # and the reference document's table still names them (the test follows it)
    reference = (ROOT.parent / 'shared' / 'reference' / 'dnsbl.md').resolve()
    if reference.exists():
        section = reference.read_text(encoding='utf-8').split('## 4.')[1].split('## 5.')[0]
        for name in re.findall(r'`([a-z0-9.*-]+\.(?:net|org|info|com|ch|nl))`', section):
            assert catalogue.refusal(name.replace('*.', 'x.')) is not None, name


def test_every_counted_zone_cites_the_source_of_its_codes() -> None:
    catalogue = load_catalogue()
    counted = catalogue.counted()
    for zone in counted:
        assert zone.source.startswith(('http://', 'https://')), zone.zone
        assert zone.codes, zone.zone
        assert zone.section == 'listing' and zone.codes_documented and not zone.custom, zone.zone
    names = [zone.zone for zone in counted]
    assert len(names) == len(set(names))
    # the size figure reported in docs/monitoring.md comes from here (issue goal: 50)
    assert len(counted) >= 50
    # allowlists, reputation scores and key-only zones never count, even with cited codes
    assert not {zone.zone for zone in catalogue.zones if zone.section != 'listing'} & set(names)


def test_a_zone_whose_codes_are_not_documented_is_queryable_but_not_counted() -> None:
    data = raw()
    data['listing'].append(
        {
            'zone': 'bl.example.net',
            'kind': 'ip',
            'operator': 'Example',
            'list_kind': 'IP blocklist',
            'decoder': 'codes',
            'source': 'https://bl.example.net/',
            'codes_documented': False,
            'codes': {'127.0.0.2': 'listed (RFC 5782 convention, not documented)'},
        }
    )
    catalogue = parse_catalogue(data)
    zone = catalogue.get('bl.example.net')
    assert zone is not None and not zone.counted
    assert zone not in catalogue.counted() and len(catalogue.counted()) == len(load_catalogue().counted())
    assert decode(zone, ['127.0.0.2']).verdict == 'listed'


def test_no_listing_code_outside_loopback_or_at_127_0_0_1() -> None:
    for zone in load_catalogue().zones:
        if zone.decoder == 'codes':
            for code in zone.codes:
                assert code.startswith('127.') and code != '127.0.0.1', (zone.zone, code)
        if zone.decoder == 'bitmask':
            assert '1' not in zone.codes, zone.zone


def test_every_problem_in_the_data_is_reported_at_once() -> None:
    data = raw()
    data['listing'][0]['decoder'] = 'regex'
    data['listing'][1]['codes']['8.8.8.8'] = 'hijacked?'
    data['listing'][2]['source'] = 'somewhere'
    data['listing'][3]['zone'] = 'dnsbl.sorbs.net'
    data['listing'][4]['colour'] = 'red'
    data['reputation'][0]['decoder'] = 'codes'
    data['listing'].append(dict(data['listing'][5]))
    with pytest.raises(CatalogueError) as raised:
        parse_catalogue(data)
    text = '\n'.join(raised.value.problems)
    assert 'decoder must be "codes", "bitmask" or "score"' in text
    assert '8.8.8.8 is outside 127.0.0.0/8' in text
    assert "source 'somewhere' is not an http(s) URL" in text
    assert 'dnsbl.sorbs.net: is queryable but *.sorbs.net is retired' in text
    assert 'unknown keys colour' in text
    assert 'reputation zones use the score decoder' in text
    assert 'listed twice' in text
    assert len(raised.value.problems) >= 7


def test_a_new_zone_is_data_only() -> None:
    data = raw()
    data['listing'].append(
        {
            'zone': 'bl.example.net',
            'kind': 'ip',
            'operator': 'Example',
            'list_kind': 'IP blocklist',
            'decoder': 'codes',
            'source': 'https://bl.example.net/codes',
            'codes': {'127.0.0.3': 'spam'},
        }
    )
    zone = parse_catalogue(data).get('bl.example.net')
    assert zone is not None and zone.counted and decode(zone, ['127.0.0.3']).verdict == 'listed'


# -- decoding: every decoder with a listing and an error code ----------------------------------------------


def zone(name: str) -> Any:
    found = load_catalogue().get(name)
    assert found is not None
    return found


def test_codes_decoder_listing_and_spamhaus_errors() -> None:
    zen = zone('zen.spamhaus.org')
    decoded = decode(zen, ['127.0.0.4', '127.0.0.2'])
    assert decoded.verdict == 'listed'
    assert [(c.code, c.meaning.split(':')[0]) for c in decoded.listings] == [('127.0.0.2', 'SBL'), ('127.0.0.4', 'XBL')]
    for answer, error_id in (
        ('127.255.255.252', 'typo'),
        ('127.255.255.254', 'open_resolver'),
        ('127.255.255.255', 'rate_limited'),
    ):
        decoded = decode(zen, [answer])
        assert decoded.verdict == 'error' and not decoded.listings
        assert [e.code for e in decoded.errors] == [error_id]


def test_zones_whose_documented_code_is_127_0_0_1_report_it_as_an_error() -> None:
    # 0spam documents 127.0.0.1 as "general spam" and URIBL's black list answers 127.0.0.1 for a refused query:
    # both are zone errors with their meaning, never listings (RFC 5782 section 5)
    for name, error_id, listing in (
        ('bl.0spam.org', 'general_spam', '127.0.0.7'),
        ('black.uribl.com', 'refused', '127.0.0.2'),
    ):
        decoded = decode(zone(name), ['127.0.0.1'])
        assert decoded.verdict == 'error' and not decoded.listings, name
        assert decoded.errors[0].code == error_id, name
        assert decode(zone(name), [listing]).verdict == 'listed', name


def test_codes_outside_127_0_0_x_decode_exactly() -> None:
    # listing codes that are not 127.0.0.x: nbl.0spam.org (127.0.N.0), Polspam (127.0.2.0, 127.1.1.1)
    nbl = decode(zone('nbl.0spam.org'), ['127.0.7.0'])
    assert nbl.verdict == 'listed' and nbl.listings[0].meaning.startswith('network: relay')
    assert decode(zone('bl.rbl.polspam.pl'), ['127.0.2.0']).verdict == 'listed'
    assert decode(zone('rhsbl.rbl.polspam.pl'), ['127.1.1.1']).verdict == 'listed'


def test_zones_cited_from_tool_configurations_decode_only_the_tested_answer() -> None:
    # mailcow's rspamd (InterServer), InspIRCd (dan.me.uk Tor exits), a SpamAssassin sandbox rule (SEM FRESH10):
    # the one answer the tool tests is a listing, a neighbouring answer is an undocumented zone error
    for name, listing, other in (
        ('rbl.interserver.net', '127.0.0.2', '127.0.0.3'),
        ('rbluri.interserver.net', '127.0.0.2', '127.0.0.4'),
        ('torexit.dan.me.uk', '127.0.0.100', '127.0.1.100'),
        ('fresh10.spameatingmonkey.net', '127.0.0.2', '127.0.0.10'),
    ):
        found = zone(name)
        # FRESH10's only source is a commented-out rule: queried, but not counted among the cited zones
        assert found.counted == (name != 'fresh10.spameatingmonkey.net'), name
        assert found.severity == 'warning' and not found.default, name
        assert decode(found, [listing]).verdict == 'listed', name
        decoded = decode(found, [other])
        assert decoded.verdict == 'error' and not decoded.listings, name
    for name, answer in (('bl.rbl.polspam.pl', '127.0.0.2'), ('dyna.spamrats.com', '127.0.0.37')):
        assert decode(zone(name), [answer]).verdict == 'error', (name, answer)


def test_dbl_ip_query_error_and_listing() -> None:
    dbl = zone('dbl.spamhaus.org')
    assert decode(dbl, ['127.0.1.2']).verdict == 'listed'
    decoded = decode(dbl, ['127.0.1.255'])
    assert decoded.verdict == 'error' and decoded.errors[0].code == 'ip_query'


def test_answers_outside_loopback_127_0_0_1_and_undocumented_codes_are_never_listings() -> None:
    for name in ('zen.spamhaus.org', 'bl.spameatingmonkey.net', 'multi.uribl.com', 'rep.mailspike.net'):
        for answer, error_id in (('198.51.100.7', 'not_loopback'), ('127.0.0.1', None), ('127.0.0.99', None)):
            decoded = decode(zone(name), [answer])
            assert decoded.verdict == 'error', (name, answer)
            assert not decoded.listings
            if error_id:
                assert decoded.errors[0].code == error_id
    # a listing and an error in the same answer: the whole answer is an error
    mixed = decode(zone('zen.spamhaus.org'), ['127.0.0.2', '127.255.255.254'])
    assert mixed.verdict == 'error'


def test_bitmask_decoders_uribl_surbl_and_senderscore() -> None:
    uribl = zone('multi.uribl.com')
    decoded = decode(uribl, ['127.0.0.10'])
    assert decoded.verdict == 'listed'
    assert [c.meaning.split(':')[0] for c in decoded.listings] == ['black', 'red']
    refused = decode(uribl, ['127.0.0.1'])
    assert refused.verdict == 'error' and refused.errors[0].code == 'refused'
    surbl = zone('multi.surbl.org')
    assert [c.meaning.split(':')[0] for c in decode(surbl, ['127.0.0.24']).listings] == ['PH', 'MW']
    blocked = decode(surbl, ['127.0.0.9'])  # bit 1 with a listing bit: blocked, not listed
    assert blocked.verdict == 'error' and blocked.errors[0].code == 'blocked'
    senderscore = zone('bl.score.senderscore.com')
    assert decode(senderscore, ['127.0.0.6']).verdict == 'listed'
    assert decode(senderscore, ['127.255.255.255']).errors[0].code == 'blocked'
    assert decode(senderscore, ['127.0.0.1']).verdict == 'error'


def test_score_decoders_are_scores_never_listings() -> None:
    senderscore = zone('score.senderscore.com')
    decoded = decode(senderscore, ['127.0.4.37'])
    assert (decoded.verdict, decoded.score, decoded.listings) == ('score', 37, ())
    assert decode(senderscore, ['127.255.255.255']).errors[0].code == 'blocked'
    assert decode(senderscore, ['127.0.3.37']).errors[0].code == 'undocumented'
    mailspike = zone('rep.mailspike.net')
    decoded = decode(mailspike, ['127.0.0.11'])
    assert (decoded.verdict, decoded.score, decoded.score_meaning) == ('score', 11, 'very bad reputation')
    assert decode(mailspike, ['127.0.0.21']).verdict == 'error'


def test_allowlists_are_trust_levels_never_listings() -> None:
    dnswl = zone('list.dnswl.org')
    decoded = decode(dnswl, ['127.0.15.3'])
    assert (decoded.verdict, decoded.score, decoded.listings) == ('allowlisted', 3, ())
    assert decode(dnswl, ['127.0.0.255']).errors[0].code == 'blocked'
    assert decode(dnswl, ['127.0.10.1']).errors[0].code == 'blocked'
    assert decode(zone('wl.mailspike.net'), ['127.0.0.18']).verdict == 'allowlisted'


def test_nxdomain_is_clean_and_the_test_point_must_answer_as_documented() -> None:
    zen = zone('zen.spamhaus.org')
    assert decode(zen, []).verdict == 'clean'
    assert answers_as_documented(zen, ['127.0.0.2', '127.0.0.10']) is None
    assert 'not listed' in (answers_as_documented(zen, []) or '')
    assert 'outside 127.0.0.0/8' in (answers_as_documented(zen, ['192.0.2.1']) or '')
    blocklist_de = zone('bl.blocklist.de')
    assert answers_as_documented(blocklist_de, ['127.0.0.2']) is not None  # documented test answer is .15
    assert answers_as_documented(blocklist_de, ['127.0.0.15']) is None


def test_custom_zones_are_checked_like_catalogue_ones() -> None:
    listed = {'127.0.0.2': 'listed'}
    custom = custom_zone(
        zone='rbl.example.net',
        kind='ip',
        operator='Example',
        decoder='codes',
        codes={'127.0.0.2': 'listed'},
        errors={'127.0.0.3': 'refused: queries refused', '127.0.0.4': 'plain meaning'},
    )
    assert decode(custom, ['127.0.0.2']).verdict == 'listed'
    assert [e.code for e in decode(custom, ['127.0.0.3', '127.0.0.4']).errors] == ['refused', 'custom_2']
    with pytest.raises(ValueError, match=r'outside 127\.0\.0\.0/8'):
        custom_zone(zone='rbl.example.net', kind='ip', operator='x', decoder='codes', codes={'10.0.0.2': 'x'})
    with pytest.raises(ValueError, match='never a listing'):
        custom_zone(zone='rbl.example.net', kind='ip', operator='x', decoder='bitmask', codes={'1': 'x'})
    # as the catalogue's loader: ipv6 for IP zones, host_names for domain zones
    with pytest.raises(ValueError, match='ipv6 only applies to IP zones'):
        custom_zone(zone='d.example.net', kind='domain', operator='x', decoder='codes', codes=listed, ipv6=True)
    with pytest.raises(ValueError, match='host_names only applies to domain zones'):
        custom_zone(zone='rbl.example.net', kind='ip', operator='x', decoder='codes', codes=listed, host_names=True)


# -- query names ------------------------------------------------------------------------------------------


def test_query_names() -> None:
    ipv4, ipv6, domain, *below = subjects_from(['192.0.2.10', '2001:db8::1'], ['mail.news.Example.CO.UK.'])
    assert query_prefix(ipv4) == '10.2.0.192'
    assert query_prefix(ipv6) == '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2'
    assert (domain.value, query_prefix(domain), domain.below) == ('example.co.uk', 'example.co.uk', False)
    # The names between the host and its registered domain, for the zones that list host names.
    assert [(s.value, query_prefix(s), s.below) for s in below] == [
        ('mail.news.example.co.uk', 'mail.news.example.co.uk', True),
        ('news.example.co.uk', 'news.example.co.uk', True),
    ]
    assert registered_domain('a.b.example.com') == 'example.com'
    assert registered_domain('Mail.Faß.de.') == 'xn--fa-hia.de'  # UTS 46 like resolvers, not IDNA 2003's fass.de
    assert registered_domain('x.github.io') == 'x.github.io'  # a private suffix of the list
    assert subjects_from(['::ffff:192.0.2.1'])[0].value == '192.0.2.1'


def test_bad_subjects_are_clear_errors() -> None:
    with pytest.raises(SubjectError, match='not an IP address'):
        subjects_from(['192.0.2.300'])
    with pytest.raises(SubjectError, match='public suffix'):
        subjects_from([], ['co.uk'])
    problems: list[str] = []
    assert subjects_from(['nope', '192.0.2.1'], ['-bad-.example'], problems)[0].value == '192.0.2.1'
    assert len(problems) == 2
