"""Judging one served DKIM record against the key source's record, decoded once with the expectations."""

from __future__ import annotations

import json
from pathlib import Path

from mailinfra_agent.dns.client import Answer
from mailinfra_iac.dkim import record_key
from mailinfra_iac.dnscheck.dkim import _subject
from mailinfra_iac.dnscheck.expected import DkimSubject

KEYS = json.loads((Path(__file__).parents[1] / 'data' / 'dkim_public.json').read_text())
NAME = 's1._domainkey.example.com'


def _judge(expected: str | None, served: str) -> dict[str, tuple[str, str]]:
    subject = DkimSubject('example.com', 's1', 'rsa', expected)
    answer = Answer(NAME, 'TXT', (served,))
    return {r.check: (r.status, r.reason) for r in _subject(subject, answer, 'ns1')}


def test_the_expected_record_is_decoded_with_the_subject() -> None:
    assert DkimSubject('example.com', 's1', 'rsa', KEYS['rsa']).expected_key == record_key(KEYS['rsa'])
    assert DkimSubject('example.com', 's1', 'rsa', None).expected_key is None
    assert 'base64' in str(DkimSubject('example.com', 's1', 'rsa', 'v=DKIM1; p=!!').expected_key)


def test_same_key_passes_whatever_the_spacing() -> None:
    served = KEYS['rsa'].replace('; ', ';  ')
    assert _judge(KEYS['rsa'], served)['dkim-key-matches'][0] == 'pass'


def test_other_key_fails_and_an_unusable_local_record_is_unchecked() -> None:
    assert _judge(KEYS['ed25519'], KEYS['rsa'])['dkim-key-matches'][0] == 'fail'
    status, reason = _judge('v=DKIM1; p=!!', KEYS['rsa'])['dkim-key-matches']
    assert status == 'unchecked' and "the key store's record is unusable" in reason
    assert _judge(None, KEYS['rsa'])['dkim-key-matches'][0] == 'unchecked'
