"""Rendering: golden files, determinism, atomic output, and the inventory's meaning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mailinfra_iac import load_spec, parse_spec, render, render_files
from mailinfra_iac.render import OutputFile, RendererRegistry, default_registry
from mailinfra_iac.render.output import MARKER, OutputError, write_tree

from ..conftest import AS_OF, BASE, ROOT, TEST_DKIM
from ..golden_files import EXAMPLES, expected_files, rendered


@pytest.mark.parametrize('example', EXAMPLES, ids=[example.stem for example in EXAMPLES])
def test_golden(example: Path) -> None:
    expected = expected_files(example)
    actual = rendered(example)
    assert sorted(actual) == sorted(expected), 'set of rendered files changed; run script/update-golden and review'
    for path, content in actual.items():
        assert content == expected[path], f'{example.stem}/{path} differs from the golden file'


def test_same_spec_same_bytes() -> None:
    first = rendered(EXAMPLES[0])
    second = rendered(EXAMPLES[0])
    assert first == second


def test_inventory_groups_and_host_vars() -> None:
    spec = load_spec(ROOT / 'examples' / 'newsletter-publisher.yml', as_of=AS_OF)
    files = render_files(spec, dkim=TEST_DKIM)
    hosts = yaml.safe_load(files['inventory/hosts.yml'].content)['all']['children']
    assert sorted(hosts['mta']['children']['mta_postfix']['hosts']) == ['mx1', 'mx2']
    assert hosts['mta']['children']['mta_postfix']['hosts']['mx1']['ansible_host'] == '198.51.100.5'
    assert sorted(hosts['stream_marketing']['hosts']) == ['mx2']
    assert sorted(hosts['pool_cold_outreach']['hosts']) == ['mx1']
    assert sorted(hosts['inbound_mx']['hosts']) == ['mx1']
    mx1 = yaml.safe_load(files['inventory/host_vars/mx1.yml'].content)
    assert [ip['address'] for ip in mx1['mta_base__sending_ips']] == ['198.51.100.10', '198.51.100.30']
    assert [(s['name'], [ip['address'] for ip in s['ips']]) for s in mx1['mailinfra__host_streams']] == [
        ('transactional', ['198.51.100.10']),
        ('cold_outreach', ['198.51.100.30']),
    ]
    streams = yaml.safe_load(files['inventory/group_vars/all.yml'].content)['mailinfra__streams']
    cold = streams['cold_outreach']
    assert cold['bounce_categories']['quota-issues']['suppress_after'] == 1
    assert cold['bounce_categories']['bad-mailbox'] == {
        'retry': False,
        'retry_after': [],
        'expire_after': 86400,
        'suppress_after': 1,
    }
    marketing = streams['marketing']
    gmail = marketing['isps']['gmail']
    assert gmail == {'limits': {**gmail['limits'], 'max_connections': 4}}  # only the limits differ per stream
    assert gmail['limits']['messages_per_connection'] == 50  # from the catalogue
    assert marketing['retry'] == {'min_backoff': 600, 'max_backoff': 7200, 'queue_lifetime': 86400}
    mx2 = yaml.safe_load(files['inventory/host_vars/mx2.yml'].content)
    rules = {rule['name']: rule for rule in mx1['mta_base__firewall_rules']}
    assert rules['inject-transactional'] == {
        'name': 'inject-transactional',
        'port': 2525,
        'proto': 'tcp',
        'sources': ['10.1.0.0/24'],
    }
    assert rules['smtp-inbound']['port'] == 25
    assert 'smtp-inbound' not in {rule['name'] for rule in mx2['mta_base__firewall_rules']}


def test_inventory_holds_dkim_references_only() -> None:
    spec = load_spec(ROOT / 'examples' / 'high-volume-powermta.yml', as_of=AS_OF)
    all_vars = yaml.safe_load(render_files(spec, dkim=TEST_DKIM)['inventory/group_vars/all.yml'].content)
    keys = [key for key in all_vars['mailinfra__dkim_keys'] if key['domain'] == 'shopmax.example']
    assert [(key['selector'], key['algorithm'], key['signing']) for key in keys] == [
        ('s2026q4', 'rsa', True),
        ('s2026q4e', 'ed25519', True),
        ('s2026q3', 'rsa', False),
        ('s2026q3e', 'ed25519', False),
    ]
    assert keys[0]['key_ref'] == 'shopmax/shopmax.example/s2026q4.rsa.key'
    for output in render_files(spec, dkim=TEST_DKIM).values():
        assert b'PRIVATE KEY' not in output.content


def test_allocated_addresses_come_from_terraform_outputs() -> None:
    spec = load_spec(ROOT / 'examples' / 'high-volume-powermta.yml', as_of=AS_OF)
    allocated = [ip for ip in spec.facts.ips if ip.allocated]
    assert [ip.id for ip in allocated] == [f'reactivation_alloc{n}' for n in range(1, 5)]
    addresses = {ip.id: f'198.18.0.{n}' for n, ip in enumerate(allocated, 1)}
    files = render_files(spec, addresses=addresses, dkim=TEST_DKIM)
    pmta3 = yaml.safe_load(files['inventory/host_vars/pmta3.yml'].content)
    assert [ip['address'] for ip in pmta3['mta_base__sending_ips']] == [f'198.18.0.{n}' for n in range(1, 5)]
    assert [ip['ptr'] for ip in pmta3['mta_base__sending_ips']] == [f'rx{n}.mta.shopmax.example' for n in range(1, 5)]


def test_render_writes_a_complete_tree_and_replaces_it(tmp_path: Path) -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    out = tmp_path / 'out'
    render(spec, out, dkim=TEST_DKIM)
    assert (out / MARKER).exists()
    (out / 'inventory' / 'stale.yml').write_text('old')
    render(spec, out, dkim=TEST_DKIM)
    assert not (out / 'inventory' / 'stale.yml').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out'], 'no staging directories are left behind'


def test_render_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    (tmp_path / 'precious.txt').write_text('keep me')
    with pytest.raises(OutputError, match='not empty and was not written by mailinfra render'):
        render(spec, tmp_path, dkim=TEST_DKIM)
    assert (tmp_path / 'precious.txt').read_text() == 'keep me'


@pytest.mark.parametrize(
    'state', ['terraform.tfstate', 'terraform.tfstate.d/prod/terraform.tfstate', 'terraform.tfstate.backup']
)
def test_render_keeps_local_terraform_state(tmp_path: Path, state: str) -> None:
    """A script's render refuses, as the CLI does, to swap away a tree whose terraform/ holds local state."""
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    out = tmp_path / 'out'
    render(spec, out, renderers=['inventory'])
    kept = out / 'terraform' / state
    kept.parent.mkdir(parents=True)
    kept.write_text('{"version": 4}')
    for force in (False, True):
        with pytest.raises(OutputError, match=f'holds Terraform state, which rendering into {out} would delete'):
            render(spec, out, renderers=['inventory'], force=force)
    assert kept.read_text() == '{"version": 4}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out'], 'no staging directories are left behind'


class _Exploding:
    name = 'exploding'
    description = 'fails half-way through'

    def render(self, context: object) -> list[OutputFile]:
        raise RuntimeError('renderer failed')


def test_failed_render_leaves_the_old_tree(tmp_path: Path) -> None:
    spec = parse_spec(BASE, 'spec.yml', as_of=AS_OF)
    out = tmp_path / 'out'
    render(spec, out, dkim=TEST_DKIM)
    before = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()}
    registry = RendererRegistry([*default_registry(), _Exploding()])
    with pytest.raises(RuntimeError):
        render(spec, out, registry=registry, dkim=TEST_DKIM)
    assert {p: p.read_bytes() for p in out.rglob('*') if p.is_file()} == before


def test_write_failure_midway_keeps_old_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / 'out'
    write_tree({'a.txt': OutputFile('a.txt', b'old')}, out)
    calls = {'n': 0}
    real_open = os.open

    def failing_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        calls['n'] += 1
        if calls['n'] == 2:
            raise OSError(28, 'No space left on device')
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, 'open', failing_open)
    files = {'a.txt': OutputFile('a.txt', b'new'), 'b.txt': OutputFile('b.txt', b'new')}
    with pytest.raises(OSError):
        write_tree(files, out)
    monkeypatch.undo()
    assert (out / 'a.txt').read_bytes() == b'old'
    assert not (out / 'b.txt').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out']


def test_registries_refuse_duplicates() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match='already registered'):
        registry.register(next(iter(default_registry())))
    with pytest.raises(ValueError, match='unknown renderer'):
        registry.select(['nope'])


def test_output_paths_stay_inside(tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        write_tree({'../x': OutputFile('../x', b'')}, tmp_path / 'out')
