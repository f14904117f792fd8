"""What a rule family produces: Prometheus alerting rules, as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...base import RenderContext


def duration(seconds: int) -> str:
    """Seconds as a Prometheus duration in the largest exact unit: 900 -> ``15m``, 0 -> ``0s``."""
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds and seconds % size == 0:
            return f'{seconds // size}{unit}'
    return f'{seconds}s'


@dataclass(frozen=True)
class Rule:
    """One alerting rule. ``labels`` are the static labels; the series' own labels come with the alert."""

    alert: str
    expr: str
    for_seconds: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            'alert': self.alert,
            'expr': self.expr,
            'for': duration(self.for_seconds),
            'labels': dict(self.labels),
            'annotations': dict(self.annotations),
        }


class RuleFamily(Protocol):
    """A module of ``render/monitoring/rules/``: one rules file, one group, tested by its own promtool test file."""

    NAME: str
    """File ``prometheus/rules/<NAME>.yml``, group ``mailinfra_<NAME>``, tests ``tests/monitoring/rules/<NAME>.yml``."""

    def rules(self, context: RenderContext) -> list[Rule]: ...
