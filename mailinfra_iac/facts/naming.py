"""Names the deployment derives from the spec: the Ed25519 selector beside an RSA one, organisational domains."""

from __future__ import annotations

from collections.abc import Collection

from mailinfra_agent.names import enclosing


def ed25519_selector(selector: str) -> str:
    """Selector of the Ed25519 key that dual-signs next to an RSA selector."""
    return f'{selector}e'


def organisation(name: str, client_domains: Collection[str]) -> str:
    """The client's organisational domain that ``name`` lies under (``name`` itself if none)."""
    return enclosing(name, client_domains) or name
