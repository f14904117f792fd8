"""The Sisimai comparison (benchmarks/sisimai/compare.py): its verdicts, and a run on the public samples we ship.

The samples ``tests/data/feedback/messages/sisimai-*.eml`` are files of sisimai/set-of-emails (README there); run
under their corpus names they must get the verdicts below. The whole corpus is not in this repository:
``python benchmarks/sisimai/compare.py --check DIR`` fails on a crash or an ``unsafe`` verdict (README there).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / 'tests' / 'data' / 'feedback' / 'messages'


def _compare() -> ModuleType:
    spec = importlib.util.spec_from_file_location('sisimai_compare', ROOT / 'benchmarks' / 'sisimai' / 'compare.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


compare = _compare()


def fact(reason: str, recipient: str = 'a@example.org', status: str = '5.0.0') -> dict[str, Any]:
    return {'reason': reason, 'recipient': recipient, 'status': status}


def event(category: str | None, outcome: str | None, **more: Any) -> dict[str, Any]:
    found = {'recipient': 'a@example.org', 'kind': 'dsn', 'status': 'bounced', 'dsn': None, 'code': '550'}
    return found | {'category': category, 'outcome': outcome, 'rule': 'r'} | more


@pytest.mark.parametrize(
    ('refused', 'mine', 'theirs', 'verdict'),
    [
        ('crash:KeyError: x', [], [fact('userunknown')], 'crash'),
        ('no-delivery-status', [], [fact('userunknown')], 'refused:no-delivery-status'),
        ('no-delivery-status', [], [], 'both-nothing'),
        (None, [event('bad-mailbox', 'hard')], [fact('userunknown')], 'agreed'),
        (None, [event('bad-mailbox', 'hard')], [fact('userunknown', 'b@example.org')], 'recipients'),
        (None, [event('bad-mailbox', 'hard')], [fact('blocked')], 'unsafe'),
        (None, [event('bad-mailbox', 'hard')], [fact('filtered')], 'hard-where-sisimai-soft'),
        (None, [event('spam-related', 'policy')], [fact('blocked')], 'agreed'),
        (None, [event('other', 'soft')], [fact('userunknown')], 'category'),
        (None, [event('other', 'soft')], [fact('onhold')], 'agreed'),
        (None, [event('bad-mailbox', 'hard', dsn='5.1.1')], [fact('userunknown', status='5.1.2')], 'status'),
        (None, [event('bad-mailbox', 'hard', dsn='5.1.1')], [fact('userunknown', status='5.0.911')], 'agreed'),
        (None, [event(None, None, kind='complaint', status='complaint')], [fact('feedback')], 'agreed'),
        (None, [event(None, None, status='sent')], [fact('delivered')], 'agreed'),
    ],
)
def test_verdicts(refused: str | None, mine: list[dict[str, Any]], theirs: list[dict[str, Any]], verdict: str) -> None:
    assert compare.verdict(refused, mine, theirs)[0] == verdict


def _run(corpus: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert compare.main([str(corpus), '--json']) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_the_shipped_public_samples_get_their_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in SAMPLES.glob('sisimai-*.eml'):
        shutil.copyfile(path, tmp_path / path.name.removeprefix('sisimai-'))
    verdicts = {name: kind for name, (kind, _) in _run(tmp_path, capsys)['verdicts'].items()}
    assert verdicts == {
        'arf-02.eml': 'agreed',
        'arf-12.eml': 'refused:no-recipient',  # opt-out without any recipient: ingest asks its store
        'arf-16.eml': 'agreed',
        'arf-19.eml': 'refused:not-a-complaint',  # a DMARC failure report (auth-failure)
        'arf-22.eml': 'agreed',
        'lhost-exchange2007-01.eml': 'agreed',
        'lhost-exim-05.eml': 'agreed',  # a text bounce with X-Failed-Recipients
        'lhost-gmail-01.eml': 'agreed',
        'lhost-gmail-04.eml': 'agreed',
        'lhost-mcafee-01.eml': 'agreed',
        'lhost-opensmtpd-17.eml': 'agreed',
        'lhost-postfix-01.eml': 'recipients',  # ours: Original-Recipient, the address we sent to
        'lhost-qmail-02.eml': 'refused:no-delivery-status',  # a text bounce without X-Failed-Recipients
        'rhost-messagelabs-01.eml': 'category',  # relaying without authentication: ours 'other'
    }


def test_check_fails_on_an_unsafe_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = 'lhost-exchange2007-01.eml'
    shutil.copyfile(SAMPLES / f'sisimai-{name}', tmp_path / name)
    expected = tmp_path / 'expected.json'
    expected.write_text(json.dumps({'messages': {name: [fact('blocked', 'mikeneko@example.co.jp', '5.7.1')]}}))
    assert compare.main([str(tmp_path), '--expected', str(expected), '--check']) == 1  # we: bad-mailbox, hard
    assert compare.main([str(tmp_path), '--check']) == 0
    capsys.readouterr()
