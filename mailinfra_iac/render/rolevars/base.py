"""The plug-in point for role variables: each role's inventory variables come from one module here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..base import RenderContext


@dataclass(frozen=True)
class Template:
    """A role template to render for one host, for review and golden tests (what the role will deploy)."""

    role_template: str
    """Path under ``roles/``, e.g. ``powermta/templates/etc/pmta/config.j2``."""
    output: str
    """Path under ``mta/<host>/`` in the render output."""


class RoleVars(Protocol):
    """Variables for one role, named ``<role>__*``."""

    name: str

    def group_vars(self, context: RenderContext) -> dict[str, Any]: ...

    def host_vars(self, context: RenderContext, host: str) -> dict[str, Any]: ...


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
