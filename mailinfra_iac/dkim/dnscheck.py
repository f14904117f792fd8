"""Check that every authoritative name server answers with the expected DKIM key record.

The check takes a callable ``answers(fqdn) -> {server: [txt, ...]}`` giving, for each server,
the TXT records it serves at ``fqdn``, each record's character-strings joined with no separator.
:class:`DnspythonAnswers` is such a callable: it asks a given list of name server addresses
directly (no recursive resolver, no cache), so it sees what each server really serves.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .errors import DnsQueryError, RecordFormatError, VerificationError
from .keys import record_fingerprint, record_key

__all__ = [
    'AnswersFunc',
    'CheckResult',
    'DnspythonAnswers',
    'Nameserver',
    'check_record',
    'parse_nameserver',
]

logger = logging.getLogger(__name__)

AnswersFunc = Callable[[str], Mapping[str, Sequence[str]]]
"""``answers(fqdn)`` -> for each server, the TXT records (strings joined) it serves at ``fqdn``.

It may raise :class:`~mailinfra_iac.dkim.errors.DnsQueryError` when servers cannot be asked.
"""

_MAX_CNAME_CHAIN = 8


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_record`."""

    fqdn: str
    expected: str
    """``<algorithm> key sha256:...`` or ``revoked record (empty p=)``."""
    servers: tuple[str, ...]
    """Servers that answered, sorted."""
    problems: tuple[str, ...]
    """One line per problem; empty when every server serves the expected record."""

    @property
    def ok(self) -> bool:
        """True when there are no problems."""
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`VerificationError` listing the problems, if any."""
        if self.problems:
            lines = '\n'.join(f'  - {problem}' for problem in self.problems)
            raise VerificationError(f'{self.fqdn} is not served as expected ({self.expected}):\n{lines}')


def _describe(value: str) -> str:
    try:
        algorithm, _ = record_key(value)
        found = record_fingerprint(value)
    except RecordFormatError as error:
        return str(error)
    if found is None:
        return f'revoked {algorithm.value} record (empty p=)'
    return f'{algorithm.value} key {found}'


def check_record(
    fqdn: str,
    expected_txt: str,
    answers: AnswersFunc,
    *,
    servers: Iterable[str] | None = None,
) -> CheckResult:
    """Check that each server answers ``fqdn`` with exactly one TXT record publishing the same key.

    Records are compared by key type and decoded ``p=`` (so spacing, tag order and extra tags do
    not matter); an expected revoked record (empty ``p=``) checks a revocation.

    Args:
        fqdn: ``<selector>._domainkey.<domain>``.
        expected_txt: the record that should be served.
        answers: see :data:`AnswersFunc`.
        servers: if given, each of these must be among the servers that answered.
    """
    expected_key = record_key(expected_txt)
    expected = _describe(expected_txt)
    problems: list[str] = []
    try:
        result = dict(answers(fqdn))
    except DnsQueryError as error:
        result = {}
        problems.append(str(error))
    if not result and not problems:
        problems.append('no server answered')
    for server in sorted(set(servers or ()) - set(result)):
        problems.append(f'{server}: no answer')
    for server in sorted(result):
        records = list(result[server])
        if not records:
            problems.append(f'{server}: no TXT record at {fqdn}')
        elif len(records) > 1:
            found = ', '.join(_describe(r) for r in records)
            problems.append(
                f'{server}: {len(records)} TXT records at {fqdn} ({found}), expected exactly one; '
                'verifiers fail on several'
            )
        else:
            try:
                matches = record_key(records[0]) == expected_key
            except RecordFormatError as error:
                problems.append(f'{server}: {error}')
                continue
            if not matches:
                problems.append(f'{server}: serves {_describe(records[0])}, expected {expected}')
    outcome = CheckResult(fqdn=fqdn, expected=expected, servers=tuple(sorted(result)), problems=tuple(problems))
    logger.info('checked %s on %d server(s): %s', fqdn, len(result), 'ok' if outcome.ok else 'problems')
    return outcome


@dataclass(frozen=True)
class Nameserver:
    """A name server address and port."""

    address: str
    port: int = 53

    def __str__(self) -> str:
        if ':' in self.address:
            return f'[{self.address}]:{self.port}'
        return f'{self.address}:{self.port}'


def parse_nameserver(value: str | tuple[str, int] | Nameserver) -> Nameserver:
    """Parse ``"192.0.2.1"``, ``"192.0.2.1:5353"``, ``"2001:db8::1"``, ``"[2001:db8::1]:5353"``
    or an ``(address, port)`` pair. Only IP addresses: resolve server names beforehand.
    """
    if isinstance(value, Nameserver):
        return value
    if isinstance(value, tuple):
        address, port = value
    else:
        text = value.strip()
        port = 53
        if text.startswith('['):
            address, _, rest = text[1:].partition(']')
            if rest:
                if not rest.startswith(':') or not rest[1:].isdigit():
                    raise ValueError(f'invalid name server "{value}", expected "[address]:port"')
                port = int(rest[1:])
        elif text.count(':') == 1:
            address, _, port_text = text.partition(':')
            if not port_text.isdigit():
                raise ValueError(f'invalid name server "{value}", expected "address:port"')
            port = int(port_text)
        else:
            address = text
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(f'invalid name server "{value}", expected an IP address (and port)') from None
    if not 1 <= int(port) <= 65535:
        raise ValueError(f'invalid name server "{value}": port {port} out of range')
    return Nameserver(address, int(port))


class DnspythonAnswers:
    """An :data:`AnswersFunc` asking each given name server directly with dnspython.

    * Queries go over UDP without recursion desired, with EDNS (1232-byte payload); a
      truncated answer is asked again over TCP.
    * NXDOMAIN or an answer without TXT record gives an empty list for that server.
    * A timeout, an error code (SERVFAIL, REFUSED...) or, by default, an answer without the AA
      flag (the server is not authoritative) makes the call raise :class:`DnsQueryError`, after
      every server was asked, naming each server that failed.
    * CNAMEs in the answer are followed.
    """

    def __init__(
        self,
        nameservers: Iterable[str | tuple[str, int] | Nameserver],
        *,
        timeout: float = 3.0,
        require_authoritative: bool = True,
        tcp_fallback: bool = True,
    ) -> None:
        self.nameservers: tuple[Nameserver, ...] = tuple(parse_nameserver(ns) for ns in nameservers)
        if not self.nameservers:
            raise ValueError('no name servers given')
        if timeout <= 0:
            raise ValueError(f'invalid timeout {timeout}, expected a positive number of seconds')
        self.timeout = timeout
        self.require_authoritative = require_authoritative
        self.tcp_fallback = tcp_fallback

    def __repr__(self) -> str:
        servers = ', '.join(str(ns) for ns in self.nameservers)
        return f'DnspythonAnswers([{servers}], timeout={self.timeout:g})'

    def __call__(self, fqdn: str) -> dict[str, list[str]]:
        """Ask every server for the TXT records at ``fqdn``."""
        results: dict[str, list[str]] = {}
        errors: list[str] = []
        for server in self.nameservers:
            try:
                results[str(server)] = self.query(server, fqdn)
            except DnsQueryError as error:
                errors.append(f'{server}: {error}')
        if errors:
            raise DnsQueryError(f'cannot check {fqdn}: ' + '; '.join(errors))
        return results

    def query(self, server: Nameserver, fqdn: str) -> list[str]:
        """The TXT records one server serves at ``fqdn`` (strings joined), sorted."""
        qname = dns.name.from_text(fqdn)
        query = dns.message.make_query(qname, dns.rdatatype.TXT, use_edns=0, payload=1232)
        query.flags &= ~dns.flags.RD
        try:
            if self.tcp_fallback:
                response, _ = dns.query.udp_with_fallback(query, server.address, timeout=self.timeout, port=server.port)
            else:
                response = dns.query.udp(query, server.address, timeout=self.timeout, port=server.port)
        except dns.exception.Timeout:
            raise DnsQueryError(f'no answer within {self.timeout:g}s') from None
        except (OSError, dns.exception.DNSException) as error:
            raise DnsQueryError(f'query failed: {error}') from None
        if response.flags & dns.flags.TC:
            raise DnsQueryError('answer truncated (TC flag) and the TCP fallback is off')
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise DnsQueryError(f'answered {dns.rcode.to_text(rcode)}')
        if self.require_authoritative and not response.flags & dns.flags.AA:
            raise DnsQueryError('answer is not authoritative (no AA flag): is this a resolver?')
        if rcode == dns.rcode.NXDOMAIN:
            return []
        return _txt_values(response, qname)


def _txt_values(response: dns.message.Message, qname: dns.name.Name) -> list[str]:
    name = qname
    for _ in range(_MAX_CNAME_CHAIN):
        txt = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.TXT)
        if txt is not None:
            return sorted(b''.join(rdata.strings).decode('utf-8', 'replace') for rdata in txt)
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None:
            return []
        name = cname[0].target
    return []
