"""The shaping service: ISP back-off, suspensions and warm-up caps applied to the host's MTA instances.

``actions`` defines what the engine decides (``Action``) and how an MTA is made to follow it (``Actuator``).
docs/shaping.md describes the service.
"""

from .actions import Action, ActionKind, Actuator, ActuatorError

__all__ = ['Action', 'ActionKind', 'Actuator', 'ActuatorError']
