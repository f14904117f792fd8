"""spf-record-size: the warning's size is the rendered record's (name and text), and 450 bytes pass.

checkdmarc warns about an SPF answer over 450 bytes (over 512 it says verifiers may fail it), and Knot answers such
a record over UDP without EDNS with TC and no answer; ``validate`` said nothing of a 735-byte record.
"""

from __future__ import annotations

import json

from mailinfra_iac import parse_spec
from mailinfra_iac.api import render_files

from ..conftest import AS_OF, TEST_DKIM, edit, problems
from ..render.test_zones_load import BULK, CLOUD

SPF = 'spf: {includes: [_spf.mailer.example]}'


def _mechanisms(count: int, last: str = '') -> str:
    terms = [f'"ip4:198.51.100.{1 + 3 * n}"' for n in range(count)] + ([f'"{last}"'] if last else [])
    return 'spf: {includes: [_spf.mailer.example], mechanisms: [' + ', '.join(terms) + ']}'


def _size(text: str) -> int:
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    records = json.loads(files['dns/records.json'].content)['records']
    [spf] = [r for r in records if r['fqdn'] == 'testco.example' and r['purpose'] == 'spf']
    return len(spf['fqdn']) + len(spf['values'][0].encode())


def _warnings(text: str) -> list[int]:
    return [p.value for p in problems(text) if p.check == 'spf-record-size']


def _messages(text: str) -> list[str]:
    return [p.message for p in problems(text) if p.check == 'spf-record-size']


def test_size_is_the_rendered_records() -> None:
    text = edit(SPF, _mechanisms(30))
    assert _warnings(text) == [_size(text)]
    assert _size(text) > 450
    assert _messages(text)[0].startswith(f'the SPF record of testco.example takes {_size(text)} bytes with its name')


NEWS = '    dkim: {selectors: [s2026q4], algorithm: rsa+ed25519}\n'
ALLOCATED = (BULK, f"{BULK}    allocate: {{count: 2, ptr_pattern: 'b{{n}}.testco.example'}}\n")


def test_allocated_addresses_are_counted_at_their_longest_and_said_so() -> None:
    """Terraform allocates two of news's addresses: the size is an upper bound, and the message says "up to"."""
    text = edit(NEWS, NEWS + '    ' + _mechanisms(30) + '\n', edit(*ALLOCATED, edit(*CLOUD)))
    [message] = _messages(text)
    assert message.startswith('the SPF record of news.testco.example takes up to ')


def test_450_bytes_pass_and_451_warn() -> None:
    base = _size(edit(SPF, _mechanisms(20)))
    # one more mechanism "a:<label>.testco.example" of the exact length that brings the record to 450, then 451
    filler = 450 - base - len(' a:.testco.example')
    at_limit = edit(SPF, _mechanisms(20, f'a:{"x" * filler}.testco.example'))
    assert _size(at_limit) == 450 and _warnings(at_limit) == []
    over = edit(SPF, _mechanisms(20, f'a:{"x" * (filler + 1)}.testco.example'))
    assert _size(over) == 451 and _warnings(over) == [451]
