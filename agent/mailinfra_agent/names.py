"""DNS name helpers shared by the host and the controller (which imports them from here): suffix lookups in zones,
and the ASCII form of a domain that the suppression list and the feedback parsers key addresses by."""

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


MAX_DOMAIN_TEXT = 254
"""Characters of a non-ASCII domain worth mapping: its A-labels are longer still, and a name has 253 at most."""


def ascii_domain(domain: str) -> str | None:
    """``domain`` in the ASCII form Postfix delivers to: UTS 46 non-transitional (IDNA 2008: ``faß.de`` is
    ``xn--fa-hia.de``, not IDNA 2003's ``fass.de``), so every spelling of one domain gives the same form: any case,
    NFD, fullwidth letters, U+3002/U+FF0E/U+FF61 as dots, an A-label in upper case, one trailing dot. Like ICU with
    Postfix's options, no IDNA 2008 validity checks. None: not mappable (a disallowed code point).

    Pass the domain as received, not lower-cased: UTS 46 maps ``ẞ`` and a final ``Σ`` differently from
    ``str.lower``. The one implementation for the suppression list and the DSN/ARF parsers (their keys must match).
    """
    if domain.isascii():
        return domain.lower().removesuffix('.')
    if len(domain) > MAX_DOMAIN_TEXT:
        return None  # longer than any DNS name: refused anyway, and mapping a long input costs the caller's time
    # The agent's one base dependency, imported here: a process that meets no UTF-8 domain need not load its
    # tables (``ingest message`` runs once per message).
    import idna

    try:
        # non-transitional is uts46_remap's default (its `transitional` argument is deprecated)
        labels = idna.uts46_remap(domain, std3_rules=False).removesuffix('.').split('.')
        return '.'.join(
            label if label.isascii() else 'xn--' + label.encode('punycode').decode('ascii') for label in labels
        )
    except UnicodeError:  # idna.IDNAError too: a disallowed code point
        return None
