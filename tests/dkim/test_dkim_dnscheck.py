"""The record check and the server answers function (the fast DNS client), against an in-process DNS responder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dns.rcode
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailinfra_agent.dns.client import Server, parse_server
from mailinfra_iac.dkim import (
    CheckResult,
    DnsQueryError,
    ServerAnswers,
    VerificationError,
    check_record,
    fingerprint,
    public_txt_value,
    revoked_txt_value,
)

FQDN = 's2026q4._domainkey.example.com'


def fixed(result: Mapping[str, Sequence[str]]):  # type: ignore[no-untyped-def]
    def answers(fqdn: str) -> Mapping[str, Sequence[str]]:
        assert fqdn == FQDN
        return result

    return answers


# check_record with a plain callable ------------------------------------------------------------


def test_check_passes_when_every_server_serves_the_key(rsa_key: rsa.RSAPrivateKey) -> None:
    txt = public_txt_value(rsa_key)
    result = check_record(FQDN, txt, fixed({'ns1': [txt], 'ns2': [txt.replace('; ', ';')]}))
    assert result.ok
    assert result.servers == ('ns1', 'ns2')
    assert result.expected == f'rsa key {fingerprint(rsa_key)}'
    result.raise_for_problems()


def test_check_fails_when_one_server_serves_another_key(
    rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    txt = public_txt_value(rsa_key)
    result = check_record(FQDN, txt, fixed({'ns1': [txt], 'ns2': [public_txt_value(other_rsa_key)]}))
    assert not result.ok
    assert result.problems == (
        f'ns2: serves rsa key {fingerprint(other_rsa_key)}, expected rsa key {fingerprint(rsa_key)}',
    )
    with pytest.raises(VerificationError, match=r'is not served as expected .*\n  - ns2: serves rsa key'):
        result.raise_for_problems()


@pytest.mark.parametrize(
    ('served', 'problem'),
    [
        ([], 'ns1: no TXT record at s2026q4._domainkey.example.com'),
        (['v=DKIM1; k=rsa; p='], 'ns1: serves revoked rsa record (empty p=), expected rsa key'),
        (['v=DKIM1; p=!!'], 'ns1: invalid DKIM key record: "p=" is not valid base64'),
    ],
)
def test_check_fails_on_missing_revoked_or_broken_record(
    rsa_key: rsa.RSAPrivateKey, served: list[str], problem: str
) -> None:
    result = check_record(FQDN, public_txt_value(rsa_key), fixed({'ns1': served}))
    assert len(result.problems) == 1
    assert result.problems[0].startswith(problem)


def test_check_fails_on_two_records(rsa_key: rsa.RSAPrivateKey) -> None:
    txt = public_txt_value(rsa_key)
    result = check_record(FQDN, txt, fixed({'ns1': [txt, 'v=spf1 -all']}))
    assert result.problems[0].startswith('ns1: 2 TXT records at s2026q4._domainkey.example.com')
    assert 'expected exactly one' in result.problems[0]


def test_check_fails_when_no_server_answers(rsa_key: rsa.RSAPrivateKey) -> None:
    assert check_record(FQDN, public_txt_value(rsa_key), fixed({})).problems == ('no server answered',)


def test_check_fails_when_an_expected_server_is_missing(rsa_key: rsa.RSAPrivateKey) -> None:
    txt = public_txt_value(rsa_key)
    result = check_record(FQDN, txt, fixed({'ns1': [txt]}), servers=['ns1', 'ns2'])
    assert result.problems == ('ns2: no answer',)
    assert check_record(FQDN, txt, fixed({'ns1': [txt]}), servers=['ns1']).ok


def test_check_reports_query_errors(rsa_key: rsa.RSAPrivateKey) -> None:
    def broken(fqdn: str) -> dict[str, list[str]]:
        raise DnsQueryError('cannot check it: ns1: no answer within 1s')

    result = check_record(FQDN, public_txt_value(rsa_key), broken)
    assert result.problems == ('cannot check it: ns1: no answer within 1s',)


def test_check_of_a_revocation(ed_key: ed25519.Ed25519PrivateKey) -> None:
    revoked = revoked_txt_value('ed25519')
    assert check_record(FQDN, revoked, fixed({'ns1': ['v=DKIM1; k=ed25519; p=']})).ok
    result = check_record(FQDN, revoked, fixed({'ns1': [public_txt_value(ed_key)]}))
    assert result.problems == (
        f'ns1: serves ed25519 key {fingerprint(ed_key)}, expected revoked ed25519 record (empty p=)',
    )


def test_check_result_is_plain_data() -> None:
    result = CheckResult(fqdn=FQDN, expected='x', servers=(), problems=())
    assert result.ok


# parse_server -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('192.0.2.1', Server('192.0.2.1', 53)),
        ('192.0.2.1:5353', Server('192.0.2.1', 5353)),
        ('2001:db8::1', Server('2001:db8::1', 53)),
        ('[2001:db8::1]:5353', Server('2001:db8::1', 5353)),
        ('[2001:DB8::1]', Server('2001:db8::1', 53)),
    ],
)
def test_parse_server(text: str, expected: Server) -> None:
    assert parse_server(text) == expected
    assert ServerAnswers([text, Server('127.0.0.1', 1053)]).nameservers == (expected, Server('127.0.0.1', 1053))


@pytest.mark.parametrize(
    'text',
    ['ns1.example.com', '192.0.2.1:x', '[::1]x', '192.0.2.1:0', '[::1]:70000', '192.0.2.1:5\u00b2', '[::1]:\u00b2'],
)
def test_parse_server_refused(text: str) -> None:
    with pytest.raises(ValueError, match='invalid name server'):
        parse_server(text)
    with pytest.raises(ValueError, match='invalid name server'):
        ServerAnswers([text])


def test_server_str() -> None:
    assert str(Server('192.0.2.1')) == '192.0.2.1:53'
    assert str(Server('::1', 5353)) == '[::1]:5353'


def test_answers_needs_servers_and_positive_timeout() -> None:
    with pytest.raises(ValueError, match='no name servers'):
        ServerAnswers([])
    with pytest.raises(ValueError, match='invalid timeout'):
        ServerAnswers(['127.0.0.1'], timeout=0)
    assert repr(ServerAnswers(['127.0.0.1:5353'], timeout=2)) == 'ServerAnswers([127.0.0.1:5353], timeout=2)'


# ServerAnswers against the in-process responder ---------------------------------------------


def test_answers_join_chunked_record(dns_responder: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    txt = public_txt_value(rsa_key)
    dns_responder.set_txt(FQDN, txt)  # served as two character-strings (255 + rest)
    answers = ServerAnswers([dns_responder.address], timeout=1.0)
    assert answers(FQDN) == {dns_responder.address: [txt]}
    assert check_record(FQDN, txt, answers).ok
    assert dns_responder.queries == [('udp', FQDN + '.')] * 2


def test_answers_from_two_servers_one_stale(
    dns_responder: Any, dns_responder_2: Any, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    txt = public_txt_value(rsa_key)
    dns_responder.set_txt(FQDN, txt)
    dns_responder_2.set_txt(FQDN, public_txt_value(other_rsa_key))
    answers = ServerAnswers([dns_responder.address, Server('127.0.0.1', dns_responder_2.port)], timeout=1.0)
    result = check_record(FQDN, txt, answers)
    assert [p.split(':', 2)[:2] for p in result.problems] == [['127.0.0.1', str(dns_responder_2.port)]]
    assert 'serves rsa key' in result.problems[0]


def test_answers_nxdomain_is_empty(dns_responder: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    answers = ServerAnswers([dns_responder.address], timeout=1.0)
    assert answers(FQDN) == {dns_responder.address: []}
    result = check_record(FQDN, public_txt_value(rsa_key), answers)
    assert result.problems == (f'{dns_responder.address}: no TXT record at {FQDN}',)


def test_answers_several_records(dns_responder: Any, ed_key: ed25519.Ed25519PrivateKey) -> None:
    dns_responder.set_txt(FQDN, public_txt_value(ed_key), 'v=DKIM1; k=ed25519; p=')
    answers = ServerAnswers([dns_responder.address], timeout=1.0)
    assert len(answers(FQDN)[dns_responder.address]) == 2


def test_answers_follow_cname(dns_responder: Any, ed_key: ed25519.Ed25519PrivateKey) -> None:
    txt = public_txt_value(ed_key)
    dns_responder.set_cname(FQDN, 'target.example.net')
    dns_responder.set_txt('target.example.net', txt)
    answers = ServerAnswers([dns_responder.address], timeout=1.0)
    assert answers(FQDN) == {dns_responder.address: [txt]}


def test_answers_refuse_non_authoritative(dns_responder: Any, ed_key: ed25519.Ed25519PrivateKey) -> None:
    txt = public_txt_value(ed_key)
    dns_responder.set_txt(FQDN, txt)
    dns_responder.authoritative = False
    with pytest.raises(DnsQueryError, match=r'127\.0\.0\.1:\d+ is not authoritative for .* \(no AA flag\)'):
        ServerAnswers([dns_responder.address], timeout=1.0)(FQDN)
    relaxed = ServerAnswers([dns_responder.address], timeout=1.0, require_authoritative=False)
    assert relaxed(FQDN) == {dns_responder.address: [txt]}


@pytest.mark.parametrize(('rcode', 'text'), [(dns.rcode.REFUSED, 'REFUSED'), (dns.rcode.SERVFAIL, 'SERVFAIL')])
def test_answers_report_error_codes(dns_responder: Any, rcode: dns.rcode.Rcode, text: str) -> None:
    dns_responder.rcode = rcode
    with pytest.raises(DnsQueryError, match=f'cannot check {FQDN}: 127\\.0\\.0\\.1:\\d+ answered {text}'):
        ServerAnswers([dns_responder.address], timeout=1.0)(FQDN)


def test_a_silent_server_times_out_and_alone_is_blamed(
    dns_responder: Any, dns_responder_2: Any, ed_key: ed25519.Ed25519PrivateKey
) -> None:
    dns_responder.silent = True
    dns_responder_2.set_txt(FQDN, public_txt_value(ed_key))
    answers = ServerAnswers([dns_responder.address, dns_responder_2.address], timeout=0.3)
    with pytest.raises(DnsQueryError, match=r'no answer within 0\.3s') as info:
        answers(FQDN)
    assert dns_responder_2.address not in str(info.value)  # only the silent server is blamed
    result = check_record(FQDN, public_txt_value(ed_key), answers)
    assert not result.ok and 'no answer within 0.3s' in result.problems[0]


def test_answers_retry_truncated_over_tcp(dns_responder: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    txt = public_txt_value(rsa_key)
    dns_responder.set_txt(FQDN, txt)
    dns_responder.truncate_udp = True
    assert ServerAnswers([dns_responder.address], timeout=1.0)(FQDN) == {dns_responder.address: [txt]}
    assert dns_responder.queries == [('udp', FQDN + '.'), ('tcp', FQDN + '.')]


def test_answers_without_tcp_fallback_refuse_truncated_answer(dns_responder: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    dns_responder.set_txt(FQDN, public_txt_value(rsa_key))
    dns_responder.truncate_udp = True
    answers = ServerAnswers([dns_responder.address], timeout=1.0, tcp_fallback=False)
    with pytest.raises(DnsQueryError, match='answer truncated'):
        answers(FQDN)
    assert not check_record(FQDN, public_txt_value(rsa_key), answers).ok


def test_answers_report_a_socket_error() -> None:
    with pytest.raises(DnsQueryError, match=r'cannot check .*: 255\.255\.255\.255:53: query failed: '):
        ServerAnswers(['255.255.255.255'], timeout=0.3)(FQDN)  # broadcast: connect() is refused
