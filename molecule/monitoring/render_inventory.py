"""Molecule dependency step of the "monitoring" scenario: render the test spec the way a user would.

1. ``mailinfra dkim generate`` and ``mailinfra render`` of ``files/spec.yml`` (as the "default" scenario);
2. an inventory directory for Molecule: the generated ``hosts.yml``, ``group_vars`` and both hosts'
   variables, linked unchanged, plus one extra host_vars file per host with what only the test needs.

The spec's management addresses are the containers' own addresses on the scenario's network, so
Prometheus scrapes the MTA through its firewall as in production. ``ansible_host`` names the container
here (the podman connection reads it), so the monitoring role cannot take the monitoring host's
address from it as it does in production: ``monitoring__scrape_sources`` is set to that address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SCENARIO = Path(__file__).resolve().parent
sys.path.insert(0, str(SCENARIO.parent / 'default'))

from render_inventory import AS_OF, CONTAINER_VARS, FAST_PODMAN, mailinfra, render  # noqa: E402

SPEC = SCENARIO / 'files' / 'spec.yml'
WEBHOOK_TOKEN = 'molecule-webhook-token'
"""For the test container only, which lives minutes; verify.yml checks that Alertmanager sends it."""

# The MTA's marketing address, listed by the test zone (reversed), and the zone's test point.
LISTED_IP = '192.0.2.20'
TEST_ZONE = 'dnsbl.test'


def _connection(container: str) -> dict[str, Any]:
    variables = {key: value for key, value in CONTAINER_VARS.items() if not key.startswith('mta_base__')}
    # No task of these roles becomes a user other than root (who reads /root/.ansible/tmp).
    return {**variables, **FAST_PODMAN, 'ansible_host': container}


def _address(host: str) -> str:
    spec = yaml.safe_load(SPEC.read_text())
    return str(spec['hosts'][host]['address'])


def host_overrides(distro: str, keys: Path, base: Path) -> dict[str, dict[str, Any]]:
    """Test-only variables per host: the connection, container limits and the short timings."""
    mta_vars = {key: value for key, value in CONTAINER_VARS.items() if key.startswith('mta_base__')}
    reversed_ip = '.'.join(reversed(LISTED_IP.split('.')))
    return {
        'mta1': {
            **_connection(f'mailinfra-monitoring-mta-debian{distro}'),
            **mta_vars,
            'opendkim__keys_dir': str(keys),
            'monitoring__scrape_sources': [f'{_address("mon1")}/32'],
            'molecule_mailinfra_dir': str(base),
        },
        'mon1': {
            **_connection(f'mailinfra-monitoring-mon-debian{distro}'),
            # Short timings, for this test only.
            'prometheus__scrape_interval': '2s',
            'prometheus__evaluation_interval': '2s',
            'prometheus__for_override': '4s',
            'alertmanager__group_wait': '2s',
            'alertmanager__group_interval': '5s',
            # Below the container's hard nofile limit (20000); Debian's Prometheus unit asks 32768.
            'prometheus__nofile_limit': 16384,
            # The test zone, served by the local unbound; everything else is refused, so no query
            # leaves the scenario (the catalogue zones are not selected in the spec either).
            'prometheus__unbound_server_options': [
                'local-zone: "." refuse',
                f'local-zone: "{TEST_ZONE}." static',
                f'local-data: "2.0.0.127.{TEST_ZONE}. 60 IN A 127.0.0.2"',
                f'local-data: "{reversed_ip}.{TEST_ZONE}. 60 IN A 127.0.0.2"',
            ],
            'prometheus__secret_files': [
                {'path': '/etc/prometheus/secrets/webhook-token', 'content': WEBHOOK_TOKEN, 'owner': 'prometheus'}
            ],
            'molecule_webhook_token': WEBHOOK_TOKEN,
            'molecule_listed_ip': LISTED_IP,
            'molecule_test_zone': TEST_ZONE,
        },
    }


NETWORK = 'mailinfra-monitoring'
SUBNET = '198.51.100.0/24'
"""The scenario's podman network (molecule.yml puts the containers on it at fixed addresses). Not
internal: apt in the containers reaches the Debian mirror through its NAT, as on podman's default network."""


def ensure_network() -> None:
    """Create the network unless it exists; it outlives the scenario's containers (reruns reuse it)."""
    env = {**os.environ, 'CONTAINERS_CONF': str(SCENARIO.parent / 'containers.conf')}
    if subprocess.run(['podman', 'network', 'exists', NETWORK], env=env, check=False).returncode != 0:
        subprocess.run(['podman', 'network', 'create', '--subnet', SUBNET, NETWORK], env=env, check=True)


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: render_inventory.py MOLECULE_EPHEMERAL_DIRECTORY MOLECULE_DISTRO')
    ephemeral, distro = Path(sys.argv[1]), sys.argv[2]
    base = ephemeral / 'mailinfra'
    keys, out, inventory = base / 'keys', base / 'render', base / 'inventory'
    # The key store survives reruns (``dkim generate`` only adds missing keys).
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(inventory, ignore_errors=True)
    keys.mkdir(parents=True, mode=0o700, exist_ok=True)
    base.chmod(0o700)

    ensure_network()
    mailinfra('dkim', 'generate', '--as-of', AS_OF, '--keys', str(keys), str(SPEC))
    render(SPEC, out, keys)

    inventory.mkdir(parents=True)
    (inventory / 'hosts.yml').symlink_to(out / 'inventory' / 'hosts.yml')
    (inventory / 'group_vars').symlink_to(out / 'inventory' / 'group_vars')
    # A released (or frozen) wheelhouse instead of building the checkout: while the agent's code is being
    # edited, a wheel rebuilt between converge and idempotence would count as a change.
    wheelhouse = os.environ.get('MOLECULE_AGENT_WHEELHOUSE', '')
    for host, overrides in host_overrides(distro, keys, base).items():
        if wheelhouse:
            overrides['agent__wheelhouse'] = wheelhouse
        (inventory / 'host_vars' / host).mkdir(parents=True)
        (inventory / 'host_vars' / host / '10-generated.yml').symlink_to(
            out / 'inventory' / 'host_vars' / f'{host}.yml'
        )
        (inventory / 'host_vars' / host / '20-molecule.yml').write_text(
            '---\n' + json.dumps(overrides, indent=2) + '\n'
        )
    print(f'rendered {SPEC.name} into {out}; Molecule inventory {inventory}')


if __name__ == '__main__':
    main()
