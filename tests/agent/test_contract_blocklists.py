"""The blocklist zone conversion both sides share: every zone survives controller -> contract -> host."""

from __future__ import annotations

import dataclasses

import pytest

from mailinfra_agent.contract import BlocklistZone
from mailinfra_agent.contract.blocklists import zone_from_contract, zone_to_contract
from mailinfra_agent.dnsbl import ScoreRange, Zone, custom_zone, load_catalogue

HOST_SIDE_ONLY = ('default', 'terms', 'terms_note', 'note', 'codes_documented')
"""Catalogue facts the checker never needs, so the contract does not carry them."""


def _comparable(zone: Zone) -> dict[str, object]:
    data = {field.name: getattr(zone, field.name) for field in dataclasses.fields(zone)}
    for name in HOST_SIDE_ONLY:
        data.pop(name)
    data['codes'] = dict(zone.codes)
    data['errors'] = {code: (error.id, error.meaning) for code, error in zone.errors.items()}
    return data


@pytest.mark.parametrize('zone', load_catalogue().zones, ids=lambda zone: zone.zone)
def test_every_catalogue_zone_round_trips(zone: Zone) -> None:
    back = zone_from_contract(zone_to_contract(zone))
    assert _comparable(back) == _comparable(zone)
    assert back.custom is False


def test_a_custom_zone_round_trips_with_its_error_ids() -> None:
    zone = custom_zone(
        zone='bl.example.test',
        kind='ip',
        operator='Example',
        decoder='codes',
        codes={'127.0.0.2': 'listed'},
        errors={'127.255.255.254': 'refused: query via a public resolver'},
        test_point='2.0.0.127',
    )
    entry = zone_to_contract(zone)
    assert entry.error_ids == {'127.255.255.254': 'refused'}
    back = zone_from_contract(entry)
    assert _comparable(back) == _comparable(zone)
    assert back.custom is True


def test_a_score_zone_keeps_its_range() -> None:
    zone = dataclasses.replace(
        custom_zone(
            zone='score.example.test',
            kind='ip',
            operator='Example',
            decoder='score',
            codes={},
            score=ScoreRange('127.0.1.0/24', 0, 100),
        ),
        source='https://example.test/codes',
    )
    entry = zone_to_contract(zone)
    assert (entry.score_network, entry.score_min, entry.score_max) == ('127.0.1.0/24', 0, 100)
    assert zone_from_contract(entry).score == zone.score


def test_an_inconsistent_entry_is_refused() -> None:
    entry = BlocklistZone(zone='score.example.test', kind='ip', operator='x', decoder='score', listings={}, errors={})
    with pytest.raises(ValueError, match='needs score_network'):
        zone_from_contract(entry)
