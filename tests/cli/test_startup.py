"""Start-up of ``mailinfra``: a command imports only what it uses, and the lazily built parser prints what the
eagerly built one printed.

data/help.txt is the output of every ``mailinfra ... --help`` and of a few usage errors, captured (COLUMNS=100,
Python 3.11) from the CLI as it was before it became lazy (main at 470bbeb), when every command module was imported
at start-up. A new command or option changes it: regenerate it with ``python -m tests.cli.test_startup`` and review
the diff (only the new command's lines may change).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import COMMANDS, build_parser, main
from mailinfra_iac.feedback_report.demo import write_demo_store

from ..argparse_cases import command_paths, run_parser
from ..conftest import ROOT

HELP = Path(__file__).with_name('data') / 'help.txt'
EXAMPLE = ROOT / 'examples' / 'saas-transactional.yml'
HEAVY = ('pydantic', 'jinja2', 'yaml', 'mailinfra_iac.api', 'mailinfra_iac.model', 'mailinfra_iac.render')
"""What ``feedback report`` never needs (without ``--spec``): the model, its validation, the renderers."""
COMMAND_MODULE = re.compile(r'mailinfra_iac\.cli\.\w+_cmd')


USAGE_ERRORS = [[], ['bogus'], ['feedback'], ['feedback', 'report'], ['validate']]


def write_help() -> None:
    """Rewrite data/help.txt from the parser of this tree."""
    os.environ['COLUMNS'] = '100'
    sections = []
    for argv in [[*path, '--help'] for path in command_paths(build_parser())] + USAGE_ERRORS:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as leave:
                code = int(leave.code or 0)
        sections.append(f'=== {json.dumps(argv)} exit {code}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}')
    HELP.write_text(''.join(sections), encoding='utf-8')


def captured() -> dict[tuple[str, ...], tuple[int, str, str]]:
    """data/help.txt: argv -> (exit code, standard output, standard error)."""
    cases = {}
    for section in HELP.read_text(encoding='utf-8').split('=== ')[1:]:
        header, rest = section.split('\n', 1)
        argv, code = header.rsplit(' exit ', 1)
        out, err = rest.removeprefix('--- stdout\n').split('--- stderr\n')
        cases[tuple(json.loads(argv))] = (int(code), out, err)
    return cases


CASES = captured()
CAPTURED_ON = (3, 11)


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as leave:
        code = int(leave.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# argparse's layout differs between Python versions (3.13: "-o, --output OUTPUT"): the file is 3.11's.
@pytest.mark.skipif(sys.version_info[:2] != CAPTURED_ON, reason='data/help.txt was captured on Python 3.11')
@pytest.mark.parametrize('argv', list(CASES), ids=[' '.join(argv) or '(none)' for argv in CASES])
def test_output_as_before_the_lazy_parser(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv('COLUMNS', '100')
    assert run_main(capsys, list(argv)) == CASES[argv]


@pytest.mark.parametrize('argv', list(CASES), ids=[' '.join(argv) or '(none)' for argv in CASES])
def test_the_lazy_parser_prints_what_the_full_parser_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """On any Python: the parser built for one command (``build_parser(argv)``) against the one with every command."""
    monkeypatch.setenv('COLUMNS', '100')
    lazy = run_parser(capsys, build_parser(list(argv)), list(argv))
    assert lazy == run_parser(capsys, build_parser(), list(argv))
    assert lazy[0] == CASES[argv][0]


def test_every_command_and_subcommand_help_is_captured() -> None:
    expected = {(*path, '--help') for path in command_paths(build_parser())} | {tuple(a) for a in USAGE_ERRORS}
    assert set(CASES) == expected


@pytest.mark.parametrize('name', [name for name, _, _ in COMMANDS])
def test_the_listed_help_is_the_one_the_command_registers(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``mailinfra --help`` lists each command with COMMANDS' help; built, the command registers its own."""
    monkeypatch.setenv('COLUMNS', '100')
    listed = build_parser([])
    built = build_parser([name])
    assert built.format_help() == listed.format_help() == build_parser().format_help()


def test_a_changed_help_would_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('COLUMNS', '100')
    name, help_text, register = COMMANDS[-1]
    monkeypatch.setattr('mailinfra_iac.cli.main.COMMANDS', (*COMMANDS[:-1], (name, help_text + ' (changed)', register)))
    assert build_parser([]).format_help() != build_parser([name]).format_help()


PROBE = """
import json, sys
from mailinfra_iac.cli.main import main
try:
    code = main(sys.argv[2:])
except SystemExit as leave:
    code = leave.code
with open(sys.argv[1], 'w') as out:
    json.dump({'code': code, 'modules': sorted(sys.modules)}, out)
"""


def imported(tmp_path: Path, *argv: str) -> tuple[int, set[str]]:
    """Run ``mailinfra ARGV`` in a fresh interpreter: its exit code and every module it imported."""
    report = tmp_path / 'modules.json'
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), str(ROOT / 'agent')])}
    result = subprocess.run(
        [sys.executable, '-c', PROBE, str(report), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 'Traceback' not in result.stderr, result.stderr
    data = json.loads(report.read_text(encoding='utf-8'))
    return data['code'], set(data['modules'])


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name in HEAVY or name.startswith(tuple(f'{h}.' for h in HEAVY)))


@pytest.fixture(scope='module')
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('store') / 'feedback.db'
    write_demo_store(path)
    return path


def test_top_level_help_imports_no_command(tmp_path: Path) -> None:
    code, modules = imported(tmp_path, '--help')
    assert code == 0
    assert sorted(filter(COMMAND_MODULE.fullmatch, modules)) == []
    assert heavy(modules) == []


def test_a_command_imports_no_other_command(tmp_path: Path) -> None:
    code, modules = imported(tmp_path, 'warmup', 'plan', '--help')
    assert code == 0
    assert sorted(filter(COMMAND_MODULE.fullmatch, modules)) == [
        'mailinfra_iac.cli.feedback_report_cmd',  # its --store option
        'mailinfra_iac.cli.warmup_cmd',
    ]


def test_feedback_report_help_needs_no_model(tmp_path: Path) -> None:
    code, modules = imported(tmp_path, 'feedback', 'report', '--help')
    assert code == 0
    assert heavy(modules) == []
    assert 'mailinfra_iac.cli.feedback_report_cmd' in modules


@pytest.mark.parametrize('fmt', ['table', 'csv', 'json', 'html'])
def test_feedback_report_needs_no_model(tmp_path: Path, store: Path, fmt: str) -> None:
    code, modules = imported(tmp_path, 'feedback', 'report', '--store', f'sqlite:{store}', '--format', fmt)
    assert code == 0
    assert heavy(modules) == []
    assert 'mailinfra_iac.feedback_report.aggregate' in modules


def test_feedback_report_with_a_spec_loads_the_model(tmp_path: Path, store: Path) -> None:
    """The probe sees what a command imports: --spec needs the model (and validate needs it too)."""
    argv = ('feedback', 'report', '--store', f'sqlite:{store}', '--format', 'html', '--spec', str(EXAMPLE))
    code, modules = imported(tmp_path, *argv)
    assert code == 0
    assert {'pydantic', 'mailinfra_iac.api', 'mailinfra_iac.model', 'mailinfra_iac.facts.warmup'} <= modules
    code, modules = imported(tmp_path, 'validate', str(EXAMPLE))
    assert code == 0
    assert {'pydantic', 'yaml', 'mailinfra_iac.api'} <= set(heavy(modules))


LAZY_API = """
import sys
from types import ModuleType
import mailinfra_iac
assert 'mailinfra_iac.api' not in sys.modules, 'import mailinfra_iac loaded the API'
import mailinfra_iac.render.zonefile  # the subpackage named like the function
from mailinfra_iac import Spec, render
import mailinfra_iac.api
assert render is mailinfra_iac.api.render and not isinstance(render, ModuleType), render
assert Spec is mailinfra_iac.api.Spec
assert all(getattr(mailinfra_iac, name) is not None for name in mailinfra_iac.__all__)
assert set(mailinfra_iac.__all__) <= set(dir(mailinfra_iac))
try:
    mailinfra_iac.no_such_name
except AttributeError as error:
    print(error)
"""


def test_the_api_names_load_on_first_use() -> None:
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), str(ROOT / 'agent')])}
    result = subprocess.run(
        [sys.executable, '-c', LAZY_API], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode, result.stderr) == (0, '')
    assert result.stdout == "module 'mailinfra_iac' has no attribute 'no_such_name'\n"


if __name__ == '__main__':
    write_help()
