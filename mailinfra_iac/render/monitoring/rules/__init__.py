"""Prometheus alerting rules, one family per module. A new family is a module exposing ``NAME`` and
``rules(context)``, listed in ``FAMILIES``, with its promtool tests in ``tests/monitoring/rules/<NAME>.yml``."""

from __future__ import annotations

from typing import Any

from ...base import RenderContext
from . import dns, dnsbl, feedback, health, heartbeat, probes, queue, shaping, textfile
from .base import Rule, RuleFamily, duration

FAMILIES: tuple[RuleFamily, ...] = (queue, dnsbl, textfile, health, dns, probes, heartbeat, feedback, shaping)


def rule_groups(context: RenderContext) -> list[dict[str, Any]]:
    """One group per family: ``{name, rules: [{alert, expr, for, labels, annotations}]}``; built once per render (the
    monitoring renderer and the Prometheus role's variables both use it; neither changes it)."""
    return context.memoize(
        'monitoring:rule_groups',
        lambda: [
            {'name': f'mailinfra_{family.NAME}', 'rules': [rule.as_dict() for rule in family.rules(context)]}
            for family in FAMILIES
        ],
    )


__all__ = ['FAMILIES', 'Rule', 'RuleFamily', 'duration', 'rule_groups']
