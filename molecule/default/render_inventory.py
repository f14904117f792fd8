"""Molecule dependency step of the "default" scenario: render the test spec the way a user would.

1. ``mailinfra dkim generate`` into a fresh key store under the scenario's ephemeral directory;
2. ``mailinfra render`` of ``files/spec.yml`` (inventory, DNS records, MTA configuration);
3. ``mailinfra records --format json``, the public keys the DNS layer publishes (verify.yml checks the
   DKIM signatures against them);
4. an inventory directory for Molecule: the generated ``hosts.yml``, ``group_vars`` and host variables,
   linked unchanged, plus one extra host_vars file with what only the test needs (the podman
   connection, container limits, the temporary key store, a SASL password).

Until ``PostfixVars``/``OpenDkimVars`` are registered in ``default_role_vars()``, step 2 uses the same
API with them added (the CLI would render an inventory without the Postfix variables).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

from mailinfra_iac import api
from mailinfra_iac.render import RendererRegistry
from mailinfra_iac.render.dns_records import DnsRecordsRenderer
from mailinfra_iac.render.inventory import InventoryRenderer
from mailinfra_iac.render.mta_configs import MtaConfigRenderer
from mailinfra_iac.render.rolevars import default_role_vars
from mailinfra_iac.render.rolevars.opendkim import OpenDkimVars
from mailinfra_iac.render.rolevars.postfix import PostfixVars

SCENARIO = Path(__file__).resolve().parent
SPEC = SCENARIO / 'files' / 'spec.yml'
HOST = 'mta1'
AS_OF = '2026-11-28'
SASL_PASSWORD = 'molecule-test-password'
"""For the test container only, which lives minutes."""


def mailinfra(*args: str) -> str:
    command = [str(Path(sys.executable).parent / 'mailinfra'), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def render(spec: Path, out: Path, keys: Path) -> None:
    roles = default_role_vars()
    if any(isinstance(role, PostfixVars) for role in roles):
        mailinfra('render', '--as-of', AS_OF, '--keys', str(keys), '--force', '-o', str(out), str(spec))
        return
    roles += [OpenDkimVars(), PostfixVars()]
    inventory = InventoryRenderer(roles)
    registry = RendererRegistry([inventory, DnsRecordsRenderer(), MtaConfigRenderer(inventory)])
    loaded = api.load_spec(spec, as_of=dt.date.fromisoformat(AS_OF))
    api.render(loaded, out, registry=registry, dkim=api.keystore_dkim(loaded, keys), force=True)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: render_inventory.py MOLECULE_EPHEMERAL_DIRECTORY MOLECULE_DISTRO')
    ephemeral, distro = Path(sys.argv[1]), sys.argv[2]
    base = ephemeral / 'mailinfra'
    keys, out, inventory = base / 'keys', base / 'render', base / 'inventory'
    # The key store survives reruns (``dkim generate`` only adds missing keys): new keys on every
    # "molecule converge" would make the keys task report a change.
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(inventory, ignore_errors=True)
    keys.mkdir(parents=True, mode=0o700, exist_ok=True)
    base.chmod(0o700)

    mailinfra('dkim', 'generate', '--as-of', AS_OF, '--keys', str(keys), str(SPEC))
    render(SPEC, out, keys)
    records = mailinfra('records', '--format', 'json', '--as-of', AS_OF, '--keys', str(keys), str(SPEC))
    (base / 'records.json').write_text(records)

    (inventory / 'host_vars' / HOST).mkdir(parents=True)
    (inventory / 'hosts.yml').symlink_to(out / 'inventory' / 'hosts.yml')
    (inventory / 'group_vars').symlink_to(out / 'inventory' / 'group_vars')
    (inventory / 'host_vars' / HOST / '10-generated.yml').symlink_to(out / 'inventory' / 'host_vars' / f'{HOST}.yml')
    overrides = {
        'ansible_connection': 'containers.podman.podman',
        'ansible_host': f'mailinfra-default-debian{distro}',
        'ansible_user': 'root',
        'ansible_python_interpreter': '/usr/bin/python3',
        # The container runtime owns the UTS namespace and mounts /proc/sys read-only.
        'mta_base__manage_kernel_hostname': False,
        'mta_base__sysctl_apply': False,
        # Below the hard limit (20000) our containers.conf gives the container.
        'mta_base__nofile_limit': 16384,
        # No NIC to spare in the container: the sending addresses go on lo.
        'mta_base__ip_interface': 'lo',
        'mta_base__ntp_servers': ['192.0.2.123'],
        'opendkim__keys_dir': str(keys),
        'postfix__sasl_passwords': {'newsletter-app': SASL_PASSWORD},
        # Where verify.yml finds the render output and the published DNS records.
        'molecule_mailinfra_dir': str(base),
        'molecule_mailinfra_spec': str(SPEC),
    }
    (inventory / 'host_vars' / HOST / '20-molecule.yml').write_text('---\n' + json.dumps(overrides, indent=2) + '\n')
    print(f'rendered {SPEC.name} into {out}; Molecule inventory {inventory}')


if __name__ == '__main__':
    main()
