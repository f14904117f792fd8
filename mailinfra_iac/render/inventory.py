"""The Ansible inventory: groups by MTA, host role, stream and pool; the variables our roles read.

Every variable is documented in docs/inventory.md. Each role's variables come from its module in
``render/rolevars/``. Only references to DKIM keys are written, never key material.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..facts.hosts import inbound_hosts
from ..model.infrastructure import HostRole
from .base import GENERATED_MARK, OutputFile, RenderContext
from .rolevars import RoleVars, default_role_vars, merge
from .rolevars.base import applies_to
from .serialise import to_yaml

ROLE_GROUPS: dict[HostRole, str] = {'monitoring': 'monitoring', 'database': 'database', 'dns': 'dns_authoritative'}
"""Host role (other than "mta") -> its inventory group; a group is written only when a host has the role."""


def _groups(context: RenderContext) -> dict[str, Any]:
    deployment, facts = context.deployment, context.facts
    mta_groups: dict[str, dict[str, Any]] = {'mta_postfix': {}, 'mta_powermta': {}}
    role_groups: dict[str, dict[str, Any]] = {group: {} for group in ROLE_GROUPS.values()}
    for name, host in deployment.hosts.items():
        entry: dict[str, Any] = {'ansible_user': host.ssh_user}
        if host.address is not None:
            entry['ansible_host'] = host.address
        else:
            address = context.addresses.get(f'host_{name}')
            entry['ansible_host'] = address if address is not None else host.fqdn
        # Connection variables go with the host's first group: its MTA group, else its first role's group.
        if name in facts.host_mta:
            mta_groups[f'mta_{facts.host_mta[name]}'][name] = entry
        placed = name in facts.host_mta
        for role, group in ROLE_GROUPS.items():
            if role in host.roles:
                role_groups[group][name] = {} if placed else entry
                placed = True
    children: dict[str, Any] = {
        'mta': {'children': {group: {'hosts': hosts} for group, hosts in mta_groups.items()}},
        'inbound_mx': {'hosts': {host: {} for host in inbound_hosts(deployment)}},
    }
    for stream in facts.streams.values():
        children[f'stream_{stream.name}'] = {'hosts': {host: {} for host in stream.hosts}}
    for pool, hosts in facts.pool_hosts.items():
        children[f'pool_{pool}'] = {'hosts': {host: {} for host in hosts}}
    for group, members in role_groups.items():
        if members:
            children[group] = {'hosts': members}
    return {'all': {'children': children}}


class InventoryRenderer:
    """Writes ``inventory/hosts.yml``, ``group_vars/all.yml`` and a ``host_vars`` file per host that has variables."""

    name = 'inventory'
    description = 'Ansible inventory: groups by MTA, host role, stream and pool, and the role variables.'

    def __init__(self, role_vars: list[RoleVars] | None = None) -> None:
        self.role_vars = role_vars if role_vars is not None else default_role_vars()

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return context.memoize(
            f'group_vars:{id(self)}', lambda: merge([(role.name, role.group_vars(context)) for role in self.role_vars])
        )

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return context.memoize(
            f'host_vars:{id(self)}:{host}',
            lambda: merge(
                [
                    (role.name, role.host_vars(context, host))
                    for role in self.role_vars
                    if applies_to(role, context.deployment.hosts[host].roles)
                ]
            ),
        )

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        header = f'{GENERATED_MARK}\nSpec: {context.spec_name}. Variables: docs/inventory.md.'
        shared = context.shared  # also the string cache of the render's YAML
        yield OutputFile('inventory/hosts.yml', to_yaml(_groups(context), header, shared))
        yield OutputFile('inventory/group_vars/all.yml', to_yaml(self.group_vars(context), header, shared))
        for host in context.deployment.hosts:
            variables = self.host_vars(context, host)
            if variables:  # a host that no role with host variables runs on has no file
                yield OutputFile(f'inventory/host_vars/{host}.yml', to_yaml(variables, header, shared))
