"""Test zones for the DNSBL benchmark and their truth: which (subject, zone) pairs are listed, with which answer.

The zones are named like catalogue zones (``mailinfra_agent.dnsbl`` catalogue, listing section) and answer
with the codes the catalogue documents for them, including its error codes, so a checker that reads
every answer as a listing is caught. Everything is derived from a seed: the same arguments give the same
zones, subjects and truth.

Per (subject, zone) pair, drawn from ``random.Random(seed)``:

* ``listed`` (8 %): one documented listing code (``codes`` zones; 1 in 5 of them two codes in one answer,
  like ZEN's SBL + XBL) or a non-empty combination of listing bits (``bitmask`` zones);
* ``error`` (4 %, zones that document error codes): one documented error answer (Spamhaus 127.255.255.254,
  URIBL 127.0.0.1, ...);
* ``clean``: no record, the server answers NXDOMAIN.

Each zone also serves its test point with its documented answer (and never its never-listed point), so a
checker that first proves the zone works (ours does) finds it working. The zones come from the catalogue;
when it has fewer than asked, custom test zones under ``dnsbl.test`` (``testzones.py``) fill up.

Subjects: IPv4 addresses from 198.18.0.0/15 (RFC 2544, benchmarking) and registered domains under
``.example`` (RFC 2606; two labels, so reducing them to the registered domain changes nothing).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal['listed', 'error', 'clean']
LISTED_SHARE = 0.08
ERROR_SHARE = 0.04
SOA = (
    '@ 3600 IN SOA ns.bench.invalid. hostmaster.bench.invalid. 1 3600 900 1209600 300\n@ 3600 IN NS ns.bench.invalid.\n'
)


@dataclass(frozen=True)
class Truth:
    subject: str
    zone: str
    status: Status
    answers: tuple[str, ...] = ()
    """The A records the zone serves for the pair (empty when clean)."""


@dataclass(frozen=True)
class Plan:
    ip_zones: tuple[Any, ...]
    """Catalogue ``Zone`` records (``kind == 'ip'``)."""
    domain_zones: tuple[Any, ...]
    ips: tuple[str, ...]
    domains: tuple[str, ...]
    truth: dict[tuple[str, str], Truth]
    zone_texts: dict[str, str]


def subject_ips(count: int) -> tuple[str, ...]:
    base = int(ipaddress.IPv4Address('198.18.0.0'))
    return tuple(str(ipaddress.IPv4Address(base + 256 * (i // 250) + i % 250 + 1)) for i in range(count))


def subject_domains(count: int) -> tuple[str, ...]:
    return tuple(f'brand{i:04d}.example' for i in range(count))


def query_label(subject: str, kind: str) -> str:
    """The owner name inside the zone: the reversed IPv4 address, or the domain itself."""
    return '.'.join(reversed(subject.split('.'))) if kind == 'ip' else subject


def _bit_answer(bits: int) -> str:
    return f'127.0.0.{bits}'


def _listing_answers(zone: Any, rng: random.Random) -> tuple[str, ...]:
    if zone.decoder == 'bitmask':
        bits = [int(bit) for bit in zone.codes]
        chosen = rng.sample(bits, rng.randint(1, min(2, len(bits))))
        return (_bit_answer(sum(chosen)),)
    codes = sorted(zone.codes)
    if len(codes) > 1 and rng.random() < 0.2:
        return tuple(sorted(rng.sample(codes, 2)))
    return (rng.choice(codes),)


def _error_answers(zone: Any, rng: random.Random) -> tuple[str, ...]:
    code = rng.choice(sorted(zone.errors))
    # bitmask zones name error bits ('1') and may name whole answers too ('127.255.255.255')
    return (_bit_answer(int(code)),) if zone.decoder == 'bitmask' and '.' not in code else (code,)


def _test_point_answers(zone: Any) -> tuple[str, ...]:
    if zone.test_answers:
        return tuple(zone.test_answers)
    if zone.decoder == 'bitmask':
        return (_bit_answer(sum(int(bit) for bit in zone.codes)),)
    return (sorted(zone.codes)[0],)


def never_listed_point(zone: Any) -> str:
    """The name the checker asks to prove the zone does not list everything (RFC 5782 section 5)."""
    return str(zone.negative_point or ('1.0.0.127' if zone.kind == 'ip' else 'invalid'))


def usable(zone: Any) -> bool:
    """Listing zones we can serve: exact codes or bitmask, IPv4 or domain subjects."""
    return zone.section == 'listing' and zone.decoder in ('codes', 'bitmask') and bool(zone.codes)


def pick_zones(
    catalogue: Any, ip_count: int, domain_count: int, padding: Sequence[Any] = ()
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Up to ``ip_count`` IP and ``domain_count`` domain zones of the catalogue's listing section, zones with
    documented error codes first (so every error code the catalogue knows is served); when the catalogue has
    fewer, the ``padding`` zones (custom test zones, ``testzones.py``) of that kind fill up, in their order, as
    many as needed; fewer only when both run out (the benchmark's output says so)."""
    zones = [zone for zone in catalogue.listing if usable(zone)]
    ranked = sorted(zones, key=lambda zone: (not zone.errors, zones.index(zone)))
    names = {zone.zone for zone in zones}
    extra = [zone for zone in padding if usable(zone) and zone.zone not in names]
    picked = []
    for kind, count in (('ip', ip_count), ('domain', domain_count)):
        own = [zone for zone in ranked if zone.kind == kind][:count]
        picked.append(tuple(own + [zone for zone in extra if zone.kind == kind][: count - len(own)]))
    return picked[0], picked[1]


def build_plan(
    ip_zones: Sequence[Any], domain_zones: Sequence[Any], ips: Sequence[str], domains: Sequence[str], seed: int = 5737
) -> Plan:
    rng = random.Random(seed)
    truth: dict[tuple[str, str], Truth] = {}
    texts: dict[str, str] = {}
    for zones, subjects, kind in ((ip_zones, ips, 'ip'), (domain_zones, domains, 'domain')):
        for zone in zones:
            lines = [f'$ORIGIN {zone.zone}.', '$TTL 300', SOA.rstrip('\n')]
            served: set[str] = set()
            if zone.test_point:
                for answer in _test_point_answers(zone):
                    lines.append(f'{zone.test_point} 300 IN A {answer}')
                served.add(zone.test_point)
                served.add(never_listed_point(zone))  # never served: NXDOMAIN
            for subject in subjects:
                draw = rng.random()
                label = query_label(subject, kind)
                if label in served:
                    raise SystemExit(f'subject {subject} collides with a test point of {zone.zone}')
                if draw < LISTED_SHARE:
                    pair = Truth(subject, zone.zone, 'listed', _listing_answers(zone, rng))
                elif draw < LISTED_SHARE + ERROR_SHARE and zone.errors:
                    pair = Truth(subject, zone.zone, 'error', _error_answers(zone, rng))
                else:
                    pair = Truth(subject, zone.zone, 'clean')
                truth[(subject, zone.zone)] = pair
                lines += [f'{label} 300 IN A {answer}' for answer in pair.answers]
            texts[zone.zone] = '\n'.join(lines) + '\n'
    return Plan(tuple(ip_zones), tuple(domain_zones), tuple(ips), tuple(domains), truth, texts)


def truth_counts(plan: Plan) -> dict[str, int]:
    counts = {'listed': 0, 'error': 0, 'clean': 0}
    for pair in plan.truth.values():
        counts[pair.status] += 1
    return counts
