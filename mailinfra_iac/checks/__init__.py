"""Cross-object checks, each under a stable kebab-case id. A new check goes in the module of its topic."""

from __future__ import annotations

from . import (
    addresses,
    authentication,
    bounce_rules,
    domains,
    feedback,
    hostroles,
    isolation,
    isps,
    names,
    operations,
    provisioning,
    volume,
    zones,
)
from .base import Check, CheckContext, CheckRegistry


def default_registry() -> CheckRegistry:
    """A fresh registry with every built-in check (no shared global state)."""
    return CheckRegistry(
        check
        for module in (
            isolation,
            names,
            authentication,
            domains,
            isps,
            volume,
            operations,
            provisioning,
            hostroles,
            zones,
            addresses,
            bounce_rules,
            feedback,
        )
        for check in module.CHECKS
    )


__all__ = ['Check', 'CheckContext', 'CheckRegistry', 'default_registry']
