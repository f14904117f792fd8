"""IP addresses as integers, for SPF matching (two comparisons per range)."""

from __future__ import annotations

import functools
import socket

IpAddress = tuple[int, int]
"""(IP version, address) as an integer."""


@functools.lru_cache(maxsize=1 << 16)
def ip_address(text: str) -> IpAddress:
    """Parse a dotted-quad IPv4 or an IPv6 address (strictly: ``inet_pton``); raises ValueError."""
    try:
        if ':' in text:
            return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), 'big')
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), 'big')
    except OSError:
        raise ValueError(f'invalid address "{text}"') from None
