"""Bad YAML and schema errors: every problem at once, located, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailinfra_iac import SpecInvalid, load_spec, parse_spec
from mailinfra_iac.loader import parse_source
from mailinfra_iac.problems import format_path

from ..conftest import AS_OF, BASE, edit, position, problems


def only(text: str) -> list[tuple[str, str, int | None, int | None]]:
    return [(p.check, format_path(p.path), p.line, p.column) for p in problems(text) if p.severity == 'error']


def test_syntax_error_is_located() -> None:
    text = edit('abuse: abuse@testco.example', 'abuse: [abuse@testco.example')
    [problem] = problems(text)
    assert problem.check == 'yaml-syntax'
    # libyaml notices the unclosed "[" where the next key starts
    assert (problem.line, problem.column) == (position(text, 'mta: auto')[0], 4)
    assert problem.message == ("YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'")


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    spec = tmp_path / 'empty.yml'
    spec.write_text('# nothing here\n')
    with pytest.raises(SpecInvalid) as raised:
        load_spec(spec)
    [problem] = raised.value.problems
    assert (problem.check, problem.file, problem.line) == ('spec-empty', str(spec), 1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecInvalid) as raised:
        load_spec(tmp_path / 'nope.yml')
    assert [p.check for p in raised.value.problems] == ['spec-unreadable']


def test_binary_file(tmp_path: Path) -> None:
    spec = tmp_path / 'bin.yml'
    spec.write_bytes(b'\xff\xfe\x00garbage')
    with pytest.raises(SpecInvalid) as raised:
        load_spec(spec)
    assert [p.check for p in raised.value.problems] == ['spec-unreadable']


def test_document_must_be_a_mapping() -> None:
    assert only('- just\n- a list\n') == [('spec-not-a-mapping', '(document)', 1, 1)]


def test_duplicate_keys_are_errors() -> None:
    text = edit('mta: auto', 'mta: auto\nmta: postfix')
    assert only(text) == [('yaml-duplicate-key', 'mta', *position(text, 'mta: postfix'))]


def test_yes_and_no_stay_strings() -> None:
    source = parse_source('a: no\nb: yes\nc: on\nd: true\ne: 0o17\nf: 1.5\ng: ~\n')
    assert source.data == {'a': 'no', 'b': 'yes', 'c': 'on', 'd': True, 'e': 15, 'f': 1.5, 'g': None}


def test_merge_keys_are_supported() -> None:
    source = parse_source('base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n')
    assert source.data['other'] == {'x': 1, 'y': 3}


def test_all_schema_errors_are_reported_at_once() -> None:
    text = edit('  name: testco\n', '  name: TestCo\n')
    text = edit('mta: auto', 'mta: exim', text)
    text = edit('address: 192.0.2.10', 'address: 192.0.2.300', text)
    text = edit('provider: zonefile', 'provider: zonefile\n      colour: blue', text)
    text = edit('    volume: {monthly: 30000, peak_hourly: 300}\n', '', text)
    found = only(text)
    assert found == sorted(found, key=lambda item: (item[2], item[3]))
    assert {(check, path) for check, path, _, _ in found} == {
        ('schema-value-error', 'client.name'),
        ('schema-literal-error', 'mta'),
        ('schema-value-error', 'pools.tx.ips[0].address'),
        ('schema-extra-forbidden', 'dns.zones[0].colour'),
        ('schema-missing', 'streams.transactional.volume'),
    }
    by_path = {path: (line, column) for _, path, line, column in found}
    assert by_path['mta'] == position(text, 'exim')
    assert by_path['pools.tx.ips[0].address'] == position(text, '192.0.2.300')
    assert by_path['dns.zones[0].colour'] == position(text, 'colour')


def test_messages_say_what_was_expected() -> None:
    text = edit('provider: zonefile', 'provider: zonefile\n      zone_idd: x')
    text = edit('mta: auto', 'mta: exim', text)
    found = {format_path(p.path): p for p in problems(text)}
    extra = found['dns.zones[0].zone_idd']
    assert extra.message == 'unknown field "zone_idd" (did you mean "zone_id"?)'
    assert extra.value is None  # an unknown field's value may be a secret under a wrong name (token: for token_file)
    assert extra.expected == 'one of: name, nameserver_addresses, nameservers, provider, server, zone_id'
    assert found['mta'].expected == '"postfix", "powermta" or "auto"'
    assert found['mta'].value == 'exim'


def test_wrong_type_is_reported() -> None:
    text = edit('peak_hourly: 300}', 'peak_hourly: lots}')
    [problem] = [p for p in problems(text) if p.severity == 'error']
    assert problem.check == 'schema-int-parsing'
    assert format_path(problem.path) == 'streams.transactional.volume.peak_hourly'
    assert (problem.line, problem.column) == position(text, 'lots')


def test_problem_text_has_file_line_field_and_expectation() -> None:
    text = edit('mta: auto', 'mta: exim')
    [problem] = [p for p in problems(text) if p.severity == 'error']
    line, column = position(text, 'exim')
    assert str(problem) == (
        'error: mta: invalid value "exim"; expected "postfix", "powermta" or "auto" '
        f'(spec.yml, line {line}, column {column}), via: schema-literal-error'
    )


def test_valid_spec_loads_with_facts() -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    assert [ip.address for ip in spec.facts.ips] == ['192.0.2.10', '192.0.2.20', '192.0.2.21']
    assert spec.facts.streams['transactional'].kind == 'transactional'
    assert spec.facts.mta.chosen == 'postfix'
