"""The plug-in point for role variables: each role's inventory variables come from one module here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..base import RenderContext


@dataclass(frozen=True)
class Template:
    """A role template to render for one host, for review and golden tests (what the role will deploy)."""

    role_template: str
    """Path under ``roles/``, e.g. ``powermta/templates/etc/pmta/config.j2``."""
    output: str
    """Path under ``mta/<host>/`` in the render output: the path on the host without its ``/`` (PowerMTA:
    ``pmta/config``)."""
    variables: Mapping[str, Any] = field(default_factory=dict)
    """What Ansible adds to the inventory when the role renders it: unset role defaults, the task's loop variable."""


class RoleVars(Protocol):
    """Variables for one role, named ``<role>__*``."""

    name: str

    def group_vars(self, context: RenderContext) -> dict[str, Any]: ...

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]: ...


MTA_HOSTS: frozenset[str] = frozenset({'mta'})
"""Host roles of the MTA roles, the default for a role that does not say (``host_roles``)."""


def applies_to(role: RoleVars, host_roles: Iterable[str]) -> bool:
    """Whether a role's host variables and templates are for a host with ``host_roles`` (the spec's roles).

    A role says on which hosts it runs with an optional ``host_roles`` attribute (a set of spec host roles, e.g.
    ``frozenset({'mta', 'monitoring'})``); without it, it runs on MTA hosts only.
    """
    wanted: frozenset[str] = getattr(role, 'host_roles', MTA_HOSTS)
    return not wanted.isdisjoint(host_roles)


def merge(parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Merge variables of several roles; a variable defined by two roles is a bug."""
    merged: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for role, variables in parts:
        for key, value in variables.items():
            if key in merged:
                raise ValueError(f'inventory variable {key} is produced by both {owner[key]} and {role}')
            merged[key] = value
            owner[key] = role
    return merged
