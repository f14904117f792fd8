"""An argparse parser's command paths, and what parsing an argv prints: for the tests that compare the lazily built
parser of ``mailinfra`` and ``mailinfra-agent`` with the full one."""

from __future__ import annotations

import argparse

import pytest


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of ``parser``, as the arguments naming it."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += command_paths(sub, (*prefix, name))
    return found


def run_parser(
    capsys: pytest.CaptureFixture[str], parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[int, str, str]:
    """(exit code, standard output, standard error) of ``parser.parse_args(argv)``."""
    try:
        parser.parse_args(argv)
        code = 0
    except SystemExit as leave:
        code = int(leave.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
