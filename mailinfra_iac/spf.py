"""SPF processing limits (RFC 7208 section 4.6.4), shared by the spec checks and the DNS check."""

from __future__ import annotations

MAX_LOOKUPS = 10
"""Terms that cause DNS lookups, counted through include and redirect; more is a permerror."""
MAX_VOID_LOOKUPS = 2
"""Lookups answered with NXDOMAIN or no records; more is a permerror."""
MAX_MX_NAMES = 10
"""Exchanges one ``mx`` term may look up."""
LOOKUP_TERMS = frozenset({'include', 'a', 'mx', 'ptr', 'exists', 'redirect'})
"""The terms that count as DNS lookups."""
MAX_ANSWER = 450
"""Octets of the name and the record text that keep the DNS answer within 512 bytes over UDP (RFC 7208 3.4)."""
