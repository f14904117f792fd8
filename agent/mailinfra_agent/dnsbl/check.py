"""Check subjects against zones through the user's resolvers, with the project's one DNS client.

Order of work: each zone's test points first (the positive one must answer as documented, the negative one
must not be listed); a zone that fails is "not working here" and its subjects are not queried: their results
are ``untrusted``, never listings. Then every (subject, zone) pair that applies: all sent at once, at most
``concurrency`` in flight (the engine's window), or, with a per-zone rate limit, one task per pair. A pair
the first nameserver fails is asked of the next one. Every failure becomes a status; nothing here raises for a
bad answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
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
    """``text`` with the DQS key replaced (query names carry it), in any case: DNS names are case-insensitive
    and the DNS client lower-cases the names it reports."""
    return re.sub(re.escape(key), KEY_PLACEHOLDER, text, flags=re.IGNORECASE) if key else text


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
    if zone.kind != subject.kind or (subject.below and not zone.host_names):
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
    """Asks the questions of one stage through the nameservers in order (the next one only when one fails)
    and counts each final answer for the progress callback.

    Without a rate limit every question goes to the client at once and the answers are awaited in order:
    the engine's window (``concurrency`` for the engines made here) bounds the queries in flight, and no
    task, semaphore or timer is made per question. A client made here (``engine`` given) is bypassed: the
    questions go to its engine directly, which saves the client's routing and cache per question (each
    name is asked once all the same). With a rate limit, one task per question waits for its
    zone's slot and for one of ``concurrency`` places.
    """

    def __init__(
        self,
        routes: Sequence[tuple[DnsClient, UdpEngine | None]],
        concurrency: int,
        rate_limit: float | None,
        progress: Progress | None,
        total: int,
    ) -> None:
        self.routes = routes
        self.clients = [client for client, _ in routes]
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.rate_limit = rate_limit
        self.limits: dict[str, _RateLimit] = {}
        self.progress = progress
        self.total = total
        self.done = 0

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    async def ask(self, stage: Sequence[tuple[str, Sequence[str]]]) -> list[Answer]:
        """``stage``: (zone, names to ask for it); the answers, in the same order, one list for all zones."""
        if not self.clients:
            return [Answer(name, 'A', error='no nameserver') for _, names in stage for name in names]
        if self.rate_limit:
            return list(await asyncio.gather(*(self._paced(zone, name) for zone, names in stage for name in names)))
        return await self._batched([name for _, names in stage for name in names])

    async def _batched(self, names: list[str]) -> list[Answer]:
        tick = self._tick
        answers = [_UNASKED] * len(names)
        indices: Sequence[int] = range(len(names))
        for position, (client, engine) in enumerate(self.routes, 1):
            last = position == len(self.routes)
            asked = names if position == 1 else [names[index] for index in indices]
            failed: list[int] = []
            if engine is None:
                client.prefetch(zip(asked, repeat('A')))
                awaiting: Iterable[Awaitable[Answer]] = (client.ask(name, 'A') for name in asked)
            else:
                awaiting = _submit(engine, asked)
            for index, name, pending in zip(indices, asked, awaiting, strict=True):
                answer = await pending
                if answer.cname is not None and engine is not None:
                    answer = await client.ask(name, 'A')  # a CNAME left to follow: the client does that
                answers[index] = answer
                if answer.ok or last:
                    tick()
                else:
                    failed.append(index)
            if not failed:
                break
            indices = failed
        return answers

    async def _paced(self, zone: str, name: str) -> Answer:
        limit = self.limits.setdefault(zone, _RateLimit(self.rate_limit))
        await limit.wait()
        async with self.slots:
            answer = Answer(name, 'A', error='no nameserver')
            for client in self.clients:
                answer = await client.ask(name, 'A')
                if answer.ok:
                    break
        self._tick()
        return answer


_UNASKED = Answer('', 'A', error='not asked')


def _submit(engine: UdpEngine, names: Sequence[str]) -> list[asyncio.Future[Answer]]:
    """Each name sent once, in order; a future per name."""
    futures = {name: engine.submit(name, 'A') for name in dict.fromkeys(names)}
    return [futures[name] for name in names]


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
    recursion, in order: the next one when one fails) or a ready :class:`DnsClient` (without a rate limit,
    its engines' windows bound the queries in flight). Raises ValueError only for a nameserver text that is
    not an address."""
    started, clock = time.time(), time.perf_counter()
    warnings: list[str] = []
    engines: list[UdpEngine] = []
    if isinstance(resolvers, DnsClient):
        routes: list[tuple[DnsClient, UdpEngine | None]] = [(resolvers, None)]
    else:
        servers = [parse_server(text) for text in resolvers]
        warnings += public_resolvers_in(list(resolvers))
        for warning in warnings:
            log.warning('%s', warning)
        routes = []
        for server in servers:
            engine = UdpEngine(server, recursion=True, timeout=timeout, retries=retries, window=concurrency)
            try:
                await engine.start()
            except OSError as error:
                warnings.append(f'nameserver {server}: cannot be used: {error.strerror or error}')
                continue
            engines.append(engine)
            routes.append((DnsClient(engine, (), resolver=engine), engine))
    try:
        return await _run(subjects, zones, routes, warnings, concurrency, rate_limit, dqs_key, progress, started, clock)
    finally:
        for engine in engines:
            engine.close()


async def _run(
    subjects: Sequence[Subject],
    zones: Sequence[Zone],
    routes: Sequence[tuple[DnsClient, UdpEngine | None]],
    warnings: list[str],
    concurrency: int,
    rate_limit: float | None,
    dqs_key: str | None,
    progress: Progress | None,
    started: float,
    clock: float,
) -> Report:
    dqs_key = dqs_key.lower() if dqs_key else None  # as the client reports names: query fields are redacted
    queryable = {zone.zone: _base(zone, dqs_key) for zone in zones}
    clients = bool(routes)
    if not clients:
        warnings.append('no usable nameserver: nothing was checked')
    if any(zone.key == 'dqs' for zone in zones) and not dqs_key:
        warnings.append('a selected zone needs a Spamhaus DQS key and none is configured: it is not queried')
    members = _Members(subjects)
    per_zone = [(zone, members.of(zone)) for zone in zones]
    tests = [(zone, point, positive) for zone in zones if queryable[zone.zone] and clients for point, positive in
             ((zone.test_point, True), (_negative(zone), False)) if point]  # fmt: skip
    asker = _Asker(routes, concurrency, rate_limit, progress, len(tests) + sum(len(group) for _, group in per_zone))
    errors: dict[str, Counter[str]] = {zone.zone: Counter() for zone in zones}
    test_answers = await asker.ask([(zone.zone, [f'{point}.{queryable[zone.zone]}']) for zone, point, _ in tests])
    failures = _judge_tests(zones, tests, test_answers, errors, dqs_key)
    working = {zone.zone for zone in zones if queryable[zone.zone] and clients and not failures[zone.zone]}
    stage = [
        (zone.zone, [f'{prefix}.{queryable[zone.zone]}' for _, prefix in group])
        for zone, group in per_zone
        if zone.zone in working
    ]
    answers = await asker.ask(stage)
    results: list[Result] = []
    start = 0
    for zone, group in per_zone:
        if zone.zone in working:
            end = start + len(group)
            _results(zone, group, answers[start:end], dqs_key, errors[zone.zone], results)
            start = end
        else:
            _unchecked(zone, group, queryable[zone.zone], failures[zone.zone], dqs_key, results)
    statuses = tuple(_zone_status(zone, queryable[zone.zone], clients, failures, errors, dqs_key) for zone in zones)
    return Report(
        results=tuple(results),
        zones=statuses,
        warnings=tuple(warnings),
        started=started,
        duration=time.perf_counter() - clock,
        subjects=tuple(subjects),
    )


class _Members:
    """The subjects each zone applies to, in the subjects' order, with their query prefix (computed once
    per subject, and each list once per kind of zone)."""

    def __init__(self, subjects: Sequence[Subject]) -> None:
        self.subjects = [(subject, query_prefix(subject)) for subject in subjects]
        self.lists: dict[tuple[str, bool, bool], list[tuple[Subject, str]]] = {}

    def of(self, zone: Zone) -> list[tuple[Subject, str]]:
        key = (zone.kind, zone.ipv6, zone.host_names)  # every field applies() reads of the zone
        found = self.lists.get(key)
        if found is None:
            found = self.lists[key] = [item for item in self.subjects if applies(zone, item[0])]
        return found


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


def _unchecked(
    zone: Zone,
    group: Sequence[tuple[Subject, str]],
    base: str | None,
    failures: list[str],
    dqs_key: str | None,
    results: list[Result],
) -> None:
    """The results of a zone that was not queried: ``skipped`` (no key) or ``untrusted`` (not working here)."""
    name, severity, url = zone.zone, zone.severity, zone.delisting_url
    if base is None:
        reason = _skip_reason(zone, dqs_key)
        results.extend(
            Result(subject.value, subject.kind, name, 'skipped', '', (), (), (), None, severity, url, reason)
            for subject, _ in group
        )
        return
    why = '; '.join(failures) if failures else 'no usable nameserver'
    message = redact(f'zone not working here, answers not trusted: {why}', dqs_key)
    results.extend(
        Result(
            subject.value,
            subject.kind,
            name,
            'untrusted',
            redact(f'{prefix}.{base}', dqs_key),
            (),
            (),
            (),
            None,
            severity,
            url,
            message,
        )
        for subject, prefix in group
    )


def _results(
    zone: Zone,
    group: Sequence[tuple[Subject, str]],
    answers: Sequence[Answer],
    dqs_key: str | None,
    errors: Counter[str],
    results: list[Result],
) -> None:
    """One result per answer of a working zone; each distinct set of records is decoded once."""
    name, severity, url = zone.zone, zone.severity, zone.delisting_url
    decoded: dict[tuple[str, ...], tuple[Status, tuple[Code, ...], tuple[Code, ...], int | None, str]] = {}
    append = results.append
    for (subject, _), answer in zip(group, answers, strict=True):
        query = redact(answer.name, dqs_key)
        if not answer.ok and answer.rcode != 'NXDOMAIN':
            error_id, text = _error_id(answer)
            errors[error_id] += 1
            failure = (Code(error_id, redact(text, dqs_key)),)
            append(Result(subject.value, subject.kind, name, 'error', query, (), (), failure, None, severity, url, ''))
            continue
        values = tuple(answer.values)  # the same object when it is one already
        known = decoded.get(values)
        if known is None:
            verdict = decode(zone, values)
            message = verdict.score_meaning
            if verdict.verdict == 'error':
                message = '; '.join(error.meaning for error in verdict.errors)
            known = decoded[values] = (verdict.verdict, verdict.listings, verdict.errors, verdict.score, message)
        status, listings, found, score, message = known
        for error in found:
            errors[error.code] += 1
        append(
            Result(subject.value, subject.kind, name, status, query, values, listings, found, score, severity, url,
                   message)
        )  # fmt: skip


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
    reports: list[Report] = []

    async def main() -> None:
        # the report is handed over outside the task's result: asyncio.run's SIGINT handling (Python 3.11)
        # formats the main task, result included, and a repr of 40,000 results costs a tenth of a second
        reports.append(
            await check_async(
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

    asyncio.run(main())
    return reports[0]
