"""Four test zones of our own under ``dnsbl.test`` (RFC 2606), added the way a user adds custom zones.

The catalogue has fewer IPv4 listing zones than the issue's 40 (``zones.pick_zones`` says how many), so the
benchmark pads the IP zones with these. Each one is written as a ``monitoring.dnsbl.custom_zones`` entry
of the spec (the controller's ``CustomZone`` fields) and built with ``mailinfra_agent.dnsbl.custom_zone``
with the same arguments as the controller's ``mailinfra_iac.catalogue.dnsbl.custom_zone``; the test in
``tests/benchmarks/test_dnsbl_testzones.py`` checks both.

Each zone documents listing codes (exact codes or bits), error codes with their ids, a test point
(``2.0.0.127``, answered with the first listing code, or every listing bit) and the never-listed point the
checker asks for every zone with a test point (``1.0.0.127``, RFC 5782 section 5: never served, NXDOMAIN).
pydnsbl gets the same zones by name, like the catalogue's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mailinfra_agent.dnsbl import Zone, custom_zone

SUFFIX = '.dnsbl.test'
NEVER_LISTED_POINT = '1.0.0.127'
"""RFC 5782 section 5; the checker's default never-listed point for IP zones (custom zones cannot set another)."""

OPERATOR = 'mailinfra benchmark (test zone, not a real blocklist)'

CUSTOM_ZONES: tuple[dict[str, Any], ...] = (
    {
        'zone': 'codes-a.dnsbl.test',
        'kind': 'ip',
        'operator': OPERATOR,
        'decoder': 'codes',
        'listings': {
            '127.0.0.2': 'test listing: spam source',
            '127.0.0.3': 'test listing: snowshoe range',
            '127.0.0.4': 'test listing: exploited host',
        },
        'errors': {
            '127.255.255.252': 'typo_in_zone: test error, zone name typed wrong',
            '127.255.255.254': 'open_resolver: test error, query through a public resolver',
            '127.255.255.255': 'rate_limited: test error, too many queries',
        },
        'severity': 'critical',
        'test_point': '2.0.0.127',
        'delisting_url': 'https://codes-a.dnsbl.test/delist',
    },
    {
        'zone': 'codes-b.dnsbl.test',
        'kind': 'ip',
        'operator': OPERATOR,
        'decoder': 'codes',
        'listings': {
            '127.0.0.10': 'test listing: dynamic address range',
            '127.0.0.11': 'test listing: no reverse DNS',
        },
        'errors': {
            '127.0.0.1': 'refused: test error, query refused',
            '127.0.0.255': 'key_required: test error, a key is needed',
        },
        'severity': 'warning',
        'test_point': '2.0.0.127',
        'delisting_url': 'https://codes-b.dnsbl.test/delist',
    },
    {
        'zone': 'bits-a.dnsbl.test',
        'kind': 'ip',
        'operator': OPERATOR,
        'decoder': 'bitmask',
        'listings': {'2': 'test bit: spam trap hit', '4': 'test bit: phishing source', '8': 'test bit: botnet'},
        'errors': {'1': 'refused: test error bit, query refused'},
        'severity': 'critical',
        'test_point': '2.0.0.127',
        'delisting_url': 'https://bits-a.dnsbl.test/delist',
    },
    {
        'zone': 'bits-b.dnsbl.test',
        'kind': 'ip',
        'operator': OPERATOR,
        'decoder': 'bitmask',
        'listings': {
            '2': 'test bit: bulk sender',
            '4': 'test bit: complaints',
            '16': 'test bit: unsolicited bounces',
            '64': 'test bit: listed by hand',
        },
        'errors': {'1': 'refused: test error bit, query refused', '128': 'key_required: test error bit, key needed'},
        'severity': 'warning',
        'test_point': '2.0.0.127',
        'delisting_url': 'https://bits-b.dnsbl.test/delist',
    },
)


def build(entry: Mapping[str, Any]) -> Zone:
    """The checker's zone for one custom-zone entry: the arguments ``mailinfra_iac.catalogue.dnsbl.custom_zone``
    passes for a spec entry."""
    return custom_zone(
        zone=entry['zone'].lower().rstrip('.'),
        kind=entry['kind'],
        operator=entry['operator'],
        decoder=entry['decoder'],
        codes=dict(entry['listings']),
        errors=dict(entry.get('errors', {})),
        severity=entry.get('severity', 'warning'),
        test_point=entry.get('test_point'),
        delisting_url=entry.get('delisting_url'),
        ipv6=entry.get('ipv6', False),
        host_names=entry.get('host_names', False),
    )


def all_zones(entries: Iterable[Mapping[str, Any]] = CUSTOM_ZONES) -> tuple[Zone, ...]:
    return tuple(build(entry) for entry in entries)


def entries_for(zones: Sequence[Zone]) -> list[dict[str, Any]]:
    """The custom-zone entries of the given zones that are test zones (what the tools are handed)."""
    names = {zone.zone for zone in zones}
    return [dict(entry) for entry in CUSTOM_ZONES if entry['zone'] in names]


def lookup(catalogue: Any, name: str, custom: Sequence[Zone] | None = None) -> Zone | None:
    """A catalogue zone by name, else one of the test zones (``custom``: default all of them)."""
    zone: Zone | None = catalogue.get(name)
    if zone is not None:
        return zone
    return next((z for z in (all_zones() if custom is None else custom) if z.zone == name), None)
