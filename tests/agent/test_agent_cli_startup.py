"""``mailinfra-agent COMMAND``: the parser built for the named command alone (what ``main`` builds, so that a run
imports only its command's module) prints what the parser of every command prints.

``_named_command`` finds a command's module from its name as typed (``dns-drift`` -> ``dns_drift``): that holds only
while each module's ``NAME`` is its module name with ``-`` for ``_``.
"""

from __future__ import annotations

import importlib

import pytest

from mailinfra_agent.cli import COMMANDS, _named_command, build_parser
from tests.argparse_cases import command_paths, run_parser

PATHS = [path for path in command_paths(build_parser()) if path]
CASES = (
    [[*path, '--help'] for path in PATHS]
    + [[*path, '--no-such-option'] for path in PATHS]
    + [[path[0]] for path in PATHS if len(path) == 1]  # a command without its action or arguments
)


@pytest.mark.parametrize('name', COMMANDS)
def test_each_commands_name_is_its_module_name(name: str) -> None:
    module = importlib.import_module(f'mailinfra_agent.commands.{name}')
    assert name.replace('_', '-') == module.NAME
    assert _named_command([module.NAME, '--help']) == name


def test_every_command_is_a_path() -> None:
    assert sorted(path[0] for path in PATHS if len(path) == 1) == sorted(name.replace('_', '-') for name in COMMANDS)


@pytest.mark.parametrize('argv', CASES, ids=[' '.join(argv) for argv in CASES])
def test_the_lazy_parser_prints_what_the_full_parser_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setenv('COLUMNS', '100')
    only = _named_command(argv)
    assert only is not None
    lazy = run_parser(capsys, build_parser(only), argv)
    assert lazy == run_parser(capsys, build_parser(), argv)
    if argv[-1].startswith('--'):
        assert lazy[0] == (0 if argv[-1] == '--help' else 2)
