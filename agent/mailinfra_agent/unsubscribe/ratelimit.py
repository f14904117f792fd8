"""Per-client token buckets with a bounded number of tracked clients (in memory, thread-safe)."""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ['MAX_CLIENTS', 'RateLimiter', 'client_key']

MAX_CLIENTS = 10_000
"""Clients tracked at most; the least recently seen one is forgotten first (its bucket starts full again)."""


def client_key(address: str) -> str:
    """The rate-limited unit: an IPv4 address, or the /64 of an IPv6 address (one host usually owns a whole /64)."""
    try:
        ip = ipaddress.ip_address(address.split('%', 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``per_minute`` requests a minute per client, in bursts of at most ``per_minute``."""

    def __init__(self, per_minute: int, *, max_clients: int = MAX_CLIENTS) -> None:
        if per_minute < 1:
            raise ValueError(f'rate limit {per_minute}: at least 1 request a minute')
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, now: float) -> float:
        """0 when the request may go on (one token taken), else the seconds until the client may try again."""
        key = client_key(client)
        with self._lock:
            bucket = self._buckets.pop(key, None)
            if bucket is None:
                bucket = _Bucket(self.capacity, now)
            else:
                bucket.tokens = min(self.capacity, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
                bucket.updated = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return max(1.0, math.ceil((1.0 - bucket.tokens) / self.rate))
