"""Molecule dependency step of the "feedback" scenario: render the test spec the way a user would.

``mailinfra dkim generate`` and ``mailinfra render`` of ``files/spec.yml`` (as the "default" scenario), with the
transactional IP's warm-up starting today (``warmup_spec``), then an inventory directory for Molecule: the
generated ``hosts.yml``, ``group_vars`` and host variables, linked unchanged, plus one extra host_vars file with
what only the test needs: the podman connection, container limits, and the feedback keys (signing, address
hash), which a real deployment takes from its vault.

A second inventory for the last verify step (``inventory-hash-only``): the same spec with
``feedback.retention.suppressions: hash``, rendered the same way, plus ``postfix__feedback_pipe: true``.
verify.yml re-runs the postfix and feedback roles on the same container from it (``rerun_hash_only.yml``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import zoneinfo
from pathlib import Path
from typing import Any

import yaml

SCENARIO = Path(__file__).resolve().parent
sys.path.insert(0, str(SCENARIO.parent / 'default'))

from render_inventory import AS_OF, FAST_PODMAN, container_inventory, mailinfra, render  # noqa: E402

SPEC = SCENARIO / 'files' / 'spec.yml'
SIGNING_KEY = 'molecule-feedback-signing-key-0123456789abcdef'
HASH_KEY = 'molecule-feedback-address-hash-key-0123456789ab'
"""For the test container only, which lives minutes."""


def warmup_spec(spec: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The spec with 192.0.2.10's warm-up starting today, in a time zone where it is about noon now.

    Day 1 of the curve then lasts the whole run (about six hours either side), and the cap's end, the next local
    midnight, is not a UTC midnight.
    """
    offset = 12 - now.astimezone(dt.UTC).hour  # -11 .. 12 hours east of UTC
    zone = 'UTC' if offset == 0 else f'Etc/GMT{-offset:+d}'  # POSIX sign: Etc/GMT-2 is 2 hours east
    spec['warmup']['time_zone'] = zone
    today = now.astimezone(zoneinfo.ZoneInfo(zone)).date()
    (ip,) = [ip for ip in spec['pools']['transactional']['ips'] if ip['address'] == '192.0.2.10']
    ip['warmup_started'] = today
    return spec


def hash_only_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with its suppression list kept as keyed hashes only (the listeners then ask the policy service)."""
    spec['feedback'].setdefault('retention', {})['suppressions'] = 'hash'
    return spec


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit('usage: render_inventory.py MOLECULE_EPHEMERAL_DIRECTORY MOLECULE_DISTRO')
    ephemeral, distro = Path(sys.argv[1]), sys.argv[2]
    base = ephemeral / 'mailinfra'
    keys = base / 'keys'
    # The key store survives reruns (``dkim generate`` only adds missing keys).
    keys.mkdir(parents=True, mode=0o700, exist_ok=True)
    base.chmod(0o700)
    data = warmup_spec(yaml.safe_load(SPEC.read_text()), dt.datetime.now(dt.UTC))
    spec = base / SPEC.name
    spec.write_text(yaml.safe_dump(data))
    mailinfra('dkim', 'generate', '--as-of', AS_OF, '--keys', str(keys), str(spec))
    extra = {
        'feedback__signing_key': SIGNING_KEY,
        'feedback__hash_key': HASH_KEY,
        # Short, for this test only: the suppression of a bounce reaches the listeners within a minute.
        'feedback__apply_on_calendar': '*:*:00',
        'molecule_mailinfra_dir': str(base),
        # As the default scenario: no task of this scenario's roles, prepare or verify uses become_user, so
        # the modules in root's remote tmp reach every task.
        **FAST_PODMAN,
    }
    # A released (or frozen) wheelhouse instead of building the checkout (see molecule/monitoring).
    wheelhouse = os.environ.get('MOLECULE_AGENT_WHEELHOUSE', '')
    if wheelhouse:
        extra['agent__wheelhouse'] = wheelhouse
    container = f'mailinfra-feedback-debian{distro}'
    hash_only = base / f'{SPEC.stem}-hash-only.yml'
    hash_only.write_text(yaml.safe_dump(hash_only_spec(data)))
    for source, name, more in ((spec, '', {}), (hash_only, '-hash-only', {'postfix__feedback_pipe': True})):
        out, inventory = base / f'render{name}', base / f'inventory{name}'
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(inventory, ignore_errors=True)
        render(source, out, keys)
        container_inventory(out, inventory, container, keys, {**extra, **more}, '20-molecule.yml')
    print(f'rendered {SPEC.name} into {base}/render; Molecule inventory {base}/inventory (and *-hash-only)')


if __name__ == '__main__':
    main()
