"""Property: any mutation of a valid spec gives a valid model or a structured error, never a crash; a valid
mutant of its DNS fields renders."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mailinfra_iac import Spec, SpecInvalid, parse_spec, render_files

from ..conftest import AS_OF, BASE, ROOT, TEST_DKIM

SOURCES = [BASE, *(path.read_text() for path in sorted((ROOT / 'examples').glob('*.yml')))]
DATA = [yaml.safe_load(text) for text in SOURCES]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**9),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(['192.0.2.99', 'x.testco.example', '10m', '-all', 'none', 'gmail', '']),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _containers(value, (*path, key)) if isinstance(value, dict | list) else []
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _containers(value, (*path, index)) if isinstance(value, dict | list) else []
    return found


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> str:
    data = copy.deepcopy(draw(st.sampled_from(DATA)))
    for _ in range(draw(st.integers(1, 4))):
        container = _get(data, draw(st.sampled_from(_containers(data))))
        action = draw(st.sampled_from(['replace', 'delete', 'add', 'duplicate']))
        if isinstance(container, dict) and container:
            key = draw(st.sampled_from(sorted(container, key=str)))
            if action == 'replace':
                container[key] = draw(values)
            elif action == 'delete':
                del container[key]
            elif action == 'add':
                container[draw(st.text(min_size=1, max_size=10))] = draw(values)
            else:
                container[f'{key}2'] = copy.deepcopy(container[key])
        elif isinstance(container, list) and container:
            index = draw(st.integers(0, len(container) - 1))
            if action == 'replace':
                container[index] = draw(values)
            elif action == 'delete':
                del container[index]
            else:
                container.append(copy.deepcopy(container[index]))
    return yaml.safe_dump(data, sort_keys=False)


def _outcome(text: str) -> None:
    try:
        spec = parse_spec(text, 'mutant.yml', as_of=AS_OF)
    except SpecInvalid as invalid:
        assert invalid.errors, 'an invalid spec names at least one error'
        for problem in invalid.problems:
            assert problem.check and problem.message
            assert problem.file == 'mutant.yml'
            str(problem)
            problem.as_dict()
        return
    assert isinstance(spec, Spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_structural_mutations(text: str) -> None:
    _outcome(text)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SOURCES), st.data())
def test_text_mutations(source: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(source)))
    insert = data.draw(
        st.sampled_from(['', ':', '- ', '{', ']', '\t', '"', '&a ', '*a', '\n  x: 1\n', '!!python/object '])
    )
    _outcome(source[:cut] + insert + source[cut + data.draw(st.integers(0, 5)) :])


def _zone_names(data: dict[str, Any]) -> list[str]:
    return [zone['name'] for zone in data['dns']['zones'] if not zone['name'].endswith('.arpa')]


def _published_names(data: dict[str, Any]) -> list[str]:
    """Names the spec already publishes records at: a new record there meets them."""
    names = [host['fqdn'] for host in data['hosts'].values() if 'fqdn' in host]
    names += [ip['ptr'] for pool in data['pools'].values() for ip in pool.get('ips', []) if 'ptr' in ip]
    for domain in data['sending_domains']:
        names += [domain['domain'], f'bounces.{domain["domain"]}', f'_dmarc.{domain["domain"]}']
    return sorted(set(names))


@st.composite
def dns_names(draw: st.DrawFn, zones: list[str], taken: list[str]) -> str:
    """Names at the edges of what the model accepts, mostly inside the spec's zones (else nothing is published)."""
    label = st.one_of(
        st.sampled_from(['a', 'xn--bcher-kva', '_dmarc', '_domainkey', 'bounces', 'mta-sts', 'Mail', 'x' * 63]),
        st.from_regex(r'[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?', fullmatch=True),
    )
    if draw(st.booleans()):
        return draw(st.sampled_from(taken))
    name = '.'.join([*draw(st.lists(label, max_size=4)), draw(st.sampled_from(zones))])
    if len(name) > 253:
        name = name[len(name) - 253 :].lstrip('.-_')
    return name + draw(st.sampled_from(['', '.']))


@st.composite
def dns_mutated(draw: st.DrawFn) -> str:
    """The DNS fields of a valid spec set to edge values: names, selectors, SPF terms, report addresses, TTL."""
    data = copy.deepcopy(draw(st.sampled_from(DATA)))
    zones = _zone_names(data)
    names = dns_names(zones, _published_names(data))
    for _ in range(draw(st.integers(1, 4))):
        domain = draw(st.sampled_from(data['sending_domains']))
        field = draw(
            st.sampled_from(['domain', 'return_path', 'tracking', 'selectors', 'mechanisms', 'rua', 'ptr', 'ttl'])
        )
        if field == 'domain':
            old, domain['domain'] = domain['domain'], draw(names)
            for stream in data['streams'].values():
                stream['domains'] = [domain['domain'] if name == old else name for name in stream.get('domains', [])]
        elif field == 'return_path':
            domain[field] = draw(names)
        elif field == 'tracking':
            domain['tracking'] = {'hostname': draw(names), 'target': draw(names)}
        elif field == 'selectors':
            selector = st.one_of(
                st.just('s' * 63), st.from_regex(r'[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?', fullmatch=True)
            )
            domain['dkim'] = {
                'selectors': draw(st.lists(selector, min_size=1, max_size=3)),
                'algorithm': draw(st.sampled_from(['rsa', 'rsa+ed25519'])),
            }
        elif field == 'mechanisms':
            term = st.one_of(
                st.sampled_from(['a', 'mx/24', 'ptr', 'ip4:198.51.100.0/24', 'ip6:2001:db8::/32', 'exists:%{i}.x.to']),
                names.map(lambda name: f'a:{name}'),
                st.text(max_size=12),
            )
            domain['spf'] = {'mechanisms': draw(st.lists(term, max_size=30))}
        elif field == 'rua':
            rua = [f'r@{name}'.rstrip('.') for name in draw(st.lists(names, max_size=3))]
            domain['dmarc'] = {'p': 'none', 'rua': rua}
        elif field == 'ptr':
            pool = draw(st.sampled_from(sorted(data['pools'])))
            for ip in data['pools'][pool].get('ips', []):
                ip['ptr'] = draw(names).replace('_', 'u')
        else:
            data['dns']['ttl'] = draw(st.sampled_from([60, 86400, 59, 86401]))
    return yaml.safe_dump(data, sort_keys=False)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dns_mutated())
def test_valid_dns_mutants_render(text: str) -> None:
    try:
        spec = parse_spec(text, 'mutant.yml', as_of=AS_OF)
    except SpecInvalid as invalid:
        assert all(problem.check and problem.message and problem.file == 'mutant.yml' for problem in invalid.problems)
        event('refused: ' + ' '.join(sorted({p.check for p in invalid.problems if p.severity == 'error'})))
        return
    event('rendered')
    files = render_files(spec, dkim=TEST_DKIM)
    assert 'dns/records.json' in files
