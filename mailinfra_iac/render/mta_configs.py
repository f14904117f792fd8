"""MTA configuration per host, rendered from the roles' own templates with the host's inventory variables.

The role deploys exactly these files (same template, same variables), so the golden files here show what
lands on a host. Templates get flat values: the data logic is in ``render/rolevars/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jinja2

from ..paths import project_root
from .base import GENERATED_MARK, OutputFile, RenderContext
from .inventory import InventoryRenderer


def _comment(text: str) -> str:
    """Ansible's ``comment`` filter in its default (plain) style: the text between two bare ``#`` lines."""
    return '\n'.join(['#', *(f'# {line}'.rstrip() for line in str(text).splitlines()), '#'])


def template_environment() -> jinja2.Environment:
    """A Jinja environment close to Ansible's for our templates (strict undefined, Ansible's trim settings)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(project_root() / 'roles')),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters['comment'] = _comment
    return environment


class MtaConfigRenderer:
    """Writes ``mta/<host>/<path>`` for every template a role lists for that host."""

    name = 'mta'
    description = "MTA configuration files per host, rendered from the roles' templates."

    def __init__(self, inventory: InventoryRenderer | None = None) -> None:
        self.inventory = inventory or InventoryRenderer()

    def render(self, context: RenderContext) -> Iterator[OutputFile]:
        environment: jinja2.Environment | None = None
        group_vars = self.inventory.group_vars(context)
        for host in context.deployment.hosts:
            variables: dict[str, Any] | None = None
            for role in self.inventory.role_vars:
                templates = getattr(role, 'templates', None)
                if templates is None:
                    continue
                for template in templates(context, host):
                    if environment is None:
                        environment = template_environment()
                    if variables is None:
                        variables = {
                            **group_vars,
                            **self.inventory.host_vars(context, host),
                            'inventory_hostname': host,
                            'ansible_managed': GENERATED_MARK,
                        }
                    text = environment.get_template(template.role_template).render(variables)
                    yield OutputFile(f'mta/{host}/{template.output}', text.encode())
