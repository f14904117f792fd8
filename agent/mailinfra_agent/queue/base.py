"""The collector interface the exporter builds on (fixed in issue 12's team brief; change only by agreement)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

# The five queue names every StreamQueue.messages / oldest_age_seconds carries (Postfix's; PowerMTA maps onto them).
QUEUE_NAMES: tuple[str, ...] = ('maildrop', 'incoming', 'active', 'deferred', 'hold')


class CollectorError(Exception):
    """The collector could not collect at all (the exporter reports ``mailinfra_collector_up`` = 0).

    ``kind`` is a short, bounded id usable as a metric label (``errors_total{kind=...}``).
    """

    def __init__(self, message: str, kind: str = 'collect') -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class StreamQueue:
    """One stream's queue on one MTA instance, as seen at one scrape."""

    stream: str
    instance: str
    messages: Mapping[str, int]  # queue -> count (all five QUEUE_NAMES present)
    oldest_age_seconds: Mapping[str, float]  # queue -> seconds (0 when empty)
    deferred_by_isp: Mapping[str, int]  # ISP name (contract `isps`) or 'other' -> deferred messages
    recipient_domains: Mapping[str, int]  # already cut to top N + 'other'
    deferral_reasons: Mapping[str, int]  # enhanced status code ('4.7.28') or 'unknown' -> deferred messages
    # Non-fatal problems met while collecting this stream (kind -> count in this scrape: vanished files,
    # malformed queue files, unreadable directories); the exporter adds them to errors_total{kind}.
    errors: Mapping[str, int] = field(default_factory=dict)
    # False when this stream's queue could not be read at all (no queue directory, no privilege): the figures above
    # are then empty, not zero; the exporter reports collector_up{instance} = 0 and leaves the queue series out.
    up: bool = True
    # Damaged queue files the MTA set aside (Postfix's ``corrupt/``): never delivered, seen nowhere else. None when the
    # MTA has no such place or it could not be read.
    corrupt: int | None = None


class QueueCollector(Protocol):
    """A source of queue figures for some or all streams of a host."""

    name: str  # 'postfix' | 'powermta'

    def collect(self) -> list[StreamQueue]:
        """Read the queues now. Raises CollectorError when nothing can be read (the exporter sets up=0)."""
        ...
