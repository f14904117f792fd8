"""DKIM key rotation as an explicit state machine, persisted next to the keys.

Each selector of a client's domain goes through::

    generated --publish--> published --verify--> verified --activate--> active
                                                                          |
                   (activating the next key of the same algorithm)       v
    removed <--remove-- revoked <--revoke (after the overlap window)-- retiring

* ``generated``: the key exists on the controller; its record is not in DNS yet.
* ``published``: its record belongs in DNS (the DNS renderer includes it); apply DNS now.
* ``verified``: every authoritative server answers with the record (:meth:`Rotation.verify`).
* ``active``: the MTAs sign with it. The key of the same algorithm that was active becomes
  ``retiring``, with ``retire_after = now + overlap`` (default 7 days).
* ``retiring``: no longer signs, but stays in DNS for mail still in flight or queued.
* ``revoked``: published with an empty ``p=``; allowed only once ``retire_after`` has passed.
* ``removed``: its record is gone from DNS.

Other moves: a ``generated``, ``published`` or ``verified`` key that never signed can be
``removed`` (abandoned); a ``retiring`` key can be activated again (roll back), which makes
the key active at that moment ``retiring``. Anything else raises
:class:`~mailinfra_iac.dkim.errors.IllegalTransitionError`.

Time is always passed in (``now``, timezone-aware), so the machine is deterministic.
The state lives in ``<keys root>/<client>/<domain>/rotation.json``, written atomically with
sorted keys. It holds public data only: selectors, states, times, public key records and
fingerprints.

Three modules:

* ``machine.py``: the states, the transitions, and what is due next (:class:`Rotation`);
* ``statefile.py``: ``rotation.json`` as a pydantic model, reading, writing and locking it;
* ``steps.py``: the operator's steps (:func:`run_step`, :func:`next_step`) and the signing keys.
"""

from .machine import (
    DEFAULT_OVERLAP,
    TRANSITIONS,
    Action,
    DnsRecord,
    KeyState,
    Rotation,
    SelectorEntry,
    Step,
    Transition,
)
from .statefile import FILE_NAME, load_rotation, rotation_lock, rotation_path, save_rotation
from .steps import StepResult, next_step, run_step, signing_keys

__all__ = [
    'DEFAULT_OVERLAP',
    'FILE_NAME',
    'TRANSITIONS',
    'Action',
    'DnsRecord',
    'KeyState',
    'Rotation',
    'SelectorEntry',
    'Step',
    'StepResult',
    'Transition',
    'load_rotation',
    'next_step',
    'rotation_lock',
    'rotation_path',
    'run_step',
    'save_rotation',
    'signing_keys',
]
