"""Report addresses the spec allows but a mailto: URI must escape: rendered escaped, and judged equal when served."""

from __future__ import annotations

import json

from mailinfra_iac import parse_spec
from mailinfra_iac.api import render_files
from mailinfra_iac.dnscheck.dmarc import _rua, destination, parse
from mailinfra_iac.dnscheck.expected import DmarcSubject

from ..conftest import AS_OF, TEST_DKIM, edit

RUA = ('d%zz@testco.example', 'a=b@testco.example')


def _served_dmarc() -> str:
    quoted = ', '.join(json.dumps(address) for address in RUA)
    text = edit(
        'dmarc: {p: none, rua: [dmarc@testco.example]}\n  - domain: news',
        f'dmarc: {{p: none, rua: [{quoted}]}}\n  - domain: news',
    )
    files = render_files(parse_spec(text, 'spec.yml', as_of=AS_OF), renderers=['dns'], dkim=TEST_DKIM)
    records = json.loads(files['dns/records.json'].content)['records']
    [value] = [r['values'][0] for r in records if r['fqdn'] == '_dmarc.testco.example']
    return str(value)


def test_escaped_report_addresses_are_the_spec_s_addresses() -> None:
    value = _served_dmarc()
    tags = parse(value)
    assert tags['rua'] == 'mailto:d%25zz@testco.example,mailto:a%3Db@testco.example'  # RFC 6068 section 2
    status, reason = _rua(DmarcSubject('testco.example', 'none', RUA), tags)
    assert (status, reason) == ('pass', f'rua={tags["rua"]}')
    assert {destination(uri) for uri in tags['rua'].split(',')} == {'testco.example'}


def test_a_served_address_that_differs_still_fails() -> None:
    tags = parse('v=DMARC1; p=none; rua=mailto:d%25zz@testco.example')
    status, reason = _rua(DmarcSubject('testco.example', 'none', RUA), tags)
    assert status == 'fail'
    assert reason.endswith('the spec also asks for a=b@testco.example')
