"""A realistic multi-instance Postfix log for the ingest tests, and the contract that names it.

Three files as the roles write them (``maillog_file``, postlogd's ``Mon DD HH:MM:SS.ffffff`` stamps): the primary
instance (the bounce MX: DSNs delivered to its Maildir) and the two stream instances of newsletter-publisher/mx1.
Stream messages go through smtpd, cleanup (message-id), qmgr (from=, a VERP return path) and the ISP transports
(``out_<ip key>__<isp>/smtp``); some are deferred (421 4.7.28, greylisting), retried, delivered, bounced (550 5.1.1,
552 5.2.2, 554 5.7.1) or expired, with the bounce daemon's notifications and connection noise in between.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.agent.test_contract import contracts

HOST = 'mx1'
INSTANCES = {'transactional': '198_51_100_10', 'cold_outreach': '198_51_100_30'}
ISPS = [
    ('gmail.com', 'gmail', 'gmail-smtp-in.l.google.com[203.0.113.25]:25'),
    ('yahoo.com', 'yahoo', 'mta7.am0.yahoodns.net[203.0.113.26]:25'),
    ('outlook.com', 'microsoft', 'outlook-com.olc.protection.outlook.com[203.0.113.27]:25'),
    ('gmx.de', 'gmx_webde', 'mx00.emig.gmx.net[203.0.113.28]:25'),
    ('example.org', None, 'mx.example.org[203.0.113.29]:25'),
]
DEFERRALS = [
    ('4.7.28', '421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP address'),
    ('4.7.0', '421 4.7.0 [TSS04] Messages from 198.51.100.30 temporarily deferred due to unexpected volume'),
    ('4.2.0', '450 4.2.0 <{rcpt}>: Recipient address rejected: Greylisted, see https://example.org/greylist'),
]
BOUNCES = [
    ('5.1.1', '550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking'),
    ('5.1.1', '550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table'),
    ('5.2.2', '552 5.2.2 Mailbox full'),
    ('5.7.1', '554 5.7.1 Service unavailable; Client host [198.51.100.30] blocked using zen.spamhaus.org'),
]


@dataclass
class _Writer:
    lines: dict[str, list[str]] = field(default_factory=dict)
    clock: float = 0.0
    pid: int = 1000

    def add(self, instance: str, program: str, text: str) -> None:
        self.clock += 0.137
        stamp = time.strftime('%b %d %H:%M:%S', time.gmtime(self.clock)) + f'.{int(self.clock * 1e6) % 1_000_000:06d}'
        self.pid = self.pid % 30000 + 1
        self.lines.setdefault(instance, []).append(f'{stamp} {HOST} {instance}/{program}[{self.pid}]: {text}')


def generate(total_lines: int, seed: int, start: float | None = None) -> dict[str, list[str]]:
    """instance (``postfix``, ``postfix-<stream>``) -> its log lines, about ``total_lines`` in all."""
    rng = random.Random(seed)
    out = _Writer(clock=start if start is not None else time.time() - 3 * 86400)
    pending: list[tuple[str, str, str, int, int]] = []  # (instance, queue id, recipient, due serial, attempts)
    serial = 0
    count = 0
    while count < total_lines:
        before = sum(len(lines) for lines in out.lines.values())
        # A deferred message is retried after 200 to 3000 newer messages (hours of traffic), so its deferrals,
        # retries and expiry lie far apart in the file.
        due = min(range(len(pending)), key=lambda index: pending[index][3], default=None)
        if due is not None and pending[due][3] <= serial:
            instance, queue_id, recipient, _, attempts = pending.pop(due)
            _retry(out, rng, (instance, queue_id, recipient, attempts), pending, serial)
        else:
            serial += 1
            _message(out, rng, serial, pending)
        if rng.random() < 0.001:  # a line the parser must refuse (its neighbours stay)
            out.add('postfix-cold_outreach', 'out_198_51_100_30/smtp', f'{serial:010X}: to=<cut@example.org>, rel')
        if rng.random() < 0.05:
            out.add('postfix-transactional', 'anvil', 'statistics: max connection rate 3/60s for (inject:192.0.2.10)')
        count += sum(len(lines) for lines in out.lines.values()) - before
    return out.lines


def verp_of(serial: int) -> str:
    return f'b-{serial:x}.s{serial % 7}.c{serial % 13}@bounce.dailybrief.example'


def _message(out: _Writer, rng: random.Random, serial: int, pending: list[tuple[str, str, str, int, int]]) -> None:
    stream = rng.choice(list(INSTANCES))
    instance = f'postfix-{stream}'
    queue_id = f'{serial:010X}'
    domain, isp, relay = rng.choice(ISPS)
    recipient = f'user{rng.randrange(50_000)}@{domain}'
    out.add(instance, 'inject/smtpd', 'connect from app1[192.0.2.10]')
    out.add(instance, 'inject/smtpd', f'{queue_id}: client=app1[192.0.2.10], sasl_method=PLAIN, sasl_username=app')
    out.add(instance, 'cleanup', f'{queue_id}: message-id=<{serial}.{stream}@app.dailybrief.example>')
    out.add(
        instance,
        'qmgr',
        f'{queue_id}: from=<{verp_of(serial)}>, size={rng.randrange(2000, 90000)}, nrcpt=1 (queue active)',
    )
    out.add(
        instance,
        'inject/smtpd',
        'disconnect from app1[192.0.2.10] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6',
    )
    _attempt(out, rng, (instance, queue_id, recipient, 0), pending, domain, isp, relay, serial)


def _retry(
    out: _Writer,
    rng: random.Random,
    entry: tuple[str, str, str, int],
    pending: list[tuple[str, str, str, int, int]],
    serial: int,
) -> None:
    instance, queue_id, recipient, attempts = entry
    domain = recipient.split('@', 1)[1]
    _, isp, relay = next(item for item in ISPS if item[0] == domain)
    if attempts >= 4:
        verp = verp_of(int(queue_id, 16))
        out.add(instance, 'qmgr', f'{queue_id}: from=<{verp}>, status=expired, returned to sender')
        out.add(instance, 'qmgr', f'{queue_id}: removed')
        return
    _attempt(out, rng, entry, pending, domain, isp, relay, serial)


def _attempt(
    out: _Writer,
    rng: random.Random,
    entry: tuple[str, str, str, int],
    pending: list[tuple[str, str, str, int, int]],
    domain: str,
    isp: str | None,
    relay: str,
    serial: int,
) -> None:
    instance, queue_id, recipient, attempts = entry
    stream = instance.removeprefix('postfix-')
    transport = f'out_{INSTANCES[stream]}' + (f'__{isp}' if isp else '')
    program = f'{transport}/smtp'
    host = relay.split(':')[0]
    delays = f'delay={1.5 + attempts * 600:.1f}, delays=0.1/0.02/0.4/0.9'
    roll = rng.random()
    sent, deferred = (0.7, 0.88) if attempts == 0 else (0.3, 0.9)  # a deferred recipient is often deferred again
    if roll < sent:
        reply = f'250 2.0.0 OK {rng.randrange(10**9)} - gsmtp'
        out.add(
            instance,
            program,
            f'{queue_id}: to=<{recipient}>, relay={relay}, {delays}, dsn=2.0.0, status=sent ({reply})',
        )
        out.add(instance, 'qmgr', f'{queue_id}: removed')
    elif roll < deferred:
        dsn, text = rng.choice(DEFERRALS)
        said = f'host {host} said: {text.format(rcpt=recipient)} (in reply to RCPT TO command)'
        out.add(
            instance,
            program,
            f'{queue_id}: to=<{recipient}>, relay={relay}, {delays}, dsn={dsn}, status=deferred ({said})',
        )
        pending.append((instance, queue_id, recipient, serial + rng.randrange(200, 3000), attempts + 1))
    else:
        dsn, text = rng.choice(BOUNCES)
        said = f'host {host} said: {text.format(rcpt=recipient)} (in reply to RCPT TO command)'
        out.add(
            instance,
            program,
            f'{queue_id}: to=<{recipient}>, relay={relay}, {delays}, dsn={dsn}, status=bounced ({said})',
        )
        notice = f'{int(queue_id, 16) + 0x8000000000:010X}'
        out.add(instance, 'bounce', f'{queue_id}: sender non-delivery notification: {notice}')
        out.add(instance, 'qmgr', f'{queue_id}: removed')
        # The DSN reaches the bounce MX (the primary instance) and is delivered to its Maildir.
        local = f'{int(queue_id, 16) + 0x9000000000:010X}'
        out.add('postfix', 'smtpd', f'{local}: client=mx1.mail.dailybrief.example[198.51.100.30]')
        out.add('postfix', 'cleanup', f'{local}: message-id=<{local}@mx1.mail.dailybrief.example>')
        out.add('postfix', 'qmgr', f'{local}: from=<>, size=4242, nrcpt=1 (queue active)')
        out.add(
            'postfix',
            'local',
            f'{local}: to=<bounces@bounce.dailybrief.example>, relay=local, delay=0.05, delays=0.01/0/0/0.04, '
            'dsn=2.0.0, status=sent (delivered to maildir)',
        )
        out.add('postfix', 'qmgr', f'{local}: removed')


def write_logs(directory: Path, lines: dict[str, list[str]]) -> dict[str, Path]:
    """instance -> the log file written (``<instance>.log``)."""
    paths = {}
    for instance, content in sorted(lines.items()):
        path = directory / f'{instance}.log'
        path.write_text('\n'.join(content) + '\n', encoding='utf-8')
        paths[instance] = path
    return paths


def lines_of(paths: dict[str, Path]) -> Iterator[str]:
    for path in paths.values():
        yield from path.read_text(encoding='utf-8').splitlines()


def contract_data(store: dict[str, Any], logs: dict[str, Path], host: str = HOST) -> dict[str, Any]:
    """newsletter-publisher/mx1's contract with the test's store and log paths (and another host name if given)."""
    data: dict[str, Any] = json.loads(contracts()['newsletter-publisher/mx1'])
    data['store'] = store
    data['host']['name'] = host
    data['feedback_maildirs'] = []  # the messages' tests add theirs
    data['logs'] = [
        {
            'path': str(path),
            'format': 'postfix',
            'instance': instance,
            'syslog_name': instance,
            'stream': None if instance == 'postfix' else instance.removeprefix('postfix-'),
        }
        for instance, path in sorted(logs.items())
    ]
    return data


def write_contract(path: Path, store: dict[str, Any], logs: dict[str, Path], host: str = HOST) -> Path:
    path.write_text(json.dumps(contract_data(store, logs, host)), encoding='utf-8')
    return path
