"""``mailinfra feedback report``: formats, output file, and clear errors (exit 1 or 2) for bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.store import connect, connect_sqlite, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_agent.store.schema import BOOKKEEPING
from mailinfra_iac.cli.main import main
from tests.agent.conftest import NOT_STORES, not_a_store

from .conftest import DAY1, Postgres, ev, hand_built


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / 'feedback.db'
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        insert_events(db, hand_built())
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(['feedback', 'report', *args])
    except SystemExit as leave:  # argparse's usage errors
        code = int(leave.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_to_stdout(capsys: pytest.CaptureFixture[str], store_file: Path) -> None:
    code, out, err = run(capsys, '--store', f'sqlite:{store_file}')
    assert (code, err) == (0, '')
    assert out.startswith('Feedback report 2026-11-01 .. 2026-11-04')


def test_json_with_period(capsys: pytest.CaptureFixture[str], store_file: Path) -> None:
    code, out, _ = run(
        capsys, '--store', f'sqlite:{store_file}', '--from', '2026-11-02', '--to', '2026-11-02', '--format', 'json'
    )
    assert code == 0
    data = json.loads(out)
    assert data['period'] == {'first_day': '2026-11-02', 'last_day': '2026-11-02'}
    assert {group['day'] for group in data['groups']} == {'2026-11-02'}
    assert data['total']['sent'] == 6


def test_output_file_is_written_whole(capsys: pytest.CaptureFixture[str], store_file: Path, tmp_path: Path) -> None:
    target = tmp_path / 'report.html'
    target.write_text('old', encoding='utf-8')
    code, out, err = run(capsys, '--store', f'sqlite:{store_file}', '--format', 'html', '--output', str(target))
    assert (code, out, err) == (0, '', '')
    assert target.read_text(encoding='utf-8').startswith('<!DOCTYPE html>')
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.report.html')] == []
    first = target.read_bytes()
    assert run(capsys, '--store', f'sqlite:{store_file}', '--format', 'html', '--output', str(target))[0] == 0
    assert target.read_bytes() == first


def test_csv(capsys: pytest.CaptureFixture[str], store_file: Path) -> None:
    code, out, _ = run(capsys, '--store', f'sqlite:{store_file}', '--format', 'csv')
    assert code == 0
    assert out.splitlines()[0].startswith('day,stream,sending_ip,isp,segment,sent,')


def test_missing_store_is_an_error_and_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / 'nope.db'
    code, out, err = run(capsys, '--store', f'sqlite:{missing}')
    assert (code, out) == (2, '')
    assert err.endswith(f'mailinfra feedback report: error: no such store: {missing}\n')
    assert not missing.exists()


@pytest.mark.parametrize('kind', NOT_STORES)
def test_a_file_that_is_no_store_is_refused_and_left_as_it_was(
    capsys: pytest.CaptureFixture[str], store_file: Path, tmp_path: Path, kind: str
) -> None:
    """Opened read-only: never turned into a store (no page size, WAL mode or migration written)."""
    path = tmp_path / 'file'
    before = not_a_store(path, kind)
    for stores in ([path], [store_file, path]):  # one store, or several hosts' stores read as one
        code, out, err = run(capsys, *(f'--store=sqlite:{store}' for store in stores))
        assert (code, out) == (2, ''), err
        assert f'mailinfra feedback report: error: {path} is not a mailinfra store' in err
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith('file-')]  # no -wal, -shm


def test_store_without_feedback_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / 'other.db'
    with connect_sqlite(path) as db:  # a store the ingest has not migrated yet
        db.execute(BOOKKEEPING)
    code, _, err = run(capsys, '--store', f'sqlite:{path}')
    assert code == 1
    assert 'no feedback_events table' in err and 'Traceback' not in err


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (['--store', 'sqlite:x.db', '--from', '2026-13-01'], '"2026-13-01" is not a date: expected YYYY-MM-DD'),
        (['--store', 'sqlite:x.db', '--to', '20261101'], '"20261101" is not a date'),
        (['--store', 'x.db'], '"x.db": expected sqlite:PATH'),
        (
            ['--store', 'sqlite:x.db', '--from', '2026-11-04', '--to', '2026-11-03'],
            '--from 2026-11-04 is after --to 2026-11-03',
        ),
        (['--store', 'sqlite:x.db', '--password-file', 'pw'], '--password-file goes with --dsn'),
        (['--store', 'sqlite:x.db', '--dsn', 'host=127.0.0.1'], 'not allowed with argument'),
        ([], 'one of the arguments --store --dsn is required'),
        (['--store', 'sqlite:x.db', '--format', 'pdf'], "invalid choice: 'pdf'"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, '')
    assert message in err


def test_unwritable_output(capsys: pytest.CaptureFixture[str], store_file: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, '--store', f'sqlite:{store_file}', '--output', str(tmp_path / 'no' / 'dir' / 'r.txt'))
    assert code == 1
    assert err.startswith(f'error: cannot write {tmp_path / "no" / "dir" / "r.txt"}: No such file or directory')


def test_postgresql_store(capsys: pytest.CaptureFixture[str], postgres: Postgres) -> None:
    store = postgres.store('postgres')
    with connect(store) as admin:
        admin.execute('CREATE DATABASE report_cli')
    store = postgres.store('report_cli')
    with connect(store) as db:
        migrate(db)
        insert_events(db, hand_built())
    assert store.dsn is not None and store.password_file is not None
    code, out, err = run(capsys, '--dsn', store.dsn, '--password-file', store.password_file, '--format', 'json')
    assert (code, err) == (0, '')
    assert json.loads(out)['total']['sent'] == 9


def test_postgresql_unreachable_or_bad_password(
    capsys: pytest.CaptureFixture[str], postgres: Postgres, tmp_path: Path
) -> None:
    wrong = tmp_path / 'wrong-password'
    wrong.write_text('not-the-password\n', encoding='utf-8')
    os.chmod(wrong, 0o600)
    assert postgres.store('postgres').dsn is not None
    code, out, err = run(capsys, '--dsn', str(postgres.store('postgres').dsn), '--password-file', str(wrong))
    assert (code, out) == (1, '')
    assert err.startswith('error: cannot open the store: postgresql: cannot connect')
    assert 'not-the-password' not in err
    code, _, err = run(
        capsys, '--dsn', str(postgres.store('postgres').dsn), '--password-file', str(tmp_path / 'absent')
    )
    assert code == 1 and 'cannot open the store' in err and 'Traceback' not in err


def test_spec_thresholds_in_html(capsys: pytest.CaptureFixture[str], store_file: Path) -> None:
    spec = Path(__file__).resolve().parents[1] / 'fixtures' / 'base.yml'
    code, out, err = run(capsys, '--store', f'sqlite:{store_file}', '--format', 'html', '--spec', str(spec))
    assert (code, err) == (0, '')
    assert out.count('class="threshold spec"') == 8
    assert 'spec warning 2 %' in out  # the default bounce warning of monitoring.rates


def test_bad_spec_is_an_error(capsys: pytest.CaptureFixture[str], store_file: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, '--store', f'sqlite:{store_file}', '--spec', str(tmp_path / 'missing.yml'))
    assert (code, out) == (1, '')
    assert 'missing.yml' in err and 'Traceback' not in err


def test_the_table_shows_control_characters_instead_of_sending_them_to_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A remote server's DSN puts escape sequences in its Diagnostic-Code (stored as they are): printed raw they set
    the terminal's title and clear its screen. Seen with `cat -v`; CSV and JSON keep the text as it is."""
    diagnostic = '550 5.1.1 \x1b]0;owned\x07\x1b[2J unknown \u202eevil'
    bounce = ev('delivery', 'bounced', DAY1, segment='seg\x1b[8m', category='bad-mailbox', diagnostic=diagnostic)
    path = tmp_path / 'hostile.db'
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        insert_events(db, [bounce])
    code, out, _ = run(capsys, '--store', f'sqlite:{path}')
    assert code == 0
    assert not [char for char in out if char != '\n' and not char.isprintable()]
    assert 'seg[U+001B][8m' in out
    assert '[U+001B]]#;owned[U+0007][U+001B][#J unknown [U+202E]evil' in out  # digits are # in reasons
    code, out, _ = run(capsys, '--store', f'sqlite:{path}', '--format', 'json')
    assert json.loads(out)['groups'][0]['segment'] == 'seg\x1b[8m'


def test_password_in_the_dsn_is_refused_and_not_shown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, '--dsn', 'postgresql://report:Typed-S3cret@127.0.0.1:1/mail')
    assert (code, out) == (1, '')
    assert err == (
        'error: cannot open the store: postgresql: the dsn holds a password; put it in a 0600 file named by '
        "--password-file (the contract's password_file), or in libpq's ~/.pgpass (PGPASSFILE)\n"
    )
