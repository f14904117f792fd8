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
from ..render import default_registry as default_renderers
from ..render.output import write_tree
from . import advise_cmd, audit_cmd, dkim_cmd, dns_cmd, dnsbl_cmd, feedback_cmd, plan_cmd, records_cmd, warmup_cmd
from .common import addresses_from, renderer_names
from .explain import explain_json, explain_text
from .progress import Progress
from .version import VersionAction

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 70
DESCRIPTION = (
    'Validate a deployment spec of dedicated email-sending infrastructure and render it: Ansible inventory, '
    'Terraform, DNS records and zone files, MTA configuration. Start with `mailinfra init`.'
)
INVENTORIES = Path('inventories')
"""Where ``render`` writes without ``-o``: ``inventories/<client>/``, which ``ansible.cfg`` points at."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'invalid date "{text}", expected YYYY-MM-DD') from None


def _print_problems(
    problems: list[Problem], fmt: str, header: str | None = None, failing: tuple[str, ...] = ('error',)
) -> None:
    if fmt == 'json':
        errors = sum(1 for problem in problems if problem.severity in failing)
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
    failing = ('error', 'warning') if args.strict else ('error',)
    errors = [problem for problem in problems if problem.severity in failing]
    if args.format == 'json':
        _print_problems(problems, 'json', failing=failing)
    elif errors:
        counted = 'error(s) and warning(s) (--strict)' if args.strict else 'error(s)'
        _print_problems(problems, 'text', f'Invalid spec {args.spec}: {len(errors)} {counted}')
    else:
        print(f'{args.spec} is valid')
        _print_problems(problems, 'text')
    return EXIT_INVALID if errors else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    only: list[str] | None = args.only
    with Progress('loading the spec', enabled=args.format == 'text') as progress:
        spec = api.load_spec(args.spec, as_of=args.as_of)
        progress.phase('rendering')
        files = api.render_files(
            spec,
            renderers=only,
            addresses=addresses_from(args.terraform_output, spec),
            dkim=None if only and not {'dns', 'terraform'} & set(only) else api.keystore_dkim(spec, args.keys),
        )
        progress.phase('writing files', len(files))
        output = args.output or INVENTORIES / spec.deployment.client.name
        out = write_tree(files, output, force=args.force, progress=progress.update)
    if args.format == 'json':
        report = {
            'spec': args.spec,
            'output': str(out),
            'renderers': only or default_renderers().names(),
            'files': sorted(files),
            'problems': [problem.as_dict() for problem in spec.problems],
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK
    _print_problems(spec.problems, 'text')
    print(f'Rendered {spec.name} to {out}')
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    spec = api.load_spec(args.spec, as_of=args.as_of)
    if args.format == 'json':
        print(json.dumps(explain_json(spec), indent=2))
    else:
        print(explain_text(spec), end='')
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='mailinfra', description=DESCRIPTION)
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
    validate.add_argument('--strict', action='store_true', help='warnings fail too (exit 1), e.g. in CI')
    validate.set_defaults(func=cmd_validate)

    render = with_spec('render', 'render Terraform, inventory and MTA configuration into a directory')
    render.add_argument(
        '-o',
        '--output',
        help='output directory, replaced as a whole (default: inventories/CLIENT, CLIENT = client.name)',
    )
    render.add_argument(
        '--only',
        type=renderer_names,
        metavar='NAMES',
        help=f'comma-separated renderer names, of: {", ".join(default_renderers().names())}',
    )
    render.add_argument(
        '--terraform-output',
        metavar='FILE',
        help='`terraform output -json` of the root module, for allocated IP addresses',
    )
    render.add_argument('--force', action='store_true', help='replace a non-empty directory we did not create')
    render.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    render.add_argument('--format', choices=['text', 'json'], default='text', help='json: see docs/cli.md')
    render.set_defaults(func=cmd_render)

    explain = with_spec('explain', 'summarise streams, pools, IPs, limits and advice')
    explain.add_argument('--format', choices=['text', 'json'], default='text', help='json: see docs/cli.md')
    explain.set_defaults(func=cmd_explain)

    for module in (records_cmd, dkim_cmd, plan_cmd, dns_cmd, feedback_cmd, dnsbl_cmd, advise_cmd, warmup_cmd):
        module.register(sub, with_spec)
    audit_cmd.register(sub, with_spec)
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
