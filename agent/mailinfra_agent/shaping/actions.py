"""What the shaping engine decides, and the interface that makes an MTA instance follow it.

The engine computes the desired set of active actions of a stream; an ``Actuator`` (e.g.
``postfix_actuator``) converges the stream's MTA instance to exactly that set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from ..contract import Stream

ActionKind = Literal['backoff', 'suspend', 'suspend_ip', 'cap']


@dataclass(frozen=True, order=True)
class Action:
    """One active shaping action on a sending IP (x ISP) of a stream."""

    stream: str
    """Contract ``Stream.name``."""
    ip: str
    """Contract ``SendingIp.address`` (dotted quad)."""
    isp: str | None
    """Contract ``Isp.name``; None for ``suspend_ip``."""
    kind: ActionKind
    failover: bool
    """``suspend`` only: the other IPs of the pool take the mail; otherwise it waits."""
    until: float
    """Unix time the action ends."""
    reason: str
    """Rule description / pattern, for status and logs."""


class ActuatorError(Exception):
    """The MTA could not be converged; nothing was left half-applied."""


class Actuator(Protocol):
    def converge(self, stream: Stream, desired: Sequence[Action]) -> Sequence[str]:
        """Make the stream's instance match `desired` (all active actions of that stream); idempotent;
        returns human-readable changes made ([] when nothing changed). Raises ActuatorError on failure
        (nothing half-applied: validate with `postfix -c DIR check` before reload, roll back otherwise)."""
        ...

    def changed(self, stream: Stream) -> bool:
        """Whether the stream's instance was changed by someone else since this actuator last converged it (e.g. the
        role installed its rendered files again): a cheap test, made every round."""
        ...
