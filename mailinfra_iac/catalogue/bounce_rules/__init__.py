"""The bounce-classification rule catalogue: YAML files under ``catalogue/bounce_rules/``, in name order.

Each file is ``{rules: [...]}``, each rule a ``ClassificationRule`` (model/bounce.py). The first rule that
matches a reply wins, so the files go from the most specific (provider texts) to the least (status codes).
A deployment adds its own rules in front (``bounce_policy.classification.rules``; a stream's before the
deployment's) and may leave catalogue rules out (``disable``). ``compile_rules`` turns all of it into the
contract's plain data, which ``mailinfra_agent.feedback.classify`` runs on the hosts.

Every problem in a catalogue file is reported with its file, line and field (``load_catalogue``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from mailinfra_agent import contract as c
from mailinfra_agent.feedback.classify import MAX_TEXT

from ...loader import Source, parse_source
from ...model import Deployment
from ...model.base import Model
from ...model.bounce import ClassificationRule
from ...problems import Problem, SpecInvalid
from ..isps import builtin_isps

__all__ = ['CatalogueRule', 'RuleFile', 'builtin_rules', 'compile_rules', 'load_catalogue', 'load_rule_file']


class RuleFile(Model):
    """One catalogue file."""

    rules: list[ClassificationRule] = Field(description='Rules, in the order they are tried.')


@dataclass(frozen=True)
class CatalogueRule:
    """A catalogue rule and where it is defined."""

    rule: ClassificationRule
    file: str
    line: int | None


def _problems(error: ValidationError, source: Source) -> list[Problem]:
    """pydantic's errors as located problems: file, line and the field's path."""
    problems = []
    for item in error.errors(include_url=False):
        loc = tuple(item['loc'])
        path: list[str | int] = []
        current: Any = source.data
        for part in loc:
            if (isinstance(current, dict) and part in current) or (
                isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
            ):
                current = current[part]  # type: ignore[index]
            elif isinstance(part, str) and item['type'] in ('missing', 'extra_forbidden') and part == loc[-1]:
                current = None
            else:
                continue
            path.append(part)
        extra = item['type'] == 'extra_forbidden'
        line, column = source.locate_key(tuple(path)) if extra else source.locate(tuple(path))
        message, _, expected = item['msg'].removeprefix('Value error, ').partition(', expected ')
        if extra:
            message = f'unknown field "{loc[-1]}"'
        elif item['type'] == 'missing':
            message = f'missing required field "{loc[-1]}"'
        value = item.get('input') if not isinstance(item.get('input'), dict | list) else None
        problems.append(
            Problem(
                'bounce-rule-schema',
                message,
                tuple(path),
                file=source.file,
                line=line,
                column=column,
                value=None if item['type'] == 'missing' else value,
                expected=expected
                or 'a rule with id, category and at least one of codes, enhanced, regex (optional isp)',
            )
        )
    return problems


def load_rule_file(text: str, name: str) -> tuple[RuleFile, Source]:
    """Parse and validate one catalogue file; raise ``SpecInvalid`` with every located problem."""
    source = parse_source(text, name)
    try:
        return RuleFile.model_validate(source.data), source
    except ValidationError as error:
        raise SpecInvalid(_problems(error, source), name) from None


def load_catalogue(files: Iterable[tuple[str, str]], isps: Iterable[str] | None = None) -> list[CatalogueRule]:
    """Rules of ``(name, text)`` files in the given order; ids are unique, ISPs known. Raises ``SpecInvalid``."""
    known_isps = set(builtin_isps() if isps is None else isps)
    problems: list[Problem] = []
    rules: list[CatalogueRule] = []
    first: dict[str, CatalogueRule] = {}
    for name, text in files:
        try:
            parsed, source = load_rule_file(text, name)
        except SpecInvalid as error:
            problems.extend(error.problems)
            continue
        for index, rule in enumerate(parsed.rules):
            line, _ = source.locate(('rules', index))
            entry = CatalogueRule(rule, name, line)
            if rule.id in first:
                other = first[rule.id]
                problems.append(
                    source.problem(
                        'bounce-rule-duplicate-id',
                        f'rule id "{rule.id}" is already used ({other.file}, line {other.line})',
                        ('rules', index, 'id'),
                        value=rule.id,
                        expected='each rule id once in the catalogue',
                    )
                )
                continue
            if rule.isp is not None and rule.isp not in known_isps:
                problems.append(
                    source.problem(
                        'bounce-rule-unknown-isp',
                        f'unknown ISP profile "{rule.isp}"',
                        ('rules', index, 'isp'),
                        value=rule.isp,
                        expected='one of: ' + ', '.join(sorted(known_isps)),
                    )
                )
                continue
            first[rule.id] = entry
            rules.append(entry)
    if problems:
        raise SpecInvalid(problems, 'bounce rule catalogue')
    return rules


@cache
def builtin_rules() -> tuple[CatalogueRule, ...]:
    """The shipped catalogue, files in name order."""
    folder = resources.files(__package__)
    entries = sorted((entry for entry in folder.iterdir() if entry.name.endswith('.yml')), key=lambda e: e.name)
    files = [(str(Path('mailinfra_iac/catalogue/bounce_rules') / e.name), e.read_text('utf-8')) for e in entries]
    return tuple(load_catalogue(files))


def _contract_rule(rule: ClassificationRule, origin: str, stream: str | None = None) -> c.BounceRule:
    return c.BounceRule(
        id=rule.id,
        category=rule.category,
        codes=tuple(rule.codes),
        enhanced=tuple(rule.enhanced),
        regex=rule.regex,
        isp=rule.isp,
        stream=stream,
        origin='spec' if origin == 'spec' else 'catalogue',
        description=rule.description,
    )


def compile_rules(deployment: Deployment | None = None) -> c.BounceRules:
    """The rules the hosts run: each stream's, then the deployment's, then the catalogue minus ``disable``."""
    rules: list[c.BounceRule] = []
    disabled: set[str] = set()
    if deployment is not None:
        for name, stream in deployment.streams.items():
            rules.extend(_contract_rule(rule, 'spec', name) for rule in stream.bounce_policy.classification.rules)
        classification = deployment.bounce_policy.classification
        rules.extend(_contract_rule(rule, 'spec') for rule in classification.rules)
        disabled = set(classification.disable)
    rules.extend(_contract_rule(entry.rule, 'catalogue') for entry in builtin_rules() if entry.rule.id not in disabled)
    return c.BounceRules(rules=tuple(rules), max_text=MAX_TEXT)
