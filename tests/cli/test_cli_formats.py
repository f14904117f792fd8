"""The CLI items of issue 11: `--only` usage errors, `--format json` everywhere, `plan` without -o, progress."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import main
from mailinfra_iac.dkim import record_fingerprint
from mailinfra_iac.terraform import find_terraform
from mailinfra_iac.terraform.adapter import MINIMUM, TerraformError

from ..conftest import BASE, ROOT

AS_OF = '2026-11-28'
RENDERERS = 'inventory, dns, mta, terraform, monitoring'


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main([*args])
    except SystemExit as leaving:  # argparse: usage errors
        code = int(leaving.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = tmp_path / 'keys'
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(store))
    return store


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / 'spec.yml'
    path.write_text(BASE)
    return path


@pytest.fixture
def generated(spec: Path) -> Path:
    assert main(['dkim', 'generate', str(spec)]) == 0
    return spec


# render --only ---------------------------------------------------------------------------------


@pytest.mark.parametrize('only', ['dsn', 'dns,dsn', 'DNS', ',', '', 'dns,', 'inventory;dns'])
def test_render_only_unknown_names_are_a_usage_error(
    capsys: pytest.CaptureFixture[str], generated: Path, tmp_path: Path, only: str
) -> None:
    code, out, err = run(capsys, 'render', str(generated), '-o', str(tmp_path / 'out'), '--only', only)
    assert code == 2
    assert out == ''
    assert 'usage: mailinfra render' in err
    assert 'unknown renderer name(s)' in err and f'choose from: {RENDERERS}' in err
    assert 'internal error' not in err
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize(('only', 'top'), [('dns', {'dns'}), (' dns , mta ', {'dns', 'mta'}), ('dns,dns', {'dns'})])
def test_render_only_known_names(
    capsys: pytest.CaptureFixture[str], generated: Path, tmp_path: Path, only: str, top: set[str]
) -> None:
    out = tmp_path / 'out'
    code, _, err = run(capsys, 'render', str(generated), '-o', str(out), '--only', only)
    assert code == 0, err
    assert {path.name for path in out.iterdir() if not path.name.startswith('.')} == top


# --format json ---------------------------------------------------------------------------------


def test_render_json(capsys: pytest.CaptureFixture[str], generated: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    code, stdout, err = run(capsys, 'render', str(generated), '-o', str(out), '--format', 'json', '--as-of', AS_OF)
    assert code == 0
    assert err == ''
    report = json.loads(stdout)
    assert list(report) == ['spec', 'output', 'renderers', 'files', 'problems']
    assert report['spec'] == str(generated)
    assert report['output'] == str(out)
    assert report['renderers'] == RENDERERS.split(', ')
    written = sorted(str(p.relative_to(out)) for p in out.rglob('*') if p.is_file() and p.name != '.mailinfra-render')
    assert report['files'] == written
    assert {problem['check'] for problem in report['problems']} >= {'mta-choice'}
    code, stdout, _ = run(capsys, 'render', str(generated), '-o', str(out), '--only', 'dns', '--format', 'json')
    assert json.loads(stdout)['renderers'] == ['dns']


def test_explain_json(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, stdout, _ = run(capsys, 'explain', str(spec), '--format', 'json', '--as-of', AS_OF)
    assert code == 0
    report = json.loads(stdout)
    assert list(report) == ['client', 'mta', 'hosts', 'streams', 'sending_domains', 'problems']
    assert report['client'] == {'name': 'testco', 'display_name': ''}
    assert report['mta']['chosen'] == 'postfix'
    [marketing] = [stream for stream in report['streams'] if stream['name'] == 'marketing']
    assert marketing['use_case'] == 'newsletter'
    assert {'address': '192.0.2.20', 'ptr': 'bulk1.testco.example', 'host': 'mta1', 'warmup_started': None} in (
        marketing['ips']
    )
    assert set(marketing['retry']) == {'min_backoff', 'max_backoff', 'queue_lifetime'}
    assert all(isinstance(value, int) for value in marketing['retry'].values())
    assert [host['name'] for host in report['hosts']] == ['mta1']
    # the text shows the same spec
    _, text, _ = run(capsys, 'explain', str(spec), '--as-of', AS_OF)
    for stream in report['streams']:
        assert f'Stream {stream["name"]} ({stream["kind"]}): {stream["use_case"]}' in text


def test_dkim_generate_json(capsys: pytest.CaptureFixture[str], spec: Path, keys: Path) -> None:
    code, stdout, err = run(capsys, 'dkim', 'generate', str(spec), '--format', 'json')
    assert code == 0
    assert err == ''
    report = json.loads(stdout)
    assert report['client'] == 'testco'
    assert report['keys_dir'] == str(keys.resolve())
    assert [(key['state'], key['fqdn'], key['algorithm']) for key in report['keys']] == [
        ('new', 's2026q4._domainkey.testco.example', 'rsa'),
        ('new', 's2026q4._domainkey.news.testco.example', 'rsa'),
        ('new', 's2026q4e._domainkey.news.testco.example', 'ed25519'),
    ]
    for key in report['keys']:
        public = (keys / key['key_ref']).with_name(f'{key["selector"]}.{key["algorithm"]}.pub.txt').read_text()
        assert key['fingerprint'] == record_fingerprint(public.strip())
        assert key['bits'] == (2048 if key['algorithm'] == 'rsa' else 256)
    assert 'PRIVATE' not in stdout
    again = json.loads(run(capsys, 'dkim', 'generate', str(spec), '--format', 'json')[1])
    assert [key['state'] for key in again['keys']] == ['kept'] * 3
    assert [key['fingerprint'] for key in again['keys']] == [key['fingerprint'] for key in report['keys']]


def test_dkim_rotate_json(capsys: pytest.CaptureFixture[str], generated: Path) -> None:
    code, stdout, _ = run(capsys, 'dkim', 'rotate', str(generated), '--format', 'json')
    assert code == 0
    report = json.loads(stdout)
    assert report['step'] is None and report['ok'] is True
    [domain, *_] = report['domains']
    assert domain['domain'] == 'testco.example'
    assert [(s['selector'], s['algorithm'], s['state']) for s in domain['selectors']] == [
        ('s2026q4', 'rsa', 'generated')
    ]
    assert domain['next']['action'] == 'publish' and domain['next']['selectors'] == ['s2026q4']
    code, stdout, _ = run(capsys, 'dkim', 'rotate', str(generated), '--step', 'publish', '--format', 'json')
    assert code == 0
    report = json.loads(stdout)
    assert report['step'] == 'publish' and report['ok'] is True
    assert report['domains'][0] == {'domain': 'testco.example', 'changed': ['s2026q4'], 'problems': []}
    status = json.loads(run(capsys, 'dkim', 'rotate', str(generated), '--format', 'json')[1])
    assert status['domains'][0]['selectors'][0]['state'] == 'published'


# plan ------------------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def terraform() -> str:
    try:
        return find_terraform(minimum=MINIMUM).path
    except TerraformError as error:
        pytest.fail(f'these tests run real Terraform >= 1.5 (on PATH or $MAILINFRA_TERRAFORM): {error}')


def test_plan_without_output_promises_no_plan_file(
    capsys: pytest.CaptureFixture[str], generated: Path, terraform: str
) -> None:
    code, out, err = run(capsys, 'plan', str(generated), '--terraform', terraform, '--as-of', AS_OF)
    assert code == 0, err
    assert 'Changes to Outputs:' in out
    assert 'plan.tfplan' not in out and 'Saved the plan' not in out and 'Plan saved' not in out
    assert 'No plan file was kept' in out
    assert 'a temporary directory (deleted at exit; -o DIR keeps it)' in out


def test_plan_with_output_keeps_the_plan_file(
    capsys: pytest.CaptureFixture[str], generated: Path, terraform: str, tmp_path: Path
) -> None:
    out_dir = tmp_path / 'out'
    code, out, err = run(capsys, 'plan', str(generated), '-o', str(out_dir), '--terraform', terraform)
    assert code == 0, err
    plan_file = out_dir / 'terraform' / 'plan.tfplan'
    assert plan_file.is_file()
    assert f'Plan saved to {plan_file}' in out


def test_plan_json(capsys: pytest.CaptureFixture[str], generated: Path, terraform: str, tmp_path: Path) -> None:
    code, stdout, err = run(capsys, 'plan', str(generated), '--terraform', terraform, '--format', 'json')
    assert code == 0, err
    report = json.loads(stdout)
    assert list(report) == ['spec', 'output', 'terraform', 'changes', 'plan_file', 'stdout']
    assert report['output'] is None and report['plan_file'] is None
    assert report['changes'] is True
    assert report['terraform']['path'] == terraform
    assert tuple(map(int, report['terraform']['version'].split('.'))) >= MINIMUM
    assert 'Changes to Outputs:' in report['stdout']
    out_dir = tmp_path / 'kept'
    code, stdout, _ = run(
        capsys, 'plan', str(generated), '-o', str(out_dir), '--terraform', terraform, '--format', 'json'
    )
    report = json.loads(stdout)
    assert report['output'] == str(out_dir)
    assert report['plan_file'] == str(out_dir / 'terraform' / 'plan.tfplan')
    assert Path(report['plan_file']).is_file()


# progress --------------------------------------------------------------------------------------


def _stderr_on(tty: bool, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (or a pipe); return (exit code, stdout, stderr)."""
    command = [sys.executable, '-m', 'mailinfra_iac.cli.main', *args]
    if not tty:
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
        return result.returncode, result.stdout, result.stderr
    primary, secondary = pty.openpty()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=secondary, cwd=ROOT, env=env, text=True) as child:
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.stdout is not None
        stdout = child.stdout.read()
        code = child.wait()
    os.close(primary)
    return code, stdout, b''.join(chunks).decode()


@pytest.mark.parametrize('command', ['generate', 'render'])
def test_progress_on_a_terminal_only(spec: Path, tmp_path: Path, keys: Path, command: str) -> None:
    env = {**os.environ, 'MAILINFRA_KEYS_DIR': str(keys)}
    if command == 'generate':
        args, expected = ['dkim', 'generate', str(spec)], 'DKIM keys: 3/3 (100%)'
    else:
        assert main(['dkim', 'generate', str(spec)]) == 0
        args, expected = ['render', str(spec), '-o', str(tmp_path / 'out')], 'writing files: '
    code, out, err = _stderr_on(True, *args, env=env)
    assert code == 0, err
    assert expected in err
    assert err.endswith('\r')  # the line is erased at the end
    assert expected not in out
    # a pipe gets no progress, and neither does JSON on a terminal
    code, out, err = _stderr_on(False, *args, env=env)
    assert (code, err) == (0, '')
    code, out, err = _stderr_on(True, *args, '--format', 'json', env=env)
    assert (code, err) == (0, '')
    json.loads(out)
