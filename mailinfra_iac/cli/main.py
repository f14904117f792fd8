"""Entry point of the ``mailinfra`` command."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from ..problems import MailinfraError, Problem, SpecInvalid
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
    from importlib import resources

    target = Path(args.path)
    if target.exists() and not args.force:
        print(f'error: {target} exists; use --force to overwrite', file=sys.stderr)
        return EXIT_INVALID
    if target.is_dir():
        print(f'error: {target} is a directory; give the path of the spec file to write', file=sys.stderr)
        return EXIT_INVALID
    text = resources.files('mailinfra_iac.cli').joinpath('starter.yml').read_text(encoding='utf-8')
    temporary = target.with_name(f'.{target.name}.tmp')
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding='utf-8')
        os.replace(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        reason = f'{error.filename}: {error.strerror}' if error.filename and error.strerror else str(error)
        print(f'error: cannot write {target}: {reason}', file=sys.stderr)
        return EXIT_INVALID
    print(f'Wrote a starter spec to {target}; edit it, then run: mailinfra validate {target}')
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from .. import api

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
    from .. import api
    from ..paths import data_root
    from ..render import default_registry as default_renderers
    from ..render.output import write_tree
    from .common import addresses_from
    from .progress import Progress

    only: list[str] | None = args.only
    data_root()  # a wrong $MAILINFRA_PROJECT is named first, before the spec's keys are looked for
    with Progress('loading the spec', enabled=args.format == 'text') as progress:
        spec = api.load_spec(args.spec, as_of=args.as_of)
        output = args.output or INVENTORIES / spec.deployment.client.name
        progress.phase('rendering')
        files = api.render_files(
            spec,
            renderers=only,
            addresses=addresses_from(args.terraform_output, spec),
            dkim=None if only and not {'dns', 'terraform'} & set(only) else api.keystore_dkim(spec, args.keys),
        )
        progress.phase('writing files', len(files))
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
    from .. import api
    from .explain import explain_json, explain_text

    spec = api.load_spec(args.spec, as_of=args.as_of)
    if args.format == 'json':
        print(json.dumps(explain_json(spec), indent=2))
    else:
        print(explain_text(spec), end='')
    return EXIT_OK


Register = Callable[[Any, Callable[..., argparse.ArgumentParser]], None]
"""Adds one command to the ``mailinfra`` sub-parsers: ``register(sub, with_spec)``."""


def _register_init(sub: Any, with_spec: Callable[..., argparse.ArgumentParser]) -> None:
    init = sub.add_parser('init', help=HELP['init'])
    init.add_argument('path', nargs='?', default='mailinfra.yml')
    init.add_argument('--force', action='store_true', help='overwrite an existing file')
    init.set_defaults(func=cmd_init)


def _register_validate(sub: Any, with_spec: Callable[..., argparse.ArgumentParser]) -> None:
    validate = with_spec('validate', HELP['validate'])
    validate.add_argument('--format', choices=['text', 'json'], default='text')
    validate.add_argument('--strict', action='store_true', help='warnings fail too (exit 1), e.g. in CI')
    validate.set_defaults(func=cmd_validate)


def _register_render(sub: Any, with_spec: Callable[..., argparse.ArgumentParser]) -> None:
    from ..render import default_registry as default_renderers
    from .common import renderer_names

    render = with_spec('render', HELP['render'])
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


def _register_explain(sub: Any, with_spec: Callable[..., argparse.ArgumentParser]) -> None:
    explain = with_spec('explain', HELP['explain'])
    explain.add_argument('--format', choices=['text', 'json'], default='text', help='json: see docs/cli.md')
    explain.set_defaults(func=cmd_explain)


COMMANDS: tuple[tuple[str, str, Register | str], ...] = (
    ('init', 'write a commented starter spec', _register_init),
    ('validate', 'check a spec and report every problem', _register_validate),
    ('render', 'render Terraform, inventory and MTA configuration into a directory', _register_render),
    ('explain', 'summarise streams, pools, IPs, limits and advice', _register_explain),
    ('records', 'print every DNS record the deployment publishes', 'records_cmd'),
    ('dkim', 'generate and rotate DKIM keys (kept outside the repository)', 'dkim_cmd'),
    ('plan', 'render, then run terraform init and terraform plan on the Terraform root', 'plan_cmd'),
    ('dns', 'check DNS as the authoritative servers serve it', 'dns_cmd'),
    ('feedback', 'bounces and complaints: classify replies, report rates', 'feedback_cmd'),
    ('dnsbl', 'check the sending IPs and domains against DNS blocklists', 'dnsbl_cmd'),
    ('advise', 'economics, dedicated or shared, MTA and IPs per stream, with the arithmetic', 'advise_cmd'),
    ('warmup', 'IP warm-up: the calendar of caps per IP and ISP', 'warmup_cmd'),
    (
        'audit',
        'check the Gmail, Yahoo and Microsoft bulk-sender requirements (SPF, DKIM, DMARC and alignment, FCrDNS, '
        'TLS, one-click unsubscribe, spam rate) on the live DNS, the rendered MTA configuration and the spec',
        'audit_cmd',
    ),
)
"""Every command in ``mailinfra --help`` order: name, help, and how to add it (a function, or a module of this
package with ``register(sub, with_spec)``, imported only when the command is built). tests/cli/test_startup.py
checks that each help here is the one its module registers."""

HELP = {name: help_text for name, help_text, _ in COMMANDS}


def _command_in(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first argument that is not an option (the top level takes no values)."""
    return next((arg for arg in argv if not arg.startswith('-')), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``mailinfra`` parser. Without ``argv``, every command is built; with it, only the command it names
    (others are listed with their help only), so that a run imports no other command's module."""
    parser = argparse.ArgumentParser(prog='mailinfra', description=DESCRIPTION)
    parser.add_argument('--version', action=VersionAction)
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    def with_spec(name: str, help_text: str, parent: Any = sub) -> argparse.ArgumentParser:
        command = parent.add_parser(name, help=help_text)
        command.add_argument('spec', help='path to the deployment spec (YAML)')
        command.add_argument(
            '--as-of', type=_date, default=None, metavar='DATE', help='evaluate warm-up as of this day (default: today)'
        )
        return command

    wanted = None if argv is None else _command_in(argv)
    for name, help_text, register in COMMANDS:
        if argv is not None and name != wanted:
            sub.add_parser(name, help=help_text)
        elif isinstance(register, str):
            import_module(f'{__package__}.{register}').register(sub, with_spec)
        else:
            register(sub, with_spec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
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
    except OSError as error:
        if error.filename is None or not error.strerror or os.environ.get('MAILINFRA_DEBUG'):
            return _internal(error)
        # A file or directory the command was pointed at (-o, --keys, ...) that cannot be written or read.
        print(f'error: {error.filename}: {error.strerror}', file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:
        return _internal(error)


def _internal(error: Exception) -> int:
    if os.environ.get('MAILINFRA_DEBUG'):
        raise error
    print(
        f'internal error: {type(error).__name__}: {error}\n'
        'This is a bug in mailinfra-iac; rerun with MAILINFRA_DEBUG=1 for a traceback and report it.',
        file=sys.stderr,
    )
    return EXIT_INTERNAL


if __name__ == '__main__':
    sys.exit(main())
