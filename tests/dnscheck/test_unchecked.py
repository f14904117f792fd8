"""Checks that cannot run are "unchecked", never a silent pass or a warning: the high-volume example's
FCrDNS, whose addresses Terraform has not allocated yet or whose PTRs are in provider zones."""

from __future__ import annotations

import asyncio

from mailinfra_iac import load_spec
from mailinfra_iac.dnscheck import CheckResult, DnsClient, Server, UdpEngine, expectations, fcrdns
from mailinfra_iac.dnscheck.expected import Expectations

from ..conftest import ROOT, TEST_DKIM

OUTSIDE = "outside the deployment's zones: not checked (give --resolver to check it)"


def _fcrdns(expected: Expectations) -> list[CheckResult]:
    async def run() -> list[CheckResult]:
        engine = UdpEngine(Server('127.0.0.1', 9), timeout=0.2, retries=0)  # never asked: no address is known
        await engine.start()
        try:
            return await fcrdns.check(DnsClient(engine, expected.zones), expected)
        finally:
            engine.close()

    return asyncio.run(run())


def test_fcrdns_that_cannot_run_is_unchecked() -> None:
    spec = load_spec(ROOT / 'examples' / 'high-volume-powermta.yml')
    expected = expectations(spec.deployment, spec.facts, TEST_DKIM)
    results = _fcrdns(expected)
    assert len(results) == 16
    assert {r.status for r in results} == {'unchecked'}
    not_allocated = [r for r in results if r.reason.startswith('address not known yet (allocated by Terraform)')]
    provider_ptr = [r for r in results if r.reason.endswith(OUTSIDE)]
    assert not_allocated and provider_ptr and len(not_allocated) + len(provider_ptr) == 16
