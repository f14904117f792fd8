"""The Terraform root module: ``terraform/main.tf.json`` calling the repository's modules.

The root is JSON (Terraform's format for generated configuration) and self-contained: the modules it calls
are copied byte for byte into ``terraform/modules/<name>/`` and called by relative path, so the rendered
directory plans the same wherever it lives and whatever the checkout it came from.

What goes where:

- one DNS module call per zone (``dns_<zone>``), except ``zonefile`` zones (the ``dns`` renderer writes their
  zone file); TXT values are rendered for the zone's provider (:mod:`.terraform_txt`);
- one IP module call per IP provider (``ip_<provider>``). Only addresses whose reverse DNS the provider sets
  go there (PTRs in our own in-addr.arpa zones are DNS records). Hetzner VMs are created by ``ip_hetzner``
  (``servers``); addresses given in the spec for a Hetzner VM cannot be adopted by that module, so they go
  to ``ip_static`` with the static addresses: Terraform passes them on, and their reverse DNS is listed in
  the ``ptr_requests`` output;
- ``<ip:ID>``/``<host:NAME>`` placeholders become Terraform expressions (module outputs, a ``hcloud_server``
  data source for a Hetzner VM's own address, or ``var.host_addresses`` for machines created elsewhere);
- ``forward_records`` of each IP module holds the DNS module outputs of its addresses' A records, so reverse
  DNS waits for them;
- outputs ``ip_addresses`` (IP id -> address, plus ``host_<name>`` for VMs), ``addresses_by_pool`` and
  ``ptr_requests``; ``terraform output -json`` feeds ``mailinfra render --terraform-output``.

Credentials never appear in files: provider tokens are sensitive variables without default (set
``TF_VAR_<name>`` in CI), AWS and OVHcloud use their providers' environment variables.

What is particular to one provider (plug-in pin and credential, module arguments, TXT style, the resources
that allocate) is in its module in :mod:`.providers`. The only provider named here is ``static``, which takes
the addresses a server-creating module cannot adopt.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..facts import Facts
from ..facts.ips import IpFact
from ..facts.records import PLACEHOLDER, Record, RecordSet
from ..model import Deployment
from ..paths import data_root
from ..problems import MailinfraError
from .base import GENERATED_MARK, OutputFile, RenderContext
from .dns_records import derived_records
from .providers import IpProvider, Plugin, TerraformRenderError, dns_providers, ip_providers, plugins
from .providers import quoted_key as _quoted_key
from .providers import terraform_name as _name
from .serialise import to_json
from .terraform_txt import CHUNK, TxtStyle, chunk_expression, render_txt

REQUIRED_VERSION = '>= 1.5.0'
MINIMUM_VERSION = (1, 5, 0)


STATIC = 'static'
"""The IP provider of addresses Terraform only passes on (their reverse DNS is requested by hand)."""

IPV4_MAX = len('255.255.255.255')


def _literal(text: str) -> str:
    """Text inside a Terraform JSON string: ``${`` and ``%{`` would start a template sequence."""
    return text.replace('${', '$${').replace('%{', '%%{')


def _hcl_quoted(parts: list[tuple[bool, str]]) -> str:
    """A quoted HCL template from (is_expression, text) parts."""
    out = []
    for is_expression, text in parts:
        if is_expression:
            out.append('${' + text + '}')
        else:
            escaped = text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n').replace('\r', '\\r')
            out.append(_literal(escaped.replace('\t', '\\t')))
    return '"' + ''.join(out) + '"'


def modules_dir() -> Path:
    """The Terraform modules copied into every render: checkout, $MAILINFRA_PROJECT or wheel (paths.py)."""
    try:
        modules = data_root().modules
    except MailinfraError as error:
        raise TerraformRenderError(str(error)) from None
    if not (modules / 'ip_static' / 'main.tf').is_file():
        raise TerraformRenderError(f'the Terraform modules at {modules} are incomplete (no ip_static/main.tf)')
    return modules


def module_files(name: str) -> Iterator[tuple[str, bytes]]:
    """(path relative to the module, content) of every file of a repository module, sorted."""
    root = modules_dir() / name
    for path in sorted(root.rglob('*')):
        relative = path.relative_to(root)
        if path.is_file() and not any(part.startswith('.') for part in relative.parts):
            yield relative.as_posix(), path.read_bytes()


def allocation_targets(root: dict[str, Any]) -> list[str]:
    """``-target`` addresses that create servers and allocated addresses without the DNS records using them."""
    modules = root.get('module', {})
    targets = {provider.module: provider.allocation_targets for provider in ip_providers().values()}
    return [f'module.{name}.{resource}' for name in sorted(modules) for resource in targets.get(name, ())]


def _labels(providers: list[IpProvider]) -> str:
    return ' and '.join(provider.label for provider in providers)


class _Root:
    """Builds the root module of one deployment (the :class:`.providers.Root` its providers see)."""

    def __init__(self, deployment: Deployment, facts: Facts, records: RecordSet) -> None:
        self.deployment = deployment
        self.facts = facts
        self.records = records
        self.ips = {ip.id: ip for ip in facts.ips}
        self.providers: dict[str, Any] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.modules: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.ip_module: dict[str, str] = {}
        """IP id -> name of the module call that carries it."""
        self.known: dict[str, str] = {}
        """IP id -> address, for addresses no module carries (their PTR is in a zone of ours)."""
        self.host_address: dict[str, str] = {}
        """Host name -> expression of the address of a machine Terraform knows only by its id."""

    # -- what goes where ---------------------------------------------------------------------------

    def vm(self, host_name: str | None) -> bool:
        host = self.deployment.hosts.get(host_name or '')
        return host is not None and host.address is None

    def buckets(self) -> dict[str, list[IpFact]]:
        """IP provider -> the IPs its module gets (only addresses whose reverse DNS the provider sets)."""
        buckets: dict[str, list[IpFact]] = defaultdict(list)
        for ptr in self.records.provider_ptrs:
            ip = self.ips[ptr.ip_id]
            provider = ip.provider
            if provider is None or ip.host is None:
                if ip.address is None:
                    raise TerraformRenderError(f'IP {ip.id} has no host, so no provider can allocate it')
                self.known[ip.id] = ip.address
                continue
            if ip_providers()[provider].creates_servers and ip.address is not None and self.vm(ip.host):
                provider = STATIC  # the module cannot adopt a given address for a server it creates
            buckets[provider].append(ip)
        carried = {ptr.ip_id for ptr in self.records.provider_ptrs}
        for ip in self.facts.ips:
            if ip.id not in carried and ip.address is not None:
                self.known[ip.id] = ip.address
        for host in self.deployment.hosts.values():
            if host.address is None and ip_providers()[host.provider].creates_servers:
                buckets.setdefault(host.provider, [])
        return dict(sorted(buckets.items()))

    # -- pieces --------------------------------------------------------------------------------------

    def variable(self, name: str, description: str, type_: str, **extra: Any) -> str:
        self.variables[name] = {'description': description, 'type': type_, **extra}
        return f'${{var.{name}}}'

    def use_plugin(self, plugin: Plugin | None) -> None:
        if plugin is not None and plugin.name not in self.providers:
            self.providers[plugin.name] = plugin.config(self)

    # -- expressions -----------------------------------------------------------------------------------

    def resolve(self, match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == 'ip':
            module = self.ip_module.get(name)
            if module is None:
                raise TerraformRenderError(f'no Terraform module allocates IP {name}')
            return _quoted_key(f'module.{module}.addresses', name)
        expression = self.host_address.get(name)
        if expression is None:
            raise TerraformRenderError(f'host {name} has no address and no Terraform module creates it')
        return expression

    def parts(self, value: str) -> list[tuple[bool, str]]:
        parts: list[tuple[bool, str]] = []
        position = 0
        for match in PLACEHOLDER.finditer(value):
            if match.start() > position:
                parts.append((False, value[position : match.start()]))
            parts.append((True, self.resolve(match)))
            position = match.end()
        if position < len(value) or not parts:
            parts.append((False, value[position:]))
        return parts

    def value(self, record: Record, value: str, style: TxtStyle) -> str:
        parts = self.parts(value)
        dynamic = any(is_expression for is_expression, _ in parts)
        if record.type == 'TXT' and not dynamic:
            return _literal(render_txt(value, style))
        longest = sum(IPV4_MAX if is_expression else len(text.encode()) for is_expression, text in parts)
        if record.type == 'TXT' and longest > CHUNK:
            return '${' + chunk_expression(_hcl_quoted(parts), style) + '}'
        return ''.join('${' + text + '}' if is_expression else _literal(text) for is_expression, text in parts)

    # -- module calls ----------------------------------------------------------------------------------

    def ip_entry(self, ip: IpFact) -> dict[str, Any]:
        entry = {'pool': ip.pool, 'host': ip.host, 'ptr': ip.ptr}
        if ip.address is not None:
            entry['address'] = ip.address
        return {key: _literal(str(value)) for key, value in entry.items()}

    def ip_modules(self, buckets: dict[str, list[IpFact]]) -> None:
        for name, ips in buckets.items():
            provider = ip_providers()[name]
            self.use_plugin(provider.plugin)
            for ip in ips:
                self.ip_module[ip.id] = provider.module
            call: dict[str, Any] = {
                'source': f'./modules/{provider.module}',
                'ips': {ip.id: self.ip_entry(ip) for ip in ips},
                **provider.arguments(self, ips),
            }
            others = sorted({ip.provider for ip in ips if ip.provider is not None and ip.provider != name})
            adopted = [ip_providers()[other] for other in others]
            if adopted:
                call['//'] = (
                    f'Holds the addresses the spec gives for {_labels(adopted)} servers created here too: '
                    f'{" and ".join(other.module for other in adopted)} cannot adopt them. Assign them to the '
                    'servers and request their reverse DNS (output ptr_requests).'
                )
            self.modules[provider.module] = call
        vm_elsewhere = sorted(
            name
            for name, host in self.deployment.hosts.items()
            if host.address is None and name not in self.host_address
        )
        for name in vm_elsewhere:
            self.host_address[name] = _quoted_key('var.host_addresses', name)
        if vm_elsewhere:
            self.variable(
                'host_addresses',
                'Own address of each machine that has no address in the spec and is not created here, keyed by '
                'host name: ' + ', '.join(vm_elsewhere) + '.',
                'map(string)',
                nullable=False,
            )

    def dns_modules(self) -> dict[str, tuple[str, str]]:
        """One call per zone; returns A-record FQDN -> (module, record id) for ``forward_records``."""
        forward: dict[str, tuple[str, str]] = {}
        zones = {zone.name: zone for zone in self.deployment.dns.zones}
        for zone_name, records in sorted(self.records.by_zone().items()):
            zone = zones[zone_name]
            provider = dns_providers()[zone.provider]
            if provider.arguments is None or provider.txt_style is None:
                continue  # no Terraform: the dns renderer writes the zone file
            style = provider.txt_style
            name = _name('dns_', zone_name)
            if name in self.modules:
                raise TerraformRenderError(f'two zones map to the Terraform module name {name}')
            call: dict[str, Any] = {'source': f'./modules/{provider.module}', 'zone': zone_name}
            call.update(provider.arguments(self, zone))
            call['records'] = {
                record.key: {
                    'name': record.name,
                    'type': record.type,
                    'ttl': record.ttl,
                    'values': [self.value(record, value, style) for value in record.values],
                }
                for record in records
            }
            self.modules[name] = call
            for record in records:
                if record.type == 'A':
                    forward[record.fqdn] = (name, record.key)
        return forward

    def wire_forward_records(self, forward: dict[str, tuple[str, str]]) -> None:
        for module, call in self.modules.items():
            if not module.startswith('ip_'):
                continue
            wanted = {}
            for ip_id in call['ips']:
                target = forward.get(self.ips[ip_id].ptr)
                if target is not None:
                    wanted[ip_id] = '${' + _quoted_key(f'module.{target[0]}.fqdns', target[1]) + '}'
            call['forward_records'] = wanted

    # -- the whole root ----------------------------------------------------------------------------------

    def note_first_apply(self) -> None:
        """A DNS module that keys its resources by value needs the values Terraform allocates to exist first."""
        targets = ' '.join(f'-target={target}' for target in allocation_targets({'module': self.modules}))
        by_value = {f'./modules/{provider.module}' for provider in dns_providers().values() if provider.keyed_by_value}
        for call in self.modules.values():
            dynamic = any('${' in value for record in call.get('records', {}).values() for value in record['values'])
            if call['source'] in by_value and dynamic:
                call['//'] = (
                    'Some values are known only after Terraform has created servers and addresses, and this module '
                    f'keys its resources by value. On the first run, create those first: terraform apply {targets}'
                )

    def build(self, spec_name: str) -> dict[str, Any]:
        self.ip_modules(self.buckets())
        self.wire_forward_records(self.dns_modules())
        self.note_first_apply()
        ip_parts = [f'module.{name}.addresses' for name in sorted(self.modules) if name.startswith('ip_')]
        locals_: dict[str, Any] = {}
        if self.known:
            locals_['known_addresses'] = dict(sorted(self.known.items()))
            ip_parts.append('local.known_addresses')
        locals_['ip_addresses'] = '${merge(' + ', '.join(ip_parts) + ')}' if ip_parts else {}
        hosts = {f'host_{name}': '${' + expression + '}' for name, expression in sorted(self.host_address.items())}
        locals_['host_addresses'] = hosts
        pools: dict[str, list[str]] = defaultdict(list)
        for ip in self.facts.ips:
            pools[ip.pool].append(ip.id)
        locals_['pool_ips'] = {pool: sorted(ids) for pool, ids in sorted(pools.items())}
        root: dict[str, Any] = {
            '//': f'{GENERATED_MARK} Rendered from {spec_name}.',
            'terraform': {
                'required_version': REQUIRED_VERSION,
                'required_providers': {
                    name: {'source': plugins()[name].source, 'version': plugins()[name].version}
                    for name in sorted(self.providers)
                },
            },
            'locals': locals_,
            'module': self.modules,
            'output': {
                'ip_addresses': {
                    'description': 'Address of every sending IP by IP id, and host_<name> for machines without '
                    'an address in the spec: give `terraform output -json` to `mailinfra render --terraform-output`.',
                    'value': '${merge(local.ip_addresses, local.host_addresses)}',
                },
                'addresses_by_pool': {
                    'description': 'Addresses of each pool, sorted as strings.',
                    'value': '${{for pool, ids in local.pool_ips : pool => sort([for id in ids : '
                    'local.ip_addresses[id]])}}',
                },
                'ptr_requests': {
                    'description': 'Reverse DNS to request by hand from the owner of the addresses ("ADDRESS -> '
                    'NAME"): addresses Terraform does not manage.',
                    'value': '${module.ip_static.ptr_requests}' if 'ip_static' in self.modules else [],
                },
            },
        }
        if self.providers:
            root['provider'] = self.providers
        if self.variables:
            root['variable'] = self.variables
        if self.data:
            root['data'] = self.data
        return root


def terraform_root(context: RenderContext) -> dict[str, Any]:
    """The root module as data (before serialisation). Addresses from Terraform outputs are not used:
    the root refers to the modules' outputs instead, so it stays a function of the spec alone."""
    records = derived_records(context)
    return _Root(context.deployment, context.facts, records).build(context.spec_name)


class TerraformRenderer:
    """Writes terraform/main.tf.json and a copy of every module it calls under terraform/modules/."""

    name = 'terraform'
    description = 'Terraform root module (JSON) with DNS records, sending IPs, servers and reverse DNS.'

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        root = terraform_root(context)
        yield OutputFile('terraform/main.tf.json', to_json(root))
        for name in sorted({call['source'].rpartition('/')[2] for call in root['module'].values()}):
            for path, content in module_files(name):
                yield OutputFile(f'terraform/modules/{name}/{path}', content)
