"""Run every DNS check family against one or more authoritative servers.

    from mailinfra_iac import load_spec
    from mailinfra_iac.dnscheck import check_dns
    spec = load_spec('examples/newsletter-publisher.yml')
    for result in check_dns(spec, ['192.0.2.53']):
        print(result)

Each server given is checked on its own (every result names its server): it must answer
authoritatively for every name in the deployment's zones. Before any check, each server is asked for
the SOA of every zone and the resolver (if any) for one: a server that does not answer, or does not
serve a zone authoritatively, raises :class:`CannotCheck` (nothing about the DNS can be said).
Names outside those zones (third-party SPF includes, report destinations, reverse zones of provider
addresses) are asked of ``resolver`` if one is given, otherwise their checks are ``unchecked``,
which fails the report unless ``allow_unchecked``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mailinfra_agent.dns.client import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_WINDOW,
    Answer,
    DnsClient,
    Engine,
    EngineName,
    Server,
    make_engine,
    parse_server,
)

from ..batch import gc_paused
from ..dkim import KeyStore
from ..dkim.source import DkimSource, KeyStoreDkimSource
from ..facts import Facts
from ..model import Deployment
from ..problems import MailinfraError
from . import dkim, dmarc, fcrdns, receiving, spf, zonetext
from .expected import Expectations, expectations
from .results import CheckResult, report_order, shorten, summary

Family = Callable[[DnsClient, Expectations], Awaitable[list[CheckResult]]]
FAMILIES: tuple[Family, ...] = (fcrdns.check, spf.check, dkim.check, dmarc.check, receiving.check)


class CannotCheck(MailinfraError):
    """A server is unreachable or does not serve the zones: nothing about the DNS itself can be said."""


@dataclass(frozen=True, repr=False)
class DnsCheckReport:
    """The results, and what it took to get them."""

    results: list[CheckResult]
    servers: list[str]
    questions: list[tuple[str, str, str]] = field(default_factory=list)
    """Every (name, type, server) asked, once each per checked server, in the order first asked."""
    datagrams: int = 0
    """Queries sent, retries included."""
    query_seconds: float = 0.0
    """From the first question to the last answer."""
    seconds: float = 0.0
    """The whole check after the expectations were built (querying and judging)."""
    allow_unchecked: bool = False
    """Whether checks that could not run (``unchecked``) are accepted."""

    def __repr__(self) -> str:  # short: asyncio may repr the result of the task that made it
        return (
            f'DnsCheckReport({len(self.results)} results, {len(self.servers)} servers, {len(self.questions)} questions)'
        )

    @property
    def failed(self) -> bool:
        """Some check found the DNS wrong."""
        return any(result.failed for result in self.results)

    @property
    def incomplete(self) -> bool:
        """Some check could not run (and that was not allowed)."""
        return not self.allow_unchecked and any(result.unchecked for result in self.results)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.incomplete

    def summary(self) -> dict[str, int]:
        return summary(self.results)


def _server(value: str | Server) -> Server:
    return value if isinstance(value, Server) else parse_server(value)


async def check_expectations(
    expected: Expectations,
    nameservers: Sequence[str | Server],
    *,
    resolver: str | Server | None = None,
    engine: EngineName = 'fast',
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    window: int = DEFAULT_WINDOW,
    allow_unchecked: bool = False,
    zone_files: Mapping[str, str] | None = None,
) -> DnsCheckReport:
    """Check what ``expected`` describes against each of ``nameservers`` (asyncio).

    ``zone_files`` (name -> text) are the zone files as deployed, checked for what only their text
    shows (``zone-text``). Raises :class:`CannotCheck` when a server cannot be used.
    """
    servers = [_server(server) for server in nameservers]
    if not servers:
        raise ValueError('no name server to check: give at least one authoritative server address')
    started = time.perf_counter()
    engines: list[Engine] = []

    def new(server: Server, recursion: bool) -> Engine:
        made = make_engine(engine, server, recursion=recursion, timeout=timeout, retries=retries, window=window)
        engines.append(made)
        return made

    try:
        resolver_engine = new(_server(resolver), True) if resolver is not None else None
        clients = [DnsClient(new(server, False), expected.zones, resolver_engine) for server in servers]
        for made in engines:
            try:
                await made.start()
            except OSError as error:
                raise CannotCheck(f'cannot ask name server {made.server}: {error}') from None
        await _usable(clients, resolver_engine, expected.zones)
        groups = await asyncio.gather(*(family(client, expected) for client in clients for family in FAMILIES))
    finally:
        for made in engines:
            made.close()
    found = [result for group in groups for result in group]
    if zone_files:
        found += zonetext.check(zone_files)
    results = report_order(found, [str(server) for server in servers])
    questions = [question for client in clients for question in client.stats.questions]
    used = [made for made in engines if made.sent]
    first = min((made.first_sent for made in used), default=started)
    last = max((made.last_answer for made in used), default=first)
    return DnsCheckReport(
        results,
        [str(server) for server in servers],
        questions,
        sum(made.sent for made in engines),
        max(0.0, last - first),
        time.perf_counter() - started,
        allow_unchecked,
    )


def _silent(answer: Answer) -> bool:
    """No DNS answer came back at all (timeout, socket error), as opposed to an answer with an error rcode."""
    return answer.error is not None and answer.rcode == 'NOERROR' and 'not authoritative' not in answer.error


async def _usable(clients: list[DnsClient], resolver: Engine | None, zones: Sequence[str]) -> None:
    """Raise :class:`CannotCheck` unless every server serves every zone and the resolver answers."""
    problems: list[str] = []
    if resolver is not None and zones:
        answer = await resolver.submit(zones[0], 'SOA')
        if _silent(answer):
            problems.append(f'resolver {resolver.server} does not answer: {answer.error}')
    for client in clients:
        answers = await client.ask_all([(zone, 'SOA') for zone in zones])
        if answers and all(_silent(answer) for answer in answers):
            problems.append(f'name server {client.server} does not answer: {answers[0].error}')
            continue
        missing = [
            f'{zone} ({answer.error or f"no SOA, {answer.rcode}"})'
            for zone, answer in zip(zones, answers, strict=True)
            if not answer.ok or not answer.values
        ]
        if missing:
            problems.append(
                f'name server {client.server} does not serve {len(missing)} of the {len(zones)} zones '
                f'authoritatively: {shorten(missing)}'
            )
    if problems:
        raise CannotCheck('; '.join(problems))


class Spec(Protocol):
    """What the checks read of a spec: :class:`mailinfra_iac.api.Spec` is one (live checks sit below ``api``)."""

    @property
    def deployment(self) -> Deployment: ...

    @property
    def facts(self) -> Facts: ...


def run_dns_checks(
    spec: Spec,
    nameservers: Sequence[str | Server],
    *,
    dkim: DkimSource | None = None,
    addresses: dict[str, str] | None = None,
    resolver: str | Server | None = None,
    engine: EngineName = 'fast',
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    window: int = DEFAULT_WINDOW,
    allow_unchecked: bool = False,
    zone_files: Mapping[str, str] | None = None,
) -> DnsCheckReport:
    """Build the expectations of a :class:`~mailinfra_iac.api.Spec` and check them (blocking).

    ``dkim`` is the key source the renderers use (default: the key store of
    ``$MAILINFRA_KEYS_DIR`` or ``~/.local/share/mailinfra/keys``); ``addresses`` the
    ``terraform output`` addresses of allocated IPs.
    """
    dkim = dkim or KeyStoreDkimSource(KeyStore(), spec.deployment.client.name)
    expected = expectations(spec.deployment, spec.facts, dkim, addresses)
    return run_expectations(
        expected,
        nameservers,
        resolver=resolver,
        engine=engine,
        timeout=timeout,
        retries=retries,
        window=window,
        allow_unchecked=allow_unchecked,
        zone_files=zone_files,
    )


def run_expectations(
    expected: Expectations,
    nameservers: Sequence[str | Server],
    *,
    resolver: str | Server | None = None,
    engine: EngineName = 'fast',
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    window: int = DEFAULT_WINDOW,
    allow_unchecked: bool = False,
    zone_files: Mapping[str, str] | None = None,
) -> DnsCheckReport:
    """:func:`check_expectations` in its own event loop (blocking), the cyclic GC paused meanwhile.

    The check allocates a few objects per question and frees them with the client; collections
    during the check cost about 6% of it on the 1,000-IP benchmark and find nothing.
    """
    with gc_paused():
        return asyncio.run(
            check_expectations(
                expected,
                nameservers,
                resolver=resolver,
                engine=engine,
                timeout=timeout,
                retries=retries,
                window=window,
                allow_unchecked=allow_unchecked,
                zone_files=zone_files,
            )
        )


def check_dns(
    spec: Spec,
    nameservers: Sequence[str | Server],
    *,
    dkim: DkimSource | None = None,
    addresses: dict[str, str] | None = None,
    resolver: str | Server | None = None,
    engine: EngineName = 'fast',
    timeout: float = DEFAULT_TIMEOUT,
) -> list[CheckResult]:
    """Every DNS check result for ``spec`` as ``nameservers`` serve it, in report order."""
    return run_dns_checks(
        spec, nameservers, dkim=dkim, addresses=addresses, resolver=resolver, engine=engine, timeout=timeout
    ).results
