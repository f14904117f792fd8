"""The one conversion between the blocklist checker's ``Zone`` and the contract's ``BlocklistZone``.

The controller writes zones with :func:`zone_to_contract`; ``mailinfra-agent dnsbl check`` reads them back
with :func:`zone_from_contract`. Both directions live here so a field added to one cannot be forgotten in the
other: tests/agent/test_contract_blocklists.py round-trips every catalogue zone and custom zones.
"""

from __future__ import annotations

from dataclasses import replace

from ..dnsbl import ScoreRange, Zone, custom_zone
from .schema import BlocklistZone

__all__ = ['zone_from_contract', 'zone_to_contract']


def zone_to_contract(zone: Zone) -> BlocklistZone:
    """The contract entry of a checker zone (catalogue or custom)."""
    return BlocklistZone(
        zone=zone.zone,
        kind=zone.kind,
        operator=zone.operator,
        decoder=zone.decoder,
        listings=dict(zone.codes),
        errors={code: error.meaning for code, error in zone.errors.items()},
        error_ids={code: error.id for code, error in zone.errors.items()},
        section=zone.section,
        list_kind=zone.list_kind,
        severity=zone.severity,
        test_point=zone.test_point,
        test_answers=zone.test_answers,
        negative_point=zone.negative_point,
        delisting_url=zone.delisting_url,
        source=zone.source,
        ipv6=zone.ipv6,
        host_names=zone.host_names,
        key=zone.key,
        key_zone=zone.key_zone,
        score_network=zone.score.network if zone.score else None,
        score_min=zone.score.minimum if zone.score else 0,
        score_max=zone.score.maximum if zone.score else 255,
    )


def zone_from_contract(entry: BlocklistZone) -> Zone:
    """The checker's zone for a contract entry (raises ValueError when the entry is inconsistent).

    Catalogue-only facts that do not reach the host (``default``, ``terms``, ``note``) keep their defaults;
    a zone without a ``source`` is a custom zone."""
    errors = {
        code: f'{entry.error_ids[code]}: {meaning}' if code in entry.error_ids else meaning
        for code, meaning in entry.errors.items()
    }
    score = None
    if entry.decoder == 'score':
        if entry.score_network is None:
            raise ValueError(f'{entry.zone}: a score zone needs score_network')
        score = ScoreRange(entry.score_network, entry.score_min, entry.score_max)
    zone = custom_zone(
        zone=entry.zone,
        kind=entry.kind,
        operator=entry.operator,
        decoder=entry.decoder,
        codes=entry.listings,
        errors=errors,
        severity=entry.severity,
        test_point=entry.test_point,
        delisting_url=entry.delisting_url,
        list_kind=entry.list_kind,
        section=entry.section,
        source=entry.source,
        ipv6=entry.ipv6,
        score=score,
        host_names=entry.host_names,
    )
    return replace(
        zone,
        test_answers=entry.test_answers,
        negative_point=entry.negative_point,
        key=entry.key,
        key_zone=entry.key_zone,
        custom=not entry.source,
    )
