"""Ask every expected (name, type) of a resolver, once, concurrently, and compare."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..contract import DnsExpectation
from ..dns.client import Answer, DnsClient, Server, UdpEngine
from .compare import CHECKS, compare


@dataclass(frozen=True)
class RecordResult:
    name: str
    type: str
    check: str
    ok: bool
    reason: str
    server: str


@dataclass
class DriftReport:
    results: list[RecordResult] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)
    finished: float = 0.0
    """Wall-clock time (epoch seconds) the run ended."""
    seconds: float = 0.0
    error: str | None = None
    """Set when the run could not check at all (every resolver failed, or no expectation)."""

    @property
    def drifted(self) -> list[RecordResult]:
        return [result for result in self.results if not result.ok]

    @property
    def success(self) -> bool:
        """The run checked: at least one resolver answered (drift found or not)."""
        return self.error is None


def _unusable(answers: Sequence[Answer]) -> bool:
    """Every question failed (timeouts, REFUSED, SERVFAIL): this resolver tells us nothing."""
    return bool(answers) and all(answer.error is not None for answer in answers)


async def _ask(server: Server, questions: list[tuple[str, str]], timeout: float, window: int) -> list[Answer]:
    engine = UdpEngine(server, recursion=True, timeout=timeout, window=window)
    await engine.start()
    try:
        client = DnsClient(engine, (), resolver=engine)
        return await client.ask_all(questions)
    finally:
        engine.close()


async def _check(
    expectations: Sequence[DnsExpectation], servers: Sequence[Server], timeout: float, window: int
) -> DriftReport:
    started = time.perf_counter()
    report = DriftReport(servers=[str(server) for server in servers])
    if not expectations:
        report.error = 'the contract lists no DNS expectations (dns_expectations is empty: not a monitoring host?)'
        return report
    questions = [(expected.name, expected.type) for expected in expectations]
    last_error = ''
    for server in servers:  # the first resolver that answers; the next only when one is unusable
        try:
            answers = await _ask(server, questions, timeout, window)
        except OSError as error:
            last_error = f'{server}: {error}'
            continue
        if _unusable(answers):
            last_error = f'{server}: {answers[0].error}'
            continue
        for expected, answer in zip(expectations, answers, strict=True):
            outcome = compare(expected, answer)
            check = expected.check if expected.check in CHECKS else 'other'
            report.results.append(
                RecordResult(expected.name, expected.type, check, outcome.ok, outcome.reason, str(server))
            )
        break
    else:
        report.error = f'no resolver answered ({last_error})'
    report.seconds = time.perf_counter() - started
    return report


def check_drift(
    expectations: Sequence[DnsExpectation], servers: Sequence[Server], *, timeout: float = 2.0, window: int = 64
) -> DriftReport:
    """Compare every expectation with the answers of the first resolver that answers."""
    if not servers:
        raise ValueError('at least one resolver is needed')
    report = asyncio.run(_check(expectations, servers, timeout, window))
    report.finished = time.time()
    return report
