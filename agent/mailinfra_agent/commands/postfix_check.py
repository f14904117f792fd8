"""``mailinfra-agent postfix-check stage|check|trial|install``: guard the postfix role's configuration changes.

``stage STAGING`` writes the files of a JSON object on stdin (relative name -> text) under STAGING and prints
each file it wrote (0 done, 2 bad input or could not write);
``check STAGED LIVE`` exits 0 (passed), 1 (problems on stderr) or 3 (passed, but the listeners change: restart);
``trial STAGED`` runs STAGED in a throw-away instance that must carry a message from each listener to a sink
(0 passed, 1 problems on stderr); ``install STAGED LIVE FILE...`` copies the changed files into place. See
``mailinfra_agent.postfix.staged_check`` and ``mailinfra_agent.postfix.trial``. Exit 2: could not check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..postfix import staged_check, trial

NAME = 'postfix-check'
HELP = (
    'Stage a Postfix configuration directory, check it, try it in a throw-away instance, or install its changed files.'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    staging = actions.add_parser('stage', help='write the files of a JSON object on stdin (name -> text) under STAGING')
    staging.add_argument('staging', metavar='STAGING', help='the directory the files are written under')
    check = actions.add_parser('check', help='exit 1 on a problem, 3 when the instance needs a restart, else 0')
    check.add_argument('staged', metavar='STAGED', help='the staged configuration directory')
    check.add_argument('live', metavar='LIVE', help='the live configuration directory it would replace')
    check.add_argument('--no-connect', action='store_true', help='do not try to connect to the milters (syntax only)')
    attempt = actions.add_parser(
        'trial',
        help='run STAGED in a throw-away instance: a message from each listener must reach a sink',
    )
    attempt.add_argument('staged', metavar='STAGED', help='the staged configuration directory')
    attempt.add_argument(
        '--timeout', type=float, default=30.0, metavar='SECONDS', help='how long to wait for delivery (30)'
    )
    attempt.add_argument('--work-directory', metavar='DIR', help='where the temporary instance lives (TMPDIR)')
    attempt.add_argument('--keep', action='store_true', help='keep the temporary instance for inspection')
    attempt.add_argument(
        '--if-differs',
        metavar='LIVE',
        help='run only if one of the FILEs of STAGED differs from (or is missing in) the live directory LIVE',
    )
    attempt.add_argument('files', metavar='FILE', nargs='*', help='with --if-differs: the files to compare (all)')
    install = actions.add_parser('install', help='copy the files that differ from STAGED to LIVE')
    install.add_argument('staged', metavar='STAGED', help='the staged configuration directory')
    install.add_argument('live', metavar='LIVE', help='the live configuration directory')
    install.add_argument('files', metavar='FILE', nargs='+', help='a file name relative to both directories')


def run(args: argparse.Namespace) -> int:
    # postconf and postmap read a relative -c against the working directory, `postfix -c` refuses one.
    for name in ('staging', 'staged', 'live', 'if_differs'):
        if getattr(args, name, None) is not None:
            setattr(args, name, os.path.abspath(getattr(args, name)))
    try:
        if args.action == 'stage':
            return staged_check.stage(args.staging, _files(sys.stdin.read()))
        if args.action == 'check':
            return staged_check.check(args.staged, args.live, connect=not args.no_connect)
        if args.action == 'trial':
            if args.if_differs is not None and not staged_check.differs(args.staged, args.if_differs, args.files):
                print(f'{args.staged}: no trial, the files are those of {args.if_differs}')
                return 0
            result = trial.trial(args.staged, timeout=args.timeout, work=args.work_directory, keep=args.keep)
            for problem in result.problems:
                print(f'{args.staged}: trial: {problem}', file=sys.stderr)
            verdict = 'failed' if result.problems else 'passed'
            print(f'{args.staged}: trial {verdict} in {result.seconds:.1f} s, listeners {", ".join(result.listeners)}')
            return 1 if result.problems else 0
        return staged_check.install(args.staged, args.live, args.files)
    except (OSError, KeyError, ValueError) as error:
        print(f'postfix-check {args.action}: {error}', file=sys.stderr)
        return 2


def _files(text: str) -> dict[str, str]:
    try:
        files = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f'stdin is not JSON: {error}') from None
    if not isinstance(files, dict) or not all(isinstance(value, str) for value in files.values()):
        raise ValueError('stdin must be a JSON object of file name -> text')
    return files
