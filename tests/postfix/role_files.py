"""Render the Postfix and OpenDKIM roles' templates the way the roles do, for golden and targeted tests.

The roles render each template with the inventory, their defaults and, for files written once per
instance, the task's loop variable; ``RoleTemplate.variables`` carries the last two. This is what
``MtaConfigRenderer`` does for ``Template`` plus those variables (docs/postfix.md, "Golden files").

Golden files: ``tests/postfix/golden/<example>/<host>/<file>``, regenerated only on purpose with
``python -m tests.postfix.role_files --update`` (review the diff).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from mailinfra_iac import Spec, load_spec
from mailinfra_iac.render.base import GENERATED_MARK, RenderContext
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.mta_configs import template_environment
from mailinfra_iac.render.rolevars import default_role_vars
from mailinfra_iac.render.rolevars.opendkim import OpenDkimVars
from mailinfra_iac.render.rolevars.postfix import PostfixVars

from ..conftest import AS_OF, ROOT, TEST_DKIM

GOLDEN = Path(__file__).resolve().parent / 'golden'
EXAMPLES = [ROOT / 'examples' / 'newsletter-publisher.yml', ROOT / 'examples' / 'saas-transactional.yml']


def inventory_renderer() -> InventoryRenderer:
    """The default role variables with ours added (until they are registered in ``default_role_vars``)."""
    roles = default_role_vars()
    if not any(isinstance(role, PostfixVars) for role in roles):
        roles += [OpenDkimVars(), PostfixVars()]
    return InventoryRenderer(roles)


def context_of(spec: Spec, addresses: dict[str, str] | None = None) -> RenderContext:
    return RenderContext(spec.deployment, spec.facts, spec.name, addresses or {}, TEST_DKIM)


def host_variables(context: RenderContext, host: str) -> dict[str, Any]:
    """The inventory variables of one host, as Ansible sees them."""
    inventory = inventory_renderer()
    return {**inventory.group_vars(context), **inventory.host_vars(context, host)}


def render_role_files(context: RenderContext) -> dict[str, str]:
    """``<host>/<file>`` -> content of every file the Postfix and OpenDKIM roles template on every host."""
    environment = template_environment()
    files = {}
    for host in context.deployment.hosts:
        variables = {**host_variables(context, host), 'inventory_hostname': host, 'ansible_managed': GENERATED_MARK}
        for role in (OpenDkimVars(), PostfixVars()):
            for file in role.role_templates(context, host):
                template = environment.get_template(file.role_template)
                files[f'{host}/{file.output}'] = template.render({**variables, **file.variables})
    return dict(sorted(files.items()))


def rendered(example: Path) -> dict[str, str]:
    return render_role_files(context_of(load_spec(example.relative_to(ROOT), as_of=AS_OF)))


def update() -> None:
    for example in EXAMPLES:
        target = GOLDEN / example.stem
        shutil.rmtree(target, ignore_errors=True)
        for path, content in rendered(example).items():
            destination = target / path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(content)
        print(f'updated {target.relative_to(ROOT)}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--update', action='store_true', required=True)
    parser.parse_args()
    update()
