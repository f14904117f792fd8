"""Problems found in a spec: one value type for YAML, schema and cross-object findings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal['error', 'warning', 'advice']
PathPart = str | int
Path = tuple[PathPart, ...]
_SEVERITY_ORDER = {'error': 0, 'warning': 1, 'advice': 2}


def format_path(path: Path) -> str:
    """``('streams', 'bulk', 'domains', 0)`` -> ``streams.bulk.domains[0]``."""
    text = ''
    for part in path:
        text += f'[{part}]' if isinstance(part, int) else (f'.{part}' if text else str(part))
    return text or '(document)'


@dataclass(frozen=True)
class Problem:
    """One finding, with a stable check id and where in the file it is."""

    check: str
    message: str
    path: Path = ()
    severity: Severity = 'error'
    expected: str = ''
    value: Any = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def sort_key(self) -> tuple[Any, ...]:
        return (
            _SEVERITY_ORDER[self.severity],
            self.file or '',
            self.line or 0,
            self.column or 0,
            self.check,
            format_path(self.path),
            self.message,
        )

    @property
    def location(self) -> str:
        where = self.file or '<spec>'
        if self.line is not None:
            where += f', line {self.line}, column {self.column}'
        return where

    def __str__(self) -> str:
        text = f'{self.severity}: {format_path(self.path)}: {self.message}'
        if self.expected:
            text += f'; expected {self.expected}'
        return f'{text} ({self.location}), via: {self.check}'

    def as_dict(self) -> dict[str, Any]:
        return {
            'check': self.check,
            'severity': self.severity,
            'file': self.file,
            'line': self.line,
            'column': self.column,
            'path': format_path(self.path),
            'message': self.message,
            'expected': self.expected,
            'value': _jsonable(self.value),
            'details': {key: _jsonable(value) for key, value in sorted(self.details.items())},
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    return str(value)


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    return sorted(problems, key=Problem.sort_key)


class MailinfraError(Exception):
    """Base of every error the library raises on purpose."""


class SpecInvalid(MailinfraError):
    """A spec has errors; ``problems`` lists every one of them (warnings included)."""

    def __init__(self, problems: Iterable[Problem], file: str | None = None) -> None:
        self.problems = sort_problems(problems)
        self.file = file
        errors = [problem for problem in self.problems if problem.severity == 'error']
        super().__init__(f'spec {file or ""} has {len(errors)} error(s)'.replace('  ', ' '))

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == 'error']

    def report(self) -> str:
        header = f'Invalid spec {self.file}' if self.file else 'Invalid spec'
        return '\n'.join([header, *(f'  - {problem}' for problem in self.problems)])
