"""Bounce-classification overrides: rule ids unique and known, ISPs known, ``disable`` deployment-wide only."""

from __future__ import annotations

from collections.abc import Iterator

from ..catalogue.bounce_rules import builtin_rules
from ..model.bounce import Classification
from ..problems import Path, Problem
from .base import Check, CheckContext
from .isps import suggest


def _policies(ctx: CheckContext) -> Iterator[tuple[Path, Classification]]:
    yield ('bounce_policy', 'classification'), ctx.deployment.bounce_policy.classification
    for name, stream in ctx.deployment.streams.items():
        yield ('streams', name, 'bounce_policy', 'classification'), stream.bounce_policy.classification


def unknown_bounce_rule(ctx: CheckContext) -> Iterator[Problem]:
    catalogue = [entry.rule.id for entry in builtin_rules()]
    for path, policy in _policies(ctx):
        for index, rule_id in enumerate(policy.disable):
            if path[0] == 'streams':
                yield ctx.problem(
                    'unknown-bounce-rule',
                    f'"disable" under a stream ("{rule_id}"): catalogue rules are left out deployment-wide',
                    (*path, 'disable', index),
                    expected='bounce_policy.classification.disable at the top level, or a stream rule that '
                    'matches first',
                    value=rule_id,
                )
            elif rule_id not in catalogue:
                close = suggest(rule_id, catalogue)
                hint = f' (did you mean "{close}"?)' if close else ''
                yield ctx.problem(
                    'unknown-bounce-rule',
                    f'no catalogue rule "{rule_id}" to disable{hint}',
                    (*path, 'disable', index),
                    expected='the id of a rule in mailinfra_iac/catalogue/bounce_rules (see `mailinfra feedback '
                    'classify`)',
                    value=rule_id,
                )


def duplicate_bounce_rule(ctx: CheckContext) -> Iterator[Problem]:
    catalogue = {entry.rule.id: entry for entry in builtin_rules()}
    top: dict[str, Path] = {}
    for path, policy in _policies(ctx):
        seen: dict[str, Path] = {}
        for index, rule in enumerate(policy.rules):
            where = (*path, 'rules', index, 'id')
            if rule.id in catalogue:
                entry = catalogue[rule.id]
                message = f'rule id "{rule.id}" is a catalogue rule ({entry.file}, line {entry.line})'
            elif rule.id in seen or (path[0] == 'streams' and rule.id in top):
                message = f'rule id "{rule.id}" is used twice'
            else:
                seen[rule.id] = where
                continue
            yield ctx.problem(
                'duplicate-bounce-rule',
                message,
                where,
                expected='a new id; to replace a catalogue rule, add it to disable and give yours another id',
                value=rule.id,
            )
        if path[0] == 'bounce_policy':
            top = seen


def unknown_bounce_rule_isp(ctx: CheckContext) -> Iterator[Problem]:
    known = sorted(ctx.facts.isps)
    for path, policy in _policies(ctx):
        for index, rule in enumerate(policy.rules):
            if rule.isp is not None and rule.isp not in known:
                close = suggest(rule.isp, known)
                hint = f' (did you mean "{close}"?)' if close else ''
                yield ctx.problem(
                    'unknown-bounce-rule-isp',
                    f'rule "{rule.id}" names unknown ISP profile "{rule.isp}"{hint}',
                    (*path, 'rules', index, 'isp'),
                    expected='one of: ' + ', '.join(known),
                    value=rule.isp,
                )


CHECKS = (
    Check('unknown-bounce-rule', 'error', 'disable names catalogue rules, deployment-wide.', unknown_bounce_rule),
    Check('duplicate-bounce-rule', 'error', 'Own classification rule ids are new and unique.', duplicate_bounce_rule),
    Check('unknown-bounce-rule-isp', 'error', 'Classification rules name known ISPs.', unknown_bounce_rule_isp),
)
