"""The ``mailinfra`` command: exit codes, output formats, and no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mailinfra_iac.cli.main import main

from ..conftest import BASE, ROOT, edit, position


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every CLI test gets its own key store outside the repository."""
    store = tmp_path / 'keys'
    monkeypatch.setenv('MAILINFRA_KEYS_DIR', str(store))
    return store


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / 'spec.yml'
    path.write_text(BASE)
    return path


def test_validate_ok(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    code, out, _ = run(capsys, 'validate', str(spec), '--as-of', '2026-11-28')
    assert code == 0
    assert out.startswith(f'{spec} is valid\n')
    assert 'via: mta-choice' in out


def test_validate_reports_every_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / 'bad.yml'
    bad.write_text(edit('mta: auto', 'mta: exim', edit('ptr: tx1.testco.example', 'ptr: tx1.other.example')))
    code, out, err = run(capsys, 'validate', str(bad))
    assert code == 1
    assert out == ''
    assert err.splitlines()[0] == f'Invalid spec {bad}: 1 error(s)'
    assert 'via: schema-literal-error' in err
    # cross-object checks need a schema-valid model; fix the schema error and the next layer shows
    bad.write_text(edit('ptr: tx1.testco.example', 'ptr: tx1.other.example'))
    code, _, err = run(capsys, 'validate', str(bad))
    assert code == 1
    assert 'via: ptr-outside-zones' in err


def test_validate_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / 'bad.yml'
    text = edit('depth_warning: 100,', 'depth_warning: 5000,')
    bad.write_text(text)
    line, column = position(text, '5000')
    code, out, _ = run(capsys, 'validate', str(bad), '--format', 'json')
    assert code == 1
    report = json.loads(out)
    assert report['valid'] is False
    [problem] = [p for p in report['problems'] if p['severity'] == 'error']
    assert problem == {
        'check': 'queue-thresholds',
        'severity': 'error',
        'file': str(bad),
        'line': line,
        'column': column,
        'path': 'monitoring.queue.depth_warning',
        'message': 'depth_warning 5000 is above depth_critical 1000',
        'expected': 'depth_warning <= depth_critical',
        'value': 5000,
        'details': {},
    }


def test_yaml_error_in_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / 'bad.yml'
    bad.write_text('version: [1\n')
    code, out, _ = run(capsys, 'validate', str(bad), '--format', 'json')
    assert code == 1
    assert json.loads(out)['problems'][0]['check'] == 'yaml-syntax'


def test_render_needs_dkim_keys(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, 'render', str(spec), '-o', str(tmp_path / 'out'))
    assert code == 1
    assert err.startswith('error: no DKIM key for s2026q4._domainkey.news.testco.example (rsa)')
    assert 'mailinfra dkim generate' in err
    assert not (tmp_path / 'out').exists()


def test_dkim_generate_then_render(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path, keys: Path) -> None:
    code, out, _ = run(capsys, 'dkim', 'generate', str(spec))
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[:3]] == [
        ['new', 's2026q4._domainkey.testco.example'],
        ['new', 's2026q4._domainkey.news.testco.example'],
        ['new', 's2026q4e._domainkey.news.testco.example'],
    ]
    assert 'PRIVATE' not in out
    key_files = sorted(keys.rglob('*.key'))
    assert len(key_files) == 3
    assert all(oct(path.stat().st_mode & 0o777) == '0o600' for path in key_files)
    assert run(capsys, 'dkim', 'generate', str(spec))[1].startswith('kept ')  # idempotent
    out_dir = tmp_path / 'out'
    assert run(capsys, 'render', str(spec), '-o', str(out_dir))[0] == 0
    zone = (out_dir / 'dns' / 'zones' / 'testco.example.zone').read_text()
    public = (key_files[0].with_name(key_files[0].name.replace('.key', '.pub.txt'))).read_text().strip()
    assert public.split('p=')[1][:60] in zone
    for path in out_dir.rglob('*'):
        if path.is_file():
            assert b'PRIVATE KEY' not in path.read_bytes()
    code, out, _ = run(capsys, 'records', str(spec), '--format', 'json')
    assert code == 0
    purposes = {record['purpose'] for record in json.loads(out)['records']}
    assert purposes == {'a', 'nameserver', 'spf', 'dkim', 'dmarc', 'mx', 'mta-sts', 'tls-rpt'}
    code, out, _ = run(capsys, 'records', str(spec), '--format', 'zone')
    assert out.startswith('; Generated by mailinfra-iac')
    code, out, _ = run(capsys, 'dkim', 'rotate', str(spec))
    assert code == 0
    assert 'next: publish s2026q4' in out
    code, _, err = run(capsys, 'dkim', 'rotate', str(spec), '--step', 'verify', '--nameserver', 'ns1.example')
    assert code == 1
    assert 'invalid name server "ns1.example"' in err and 'bug' not in err


def test_render_and_explain(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / 'out'
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    code, out, _ = run(capsys, 'render', str(spec), '-o', str(out_dir))
    assert code == 0
    assert out.rstrip().endswith(f'Rendered spec.yml to {out_dir}')
    assert (out_dir / 'inventory' / 'hosts.yml').exists()
    code, out, _ = run(capsys, 'explain', str(spec))
    assert code == 0
    assert 'Stream marketing (marketing): newsletter' in out
    assert '192.0.2.20      bulk1.testco.example on mta1' in out


def test_render_invalid_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / 'bad.yml'
    bad.write_text(edit('mta: auto', 'mta: exim'))
    code, _, err = run(capsys, 'render', str(bad), '-o', str(tmp_path / 'out'))
    assert code == 1
    assert 'schema-literal-error' in err
    assert not (tmp_path / 'out').exists()


def test_render_refuses_foreign_directory(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    assert run(capsys, 'dkim', 'generate', str(spec))[0] == 0
    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('x')
    code, _, err = run(capsys, 'render', str(spec), '-o', str(tmp_path / 'mine'))
    assert code == 1
    assert err.startswith('error: ') and 'was not written by mailinfra render' in err


def test_bad_terraform_output(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    outputs = tmp_path / 'tf.json'
    outputs.write_text('{"ip_addresses": {"value": [1, 2]}}')
    code, _, err = run(capsys, 'render', str(spec), '-o', str(tmp_path / 'o'), '--terraform-output', str(outputs))
    assert code == 1
    assert err.startswith(f'error: cannot read Terraform outputs from {outputs}')


def test_init_writes_a_valid_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / 'new.yml'
    assert run(capsys, 'init', str(target))[0] == 0
    assert target.read_text().startswith('# mailinfra-iac deployment spec.')
    code, out, _ = run(capsys, 'validate', '--strict', str(target))
    assert code == 0, out  # no warning either: a starter that fails `validate --strict` teaches to ignore them
    assert run(capsys, 'init', str(target))[0] == 1  # never overwrites silently


def test_init_where_it_cannot_write_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / 'spec.yml').write_text('')
    assert run(capsys, 'init', str(tmp_path), '--force') == (
        1,
        '',
        f'error: {tmp_path} is a directory; give the path of the spec file to write\n',
    )
    assert run(capsys, 'init', str(tmp_path / 'spec.yml' / 'new.yml')) == (
        1,
        '',
        f'error: cannot write {tmp_path}/spec.yml/new.yml: {tmp_path}/spec.yml: File exists\n',
    )
    assert [path.name for path in tmp_path.iterdir()] == ['spec.yml']  # no temporary file left


def test_bad_date_is_a_usage_error(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(['validate', str(spec), '--as-of', 'yesterday'])
    assert raised.value.code == 2
    assert 'invalid date "yesterday"' in capsys.readouterr().err


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / 'bad.yml'
    bad.write_text('')
    result = subprocess.run(
        [sys.executable, '-m', 'mailinfra_iac.cli.main', 'validate', str(bad)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert 'spec-empty' in result.stderr


def test_render_keeps_local_terraform_state(capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path) -> None:
    out = tmp_path / 'out'
    assert run(capsys, 'render', str(spec), '-o', str(out), '--only', 'inventory')[0] == 0
    state = out / 'terraform' / 'terraform.tfstate'
    state.parent.mkdir()
    state.write_text('{"version": 4, "resources": []}')  # an apply in the rendered root, as plan's hint says
    for force in ([], ['--force']):
        code, _, err = run(capsys, 'render', str(spec), '-o', str(out), '--only', 'inventory', *force)
        assert code == 1
        assert err.startswith(f'error: {state} holds Terraform state, which rendering into {out} would delete')
    assert state.read_text() == '{"version": 4, "resources": []}'
    state.rename(tmp_path / 'terraform.tfstate')
    assert run(capsys, 'render', str(spec), '-o', str(out), '--only', 'inventory')[0] == 0
    # Another workspace's state, and the backup an apply leaves, are state too.
    for kept in (
        out / 'terraform' / 'terraform.tfstate.d' / 'prod' / 'terraform.tfstate',
        out / 'terraform' / 'terraform.tfstate.backup',
    ):
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text('{}')
        code, _, err = run(capsys, 'render', str(spec), '-o', str(out), '--only', 'inventory')
        assert code == 1 and 'terraform init -migrate-state' in err, err
        assert kept.exists()
        shutil.rmtree(out / 'terraform' / 'terraform.tfstate.d', ignore_errors=True)
        kept.unlink(missing_ok=True)


def test_an_output_or_key_store_it_cannot_use_is_an_error(
    capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path
) -> None:
    """Not "internal error ... This is a bug" (exit 70): the file system's answer, with the path (exit 1)."""
    blocker = tmp_path / 'file'
    blocker.write_text('')
    code, _, err = run(capsys, 'render', str(spec), '-o', str(blocker / 'out'), '--only', 'inventory')
    assert (code, err) == (1, f'error: {blocker}: File exists\n')
    code, _, err = run(capsys, 'dkim', 'generate', str(spec), '--keys', str(blocker))
    assert (code, err) == (1, f'error: {blocker}/testco: Not a directory\n')
