"""Curated DNSBL zones: how to decode their answers, and which zones are dead.

Only answers inside 127.0.0.0/8 can be listings; 127.0.0.1 and the Spamhaus
127.255.255.x codes are errors or refusals, never listings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DnsblZone:
    """One blocklist zone and how to read it."""

    zone: str
    kind: Literal['ip', 'domain']
    operator: str
    decoder: Literal['codes', 'bitmask']
    listings: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    default: bool = True
    note: str = ''


_SPAMHAUS_ERRORS = {
    '127.255.255.252': 'typo in the zone name',
    '127.255.255.254': 'query came through a public or open resolver',
    '127.255.255.255': 'excessive number of queries',
}

CATALOGUE: tuple[DnsblZone, ...] = (
    DnsblZone(
        'zen.spamhaus.org',
        'ip',
        'Spamhaus',
        'codes',
        {
            '127.0.0.2': 'SBL',
            '127.0.0.3': 'CSS',
            '127.0.0.4': 'XBL',
            '127.0.0.9': 'DROP',
            '127.0.0.10': 'PBL (ISP)',
            '127.0.0.11': 'PBL (Spamhaus)',
            '127.0.0.30': 'BCL',
        },
        _SPAMHAUS_ERRORS,
        note='public mirrors are for non-commercial use; use DQS with a key otherwise',
    ),
    DnsblZone(
        'dbl.spamhaus.org',
        'domain',
        'Spamhaus',
        'codes',
        {
            '127.0.1.2': 'low reputation',
            '127.0.1.4': 'phish',
            '127.0.1.5': 'malware',
            '127.0.1.6': 'botnet C&C',
            '127.0.1.102': 'abused legitimate',
            '127.0.1.103': 'abused redirector',
        },
        {**_SPAMHAUS_ERRORS, '127.0.1.255': 'an IP was sent to a domain list'},
    ),
    DnsblZone('bl.spamcop.net', 'ip', 'Cisco SpamCop', 'codes', {'127.0.0.2': 'listed'}),
    DnsblZone('psbl.surriel.com', 'ip', 'PSBL', 'codes', {'127.0.0.2': 'listed'}),
    DnsblZone(
        'b.barracudacentral.org',
        'ip',
        'Barracuda',
        'codes',
        {'127.0.0.2': 'listed'},
        default=False,
        note='the querying DNS server must be registered with Barracuda',
    ),
    DnsblZone(
        'bl.mailspike.net',
        'ip',
        'Mailspike',
        'codes',
        {
            '127.0.0.2': 'zombie',
            '127.0.0.10': 'worst reputation',
            '127.0.0.11': 'very bad reputation',
            '127.0.0.12': 'bad reputation',
        },
    ),
    DnsblZone('bl.spameatingmonkey.net', 'ip', 'SEM', 'codes', {'127.0.0.2': 'listed'}),
    DnsblZone('bl.blocklist.de', 'ip', 'blocklist.de', 'codes', {'127.0.0.2': 'attack reports'}),
    DnsblZone('dnsbl.dronebl.org', 'ip', 'DroneBL', 'codes', {'127.0.0.2': 'listed'}),
    DnsblZone(
        'all.spamrats.com',
        'ip',
        'SpamRats',
        'codes',
        {'127.0.0.36': 'Dyna', '127.0.0.37': 'NoPtr', '127.0.0.38': 'Spam', '127.0.0.43': 'Auth'},
    ),
    DnsblZone(
        'dnsbl-1.uceprotect.net',
        'ip',
        'UCEPROTECT',
        'codes',
        {'127.0.0.2': 'listed (single IP)'},
        default=False,
        note='controversial; charges for express delisting',
    ),
    DnsblZone(
        'multi.surbl.org',
        'domain',
        'SURBL',
        'bitmask',
        {'4': 'DM', '8': 'PH', '16': 'MW', '32': 'CT', '64': 'ABUSE', '128': 'CR'},
        {'1': 'query blocked'},
    ),
    DnsblZone(
        'multi.uribl.com',
        'domain',
        'URIBL',
        'bitmask',
        {'2': 'black', '4': 'grey', '8': 'red'},
        {'1': 'query refused'},
    ),
)

RETIRED: dict[str, str] = {
    'dnsbl.sorbs.net': 'SORBS was decommissioned on 2024-06-05',
    'spam.dnsbl.sorbs.net': 'SORBS was decommissioned on 2024-06-05',
    'ix.dnsbl.manitu.net': 'NiX Spam was discontinued in January 2025',
    'bl.spamcannibal.org': 'the domain lapsed in 2019 and now lists the whole Internet',
    'dnsbl.ahbl.org': 'lists everything by wildcard since 2015',
    'dnsbl.njabl.org': 'closed in 2013',
    'cbl.abuseat.org': 'moved to Spamhaus; use zen.spamhaus.org',
    'db.wpbl.info': 'dead',
    'virbl.bit.nl': 'shut down in 2017',
}
"""Zones that must not be queried, with the reason."""


def by_zone() -> dict[str, DnsblZone]:
    return {zone.zone: zone for zone in CATALOGUE}


def default_zones() -> list[str]:
    return sorted(zone.zone for zone in CATALOGUE if zone.default)
