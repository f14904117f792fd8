"""The API as a script calls it: values the type hints accept work, wrong ones fail with a clear error."""

from __future__ import annotations

import datetime as dt

import pytest

from mailinfra_iac import SpecInvalid, load_spec, parse_spec, render_files, validate

from .conftest import AS_OF, BASE, ROOT, TEST_DKIM


def test_as_of_takes_a_datetime_as_its_day() -> None:
    # a datetime is a date for the type hints (and mypy), but it neither subtracts from nor compares with one
    moment = dt.datetime(AS_OF.year, AS_OF.month, AS_OF.day, 23, 59, tzinfo=dt.UTC)
    spec = parse_spec(BASE, 'spec.yml', as_of=moment)
    assert spec.facts.as_of == AS_OF and type(spec.facts.as_of) is dt.date
    assert spec.facts == parse_spec(BASE, 'spec.yml', as_of=AS_OF).facts
    example = ROOT / 'examples' / 'newsletter-publisher.yml'
    assert validate(example, as_of=moment) == validate(example, as_of=AS_OF)


@pytest.mark.parametrize('as_of', ['2026-11-28', 20261128])
def test_as_of_of_another_type_is_a_clear_error(as_of: object) -> None:
    with pytest.raises(TypeError, match=f'as_of must be a datetime.date, not {type(as_of).__name__}'):
        load_spec(ROOT / 'examples' / 'saas-transactional.yml', as_of=as_of)  # type: ignore[arg-type]


def test_one_renderer_named_by_a_string() -> None:
    # a str is an Iterable[str] for the type hints: its letters were taken for renderer names
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    assert render_files(spec, renderers='inventory') == render_files(spec, renderers=['inventory'])
    with pytest.raises(ValueError, match='^unknown renderer' r'\(s\) inventoryy; known: '):
        render_files(spec, renderers='inventoryy')


@pytest.mark.parametrize(
    ('address', 'words'),
    [
        ('not-an-ip', 'is not an IPv4 address'),
        (5, 'is not an IPv4 address'),
        ('2001:db8::1', 'is not an IPv4 address'),
        ('10.0.0.1', 'is a private address'),
    ],
)
def test_allocated_addresses_are_checked_like_the_cli(address: object, words: str) -> None:
    # render_files(addresses=...) took anything: ValueError from ipaddress, TypeError from records.py, or a
    # private address published in DNS, where `mailinfra render --terraform-output` refuses them
    spec = load_spec(ROOT / 'examples' / 'high-volume-powermta.yml', as_of=AS_OF)
    with pytest.raises(SpecInvalid) as raised:
        render_files(spec, addresses={'reactivation_alloc1': address}, dkim=TEST_DKIM)  # type: ignore[dict-item]
    [problem] = raised.value.problems
    assert problem.path == ('ip_addresses', 'value', 'reactivation_alloc1') and words in problem.message
    assert render_files(spec, renderers=['inventory'], addresses={'reactivation_alloc1': '198.51.100.7'})
