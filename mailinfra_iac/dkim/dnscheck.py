"""Check that every authoritative name server answers with the expected DKIM key record.

The check takes a callable ``answers(fqdn) -> {server: [txt, ...]}`` giving, for each server,
the TXT records it serves at ``fqdn``, each record's character-strings joined with no separator.
:class:`ServerAnswers` is such a callable: it asks a given list of name server addresses
directly (no recursive resolver, no cache), so it sees what each server really serves. It uses the
one DNS client of the project, :mod:`mailinfra_agent.dns.client`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from mailinfra_agent.dns.client import Answer, Server, UdpEngine, parse_server

from .errors import DnsQueryError, RecordFormatError, VerificationError
from .keys import record_fingerprint, record_key

__all__ = [
    'AnswersFunc',
    'CheckResult',
    'ServerAnswers',
    'check_record',
]

logger = logging.getLogger(__name__)

AnswersFunc = Callable[[str], Mapping[str, Sequence[str]]]
"""``answers(fqdn)`` -> for each server, the TXT records (strings joined) it serves at ``fqdn``.

It may raise :class:`~mailinfra_iac.dkim.errors.DnsQueryError` when servers cannot be asked.
"""


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


class ServerAnswers:
    """An :data:`AnswersFunc` asking each given name server directly, with the fast DNS client.

    * Queries go over UDP without recursion desired, with EDNS (1232-byte payload), all servers at
      once; a truncated answer is asked again over TCP (unless ``tcp_fallback`` is off).
    * NXDOMAIN or an answer without TXT record gives an empty list for that server.
    * A timeout (after the client's retries), an error code (SERVFAIL, REFUSED...) or, by default,
      an answer without the AA flag (the server is not authoritative) makes the call raise
      :class:`DnsQueryError`, after every server was asked, naming each server that failed.
    * CNAMEs in the answer are followed.
    """

    def __init__(
        self,
        nameservers: Iterable[str | Server],
        *,
        timeout: float = 3.0,
        require_authoritative: bool = True,
        tcp_fallback: bool = True,
    ) -> None:
        self.nameservers: tuple[Server, ...] = tuple(
            ns if isinstance(ns, Server) else parse_server(ns) for ns in nameservers
        )
        if not self.nameservers:
            raise ValueError('no name servers given')
        if timeout <= 0:
            raise ValueError(f'invalid timeout {timeout}, expected a positive number of seconds')
        self.timeout = timeout
        self.require_authoritative = require_authoritative
        self.tcp_fallback = tcp_fallback

    def __repr__(self) -> str:
        servers = ', '.join(str(ns) for ns in self.nameservers)
        return f'ServerAnswers([{servers}], timeout={self.timeout:g})'

    def __call__(self, fqdn: str) -> dict[str, list[str]]:
        """Ask every server for the TXT records at ``fqdn`` (strings joined, sorted)."""
        results: dict[str, list[str]] = {}
        errors: list[str] = []
        for answer in asyncio.run(self._ask(fqdn)):
            if answer.error is not None:
                errors.append(answer.error)
            else:
                results[answer.server] = sorted(answer.values)
        if errors:
            raise DnsQueryError(f'cannot check {fqdn}: ' + '; '.join(errors))
        return results

    async def _ask(self, fqdn: str) -> list[Answer]:
        engines = [
            UdpEngine(
                server,
                timeout=self.timeout,
                require_aa=self.require_authoritative,
                tcp_fallback=self.tcp_fallback,
            )
            for server in self.nameservers
        ]
        try:
            for engine in engines:
                await engine.start()
            return list(await asyncio.gather(*(engine.submit(fqdn, 'TXT') for engine in engines)))
        except OSError as error:
            return [Answer(fqdn, 'TXT', error=f'{engine.server}: query failed: {error}', server=str(engine.server))]
        finally:
            for engine in engines:
                engine.close()
