"""The record list comes out in Record order, and the names' types that the zone check reads match it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from mailinfra_iac.api import load_spec
from mailinfra_iac.facts.records import Record, derive_records, host_name_types, types_at

from ..conftest import AS_OF, ROOT, TEST_DKIM

EXAMPLES = sorted((ROOT / 'examples').glob('*.yml'))


@pytest.mark.parametrize('path', EXAMPLES, ids=lambda path: path.stem)
def test_records_are_in_record_order_and_name_types_agree(path: Path) -> None:
    spec = load_spec(path.relative_to(ROOT), as_of=AS_OF)
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).records
    assert len(records) > 10
    assert list(records) == sorted(records)  # the builder sorts its keys, not the records: the same order
    assert len({(r.zone, r.name, r.type) for r in records}) == len(records)
    # host_name_types builds only the records that can hold hosts, and reads their types without sorting them
    found = host_name_types(spec.deployment, spec.facts)
    types: dict[str, set[str]] = defaultdict(set)
    for record in records:
        if record.fqdn in found:
            types[record.fqdn].add(record.type)
    assert found and all(found[name] <= types[name] for name in found)
    assert any('A' in kinds for kinds in found.values())


def test_record_order_is_zone_name_type_then_values() -> None:
    """What the builder's key sort relies on: records compare by (zone, name, type, values) only."""
    first = Record('a.example', 'x', 'TXT', ('2',), 300, 'spf')
    second = Record('a.example', 'x', 'TXT', ('1',), 60, 'dkim')
    assert sorted([first, second]) == [second, first]
    assert Record('a.example', 'y', 'A', (), 1, 'a') > Record('a.example', 'x', 'TXT', (), 1, 'a')


@pytest.mark.parametrize('path', EXAMPLES, ids=lambda path: path.stem)
def test_types_at_names_agree_with_the_record_list(path: Path) -> None:
    """types_at (the tracking-hostname check) gives exactly the record list's types at the names it is asked about."""
    spec = load_spec(path.relative_to(ROOT), as_of=AS_OF)
    types: dict[str, set[str]] = defaultdict(set)
    for record in derive_records(spec.deployment, spec.facts, TEST_DKIM).records:
        if not record.zone.endswith('.arpa'):
            types[record.fqdn].add(record.type)
    names = sorted(types)
    assert types_at(spec.deployment, spec.facts, names) == types
    assert types_at(spec.deployment, spec.facts, names[::3]) == {name: types[name] for name in names[::3]}
