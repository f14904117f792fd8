"""Ingest: the log follower (whole lines, checkpoints, rotation), idempotence, bad input, classification, the CLI.

Real files, a real SQLite store and the Postfix log parser on lines shaped like the roles' instances write them.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback.events import Event
from mailinfra_agent.feedback.postfix_log import PostfixLogParser
from mailinfra_agent.ingest.files import MAX_LINE, LogFollower
from mailinfra_agent.ingest.service import classifier
from mailinfra_agent.ingest.sources import LogSource
from mailinfra_agent.ingest.store import Backoff, Batch, Writer
from mailinfra_agent.store import connect, connect_sqlite
from mailinfra_agent.store.events import EVENT_COLUMNS, checkpoint, events, problem_counts
from tests.agent.ingest_logs import contract_data, generate, write_contract, write_logs
from tests.agent.test_feedback_postfix_log import ISPS, REFERENCE, _corpus

# --- the follower --------------------------------------------------------------------------------------------


def _read_all(follower: LogFollower) -> list[str]:
    """Read until nothing is new, committing each batch; the lines' text."""
    seen: list[str] = []
    while (batch := follower.read(3)) is not None:
        seen.extend(line.text.decode() for line in batch.lines)
        follower.commit(batch)
    follower.close()
    return seen


def test_only_whole_lines_are_read(tmp_path: Path) -> None:
    log = tmp_path / 'x.log'
    log.write_bytes(b'one\ntwo\nthr')
    follower = LogFollower(log)
    assert _read_all(follower) == ['one', 'two']
    assert follower.checkpoint is not None and follower.checkpoint.position == 8
    with log.open('ab') as handle:
        handle.write(b'ee\nfour\n')
    assert _read_all(follower) == ['three', 'four']
    assert follower.checkpoint.line == 4


def test_a_new_follower_resumes_at_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / 'x.log'
    log.write_bytes(b'one\ntwo\n')
    first = LogFollower(log)
    assert _read_all(first) == ['one', 'two']
    with log.open('ab') as handle:
        handle.write(b'three\n')
    assert _read_all(LogFollower(log, first.checkpoint)) == ['three']
    # Without a checkpoint it starts again at the beginning.
    assert _read_all(LogFollower(log)) == ['one', 'two', 'three']


def test_rename_rotation_finishes_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / 'postfix.log'
    log.write_bytes(b'a1\na2\n')
    follower = LogFollower(log)
    assert _read_all(follower) == ['a1', 'a2']
    with log.open('ab') as writer:
        writer.write(b'a3\n')
        os.rename(log, tmp_path / 'postfix.log.20261206-061500')  # postfix logrotate
        writer.write(b'a4\n')  # the writer still has the old file open
    log.write_bytes(b'b1\n')
    assert _read_all(follower) == ['a3', 'a4', 'b1']


def test_rotation_while_stopped_finds_the_compressed_old_file(tmp_path: Path) -> None:
    log = tmp_path / 'postfix.log'
    log.write_bytes(b'a1\na2\n')
    follower = LogFollower(log)
    assert _read_all(follower) == ['a1', 'a2']
    with log.open('ab') as handle:
        handle.write(b'a3\n')
    # Rotated and compressed while ingest was down: the inode is gone, the first line identifies the file.
    with log.open('rb') as source, gzip.open(tmp_path / 'postfix.log.20261206-061500.gz', 'wb') as target:
        shutil.copyfileobj(source, target)
    log.unlink()
    (tmp_path / 'postfix.log.20261205-061500.gz').write_bytes(gzip.compress(b'older\nfile\n'))
    log.write_bytes(b'b1\nb2\n')
    assert _read_all(LogFollower(log, follower.checkpoint)) == ['a3', 'b1', 'b2']


def test_copytruncate_is_detected_and_the_copy_finished(tmp_path: Path) -> None:
    log = tmp_path / 'mail.log'
    log.write_bytes(b'a1\na2\n')
    follower = LogFollower(log)
    assert _read_all(follower) == ['a1', 'a2']
    with log.open('ab') as handle:
        handle.write(b'a3\n')
    shutil.copyfile(log, tmp_path / 'mail.log.1')  # logrotate copytruncate: copy, then empty in place
    with log.open('r+b') as handle:
        handle.truncate(0)
    log.write_bytes(b'b1\n')  # shorter than the checkpoint: a truncation
    assert _read_all(follower) == ['a3', 'b1']


def test_copytruncate_with_the_file_grown_back_past_the_checkpoint(tmp_path: Path) -> None:
    log = tmp_path / 'mail.log'
    log.write_bytes(b'a1\n')
    follower = LogFollower(log)
    assert _read_all(follower) == ['a1']
    shutil.copyfile(log, tmp_path / 'mail.log.1')
    log.write_bytes(b'b1 is longer\nb2\n')  # same inode, longer than before: the first line tells
    assert _read_all(LogFollower(log, follower.checkpoint)) == ['b1 is longer', 'b2']


def test_a_lost_rotated_file_continues_with_the_new_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = tmp_path / 'postfix.log'
    log.write_bytes(b'a1\n')
    follower = LogFollower(log)
    assert _read_all(follower) == ['a1']
    log.unlink()
    log.write_bytes(b'b1\n')
    assert _read_all(LogFollower(log, follower.checkpoint)) == ['b1']
    assert 'is gone' in caplog.text


def test_an_oversized_line_is_skipped_and_reported(tmp_path: Path) -> None:
    log = tmp_path / 'x.log'
    log.write_bytes(b'one\n' + b'x' * (MAX_LINE + 10) + b'\nthree\n')
    follower = LogFollower(log)
    batch = follower.read(10)
    follower.close()
    assert batch is not None
    assert [line.text for line in batch.lines] == [b'one', b'three']
    assert [line.number for line in batch.lines] == [1, 3]
    assert batch.oversized == [2]


@pytest.mark.parametrize('block', [7, 64, 1 << 20])
@pytest.mark.parametrize('max_lines', [1, 3, 1000])
def test_block_reads_give_the_lines_of_line_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int, max_lines: int
) -> None:
    """A plain file is read a block at a time: the same lines, skips and checkpoints as reading it line by line,
    whatever the block size (lines across blocks, a line longer than a block, an oversized line, no last newline)."""
    from mailinfra_agent.ingest import files

    content = b'one\n\ntwo two\n' + b'y' * 100 + b'\n' + b'x' * (MAX_LINE + 1) + b'\nthree\n' + b'z' * MAX_LINE
    content += b'\nfour\nfiv'
    log = tmp_path / 'x.log'
    log.write_bytes(content)

    def batches() -> list[tuple[list[tuple[int, bytes]], list[int], int, int]]:
        follower = LogFollower(log)
        found = []
        while (batch := follower.read(max_lines)) is not None:
            lines = [(line.number, line.text) for line in batch.lines]
            found.append((lines, batch.oversized, batch.checkpoint.position, batch.checkpoint.line))
            follower.commit(batch)
        follower.close()
        return found

    monkeypatch.setattr(files, 'BLOCK', block)
    read = batches()
    monkeypatch.setattr(files, '_read_block', lambda stream, position, number, *rest: (position, number))
    assert read == batches()
    assert [text for lines, *_ in read for _, text in lines] == [
        b'one',
        b'',
        b'two two',
        b'y' * 100,
        b'three',
        b'z' * MAX_LINE,
        b'four',
    ]
    assert [number for _, oversized, *_ in read for number in oversized] == [5]
    assert read[-1][2:] == (len(content) - 3, 8)


# --- the service, in process (SQLite) -------------------------------------------------------------------------


def _sqlite(tmp_path: Path, name: str = 'agent.db') -> dict[str, Any]:
    return {'backend': 'sqlite', 'path': str(tmp_path / name)}


def _ingest(contract: Path, *extra: str) -> int:
    return main(['ingest', '--contract', str(contract), 'run', '--once', *extra])


def _rows(path: Path, table: str = 'feedback_events') -> list[tuple[Any, ...]]:
    with connect_sqlite(path) as db:
        columns = ', '.join(EVENT_COLUMNS) if table == 'feedback_events' else '*'
        return sorted(db.execute(f'SELECT {columns} FROM {table}'), key=repr)


@pytest.fixture(scope='module')
def small_logs() -> dict[str, list[str]]:
    return generate(3000, seed=7)


def test_same_file_twice_changes_nothing(tmp_path: Path, small_logs: dict[str, list[str]]) -> None:
    logs = write_logs(tmp_path, small_logs)
    contract = write_contract(tmp_path / 'agent.json', _sqlite(tmp_path), logs)
    assert _ingest(contract) == 0
    first = _rows(tmp_path / 'agent.db')
    first_messages = _rows(tmp_path / 'agent.db', 'feedback_messages')
    assert len(first) > 300 and len(first_messages) > 300
    assert _ingest(contract) == 0  # the checkpoints: nothing new
    with connect_sqlite(tmp_path / 'agent.db') as db:
        db.execute('DELETE FROM ingest_checkpoints')  # forget them: every line is read a second time
    assert _ingest(contract) == 0
    assert _rows(tmp_path / 'agent.db') == first
    assert _rows(tmp_path / 'agent.db', 'feedback_messages') == first_messages


def test_events_are_classified_and_completed(tmp_path: Path, small_logs: dict[str, list[str]]) -> None:
    logs = write_logs(tmp_path, small_logs)
    contract = write_contract(tmp_path / 'agent.json', _sqlite(tmp_path), logs)
    assert _ingest(contract) == 0
    with connect_sqlite(tmp_path / 'agent.db') as db:
        stored = events(db)
    by_status: dict[str, list[Event]] = {}
    for event in stored:
        by_status.setdefault(event.status, []).append(event)
    assert {'sent', 'deferred', 'bounced'} <= set(by_status)
    assert all(event.category is None for event in by_status['sent'])
    unknown_user = [e for e in by_status['bounced'] if e.dsn == '5.1.1']
    assert unknown_user and {e.category for e in unknown_user} == {'bad-mailbox'}
    assert {e.category for e in by_status['deferred'] if e.dsn == '4.7.28'} <= {'policy-related', 'spam-related'}
    stream_events = [e for e in stored if e.stream is not None]
    assert all(e.sender and e.sender.startswith('b-') and e.message_id for e in stream_events)


def test_sender_and_message_id_come_from_the_store(tmp_path: Path) -> None:
    """A delivery line read by another source's parser gets its message's sender and Message-ID from the store."""
    lines = generate(60, seed=3)['postfix-transactional']
    delivery = next(i for i, line in enumerate(lines) if 'status=' in line and 'to=<' in line)
    first, second = tmp_path / 'a' / 'postfix-transactional.log', tmp_path / 'b' / 'postfix-transactional.log'
    first.parent.mkdir()
    second.parent.mkdir()
    first.write_text('\n'.join(lines[:delivery]) + '\n', encoding='utf-8')
    second.write_text(lines[delivery] + '\n', encoding='utf-8')
    contract = write_contract(tmp_path / 'agent.json', _sqlite(tmp_path), {'postfix-transactional': first})
    assert _ingest(contract) == 0
    assert _ingest(contract, '--no-contract-logs', '--log', str(second)) == 0
    with connect_sqlite(tmp_path / 'agent.db') as db:
        (event,) = events(db)
    assert event.source == str(second)
    assert event.sender is not None and event.sender.startswith('b-1.')
    assert event.message_id == '1.transactional@app.dailybrief.example'


BAD_LINES = [
    # truncated: the status is cut off
    'Dec 03 06:20:00.000001 mx1 postfix-transactional/out_198_51_100_10/smtp[77]: 00000000AA: to=<x@gmail.com>, rel',
    # garbage fields in a delivery line
    'Dec 03 06:20:00.000002 mx1 postfix-transactional/out_198_51_100_10/smtp[77]: 00000000AB: to=<x@gmail.com>, '
    'relay=none, delay=soon, dsn=2.0.0, status=sent (ok)',
    # an unknown status word (a future Postfix version)
    'Dec 03 06:20:00.000003 mx1 postfix-transactional/out_198_51_100_10/smtp[77]: 00000000AC: to=<x@gmail.com>, '
    'relay=none, delay=1, delays=0/0/0/0, dsn=2.0.0, status=teleported (beamed up)',
]


def test_bad_lines_are_counted_and_their_neighbours_kept(tmp_path: Path, small_logs: dict[str, list[str]]) -> None:
    (tmp_path / 'clean').mkdir()
    clean = write_logs(tmp_path / 'clean', {'postfix-transactional': small_logs['postfix-transactional']})
    good = small_logs['postfix-transactional']
    dirty_dir = tmp_path / 'dirty'
    dirty_dir.mkdir()
    dirty = dirty_dir / 'postfix-transactional.log'
    with dirty.open('wb') as handle:
        for number, line in enumerate(good):
            handle.write(line.encode() + b'\n')
            if number == 10:
                for bad in BAD_LINES:
                    handle.write(bad.encode() + b'\n')
                handle.write(b'\x00\xff garbage \xfe\n')
                handle.write(b'y' * (MAX_LINE + 1) + b'\n')
            if number == 20:  # a delivery line with a non-UTF-8 recipient: kept, and counted
                handle.write(
                    b'Dec 03 06:20:01.000001 mx1 postfix-transactional/out_198_51_100_10/smtp[78]: 00000000AD: '
                    b'to=<j\xf6rg@gmx.de>, relay=none, delay=1, delays=0/0/0/0, dsn=2.0.0, status=sent (ok)\n'
                )
    clean_contract = write_contract(tmp_path / 'clean.json', _sqlite(tmp_path, 'clean.db'), clean)
    dirty_contract = write_contract(
        tmp_path / 'dirty.json', _sqlite(tmp_path, 'dirty.db'), {'postfix-transactional': dirty}
    )
    assert _ingest(clean_contract) == 0
    assert _ingest(dirty_contract) == 0
    clean_keys = {row[0] for row in _rows(tmp_path / 'clean.db')}
    dirty_keys = {row[0] for row in _rows(tmp_path / 'dirty.db')}
    assert clean_keys < dirty_keys and len(dirty_keys - clean_keys) == 1  # every neighbour, plus the non-UTF-8 line
    with connect_sqlite(tmp_path / 'dirty.db') as db:
        counts = problem_counts(db)
        (location,) = db.execute("SELECT last_location FROM ingest_problems WHERE reason = 'oversized'")[0]
    kinds = {reason: count for (_, kind, reason), count in counts.items() if kind == 'postfix-log'}
    assert kinds == {'truncated': 1, 'garbage': 1, 'unknown-status': 1, 'encoding': 2, 'oversized': 1}
    assert location == f'{dirty}:{11 + len(BAD_LINES) + 2}'
    with connect_sqlite(tmp_path / 'clean.db') as db:
        assert problem_counts(db) == {}


def test_unreachable_store_keeps_the_batch_and_retries(tmp_path: Path) -> None:
    """The store's directory is missing (SQLite cannot open it) for three attempts, then appears."""
    directory = tmp_path / 'later'
    attempts: list[float] = []

    def sleep(seconds: float) -> None:
        attempts.append(seconds)
        if len(attempts) == 3:
            directory.mkdir()

    contract = load_contract(contract_data(_sqlite(directory), {}))
    writer = Writer(lambda: connect(contract.store), 'mx1', classifier(contract), Backoff(0.5, 2.0), sleep=sleep)
    event = Event('k1', 'delivery', 'bounced', 1.0, 'a@gmail.com', 't', diagnostic='550 5.1.1 user unknown')
    writer.write(Batch(events=[event]))
    assert attempts == [0.5, 1.0, 2.0]
    with connect_sqlite(directory / 'agent.db') as db:
        (stored,) = events(db)
    assert stored.category == 'bad-mailbox'


def test_a_store_that_stays_away_stores_nothing_and_advances_nothing(
    tmp_path: Path, small_logs: dict[str, list[str]]
) -> None:
    logs = write_logs(tmp_path, small_logs)
    missing = tmp_path / 'gone'
    contract = write_contract(tmp_path / 'agent.json', _sqlite(missing), logs)
    assert _ingest(contract, '--store-wait', '1') == 2
    assert not missing.exists()
    missing.mkdir()  # the store comes back: everything is read from the start
    assert _ingest(contract) == 0
    clean = write_contract(tmp_path / 'clean.json', _sqlite(tmp_path, 'clean.db'), logs)
    assert _ingest(clean) == 0
    assert _rows(missing / 'agent.db') == _rows(tmp_path / 'clean.db')


def test_checkpoint_resume_equals_one_run(tmp_path: Path, small_logs: dict[str, list[str]]) -> None:
    """Half a file, then the rest appended (with a rotation in between for another): the same as one run."""
    (tmp_path / 'full').mkdir()
    full = write_logs(tmp_path / 'full', small_logs)
    parts = tmp_path / 'parts'
    parts.mkdir()
    lines = small_logs['postfix-transactional']
    half = len(lines) // 2
    growing = parts / 'postfix-transactional.log'
    growing.write_text('\n'.join(lines[:half]) + '\n', encoding='utf-8')
    contract = write_contract(
        tmp_path / 'parts.json', _sqlite(tmp_path, 'parts.db'), {'postfix-transactional': growing}
    )
    assert _ingest(contract) == 0
    with growing.open('a', encoding='utf-8') as handle:
        handle.write('\n'.join(lines[half : half + 100]) + '\n')
    os.rename(growing, parts / 'postfix-transactional.log.1')
    growing.write_text('\n'.join(lines[half + 100 :]) + '\n', encoding='utf-8')
    assert _ingest(contract) == 0
    one = write_contract(
        tmp_path / 'one.json', _sqlite(tmp_path, 'one.db'), {'postfix-transactional': full['postfix-transactional']}
    )
    assert _ingest(one) == 0
    assert {row[0] for row in _rows(tmp_path / 'parts.db')} == {row[0] for row in _rows(tmp_path / 'one.db')}
    with connect_sqlite(tmp_path / 'parts.db') as db:
        point = checkpoint(db, 'mx1', str(growing))
    assert point is not None and point.position == growing.stat().st_size


# --- the command -----------------------------------------------------------------------------------------------


def test_nothing_to_read_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    contract = tmp_path / 'agent.json'
    contract.write_text(json.dumps(contract_data(_sqlite(tmp_path), {})), encoding='utf-8')
    assert _ingest(contract) == 2
    assert 'nothing to read' in capsys.readouterr().err


def test_an_unreadable_contract_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _ingest(tmp_path / 'absent.json') == 2
    assert 'absent.json' in capsys.readouterr().err


def test_an_expiry_after_a_rotation_and_a_restart_names_its_recipients(tmp_path: Path) -> None:
    """Deferrals in the rotated file, the expiry read by a later process: its recipients come from the store."""
    lines = generate(80_000, seed=23)['postfix-cold_outreach']
    rotation = len(lines) // 2
    restart = rotation + 300
    last_deferral = {line.split(': ')[1]: number for number, line in enumerate(lines) if 'status=deferred' in line}
    late_expiries = [line.split(': ')[1] for line in lines[restart:] if 'status=expired' in line]
    # The case is there: every deferral of the message in the rotated file, its expiry after the restart.
    assert any(last_deferral.get(queue_id, rotation) < rotation for queue_id in late_expiries)

    log = tmp_path / 'postfix-cold_outreach.log'
    log.write_text('\n'.join(lines[:rotation]) + '\n', encoding='utf-8')
    contract = write_contract(tmp_path / 'agent.json', _sqlite(tmp_path), {'postfix-cold_outreach': log})
    assert _ingest(contract) == 0
    os.rename(log, tmp_path / 'postfix-cold_outreach.log.1')
    log.write_text('\n'.join(lines[rotation:restart]) + '\n', encoding='utf-8')
    assert _ingest(contract) == 0
    with log.open('a', encoding='utf-8') as handle:
        handle.write('\n'.join(lines[restart:]) + '\n')
    assert _ingest(contract) == 0  # a new process: its parser never saw the rotated file

    (tmp_path / 'one').mkdir()
    one = write_logs(tmp_path / 'one', {'postfix-cold_outreach': lines})
    assert _ingest(write_contract(tmp_path / 'one.json', _sqlite(tmp_path, 'one.db'), one)) == 0
    columns = [column for column in EVENT_COLUMNS if column != 'source']
    tables = []
    for name in ('agent.db', 'one.db'):
        with connect_sqlite(tmp_path / name) as db:
            tables.append(sorted(db.execute(f'SELECT {", ".join(columns)} FROM feedback_events'), key=repr))
            assert db.execute("SELECT COUNT(*) FROM feedback_events WHERE status = 'expired' AND recipient = ''") == [
                (0,)
            ]
    assert tables[0] == tables[1]


def test_only_re_readable_sources_relax_sqlite_syncing(tmp_path: Path, small_logs: dict[str, list[str]]) -> None:
    """Logs and Maildirs (read again after a lost commit) sync at WAL checkpoints; the pipe syncs every commit."""
    from mailinfra_agent.ingest.service import build_sources, contract_inputs, ingest_message, run

    logs = write_logs(tmp_path, small_logs)
    contract = load_contract(write_contract(tmp_path / 'agent.json', _sqlite(tmp_path), logs))

    def writer() -> Writer:
        return Writer(lambda: connect(contract.store), 'mx1', classifier(contract), Backoff(0.5, 2.0))

    def synchronous(target: Writer) -> int:
        return int(target.database().execute('PRAGMA synchronous')[0][0])

    piped = writer()
    ingest_message(piped, b'not a report', lambda *_: [], None)
    assert synchronous(piped) == 2  # FULL: Postfix forgets a message once the pipe exits 0
    piped.close()
    reader = writer()
    run(reader, build_sources(contract, contract_inputs(contract), 500), follow=False)
    assert synchronous(reader) == 1  # NORMAL
    reader.close()
    assert len(_rows(tmp_path / 'agent.db')) > 0


class _LineOnly:
    """A Postfix parser without ``parse_lines``: LogSource reads it line by line."""

    def __init__(self, parser: PostfixLogParser) -> None:
        self.parse_line = parser.parse_line


def test_the_batch_parse_gives_what_the_line_parse_gives(tmp_path: Path) -> None:
    log = tmp_path / 'maillog'
    lines = b'\n'.join(_corpus())
    log.write_bytes(lines[:5000] + b'\n' + b'x' * (MAX_LINE + 1) + b'\n' + lines[5000:] + b'\n')

    def parse_with(make: Any) -> list[Any]:
        source = LogSource(log, 'postfix-log', make, batch_lines=7)
        parser = source.make_parser()
        found: list[Any] = []
        while (read := source.follower.read(source.batch_lines)) is not None:
            batch = source._parse(parser, read)
            found.append((batch.events, batch.messages, batch.expiries, batch.problems, read.checkpoint))
            source.follower.commit(read)
        return found

    def make() -> PostfixLogParser:
        return PostfixLogParser(isp_of=ISPS, reference_time=REFERENCE)

    batched = parse_with(make)
    assert batched == parse_with(lambda: _LineOnly(make()))
    problems = [problem for _, _, _, found, _ in batched for problem in found]
    assert {problem.reason for problem in problems} == {
        'oversized',
        'encoding',
        'truncated',
        'garbage',
        'unknown-status',
    }
