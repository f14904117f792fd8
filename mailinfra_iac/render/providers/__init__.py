"""IP and DNS providers, one module each: ``ip_<name>.py`` and ``dns_<name>.py`` beside the Terraform module
of the same name under terraform/modules/ (none for ``zonefile``). Each module exposes ``PROVIDER``.

A new provider is that module plus its Terraform module, and its name in the model's ``IpProvider`` or
``DnsProvider`` (a test keeps those in step with this registry).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from .base import DnsProvider, IpProvider, Plugin, Root, TerraformRenderError, quoted_key, terraform_name


@cache
def _registry() -> tuple[dict[str, IpProvider], dict[str, DnsProvider]]:
    ip: dict[str, IpProvider] = {}
    dns: dict[str, DnsProvider] = {}
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        kind, _, name = module.partition('_')
        if kind not in ('ip', 'dns'):
            continue
        provider = importlib.import_module(f'{__name__}.{module}').PROVIDER
        expected = IpProvider if kind == 'ip' else DnsProvider
        if not isinstance(provider, expected) or provider.name != name:
            raise TypeError(f'{__name__}.{module}.PROVIDER must be {expected.__name__}({name!r}, ...)')
        if isinstance(provider, IpProvider):
            ip[name] = provider
        else:
            dns[name] = provider
    return ip, dns


def ip_providers() -> dict[str, IpProvider]:
    """IP provider name -> its declaration, sorted by name."""
    return _registry()[0]


def dns_providers() -> dict[str, DnsProvider]:
    """DNS provider name -> its declaration, sorted by name."""
    return _registry()[1]


@cache
def plugins() -> dict[str, Plugin]:
    """Terraform plug-in name -> its declaration; providers that share a plug-in must declare it the same."""
    found: dict[str, Plugin] = {}
    declared = [provider.plugin for provider in ip_providers().values()]
    declared += [provider.plugin for provider in dns_providers().values()]
    for plugin in sorted((plugin for plugin in declared if plugin is not None), key=lambda plugin: plugin.name):
        if found.setdefault(plugin.name, plugin) != plugin:
            raise TypeError(f'two providers declare the Terraform plug-in {plugin.name} differently')
    return found


__all__ = [
    'DnsProvider',
    'IpProvider',
    'Plugin',
    'Root',
    'TerraformRenderError',
    'dns_providers',
    'ip_providers',
    'plugins',
    'quoted_key',
    'terraform_name',
]
