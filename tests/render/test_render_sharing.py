"""What several files of one render share is built once and reused; the output stays what it was (goldens)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mailinfra_iac import Spec, load_spec
from mailinfra_iac.render import RenderContext, default_registry
from mailinfra_iac.render.dns_records import record_set
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.monitoring import rule_groups
from mailinfra_iac.render.mta_configs import MtaConfigRenderer, _MemoryBytecodeCache
from mailinfra_iac.render.serialise import to_yaml

from ..conftest import AS_OF, ROOT, TEST_DKIM


@pytest.fixture(scope='module')
def powermta() -> Spec:
    return load_spec((ROOT / 'examples' / 'high-volume-powermta.yml').relative_to(ROOT), as_of=AS_OF)


def _context(spec: Spec, addresses: dict[str, str] | None = None) -> RenderContext:
    return RenderContext(spec.deployment, spec.facts, spec.name, addresses or {}, TEST_DKIM)


def test_hosts_contracts_share_sections_and_write_them_alike(powermta: Spec) -> None:
    context = _context(powermta)
    inventory = InventoryRenderer()
    first, second = (inventory.host_vars(context, host)['agent__contract'] for host in ('pmta1', 'pmta2'))
    assert first['host']['name'] == 'pmta1' and second['host']['name'] == 'pmta2'
    for section in ('bounce_rules', 'thresholds', 'store', 'retention', 'webhook', 'blocklists'):
        assert first[section] is second[section], section
        assert id(first[section]) in context.shared._yaml
    rules = inventory.host_vars(context, 'pmta1')['powermta__pattern_lists'][0]['rules']
    assert any(rules is item['rules'] for item in inventory.host_vars(context, 'pmta2')['powermta__pattern_lists'])
    # written from the shared lines, the file is what the emitter writes without them
    variables = inventory.host_vars(context, 'pmta2')
    assert to_yaml(variables, 'h', context.shared) == to_yaml(variables, 'h')


def test_a_monitoring_hosts_contract_has_its_own_blocklist_subjects(powermta: Spec) -> None:
    context = _context(powermta)
    inventory = InventoryRenderer()
    mta, monitoring = (inventory.host_vars(context, host)['agent__contract'] for host in ('pmta1', 'ops1'))
    assert monitoring['blocklists']['subjects'] != mta['blocklists']['subjects']
    assert monitoring['blocklists']['zones'] is mta['blocklists']['zones']
    assert monitoring['dns_expectations'] and not mta['dns_expectations']


def test_the_mta_renderer_of_the_default_registry_reuses_the_inventorys_variables() -> None:
    renderers = {renderer.name: renderer for renderer in default_registry()}
    mta = renderers['mta']
    assert isinstance(mta, MtaConfigRenderer) and mta.inventory is renderers['inventory']


def test_release_drops_what_the_renderers_shared(powermta: Spec) -> None:
    context = _context(powermta)
    InventoryRenderer().host_vars(context, 'pmta1')
    assert context.memo and context.shared._yaml
    context.release()
    assert not context.memo and not context.shared._yaml


def test_resolved_records_once_per_render_and_unchanged_without_addresses(powermta: Spec) -> None:
    context = _context(powermta)
    records = record_set(context)
    assert record_set(context) is records
    assert records.resolve({}) is records
    placeholder = next(value for record in records.records for value in record.values if '<ip:' in value)
    ip_id = placeholder.split('<ip:', 1)[1].split('>', 1)[0]
    filled = _context(powermta, {ip_id: '192.0.2.200'})
    assert any('192.0.2.200' in value for record in record_set(filled).records for value in record.values)


def test_a_changed_template_is_compiled_again(tmp_path: Path) -> None:
    """The process-wide compiled templates are checked against the source: an edited template is not stale."""
    cache = _MemoryBytecodeCache()  # the class of the process-wide cache, which only template_environment() may use
    (tmp_path / 't.j2').write_text('one {{ x }}', encoding='utf-8')
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)), bytecode_cache=cache)
    assert environment.get_template('t.j2').render(x=1) == 'one 1'
    (tmp_path / 't.j2').write_text('two {{ x }}', encoding='utf-8')
    again = jinja2.Environment(loader=jinja2.FileSystemLoader(str(tmp_path)), bytecode_cache=cache)
    assert again.get_template('t.j2').render(x=2) == 'two 2'


def test_rule_groups_once_per_render_and_the_monitoring_hosts_share_them(powermta: Spec) -> None:
    context = _context(powermta)
    assert rule_groups(context) is rule_groups(context)
    variables = InventoryRenderer().host_vars(context, 'ops1')
    assert id(variables['prometheus__rule_groups']) in context.shared._yaml
    assert rule_groups(_context(powermta)) == rule_groups(context)


def test_a_render_keeps_no_strings_once_done(powermta: Spec) -> None:
    """The YAML string cache is the render's: filled by the inventory and monitoring files, dropped by release."""
    context = _context(powermta)
    files = default_registry().render(context)
    assert 'inventory/hosts.yml' in files and 'monitoring/prometheus/prometheus.yml' in files
    assert context.shared._strings['pmta1'] == 'pmta1'
    context.release()
    assert not context.shared._strings
