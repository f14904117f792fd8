"""Render the PowerMTA example for the Molecule scenario, and give its DKIM keys a throw-away key store.

    python render_example.py OUT_DIR KEYS_DIR

Writes ``OUT_DIR/inventory/...`` and ``OUT_DIR/mta/<host>/pmta/config`` exactly as ``mailinfra render`` does
(with the PowerMTA role variables even before ``default_role_vars()`` lists them), and creates the signing keys
the PowerMTA hosts need in ``KEYS_DIR`` (test keys, generated here, never committed).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from mailinfra_iac import load_spec, render
from mailinfra_iac.dkim import KeyStore
from mailinfra_iac.render import DnsRecordsRenderer, RenderContext, RendererRegistry
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.mta_configs import MtaConfigRenderer
from mailinfra_iac.render.rolevars import default_role_vars
from mailinfra_iac.render.rolevars.powermta import PowerMtaVars

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / 'examples' / 'high-volume-powermta.yml'
AS_OF = dt.date(2026, 11, 28)  # the day the golden files are rendered as of (tests/conftest.py)


def main(out_dir: str, keys_dir: str) -> int:
    spec = load_spec(EXAMPLE, as_of=AS_OF)
    roles = default_role_vars()
    if not any(role.name == PowerMtaVars.name for role in roles):
        roles.append(PowerMtaVars())
    inventory = InventoryRenderer(roles)
    registry = RendererRegistry([inventory, DnsRecordsRenderer(), MtaConfigRenderer(inventory)])
    render(spec, out_dir, renderers=['inventory', 'mta'], registry=registry, force=True)

    store = KeyStore(keys_dir)
    context = RenderContext(spec.deployment, spec.facts, spec.name)
    keys = {
        (key['domain'], key['selector'])
        for host in spec.deployment.hosts
        for key in PowerMtaVars().host_vars(context, host).get('powermta__dkim_keys', [])
    }
    for domain, selector in sorted(keys):
        store.ensure(spec.deployment.client.name, domain, selector, 'rsa')
    print(f'rendered {EXAMPLE.name} to {out_dir}; {len(keys)} test DKIM key(s) in {store.root}')
    return 0


if __name__ == '__main__':
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
