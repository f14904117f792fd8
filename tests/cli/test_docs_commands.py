"""Every command README.md and docs/*.md show a user exists as written: `mailinfra ...` and `mailinfra-agent ...`
name real subcommands and options, and a `pip install` of the checkout brings the agent it depends on."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from mailinfra_agent.cli import build_parser as agent_parser
from mailinfra_iac.cli.main import build_parser
from tests.conftest import ROOT

DOCS = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
INLINE = re.compile(r'`((?:mailinfra|mailinfra-agent|pip install) [^`]*)`')


def shown_commands(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, command) of the code blocks' lines and the inline code that start with a command."""
    block = False
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        if line.startswith('```'):
            block = not block
        elif block:
            text = re.sub(r'^(\$ |- run: |- )', '', line.strip())
            text = re.sub(r'^([A-Z_]+=\S+\s+)+', '', text)  # MAILINFRA_DQS_KEY=... mailinfra ...
            if text.startswith(('mailinfra ', 'mailinfra-agent ', 'pip install ')):
                yield number, text.split(' #')[0].replace('\\', '')
        else:
            yield from ((number, found) for found in INLINE.findall(line))


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def problems_of(words: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """What in ``words`` (a command line, placeholders allowed) the parser does not know."""
    options: dict[str, argparse.Action] = {}
    found: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        word = word.strip('[]()')
        if word.startswith('--') or re.fullmatch(r'-[a-zA-Z]', word):
            options.update({name: action for action in parser._actions for name in action.option_strings})
            for option in word.split('|'):
                action = options.get(option.split('=')[0])
                if action is None:
                    found.append(f'unknown option {option}')
                elif action.nargs != 0 and '=' not in option:
                    next(rest, None)  # its value
            continue
        if word.endswith(':') or word in {'...', 'COMMAND', 'ACTION'}:
            break  # a log line (`mailinfra-agent shaping: event=...`), or any command
        subparsers = _subparsers(parser)
        if not subparsers or word.isupper():
            continue  # a positional argument or its placeholder
        names = re.split(r'[|/]', word)
        unknown = [name for name in names if name not in subparsers]
        if unknown:
            found.append(f'unknown subcommand {" ".join(unknown)}')
            break
        parser = subparsers[names[0]]
    return found


def test_every_shown_command_names_real_subcommands_and_options() -> None:
    parsers = {'mailinfra': build_parser(), 'mailinfra-agent': agent_parser()}
    wrong = []
    for doc in DOCS:
        for number, command in shown_commands(doc):
            words = command.split() if "'" in command and command.count("'") % 2 else shlex.split(command)
            if words[0] in parsers:
                wrong += [f'{doc.name}:{number}: {command}: {p}' for p in problems_of(words, parsers[words[0]])]
    assert wrong == []


def test_the_checker_finds_what_is_wrong() -> None:
    parser = build_parser()
    assert problems_of(['mailinfra', 'render', 'SPEC', '-o', 'out', '--format', 'json'], parser) == []
    assert problems_of(['mailinfra', 'render', 'SPEC', '--out', 'x'], parser) == ['unknown option --out']
    assert problems_of(['mailinfra', 'dkim', 'rotate/generate', 'SPEC'], parser) == []
    assert problems_of(['mailinfra', 'dkim', 'revoke', 'SPEC'], parser) == ['unknown subcommand revoke']


def test_a_pip_install_of_the_checkout_installs_the_agent_too() -> None:
    # `pip install .` alone fails: mailinfra-iac needs mailinfra-agent==<its version>, which is on no index.
    installs = [
        (f'{doc.name}:{number}', shlex.split(command))
        for doc in DOCS
        for number, command in shown_commands(doc)
        if command.startswith('pip install ')
    ]
    assert installs
    wrong = [where for where, words in installs if {'.', '-e.'} & set(words) and not {'./agent', 'agent'} & set(words)]
    assert wrong == []
