"""`mailinfra feedback classify`: the rule, the conditions that matched, the category and the policy outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import main

from ..conftest import edit

GMAIL = '550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking'


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(['feedback', 'classify', *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_output_names_rule_conditions_and_policy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, GMAIL)
    assert code == 0
    assert 'category:  bad-mailbox' in out
    assert 'rule:      gmail-no-such-user (catalogue)' in out
    assert 'regex:' in out and 'hard bounce: suppress the recipient after 1 bounce(s)' in out


def test_json_output_and_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred', '--format', 'json')
    report = json.loads(out)
    assert code == 0
    assert (report['category'], report['outcome'], report['rule']) == (
        'spam-related',
        'policy',
        'yahoo-deferred-complaints',
    )
    assert report['suppress_after'] == 'never' and 'never suppressed' in report['policy']
    code, out, _ = run(capsys, 'something odd', '--status', '5.3.9', '--format', 'json')
    report = json.loads(out)
    assert (report['rule'], report['origin'], report['category']) == (None, 'fallback', 'bad-configuration')
    assert report['matched'] == {'subject': '5.3.9: RFC 3463 class 5, subject X.3'}


def test_spec_rules_and_stream_policy_apply(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / 'spec.yml'
    spec.write_text(
        edit(
            '\nmonitoring:',
            '\nbounce_policy:\n  categories: {bad-mailbox: {suppress_after: 2}}\n  classification:\n    rules:\n'
            "      - {id: ours, category: inactive-mailbox, regex: 'tried to reach does not exist', isp: gmail}\n"
            'monitoring:',
        )
    )
    code, out, _ = run(capsys, GMAIL, '--spec', str(spec), '--isp', 'gmail', '--format', 'json')
    report = json.loads(out)
    assert code == 0 and (report['rule'], report['origin'], report['matched']['isp']) == ('ours', 'spec', 'gmail')
    code, out, _ = run(capsys, GMAIL, '--spec', str(spec), '--format', 'json')
    assert json.loads(out)['rule'] == 'gmail-no-such-user', 'the ISP condition fails without --isp'
    assert json.loads(out)['suppress_after'] == 2, "the deployment's bounce policy"
    code, out, _ = run(capsys, GMAIL, '--spec', str(spec), '--stream', 'marketing', '--format', 'json')
    assert json.loads(out)['suppress_after'] == 2, "the stream inherits the deployment's policy"


def test_bad_usage_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, GMAIL, '--stream', 'marketing')
    assert code == 1 and 'error: --stream needs --spec' in err
    spec = tmp_path / 'spec.yml'
    spec.write_text(edit('\nmonitoring:', '\nmonitoring:'))
    code, _, err = run(capsys, GMAIL, '--spec', str(spec), '--stream', 'nope')
    assert code == 1 and 'unknown stream "nope"' in err
