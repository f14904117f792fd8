"""Several hosts' SQLite stores read as one (``--store A --store B``): the same figures as one store holding all."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailinfra_agent.contract import Store
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.store import StoreError, connect, migrate
from mailinfra_agent.store.events import insert_events
from mailinfra_agent.store.schema import BOOKKEEPING
from mailinfra_iac.cli.main import main
from mailinfra_iac.feedback_report import as_json, build_report
from mailinfra_iac.feedback_report.stores import open_sqlite_stores

from ..cli.test_warmup_cmd import spec_file
from .conftest import DAY2, ev, hand_built


def make_store(path: Path, events: list[Event]) -> Path:
    with connect(Store('sqlite', path=str(path))) as db:
        migrate(db)
        insert_events(db, events)
    return path


def host_b_events() -> list[Event]:
    """A second host: other IP, same stream and ISP as host A's group, and a complaint."""
    b = {'stream': 'marketing', 'sending_ip': '192.0.2.11', 'isp': 'gmail', 'segment': 'news'}
    events = [ev('delivery', 'sent', DAY2 + 60 + i, **b) for i in range(5)]
    events += [ev('delivery', 'bounced', DAY2 + 90, category='bad-mailbox', diagnostic='550 5.1.1 <x@y.org>: no', **b)]
    events += [ev('complaint', 'complained', DAY2 + 120, **b)]
    # The same group as host A's first group, so that counts of one group come from both stores.
    events += [
        ev('delivery', 'sent', datetime(2026, 11, 2, 1, tzinfo=UTC).timestamp(), **{**b, 'sending_ip': '192.0.2.10'})
    ]
    return events


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Host A's store, host B's store, and one store holding both hosts' events."""
    a, b = hand_built(), host_b_events()
    return (
        make_store(tmp_path / 'a.db', a),
        make_store(tmp_path / 'b.db', b),
        make_store(tmp_path / 'all.db', a + b),
    )


def report_json(*paths: Path) -> str:
    if len(paths) == 1:
        with connect(Store('sqlite', path=str(paths[0]))) as db:
            return as_json(build_report(db))
    with open_sqlite_stores(list(paths)) as db:
        return as_json(build_report(db))


def test_two_stores_report_as_one_store_holding_both(stores: tuple[Path, Path, Path]) -> None:
    a, b, both = stores
    merged = report_json(a, b)
    assert merged == report_json(both)
    assert merged != report_json(a)
    total, alone = json.loads(merged)['total'], json.loads(report_json(a))['total']
    assert (total['sent'], total['complaints']) == (alone['sent'] + 6, alone['complaints'] + 1)


def test_cli_over_two_stores_equals_one(capsys: pytest.CaptureFixture[str], stores: tuple[Path, Path, Path]) -> None:
    a, b, both = stores
    assert main(['feedback', 'report', '--store', f'sqlite:{a}', '--store', f'sqlite:{b}', '--format', 'csv']) == 0
    merged = capsys.readouterr().out
    assert main(['feedback', 'report', '--store', f'sqlite:{both}', '--format', 'csv']) == 0
    assert merged == capsys.readouterr().out
    assert '192.0.2.11' in merged


def test_events_of_different_hosts_with_one_key_are_both_counted(tmp_path: Path) -> None:
    """Rows are concatenated, not merged by key: two hosts' events never replace each other."""
    one = hand_built()[0]
    a = make_store(tmp_path / 'a.db', [one])
    b = make_store(tmp_path / 'b.db', [one])
    with open_sqlite_stores([a, b]) as db:
        assert build_report(db).total.sent == 2


def test_the_stores_are_only_read(stores: tuple[Path, Path, Path]) -> None:
    a, b, _ = stores
    with connect(Store('sqlite', path=str(a))) as db:
        db.execute('PRAGMA journal_mode = DELETE')
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (a, b)}
    with open_sqlite_stores([a, b]) as db:
        build_report(db)
        with pytest.raises(StoreError, match='readonly'):
            db.execute("DELETE FROM store0.feedback_events WHERE kind = 'delivery'")
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in (a, b)} == before
    assert not (a.parent / 'a.db-wal').exists()  # not switched to WAL by the report


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    try:
        code = main(['feedback', 'report', *args])
    except SystemExit as leave:
        code = int(leave.code or 0)
    captured = capsys.readouterr()
    assert 'Traceback' not in captured.err
    return code, captured.err


def test_the_same_store_twice_is_refused(capsys: pytest.CaptureFixture[str], stores: tuple[Path, Path, Path]) -> None:
    a, _, _ = stores
    code, err = run(capsys, '--store', f'sqlite:{a}', '--store', f'sqlite:{a.parent / "." / a.name}')
    assert code == 1
    assert 'are the same store: each host counts once' in err


def test_a_missing_or_foreign_store_among_several(
    capsys: pytest.CaptureFixture[str], stores: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    a, _, _ = stores
    missing = tmp_path / 'none.db'
    code, err = run(capsys, '--store', f'sqlite:{a}', '--store', f'sqlite:{missing}')
    assert code == 2 and err.endswith(f'mailinfra feedback report: error: no such store: {missing}\n')
    assert not missing.exists()
    foreign = tmp_path / 'other.db'
    sqlite3.connect(foreign).execute('CREATE TABLE t (x)').connection.close()
    code, err = run(capsys, '--store', f'sqlite:{a}', '--store', f'sqlite:{foreign}')
    assert code == 2 and f'{foreign} is not a mailinfra store: it has no schema_migrations table' in err
    unmigrated = tmp_path / 'unmigrated.db'
    sqlite3.connect(unmigrated).execute(BOOKKEEPING).connection.close()
    code, err = run(capsys, '--store', f'sqlite:{a}', '--store', f'sqlite:{unmigrated}')
    assert code == 1 and f'{unmigrated} has no feedback_events table' in err
    garbage = tmp_path / 'garbage.db'
    garbage.write_bytes(b'not a database' * 100)
    code, err = run(capsys, '--store', f'sqlite:{a}', '--store', f'sqlite:{garbage}')
    assert code == 2 and f'{garbage} is not a mailinfra store: file is not a database' in err


def test_more_stores_than_sqlite_attaches_is_a_clear_error(tmp_path: Path) -> None:
    limit = sqlite3.connect(':memory:').getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)
    paths = [make_store(tmp_path / f'{index}.db', []) for index in range(limit + 1)]
    with open_sqlite_stores(paths[:limit]) as db:
        assert build_report(db).groups == ()
    with pytest.raises(StoreError, match=f'{limit + 1} stores: SQLite reads at most {limit} at once'):
        open_sqlite_stores(paths)


def test_warmup_plan_over_two_stores_equals_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A held day shows only when both stores' events of it are read (97 sent on one, 3 hard bounces on the other)."""
    noon = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()
    sent = [ev('delivery', 'sent', noon, sending_ip='192.0.2.20') for _ in range(97)]
    bounced = [ev('delivery', 'bounced', noon, sending_ip='192.0.2.20', category='bad-mailbox') for _ in range(3)]
    a = make_store(tmp_path / 'a.db', sent)
    b = make_store(tmp_path / 'b.db', bounced)
    both = make_store(tmp_path / 'both.db', sent + bounced)
    spec = spec_file(tmp_path)

    def plan(*stores: Path) -> str:
        options = [part for store in stores for part in ('--store', f'sqlite:{store}')]
        assert main(['warmup', 'plan', spec, *options, '--as-of', '2026-11-05', '--format', 'json']) == 0
        return capsys.readouterr().out

    merged = plan(a, b)
    assert merged == plan(both)
    assert merged != plan(a)
    held = [day for day in json.loads(merged)['days'] if day['held']]
    assert [day['date'] for day in held] == ['2026-11-02']
