"""The Ansible inventory: groups by MTA, stream and pool; the variables our roles read.

Every variable is documented in docs/inventory.md. Each role's variables come from its module in
``render/rolevars/``. Only references to DKIM keys are written, never key material.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import GENERATED_MARK, OutputFile, RenderContext
from .rolevars import RoleVars, default_role_vars, merge
from .serialise import to_yaml


def _groups(context: RenderContext) -> dict[str, Any]:
    deployment, facts = context.deployment, context.facts
    mta_groups: dict[str, dict[str, Any]] = {'mta_postfix': {}, 'mta_powermta': {}}
    for name, host in deployment.hosts.items():
        entry: dict[str, Any] = {'ansible_user': host.ssh_user}
        if host.address is not None:
            entry['ansible_host'] = host.address
        else:
            address = context.addresses.get(f'host_{name}')
            entry['ansible_host'] = address if address is not None else host.fqdn
        mta_groups[f'mta_{facts.host_mta[name]}'][name] = entry
    children: dict[str, Any] = {
        'mta': {'children': {group: {'hosts': hosts} for group, hosts in mta_groups.items()}},
        'inbound_mx': {'hosts': {host: {} for host in (deployment.inbound.hosts or list(deployment.hosts))}},
    }
    for stream in facts.streams.values():
        children[f'stream_{stream.name}'] = {'hosts': {host: {} for host in stream.hosts}}
    for pool, hosts in facts.pool_hosts.items():
        children[f'pool_{pool}'] = {'hosts': {host: {} for host in hosts}}
    return {'all': {'children': children}}


class InventoryRenderer:
    """Writes ``inventory/hosts.yml``, ``group_vars/all.yml`` and one ``host_vars`` file per host."""

    name = 'inventory'
    description = 'Ansible inventory: groups by MTA, stream and pool, and the role variables.'

    def __init__(self, role_vars: list[RoleVars] | None = None) -> None:
        self.role_vars = role_vars if role_vars is not None else default_role_vars()

    def group_vars(self, context: RenderContext) -> dict[str, Any]:
        return context.memoize(
            f'group_vars:{id(self)}', lambda: merge([(role.name, role.group_vars(context)) for role in self.role_vars])
        )

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]:
        return context.memoize(
            f'host_vars:{id(self)}:{host}',
            lambda: merge([(role.name, role.host_vars(context, host)) for role in self.role_vars]),
        )

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        header = f'{GENERATED_MARK}\nSpec: {context.spec_name}. Variables: docs/inventory.md.'
        yield OutputFile('inventory/hosts.yml', to_yaml(_groups(context), header))
        yield OutputFile('inventory/group_vars/all.yml', to_yaml(self.group_vars(context), header))
        for host in context.deployment.hosts:
            yield OutputFile(f'inventory/host_vars/{host}.yml', to_yaml(self.host_vars(context, host), header))
