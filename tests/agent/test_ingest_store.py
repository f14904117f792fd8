"""The ingest writer's grouping (batches of re-readable sources wait for a group, then go in one transaction), and
the garbage collector while ingest runs.

A real SQLite store; a second connection shows what is committed.
"""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any, cast

import pytest

from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.ingest import service
from mailinfra_agent.ingest import store as ingest_store
from mailinfra_agent.ingest.service import classifier
from mailinfra_agent.ingest.store import GROUP_BATCHES, Backoff, Batch, StoreUnavailable, Writer
from mailinfra_agent.store import connect, connect_sqlite
from mailinfra_agent.store.events import Checkpoint, Problem, save_checkpoint
from tests.agent.ingest_logs import contract_data


def _writer(path: Path, backoff: Backoff | None = None) -> Writer:
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(path)}, {}))
    return Writer(lambda: connect(contract.store), 'mx1', classifier(contract), backoff or Backoff(0.5, 2.0))


def _batch(number: int) -> Batch:
    """One event, one problem and the checkpoint after line ``number`` of one log."""
    event = Event(f'k{number:03}', 'delivery', 'bounced', float(number), 'a@gmail.com', 'log', diagnostic='550 5.1.1 x')
    point = Checkpoint(1, 2, 'first', number * 10, number)
    return Batch(
        events=[event],
        problems=[Problem('postfix-log', 'garbage', f'log:{number}')],
        done=lambda db, now: save_checkpoint(db, 'mx1', 'log', point, now),
    )


def _committed(path: Path) -> tuple[list[str], int, int]:
    """What another connection sees: the event keys, the problem count and the checkpoint's line."""
    if not path.exists():
        return [], 0, 0
    with connect_sqlite(path) as db:
        keys = [str(row[0]) for row in db.execute('SELECT key FROM feedback_events ORDER BY rowid')]
        problems = db.execute('SELECT SUM(count) FROM ingest_problems')[0][0] or 0
        line = db.execute('SELECT MAX(line) FROM ingest_checkpoints')[0][0] or 0
    return keys, int(problems), int(line)


def test_batches_of_re_readable_sources_wait_for_a_group_or_a_flush(tmp_path: Path) -> None:
    store = tmp_path / 'agent.db'
    writer = _writer(store)
    writer.relax()
    for number in range(1, GROUP_BATCHES):
        writer.write(_batch(number))
    assert _committed(store)[0] == []  # waiting: nothing committed yet
    writer.write(_batch(GROUP_BATCHES))  # the group is full: one transaction, in the order the batches came
    keys = [f'k{number:03}' for number in range(1, GROUP_BATCHES + 1)]
    assert _committed(store) == (keys, GROUP_BATCHES, GROUP_BATCHES)
    writer.write(_batch(GROUP_BATCHES + 1))
    assert _committed(store)[0] == keys
    writer.flush()
    assert _committed(store) == ([*keys, f'k{GROUP_BATCHES + 1:03}'], GROUP_BATCHES + 1, GROUP_BATCHES + 1)
    assert (writer.stored_events, writer.stored_problems) == (GROUP_BATCHES + 1, GROUP_BATCHES + 1)
    writer.close()


def test_a_group_waits_at_most_group_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(ingest_store.time, 'monotonic', lambda: clock[0])
    store = tmp_path / 'agent.db'
    writer = _writer(store)
    writer.relax()
    writer.write(_batch(1))
    clock[0] += ingest_store.GROUP_SECONDS / 2
    writer.write(_batch(2))
    assert _committed(store)[0] == []
    clock[0] += ingest_store.GROUP_SECONDS / 2
    writer.write(_batch(3))
    assert _committed(store)[0] == ['k001', 'k002', 'k003']
    writer.close()


def test_other_sources_commit_every_batch_at_once(tmp_path: Path) -> None:
    """Without relax() (the pipe: Postfix forgets a message it delivered) each write is committed before it returns."""
    store = tmp_path / 'agent.db'
    writer = _writer(store)
    writer.write(_batch(1))
    assert _committed(store) == (['k001'], 1, 1)
    writer.close()


def test_a_failed_group_drops_the_last_batch_and_keeps_the_earlier_ones(tmp_path: Path) -> None:
    """The store is away when the group is full: the batch that filled it is not kept (its source reads it again),
    the earlier ones (their sources moved on) wait and are stored by the next flush, once each."""
    directory = tmp_path / 'later'
    store = directory / 'agent.db'
    writer = _writer(store, Backoff(0.5, 2.0, wait=0.0))
    writer.relax()
    for number in range(1, GROUP_BATCHES):
        writer.write(_batch(number))
    with pytest.raises(StoreUnavailable):
        writer.write(_batch(GROUP_BATCHES))
    assert writer.stored_events == 0
    directory.mkdir()
    writer.write(_batch(GROUP_BATCHES))  # read again by its source
    writer.flush()
    keys = [f'k{number:03}' for number in range(1, GROUP_BATCHES + 1)]
    assert _committed(store) == (keys, GROUP_BATCHES, GROUP_BATCHES)
    assert writer.stored_events == GROUP_BATCHES
    writer.close()


def test_closing_drops_what_waits_and_the_checkpoint_stays_behind(tmp_path: Path) -> None:
    store = tmp_path / 'agent.db'
    writer = _writer(store)
    writer.relax()
    writer.write(_batch(1))
    writer.flush()
    writer.write(_batch(2))
    writer.close()
    assert _committed(store) == (['k001'], 1, 1)  # batch 2 is read again from line 1's checkpoint


# --- the cyclic garbage collector while ingest runs ------------------------------------------------------------


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class _Source:
    """A source with ``rounds`` batches: each step notes whether the collector runs and leaves a reference cycle."""

    def __init__(self, rounds: int, fail: bool = False) -> None:
        self.rounds = rounds
        self.fail = fail
        self.enabled: list[bool] = []
        self.cycles: list[weakref.ref[_Cycle]] = []

    def step(self, writer: Writer) -> bool:
        self.enabled.append(gc.isenabled())
        if len(self.enabled) > self.rounds:
            return False
        if self.fail:
            raise StoreUnavailable('the store is away')
        self.cycles.append(weakref.ref(_Cycle()))
        writer.write(_batch(len(self.enabled)))
        return True


def test_the_collector_pauses_while_ingest_runs_and_still_collects_cycles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, 'GC_GROWTH', 0)  # collect after every round
    writer = _writer(tmp_path / 'agent.db')
    source = _Source(3)
    assert gc.isenabled()
    service.run(writer, [cast(Any, source)], follow=False)
    assert gc.isenabled()
    assert source.enabled == [False] * 4
    assert [cycle() for cycle in source.cycles] == [None] * 3  # collected although the collector was paused
    assert writer.stored_events == 3
    writer.close()


def test_a_failing_run_enables_the_collector_again(tmp_path: Path) -> None:
    writer = _writer(tmp_path / 'agent.db')
    with pytest.raises(StoreUnavailable):
        service.run(writer, [cast(Any, _Source(1, fail=True))], follow=False)
    assert gc.isenabled()
    writer.close()


# --- found by review: what a failing source, a Maildir and an anonymised complaint do to waiting batches --------------

_JMRP = Path(__file__).resolve().parents[1] / 'data' / 'feedback' / 'messages' / 'synthetic-jmrp-anonymised.eml'


def _run_once(root: Path, logs: tuple[Path, ...], maildir: Path | None, batch_lines: int = 20) -> str | None:
    """One ``ingest run --once`` as a service manager would start it: the error it ended with, if any."""
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(root / 'agent.db')}, {}))
    writer = service.make_writer(contract, Backoff())
    inputs = service.Inputs(tuple((str(log), 'postfix') for log in logs), (str(maildir),) if maildir else ())
    sources = service.build_sources(contract, inputs, batch_lines, ())
    try:
        service.run(writer, sources, follow=False)
    except OSError as error:
        return type(error).__name__
    finally:
        writer.close()
    return None


def _maildir(root: Path, *names: str) -> Path:
    maildir = root / 'md'
    for sub in ('new', 'cur', 'tmp'):
        (maildir / sub).mkdir(parents=True)
    for name in names:
        (maildir / 'new' / name).write_bytes(_JMRP.read_bytes())
    return maildir


def test_a_source_that_fails_at_every_start_does_not_stop_the_others(tmp_path: Path) -> None:
    good = tmp_path / 'a.log'
    good.write_text(''.join(f'Dec  6 05:10:{n:02d} mx1 postfix/qmgr[1]: ABC{n:04d}: removed\n' for n in range(50)))
    broken = tmp_path / 'b.log'
    broken.mkdir()  # unreadable every time (a directory; a PermissionError is the same)
    lines = []
    for _ in range(3):
        assert _run_once(tmp_path, (good, broken), None) == 'IsADirectoryError'
        with connect_sqlite(tmp_path / 'agent.db') as db:
            lines.append(db.execute('SELECT line FROM ingest_checkpoints')[0][0])
    assert lines == [20, 40, 50]  # each start keeps what the good log gave before the broken one failed


def test_a_maildir_message_is_moved_to_cur_only_once_its_row_is_committed(tmp_path: Path) -> None:
    maildir = _maildir(tmp_path, '1765000001.M1P1.mx1')
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {}))
    writer = service.make_writer(contract, Backoff())
    writer.relax()
    (source,) = service.build_sources(contract, service.Inputs((), (str(maildir),)), 20, ())
    assert source.step(writer)
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert db.execute('SELECT COUNT(*) FROM ingest_maildir')[0][0] == 1
    assert [path.name for path in (maildir / 'cur').iterdir()] == ['1765000001.M1P1.mx1:2,S']
    writer.close()


def test_an_anonymised_complaint_waiting_for_its_group_keeps_no_frame_alive(tmp_path: Path) -> None:
    """An unresolved complaint is kept as an exception: its traceback would hold the message and its batch in a cycle
    that only the collector frees, and ``ingest run`` pauses the collector."""
    maildir = _maildir(tmp_path, '1765000001.M1P1.mx1')
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {}))
    writer = service.make_writer(contract, Backoff())
    writer.relax()
    (source,) = service.build_sources(contract, service.Inputs((), (str(maildir),)), 20, ())
    enabled = gc.isenabled()
    gc.disable()
    try:
        source.step(writer)
        with connect_sqlite(tmp_path / 'agent.db') as db:  # stored as a problem (no key to resolve it with)
            assert db.execute('SELECT reason, count FROM ingest_problems')[:] == [('no-recipient', 1)]
        assert writer.stored_problems == 1  # and counted (the run's summary line)
        frames = [o for o in gc.get_objects() if type(o).__name__ == 'frame' and o.f_code.co_name == '_store']
        assert frames == []
    finally:
        if enabled:
            gc.enable()
        writer.close()


def test_a_message_the_parser_fails_on_is_counted_and_the_others_are_stored(tmp_path: Path) -> None:
    """A parser defect (any exception but EventError) on one Maildir message must not stop the ingest at every
    start: the message is counted as ``parser-error``, moved to cur/ (kept), and the next one is stored."""
    maildir = _maildir(tmp_path, '1765000001.M1P1.mx1', '1765000002.M2P1.mx1')
    contract = load_contract(contract_data({'backend': 'sqlite', 'path': str(tmp_path / 'agent.db')}, {}))
    writer = service.make_writer(contract, Backoff())
    (source,) = service.build_sources(contract, service.Inputs((), (str(maildir),)), 20, ())
    parse = source.parse  # type: ignore[union-attr]

    def failing(data: bytes, location: str, received: float) -> list[Event]:
        if location.endswith('M1P1.mx1'):
            raise UnicodeError('a defect')
        return parse(data, location, received)

    source.parse = failing  # type: ignore[union-attr]
    assert source.step(writer)
    with connect_sqlite(tmp_path / 'agent.db') as db:
        reasons = dict(db.execute('SELECT reason, count FROM ingest_problems')[:])
        assert db.execute('SELECT COUNT(*) FROM ingest_maildir')[0][0] == 2
    assert reasons['parser-error'] == 1 and sum(reasons.values()) == 2  # the other one read as before
    assert sorted(path.name for path in (maildir / 'cur').iterdir()) == [
        '1765000001.M1P1.mx1:2,S',
        '1765000002.M2P1.mx1:2,S',
    ]
    writer.close()
