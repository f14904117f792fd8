"""DNS name helpers shared by checks and renderers."""

from __future__ import annotations

from collections.abc import Collection


def enclosing(name: str, domains: Collection[str]) -> str | None:
    """The longest of ``domains`` that is ``name`` or a parent of it, or None.

    Walks the name's own suffixes (a handful) instead of every domain, so it stays cheap with
    thousands of zones; pass a set for constant-time membership.
    """
    labels = name.split('.')
    for index in range(len(labels)):
        candidate = '.'.join(labels[index:])
        if candidate in domains:
            return candidate
    return None
