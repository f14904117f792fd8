"""``opendkim__*``: the DKIM keys a Postfix host signs with, and the OpenDKIM instances that use them.

OpenDKIM 2.11 has one ``SignatureAlgorithm`` per process and cannot load an Ed25519 key in an RSA
process ("expecting an rsa key"). A domain with ``algorithm: rsa+ed25519`` is therefore signed by two
milters: the stock ``opendkim`` process with the RSA keys and a second ``opendkim-ed25519`` process with
the Ed25519 keys. Every Postfix instance calls both (``postfix__milters``).

A host gets the keys of the domains its streams send from, for every published selector (so a
rotation only moves the signing table), but only the signing selector (the first) is in the signing
table. Key files are copied from the controller's key store by ``key_ref``; the inventory never holds
key material.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from ...paths import project_root
from ..base import RenderContext
from .base import Template
from .core import dkim_keys_by_domain

USER = 'opendkim'


def role_defaults(role: str) -> dict[str, Any]:
    """The role's ``defaults/main.yml``, as written (values that are Jinja expressions stay strings)."""
    return dict(_read_defaults(role))


@functools.cache
def _read_defaults(role: str) -> Mapping[str, Any]:
    """Parsed once per process: every template of every host needs them (20 ms a parse, 70 parses at 10x)."""
    path = project_root() / 'roles' / role / 'defaults' / 'main.yml'
    loaded = yaml.load(path.read_text(encoding='utf-8'), Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
    return MappingProxyType(dict(loaded) if isinstance(loaded, dict) else {})


def template_variables(role: str, inventory: Mapping[str, Any], loop: Mapping[str, Any]) -> dict[str, Any]:
    """What Ansible adds to the inventory when the role renders a template: unset defaults, the loop variable."""
    return {
        **{name: value for name, value in role_defaults(role).items() if name not in inventory},
        **loop,
    }


KEYS_DIR = '/etc/opendkim/keys'
TRUSTED_HOSTS = '/etc/opendkim/TrustedHosts'
RUN_DIR = '/run/opendkim'
LOOPBACK = ('127.0.0.1', '::1')

_INSTANCES: dict[str, dict[str, str]] = {
    'rsa': {
        'name': 'opendkim',
        'unit': 'opendkim.service',
        'config_file': '/etc/opendkim.conf',
        'signature_algorithm': 'rsa-sha256',
        'key_table_file': '/etc/opendkim/KeyTable',
        'signing_table_file': '/etc/opendkim/SigningTable',
    },
    'ed25519': {
        'name': 'opendkim-ed25519',
        'unit': 'opendkim-ed25519.service',
        'config_file': '/etc/opendkim/opendkim-ed25519.conf',
        'signature_algorithm': 'ed25519-sha256',
        'key_table_file': '/etc/opendkim/KeyTable.ed25519',
        'signing_table_file': '/etc/opendkim/SigningTable.ed25519',
    },
}
"""One OpenDKIM process per key algorithm; the RSA one is Debian's own unit and configuration file."""


def is_postfix_host(context: RenderContext, host: str) -> bool:
    return context.facts.host_mta[host] == 'postfix'


def host_domains(context: RenderContext, host: str) -> list[str]:
    """Sending domains of the streams that have IPs on this host, in spec order."""
    order = context.memoize(
        'sending_domain_order',
        lambda: {domain.domain: i for i, domain in enumerate(context.deployment.sending_domains)},
    )
    wanted = {domain for stream in context.facts.streams_of_host(host) for domain in stream.domains}
    return sorted((domain for domain in wanted if domain in order), key=order.__getitem__)


def host_keys(context: RenderContext, host: str) -> list[dict[str, Any]]:
    """The keys this host holds: every selector of its domains, with the path on the host and the key name."""
    by_domain = dkim_keys_by_domain(context)
    keys = []
    for key in (key for domain in host_domains(context, host) for key in by_domain.get(domain, [])):
        keys.append(
            {
                **key,
                'name': f'{key["selector"]}._domainkey.{key["domain"]}',
                'path': f'{KEYS_DIR}/{key["domain"]}/{key["selector"]}.{key["algorithm"]}.key',
            }
        )
    return keys


def instances(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The OpenDKIM processes for these keys: the RSA one, and the Ed25519 one when a domain dual-signs."""
    result = []
    for algorithm in ('rsa', 'ed25519'):
        own = [key for key in keys if key['algorithm'] == algorithm]
        if not own:
            continue
        base = _INSTANCES[algorithm]
        result.append(
            {
                **base,
                'algorithm': algorithm,
                'user': USER,
                'trusted_hosts_file': TRUSTED_HOSTS,
                'socket': f'local:{RUN_DIR}/{base["name"]}.sock',
                'pid_file': f'{RUN_DIR}/{base["name"]}.pid',
                'key_table': [f'{key["name"]} {key["domain"]}:{key["selector"]}:{key["path"]}' for key in own],
                'signing_table': [f'*@{key["domain"]} {key["name"]}' for key in own if key['signing']],
            }
        )
    return result


def milters(context: RenderContext, host: str) -> list[str]:
    """Postfix milter addresses of this host's OpenDKIM processes (``local:`` sockets become ``unix:``)."""
    return ['unix:' + instance['socket'].removeprefix('local:') for instance in instances(host_keys(context, host))]


def internal_hosts(context: RenderContext, host: str) -> list[str]:
    """Clients whose mail is signed: loopback (local submission) and every injection network on the host."""
    networks = [*LOOPBACK]
    for stream in context.facts.streams_of_host(host):
        networks.extend(network for network in stream.injection.networks if network not in networks)
    return networks


class OpenDkimVars:
    """Variables of roles/opendkim (hosts that run Postfix)."""

    name = 'opendkim'

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return {}

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        if not is_postfix_host(context, host):
            return {}
        keys = host_keys(context, host)
        return {
            'opendkim__keys': [
                {field: key[field] for field in ('domain', 'selector', 'algorithm', 'signing', 'key_ref', 'path')}
                for key in keys
            ],
            'opendkim__instances': instances(keys),
            'opendkim__internal_hosts': internal_hosts(context, host),
        }

    def templates(self, context: RenderContext, host: str) -> list[Template]:
        """Every file the role writes from a template on this host (``__opendkim_instance`` per process)."""
        if not is_postfix_host(context, host) or not (keys := host_keys(context, host)):
            return []
        inventory = {**self.group_vars(context), **self.host_vars(context, host)}
        defaults = template_variables(self.name, inventory, {})
        files = [Template('opendkim/templates/etc/opendkim/TrustedHosts.j2', TRUSTED_HOSTS[1:], defaults)]
        if any(key['algorithm'] == 'ed25519' for key in keys):
            files.append(
                Template(
                    'opendkim/templates/etc/systemd/system/opendkim-ed25519.service.j2',
                    'etc/systemd/system/opendkim-ed25519.service',
                    defaults,
                )
            )
        for instance in inventory['opendkim__instances']:
            variables = {**defaults, '__opendkim_instance': instance}
            files += [
                Template(f'opendkim/templates/etc/{template}.j2', instance[path].removeprefix('/'), variables)
                for template, path in (
                    ('opendkim.conf', 'config_file'),
                    ('opendkim/KeyTable', 'key_table_file'),
                    ('opendkim/SigningTable', 'signing_table_file'),
                )
            ]
        return files
