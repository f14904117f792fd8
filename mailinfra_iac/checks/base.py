"""The check plug-in point: a check is an id, a severity and a function over the model and its facts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..facts import Facts
from ..loader import Source
from ..model import Deployment
from ..problems import Path, Problem, Severity


@dataclass(frozen=True)
class CheckContext:
    """What a check sees: the model, its derived facts, and the source for locations."""

    deployment: Deployment
    facts: Facts
    source: Source | None = None

    def problem(
        self,
        check: str,
        message: str,
        path: Path,
        *,
        severity: Severity = 'error',
        expected: str = '',
        value: Any = None,
        at_key: bool = False,
        **details: Any,
    ) -> Problem:
        """A problem located at ``path`` (at the mapping key that names it when ``at_key``)."""
        line, column = None, None
        if self.source is not None:
            line, column = self.source.locate_key(path) if at_key else self.source.locate(path)
        return Problem(
            check=check,
            message=message,
            path=path,
            severity=severity,
            expected=expected,
            value=value,
            file=self.source.file if self.source else None,
            line=line,
            column=column,
            details=details,
        )


CheckFunction = Callable[[CheckContext], Iterable[Problem]]


@dataclass(frozen=True)
class Check:
    """A cross-object check with a stable kebab-case id."""

    id: str
    severity: Severity
    description: str
    run: CheckFunction


class CheckRegistry:
    """An instance registry (no globals): duplicate ids are refused."""

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        for check in checks:
            self.register(check)

    def register(self, check: Check) -> None:
        if check.id in self._checks:
            raise ValueError(f'check "{check.id}" is already registered')
        self._checks[check.id] = check

    def __iter__(self) -> Iterator[Check]:
        return iter(self._checks.values())

    def ids(self) -> list[str]:
        return sorted(self._checks)

    def run(self, context: CheckContext, only: Iterable[str] | None = None) -> list[Problem]:
        selected = set(only) if only is not None else None
        problems: list[Problem] = []
        for check in self._checks.values():
            if selected is None or check.id in selected:
                for problem in check.run(context):
                    if problem.check != check.id:
                        raise ValueError(f'check "{check.id}" reported a problem as "{problem.check}"')
                    problems.append(problem)
        return problems
