"""Hetzner Cloud: creates the servers that have no address, allocates sending IPv4 addresses, sets reverse DNS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...facts.ips import IpFact
from ...model import Host
from .base import IpProvider, Plugin, Root, TerraformRenderError, Token, quoted_key, terraform_name

PLUGIN = Plugin(
    'hcloud',
    'hetznercloud/hcloud',
    '~> 1.68.0',
    Token('token', 'hcloud_token', 'Hetzner Cloud API token (read and write) of the project.'),
)


def server(root: Root, name: str, host: Host) -> dict[str, Any]:
    if not host.region or not host.size:
        raise TerraformRenderError(
            f'host {name} at Hetzner has no address, so Terraform creates it: give its "region" and "size"'
        )
    ssh_keys = root.variable(
        'hetzner_ssh_keys',
        'Names or ids of SSH keys already in the Hetzner project, installed on the servers created here.',
        'list(string)',
        default=[],
        nullable=False,
    )
    return {'server_type': host.size, 'location': host.region, 'image': host.image, 'ssh_keys': ssh_keys}


def arguments(root: Root, ips: Sequence[IpFact]) -> dict[str, Any]:
    args: dict[str, Any] = {'labels': {'mailinfra-client': root.deployment.client.name}}
    servers, existing = {}, {}
    for name, host in root.deployment.hosts.items():
        if host.provider != 'hetzner':
            continue
        if host.address is None:
            servers[name] = server(root, name, host)
            root.host_address[name] = f'data.hcloud_server.{terraform_name("host_", name)}.ipv4_address'
            root.data.setdefault('hcloud_server', {})[terraform_name('host_', name)] = {
                'id': '${' + quoted_key('module.ip_hetzner.server_ids', name) + '}'
            }
        elif any(ip.host == name for ip in ips):
            existing[name] = {
                'id': '${' + quoted_key('var.hetzner_server_ids', name) + '}',
                'location': host.region or '${' + quoted_key('var.hetzner_server_locations', name) + '}',
            }
    if servers:
        args['servers'] = servers
    if existing:
        args['existing_servers'] = existing
        root.variable(
            'hetzner_server_ids',
            'Hetzner server id of each existing machine that carries managed IPs, keyed by host name: '
            + ', '.join(sorted(existing))
            + '.',
            'map(string)',
            nullable=False,
        )
        if any(not root.deployment.hosts[name].region for name in existing):
            root.variable(
                'hetzner_server_locations',
                'Hetzner location of each existing machine whose spec gives no region, keyed by host name.',
                'map(string)',
                nullable=False,
            )
    return args


PROVIDER = IpProvider(
    'hetzner',
    'Hetzner',
    PLUGIN,
    arguments,
    allocation_targets=('hcloud_server.this', 'hcloud_primary_ip.this', 'hcloud_floating_ip.this'),
    creates_servers=True,
)
