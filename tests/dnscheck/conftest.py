"""One real Knot server for the whole session, serving the newsletter example's zones, and a fixture
that changes records in it (rewrite the zone file, blocking reload) and puts them back afterwards."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from mailinfra_iac import Spec, load_spec
from mailinfra_iac.dnscheck import CheckResult, run_dns_checks
from mailinfra_iac.dnscheck.runner import DnsCheckReport
from mailinfra_iac.facts.records import Record, derive_records, served_delegations
from mailinfra_iac.render.zonefile import zone_files, zone_text

from ..conftest import ROOT, TEST_DKIM
from ..dnsserver.knot import KnotError, KnotNotInstalled, KnotServer

EXAMPLE = ROOT / 'examples' / 'newsletter-publisher.yml'
STUB_SPF = 'v=spf1 ip4:192.0.2.0/24 ~all'
EXTERNAL: dict[str, list[Record]] = {
    # Zones outside the deployment, served by the same Knot to stand in for "the rest of the DNS"
    # when a test passes --resolver. Stubs on loopback only; the addresses are RFC 5737.
    '_spf.google.com': [Record('_spf.google.com', '@', 'TXT', (STUB_SPF,), 3600, 'spf')],
    'dmarc-vendor.example': [],
}
TTL = 3600
STUB_NS = ['ns1.dailybrief.example']
"""The NS of the stub zones (a zone file needs one; the stubs' own names are never asked)."""


def start_knot(zones: dict[str, str], **options: Any) -> KnotServer:
    """Start Knot or fail the test run with the reason (never skip: the DNS checks need a real server)."""
    try:
        return KnotServer(zones, **options).start()
    except KnotNotInstalled as error:
        pytest.fail(f'{error}. The DNS check tests need a real authoritative server.', pytrace=False)
    except KnotError as error:
        pytest.fail(f'Knot DNS did not start: {error}', pytrace=False)


@dataclasses.dataclass
class Served:
    """The example as the session's Knot serves it; ``change`` edits record sets in the real server."""

    knot: KnotServer
    spec: Spec
    base: dict[str, list[Record]]
    nameservers: dict[str, list[str]]

    @property
    def server(self) -> str:
        return self.knot.nameserver

    def texts(self, zones: dict[str, list[Record]]) -> dict[str, str]:
        return {
            zone: zone_text(zone, records, self.nameservers.get(zone, STUB_NS), TTL) for zone, records in zones.items()
        }

    def locate(self, fqdn: str) -> tuple[str, str]:
        for zone in sorted(self.base, key=len, reverse=True):
            if fqdn == zone:
                return zone, '@'
            if fqdn.endswith('.' + zone):
                return zone, fqdn[: -len(zone) - 1]
        raise KeyError(f'{fqdn} is in no served zone')

    def change(self, changes: Mapping[tuple[str, str], tuple[str, ...] | None]) -> None:
        """``{(fqdn, type): values}`` replaces (or adds) a record set, ``None`` removes it; one reload."""
        zones = {zone: list(records) for zone, records in self.base.items()}
        for (fqdn, rtype), values in changes.items():
            zone, name = self.locate(fqdn)
            kept = [record for record in zones[zone] if (record.name, record.type) != (name, rtype)]
            if len(kept) == len(zones[zone]) and values is None:
                raise KeyError(f'no {rtype} record at {fqdn} to remove')
            if values is not None:
                kept.append(Record(zone, name, rtype, values, TTL, 'test'))
            zones[zone] = kept
        self.knot.set_zones(self.texts(zones))

    def restore(self) -> None:
        self.knot.set_zones(self.texts(self.base))

    def report(self, *, resolver: bool = False, **options: Any) -> DnsCheckReport:
        return run_dns_checks(
            self.spec, [self.server], dkim=TEST_DKIM, resolver=self.server if resolver else None, **options
        )

    def check(self, *, resolver: bool = False, **options: Any) -> list[CheckResult]:
        return self.report(resolver=resolver, **options).results


@pytest.fixture(scope='session')
def example_spec() -> Spec:
    return load_spec(EXAMPLE)


@pytest.fixture(scope='session')
def example_zones(example_spec: Spec) -> dict[str, str]:
    """The example's zone files exactly as the exporter writes them."""
    records = derive_records(example_spec.deployment, example_spec.facts, TEST_DKIM)
    nameservers = {zone.name: list(zone.nameservers) for zone in example_spec.deployment.dns.zones}
    return zone_files(
        records, nameservers, example_spec.deployment.dns.ttl, delegations=served_delegations(example_spec.deployment)
    )


@pytest.fixture(scope='session')
def knot(example_spec: Spec, example_zones: dict[str, str]) -> Iterator[KnotServer]:
    stubs = {zone: zone_text(zone, records, STUB_NS, TTL) for zone, records in EXTERNAL.items()}
    server = start_knot({**example_zones, **stubs})
    yield server
    server.stop()


@pytest.fixture(scope='session')
def session_served(knot: KnotServer, example_spec: Spec) -> Served:
    records = derive_records(example_spec.deployment, example_spec.facts, TEST_DKIM)
    base = {zone: list(zone_records) for zone, zone_records in records.by_zone().items()}
    base.update({zone: list(zone_records) for zone, zone_records in EXTERNAL.items()})
    nameservers = {zone.name: list(zone.nameservers) for zone in example_spec.deployment.dns.zones}
    served = Served(knot, example_spec, base, nameservers)
    assert served.texts({zone: base[zone] for zone in records.by_zone()}) == {
        zone: text for zone, text in knot.zones.items() if zone not in EXTERNAL
    }, 'the fixture must serve exactly what the zone exporter writes'
    return served


@pytest.fixture
def served(session_served: Served) -> Iterator[Served]:
    """The served example; whatever a test changes is reloaded back afterwards."""
    yield session_served
    session_served.restore()


@pytest.fixture(scope='session')
def baseline(session_served: Served) -> dict[tuple[str, str], str]:
    return statuses(session_served.check())


def statuses(results: list[CheckResult]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for result in results:
        key = (result.check, result.subject)
        assert key not in found, f'two results for {key}'
        found[key] = result.status
    return found


def changed(before: dict[tuple[str, str], str], results: list[CheckResult]) -> dict[tuple[str, str], str]:
    """What differs from ``before``: (check, subject) -> new status, or 'absent' for a result that went away."""
    after = statuses(results)
    diff = {key: after.get(key, 'absent') for key in before if after.get(key, 'absent') != before[key]}
    diff.update({key: status for key, status in after.items() if key not in before})
    return diff


def reason(results: list[CheckResult], check: str, subject: str) -> str:
    return next(result.reason for result in results if (result.check, result.subject) == (check, subject))
