"""The floor of issue 13's speed goal: the least any CPython + SQLite ingest can cost on the benchmark's log.

Usage (from the repository root, venv active; needs Debian's ``pflogsumm``)::

    python benchmarks/feedback/floor.py [--lines 1000000] [--work /var/tmp/mailinfra-feedback-bench] [--repeat 3]

The goal is ingest + report in at most a third of pflogsumm's time on the same log. This script times, as whole
processes on the same file in the same run (GNU time, as run.py), pflogsumm and programs that each do only part of
what the issue asks of ingest, none of it ours beyond the log format:

- ``read``: read the file and split it into lines (what every reader pays);
- ``match``: ``read`` plus one precompiled regular expression over each 2,000-line chunk that finds the delivery
  lines (``status=``) and the qmgr ``from=`` lines and captures their fields, at C speed, with no Python per line;
- ``rows``: ``match`` plus one row per delivery attempt (time, queue id, stream, recipient, ISP by domain, status,
  DSN, reply text, relay, delay, sender) into a SQLite table without any index, in one transaction;
- ``rows+key``: ``rows`` with the unique event key the issue asks for (re-reading a line changes nothing): a
  128-bit hash of the line and a primary key on it;
- ``rows+key+report``: ``rows+key`` plus one query of the daily report (attempts per day, stream, ISP and status);
- ``rows+key+2 indexes+report``: the same with the two indexes any such store needs, on the time (the report's days)
  and on the recipient (suppression and erasure look addresses up); the real store has five;
- ``rows+rowid-key`` (a variant, not a floor): ``rows`` keyed by 64 bits of the hash as the table's own rowid, no
  index beside it (what the cheapest unique key costs).

No message records, no bounce classification, no checkpoints, no indexes for the report, suppression or
complaints, no problem counting, no VERP decoding: each is more work. The store has the real one's settings
(16 KiB pages, WAL, ``synchronous = NORMAL``, 32 MiB of cache). When the last floor takes more than a third of
pflogsumm's CPU, an ingest built this way (CPython, one regular expression, one keyed and indexed SQLite row per
delivery attempt) cannot meet the goal however its own code is tuned. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

FLOORS = ('read', 'match', 'rows', 'rows+key', 'rows+key+report', 'rows+key+2 indexes+report')
VARIANTS = ('rows+rowid-key',)
"""Other ways to key the rows, timed beside the floors."""
CHUNK = 2000
# One pattern for the two kinds of line a report by stream, ISP and VERP segment needs: deliveries and qmgr senders.
LINES = re.compile(
    r'\n(\S+ +\S+ \S+) \S+ postfix(?:-(\w+))?/[\w/]+\[\d+\]: ([0-9A-F]+): '
    r'(?:to=<([^>]*)>, relay=([^,]*), (?:conn_use=\d+, )?delay=([\d.]+), delays=[^,]*, dsn=([\d.]+), '
    r'status=(\w+) \((.*)\)|from=<([^>]*)>, size=)'
)
MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}


def _floor(kind: str, log: Path, db: Path) -> None:
    """One floor program, run as its own process."""
    data = log.read_bytes()
    lines = data.split(b'\n')
    if kind == 'read':
        return
    store = sqlite3.connect(db, isolation_level=None) if kind != 'match' else None
    keyed = kind.startswith('rows+key') or kind == 'rows+rowid-key'
    indexed = kind == 'rows+key+2 indexes+report'
    rowid = kind == 'rows+rowid-key'
    if store is not None:
        # The real store's settings (store/database.py, ingest/store.py): larger pages and cache for random keys.
        store.execute('PRAGMA page_size = 16384')
        store.execute('PRAGMA journal_mode = WAL')
        store.execute('PRAGMA synchronous = NORMAL')
        store.execute('PRAGMA cache_size = -32768')
        key = ('key INTEGER PRIMARY KEY, ' if rowid else 'key TEXT PRIMARY KEY, ') if keyed else ''
        store.execute(
            f'CREATE TABLE events ({key}time REAL, queue_id TEXT, stream TEXT, recipient TEXT, isp TEXT, '
            'status TEXT, dsn TEXT, diagnostic TEXT, relay TEXT, delay REAL, sender TEXT)'
        )
        if indexed:
            store.execute('CREATE INDEX events_time ON events (time)')
            store.execute('CREATE INDEX events_recipient ON events (recipient)')
        store.execute('BEGIN')
    senders: dict[str, str] = {}
    stamps: dict[str, float] = {}
    isps = {'gmail.com': 'gmail', 'yahoo.com': 'yahoo', 'outlook.com': 'microsoft', 'hotmail.com': 'microsoft'}
    year = time.gmtime().tm_year
    sha = hashlib.sha256
    for start in range(0, len(lines), CHUNK):
        text = b'\n'.join([b'', *lines[start : start + CHUNK], b'']).decode('utf-8', 'replace')
        matches = LINES.findall(text)
        if store is None:
            continue
        rows = []
        for stamp, stream, queue_id, recipient, relay, delay, dsn, status, reply, sender in matches:
            if not recipient:
                senders[queue_id] = sender
                continue
            when = stamps.get(stamp)
            if when is None:  # yearless syslog stamp, read as UTC
                month, day, clock = stamp.split()
                hours, minutes, seconds = clock.split(':')
                midnight = calendar.timegm((year, MONTHS[month], int(day), 0, 0, 0))
                when = stamps[stamp] = float(midnight + int(hours) * 3600 + int(minutes) * 60 + int(seconds))
            row = (
                when,
                queue_id,
                stream,
                recipient,
                isps.get(recipient.rpartition('@')[2]),
                status,
                dsn,
                reply,
                relay,
                float(delay),
                senders.get(queue_id),
            )
            if rowid:  # 64 bits of the hash as the rowid: no index beside the table
                digest = sha(f'{stamp}{queue_id}{recipient}{status}{reply}'.encode()).digest()
                row = (int.from_bytes(digest[:8], 'big', signed=True), *row)
            elif keyed:
                row = (sha(f'{stamp}{queue_id}{recipient}{status}{reply}'.encode()).hexdigest()[:32], *row)
            rows.append(row)
        store.executemany(f'INSERT INTO events VALUES ({", ".join("?" * (11 + keyed))})', rows)
    if store is not None:
        store.execute('COMMIT')
        if kind.endswith('report'):
            store.execute(
                "SELECT date(time, 'unixepoch'), stream, isp, status, count(*) FROM events GROUP BY 1, 2, 3, 4"
            ).fetchall()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--lines', type=int, default=1_000_000)
    parser.add_argument('--seed', type=int, default=5737)
    parser.add_argument('--work', type=Path, default=Path('/var/tmp/mailinfra-feedback-bench'))
    parser.add_argument('--repeat', type=int, default=3, help='timed rounds (each: pflogsumm, then every floor)')
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--floor', choices=FLOORS + VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument('--log', type=Path, help=argparse.SUPPRESS)
    parser.add_argument('--db', type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        _floor(args.floor, args.log, args.db)
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    log, _ = run.ensure_log(args.work, args.lines, args.seed)
    rounds: list[dict[str, Any]] = []
    load_before = list(run.os.getloadavg())
    for _ in range(args.repeat):
        entry = {'pflogsumm': run.pflogsumm(log, args.work)}
        for kind in FLOORS + VARIANTS:
            with tempfile.TemporaryDirectory(dir=args.work) as scratch:
                command = [sys.executable, __file__, '--floor', kind, '--log', str(log), '--db', f'{scratch}/f.db']
                entry[kind] = run.measure(command)
        rounds.append(entry)
    result = {'lines': args.lines, 'load_before': load_before, 'load_after': list(run.os.getloadavg())}
    result['cpu_s'] = {
        name: statistics.median(entry[name]['cpu_s'] for entry in rounds) for name in ('pflogsumm', *FLOORS, *VARIANTS)
    }
    result['rounds'] = [
        {name: {k: v for k, v in entry[name].items() if k != 'totals'} for name in entry} for entry in rounds
    ]
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    cpu = result['cpu_s']
    goal = cpu['pflogsumm'] / 3
    print(f'log: {args.lines:,} lines; load average before {load_before}, after {result["load_after"]}')
    print(f'CPU s, median of {args.repeat} round(s), each program a whole process:')
    print(f'  {"pflogsumm":<26} {cpu["pflogsumm"]:6.2f}   goal for ingest + report (a third): {goal:.2f}')
    for kind in FLOORS + VARIANTS:
        print(f'  {kind:<26} {cpu[kind]:6.2f}   {cpu[kind] / goal:5.0%} of the goal')
    return 0


if __name__ == '__main__':
    sys.exit(main())
