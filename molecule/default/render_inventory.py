"""Molecule dependency step of the "default" scenario: render the test spec the way a user would.

1. ``mailinfra dkim generate`` into a fresh key store under the scenario's ephemeral directory;
2. ``mailinfra render`` of ``files/spec.yml`` (inventory, DNS records, MTA configuration);
3. ``mailinfra records --format json``, the public keys the DNS layer publishes (verify.yml checks the
   DKIM signatures against them);
4. an inventory directory for Molecule: the generated ``hosts.yml``, ``group_vars`` and host variables,
   linked unchanged, plus one extra host_vars file with what only the test needs (the podman
   connection, container limits, the temporary key store, a SASL password).

``benchmarks/postfix/run.py`` uses :func:`render` and :func:`container_inventory` too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    mailinfra('render', '--as-of', AS_OF, '--keys', str(keys), '--force', '-o', str(out), str(spec))


CONTAINER_VARS: dict[str, Any] = {
    'ansible_connection': 'containers.podman.podman',
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
    # The feedback role's keys (signing, address hash), from a vault in production; for these test containers only.
    'feedback__signing_key': 'molecule-feedback-signing-key-0123456789abcdef',
    'feedback__hash_key': 'molecule-feedback-address-hash-key-0123456789ab',
}
"""What every converge into one of our podman containers needs on top of the generated variables."""

FAST_PODMAN: dict[str, Any] = {
    # The podman connection plus `podman exec -i` (molecule/shared/connection_plugins): a module that needs no file
    # comes over stdin, one `podman exec` instead of three.
    'ansible_connection': 'podman_pipelined',
    'ansible_pipelining': True,
    # Without a remote user the podman connection writes each module into the container through
    # `podman mount` (rootful) instead of `podman cp` plus `podman exec chown`; become then runs sudo
    # (in the images) as root, the same user.
    'ansible_user': '',
    # An absolute remote tmp spares the `podman exec ... echo ~` before every module.
    'ansible_remote_tmp': '/root/.ansible/tmp',
}
"""One `podman exec` per module that needs no file (eight podman calls with the plain connection), same container,
same user: CI time (scenarios default, feedback and monitoring; mta_base and powermta set the same in their
molecule.yml). Only where no task becomes a user other than root: that user could not read the module files under
/root/.ansible/tmp."""


def container_inventory(
    out: Path, inventory: Path, container: str, keys: Path, extra: dict[str, Any], file_name: str
) -> None:
    """An inventory directory: the rendered ``hosts.yml``, ``group_vars`` and host variables of ``HOST``
    linked unchanged, plus ``host_vars/HOST/<file_name>`` with :data:`CONTAINER_VARS`, the container,
    the key store and ``extra``."""
    (inventory / 'host_vars' / HOST).mkdir(parents=True)
    (inventory / 'hosts.yml').symlink_to(out / 'inventory' / 'hosts.yml')
    (inventory / 'group_vars').symlink_to(out / 'inventory' / 'group_vars')
    (inventory / 'host_vars' / HOST / '10-generated.yml').symlink_to(out / 'inventory' / 'host_vars' / f'{HOST}.yml')
    overrides = {**CONTAINER_VARS, 'ansible_host': container, 'opendkim__keys_dir': str(keys), **extra}
    (inventory / 'host_vars' / HOST / file_name).write_text('---\n' + json.dumps(overrides, indent=2) + '\n')


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

    container_inventory(
        out,
        inventory,
        f'mailinfra-default-debian{distro}',
        keys,
        {
            'postfix__sasl_passwords': {'newsletter-app': SASL_PASSWORD},
            # Where verify.yml finds the render output and the published DNS records.
            'molecule_mailinfra_dir': str(base),
            'molecule_mailinfra_spec': str(SPEC),
            **FAST_PODMAN,
        },
        '20-molecule.yml',
    )
    print(f'rendered {SPEC.name} into {out}; Molecule inventory {inventory}')


if __name__ == '__main__':
    main()
