"""``mailinfra warmup plan``: table, JSON and CSV of the warm-up calendar, and clear errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.store import connect, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_iac.cli.main import main

from ..facts.test_warmup import BOTH, MIX, with_warmup
from ..feedback_report.conftest import ev


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(['warmup', *args])
    except SystemExit as exit_:  # argparse's usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def spec_file(tmp_path: Path, text: str = MIX) -> str:
    path = tmp_path / 'spec.yml'
    path.write_text(text)
    return str(path)


def test_table_names_the_curve_the_split_and_when_each_pool_is_warm(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, 'plan', spec_file(tmp_path, with_warmup('  time_zone: Europe/Berlin\n', BOTH)))
    assert (code, err) == (0, '')
    lines = out.splitlines()
    assert lines[0].startswith('Warm-up curve: conservative, from KumoMTA warm-up helper')
    assert '  days start at midnight Europe/Berlin' in out
    assert 'Stream marketing, pool bulk: 10,000 mails a day (monthly / 30); reaches it on 2026-11-09' in lines
    assert 'Stream transactional, pool tx: 1,000 mails a day (monthly / 30); no warming IP: no cap' in lines
    assert '192.0.2.20 (stream marketing, pool bulk)' in lines
    header = lines[lines.index('192.0.2.20 (stream marketing, pool bulk)') + 1].split()
    assert header == ['day', 'date', 'step', 'cap', 'gmail', 'yahoo', 'other']
    assert '    7  2026-11-07     7    3,000   1,500     600     900' in lines


def test_json_has_points_pools_and_days(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, 'plan', spec_file(tmp_path), '--format', 'json')
    data = json.loads(out)
    assert code == 0
    assert data['curve'] == 'conservative' and data['points'][6] == {'day': 7, 'cap': 3000}
    assert data['pools'][1] == {
        'stream': 'marketing',
        'pool': 'bulk',
        'daily_volume': 10_000,
        'warming': True,
        'reaches_volume': '2026-11-01',
    }
    assert data['days'][6] == {
        'stream': 'marketing',
        'pool': 'bulk',
        'ip': '192.0.2.20',
        'day': 7,
        'date': '2026-11-07',
        'step': 7,
        'cap': 3000,
        'isps': {'gmail': 1500, 'yahoo': 600, 'other': 900},
        'held': None,
    }


def test_csv_has_one_row_per_ip_isp_and_day(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, 'plan', spec_file(tmp_path), '--format', 'csv')
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0
    assert list(rows[0]) == ['stream', 'pool', 'ip', 'isp', 'day', 'date', 'step', 'cap', 'ip_cap', 'held']
    assert len(rows) == 30 * 3  # 30 days of one IP, gmail, yahoo and other
    assert [(row['date'], row['isp'], row['cap']) for row in rows[-6:]] == [
        ('2026-11-29', 'gmail', '77479'),
        ('2026-11-29', 'yahoo', '30991'),
        ('2026-11-29', 'other', '46489'),
        ('2026-11-30', 'gmail', '87500'),
        ('2026-11-30', 'yahoo', '35000'),
        ('2026-11-30', 'other', '52500'),
    ]
    assert {row['ip_cap'] for row in rows[-6:]} == {'154959', '175000'}


def test_no_warming_ip_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, 'plan', spec_file(tmp_path, MIX.replace('        warmup_started: 2026-11-01\n', '')))
    assert code == 0
    assert 'No IP warms up (no warmup_started on any IP, or every warm-up is over).' in out


def test_a_bad_warmup_section_is_an_invalid_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, 'plan', spec_file(tmp_path, with_warmup('  time_zone: Mars/Olympus\n')))
    assert code == 1
    assert 'unknown time zone "Mars/Olympus"' in out + err
    assert 'Traceback' not in out + err


def test_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, 'plan', spec_file(tmp_path), '--format', 'xml')
    assert code == 2 and "invalid choice: 'xml'" in err


def store_with_a_bad_day(tmp_path: Path) -> str:
    """A feedback store where 192.0.2.20 had 3 % hard bounces on its second day (2026-11-02)."""
    path = tmp_path / 'feedback.db'
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        noon = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()
        events = [ev('delivery', 'sent', noon, sending_ip='192.0.2.20') for _ in range(97)]
        events += [ev('delivery', 'bounced', noon, sending_ip='192.0.2.20', category='bad-mailbox') for _ in range(3)]
        insert_events(db, events)
    return f'sqlite:{path}'


def test_with_a_store_held_days_shift_the_calendar(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = store_with_a_bad_day(tmp_path)
    args = ('plan', spec_file(tmp_path), '--store', store, '--as-of', '2026-11-05')
    code, out, err = run(capsys, *args, '--format', 'json')
    assert (code, err) == (0, '')
    days = {(day['date'], day['step'], day['cap'], day['held']) for day in json.loads(out)['days']}
    assert ('2026-11-02', 2, 100, 'hard-bounce rate 3.00% > 2.00%, held') in days
    assert ('2026-11-05', 4, 400, None) in days  # day 5, one step behind
    assert ('2026-12-01', 30, 175000, None) in days  # the warm-up ends a day later than without the store
    code, out, _ = run(capsys, *args)
    lines = out.splitlines()
    assert '  day        date  step      cap   gmail   yahoo   other  held because' in lines
    assert '    2  2026-11-02     2      100      50      20      30  hard-bounce rate 3.00% > 2.00%, held' in lines
    assert '    3  2026-11-03     2      100      50      20      30' in lines
    # --as-of before the bad day: it is not judged yet
    code, out, _ = run(capsys, 'plan', spec_file(tmp_path), '--store', store, '--as-of', '2026-11-02')
    assert '    3  2026-11-03     3      200     100      40      60' in out.splitlines()


def test_a_missing_store_or_a_lone_password_file_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, 'plan', spec_file(tmp_path), '--store', f'sqlite:{tmp_path / "none.db"}')
    assert code == 2 and f'error: no such store: {tmp_path / "none.db"}' in err
    code, _, err = run(capsys, 'plan', spec_file(tmp_path), '--password-file', str(tmp_path / 'pw'))
    assert code == 2 and '--password-file goes with --dsn' in err
