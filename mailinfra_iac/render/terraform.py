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
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dns import Record, RecordSet
from ..dns.records import PLACEHOLDER
from ..facts import Facts
from ..facts.ips import IpFact
from ..model import Deployment, Host
from ..problems import MailinfraError
from .base import GENERATED_MARK, OutputFile, RenderContext
from .dns_records import derived_records
from .serialise import to_json
from .terraform_txt import CHUNK, TXT_STYLE, chunk_expression, render_txt

MODULES_DIR = Path(__file__).resolve().parents[2] / 'terraform' / 'modules'
"""The repository's Terraform modules, copied into every render."""

REQUIRED_VERSION = '>= 1.5.0'
MINIMUM_VERSION = (1, 5, 0)


@dataclass(frozen=True)
class ProviderPin:
    source: str
    version: str


PROVIDER_PINS: dict[str, ProviderPin] = {
    'aws': ProviderPin('hashicorp/aws', '~> 6.25.0'),
    'cloudflare': ProviderPin('cloudflare/cloudflare', '~> 5.14.0'),
    'dns': ProviderPin('hashicorp/dns', '~> 3.4.3'),
    'hcloud': ProviderPin('hetznercloud/hcloud', '~> 1.68.0'),
    'linode': ProviderPin('linode/linode', '~> 3.13.0'),
    'ovh': ProviderPin('ovh/ovh', '~> 2.19.0'),
    'vultr': ProviderPin('vultr/vultr', '~> 2.32.0'),
}
"""Terraform provider local name -> source and version, exactly as pinned in the modules' versions.tf."""

DNS_MODULES: dict[str, tuple[str, str]] = {
    'cloudflare': ('dns_cloudflare', 'cloudflare'),
    'route53': ('dns_route53', 'aws'),
    'rfc2136': ('dns_rfc2136', 'dns'),
}
"""Zone provider -> (module, Terraform provider). ``zonefile`` zones get no Terraform."""

IP_MODULES: dict[str, tuple[str, str | None]] = {
    'aws': ('ip_aws', 'aws'),
    'hetzner': ('ip_hetzner', 'hcloud'),
    'linode': ('ip_linode', 'linode'),
    'ovh': ('ip_ovh', 'ovh'),
    'static': ('ip_static', None),
    'vultr': ('ip_vultr', 'vultr'),
}
"""IP provider -> (module, Terraform provider)."""

ALLOCATION_TARGETS: dict[str, tuple[str, ...]] = {
    'ip_aws': ('aws_eip.this',),
    'ip_hetzner': ('hcloud_server.this', 'hcloud_primary_ip.this', 'hcloud_floating_ip.this'),
    'ip_linode': ('linode_instance_ip.this',),
    'ip_vultr': ('vultr_reserved_ip.this',),
}
"""Resources inside each IP module that allocate addresses (and servers), for a first targeted apply."""

_TOKENS: dict[str, tuple[str, str, str]] = {
    'cloudflare': ('api_token', 'cloudflare_api_token', 'Cloudflare API token with DNS edit rights on the zones.'),
    'hcloud': ('token', 'hcloud_token', 'Hetzner Cloud API token (read and write) of the project.'),
    'linode': ('token', 'linode_token', 'Linode (Akamai) API token.'),
    'vultr': ('api_key', 'vultr_api_key', 'Vultr API key.'),
}
"""Provider -> (argument, variable, description) of its one credential, passed as a sensitive variable."""

IPV4_MAX = len('255.255.255.255')


class TerraformRenderError(MailinfraError):
    """The spec cannot be expressed with the Terraform modules."""


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


def _name(prefix: str, text: str) -> str:
    return prefix + re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')


def _quoted_key(expression: str, key: str) -> str:
    return f'{expression}["{key}"]'


def modules_dir() -> Path:
    if not (MODULES_DIR / 'ip_static' / 'main.tf').is_file():
        raise TerraformRenderError(
            f'the Terraform modules are not at {MODULES_DIR}; render from a source checkout of mailinfra-iac'
        )
    return MODULES_DIR


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
    return [f'module.{name}.{resource}' for name in sorted(modules) for resource in ALLOCATION_TARGETS.get(name, ())]


class _Root:
    """Builds the root module of one deployment."""

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
            if provider == 'hetzner' and ip.address is not None and self.vm(ip.host):
                provider = 'static'  # ip_hetzner cannot adopt a given address for a server it creates
            buckets[provider].append(ip)
        carried = {ptr.ip_id for ptr in self.records.provider_ptrs}
        for ip in self.facts.ips:
            if ip.id not in carried and ip.address is not None:
                self.known[ip.id] = ip.address
        hetzner_vms = [name for name, host in self.deployment.hosts.items() if host.provider == 'hetzner']
        if any(self.vm(name) for name in hetzner_vms):
            buckets.setdefault('hetzner', [])
        return dict(sorted(buckets.items()))

    # -- pieces --------------------------------------------------------------------------------------

    def variable(self, name: str, description: str, type_: str, **extra: Any) -> str:
        self.variables[name] = {'description': description, 'type': type_, **extra}
        return f'${{var.{name}}}'

    def use_provider(self, provider: str | None) -> None:
        if provider is None or provider in self.providers or provider == 'dns':
            return
        config: dict[str, Any] = {}
        if provider in _TOKENS:
            argument, variable, description = _TOKENS[provider]
            config[argument] = self.variable(
                variable, description + ' Set it as TF_VAR_' + variable + '.', 'string', sensitive=True, nullable=False
            )
        elif provider == 'aws':
            regions = sorted({h.region for h in self.deployment.hosts.values() if h.provider == 'aws' and h.region})
            if len(regions) > 1:
                raise TerraformRenderError(
                    f'AWS hosts are in several regions ({", ".join(regions)}); one root module serves one region'
                )
            config['region'] = self.variable(
                'aws_region',
                'AWS region of the provider (Elastic IPs are created there; Route 53 is global). Credentials come '
                'from the AWS environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE).',
                'string',
                default=regions[0] if regions else 'us-east-1',
                nullable=False,
            )
        elif provider == 'ovh':
            config['endpoint'] = self.variable(
                'ovh_endpoint',
                'OVHcloud API endpoint. Credentials come from OVH_APPLICATION_KEY, OVH_APPLICATION_SECRET and '
                'OVH_CONSUMER_KEY.',
                'string',
                default='ovh-eu',
                nullable=False,
            )
        self.providers[provider] = config

    def dns_provider(self, server: str | None) -> str | None:
        """Configure hashicorp/dns for an RFC 2136 server; returns the alias to pass to the module, if any."""
        key = {
            'key_name': self.variable(
                'rfc2136_key_name',
                'TSIG key name for RFC 2136 updates, such as "mailinfra.". Null sends unsigned updates.',
                'string',
                default=None,
            ),
            'key_algorithm': self.variable(
                'rfc2136_key_algorithm', 'TSIG algorithm, such as "hmac-sha256".', 'string', default=None
            ),
            'key_secret': self.variable(
                'rfc2136_key_secret',
                'TSIG secret (base64). Set it as TF_VAR_rfc2136_key_secret.',
                'string',
                default=None,
                sensitive=True,
            ),
        }
        if server is None:
            server = self.variable('rfc2136_server', 'RFC 2136 server for the zones that name none.', 'string')
        configs: list[dict[str, Any]] = self.providers.setdefault('dns', [])
        for config in configs:
            if config['update']['server'] == server:
                return config.get('alias')
        alias = None if not configs else _name('server_', server)
        config = {'update': {'server': server, **key}}
        if alias is not None:
            config['alias'] = alias
        configs.append(config)
        return alias

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

    def value(self, record: Record, value: str, provider: str) -> str:
        parts = self.parts(value)
        dynamic = any(is_expression for is_expression, _ in parts)
        if record.type == 'TXT' and not dynamic:
            return _literal(render_txt(value, TXT_STYLE[provider]))
        longest = sum(IPV4_MAX if is_expression else len(text.encode()) for is_expression, text in parts)
        if record.type == 'TXT' and longest > CHUNK:
            return '${' + chunk_expression(_hcl_quoted(parts), TXT_STYLE[provider]) + '}'
        return ''.join('${' + text + '}' if is_expression else _literal(text) for is_expression, text in parts)

    # -- module calls ----------------------------------------------------------------------------------

    def ip_entry(self, ip: IpFact) -> dict[str, Any]:
        entry = {'pool': ip.pool, 'host': ip.host, 'ptr': ip.ptr}
        if ip.address is not None:
            entry['address'] = ip.address
        return {key: _literal(str(value)) for key, value in entry.items()}

    def hetzner_args(self, ips: list[IpFact]) -> dict[str, Any]:
        args: dict[str, Any] = {'labels': {'mailinfra-client': self.deployment.client.name}}
        servers, existing = {}, {}
        for name, host in self.deployment.hosts.items():
            if host.provider != 'hetzner':
                continue
            if host.address is None:
                servers[name] = self.server(name, host)
                self.host_address[name] = f'data.hcloud_server.{_name("host_", name)}.ipv4_address'
                self.data.setdefault('hcloud_server', {})[_name('host_', name)] = {
                    'id': '${' + _quoted_key('module.ip_hetzner.server_ids', name) + '}'
                }
            elif any(ip.host == name for ip in ips):
                existing[name] = {
                    'id': '${' + _quoted_key('var.hetzner_server_ids', name) + '}',
                    'location': host.region or '${' + _quoted_key('var.hetzner_server_locations', name) + '}',
                }
        if servers:
            args['servers'] = servers
        if existing:
            args['existing_servers'] = existing
            self.variable(
                'hetzner_server_ids',
                'Hetzner server id of each existing machine that carries managed IPs, keyed by host name: '
                + ', '.join(sorted(existing))
                + '.',
                'map(string)',
                nullable=False,
            )
            if any(not self.deployment.hosts[name].region for name in existing):
                self.variable(
                    'hetzner_server_locations',
                    'Hetzner location of each existing machine whose spec gives no region, keyed by host name.',
                    'map(string)',
                    nullable=False,
                )
        return args

    def server(self, name: str, host: Host) -> dict[str, Any]:
        if not host.region or not host.size:
            raise TerraformRenderError(
                f'host {name} at Hetzner has no address, so Terraform creates it: give its "region" and "size"'
            )
        ssh_keys = self.variable(
            'hetzner_ssh_keys',
            'Names or ids of SSH keys already in the Hetzner project, installed on the servers created here.',
            'list(string)',
            default=[],
            nullable=False,
        )
        return {'server_type': host.size, 'location': host.region, 'image': host.image, 'ssh_keys': ssh_keys}

    def provider_args(self, provider: str, ips: list[IpFact]) -> dict[str, Any]:
        hosts = sorted({ip.host for ip in ips if ip.host is not None})
        listed = ', '.join(hosts) or 'none yet'
        if provider == 'hetzner':
            return self.hetzner_args(ips)
        if provider == 'vultr':
            regions = sorted({h.region for h in self.deployment.hosts.values() if h.provider == 'vultr' and h.region})
            region = regions[0] if len(regions) == 1 else None
            return {
                'region': region
                or self.variable('vultr_region', 'Vultr region of the reserved IPs, such as "fra".', 'string'),
                'instance_ids': self.variable(
                    'vultr_instance_ids',
                    f'Vultr instance id (UUID) of each host, keyed by host name: {listed}.',
                    'map(string)',
                    nullable=False,
                ),
            }
        if provider == 'linode':
            return {
                'instance_ids': self.variable(
                    'linode_instance_ids',
                    f'Linode instance id of each host, keyed by host name: {listed}.',
                    'map(string)',
                    nullable=False,
                )
            }
        if provider == 'ovh':
            return {
                'ip_block': self.variable(
                    'ovh_ip_block', 'The OVHcloud IP block (CIDR) the sending addresses belong to.', 'string'
                )
            }
        if provider == 'aws':
            return {
                'instance_ids': self.variable(
                    'aws_instance_ids',
                    f'EC2 instance id of each host whose Elastic IPs are associated, keyed by host name: {listed}.',
                    'map(string)',
                    default={},
                    nullable=False,
                ),
                'tags': {'mailinfra:client': self.deployment.client.name},
            }
        return {}

    def ip_modules(self, buckets: dict[str, list[IpFact]]) -> None:
        for provider, ips in buckets.items():
            module, tf_provider = IP_MODULES[provider]
            self.use_provider(tf_provider)
            for ip in ips:
                self.ip_module[ip.id] = module
            call: dict[str, Any] = {
                'source': f'./modules/{module}',
                'ips': {ip.id: self.ip_entry(ip) for ip in ips},
                **self.provider_args(provider, ips),
            }
            if module == 'ip_static' and any(ip.provider != 'static' for ip in ips):
                call['//'] = (
                    'Holds the addresses the spec gives for Hetzner servers created here too: ip_hetzner cannot '
                    'adopt them. Assign them to the servers and request their reverse DNS (output ptr_requests).'
                )
            self.modules[module] = call
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
            if zone.provider == 'zonefile':
                continue
            module, tf_provider = DNS_MODULES[zone.provider]
            name = _name('dns_', zone_name)
            if name in self.modules:
                raise TerraformRenderError(f'two zones map to the Terraform module name {name}')
            call: dict[str, Any] = {'source': f'./modules/{module}', 'zone': zone_name}
            if zone.provider == 'rfc2136':
                alias = self.dns_provider(zone.server)
                if alias is not None:
                    call['providers'] = {'dns': f'dns.{alias}'}
            else:
                self.use_provider(tf_provider)
                call['zone_id'] = zone.zone_id or self.variable(
                    _name('zone_id_', zone_name), f'Provider zone id of {zone_name}.', 'string'
                )
            call['records'] = {
                record.key: {
                    'name': record.name,
                    'type': record.type,
                    'ttl': record.ttl,
                    'values': [self.value(record, value, zone.provider) for value in record.values],
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
        """dns_cloudflare keys its resources by value: values Terraform has yet to allocate must exist first."""
        targets = ' '.join(f'-target={target}' for target in allocation_targets({'module': self.modules}))
        for call in self.modules.values():
            dynamic = any('${' in value for record in call.get('records', {}).values() for value in record['values'])
            if call['source'].endswith('/dns_cloudflare') and dynamic:
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
                    name: {'source': PROVIDER_PINS[name].source, 'version': PROVIDER_PINS[name].version}
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
