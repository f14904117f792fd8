"""Shared fixtures: the base spec, and helpers that edit it and locate the edit."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mailinfra_iac import Problem, SpecInvalid, parse_spec
from mailinfra_iac.dkim.source import DkimTxt

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / 'fixtures'
AS_OF = dt.date(2026, 11, 28)
BASE = (FIXTURES / 'base.yml').read_text()


class FixedDkim:
    """Every selector gets the same committed public key (tests/data/dkim_public.json), so output is stable."""

    values = json.loads((Path(__file__).resolve().parent / 'data' / 'dkim_public.json').read_text())

    def records(self, domain: str, wanted: list[tuple[str, str]]) -> tuple[list[DkimTxt], list[tuple[str, str]]]:
        return [DkimTxt(selector, algorithm, self.values[algorithm]) for selector, algorithm in wanted], []


TEST_DKIM = FixedDkim()


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f'snippet {old!r} must occur exactly once in the base spec'
    return text.replace(old, new)


def position(text: str, marker: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the n-th occurrence of ``marker`` (found by plain text search)."""
    index = -1
    for _ in range(occurrence):
        index = text.index(marker, index + 1)
    line = text.count('\n', 0, index) + 1
    column = index - (text.rfind('\n', 0, index) + 1) + 1
    return line, column


def problems(text: str) -> list[Problem]:
    try:
        return parse_spec(text, 'spec.yml', as_of=AS_OF).problems
    except SpecInvalid as invalid:
        return invalid.problems


@pytest.fixture
def base_text() -> str:
    return BASE


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is a failure: the suite must never be green by skipping (missing tools fail loudly)."""
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    skipped = reporter.stats.get('skipped', []) if reporter is not None else []
    if skipped and exitstatus == 0 and reporter is not None:
        reporter.write_line(f'{len(skipped)} test(s) skipped: skips are not allowed in this suite', red=True)
        session.exitstatus = 1
