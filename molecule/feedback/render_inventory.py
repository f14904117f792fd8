"""Molecule dependency step of the "feedback" scenario: render the test spec the way a user would.

``mailinfra dkim generate`` and ``mailinfra render`` of ``files/spec.yml`` (as the "default" scenario), then an
inventory directory for Molecule: the generated ``hosts.yml``, ``group_vars`` and host variables, linked
unchanged, plus one extra host_vars file with what only the test needs: the podman connection, container
limits, and the feedback keys (signing, address hash), which a real deployment takes from its vault.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

SCENARIO = Path(__file__).resolve().parent
sys.path.insert(0, str(SCENARIO.parent / 'default'))

from render_inventory import AS_OF, container_inventory, mailinfra, render  # noqa: E402

SPEC = SCENARIO / 'files' / 'spec.yml'
SIGNING_KEY = 'molecule-feedback-signing-key-0123456789abcdef'
HASH_KEY = 'molecule-feedback-address-hash-key-0123456789ab'
"""For the test container only, which lives minutes."""


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
    mailinfra('dkim', 'generate', '--as-of', AS_OF, '--keys', str(keys), str(SPEC))
    render(SPEC, out, keys)
    extra = {
        'feedback__signing_key': SIGNING_KEY,
        'feedback__hash_key': HASH_KEY,
        # Short, for this test only: the suppression of a bounce reaches the listeners within a minute.
        'feedback__apply_on_calendar': '*:*:00',
        'molecule_mailinfra_dir': str(base),
    }
    # A released (or frozen) wheelhouse instead of building the checkout (see molecule/monitoring).
    wheelhouse = os.environ.get('MOLECULE_AGENT_WHEELHOUSE', '')
    if wheelhouse:
        extra['agent__wheelhouse'] = wheelhouse
    container_inventory(out, inventory, f'mailinfra-feedback-debian{distro}', keys, extra, '20-molecule.yml')
    print(f'rendered {SPEC.name} into {out}; Molecule inventory {inventory}')


if __name__ == '__main__':
    main()
