"""``mailinfra-agent postfix-check check|install``: guard the postfix role's configuration changes.

``check STAGED LIVE`` exits 0 (passed), 1 (problems on stderr) or 3 (passed, but the listeners change: restart);
``install STAGED LIVE FILE...`` copies the changed files into place. See ``mailinfra_agent.postfix.staged_check``.
"""

from __future__ import annotations

import argparse
import sys

from ..postfix import staged_check

NAME = 'postfix-check'
HELP = 'Check a staged Postfix configuration directory, or install its changed files.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    check = actions.add_parser(
        'check', help='exit 1 on a problem, 3 when the instance needs a restart, else 0', description=HELP
    )
    check.add_argument('staged', metavar='STAGED', help='the staged configuration directory')
    check.add_argument('live', metavar='LIVE', help='the live configuration directory it would replace')
    install = actions.add_parser('install', help='copy the files that differ from STAGED to LIVE', description=HELP)
    install.add_argument('staged', metavar='STAGED', help='the staged configuration directory')
    install.add_argument('live', metavar='LIVE', help='the live configuration directory')
    install.add_argument('files', metavar='FILE', nargs='+', help='a file name relative to both directories')


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == 'check':
            return staged_check.check(args.staged, args.live)
        return staged_check.install(args.staged, args.live, args.files)
    except OSError as error:
        print(f'postfix-check {args.action}: {error}', file=sys.stderr)
        return 2
