"""The DNSBL benchmark's custom test zones (benchmarks/dnsbl/testzones.py) and how they pad the catalogue.

They must be what a user could write under ``monitoring.dnsbl.custom_zones`` (the spec model accepts them and
the controller builds the same zones), be named as test zones, and be served by the benchmark with their test
point answering and their never-listed point not served.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mailinfra_agent.dnsbl.catalogue import load_catalogue
from mailinfra_agent.dnsbl.decode import decode
from mailinfra_iac.catalogue.dnsbl import custom_zone
from mailinfra_iac.model.monitoring import CustomZone

BENCH = Path(__file__).resolve().parents[2] / 'benchmarks' / 'dnsbl'


def _module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f'dnsbl_bench_{name}', BENCH / f'{name}.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


testzones = _module('testzones')
zones = _module('zones')


@pytest.mark.parametrize('entry', testzones.CUSTOM_ZONES, ids=lambda entry: entry['zone'])
def test_test_zone_is_a_spec_custom_zone_built_as_the_controller_builds_it(entry: dict[str, object]) -> None:
    spec_zone = CustomZone.model_validate(entry)
    built = testzones.build(entry)
    assert built == custom_zone(spec_zone)
    assert built.custom and built.zone.endswith('.dnsbl.test') and load_catalogue().get(built.zone) is None
    assert built.codes and built.errors and built.test_point == '2.0.0.127'


def test_spec_model_refuses_a_broken_entry() -> None:
    broken = {**testzones.CUSTOM_ZONES[0], 'listings': {}}
    with pytest.raises(ValueError):
        CustomZone.model_validate(broken)


def test_test_zones_decode_their_codes_and_errors() -> None:
    for zone in testzones.all_zones():
        bits = zone.decoder == 'bitmask'
        for code in zone.codes:
            assert decode(zone, [f'127.0.0.{code}' if bits else code]).verdict == 'listed', (zone.zone, code)
        for code in zone.errors:
            assert decode(zone, [f'127.0.0.{code}' if bits else code]).verdict == 'error', (zone.zone, code)


def test_padding_fills_up_only_what_the_catalogue_lacks() -> None:
    catalogue = load_catalogue()
    padding = testzones.all_zones()
    own_ip, own_domain = zones.pick_zones(catalogue, 1000, 1000)
    ip_zones, domain_zones = zones.pick_zones(catalogue, len(own_ip) + 2, len(own_domain), padding)
    assert ip_zones[: len(own_ip)] == own_ip and domain_zones == own_domain
    assert [zone.zone for zone in ip_zones[len(own_ip) :]] == [zone.zone for zone in padding[:2]]
    assert zones.pick_zones(catalogue, len(own_ip), len(own_domain), padding) == (own_ip, own_domain)
    short, _ = zones.pick_zones(catalogue, len(own_ip) + 10, 0, padding)
    assert len(short) == len(own_ip) + len(padding)


def test_plan_serves_the_test_point_and_never_the_never_listed_point() -> None:
    padding = testzones.all_zones()
    plan = zones.build_plan(padding, (), zones.subject_ips(200), ())
    for zone in padding:
        text = plan.zone_texts[zone.zone]
        assert f'\n{zone.test_point} 300 IN A ' in text
        assert f'\n{testzones.NEVER_LISTED_POINT} ' not in text
        statuses = {pair.status for (_, name), pair in plan.truth.items() if name == zone.zone}
        assert statuses == {'listed', 'error', 'clean'}, zone.zone
    assert testzones.entries_for(padding[:1]) == [testzones.CUSTOM_ZONES[0]]
