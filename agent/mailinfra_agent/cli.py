"""``mailinfra-agent COMMAND ...``: one entry point for the host's services, timers and role checks.

Each command is one module under ``mailinfra_agent/commands/`` with ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``; a new command is one module plus a line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from . import __version__

COMMANDS: tuple[str, ...] = (
    'powermta_check',
    'postfix_check',
    'sending_ips',
    'contract',
    'store',
    'exporter',
    'dns_drift',
    'dnsbl',
    'ingest',
    'suppression',
    'unsubscribe',
    'shaping',
    'warmup',
)
"""Modules under ``mailinfra_agent.commands``, in the order ``--help`` lists them."""

EXIT_USAGE = 64
EXIT_INTERNAL = 70


def _commands() -> list[ModuleType]:
    return [importlib.import_module(f'mailinfra_agent.commands.{name}') for name in COMMANDS]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or with ``only`` (a module of ``COMMANDS``) of that one alone: a run imports
    only its command's module (spawn(8) starts ``ingest return-path-policy`` per smtpd connection)."""
    parser = argparse.ArgumentParser(
        prog='mailinfra-agent', description='Services and checks of mailinfra-iac that run on the hosts.'
    )
    parser.add_argument('--version', action='version', version=f'mailinfra-agent {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    modules = [importlib.import_module(f'mailinfra_agent.commands.{only}')] if only else _commands()
    for module in modules:
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    _describe_actions(parser)
    return parser


def _describe_actions(parser: argparse.ArgumentParser) -> None:
    """An action's ``--help`` without a description of its own starts with its one-line help."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if sub.description is None:
                    sub.description = helps.get(name)
                _describe_actions(sub)


def _named_command(argv: Sequence[str]) -> str | None:
    """The module of the command ``argv`` starts with, if it names one."""
    name = argv[0].replace('-', '_') if argv else ''
    return name if name in COMMANDS and argv[0] == name.replace('_', '-') else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_named_command(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if getattr(args, 'run', None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
