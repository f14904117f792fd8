"""The provider registry: one module per IP or DNS provider, in step with the model and terraform/modules/."""

from __future__ import annotations

from typing import get_args

import hcl2
import pytest
from root_helpers import module_pins
from tf_helpers import MODULES, MODULES_DIR

from mailinfra_iac.model.dns import DnsProvider as DnsProviderName
from mailinfra_iac.model.infrastructure import IpProvider as IpProviderName
from mailinfra_iac.render import providers
from mailinfra_iac.render.providers import IpProvider, Plugin, dns_providers, ip_providers, plugins

IP = sorted(ip_providers())
DNS = sorted(dns_providers())


def test_the_model_accepts_exactly_the_registered_providers() -> None:
    assert sorted(get_args(IpProviderName)) == IP
    assert sorted(get_args(DnsProviderName)) == DNS


def test_every_terraform_module_has_its_provider_and_back() -> None:
    calls = [provider.module for provider in ip_providers().values()]
    calls += [provider.module for provider in dns_providers().values() if provider.terraform]
    assert sorted(calls) == MODULES


@pytest.mark.parametrize('name', IP)
def test_ip_module_pins_the_providers_plugin(name: str) -> None:
    provider = ip_providers()[name]
    plugin = provider.plugin
    expected = {} if plugin is None else {plugin.name: {'source': plugin.source, 'version': plugin.version}}
    assert module_pins(provider.module) == expected


@pytest.mark.parametrize('name', [name for name in DNS if dns_providers()[name].terraform])
def test_dns_module_pins_the_providers_plugin(name: str) -> None:
    provider = dns_providers()[name]
    plugin = provider.plugin
    assert plugin is not None
    assert provider.txt_style is not None
    assert module_pins(provider.module) == {plugin.name: {'source': plugin.source, 'version': plugin.version}}


def test_a_zone_without_terraform_has_no_plugin_and_no_txt_style() -> None:
    zonefile = dns_providers()['zonefile']
    assert (zonefile.terraform, zonefile.plugin, zonefile.txt_style) == (False, None, None)


@pytest.mark.parametrize('name', IP)
def test_allocation_targets_are_resources_of_the_module(name: str) -> None:
    provider = ip_providers()[name]
    resources = set()
    for path in sorted((MODULES_DIR / provider.module).glob('*.tf')):
        with path.open(encoding='utf-8') as handle:
            for group in hcl2.load(handle).get('resource', []):
                for kind, bodies in group.items():
                    resources |= {f'{kind.strip(chr(34))}.{label.strip(chr(34))}' for label in bodies}
    assert set(provider.allocation_targets) <= resources


def test_a_plugin_declared_twice_must_be_declared_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plugins()['aws'] is ip_providers()['aws'].plugin is dns_providers()['route53'].plugin
    other = Plugin('aws', 'hashicorp/aws', '~> 5.0.0')
    changed = {**ip_providers(), 'aws': IpProvider('aws', 'AWS', other)}
    monkeypatch.setattr(providers, 'ip_providers', lambda: changed)
    with pytest.raises(TypeError, match='plug-in aws differently'):
        providers.plugins.__wrapped__()


def test_a_module_must_declare_the_provider_it_is_named_after(monkeypatch: pytest.MonkeyPatch) -> None:
    real = providers.importlib.import_module

    def misnamed(name: str) -> object:
        module = real(name)
        if name.endswith('.ip_vultr'):
            return type('Module', (), {'PROVIDER': ip_providers()['linode']})
        return module

    monkeypatch.setattr(providers.importlib, 'import_module', misnamed)
    with pytest.raises(TypeError, match=r'ip_vultr.PROVIDER must be IpProvider\(\'vultr\''):
        providers._registry.__wrapped__()
