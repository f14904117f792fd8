"""The SPF grammar and check_host() evaluation, without a server (the served cases are in test_served_example)."""

from __future__ import annotations

import pytest

from mailinfra_agent.dns.client import Answer
from mailinfra_iac.dnscheck.spf import (
    Node,
    SpfSyntaxError,
    _mx_hosts,
    _named,
    evaluate,
    ip_address,
    ip_range,
    is_spf,
    parse,
)


@pytest.mark.parametrize(
    'record',
    [
        'v=spf1 -all',
        'v=spf1',
        'V=SPF1 IP4:192.0.2.0/24 ~ALL',
        'v=spf1 ip4:192.0.2.1 ip6:2001:db8::/32 a mx/24 a:mail.example.com/28//64 ptr ?all',
        'v=spf1 include:_spf.example.com exists:%{i}._spf.%{d} redirect=_spf.example.net',
        'v=spf1 exp=explain._spf.%{d} -all',
        'v=spf1 ip4:192.0.2.1  -all',
        'v=spf1 unknown-modifier=value -all',
        'v=spf1 include:%{l1r+-}.example.com -all',
    ],
)
def test_valid_records(record: str) -> None:
    assert len(parse(record)) == len(record.split()) - 1


@pytest.mark.parametrize(
    ('record', 'message'),
    [
        ('v=spf2 -all', 'the record does not start with "v=spf1"'),
        ('v=spf1 include -all', '"include" needs a domain'),
        ('v=spf1 include: -all', '"include:" needs a domain'),
        ('v=spf1 ip4:192.0.2.300', 'invalid address in "ip4:192.0.2.300"'),
        ('v=spf1 ip4:2001:db8::1', '"ip4:2001:db8::1": wrong address family'),
        ('v=spf1 a/33', 'prefix length out of range in "a/33"'),
        ('v=spf1 all:example.com', '"all" takes no argument: "all:example.com"'),
        ('v=spf1 redirect=a.example redirect=b.example', '"redirect=" appears twice'),
        ('v=spf1 include:%{x}.example', 'invalid macro in "include:%{x}.example"'),
        ('v=spf1 include:example', 'invalid domain "example" in "include:example"'),
        ('v=spf1 mx:mail.example.123', 'invalid domain "mail.example.123" in "mx:mail.example.123"'),
        ('v=spf1 +bogus', 'unknown mechanism "+bogus"'),
    ],
)
def test_invalid_records(record: str, message: str) -> None:
    with pytest.raises(SpfSyntaxError) as error:
        parse(record)
    assert str(error.value) == message


def test_is_spf() -> None:
    assert is_spf('v=spf1 -all') and is_spf('v=spf1') and is_spf('V=SPF1 -all')
    assert not is_spf('v=spf10 -all') and not is_spf('google-site-verification=x') and not is_spf(' v=spf1')


def _node(record: str, domain: str = 'example.com') -> Node:
    return Node(domain, parse(record))


def test_evaluation_follows_qualifiers_and_order() -> None:
    node = _node('v=spf1 -ip4:192.0.2.1 ip4:192.0.2.0/24 ~all')
    assert evaluate(node, ip_address('192.0.2.1'), [0]) == 'fail'
    assert evaluate(node, ip_address('192.0.2.2'), [0]) == 'pass'
    assert evaluate(node, ip_address('198.51.100.1'), [0]) == 'softfail'
    assert evaluate(_node('v=spf1 ip4:192.0.2.1'), ip_address('198.51.100.1'), [0]) == 'neutral'


def test_evaluation_of_include_redirect_and_unknowns() -> None:
    top = _node('v=spf1 include:a.example.com redirect=b.example.com')
    top.children = {
        0: _node('v=spf1 ip4:192.0.2.0/25 -all', 'a.example.com'),
        1: _node('v=spf1 a -all', 'b.example.com'),
    }
    top.children[1].hosts = {0: [ip_range('198.51.100.7', 32)]}
    assert evaluate(top, ip_address('192.0.2.9'), [0]) == 'pass'
    assert evaluate(top, ip_address('198.51.100.7'), [0]) == 'pass'  # include "fail" is no match
    assert evaluate(top, ip_address('203.0.113.1'), [0]) == 'fail'
    missing = _node('v=spf1 include:gone.example.com -all')
    missing.children = {0: Node('gone.example.com', error='no SPF record', outcome='none')}
    assert evaluate(missing, ip_address('192.0.2.1'), [0]) == 'permerror'
    unknown = _node('v=spf1 ip4:192.0.2.1 exists:%{i}.bl.example.com -all')
    unknown.unknown = {1}
    assert evaluate(unknown, ip_address('192.0.2.1'), [0]) == 'pass'
    assert evaluate(unknown, ip_address('192.0.2.2'), [0]) == 'unknown'


def test_evaluation_stops_after_10_lookups() -> None:
    node = _node('v=spf1 ' + ' '.join(f'a:h{n}.example.com' for n in range(11)) + ' ip4:192.0.2.1 -all')
    assert evaluate(node, ip_address('192.0.2.1'), [0]) == 'permerror'
    node = _node('v=spf1 ' + ' '.join(f'a:h{n}.example.com' for n in range(10)) + ' ip4:192.0.2.1 -all')
    assert evaluate(node, ip_address('192.0.2.1'), [0]) == 'pass'


def test_address_ranges() -> None:
    assert ip_range('192.0.2.77', 24) == (4, 0xC0000200, 0xC00002FF)
    assert ip_range('192.0.2.77') == (4, 0xC000024D, 0xC000024D)
    assert ip_range('2001:db8::1', 32)[1:] == (0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))
    for bad in ('192.0.2', '192.0.2.256', '1', 'example.com'):
        with pytest.raises(ValueError):
            ip_address(bad)
    with pytest.raises(ValueError):
        ip_range('192.0.2.1', 33)
    node = _node('v=spf1 ip6:2001:db8::/32 ip4:192.0.2.0/31 -all')
    assert evaluate(node, ip_address('192.0.2.1'), [0]) == 'pass'
    assert evaluate(node, ip_address('192.0.2.2'), [0]) == 'fail'
    assert evaluate(node, ip_address('2001:db8::5'), [0]) == 'pass'


def test_questions_a_record_leads_to_first() -> None:
    def named(*values: str) -> list[tuple[str, str]]:
        return _named(Answer('example.com', 'TXT', values))

    record = 'v=spf1 ip4:192.0.2.1 a mx:mail.example.net include:_spf.vendor.example exists:%{i}.x.example ptr ~all'
    assert named(record, 'other text') == [
        ('example.com', 'A'),
        ('mail.example.net', 'MX'),
        ('_spf.vendor.example', 'TXT'),
    ]
    assert named('v=spf1 redirect=_spf.example.net') == [('_spf.example.net', 'TXT')]
    many = 'v=spf1 ' + ' '.join(f'include:i{n}.example' for n in range(40)) + ' -all'
    assert len(named(many)) == 30  # no further than the expansion goes
    assert named('v=spf1 -all', 'v=spf1 +all') == []  # two records: a permerror, nothing to follow
    assert named('v=spf1 include') == []  # invalid
    assert _named(Answer('example.com', 'TXT', error='timeout')) == []


def test_hosts_of_mx_terms_are_asked_next() -> None:
    exchange = Answer('mail.example.net', 'MX', ('10 mx1.example.net', '20 mx2.example.net'))
    assert _mx_hosts(exchange) == [('mx1.example.net', 'A'), ('mx2.example.net', 'A')]
    many = Answer('mail.example.net', 'MX', tuple(f'10 mx{n}.example.net' for n in range(11)))
    assert _mx_hosts(many) == []  # more than 10 names: expansion asks none of them
    assert _mx_hosts(Answer('mail.example.net', 'MX', error='timeout')) == []
