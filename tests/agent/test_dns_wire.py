"""The hand-written wire format: names out, answers in, and malformed messages refused."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode
import dns.rrset
import pytest

from mailinfra_agent.dns.wire import (
    OPT_PREFIX,
    TYPES,
    WireError,
    answer_chain,
    encode_name,
    encode_name_cached,
    encode_question,
    padding,
    parse_response,
    query_body,
    query_head,
    read_name,
    read_own,
)


def test_encode_name() -> None:
    assert encode_name('Mail.Example.com.') == b'\x04Mail\x07Example\x03com\x00'
    assert encode_name('.') == b'\x00'
    for bad in ('a..b', 'x' * 64 + '.com', '.'.join(['a' * 60] * 5), 'x' * 300):
        with pytest.raises(WireError):
            encode_name(bad)


def test_query_is_what_dnspython_reads() -> None:
    question = encode_question('_dmarc.example.com', 'TXT')
    query = dns.message.from_wire(b'\x12\x34' + query_body(question, recursion=False))
    assert query.id == 0x1234
    assert str(query.question[0]) == '_dmarc.example.com. IN TXT'
    assert query.edns == 0 and query.payload == 1232
    assert not query.flags & dns.flags.RD
    recursive = dns.message.from_wire(b'\x00\x01' + query_body(question, recursion=True))
    assert recursive.flags & dns.flags.RD


def _response(name: str, rdtype: str, *values: str, cname: str | None = None) -> tuple[bytes, bytes]:
    query = dns.message.make_query(name, rdtype)
    response = dns.message.make_response(query)
    owner = name + '.'
    if cname is not None:
        response.answer.append(dns.rrset.from_text(owner, 60, 'IN', 'CNAME', cname))
        owner = cname
    if values:
        response.answer.append(dns.rrset.from_text(owner, 60, 'IN', rdtype, *values))
    return response.to_wire(), encode_question(name, rdtype)


def test_parse_answers_and_follow_cnames() -> None:
    wire, question = _response('s1._domainkey.example.com', 'TXT', '"v=DKIM1; " "p=abc"', cname='k.example.net.')
    response = parse_response(wire, question)
    assert answer_chain(response.answers, 's1._domainkey.example.com', 16) == (('v=DKIM1; p=abc',), ['k.example.net'])
    wire, question = _response('example.com', 'MX', '10 MX1.Example.com.', '20 mx2.example.com.')
    values, _ = answer_chain(parse_response(wire, question, 'example.com').answers, 'example.com', 15)
    assert sorted(values) == ['10 mx1.example.com', '20 mx2.example.com']


def test_own_values_only_when_every_record_is_the_questions() -> None:
    wire, question = _response('s1._domainkey.example.com', 'TXT', '"v=DKIM1; " "p=abc"')
    assert parse_response(wire, question, 's1._domainkey.example.com', 16).own == ('v=DKIM1; p=abc',)
    assert parse_response(wire, question).own is None  # without qname and qtype: no shortcut
    wire, question = _response('s1._domainkey.example.com', 'TXT', '"v=DKIM1; p=abc"', cname='k.example.net.')
    response = parse_response(wire, question, 's1._domainkey.example.com', 16)
    assert response.own is None
    assert answer_chain(response.answers, 's1._domainkey.example.com', 16) == (('v=DKIM1; p=abc',), ['k.example.net'])
    wire, question = _response('nothing.example.com', 'A')
    assert parse_response(wire, question, 'nothing.example.com', 1).own == ()


def test_malformed_messages_are_refused() -> None:
    wire, question = _response('example.com', 'A', '192.0.2.1')
    with pytest.raises(WireError, match='shorter than its header'):
        parse_response(wire[:5], question)
    with pytest.raises(WireError, match='not a response'):
        parse_response(wire[:2] + bytes([wire[2] & 0x7F]) + wire[3:], question)
    with pytest.raises(WireError, match='another question'):
        parse_response(wire, encode_question('example.net', 'A'))
    with pytest.raises(WireError):
        parse_response(wire[:-2], question)  # the A record cut short
    with pytest.raises(WireError, match='compression pointer loop'):
        read_name(b'\xc0\x00', 0)


def test_read_own_is_the_fast_path_of_parse_response() -> None:
    cases = [
        ('example.com', 'MX', ('10 MX1.Example.com.', '20 mx2.example.com.')),
        ('2.0.0.127.zen.example', 'A', ('127.0.0.2', '127.0.0.4')),
        ('example.com', 'TXT', ('"v=spf1 -all"', '"two " "strings"')),
        ('1.2.0.192.in-addr.arpa', 'PTR', ('mail.example.com.',)),
        ('nothing.example.com', 'A', ()),
    ]
    for name, rdtype, values in cases:
        wire, question = _response(name, rdtype, *values)
        fast = read_own(wire, question, name, TYPES[rdtype])
        assert fast is not None
        response = parse_response(wire, question, name, TYPES[rdtype])
        assert fast == (response.flags, response.own)
    # NXDOMAIN: no records, the flags carry the rcode
    query = dns.message.make_query('listed.zone.example', 'A')
    nx = dns.message.make_response(query)
    nx.set_rcode(dns.rcode.NXDOMAIN)
    question = encode_question('listed.zone.example', 'A')
    assert read_own(nx.to_wire(), question, 'listed.zone.example', 1) == (nx.flags | 3, ())


def test_read_own_leaves_everything_unusual_to_the_general_parser() -> None:
    wire, question = _response('s1._domainkey.example.com', 'TXT', '"p=abc"', cname='k.example.net.')
    assert read_own(wire, question, 's1._domainkey.example.com', 16) is None  # a CNAME
    wire, question = _response('example.com', 'A', '192.0.2.1')
    assert read_own(wire, encode_question('example.org', 'A'), 'example.org', 1) is None  # another question
    assert read_own(wire[:-2], question, 'example.com', 1) is None  # record runs past the end
    query = b'\x12\x34' + query_body(question, recursion=True)
    assert read_own(query, question, 'example.com', 1) is None  # not a response
    assert read_own(wire[:10], question, 'example.com', 1) is None


def test_encode_name_cached_is_encode_name_with_parents_reused() -> None:
    cache: dict[str, bytes] = {}
    names = [
        'example.com', '_dmarc.example.com', 's1._domainkey.example.com', 's2._domainkey.example.com',
        '4.3.2.1.in-addr.arpa', '5.3.2.1.in-addr.arpa', 'x' * 63 + '.example.com', 'com', 'a.b.c.d.e',
    ]  # fmt: skip
    for name in names:
        assert encode_name_cached(name, cache) == encode_name(name)
    assert set(names) <= set(cache)
    # a cached parent must not let through what encode_name refuses
    long_parent = '.'.join(['a' * 63] * 3) + '.' + 'b' * 60  # 254 bytes encoded: valid
    assert encode_name_cached(long_parent, cache) == encode_name(long_parent)
    for bad in ('x' * 64 + '.example.com', 'abcd.' + long_parent, 'a..example.com', '.example.com'):
        with pytest.raises(WireError):
            encode_name_cached(bad, cache)
        assert bad not in cache
    with pytest.raises(UnicodeError):
        encode_name_cached('bücher.example.com', cache)


def test_padding_option_is_what_dnspython_reads() -> None:
    question = encode_question('example.com', 'A')
    for size in (0, 1, 37):
        query = dns.message.from_wire(b'\x12\x34' + query_head(recursion=False) + question + OPT_PREFIX + padding(size))
        [option] = query.options
        assert option.otype == dns.edns.PADDING and option.to_wire() == bytes(size)
        assert query.payload == 1232
    assert query_head(recursion=False) + question + OPT_PREFIX + b'\x00\x00' == query_body(question, recursion=False)
    for bad in (-1, 0x10000):
        with pytest.raises(ValueError, match='out of range'):
            padding(bad)
