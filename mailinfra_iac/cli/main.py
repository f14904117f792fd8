"""Entry point of the ``mailinfra`` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from .. import api
from ..problems import MailinfraError, Problem, SpecInvalid
from . import dkim_cmd, dns_cmd, plan_cmd, records_cmd
from .common import addresses_from
from .explain import explain_text
from .version import VersionAction

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid date "{text}", expected YYYY-MM-DD') from None


def _print_problems(problems: list[Problem], fmt: str, header: str | None = None) -> None:
    if fmt == 'json':
        errors = sum(1 for problem in problems if problem.severity == 'error')
        print(json.dumps({'valid': errors == 0, 'problems': [p.as_dict() for p in problems]}, indent=2))
        return
    stream = sys.stderr if any(problem.severity == 'error' for problem in problems) else sys.stdout
    if header:
        print(header, file=stream)
    for problem in problems:
        print(f'  - {problem}', file=stream)


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.path)
    if target.exists() and not args.force:
        print(f'error: {target} exists; use --force to overwrite', file=sys.stderr)
        return EXIT_INVALID
    text = resources.files('mailinfra_iac.cli').joinpath('starter.yml').read_text(encoding='utf-8')
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f'.{target.name}.tmp')
    temporary.write_text(text, encoding='utf-8')
    os.replace(temporary, target)
    print(f'Wrote a starter spec to {target}; edit it, then run: mailinfra validate {target}')
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    problems = api.validate(args.spec, as_of=args.as_of)
    errors = [problem for problem in problems if problem.severity == 'error']
    if args.format == 'json':
        _print_problems(problems, 'json')
    elif errors:
        _print_problems(problems, 'text', f'Invalid spec {args.spec}: {len(errors)} error(s)')
    else:
        print(f'{args.spec} is valid')
        _print_problems(problems, 'text')
    return EXIT_INVALID if errors else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec, as_of=args.as_of)
    only = [name.strip() for name in args.only.split(',')] if args.only else None
    out = api.render(
        spec,
        args.output,
        renderers=only,
        addresses=addresses_from(args.terraform_output),
        dkim=None
        if args.only and not {'dns', 'terraform'} & set(args.only.split(','))
        else api.keystore_dkim(spec, args.keys),
        force=args.force,
    )
    _print_problems(spec.problems, 'text')
    print(f'Rendered {spec.name} to {out}')
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec, as_of=args.as_of)
    print(explain_text(spec), end='')
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mailinfra', description=__doc__)
    parser.add_argument('--version', action=VersionAction)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    init = sub.add_parser('init', help='write a commented starter spec')
    init.add_argument('path', nargs='?', default='mailinfra.yml')
    init.add_argument('--force', action='store_true', help='overwrite an existing file')
    init.set_defaults(func=cmd_init)

    def with_spec(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=help_text)
        command.add_argument('spec', help='path to the deployment spec (YAML)')
        command.add_argument(
            '--as-of', type=_date, default=None, metavar='DATE', help='evaluate warm-up as of this day (default: today)'
        )
        return command

    validate = with_spec('validate', 'check a spec and report every problem')
    validate.add_argument('--format', choices=['text', 'json'], default='text')
    validate.set_defaults(func=cmd_validate)

    render = with_spec('render', 'render Terraform, inventory and MTA configuration into a directory')
    render.add_argument('-o', '--output', required=True, help='output directory (replaced as a whole)')
    render.add_argument('--only', help='comma-separated renderer names')
    render.add_argument(
        '--terraform-output',
        metavar='FILE',
        help='`terraform output -json` of the root module, for allocated IP addresses',
    )
    render.add_argument('--force', action='store_true', help='replace a non-empty directory we did not create')
    render.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    render.set_defaults(func=cmd_render)

    explain = with_spec('explain', 'summarise streams, pools, IPs, limits and advice')
    explain.set_defaults(func=cmd_explain)

    for module in (records_cmd, dkim_cmd, plan_cmd, dns_cmd):
        module.register(sub, with_spec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except SpecInvalid as invalid:
        if getattr(args, 'format', 'text') == 'json':
            _print_problems(invalid.problems, 'json')
        else:
            _print_problems(invalid.problems, 'text', f'Invalid spec {invalid.file}: {len(invalid.errors)} error(s)')
        return EXIT_INVALID
    except MailinfraError as error:
        print(f'error: {error}', file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if os.environ.get('MAILINFRA_DEBUG'):
            raise
        print(
            f'internal error: {type(error).__name__}: {error}\n'
            'This is a bug in mailinfra-iac; rerun with MAILINFRA_DEBUG=1 for a traceback and report it.',
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == '__main__':
    sys.exit(main())
