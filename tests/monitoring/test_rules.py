"""The alert rules, proven with promtool: every family's unit tests pass, and every rule has a firing and a
non-firing case (a new rule without both fails here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mailinfra_iac import parse_spec

from ..conftest import AS_OF
from .harness import (
    PROMTOOL,
    RULE_TESTS,
    family_names,
    load_yaml,
    monitoring_files,
    rules_spec,
    rules_spec_text,
    run,
    tool,
    write_tree,
)

ALWAYS_FIRING = frozenset({'MailinfraHeartbeat'})
"""Rules that cannot be quiet by design (the dead-man's switch): they need a firing case only."""


def _rendered_rules(tmp_path: Path, text: str | None = None) -> Path:
    spec = rules_spec() if text is None else parse_spec(text, 'spec.yml', as_of=AS_OF)
    return write_tree(monitoring_files(spec), tmp_path) / 'prometheus' / 'rules'


def _promtool_test(rules: Path, family: str) -> tuple[int, str]:
    data = load_yaml(RULE_TESTS / f'{family}.yml')
    data['rule_files'] = [f'{family}.yml']
    test_file = rules / f'{family}.test.yml'
    test_file.write_text(yaml.safe_dump(data, sort_keys=False))
    result = run(tool(PROMTOOL), 'test', 'rules', test_file.name, cwd=rules)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize('family', family_names())
def test_promtool_unit_tests_pass(tmp_path: Path, family: str) -> None:
    code, output = _promtool_test(_rendered_rules(tmp_path), family)
    assert code == 0, output


def test_promtool_unit_tests_follow_the_spec(tmp_path: Path) -> None:
    """The tests fail when the rules change: marketing's warning threshold moved from 100 to 700 messages."""
    text = rules_spec_text().replace('    depth_warning: 100\n', '    depth_warning: 700\n')
    code, output = _promtool_test(_rendered_rules(tmp_path, text), 'queue')
    assert code != 0
    assert 'MailinfraQueueDepth' in output


def test_every_family_has_its_test_file_and_no_test_file_is_orphaned() -> None:
    families = set(family_names())
    files = {path.stem for path in RULE_TESTS.glob('*.yml')}
    assert families - files == set(), 'rule families without tests/monitoring/rules/<family>.yml'
    assert files - families == set(), 'test files of no rule family'


def _matches(expected: dict[str, Any], static: dict[str, str]) -> bool:
    labels = {str(key): str(value) for key, value in (expected.get('exp_labels') or {}).items()}
    return all(labels.get(key) == value for key, value in static.items())


def coverage(groups: list[dict[str, Any]], cases: list[dict[str, Any]]) -> list[str]:
    """What is missing: a rule is (alert, static labels); it fires in a case expecting an alert carrying those
    labels, and is quiet in a case of the same alert name expecting none that carries them."""
    missing = []
    for group in groups:
        for rule in group['rules']:
            name, static = rule['alert'], {key: str(value) for key, value in (rule.get('labels') or {}).items()}
            ours = [case for case in cases if case.get('alertname') == name]
            fires = any(any(_matches(alert, static) for alert in case.get('exp_alerts') or []) for case in ours)
            quiet = any(not any(_matches(alert, static) for alert in case.get('exp_alerts') or []) for case in ours)
            label = f'{name} {static}'
            if not fires:
                missing.append(f'{label}: no firing case')
            if not quiet and name not in ALWAYS_FIRING:
                missing.append(f'{label}: no non-firing case')
    return missing


def _cases(family: str) -> list[dict[str, Any]]:
    data = load_yaml(RULE_TESTS / f'{family}.yml')
    return [case for test in data['tests'] for case in test.get('alert_rule_test') or []]


@pytest.mark.parametrize('family', family_names())
def test_every_rule_has_a_firing_and_a_non_firing_case(tmp_path: Path, family: str) -> None:
    rules = _rendered_rules(tmp_path)
    groups = load_yaml(rules / f'{family}.yml')['groups']
    assert coverage(groups, _cases(family)) == []


def test_coverage_reports_a_rule_without_cases() -> None:
    groups = [{'rules': [{'alert': 'New', 'labels': {'severity': 'warning'}}]}]
    assert coverage(groups, []) == [
        "New {'severity': 'warning'}: no firing case",
        "New {'severity': 'warning'}: no non-firing case",
    ]
    firing_only = [{'alertname': 'New', 'exp_alerts': [{'exp_labels': {'severity': 'warning'}}]}]
    assert coverage(groups, firing_only) == ["New {'severity': 'warning'}: no non-firing case"]
    # a case where only the critical one fires is the warning rule's non-firing case
    quiet = [{'alertname': 'New', 'exp_alerts': [{'exp_labels': {'severity': 'critical'}}]}]
    assert coverage(groups, firing_only + quiet) == []


def test_always_firing_rules_really_are_unconditional(tmp_path: Path) -> None:
    rules = _rendered_rules(tmp_path)
    for path in rules.glob('*.yml'):
        for group in load_yaml(path)['groups']:
            for rule in group['rules']:
                if rule['alert'] in ALWAYS_FIRING:
                    assert rule['expr'] == 'vector(1)'


def test_spec_text_in_annotations_stays_text(tmp_path: Path) -> None:
    """A custom zone's meaning holding template syntax is shown as written, never run by Prometheus."""
    text = rules_spec_text().replace("listings: {'2': spam source, ", "listings: {'2': '{{ 1 }} spam {{ $value }}', ")
    rules = _rendered_rules(tmp_path, text)
    labels = 'job="node",instance="i",host="mta1",subject="192.0.2.21",subject_kind="ip",zone="bl.example.net"'
    case = {
        'rule_files': ['dnsbl.yml'],
        'tests': [
            {
                'interval': '1m',
                'input_series': [
                    {
                        'series': f'mailinfra_dnsbl_listed{{{labels},severity="warning",code="127.0.0.2",'
                        'subject_group="192.0.2.21"}',
                        'values': '1x3',
                    }
                ],
                'alert_rule_test': [
                    {
                        'eval_time': '1m',
                        'alertname': 'MailinfraDnsblListed',
                        'exp_alerts': [
                            {
                                'exp_labels': {
                                    'job': 'node',
                                    'instance': 'i',
                                    'host': 'mta1',
                                    'subject': '192.0.2.21',
                                    'subject_kind': 'ip',
                                    'zone': 'bl.example.net',
                                    'severity': 'warning',
                                    'code': '127.0.0.2',
                                },
                                'exp_annotations': {
                                    'summary': '192.0.2.21 is listed on bl.example.net',
                                    'description': 'The ip 192.0.2.21 is listed on bl.example.net (answer 127.0.0.2), '
                                    'since an unknown time.',
                                    'meaning': 'bitmask answer 127.0.0.2; bits: 2 = {{ 1 }} spam {{ $value }}, '
                                    '4 = open proxy',
                                    'delisting_url': 'unknown',
                                    'listed_since': 'unknown',
                                    'listed_names': '192.0.2.21',
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (rules / 'injection.test.yml').write_text(yaml.safe_dump(case))
    result = run(tool(PROMTOOL), 'test', 'rules', 'injection.test.yml', cwd=rules)
    assert result.returncode == 0, result.stdout + result.stderr
