"""Feedback benchmark: our ingest + report against pflogsumm on one generated multi-instance Postfix log.

Usage (from the repository root, venv active; needs Debian's ``pflogsumm``)::

    python benchmarks/feedback/run.py [--lines 1000000] [--work /var/tmp/mailinfra-feedback-bench] [--repeat 1]
                                      [--profile] [--stages] [--json]

1. generates the log with ``generate.py`` (seeded; reused while ``--lines``/``--seed`` are the same) and its truth;
2. writes a contract for one host with the three stream instances (newsletter-publisher's mx1 and mx2 contracts
   merged: streams transactional, cold_outreach, marketing and their IPs) and a fresh SQLite store;
3. times, as whole processes on the same file in the same run (wall time, CPU time and peak RSS from GNU time):
   - ours: ``mailinfra-agent ingest --contract C run --once --no-contract-logs --log FILE`` into the empty store,
     then ``mailinfra feedback report --store sqlite:DB --format json``;
   - the parser alone: ``PostfixLogParser.parse_lines`` over the file, no store (this script with ``--parser-only``);
   - ``pflogsumm --syslog-name='postfix-(?:transactional|marketing|cold_outreach)' FILE``;
4. compares the counts: SQL on the store, pflogsumm's "Grand Totals", and the generator's truth;
5. checks on the first 50,000 lines how ``--syslog-name`` selects instances (default vs the alternation vs
   ``postfix(?:-\\w+)?``);
6. with ``--profile``: cProfile of one ingest run (top functions by own time);
7. with ``--stages``: the CPU time of each stage of one ingest run (reading, parsing, classifying, SQL, commits).

The load average is printed before and after (the machine is shared). Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / 'agent'))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402

INSTANCES = ('transactional', 'marketing', 'cold_outreach')
SYSLOG_NAME = 'postfix-(?:' + '|'.join(INSTANCES) + ')'
GOLDEN = ROOT / 'tests' / 'golden' / 'newsletter-publisher' / 'mta'
PFLOGSUMM_TOTALS = (
    'received',
    'delivered',
    'forwarded',
    'deferred',
    'bounced',
    'rejected',
    'reject warnings',
    'held',
    'discarded',
)


# --- the pieces -----------------------------------------------------------------------------------------------------


def measure(command: list[str], stdout: Path | None = None) -> dict[str, Any]:
    """Run a command under GNU time: wall time, its CPU time and its own peak RSS.

    Not ``os.wait4`` on our own child: Linux keeps a process's peak RSS across exec, so a child forked from this
    (large) Python process would report this process's size. GNU time is small, and reports its child's.
    """
    handle, name = tempfile.mkstemp(suffix='.time')
    os.close(handle)
    usage_file = Path(name)
    timed = ['/usr/bin/time', '-f', '%e %U %S %M', '-o', str(usage_file), *command]
    out = stdout.open('wb') if stdout else subprocess.DEVNULL
    started = time.perf_counter()
    try:
        process = subprocess.run(timed, stdout=out, stderr=subprocess.PIPE, cwd=ROOT, check=False)
    finally:
        if stdout:
            out.close()  # type: ignore[union-attr]
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(
            f'{command[0]} failed ({process.returncode}): {process.stderr.decode(errors="replace")[-2000:]}'
        )
    _, user, system, max_kb = usage_file.read_text(encoding='utf-8').split()[-4:]
    usage_file.unlink()
    return {
        'wall_s': round(wall, 3),
        'cpu_s': round(float(user) + float(system), 3),
        'peak_rss_mb': round(int(max_kb) / 1024, 1),
        'command': ' '.join(command),
    }


def contract(work: Path, store: Path) -> Path:
    """mx1's contract (transactional, cold_outreach) plus mx2's marketing stream and IPs; our store, no logs."""
    data = json.loads((GOLDEN / 'mx1' / 'etc' / 'mailinfra' / 'agent.json').read_text(encoding='utf-8'))
    other = json.loads((GOLDEN / 'mx2' / 'etc' / 'mailinfra' / 'agent.json').read_text(encoding='utf-8'))
    data['streams'] += [stream for stream in other['streams'] if stream['name'] == 'marketing']
    data['ips'] += [ip for ip in other['ips'] if ip['stream'] == 'marketing']
    data['store'] = {'backend': 'sqlite', 'path': str(store), 'dsn': None, 'password_file': None}
    data['logs'] = []
    data['feedback_maildirs'] = []
    path = work / 'agent.json'
    path.write_text(json.dumps(data, indent=2), encoding='utf-8')
    return path


def executable(name: str, module: str) -> list[str]:
    found = Path(sys.executable).with_name(name)
    return [str(found)] if found.exists() else [sys.executable, '-m', module]


def ours(log: Path, work: Path) -> dict[str, Any]:
    store = work / 'store.db'
    for suffix in ('', '-wal', '-shm', '-journal'):
        Path(f'{store}{suffix}').unlink(missing_ok=True)
    agent_json = contract(work, store)
    ingest = measure(
        [
            *executable('mailinfra-agent', 'mailinfra_agent'),
            *('ingest', '--contract', str(agent_json), 'run', '--once', '--no-contract-logs', '--log', str(log)),
        ]
    )
    report_file = work / 'report.json'
    report = measure(
        [
            *executable('mailinfra', 'mailinfra_iac'),
            *('feedback', 'report', '--store', f'sqlite:{store}', '--format', 'json', '--output', str(report_file)),
        ]
    )
    return {
        'ingest': ingest,
        'report': report,
        'wall_s': round(ingest['wall_s'] + report['wall_s'], 3),
        'cpu_s': round(ingest['cpu_s'] + report['cpu_s'], 3),
        'peak_rss_mb': max(ingest['peak_rss_mb'], report['peak_rss_mb']),
        'store': str(store),
        'report_file': str(report_file),
    }


def store_counts(store: Path) -> dict[str, Any]:
    db = sqlite3.connect(f'file:{store}?mode=ro', uri=True)
    try:
        rows = db.execute(
            "SELECT status, sender = '' AS null_sender, stream IS NULL AS primary_instance, count(*), "
            "count(DISTINCT queue_id) FROM feedback_events WHERE kind = 'delivery' GROUP BY 1, 2, 3"
        ).fetchall()
        problems = dict(db.execute('SELECT reason, count FROM ingest_problems').fetchall())
        messages = db.execute('SELECT count(*) FROM feedback_messages').fetchone()[0]
        by_stream = db.execute(
            "SELECT coalesce(stream, '(primary)'), status, count(*) FROM feedback_events WHERE kind = 'delivery' "
            'GROUP BY 1, 2 ORDER BY 1, 2'
        ).fetchall()
        no_ip = db.execute(
            "SELECT count(*) FROM feedback_events WHERE kind = 'delivery' AND stream IS NOT NULL AND sending_ip IS NULL"
        ).fetchone()[0]
        categorised = db.execute(
            "SELECT count(*) FROM feedback_events WHERE status = 'bounced' AND category IS NOT NULL"
        ).fetchone()[0]
    finally:
        db.close()
    counts: dict[str, Any] = {'sent': 0, 'deferred': 0, 'bounced': 0, 'expired': 0}
    counts.update(sent_null_sender=0, sent_primary=0, deferred_messages=0)
    for status, null_sender, primary, count, queue_ids in rows:
        counts[status] = counts.get(status, 0) + count
        if status == 'sent' and null_sender:
            counts['sent_null_sender'] += count
        if status == 'sent' and primary:
            counts['sent_primary'] += count
        if status == 'deferred':
            counts['deferred_messages'] += queue_ids
    counts['problems'] = problems
    counts['message_records'] = messages
    counts['by_stream'] = [list(row) for row in by_stream]
    counts['stream_events_without_ip'] = no_ip
    counts['bounces_categorised'] = categorised
    return counts


def report_totals(path: Path) -> dict[str, int]:
    """The report's overall counts (its JSON ``total``)."""
    total = json.loads(path.read_text(encoding='utf-8'))['total']
    return {name: int(total[name]) for name in ('sent', 'deferred', 'bounced', 'expired', 'dsn_bounces')}


def pflogsumm(log: Path, work: Path, options: tuple[str, ...] = ('--syslog-name', SYSLOG_NAME)) -> dict[str, Any]:
    """pflogsumm's full default report. The name is a separate argument: pflogsumm turns every ``_`` of an
    ``--option=value`` argument into ``-`` (its "accept _ or - in switches"), which breaks ``postfix-cold_outreach``."""
    output = work / 'pflogsumm.txt'
    command = ['pflogsumm', *options, str(log)]
    result = measure(command, stdout=output)
    result['totals'] = pflogsumm_totals(output.read_text(encoding='utf-8', errors='replace'))
    return result


def pflogsumm_totals(text: str) -> dict[str, Any]:
    """The "Grand Totals" of pflogsumm's output (its k/m units turned back into numbers, approximately)."""
    totals: dict[str, Any] = {}
    for name in PFLOGSUMM_TOTALS:
        match = re.search(rf'^\s+(\d+)([ km])\s+{re.escape(name)}\b(.*)$', text, re.MULTILINE)
        if match is None:
            continue
        totals[name] = int(match.group(1)) * {' ': 1, 'k': 1024, 'm': 1024 * 1024}[match.group(2)]
        if match.group(2) != ' ':
            totals[name + ' (rounded)'] = True
        deferrals = re.search(r'\((\d+)([ km]?) deferrals\)', match.group(3))
        if name == 'deferred' and deferrals:
            totals['deferrals'] = (
                int(deferrals.group(1)) * {'': 1, ' ': 1, 'k': 1024, 'm': 1024 * 1024}[deferrals.group(2)]
            )
    return totals


def parser_only(log: Path) -> None:
    """Child mode: the Postfix log parser over the file, no store; prints its counts (and own timing) as JSON.

    As the ingest reads it: raw lines in batches of 20,000 through ``parse_lines``."""
    from mailinfra_agent.feedback.postfix_log import PostfixLogParser

    started = time.perf_counter()
    parser = PostfixLogParser(reference_time=time.time())
    counts: dict[str, int] = {}
    errors: dict[str, int] = {}
    first = 1
    with log.open('rb') as handle:  # 20,000 lines at a time: the whole file would weigh on the peak RSS
        while lines := [line.removesuffix(b'\n') for line in itertools.islice(handle, 20_000)]:
            parsed = parser.parse_lines(lines, str(log), first)
            first += len(lines)
            for event in parsed.events + [event for event, _ in parsed.expiries]:
                counts[event.status] = counts.get(event.status, 0) + 1
            counts['message-record'] = counts.get('message-record', 0) + len(parsed.messages)
            for _, error in parsed.problems:
                reason = 'encoding' if error is None else error.reason
                errors[reason] = errors.get(reason, 0) + 1
    seconds = time.perf_counter() - started
    print(json.dumps({'counts': counts, 'errors': errors, 'seconds': round(seconds, 3)}))


def parser_alone(log: Path, work: Path) -> dict[str, Any]:
    output = work / 'parser.json'
    result = measure([sys.executable, str(Path(__file__).resolve()), '--parser-only', str(log)], stdout=output)
    result.update(json.loads(output.read_text(encoding='utf-8')))
    return result


def syslog_name_check(log: Path, work: Path, lines: int = 50_000) -> dict[str, Any]:
    """How --syslog-name selects instances, on the first lines of the file."""
    head = work / 'head.log'
    with log.open('rb') as source, head.open('wb') as target:
        for number, line in enumerate(source):
            if number >= lines:
                break
            target.write(line)
    result = {}
    variants = {
        '(no option)': (),
        f'--syslog-name={SYSLOG_NAME}': (f'--syslog-name={SYSLOG_NAME}',),
        f'--syslog-name {SYSLOG_NAME}': ('--syslog-name', SYSLOG_NAME),
        '--syslog-name postfix(?:-\\w+)?': ('--syslog-name', r'postfix(?:-\w+)?'),
        '--syslog-name postfix-cold_outreach': ('--syslog-name', 'postfix-cold_outreach'),
    }
    for label, options in variants.items():
        result[label] = pflogsumm(head, work, options)['totals']
    head.unlink()
    return result


def profile(log: Path, work: Path, top: int = 25) -> str:
    """cProfile of one ingest run (in this process, a fresh store)."""
    from mailinfra_agent.cli import main as agent_main

    store = work / 'profile.db'
    for suffix in ('', '-wal', '-shm', '-journal'):
        Path(f'{store}{suffix}').unlink(missing_ok=True)
    agent_json = contract(work, store)
    profiler = cProfile.Profile()
    profiler.enable()
    agent_main(['ingest', '--contract', str(agent_json), 'run', '--once', '--no-contract-logs', '--log', str(log)])
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats('tottime').print_stats(top)
    return text.getvalue()


def stages(log: Path, work: Path) -> dict[str, float]:
    """CPU seconds (``time.process_time``) of each stage of one ingest run (in this process, a fresh store): the
    functions below are wrapped for the run; each stage's figure includes what it calls."""
    from mailinfra_agent.cli import main as agent_main
    from mailinfra_agent.ingest import files, sources
    from mailinfra_agent.ingest import store as ingest_store
    from mailinfra_agent.store import database

    spent: dict[str, float] = {}
    wrapped: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.process_time() - started

        wrapped.append((owner, name, original))
        setattr(owner, name, timed)

    original_execute = database.Database.execute

    def execute(self: Any, sql: str, params: Any = ()) -> Any:
        started = time.process_time()
        try:
            return original_execute(self, sql, params)
        finally:
            if sql == 'COMMIT':
                spent['commits'] = spent.get('commits', 0.0) + time.process_time() - started

    store = work / 'stages.db'
    for suffix in ('', '-wal', '-shm', '-journal'):
        Path(f'{store}{suffix}').unlink(missing_ok=True)
    agent_json = contract(work, store)
    wrap(files.LogFollower, 'read', 'reading the file into lines')
    wrap(sources.LogSource, '_parse', 'decoding and parsing')
    # Writer.write classifies, then stores (or keeps the batch for a later flush, which run() also calls at the end):
    # classifying and the transactions (Writer.call) are timed apart and added up.
    wrap(ingest_store.Writer, '_classify_all', 'classifying')
    wrap(ingest_store.Writer, 'call', 'the transactions (with BEGIN and COMMIT)')
    wrap(ingest_store.Writer, '_write', 'the transactions without BEGIN and COMMIT')
    wrap(ingest_store, 'upsert_messages', 'message-record upserts')
    wrap(ingest_store, 'insert_events', 'event inserts')
    database.Database.execute = execute  # type: ignore[method-assign]
    started = time.process_time()
    try:
        agent_main(['ingest', '--contract', str(agent_json), 'run', '--once', '--no-contract-logs', '--log', str(log)])
    finally:
        database.Database.execute = original_execute  # type: ignore[method-assign]
        for owner, name, original in reversed(wrapped):
            setattr(owner, name, original)
    spent['all'] = time.process_time() - started
    spent['storing (all below)'] = spent.get('classifying', 0.0) + spent.get(
        'the transactions (with BEGIN and COMMIT)', 0.0
    )
    return {label: round(value, 2) for label, value in spent.items()}


# --- main -------------------------------------------------------------------------------------------------------------


def ensure_log(work: Path, lines: int, seed: int) -> tuple[Path, dict[str, Any]]:
    log = work / f'maillog-{lines}-{seed}'
    truth_path = Path(f'{log}.truth.json')
    if not (log.exists() and truth_path.exists()):
        print(f'generating {lines:,} lines (seed {seed}) into {log} ...', file=sys.stderr)
        content, truth = generate.build(lines, seed)
        generate.write(log, content, truth)
        del content
    return log, json.loads(truth_path.read_text(encoding='utf-8'))


def _comparison(truth: dict[str, Any], store: dict[str, Any], report: dict[str, int], pfl: dict[str, Any]) -> list:
    return [
        (
            'delivered (every status=sent line)',
            truth['sent_total'],
            store['sent'],
            report['sent'],
            pfl.get('delivered'),
        ),
        (
            '  of which null-sender notifications',
            truth['sent_notifications'] + truth['sent_pipe_own_notifications'] + truth['sent_pipe_provider_dsns'],
            store['sent_null_sender'],
            None,
            None,
        ),
        (
            'deferral attempts (status=deferred lines)',
            truth['deferred_lines'],
            store['deferred'],
            report['deferred'],
            pfl.get('deferrals'),
        ),
        (
            'deferred messages (distinct queue ids)',
            truth['deferred_messages'],
            store['deferred_messages'],
            None,
            pfl.get('deferred'),
        ),
        ('bounced (status=bounced lines)', truth['bounced'], store['bounced'], report['bounced'], pfl.get('bounced')),
        ('expired', truth['expired'], store['expired'], report['expired'], None),
        ('rejected (smtpd NOQUEUE reject)', truth['rejected'], None, None, pfl.get('rejected')),
        (
            'received (smtpd client= / pickup)',
            truth['messages_injected'] + truth['received_on_primary'],
            None,
            None,
            pfl.get('received'),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--lines', type=int, default=1_000_000)
    parser.add_argument('--seed', type=int, default=5737)
    parser.add_argument('--work', type=Path, default=Path('/var/tmp/mailinfra-feedback-bench'))
    parser.add_argument('--repeat', type=int, default=1, help='timed rounds (each: pflogsumm, ours, parser)')
    parser.add_argument('--profile', action='store_true', help='also a cProfile of one ingest run')
    parser.add_argument('--stages', action='store_true', help='also the CPU of each stage of one ingest run')
    parser.add_argument('--json', action='store_true', help='print everything as JSON')
    parser.add_argument('--parser-only', type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parser_only:
        parser_only(args.parser_only)
        return 0
    if shutil.which('pflogsumm') is None:
        print('pflogsumm is not installed (apt-get install pflogsumm; script/bootstrap installs it)', file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    log, truth = ensure_log(args.work, args.lines, args.seed)
    load_before = os.getloadavg()
    rounds = []
    for _ in range(args.repeat):
        baseline = pflogsumm(log, args.work)
        mine = ours(log, args.work)
        alone = parser_alone(log, args.work)
        rounds.append({'pflogsumm': baseline, 'ours': mine, 'parser': alone})
    load_after = os.getloadavg()
    last = rounds[-1]
    store = store_counts(Path(last['ours']['store']))
    report = report_totals(Path(last['ours']['report_file']))
    check = syslog_name_check(log, args.work)
    result: dict[str, Any] = {
        'lines': truth['lines'],
        'file_mb': round(log.stat().st_size / 1e6, 1),
        'truth': truth,
        'rounds': rounds,
        'store': store,
        'report_totals': report,
        'syslog_name_check': check,
        'load_before': [round(x, 2) for x in load_before],
        'load_after': [round(x, 2) for x in load_after],
        'machine': f'{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs',
    }
    if args.profile:
        result['profile'] = profile(log, args.work)
    if args.stages:
        result['stages'] = stages(log, args.work)
    (args.work / 'result.json').write_text(json.dumps(result, indent=2, default=str) + '\n', encoding='utf-8')
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    _print(result)
    return 0


def _print(result: dict[str, Any]) -> None:
    print(f'log: {result["lines"]:,} lines, {result["file_mb"]} MB; {result["machine"]}')
    print(f'load average before {result["load_before"]}, after {result["load_after"]}')
    print()
    print(f'{"round":>5} {"tool":<34} {"wall s":>8} {"CPU s":>8} {"peak RSS MB":>12} {"lines/s":>10}')
    for number, entry in enumerate(result['rounds'], 1):
        rows = [
            ('pflogsumm', entry['pflogsumm']),
            ('ours: ingest + report', entry['ours']),
            ('  ingest (parse, classify, store)', entry['ours']['ingest']),
            ('  report (SQL + JSON)', entry['ours']['report']),
            ('parser alone (no store)', entry['parser']),
        ]
        for name, row in rows:
            rate = result['lines'] / row['wall_s'] if row['wall_s'] else 0
            print(
                f'{number:>5} {name:<34} {row["wall_s"]:>8.2f} {row["cpu_s"]:>8.2f} {row["peak_rss_mb"]:>12.1f} '
                f'{rate:>10,.0f}'
            )
        pfl, mine = entry['pflogsumm'], entry['ours']
        print(
            f'      speed ours/pflogsumm: wall {pfl["wall_s"] / mine["wall_s"]:.2f}x, CPU '
            f'{pfl["cpu_s"] / mine["cpu_s"]:.2f}x (goal >= 3x); peak RSS ours {mine["peak_rss_mb"]} MB vs '
            f'{pfl["peak_rss_mb"]} MB (goal <=)'
        )
    print()
    pfl = result['rounds'][-1]['pflogsumm']['totals']
    print(f'{"count":<44} {"truth":>9} {"ours SQL":>9} {"report":>9} {"pflogsumm":>9}')
    for name, *values in _comparison(result['truth'], result['store'], result['report_totals'], pfl):
        shown = ['-' if value is None else f'{value:,}' for value in values]
        print(f'{name:<44} ' + ' '.join(f'{value:>9}' for value in shown))
    store = result['store']
    print(
        f'ingest problems: {store["problems"]}; message records {store["message_records"]:,}; stream events '
        f'without sending IP {store["stream_events_without_ip"]}; bounces with a category '
        f'{store["bounces_categorised"]:,}'
    )
    print()
    print('pflogsumm --syslog-name on the first 50,000 lines (delivered / deferred / bounced / received):')
    for label, totals in result['syslog_name_check'].items():
        print(
            f'  {label:<64} ' + ' / '.join(str(totals.get(k)) for k in ('delivered', 'deferred', 'bounced', 'received'))
        )
    if 'stages' in result:
        print()
        print('CPU s of each stage of one ingest run (in-process):')
        for label, value in result['stages'].items():
            print(f'  {label:<44} {value:6.2f}')
    if 'profile' in result:
        print()
        print(result['profile'])


if __name__ == '__main__':
    sys.exit(main())
