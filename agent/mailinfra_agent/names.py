"""DNS name helpers shared by the host and the controller (which imports them from here)."""

from __future__ import annotations

from collections.abc import Collection


def enclosing(name: str, domains: Collection[str]) -> str | None:
    """The longest of ``domains`` that is ``name`` or a parent of it, or None.

    Walks the name's own suffixes (a handful) instead of every domain, so it stays cheap with
    thousands of zones; pass a set for constant-time membership.
    """
    candidate = name
    while candidate not in domains:
        dot = candidate.find('.')
        if dot < 0:
            return None
        candidate = candidate[dot + 1 :]
    return candidate
