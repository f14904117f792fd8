"""Shaping benchmark: reaction time from a matching log line to the changed behaviour at the wire, on real Postfix.

Usage (from the repository root, venv active, as root with Debian's Postfix; about 40 s)::

    python benchmarks/shaping/run.py [--rate 1000] [--settle 10] [--json]

1. starts a throw-away Postfix instance shaped like a rendered stream instance (two sending IPs 127.0.0.2 and
   127.0.0.3, the ``out_<ip>__<isp>`` transports and the rendered routing; the Postfix actuator tests' instance,
   tests/agent/test_shaping_postfix_actuator.py) relaying to an ``smtp-sink``;
2. starts ``Service.run(follow=True)`` (the real service, store and PostfixActuator) in its own process, following
   a log file that a writer thread fills with ``--rate`` Postfix delivery lines a second (background traffic of the
   other IP and ISPs: no rule matches them) and the instance's own maillog;
3. keeps Gmail and Yahoo mail flowing through both IPs (an injector thread, about 40 messages a second);
4. measures the service's CPU over ``--settle`` seconds of background (``/proc/PID/stat``: user + system);
5. appends one ``421 4.7.28`` line for 127.0.0.2 x Gmail at T0 and reports: when ``defer_transports`` named that
   transport (configuration applied and reloaded), and the last delivery the sink got through that transport after
   T0 (from the instance's own log, microsecond stamps): the reaction at the wire. It also counts the deliveries of
   the other transports in the 3 s before and after the reload, and their largest gap (what the reload did to them).

The issue's goal: under 2 s at 1,000 log lines a second. Nothing here asserts on time; the load is printed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailinfra_agent.contract import dump_contract_json, load_contract  # noqa: E402
from mailinfra_agent.feedback.events import Event  # noqa: E402
from mailinfra_agent.ingest.service import postfix_parser  # noqa: E402
from tests.agent.shaping_fixtures import delivery, sent, stamp  # noqa: E402
from tests.agent.test_shaping_postfix_actuator import IPS, KEYS, Instance, running_instance  # noqa: E402
from tests.agent.test_shaping_service_postfix import shaping_contract  # noqa: E402

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def serve(contract_path: str, state_directory: str, config_directory: str) -> None:
    """The service process: the real Service with the real PostfixActuator, until SIGTERM."""
    from mailinfra_agent.ingest.service import Stop
    from mailinfra_agent.shaping.engine import Engine
    from mailinfra_agent.shaping.postfix_actuator import PostfixActuator
    from mailinfra_agent.shaping.service import Service
    from mailinfra_agent.store import connect

    shaped = load_contract(contract_path)
    actuator = PostfixActuator(shaped, state_directory=state_directory, config_directory=lambda s: config_directory)
    service = Service(shaped, lambda: connect(shaped.store), actuator, engine=Engine(shaped, use_warmup=False))
    stop = Stop()
    stop.install()
    service.run(follow=True, stop=stop)
    service.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def background(path: Path, rate: int, stop: threading.Event, written: list[int]) -> None:
    """``rate`` lines a second of the other IP's traffic (sent, greylisted), in 20 ms slices."""
    slice_seconds = 0.02
    with open(path, 'a', encoding='utf-8') as handle:
        due = time.monotonic()
        while not stop.is_set():
            now = time.time()
            lines = []
            for n in range(max(1, round(rate * slice_seconds))):
                isp = ('gmail', 'yahoo', 'microsoft', '*')[n % 4]
                if n % 10 == 0:
                    lines.append(delivery(now, isp=isp, ip=IPS[1], reply='450 4.2.0 Greylisted', dsn='4.2.0'))
                else:
                    lines.append(sent(now, isp=isp, ip=IPS[1]))
            handle.write('\n'.join(lines) + '\n')
            handle.flush()
            written[0] += len(lines)
            due += slice_seconds
            time.sleep(max(0.0, due - time.monotonic()))


def inject(port: int, stop: threading.Event, sent_tokens: list[str]) -> None:
    """Gmail and Yahoo mail, about 40 messages a second (one connection, 10 per batch)."""
    while not stop.is_set():
        try:
            with smtplib.SMTP('127.0.0.1', port, local_hostname='app.example.test', timeout=20) as client:
                while not stop.is_set():
                    for domain in ('gmail.example',) * 6 + ('yahoo.example',) * 4:
                        token = f'{domain.split(".")[0]}-{uuid.uuid4().hex[:12]}'
                        message = f'From: <news@example.com>\r\nTo: <{token}@{domain}>\r\nSubject: x\r\n\r\nx\r\n'
                        client.sendmail('news@example.com', [f'{token}@{domain}'], message)
                        sent_tokens.append(token)
                    time.sleep(0.25)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.2)


def deliveries(maillog: Path, contract_path: Path) -> list[Event]:
    parser = postfix_parser(load_contract(contract_path))
    found: list[Event] = []
    for number, line in enumerate(maillog.read_text(errors='replace').splitlines(), 1):
        found.extend(r for r in parser.parse_line(line, 'maillog', number) if isinstance(r, Event))
    return [event for event in found if event.status == 'sent']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rate', type=int, default=1000, help='background log lines a second')
    parser.add_argument('--settle', type=float, default=10.0, help='seconds of background before the 421 line')
    parser.add_argument('--json', action='store_true')
    parser.add_argument('--serve', nargs=3, metavar=('CONTRACT', 'STATE', 'CONFIG'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    public = Path(tempfile.mkdtemp(prefix='mailinfra-shaping-bench-'))
    public.chmod(0o755)
    work = public / 'work'
    work.mkdir()
    try:
        with running_instance(public) as instance:
            return run(args, instance, work)
    finally:
        shutil.rmtree(public, ignore_errors=True)


def run(args: argparse.Namespace, instance: Instance, work: Path) -> int:
    replies = work / 'replies.log'
    replies.touch()
    shaped = shaping_contract(instance, work, replies)
    contract_path = work / 'agent.json'
    contract_path.write_text(dump_contract_json(shaped), encoding='utf-8')
    config = instance.config
    load_before = os.getloadavg()
    service = subprocess.Popen(
        [sys.executable, __file__, '--serve', str(contract_path), str(work / 'state'), str(config)],
        stderr=open(work / 'service.log', 'wb'),  # noqa: SIM115 - closed with the process
    )
    stop = threading.Event()
    written = [0]
    tokens: list[str] = []
    threads = [
        threading.Thread(target=background, args=(replies, args.rate, stop, written), daemon=True),
        threading.Thread(target=inject, args=(instance.port, stop, tokens), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2.0)  # the service has started and caught up
        cpu_start, lines_start, wall_start = cpu_seconds(service.pid), written[0], time.monotonic()
        time.sleep(args.settle)
        cpu = cpu_seconds(service.pid) - cpu_start
        wall = time.monotonic() - wall_start
        lines = written[0] - lines_start
        key = KEYS[0]
        t0 = time.time()
        with open(replies, 'a', encoding='utf-8') as handle:
            handle.write(
                f'{stamp(t0)} mx2 postfix-marketing/out_{key}__gmail/smtp[4242]: 4A1B2C3D4E: '
                'to=<someone@gmail.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.2, delays=0/0/0.1/0.1, '
                'dsn=4.7.28, status=deferred (host 127.0.0.1[127.0.0.1] said: 421-4.7.28 Our system has detected '
                'an unusual rate of unsolicited mail originating from your IP address. (in reply to end of DATA '
                'command))\n'
            )
        applied = None
        while time.time() - t0 < 30:
            value = subprocess.run(
                ['postconf', '-c', str(config), '-h', 'defer_transports'], capture_output=True, text=True
            ).stdout.strip()
            if f'out_{key}__gmail' in value:
                applied = time.time()
                break
            time.sleep(0.01)
        time.sleep(3.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=30)
    events = deliveries(instance.root / 'maillog', contract_path)
    suspended = [e.time for e in events if e.sending_ip == IPS[0] and e.isp == 'gmail']
    after = [t for t in suspended if t >= t0]
    last = max(after) if after else None
    reload_at = applied or t0
    others = sorted(e.time for e in events if not (e.sending_ip == IPS[0] and e.isp == 'gmail'))
    near = [t for t in others if reload_at - 3 <= t <= reload_at + 3]
    gaps = [b - a for a, b in itertools.pairwise(near)]
    result = {
        'rate_requested': args.rate,
        'background_lines_per_second': round(lines / wall, 1),
        'service_cpu_percent': round(100 * cpu / wall, 1),
        'config_applied_after_s': None if applied is None else round(applied - t0, 3),
        'last_delivery_through_suspended_transport_after_s': None if last is None else round(last - t0, 3),
        'deliveries_through_suspended_transport_before_t0': len(suspended) - len(after),
        'other_transports_deliveries_3s_before_reload': sum(1 for t in near if t < reload_at),
        'other_transports_deliveries_3s_after_reload': sum(1 for t in near if t >= reload_at),
        'other_transports_largest_gap_s': round(max(gaps), 3) if gaps else None,
        'messages_injected': len(tokens),
        'load_before': [round(x, 2) for x in load_before],
        'load_after': [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, value in result.items():
            print(f'{name:52} {value}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
