"""THE crash test: ``mailinfra-agent ingest run --once`` killed with SIGKILL at 20 random points of a large log.

A 200,000-line log of three Postfix instances (deliveries, deferrals, retries, bounces, expiries, the bounce MX's
own lines) is read once cleanly into one store. Into a second store the same command runs as a subprocess and is
killed at 20 points chosen by a seeded RNG (the seed is printed; ``INGEST_CRASH_SEED=<n>`` repeats a run): each
point is a share of the input the checkpoints must have passed, plus a random extra delay, so that kills land in
the middle of batches, parsing and commits. After the last restart both stores must hold the same rows.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.store import connect_sqlite
from mailinfra_agent.store.events import EVENT_COLUMNS
from tests.agent.ingest_logs import generate, write_contract, write_logs

LINES = 200_000
KILLS = 20


def _command(contract: Path) -> list[str]:
    return [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'run', '--once']


def _progress(store: Path) -> int:
    """Bytes of input the stored checkpoints have passed (0 before the first commit)."""
    if not store.exists():
        return 0
    try:
        with connect_sqlite(store) as db:
            rows = db.execute('SELECT SUM(position) FROM ingest_checkpoints')
    except Exception:  # the schema is not there yet
        return 0
    return int(rows[0][0] or 0)


def _dump(store: Path) -> dict[str, list[tuple[Any, ...]]]:
    with connect_sqlite(store) as db:
        return {
            'events': sorted(db.execute(f'SELECT {", ".join(EVENT_COLUMNS)} FROM feedback_events'), key=repr),
            'messages': sorted(db.execute('SELECT * FROM feedback_messages'), key=repr),
            'problems': sorted(db.execute('SELECT host, source_kind, reason, count FROM ingest_problems')),
            'checkpoints': sorted(
                db.execute('SELECT source, device, inode, first_line, position, line FROM ingest_checkpoints')
            ),
        }


def test_sigkill_at_20_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get('INGEST_CRASH_SEED', random.SystemRandom().randrange(1_000_000)))
    print(f'ingest crash test seed: {seed} (repeat with INGEST_CRASH_SEED={seed})')
    rng = random.Random(seed)
    lines = generate(LINES, seed=seed)
    assert sum(len(content) for content in lines.values()) >= LINES
    logs = write_logs(tmp_path, lines)
    total = sum(path.stat().st_size for path in logs.values())

    clean_store = tmp_path / 'clean.db'
    clean = write_contract(tmp_path / 'clean.json', {'backend': 'sqlite', 'path': str(clean_store)}, logs)
    started = time.monotonic()
    subprocess.run(_command(clean), check=True, capture_output=True, timeout=600)
    print(f'clean run: {time.monotonic() - started:.1f} s')

    crash_store = tmp_path / 'crash.db'
    crashed = write_contract(tmp_path / 'crash.json', {'backend': 'sqlite', 'path': str(crash_store)}, logs)
    # Small batches (the default is 20,000 lines, about a tenth of this log) give many commit points to kill
    # between, and keep the last one far enough from the end that the kill still finds the run going. The clean
    # run keeps the default: the store must not depend on the batch size.
    targets = sorted(rng.uniform(0.0, 0.9) for _ in range(KILLS))
    for number, target in enumerate(targets, 1):
        command = [*_command(crashed), '--batch-lines', '500']
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 300
            while _progress(crash_store) < target * total and process.poll() is None:
                assert time.monotonic() < deadline, f'kill {number}: no progress to {target:.3f}'
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.02))
            assert process.poll() is None, f'kill {number} at {target:.3f}: the run ended before it (seed {seed})'
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL
    final = subprocess.run(_command(crashed), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr

    expected, got = _dump(clean_store), _dump(crash_store)
    assert len(expected['events']) > 30_000
    for table in expected:
        assert got[table] == expected[table], f'{table} differ (seed {seed})'


@pytest.mark.parametrize('signum', [signal.SIGTERM])
def test_sigterm_stops_after_the_current_batch(tmp_path: Path, signum: int) -> None:
    logs = write_logs(tmp_path, generate(20_000, seed=5))
    store = tmp_path / 'agent.db'
    contract = write_contract(tmp_path / 'agent.json', {'backend': 'sqlite', 'path': str(store)}, logs)
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'run', '--follow']
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        total = sum(path.stat().st_size for path in logs.values())
        while _progress(store) < total:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signum)
        out, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    assert 'stored' in out


def test_following_picks_up_new_lines_and_a_rotation(tmp_path: Path) -> None:
    """The service (``--follow``) sees appended lines, then the log renamed away with more lines and a new file."""
    lines = generate(3000, seed=19)['postfix-transactional']
    log = tmp_path / 'postfix-transactional.log'
    log.write_text('\n'.join(lines[:1000]) + '\n', encoding='utf-8')
    store = tmp_path / 'agent.db'
    contract = write_contract(
        tmp_path / 'agent.json', {'backend': 'sqlite', 'path': str(store)}, {'postfix-transactional': log}
    )
    command = [sys.executable, '-m', 'mailinfra_agent', 'ingest', '--contract', str(contract), 'run', '--poll', '0.1']
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(position: int) -> None:
        deadline = time.monotonic() + 60
        while _progress(store) != position:
            assert time.monotonic() < deadline and process.poll() is None, (_progress(store), position)
            time.sleep(0.05)

    try:
        wait_for(log.stat().st_size)
        with log.open('a', encoding='utf-8') as handle:
            handle.write('\n'.join(lines[1000:2000]) + '\n')
        wait_for(log.stat().st_size)
        with log.open('a', encoding='utf-8') as handle:
            handle.write('\n'.join(lines[2000:2500]) + '\n')
            os.rename(log, tmp_path / 'postfix-transactional.log.1')
            handle.write('\n'.join(lines[2500:2700]) + '\n')  # still written after the rename
        log.write_text('\n'.join(lines[2700:]) + '\n', encoding='utf-8')
        wait_for(log.stat().st_size)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0
    whole = tmp_path / 'whole'
    whole.mkdir()
    once = write_logs(whole, {'postfix-transactional': lines})
    clean_store = tmp_path / 'clean.db'
    clean = write_contract(tmp_path / 'clean.json', {'backend': 'sqlite', 'path': str(clean_store)}, once)
    subprocess.run(_command(clean), check=True, capture_output=True, timeout=120)
    with connect_sqlite(store) as a, connect_sqlite(clean_store) as b:
        followed = a.execute('SELECT key FROM feedback_events ORDER BY key')
        assert len(followed) > 100
        assert followed == b.execute('SELECT key FROM feedback_events ORDER BY key')
