"""The Postfix and OpenDKIM roles' files as ``MtaConfigRenderer`` renders them, for targeted tests.

Their golden files are in the one golden tree, ``tests/golden/<example>/mta/<host>/`` (``script/update-golden``).
"""

from __future__ import annotations

from typing import Any

from mailinfra_iac import Spec
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.mta_configs import MtaConfigRenderer
from mailinfra_iac.render.rolevars import default_role_vars

from ..conftest import ROOT, TEST_DKIM

EXAMPLES = [ROOT / 'examples' / 'newsletter-publisher.yml', ROOT / 'examples' / 'saas-transactional.yml']


def inventory_renderer() -> InventoryRenderer:
    return InventoryRenderer(default_role_vars())


def context_of(spec: Spec, addresses: dict[str, str] | None = None) -> RenderContext:
    return RenderContext(spec.deployment, spec.facts, spec.name, addresses or {}, TEST_DKIM)


def host_variables(context: RenderContext, host: str) -> dict[str, Any]:
    """The inventory variables of one host, as Ansible sees them."""
    inventory = inventory_renderer()
    return {**inventory.group_vars(context), **inventory.host_vars(context, host)}


def render_role_files(context: RenderContext) -> dict[str, str]:
    """``<host>/<path on the host>`` -> content of every file the roles template, e.g. ``mx1/etc/postfix/main.cf``."""
    files = {
        output.path.removeprefix('mta/'): output.content.decode()
        for output in MtaConfigRenderer(inventory_renderer()).render(context)
    }
    return dict(sorted(files.items()))
