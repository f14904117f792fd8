"""``zone-text``: TXT character-strings over 255 bytes in zone files, judged like BIND's named-checkzone, and
never in the zone files we render."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mailinfra_iac import load_spec
from mailinfra_iac.dnscheck.zonetext import check, long_strings
from mailinfra_iac.facts.records import derive_records, served_delegations
from mailinfra_iac.render.zonefile import zone_files

from ..conftest import ROOT, TEST_DKIM

HEAD = (
    '$ORIGIN a.example.\n$TTL 300\n@ 300 IN SOA ns1.b.example. h.a.example. 1 3600 900 1209600 300\n'
    '@ NS ns1.b.example.\n'
)
CASES: dict[str, tuple[str, bool]] = {
    # name: (record lines, refused by BIND)
    '255 bytes': (f'x TXT "{"a" * 255}"', False),
    '256 bytes': (f'x TXT "{"a" * 256}"', True),
    '400 bytes, DKIM-like': (f'x 300 IN TXT "v=DKIM1; k=rsa; p={"A" * 384}"', True),
    'several strings of 255': (f'x IN TXT "{"a" * 255}" "{"b" * 255}" "c"', False),
    'the second string too long': (f'x TXT "{"a" * 10}" "{"b" * 300}"', True),
    '128 two-byte characters (256 bytes)': (f'x TXT "{"é" * 128}"', True),
    '127 two-byte characters (254 bytes)': (f'x TXT "{"é" * 127}"', False),
    'escapes count one byte each': (f'x TXT "{chr(92) + "065" * 1}{"a" * 254}"', False),
    'escaped quote inside': (f'x TXT "{chr(92)}"{"a" * 255}"', True),
    'unquoted string of 256': (f'x TXT {"a" * 256}', True),
    'in parentheses over lines': (f'x TXT ( "{"a" * 200}"\n    "{"b" * 256}" ) ; comment "', True),
    'owner left blank, class before TTL': (f'x A 192.0.2.1\n  IN 300 TXT "{"a" * 256}"', True),
    'a comment with a quote, then 255': (f'; "\nx TXT "{"a" * 255}" ; "{"b" * 300}"', False),
    'SPF type': (f'x SPF "{"a" * 256}"', True),
    'not TXT: a long name is not a string': ('x CNAME a.example.', False),
}


@pytest.mark.parametrize('case', list(CASES))
def test_long_strings_are_found_as_bind_refuses_them(case: str, tmp_path: Path) -> None:
    body, refused = CASES[case]
    text = HEAD + body + '\n'
    _, found = long_strings(text)
    assert bool(found) == refused
    [result] = check({'a.example.zone': text})
    assert result.status == ('fail' if refused else 'pass')
    named_checkzone = shutil.which('named-checkzone', path='/usr/bin:/usr/sbin:/bin:/sbin')
    assert named_checkzone is not None, 'named-checkzone (bind9-utils) is needed: script/bootstrap installs it'
    zone = tmp_path / 'a.example.zone'
    zone.write_text(text, encoding='utf-8')
    bind = subprocess.run([named_checkzone, 'a.example', str(zone)], capture_output=True, text=True, check=False)
    assert (bind.returncode != 0) == refused, bind.stdout


def test_where_and_how_long() -> None:
    text = HEAD + f'x TXT "{"a" * 300}"\ny TXT ( "a"\n  "{"é" * 200}" )\n'
    seen, found = long_strings(text)
    assert seen == 2
    assert [(f.line, f.owner, f.size) for f in found] == [(5, 'x', 300), (7, 'y', 400)]
    [result] = check({'z': text})
    assert result.reason == (
        'line 5: x TXT has a character-string of 300 bytes (and 1 more); RFC 1035 allows 255 and BIND refuses the '
        'zone: write it as several quoted strings'
    )


@pytest.mark.parametrize('example', sorted(path.name for path in (ROOT / 'examples').glob('*.yml')))
def test_rendered_zones_never_hold_a_long_string(example: str) -> None:
    spec = load_spec(ROOT / 'examples' / example)
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM)
    addresses = {key: f'192.0.2.{index}' for index, key in enumerate(_placeholders(records.unresolved()), 1)}
    nameservers = {zone.name: list(zone.nameservers) for zone in spec.deployment.dns.zones}
    zones = zone_files(
        records.resolve(addresses),
        nameservers,
        spec.deployment.dns.ttl,
        delegations=served_delegations(spec.deployment),
    )
    long_values = [
        value for record in records.records if record.type == 'TXT' for value in record.values if len(value) > 255
    ]
    assert long_values, 'the example publishes no TXT value over 255 bytes: the test would prove nothing'
    assert zones
    for zone, text in zones.items():
        assert long_strings(text)[1] == [], zone
    assert sum(long_strings(text)[0] for text in zones.values()) >= len(long_values)


def _placeholders(unresolved: list[str]) -> list[str]:
    """``<ip:ID>``/``<host:NAME>`` placeholders as the keys ``RecordSet.resolve`` takes."""
    keys = []
    for placeholder in unresolved:
        kind, _, name = placeholder.strip('<>').partition(':')
        keys.append(name if kind == 'ip' else f'host_{name}')
    return keys
