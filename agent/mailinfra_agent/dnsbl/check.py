"""Check subjects against zones through the user's resolvers, with the project's one DNS client.

Order of work: each zone's test points first (the positive one must answer as documented, the negative one
must not be listed); a zone that fails is "not working here" and its subjects are not queried: their results
are ``untrusted``, never listings. Then every (subject, zone) pair that applies, with a global concurrency
limit and a per-zone rate limit. Every failure becomes a status; nothing here raises for a bad answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..dns.client import Answer, DnsClient, UdpEngine, parse_server
from .catalogue import Zone
from .decode import Code, answers_as_documented, decode
from .query import Subject, query_prefix

log = logging.getLogger(__name__)

Status = Literal['listed', 'clean', 'error', 'untrusted', 'score', 'allowlisted', 'skipped']
TestStatus = Literal['ok', 'failed', 'none', 'skipped']
Progress = Callable[[int, int], None]

DEFAULT_CONCURRENCY = 64
DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 2
KEY_PLACEHOLDER = '<dqs-key>'

PUBLIC_RESOLVERS: Mapping[str, str] = {
    **dict.fromkeys(['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'], 'Google Public DNS'),
    **dict.fromkeys(
        ['1.1.1.1', '1.0.0.1', '1.1.1.2', '1.0.0.2', '1.1.1.3', '1.0.0.3', '2606:4700:4700::1111',
         '2606:4700:4700::1001'],
        'Cloudflare',
    ),
    **dict.fromkeys(
        ['9.9.9.9', '149.112.112.112', '9.9.9.10', '149.112.112.10', '9.9.9.11', '2620:fe::fe', '2620:fe::9'],
        'Quad9',
    ),
    **dict.fromkeys(
        ['208.67.222.222', '208.67.220.220', '208.67.222.123', '208.67.220.123', '2620:119:35::35',
         '2620:119:53::53'],
        'OpenDNS',
    ),
    **dict.fromkeys(['94.140.14.14', '94.140.15.15', '2a10:50c0::ad1:ff', '2a10:50c0::ad2:ff'], 'AdGuard DNS'),
    **dict.fromkeys(['64.6.64.6', '64.6.65.6'], 'Verisign Public DNS'),
    **dict.fromkeys(['8.26.56.26', '8.20.247.20'], 'Comodo Secure DNS'),
    **dict.fromkeys(['77.88.8.8', '77.88.8.1'], 'Yandex DNS'),
    **dict.fromkeys(['4.2.2.1', '4.2.2.2', '4.2.2.3', '4.2.2.4', '4.2.2.5', '4.2.2.6'], 'Level3 / Lumen'),
    **dict.fromkeys(['84.200.69.80', '84.200.70.40'], 'DNS.WATCH'),
    **dict.fromkeys(['185.228.168.9', '185.228.169.9'], 'CleanBrowsing'),
    **dict.fromkeys(['76.76.2.0', '76.76.10.0'], 'Control D'),
    **dict.fromkeys(['74.82.42.42'], 'Hurricane Electric'),
    **dict.fromkeys(['76.76.19.19', '76.223.122.150'], 'Alternate DNS'),
}  # fmt: skip
"""Well-known public resolvers: Spamhaus, URIBL, SURBL and others refuse them (or answer with refusal codes)."""


def public_resolvers_in(nameservers: Sequence[str]) -> list[str]:
    """Warnings for the configured nameservers that are well-known public resolvers."""
    warnings = []
    for text in nameservers:
        try:
            server = parse_server(text)
        except ValueError:
            continue
        operator = PUBLIC_RESOLVERS.get(str(ipaddress.ip_address(server.address)))
        if operator is not None:
            warnings.append(
                f'WARNING: nameserver {text} is a public resolver ({operator}). Spamhaus, URIBL, SURBL and others '
                'refuse queries from public resolvers and answer with refusal codes that careless checkers read as '
                'listings: use your own recursive resolver (the monitoring role installs unbound on 127.0.0.1).'
            )
    return warnings


def redact(text: str, key: str | None) -> str:
    """``text`` with the DQS key replaced (query names carry it)."""
    return text.replace(key, KEY_PLACEHOLDER) if key else text


@dataclass(frozen=True)
class Result:
    """One (subject, zone) pair."""

    subject: str
    subject_kind: Literal['ip', 'domain']
    zone: str
    status: Status
    query: str = ''
    """The name asked (the DQS key replaced by ``<dqs-key>``)."""
    answers: tuple[str, ...] = ()
    listings: tuple[Code, ...] = ()
    errors: tuple[Code, ...] = ()
    """``code`` is the short error id (``open_resolver``, ``timeout``, ``not_loopback`` ...)."""
    score: int | None = None
    severity: str = 'warning'
    delisting_url: str | None = None
    message: str = ''

    def to_dict(self) -> dict[str, Any]:
        return {
            'subject': self.subject,
            'subject_kind': self.subject_kind,
            'zone': self.zone,
            'status': self.status,
            'query': self.query,
            'answers': list(self.answers),
            'listings': [{'code': c.code, 'meaning': c.meaning} for c in self.listings],
            'errors': [{'id': c.code, 'meaning': c.meaning} for c in self.errors],
            'score': self.score,
            'severity': self.severity,
            'delisting_url': self.delisting_url,
            'message': self.message,
        }


@dataclass(frozen=True)
class ZoneStatus:
    zone: str
    working: bool
    test: TestStatus
    message: str = ''
    errors: Mapping[str, int] = field(default_factory=dict)
    """Error id -> how many answers (test points included) were that error in this run."""
    section: str = 'listing'
    kind: str = 'ip'
    severity: str = 'warning'

    def to_dict(self) -> dict[str, Any]:
        return {
            'zone': self.zone,
            'working': self.working,
            'test': self.test,
            'message': self.message,
            'errors': dict(sorted(self.errors.items())),
            'section': self.section,
            'kind': self.kind,
            'severity': self.severity,
        }


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    zones: tuple[ZoneStatus, ...]
    warnings: tuple[str, ...] = ()
    started: float = 0.0
    """Unix time the run started."""
    duration: float = 0.0
    subjects: tuple[Subject, ...] = ()

    @property
    def listed(self) -> tuple[Result, ...]:
        return tuple(result for result in self.results if result.status == 'listed')

    @property
    def complete(self) -> bool:
        """Every zone worked and every pair was answered."""
        return all(zone.working for zone in self.zones) and not any(
            result.status in ('error', 'untrusted', 'skipped') for result in self.results
        )

    @property
    def exit_code(self) -> int:
        """0 clean, 1 listed, 2 could not check (some zone or pair had no trustworthy answer)."""
        if self.listed:
            return 1
        return 0 if self.complete else 2

    def to_dict(self) -> dict[str, Any]:
        return {
            'started': self.started,
            'duration_seconds': round(self.duration, 3),
            'exit_code': self.exit_code,
            'warnings': list(self.warnings),
            'subjects': [{'subject': s.value, 'kind': s.kind} for s in self.subjects],
            'zones': [zone.to_dict() for zone in self.zones],
            'listed': [result.to_dict() for result in self.listed],
            'results': [result.to_dict() for result in self.results],
        }


def applies(zone: Zone, subject: Subject) -> bool:
    if zone.kind != subject.kind:
        return False
    return not subject.ipv6 or zone.ipv6


def _error_id(answer: Answer) -> tuple[str, str]:
    text = answer.error or ''
    if answer.rcode == 'SERVFAIL':
        return 'servfail', f'SERVFAIL: {text}'
    if answer.rcode == 'REFUSED':
        return 'refused', f'REFUSED: {text}'
    if 'no answer within' in text or 'timed out' in text.lower():
        return 'timeout', text
    return 'dns_error', text


class _RateLimit:
    """At most ``rate`` queries a second (spaced evenly)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self.next)
        self.next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class _Asker:
    def __init__(self, clients: Sequence[DnsClient], concurrency: int, rate_limit: float | None) -> None:
        self.clients = clients
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.rate_limit = rate_limit
        self.limits: dict[str, _RateLimit] = {}

    async def ask(self, zone: str, name: str) -> Answer:
        limit = self.limits.setdefault(zone, _RateLimit(self.rate_limit))
        await limit.wait()
        async with self.slots:
            answer = Answer(name, 'A', error='no nameserver')
            for client in self.clients:
                answer = await client.ask(name, 'A')
                if answer.ok:
                    return answer
            return answer


def _base(zone: Zone, dqs_key: str | None) -> str | None:
    """The zone name to append, or None when the zone cannot be queried (missing key)."""
    if zone.key == 'dqs':
        return f'{dqs_key}.{zone.key_zone}' if dqs_key else None
    if zone.key is not None:
        return None
    if dqs_key and zone.key_zone and zone.zone.endswith('.spamhaus.org'):
        return f'{dqs_key}.{zone.key_zone}'
    return zone.zone


def _skip_reason(zone: Zone, dqs_key: str | None) -> str:
    if zone.key == 'dqs':
        return "needs a Spamhaus DQS key (MAILINFRA_DQS_KEY or the contract's dqs_key_file): not queried"
    return f'needs a {zone.key} key, which this tool does not take: not queried'


async def check_async(
    subjects: Sequence[Subject],
    zones: Sequence[Zone],
    resolvers: DnsClient | Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    rate_limit: float | None = None,
    dqs_key: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Check every subject against every zone it applies to. ``resolvers``: nameserver texts (asked with
    recursion, in order: the next one when one fails) or a ready :class:`DnsClient`. Raises ValueError only
    for a nameserver text that is not an address."""
    started, clock = time.time(), time.perf_counter()
    warnings: list[str] = []
    engines: list[UdpEngine] = []
    if isinstance(resolvers, DnsClient):
        clients: list[DnsClient] = [resolvers]
    else:
        servers = [parse_server(text) for text in resolvers]
        warnings += public_resolvers_in(list(resolvers))
        for warning in warnings:
            log.warning('%s', warning)
        clients = []
        for server in servers:
            engine = UdpEngine(server, recursion=True, timeout=timeout, retries=retries, window=concurrency)
            try:
                await engine.start()
            except OSError as error:
                warnings.append(f'nameserver {server}: cannot be used: {error.strerror or error}')
                continue
            engines.append(engine)
            clients.append(DnsClient(engine, (), resolver=engine))
    try:
        return await _run(
            subjects, zones, clients, warnings, concurrency, rate_limit, dqs_key, progress, started, clock
        )
    finally:
        for engine in engines:
            engine.close()


async def _run(
    subjects: Sequence[Subject],
    zones: Sequence[Zone],
    clients: Sequence[DnsClient],
    warnings: list[str],
    concurrency: int,
    rate_limit: float | None,
    dqs_key: str | None,
    progress: Progress | None,
    started: float,
    clock: float,
) -> Report:
    asker = _Asker(clients, concurrency, rate_limit)
    pairs = [(subject, zone) for zone in zones for subject in subjects if applies(zone, subject)]
    queryable = {zone.zone: _base(zone, dqs_key) for zone in zones}
    if not clients:
        warnings.append('no usable nameserver: nothing was checked')
    if any(zone.key == 'dqs' for zone in zones) and not dqs_key:
        warnings.append('a selected zone needs a Spamhaus DQS key and none is configured: it is not queried')
    tests = [(zone, point, positive) for zone in zones if queryable[zone.zone] and clients for point, positive in
             ((zone.test_point, True), (_negative(zone), False)) if point]  # fmt: skip
    total = len(tests) + len(pairs)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    async def ask(zone: Zone, prefix: str) -> Answer:
        answer = await asker.ask(zone.zone, f'{prefix}.{queryable[zone.zone]}')
        tick()
        return answer

    errors: dict[str, Counter[str]] = {zone.zone: Counter() for zone in zones}
    test_answers = await asyncio.gather(*(ask(zone, point) for zone, point, _ in tests))
    failures = _judge_tests(zones, tests, test_answers, errors, dqs_key)
    working_zones = {zone.zone for zone in zones if queryable[zone.zone] and clients and not failures[zone.zone]}
    live = [(subject, zone) for subject, zone in pairs if zone.zone in working_zones]
    answers = await asyncio.gather(*(ask(zone, query_prefix(subject)) for subject, zone in live))
    answered = {(subject, zone.zone): answer for (subject, zone), answer in zip(live, answers, strict=True)}
    results = []
    for subject, zone in pairs:
        answer = answered.get((subject, zone.zone))
        if answer is None:
            results.append(_unchecked(subject, zone, queryable[zone.zone], failures[zone.zone], dqs_key))
            continue
        result = _result(subject, zone, answer, dqs_key)
        for error in result.errors:
            errors[zone.zone][error.code] += 1
        results.append(result)
    statuses = tuple(
        _zone_status(zone, queryable[zone.zone], bool(clients), failures, errors, dqs_key) for zone in zones
    )
    return Report(
        results=tuple(results),
        zones=statuses,
        warnings=tuple(warnings),
        started=started,
        duration=time.perf_counter() - clock,
        subjects=tuple(subjects),
    )


def _judge_tests(
    zones: Sequence[Zone],
    tests: Sequence[tuple[Zone, str, bool]],
    answers: Sequence[Answer],
    errors: dict[str, Counter[str]],
    dqs_key: str | None,
) -> dict[str, list[str]]:
    """Zone name -> why its test points did not answer as documented (empty: the zone works here)."""
    failures: dict[str, list[str]] = {zone.zone: [] for zone in zones}
    for (zone, point, positive), answer in zip(tests, answers, strict=True):
        if not answer.ok and answer.rcode != 'NXDOMAIN':
            error_id, text = _error_id(answer)
            errors[zone.zone][error_id] += 1
            failures[zone.zone].append(f'test point {point}: {redact(text, dqs_key)}')
            continue
        if positive:
            problem = answers_as_documented(zone, answer.values)
        else:
            decoded = decode(zone, answer.values)
            problem = None
            if decoded.errors:
                problem = 'the never-listed point answered ' + '; '.join(e.meaning for e in decoded.errors)
            elif decoded.verdict != 'clean':
                problem = (
                    f'the never-listed point answered {", ".join(answer.values)}: the zone lists everything '
                    'or the resolver rewrites answers'
                )
        if problem is not None:
            for error in decode(zone, answer.values).errors:
                errors[zone.zone][error.code] += 1
            failures[zone.zone].append(f'{point}: {problem}')
    return failures


def _negative(zone: Zone) -> str | None:
    if zone.negative_point is not None:
        return zone.negative_point
    if zone.test_point is None:
        return None
    return '1.0.0.127' if zone.kind == 'ip' else 'invalid'


def _unchecked(subject: Subject, zone: Zone, base: str | None, failures: list[str], dqs_key: str | None) -> Result:
    common: dict[str, Any] = {'severity': zone.severity, 'delisting_url': zone.delisting_url}
    if base is None:
        return Result(subject.value, subject.kind, zone.zone, 'skipped', message=_skip_reason(zone, dqs_key), **common)
    reason = '; '.join(failures) if failures else 'no usable nameserver'
    return Result(
        subject.value,
        subject.kind,
        zone.zone,
        'untrusted',
        query=redact(f'{query_prefix(subject)}.{base}', dqs_key),
        message=redact(f'zone not working here, answers not trusted: {reason}', dqs_key),
        **common,
    )


def _result(subject: Subject, zone: Zone, answer: Answer, dqs_key: str | None) -> Result:
    common: dict[str, Any] = {
        'query': redact(answer.name, dqs_key),
        'severity': zone.severity,
        'delisting_url': zone.delisting_url,
    }
    if not answer.ok and answer.rcode != 'NXDOMAIN':
        error_id, text = _error_id(answer)
        return Result(
            subject.value, subject.kind, zone.zone, 'error', errors=(Code(error_id, redact(text, dqs_key)),), **common
        )
    decoded = decode(zone, answer.values)
    message = decoded.score_meaning
    if decoded.verdict == 'error':
        message = '; '.join(error.meaning for error in decoded.errors)
    return Result(
        subject.value,
        subject.kind,
        zone.zone,
        decoded.verdict,
        answers=tuple(answer.values),
        listings=decoded.listings,
        errors=decoded.errors,
        score=decoded.score,
        message=message,
        **common,
    )


def _zone_status(
    zone: Zone,
    base: str | None,
    have_clients: bool,
    failures: Mapping[str, list[str]],
    errors: Mapping[str, Counter[str]],
    dqs_key: str | None,
) -> ZoneStatus:
    common: dict[str, Any] = {'section': zone.section, 'kind': zone.kind, 'severity': zone.severity}
    counts = dict(errors[zone.zone])
    if base is None:
        return ZoneStatus(zone.zone, False, 'skipped', _skip_reason(zone, dqs_key), counts, **common)
    if not have_clients:
        return ZoneStatus(zone.zone, False, 'skipped', 'no usable nameserver', counts, **common)
    if failures[zone.zone]:
        message = redact('zone not working here: ' + '; '.join(failures[zone.zone]), dqs_key)
        return ZoneStatus(zone.zone, False, 'failed', message, counts, **common)
    test: TestStatus = 'ok' if zone.test_point else 'none'
    if counts:
        summary = ', '.join(f'{error_id} x{count}' for error_id, count in sorted(counts.items()))
        return ZoneStatus(zone.zone, False, test, f'errors in answers: {summary}', counts, **common)
    return ZoneStatus(zone.zone, True, test, '', counts, **common)


def check(
    subjects: Sequence[Subject],
    zones: Sequence[Zone],
    resolvers: DnsClient | Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    rate_limit: float | None = None,
    dqs_key: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """:func:`check_async` in a new event loop."""
    return asyncio.run(
        check_async(
            subjects,
            zones,
            resolvers,
            concurrency=concurrency,
            timeout=timeout,
            retries=retries,
            rate_limit=rate_limit,
            dqs_key=dqs_key,
            progress=progress,
        )
    )
