"""Queue benchmark: the Postfix queue collector against Postfix's own ``qshape``, on one 100,000-message deferred queue.

Usage (as root, from the repository root, venv active)::

    python benchmarks/queue/run.py [--messages 100000] [--work /var/tmp/mailinfra-queue-bench] [--rebuild]
                                   [--cold 3] [--warm 10] [--json]

1. builds a throw-away Postfix instance (its own config, queue and data directories under --work) whose deferred
   queue holds --messages queue files in Postfix's record format, the layout cleanup(8) writes (size, time,
   attributes, sender, original and todo recipients, content, extracted segment, end), named as Postfix names them
   (5 hex digits of microseconds + the file's inode number in hex, hashed one level deep) with a defer log each
   (status 4.7.28, 4.2.1, 4.4.1 or none); recipients over 12 ISP domains and 2,000 small ones, 1-3 per message,
   arrival times over five days, 1-12 KB of content. The mtimes are a day ahead (a deferred file's mtime is its
   next retry), so a running qmgr leaves them alone. Built once and reused (a marker file records the parameters);
2. proves Postfix accepts them: ``postcat -q`` on samples, then ``postfix start`` (whose postsuper check renames any
   queue file whose name does not match its inode), ``postqueue -p`` must report all of them, and ``postqueue -j``
   is timed as the alternative collector; then ``postfix stop``;
3. times ``qshape deferred`` and ``qshape -s deferred`` (Debian's postfix package) and parses their totals;
4. times the collector (``PostfixQueueCollector.collect()`` plus the full per-domain counts): cold scrapes (a new
   collector each time: every file opened and parsed), warm scrapes (the same collector again) and a warm scrape
   after 1,000 messages were retried (moved to active and back, as qmgr does), each with wall time
   (``time.perf_counter``) and the collector's CPU time (``time.process_time``; perf stat is not available here);
5. asserts that the collector's per-domain recipient counts equal ``qshape deferred``'s and its sender-domain counts
   equal ``qshape -s deferred``'s, and prints the figures.

The page cache is warm for every tool (the files were just written or read); nothing drops it, since the machine is
shared. Nothing is sent: the instance has no listener and its transport is a closed loopback port.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'agent'))

from mailinfra_agent.contract.schema import Isp  # noqa: E402
from mailinfra_agent.queue.postfix import PostfixInstance, PostfixQueueCollector  # noqa: E402

ISPS = (
    Isp('gmail', 'Gmail', ('gmail.com', 'googlemail.com'), ()),
    Isp('yahoo', 'Yahoo', ('yahoo.com', 'aol.com'), ()),
    Isp('microsoft', 'Outlook.com', ('outlook.com', 'hotmail.com', 'live.com'), ()),
    Isp('gmx_webde', 'GMX / WEB.DE', ('gmx.de', 'web.de'), ()),
    Isp('apple', 'iCloud', ('icloud.com',), ()),
    Isp('orange', 'Orange', ('orange.fr',), ()),
)
BIG_DOMAINS = {
    'gmail.com': 30,
    'googlemail.com': 2,
    'yahoo.com': 10,
    'aol.com': 2,
    'outlook.com': 6,
    'hotmail.com': 8,
    'live.com': 2,
    'gmx.de': 4,
    'web.de': 4,
    'icloud.com': 3,
    'orange.fr': 3,
    'comcast.net': 2,
}
SMALL_DOMAINS = 2000
STATUSES = (('4.7.28', 50), ('4.2.1', 20), ('4.4.1', 20), (None, 10))
MARKER = 'built.json'
SIZE_FORMAT = '%15d %15d %15d %15d %15d %15d'


def record(kind: str, data: bytes) -> bytes:
    length = len(data)
    header = bytearray(kind.encode())
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            header.append(byte | 0x80)
        else:
            header.append(byte)
            break
    return bytes(header) + data


def queue_file(queue_id: str, arrival: float, sender: str, recipients: list[str], body_lines: int) -> bytes:
    """A queue file laid out as cleanup(8) writes it (see postcat -v of a real one)."""
    envelope = [
        record('T', f'{int(arrival)} {int(arrival % 1 * 1e6)}'.encode()),
        record('A', f'create_time={int(arrival)}'.encode()),
        record('A', b'rewrite_context=local'),
        record('F', b''),
        record('S', sender.encode()),
    ]
    for address in recipients:
        envelope += [
            record('A', f'dsn_orig_rcpt=rfc822;{address}'.encode()),
            record('O', address.encode()),
            record('R', address.encode()),
        ]
    content = [
        record('N', f'Received: by bench.example.test (Postfix, from userid 0) id {queue_id}'.encode()),
        record('N', f'From: <{sender}>'.encode()),
        record('N', f'To: <{recipients[0]}>'.encode()),
        record('N', b'Subject: queue benchmark'),
        record('N', b''),
    ] + [record('N', b'x' * 76) for _ in range(body_lines)]
    size_len = len(record('C', (SIZE_FORMAT % (0, 0, 0, 0, 0, 0)).encode()))
    head = b''.join(envelope)
    data_offset = size_len + len(head) + 2  # after the M record
    body = b''.join(content)
    size = (SIZE_FORMAT % (len(body), data_offset, len(recipients), 0, len(body), 0)).encode()
    return record('C', size) + head + record('M', b'') + body + record('X', b'') + record('E', b'')


def defer_log(recipients: list[str], status: str | None) -> bytes:
    blocks = []
    for address in recipients:
        text = f'host mx.example.test said: 421 {status or ""} try again later'
        lines = [f'\n<{address}>: {text}', f'recipient={address}', 'offset=0', f'dsn_orig_rcpt=rfc822;{address}']
        if status:
            lines.append(f'status={status}')
        lines += ['action=delayed', f'reason={text}']
        blocks.append('\n'.join(lines) + '\n')
    return ''.join(blocks).encode()  # the layout of a real defer log (bounce(8) writes it)


def write_config(work: Path) -> Path:
    config = work / 'config'
    config.mkdir(parents=True, exist_ok=True)
    shutil.copyfile('/etc/postfix/master.cf', config / 'master.cf')
    (config / 'main.cf').write_text(
        '\n'.join(
            [
                'compatibility_level = 3.6',
                'myhostname = bench.example.test',
                'mydestination =',
                'alias_maps =',
                'alias_database =',
                'inet_interfaces = loopback-only',
                'inet_protocols = ipv4',
                'master_service_disable = inet',
                'default_transport = smtp:[127.0.0.1]:9',
                f'queue_directory = {work}/queue',
                f'data_directory = {work}/data',
                f'maillog_file = {work}/maillog',
                f'maillog_file_prefixes = {work}',
                '',
            ]
        )
    )
    return config


def build(work: Path, messages: int, seed: int) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    os.chmod(work, 0o755)
    config = write_config(work)
    postfix = pwd.getpwnam('postfix')
    (work / 'data').mkdir()
    os.chown(work / 'data', postfix.pw_uid, postfix.pw_gid)
    # postfix check (postfix-script) creates the queue tree with the right owners and modes.
    (work / 'queue').mkdir(mode=0o755)
    subprocess.run(['postfix', '-c', str(config), 'check'], check=True)
    queue = work / 'queue'
    rng = random.Random(seed)
    domains = list(BIG_DOMAINS) + [f'shop{n}.example' for n in range(SMALL_DOMAINS)]
    weights = list(BIG_DOMAINS.values()) + [0.01] * SMALL_DOMAINS
    statuses = [status for status, _ in STATUSES]
    status_weights = [weight for _, weight in STATUSES]
    now = time.time()
    retry = now + 86400
    for directory in ('deferred', 'defer'):
        os.makedirs(queue / directory, exist_ok=True)
    tmp = queue / 'deferred' / 'building'
    for _ in range(messages):
        count = rng.choices((1, 2, 3), (90, 8, 2))[0]
        recipients = [f'user{rng.randrange(10**6)}@{rng.choices(domains, weights)[0]}' for _ in range(count)]
        sender = f'news@brand{rng.randrange(20)}.example'
        arrival = now - rng.uniform(0, 5 * 86400)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        inode = os.fstat(fd).st_ino
        queue_id = f'{rng.randrange(0x100000):05X}{inode:X}'
        os.write(fd, queue_file(queue_id, arrival, sender, recipients, rng.randrange(10, 160)))
        os.fchown(fd, postfix.pw_uid, postfix.pw_gid)
        os.fchmod(fd, 0o700)
        os.close(fd)
        hashed = queue / 'deferred' / queue_id[0]
        hashed.mkdir(mode=0o700, exist_ok=True)
        os.chown(hashed, postfix.pw_uid, postfix.pw_gid)
        os.utime(tmp, (retry, retry))
        os.rename(tmp, hashed / queue_id)
        logs = queue / 'defer' / queue_id[0]
        logs.mkdir(mode=0o700, exist_ok=True)
        os.chown(logs, postfix.pw_uid, postfix.pw_gid)
        log = logs / queue_id
        log.write_bytes(defer_log(recipients, rng.choices(statuses, status_weights)[0]))
        os.chown(log, postfix.pw_uid, postfix.pw_gid)
        os.chmod(log, 0o600)
    (work / MARKER).write_text(json.dumps({'messages': messages, 'seed': seed}))


def queue_ids(work: Path) -> set[str]:
    return {name for _, _, files in os.walk(work / 'queue' / 'deferred') for name in files}


def verify(work: Path, messages: int) -> dict[str, Any]:
    """Postfix's own tools accept the files; time ``postqueue -j`` on them."""
    config = str(work / 'config')
    before = queue_ids(work)
    for queue_id in sorted(before)[:: max(1, len(before) // 5)]:
        subprocess.run(['postcat', '-c', config, '-q', queue_id], check=True, capture_output=True)
    subprocess.run(['postfix', '-c', config, 'start'], check=True, capture_output=True)
    try:
        deadline = time.monotonic() + 30
        while not (work / 'queue' / 'public' / 'showq').exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        summary = subprocess.run(
            ['postqueue', '-c', config, '-p'], check=True, capture_output=True, text=True
        ).stdout.splitlines()[-1]
        started = time.perf_counter()
        lines = subprocess.run(['postqueue', '-c', config, '-j'], check=True, capture_output=True).stdout.count(b'\n')
        postqueue_j = time.perf_counter() - started
    finally:
        subprocess.run(['postfix', '-c', config, 'stop'], check=True, capture_output=True)
    after = queue_ids(work)
    if before != after:
        raise SystemExit(f'postsuper renamed {len(before - after)} queue files: their names were not valid')
    if summary.split()[-2:] != [str(messages), 'Requests.'] or lines != messages:
        raise SystemExit(f'postqueue does not see {messages} messages: {summary!r}, -j printed {lines} lines')
    return {'postqueue_p': summary, 'postqueue_j_seconds': postqueue_j, 'postqueue_j_lines': lines}


def qshape(work: Path, sender: bool) -> tuple[float, dict[str, int]]:
    command = ['qshape', '-c', str(work / 'config'), '-w', '400', '-b', '1', *(['-s'] if sender else []), 'deferred']
    started = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for line in output.splitlines()[1:]:
        fields = line.split()
        counts[fields[0]] = int(fields[1])
    return seconds, counts


def scrape(collector: PostfixQueueCollector, instance: PostfixInstance) -> tuple[float, float, Any, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    scan = collector.scan(instance)
    result = collector._stream_queue(scan)  # what collect() returns for the instance
    return time.perf_counter() - wall, time.process_time() - cpu, scan, result


def retry_some(work: Path, count: int, seed: int) -> None:
    """What qmgr does to a retried message that is deferred again: deferred -> active -> deferred, new mtime."""
    rng = random.Random(seed)
    deferred = work / 'queue' / 'deferred'
    active = work / 'queue' / 'active'
    chosen = rng.sample(sorted(queue_ids(work)), count)
    retry = time.time() + 86400
    for queue_id in chosen:
        path = deferred / queue_id[0] / queue_id
        os.rename(path, active / queue_id)
        os.utime(active / queue_id, (retry, retry))
        os.rename(active / queue_id, path)


def same_figures(one: Any, other: Any) -> bool:
    """Two scrapes' results are the same but for the ages (the clock moved)."""
    fields = ('messages', 'deferred_by_isp', 'recipient_domains', 'deferral_reasons', 'errors', 'up')
    return all(getattr(one, name) == getattr(other, name) for name in fields)


def ms(seconds: float) -> str:
    return f'{seconds * 1000:,.0f} ms'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--messages', type=int, default=100_000)
    parser.add_argument('--work', default='/var/tmp/mailinfra-queue-bench')
    parser.add_argument('--seed', type=int, default=5737)
    parser.add_argument('--rebuild', action='store_true')
    parser.add_argument('--cold', type=int, default=3)
    parser.add_argument('--warm', type=int, default=10)
    parser.add_argument('--json', action='store_true')
    args = parser.parse_args()
    if os.geteuid() != 0:
        print('run as root: it builds a Postfix instance and reads its queue', file=sys.stderr)
        return 2
    work = Path(args.work)
    marker = work / MARKER
    wanted = {'messages': args.messages, 'seed': args.seed}
    started = time.perf_counter()
    if args.rebuild or not marker.exists() or json.loads(marker.read_text()) != wanted:
        build(work, args.messages, args.seed)
    build_seconds = time.perf_counter() - started
    postfix_check = verify(work, args.messages)

    qshape_rcpt_s, qshape_rcpt = qshape(work, sender=False)
    qshape_sender_s, qshape_sender = qshape(work, sender=True)

    instance = PostfixInstance('postfix-bench', 'bench', str(work / 'config'))
    cold = []
    for _ in range(args.cold):
        cold.append(scrape(PostfixQueueCollector([instance], ISPS), instance))
    collector = PostfixQueueCollector([instance], ISPS)
    scrape(collector, instance)
    time.sleep(2.1)  # let the directories' mtimes age past the racy window, as between two real scrapes
    scrape(collector, instance)
    warm = [scrape(collector, instance) for _ in range(args.warm)]
    retry_some(work, 1000, args.seed)
    time.sleep(2.1)
    after_retry = scrape(collector, instance)

    scan = cold[0][2]
    result = cold[0][3]
    rcpt = dict(scan.deferred_recipient_domains, TOTAL=sum(scan.deferred_recipient_domains.values()))
    senders = dict(scan.deferred_sender_domains, TOTAL=sum(scan.deferred_sender_domains.values()))
    same = rcpt == qshape_rcpt and senders == qshape_sender
    consistent = all(same_figures(run[3], result) for run in [*cold, *warm]) and same_figures(after_retry[3], result)
    cold_wall = statistics.median(run[0] for run in cold)
    warm_wall = statistics.median(run[0] for run in warm)
    figures = {
        'messages': args.messages,
        'build_seconds': build_seconds,
        **postfix_check,
        'qshape_deferred_seconds': qshape_rcpt_s,
        'qshape_s_deferred_seconds': qshape_sender_s,
        'cold_wall_seconds': [run[0] for run in cold],
        'cold_cpu_seconds': [run[1] for run in cold],
        'warm_wall_seconds': [run[0] for run in warm],
        'warm_cpu_seconds': [run[1] for run in warm],
        'after_1000_retried_wall_seconds': after_retry[0],
        'after_1000_retried_cpu_seconds': after_retry[1],
        'same_counts_as_qshape': same,
        'domains': len(qshape_rcpt) - 1,
        'recipients': qshape_rcpt.get('TOTAL'),
        'speedup_cold_vs_qshape': qshape_rcpt_s / cold_wall,
        'speedup_warm_vs_qshape': qshape_rcpt_s / warm_wall,
        'result': {
            'messages': dict(result.messages),
            'deferred_by_isp': dict(result.deferred_by_isp),
            'recipient_domains': dict(result.recipient_domains),
            'deferral_reasons': dict(result.deferral_reasons),
            'errors': dict(result.errors),
        },
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f'queue: {args.messages:,} deferred messages, {figures["recipients"]:,} recipients, '
            f'{figures["domains"]:,} domains (built in {build_seconds:.1f} s; reused when 0)'
        )
        print(f'postfix accepts them: postcat -q ok, {postfix_check["postqueue_p"]}')
        print(f'postqueue -j (showq, running instance)   {ms(postfix_check["postqueue_j_seconds"])}')
        print(f'qshape deferred                          {ms(qshape_rcpt_s)}')
        print(f'qshape -s deferred                       {ms(qshape_sender_s)}')
        print(
            f'collector cold scrape (median of {args.cold})     {ms(cold_wall)} wall, '
            f'{ms(statistics.median(run[1] for run in cold))} CPU   runs {[ms(run[0]) for run in cold]}'
        )
        print(
            f'collector warm scrape (median of {args.warm})    {ms(warm_wall)} wall, '
            f'{ms(statistics.median(run[1] for run in warm))} CPU   max {ms(max(run[0] for run in warm))}'
        )
        print(f'collector warm, 1,000 retried            {ms(after_retry[0])} wall, {ms(after_retry[1])} CPU')
        print(
            f'speed-up against qshape deferred: cold {figures["speedup_cold_vs_qshape"]:.1f}x, '
            f'warm {figures["speedup_warm_vs_qshape"]:.1f}x (goal >= 5x); '
            f'per scrape < 1 s: cold {"yes" if cold_wall < 1 else "NO"}, warm {"yes" if warm_wall < 1 else "NO"}'
        )
        print(
            f'per-domain counts equal to qshape deferred and qshape -s deferred: {"yes" if same else "NO"}; '
            f'every scrape gave the same result: {"yes" if consistent else "NO"}'
        )
        print(f'deferred by ISP: {figures["result"]["deferred_by_isp"]}')
        print(f'deferral reasons: {figures["result"]["deferral_reasons"]}')
    if not same:
        names = set(rcpt) | set(qshape_rcpt)
        diff = {d: (rcpt.get(d), qshape_rcpt.get(d)) for d in names if rcpt.get(d) != qshape_rcpt.get(d)}
        print(f'DIFFERENT from qshape: {dict(list(diff.items())[:10])}', file=sys.stderr)
        return 1
    return 0 if consistent else 1


if __name__ == '__main__':
    sys.exit(main())
