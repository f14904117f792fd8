"""Long TXT values per DNS provider: the 255-byte boundaries, Terraform-side chunking, a 2048-bit DKIM key."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import dkim
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from root_helpers import MIN_VERSION, apply_offline, root_of, spec_from, static_only_text, stubbed_root

from mailinfra_iac.dkim.keys import generate_private_key, private_key_pem, public_txt_value
from mailinfra_iac.dkim.source import StaticDkimSource
from mailinfra_iac.facts.records import derive_records
from mailinfra_iac.render.providers import dns_providers
from mailinfra_iac.render.terraform_txt import chunk_expression, chunks, render_txt
from mailinfra_iac.terraform import TerraformError, find_terraform
from tests.conftest import TEST_DKIM, edit

LENGTHS = [254, 255, 256, 509, 510, 511, 764]
TXT_STYLE = {name: provider.txt_style for name, provider in dns_providers().items() if provider.txt_style}


@pytest.fixture(scope='module')
def terraform() -> str:
    try:
        return find_terraform(minimum=MIN_VERSION, path_env=None).path
    except TerraformError as error:
        pytest.fail(f'these tests run real Terraform >= 1.5: {error}')


def value_of(length: int) -> str:
    """A DKIM-like value of ``length`` bytes whose chunk boundaries are easy to see."""
    body = ''.join(chr(ord('A') + i % 26) for i in range(length))
    return ('v=DKIM1; k=rsa; p=' + body)[:length]


def strings_received(presentation: str) -> list[bytes]:
    """The character-strings of a TXT record given in zone-file presentation format."""
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, presentation)
    return list(rdata.strings)  # type: ignore[attr-defined]


def received(value: str, provider: str) -> list[bytes]:
    """What the DNS provider ends up with for the value our root gives the provider's resource."""
    if provider == 'route53':
        return strings_received(f'"{value}"')  # the AWS provider wraps the value in quotes
    if provider in ('cloudflare', 'hetzner'):
        return strings_received(value if value.startswith('"') else f'"{value}"')
    # hashicorp/dns builds `"<value>"` and its parser (miekg/dns) splits tokens over 255 bytes into chunks
    return [chunk.encode() for chunk in chunks(value)]


@pytest.mark.parametrize('length', LENGTHS)
@pytest.mark.parametrize('provider', sorted(TXT_STYLE))
def test_boundaries(provider: str, length: int) -> None:
    value = value_of(length)
    given = render_txt(value, TXT_STYLE[provider])
    strings = received(given, provider)
    assert b''.join(strings) == value.encode()
    assert all(len(s) <= 255 for s in strings)
    assert [len(s) for s in strings] == [len(c.encode()) for c in chunks(value)]
    expected_count = -(-length // 255)
    assert len(strings) == expected_count
    if length <= 255 or provider == 'rfc2136':
        assert given == value  # short values, and every RFC 2136 value, are passed unchanged
    elif provider == 'route53':
        assert given.count('""') == expected_count - 1
    else:
        assert given.startswith('"') and given.endswith('"') and given.count('" "') == expected_count - 1


def test_chunks_never_split_a_character() -> None:
    value = 'é' * 200  # 400 bytes
    parts = chunks(value)
    assert [len(part.encode()) for part in parts] == [254, 146]
    assert ''.join(parts) == value


def test_quotes_and_backslashes_are_escaped_inside_chunks() -> None:
    value = 'a"b\\c' + 'x' * 300
    for provider in ('route53', 'cloudflare'):
        assert b''.join(received(render_txt(value, TXT_STYLE[provider]), provider)) == value.encode()


def test_terraform_chunks_interpolated_values_like_python(terraform: str, tmp_path: Path) -> None:
    """Values holding addresses Terraform allocates are chunked by Terraform at apply time, identically."""
    address = '203.0.113.77'
    outputs, expected = {}, {}
    for length in LENGTHS:
        for style in ('joined', 'quoted', 'raw'):
            filler = value_of(length - len(f'ip4:{address}  -all'))
            filler = filler[:100] + '"\\' + filler[102:]  # a quote and a backslash inside, to check escaping
            escaped = filler.replace('\\', '\\\\').replace('"', '\\"')
            template = f'"ip4:${{var.address}} {escaped} -all"'
            name = f'{style}_{length}'
            outputs[name] = {'value': '${' + chunk_expression(template, style) + '}'}
            expected[name] = render_txt(f'ip4:{address} {filler} -all', style)
            assert len(f'ip4:{address} {filler} -all'.encode()) == length
    root = {'variable': {'address': {'type': 'string'}}, 'output': outputs}
    (tmp_path / 'main.tf.json').write_text(json.dumps(root), encoding='utf-8')
    (tmp_path / 'vars.tfvars.json').write_text(json.dumps({'address': address}), encoding='utf-8')
    assert apply_offline(terraform, tmp_path, 'vars.tfvars.json') == expected


STATIC_HOST = '    provider: static\n    address: 192.0.2.1\n'
CLOUDFLARE_ZONE = '      provider: cloudflare\n      zone_id: 0123456789abcdef0123456789abcdef'
BULK_IPS = (
    '  bulk:\n    ips:\n      - address: 192.0.2.20\n        ptr: bulk1.testco.example\n'
    '      - address: 192.0.2.21\n        ptr: bulk2.testco.example\n'
)


def test_long_spf_with_allocated_addresses_is_chunked_by_terraform(terraform: str, tmp_path: Path) -> None:
    """20 addresses allocated at Hetzner: the SPF record may pass 255 bytes once the addresses are known."""
    text = edit('      provider: zonefile', CLOUDFLARE_ZONE)
    text = edit(STATIC_HOST, '    provider: hetzner\n    region: fsn1\n    size: cx22\n', text)
    text = edit(BULK_IPS, "  bulk:\n    allocate: {count: 20, ptr_pattern: 'b{n}.testco.example'}\n", text)
    spec = spec_from(text)
    root = root_of(spec)
    spf = root['module']['dns_testco_example']['records']['news/TXT']['values'][0]
    assert spf.startswith('${length("v=spf1 ip4:${module.ip_hetzner.addresses[')  # chunked at apply time
    stubbed_root(root, tmp_path)
    outputs = apply_offline(terraform, tmp_path, 'test.tfvars.json')
    value = outputs['received_dns_testco_example']['news/TXT']['values'][0]
    records = derive_records(spec.deployment, spec.facts, TEST_DKIM).resolve(outputs['ip_addresses'])
    [resolved] = next(r.values for r in records.records if r.fqdn == 'news.testco.example' and r.type == 'TXT')
    assert len(resolved) > 255
    assert value == render_txt(resolved, 'quoted')
    assert b''.join(received(value, 'cloudflare')) == resolved.encode()


@pytest.fixture(scope='module')
def dkim_2048() -> tuple[bytes, str]:
    key = generate_private_key('rsa', 2048)
    return private_key_pem(key), public_txt_value(key)


ZONES = {
    'cloudflare': '      provider: cloudflare\n      zone_id: 0123456789abcdef0123456789abcdef',
    'route53': '      provider: route53\n      zone_id: Z0123456789ABCDEFGHIJ',
    'rfc2136': '      provider: rfc2136\n      server: 192.0.2.53',
}


@pytest.mark.parametrize('provider', sorted(ZONES))
def test_dkim_2048_end_to_end(provider: str, dkim_2048: tuple[bytes, str]) -> None:
    """A 2048-bit key through the root to what the provider stores, then verified with dkimpy."""
    private, public = dkim_2048
    assert len(public) > 400
    spec = spec_from(edit('      provider: zonefile', ZONES[provider], static_only_text()))
    keys = {('testco.example', 's2026q4'): public, ('news.testco.example', 's2026q4'): public}
    source = StaticDkimSource({**keys, ('news.testco.example', 's2026q4e'): TEST_DKIM.values['ed25519']})
    values = root_of(spec, source)['module']['dns_testco_example']['records']['s2026q4._domainkey/TXT']['values']
    assert len(values) == 1  # one TXT record of several strings, never several records
    strings = received(values[0], provider)
    assert all(len(s) <= 255 for s in strings)
    assert len(strings) == 2
    txt = b''.join(strings)
    assert txt == public.encode()
    message = EmailMessage()
    message['From'] = 'a@testco.example'
    message['To'] = 'b@example.org'
    message['Subject'] = 'DKIM through Terraform'
    message.set_content('hello\n')
    raw = message.as_bytes()
    signed = dkim.sign(raw, b's2026q4', b'testco.example', private, include_headers=[b'from', b'to', b'subject'])

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b's2026q4._domainkey.testco.example.'
        return txt

    assert dkim.verify(signed + raw, dnsfunc=dnsfunc)
