"""The value types of model/base.py (and the SPF domain-spec of model/domain.py) on names and addresses."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from mailinfra_iac.model.base import DnsName, HostName, Slug, parse_duration, parse_email
from mailinfra_iac.problems import format_path

from ..conftest import edit, problems


@pytest.mark.parametrize(
    ('value', 'expected'),
    [
        ('postmaster@example.xn--p1ai', 'postmaster@example.xn--p1ai'),
        ('A@EXAMPLE.XN--P1AI', 'A@example.xn--p1ai'),
        ('dmarc@xn--80ak6aa92e.xn--p1ai', 'dmarc@xn--80ak6aa92e.xn--p1ai'),
        ('dmarc@testco.example', 'dmarc@testco.example'),
    ],
)
def test_email_accepts_a_label_top_level_domains(value: str, expected: str) -> None:
    assert parse_email(value) == expected
    assert TypeAdapter(HostName).validate_python(expected.rpartition('@')[2]) == expected.rpartition('@')[2]


@pytest.mark.parametrize(
    'value',
    [
        'dmarc\n@testco.example',
        'dmarc@testco.example\n',
        'dmarc@testco\n.example',
        'a@example.xn--p1ai-',  # trailing hyphen
        'a@example.xn--' + 'a' * 60,  # top label of 64 characters
        'a@example.xn--',
        'a@example.123',
    ],
)
def test_email_refuses_newlines_and_bad_top_labels(value: str) -> None:
    with pytest.raises(ValueError, match='invalid e-mail address'):
        parse_email(value)


@pytest.mark.parametrize('value', ['mta1\n.example.com', 'mta1.example\n.com'])
def test_names_refuse_an_inner_newline(value: str) -> None:
    for kind in (HostName, DnsName):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(value)


def test_slug_and_duration_refuse_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Slug).validate_python('tx\n')
    assert TypeAdapter(Slug).validate_python('tx') == 'tx'
    # parse_duration strips its input; a newline inside is still refused
    with pytest.raises(ValueError, match='invalid duration'):
        parse_duration('10m\n5s')
    assert parse_duration('10m\n') == 600


def test_dmarc_address_with_a_newline_is_a_located_problem() -> None:
    found = problems(
        edit('rua: [dmarc@testco.example]}\n  - domain: news', 'rua: ["dmarc\\n@testco.example"]}\n  - domain: news')
    )
    assert [problem.check for problem in found] == ['schema-value-error']
    assert found[0].line is not None and 'invalid e-mail address' in found[0].message


def test_dmarc_address_with_an_a_label_tld_is_accepted() -> None:
    text = edit('rua: [dmarc@testco.example]}\n  - domain: news', 'rua: [dmarc@reports.xn--p1ai]}\n  - domain: news')
    assert not [problem for problem in problems(text) if problem.check.startswith('schema')]


@pytest.mark.parametrize('value', ['inf', '-inf', '1e400', 'nan', '.nan'])
@pytest.mark.parametrize(
    ('old', 'new', 'field'),
    [
        (
            '    pool: tx\n',
            '    pool: tx\n    recipient_mix: {gmail: VALUE}\n',
            'streams.transactional.recipient_mix.gmail',
        ),
        (
            'monitoring:\n',
            'monitoring:\n  rates: {default: {bounce_warning: VALUE}}\n',
            'monitoring.rates.default.bounce_warning',
        ),
    ],
)
def test_floats_are_finite(value: str, old: str, new: str, field: str) -> None:
    # pydantic reads "inf", "nan" and "1e400" as floats: the capacity estimate then crashed (OverflowError)
    found = problems(edit(old, new.replace('VALUE', value)))
    assert [(problem.check, format_path(problem.path)) for problem in found if problem.severity == 'error'] == [
        ('schema-finite-number' if value != '.nan' else 'schema-float-parsing', field)
    ]
    assert found[0].line is not None
