"""A thin adapter over the ``terraform`` command: find a usable binary, ``init``, ``plan``, ``output``.

python-terraform (a small subprocess wrapper, last released in 2019) runs the commands; nothing else in the
package imports it, so it can be replaced here alone. Every failure becomes a :class:`TerraformError` whose
message says what went wrong in words a user can act on, with Terraform's own output and exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..problems import MailinfraError

MINIMUM = (1, 5, 0)
"""The modules' ``required_version``."""

ENV_BINARY = 'MAILINFRA_TERRAFORM'
"""Environment variable naming the terraform binary to use."""

Version = tuple[int, int, int]


def _text(version: Version) -> str:
    return '.'.join(map(str, version))


class TerraformError(MailinfraError):
    """Terraform could not do what was asked."""


class TerraformNotFound(TerraformError):
    """No terraform binary."""


class TerraformTooOld(TerraformError):
    """Only binaries older than the modules need."""


class TerraformFailed(TerraformError):
    """A terraform command exited with an error; ``stderr`` and ``returncode`` are Terraform's own."""

    def __init__(self, command: str, returncode: int, stdout: str, stderr: str, working_dir: Path) -> None:
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.working_dir = working_dir
        output = (stderr.strip() or stdout.strip() or '(no output)').replace('\n\n\n', '\n\n')
        super().__init__(f'terraform {command} failed with exit code {returncode} in {working_dir}:\n{output}')


class ProviderUnavailable(TerraformError):
    """``terraform init`` could not install provider plugins (typically: no access to the registry)."""

    def __init__(self, providers: list[str], reason: str, failed: TerraformFailed) -> None:
        self.providers = providers
        self.reason = reason
        self.failed = failed
        lines = [
            f'provider {provider} could not be installed: {reason} — run plan where the registry is reachable, '
            'e.g. in CI'
            for provider in providers
        ]
        lines.append(f'(terraform init exited with code {failed.returncode} in {failed.working_dir})')
        super().__init__('\n'.join(lines))


@dataclass(frozen=True)
class TerraformBinary:
    path: str
    version: Version

    def __str__(self) -> str:
        return f'terraform {_text(self.version)} at {self.path}'


@dataclass(frozen=True)
class Result:
    """One finished terraform command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class PlanResult:
    changes: bool
    """Whether the plan has changes (``-detailed-exitcode`` 2)."""
    stdout: str
    plan_file: Path | None


def _run(binary: str, args: Sequence[str], working_dir: Path | None = None) -> Result:
    """Run ``binary args...`` through python-terraform, capturing its output."""
    from python_terraform import Terraform as Wrapper

    wrapper = Wrapper(working_dir=str(working_dir) if working_dir else None, terraform_bin_path=binary)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # python-terraform calls the deprecated Logger.warn
        try:
            returncode, stdout, stderr = wrapper.cmd(args[0], *args[1:], capture_output=True)
        except OSError as error:
            raise TerraformNotFound(f'cannot run terraform at {binary}: {error.strerror or error}') from None
    return Result(tuple(args), int(returncode), stdout or '', stderr or '')


def binary_version(binary: str) -> Version | None:
    """The version a terraform binary reports, or None if it reports none."""
    try:
        result = _run(binary, ['version', '-json'])
    except TerraformNotFound:
        return None
    text = result.stdout
    with contextlib.suppress(ValueError, KeyError, TypeError):  # before 0.13: no -json, text "Terraform v1.2.3"
        text = str(json.loads(result.stdout)['terraform_version'])
    match = re.search(r'(?:^|Terraform v)(\d+)\.(\d+)\.(\d+)', text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None


def _candidates(path_env: str | None) -> list[str]:
    found = []
    for entry in (path_env if path_env is not None else os.environ.get('PATH', '')).split(os.pathsep):
        candidate = Path(entry or '.') / 'terraform'
        if candidate.is_file() and os.access(candidate, os.X_OK) and str(candidate) not in found:
            found.append(str(candidate))
    return found


def find_terraform(
    explicit: str | None = None, *, minimum: Version = MINIMUM, path_env: str | None = None
) -> TerraformBinary:
    """The binary to use: ``explicit`` (or ``$MAILINFRA_TERRAFORM``), else the first on PATH at least ``minimum``."""
    need = f'the modules need >= {_text(minimum)}'
    chosen = explicit or os.environ.get(ENV_BINARY)
    if chosen:
        path = chosen if os.sep in chosen else shutil.which(chosen, path=path_env)
        if path is None or not os.path.isfile(path):
            raise TerraformNotFound(f'terraform not found at {chosen}')
        candidates = [path]
    else:
        candidates = _candidates(path_env)
        if not candidates:
            raise TerraformNotFound(
                f'terraform not found on PATH; install Terraform >= {_text(minimum)} or name it with '
                f'--terraform or ${ENV_BINARY}'
            )
    seen = []
    for path in candidates:
        version = binary_version(path)
        if version is not None and version >= minimum:
            return TerraformBinary(path, version)
        seen.append(f'terraform {_text(version) if version else "of unknown version"} found at {path}')
    raise TerraformTooOld('; '.join(seen) + f', {need}')


_PROVIDER = re.compile(r'provider\s+((?:[\w.-]+/)?[\w.-]+/[\w.-]+)')
_UNREACHABLE = re.compile(r'could not connect to ([\w.-]+)|lookup ([\w.-]+)[^:]*: no such host|dial tcp')


def _provider_failure(failed: TerraformFailed) -> ProviderUnavailable | None:
    text = ' '.join((failed.stderr + '\n' + failed.stdout).split())
    if 'provider' not in text or not re.search(r'Failed to (?:query available provider|install provider)', text):
        return None
    providers = sorted(
        set(
            _PROVIDER.findall(' '.join(re.findall(r'(?:available versions for|install|download) provider\s+\S+', text)))
        )
    )
    providers = [provider.rstrip(':.,') for provider in providers]
    unreachable = _UNREACHABLE.search(text)
    if not providers:
        return None
    if unreachable:
        host = unreachable.group(1) or unreachable.group(2) or 'registry.terraform.io'
        reason = f'no access to {host}'
    else:
        reason = 'the registry did not provide it (see terraform init output)'
    return ProviderUnavailable(providers, reason, failed)


_DIAGNOSTIC_AT = re.compile(r'^\s*on (.+?) line \d+')
_SOURCE_LINE = re.compile(r'^(\s*)(\d+): ')


def _hide_var_file_lines(text: str, var_files: Sequence[str]) -> str:
    """``text`` without the source lines Terraform's diagnostics quote from a variables file: they hold tokens."""
    names = {os.path.basename(path) for path in var_files}
    lines, in_var_file = [], False
    for line in text.splitlines(keepends=True):
        at = _DIAGNOSTIC_AT.match(line)
        if at:
            in_var_file = os.path.basename(at.group(1).rstrip(':').strip()) in names
        elif not line.strip():
            in_var_file = False
        elif in_var_file and (source := _SOURCE_LINE.match(line)):
            line = f'{source.group(1)}{source.group(2)}: (a line of a variables file: not shown)\n'
        lines.append(line)
    return ''.join(lines)


def _private_file(path: Path) -> bool:
    """Make ``path`` readable by its owner only before a command writes it; True if this call created it."""
    try:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # an earlier plan: kept, made private
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            created = False
        else:
            created = True
        try:
            os.fchmod(descriptor, 0o600)
        finally:
            os.close(descriptor)
        return created
    except FileNotFoundError:
        return False  # the working directory is checked by ``run``
    except OSError as error:
        raise TerraformError(f'cannot prepare the plan file {path}: {error.strerror}') from None


class Terraform:
    """Terraform commands in one working directory (a root module)."""

    def __init__(self, working_dir: str | os.PathLike[str], binary: TerraformBinary) -> None:
        self.working_dir = Path(working_dir)
        self.binary = binary

    def run(self, args: Sequence[str], *, ok: Sequence[int] = (0,), var_files: Sequence[str] = ()) -> Result:
        """Run ``terraform args...``; the source lines Terraform quotes from ``var_files`` are not passed on."""
        if not self.working_dir.is_dir():
            raise TerraformError(f'no Terraform directory at {self.working_dir}')
        result = _run(self.binary.path, args, self.working_dir)
        if var_files:
            stdout, stderr = (_hide_var_file_lines(text, var_files) for text in (result.stdout, result.stderr))
            result = Result(result.args, result.returncode, stdout, stderr)
        if result.returncode not in ok:
            raise TerraformFailed(args[0], result.returncode, result.stdout, result.stderr, self.working_dir)
        return result

    def init(self, *, backend: bool = True) -> Result:
        """``terraform init``; a provider that cannot be installed raises :class:`ProviderUnavailable`."""
        # Terraform writes the backend's settings, credentials included, to .terraform/terraform.tfstate, mode
        # 0644, before it installs the providers: a directory of the owner's alone keeps the file private meanwhile
        with contextlib.suppress(FileNotFoundError, FileExistsError):  # a missing working_dir: ``run`` says so
            (self.working_dir / '.terraform').mkdir(mode=0o700)
        try:
            return self.run(['init', '-input=false', '-no-color', f'-backend={str(backend).lower()}'])
        except TerraformFailed as failed:
            raise _provider_failure(failed) or failed from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                (self.working_dir / '.terraform' / 'terraform.tfstate').chmod(0o600)

    def plan(self, *, out: str | None = 'plan.tfplan', var_files: Sequence[str] = ()) -> PlanResult:
        """``terraform plan``; the plan file holds every variable's value in clear, provider tokens included: 0600."""
        args = ['plan', '-input=false', '-no-color', '-detailed-exitcode']
        args += [f'-var-file={path}' for path in var_files]
        plan_file = None
        created = False
        if out is not None:
            args.append(f'-out={out}')
            plan_file = self.working_dir / out
            created = _private_file(plan_file)  # Terraform rewrites an existing file in place, keeping its mode
        try:
            result = self.run(args, ok=(0, 2), var_files=var_files)
        except TerraformError:
            if created and plan_file is not None and plan_file.is_file() and plan_file.stat().st_size == 0:
                plan_file.unlink()  # ours, never written: a failed plan leaves no file it did not find
            raise
        if plan_file is not None and plan_file.exists():
            plan_file.chmod(0o600)  # in case a Terraform replaces the file instead
        return PlanResult(result.returncode == 2, result.stdout, plan_file)

    def apply(self, *, var_files: Sequence[str] = ()) -> Result:
        args = ['apply', '-input=false', '-no-color', '-auto-approve', *(f'-var-file={path}' for path in var_files)]
        return self.run(args, var_files=var_files)

    def output(self) -> dict[str, Any]:
        """``terraform output -json`` as data (what ``mailinfra render --terraform-output`` reads)."""
        result = self.run(['output', '-json', '-no-color'])
        try:
            data: dict[str, Any] = json.loads(result.stdout or '{}')
        except ValueError as error:
            raise TerraformError(f'terraform output -json gave no JSON: {error}') from None
        return data
