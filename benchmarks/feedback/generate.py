"""A seeded, realistic multi-instance Postfix log for the feedback benchmark (classic syslog format).

Usage (from the repository root, venv active)::

    python benchmarks/feedback/generate.py --lines 1000000 --output /var/tmp/feedback-bench/maillog

writes the log and ``<output>.truth.json`` (what the generator logged, counted while writing: the expected answers).
The same ``--seed``/``--lines``/``--start`` always give the same bytes.

One host (``mx1``) with the primary instance ``postfix`` (the bounce MX: DSNs arrive on its smtpd and go to the
ingest pipe) and three stream instances named as roles/postfix names them (``syslog_name = postfix-<stream>``,
services ``postfix-<stream>/<service>``): ``postfix-transactional`` (20 % of messages, IP 198.51.100.10),
``postfix-marketing`` (65 %, 198.51.100.20-22) and ``postfix-cold_outreach`` (15 %, 198.51.100.30), the IPs of
the newsletter-publisher example. Outbound, each message goes through the transport the role names
``out_<ip key>__<isp>`` (recipient domain of an ISP profile) or ``out_<ip key>`` (any other domain).

Each message (one recipient: VERP return paths are per recipient): the application's injection
(``<instance>/inject/smtpd`` connect, ``client=``, disconnect; one connection per 1-20 messages), cleanup
``message-id=``, opendkim's signature line, qmgr ``from=<VERP>`` (a real signed return path from
``mailinfra_agent.feedback.verp.encode`` with a benchmark key), the delivery attempt(s), qmgr ``removed``.
First attempt: sent 88 %, deferred 8 %, bounced 4 %. A deferred message is retried 200-2,500 messages later
(qmgr logs its ``from=`` again): sent 45 %, deferred again 50 %, bounced 5 %; after its fifth deferral it
expires (``status=expired, returned to sender``). Reply texts are the provider-specific texts of
tests/data/bounces/corpus.yml (4xx for deferrals, 5xx for bounces, by the recipient's ISP), 15 % of deferrals
are connection failures (``relay=none``). A bounce or expiry makes the instance's bounce daemon send a
non-delivery notification (``bounce: ID: sender non-delivery notification: NEW``, then NEW with the null sender
is delivered through ``out_<ip key>`` to the VERP address), which arrives on the primary instance's smtpd and
is delivered to the ``mailinfra-feedback`` pipe. 0.5 % of the delivered messages also get an asynchronous
DSN from the recipient's provider on the primary instance (null sender, pipe).

Noise: outbound TLS lines (1 per 4 deliveries), inbound connections on the primary with relay-denied rejects,
anvil and scache statistics, warnings, other programs (CRON, systemd, sshd, dovecot, kernel), and garbage (about
60 lines per million): truncated delivery lines, lines cut at the start, non-UTF-8 bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / 'agent') not in sys.path:
    sys.path.insert(0, str(ROOT / 'agent'))

import yaml  # noqa: E402

from mailinfra_agent.feedback import verp  # noqa: E402

HOST = 'mx1'
HOST_FQDN = 'mx1.mail.dailybrief.example'
CORPUS = ROOT / 'tests' / 'data' / 'bounces' / 'corpus.yml'
BENCH_KEY = b'feedback-benchmark-signing-key-0123456789'
"""The VERP signing key of the benchmark (public: the addresses only need to be real ones)."""


@dataclass(frozen=True)
class Stream:
    name: str
    share: float
    ip_keys: tuple[str, ...]
    from_domain: str
    return_domain: str
    prefix: str
    segments: tuple[str, ...]


STREAMS = (
    Stream(
        'transactional', 0.20, ('198_51_100_10',), 'dailybrief.example', 'rp.dailybrief.example', 'b', ('receipts',)
    ),
    Stream(
        'marketing',
        0.65,
        ('198_51_100_20', '198_51_100_21', '198_51_100_22'),
        'news.dailybrief.example',
        'rp.news.dailybrief.example',
        'n',
        ('weekly-de', 'weekly-fr', 'daily-en', 'promo'),
    ),
    Stream(
        'cold_outreach',
        0.15,
        ('198_51_100_30',),
        'partners.dailybrief.example',
        'rp.partners.dailybrief.example',
        'b',
        ('q4', 'q4-retry'),
    ),
)

# Recipient domains: (domain, weight %, ISP profile name or None, MX host, corpus providers of its replies).
DOMAINS = (
    ('gmail.com', 30, 'gmail', 'gmail-smtp-in.l.google.com', ('gmail',)),
    ('yahoo.com', 8, 'yahoo', 'mta7.am0.yahoodns.net', ('yahoo',)),
    ('aol.com', 2, 'yahoo', 'mx-aol.mail.gm0.yahoodns.net', ('aol', 'yahoo')),
    ('hotmail.com', 7, 'microsoft', 'hotmail-com.olc.protection.outlook.com', ('microsoft-consumer',)),
    ('outlook.com', 5, 'microsoft', 'outlook-com.olc.protection.outlook.com', ('microsoft-consumer',)),
    ('gmx.de', 4, 'gmx_webde', 'mx00.emig.gmx.net', ('gmx_webde',)),
    ('web.de', 4, 'gmx_webde', 'mx-ha02.web.de', ('gmx_webde',)),
    ('t-online.de', 3, 't_online', 'mx00.t-online.de', ('t-online',)),
    ('orange.fr', 3, 'orange', 'smtp-in.orange.fr', ('orange',)),
    ('icloud.com', 4, 'apple', 'mx01.mail.icloud.com', ('apple',)),
    ('comcast.net', 2, 'comcast', 'mx1a1.comcast.net', ('comcast',)),
)
OTHER_SHARE = 28
"""% of recipients on 2,000 other domains (companies on Microsoft 365, Exchange, Exim, Postfix, qmail)."""
OTHER_PROVIDERS = ('postfix', 'exim', 'microsoft-365', 'exchange', 'other', 'qmail')
FIRST_ATTEMPT = (0.88, 0.96)  # sent below the first, deferred below the second, else bounced
RETRY = (0.45, 0.95)
MAX_DEFERRALS = 5
RETRY_AFTER = (200, 2500)  # messages later
ASYNC_DSN = 0.005
CONNECT_FAILURES = (
    'connect to {mx}[{ip}]:25: Connection timed out',
    'connect to {mx}[{ip}]:25: Connection refused',
    'lost connection with {mx}[{ip}] while receiving the initial server greeting',
)
PIPE = 'mailinfra-feedback'


def _reply_texts() -> dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
    """provider -> (deferral texts, bounce texts) as (dsn, text), from the bounce corpus."""
    data = yaml.safe_load(CORPUS.read_text(encoding='utf-8'))
    result: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]]]] = {}
    for entry in data['texts']:
        text = ' '.join(str(entry['text']).split())
        code = re.match(r'([45])\d\d[ -]', text)
        if code is None:
            continue
        found = re.search(r'\b([45]\.\d{1,3}\.\d{1,3})\b', text)
        status = str(entry.get('status') or (found.group(1) if found else f'{code.group(1)}.0.0'))
        if status[0] != code.group(1):
            status = f'{code.group(1)}.0.0'
        deferrals, bounces = result.setdefault(entry['provider'], ([], []))
        (deferrals if code.group(1) == '4' else bounces).append((status, text))
    return result


@dataclass
class _Message:
    instance: str
    stream: Stream
    queue_id: str
    sender: str
    recipient: str
    domain: tuple[str, int, str | None, str, tuple[str, ...]]
    ip_key: str
    size: int
    deferrals: int = 0


class Generator:
    def __init__(self, lines: int, seed: int, start: dt.datetime) -> None:
        self.target = lines
        self.rng = random.Random(seed)
        self.step = 86400.0 / max(lines, 1)  # one day of traffic
        self.clock = start.timestamp()
        self.out: list[str] = []
        self.tags: list[str] = []
        self.used_ids: set[str] = set()
        self.texts = _reply_texts()
        self.other_domains = [f'{self._word()}{n}.example' for n in range(2000)]
        self.pids = {name: self.rng.randrange(1000, 30000) for name in ('qmgr', 'anvil', 'scache', 'pipe', 'local')}
        self._stamp_second = -1
        self._stamp = ''
        self.tie = 0

    # --- output ---------------------------------------------------------------------------------------------------

    def line(self, program: str, text: str, tag: str = '') -> None:
        self.clock += self.step * self.rng.uniform(0.5, 1.5)
        second = int(self.clock)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = dt.datetime.fromtimestamp(second, dt.UTC).strftime('%b %e %H:%M:%S')
        self.out.append(f'{self._stamp} {HOST} {program}: {text}')
        self.tags.append(tag)

    def pid(self) -> int:
        return self.rng.randrange(1000, 65000)

    def queue_id(self) -> str:
        while True:
            value = f'{self.rng.getrandbits(44):011X}'
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def _word(self) -> str:
        return ''.join(self.rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(self.rng.randrange(4, 10)))

    # --- traffic --------------------------------------------------------------------------------------------------

    def generate(self) -> list[str]:
        pending: list[tuple[int, int, _Message]] = []
        serial = 0
        while len(self.out) < self.target:
            if pending and pending[0][0] <= serial:
                _, _, message = heapq.heappop(pending)
                self._retry(message, pending, serial)
                continue
            stream = self._stream()
            batch = self.rng.randrange(1, 21)
            instance = f'postfix-{stream.name}'
            smtpd = f'{instance}/inject/smtpd[{self.pid()}]'
            client = f'app{self.rng.randrange(1, 4)}.dailybrief.example[192.0.2.{self.rng.randrange(10, 14)}]'
            self.line(smtpd, f'connect from {client}')
            for _ in range(batch):
                serial += 1
                self.tie += 1
                message = self._inject(stream, instance, smtpd, client, serial)
                outcome = self._attempt(message, FIRST_ATTEMPT)
                if outcome == 'deferred':
                    heapq.heappush(pending, (serial + self.rng.randrange(*RETRY_AFTER), self.tie, message))
                self._noise()
            self.line(smtpd, f'disconnect from {client} ehlo=1 auth=1 mail={batch} rcpt={batch} data={batch} quit=1')
        del self.out[self.target :]
        del self.tags[self.target :]
        return self.out

    def _stream(self) -> Stream:
        roll = self.rng.random()
        for stream in STREAMS:
            roll -= stream.share
            if roll < 0:
                return stream
        return STREAMS[-1]

    def _inject(self, stream: Stream, instance: str, smtpd: str, client: str, serial: int) -> _Message:
        queue_id = self.queue_id()
        domain = self._domain()
        recipient = f'{self._word()}.{self._word()}{self.rng.randrange(100)}@{domain[0]}'
        sender = verp.encode(
            [BENCH_KEY],
            stream=stream.name,
            domain=stream.return_domain,
            prefix=stream.prefix,
            segment=self.rng.choice(stream.segments),
            campaign=str(4700 + serial // 50_000),
            message_id=str(serial),
            recipient=recipient,
        )
        message = _Message(
            instance,
            stream,
            queue_id,
            sender,
            recipient,
            domain,
            self.rng.choice(stream.ip_keys),
            self.rng.randrange(3_000, 120_000),
        )
        sasl = f'sasl_method=PLAIN, sasl_username={stream.name}-app'
        self.line(smtpd, f'{queue_id}: client={client}, {sasl}')
        cleanup = f'{instance}/cleanup[{self.pid()}]'
        self.line(cleanup, f'{queue_id}: message-id=<{serial}.{stream.name}@app.{stream.from_domain}>')
        self.line(
            f'opendkim[{self.pids["anvil"] + 7}]',
            f'{queue_id}: DKIM-Signature field added (s=s2026, d={stream.from_domain})',
        )
        self._qmgr_from(message, 'Q')
        return message

    def _qmgr_from(self, message: _Message, tag: str) -> None:
        self.line(
            f'{message.instance}/qmgr[{self.pids["qmgr"]}]',
            f'{message.queue_id}: from=<{message.sender}>, size={message.size}, nrcpt=1 (queue active)',
            tag,
        )

    def _domain(self) -> tuple[str, int, str | None, str, tuple[str, ...]]:
        roll = self.rng.randrange(100)
        for entry in DOMAINS:
            roll -= entry[1]
            if roll < 0:
                return entry
        name = self.rng.choice(self.other_domains)
        return (name, 0, None, f'mx{self.rng.randrange(1, 3)}.{name}', OTHER_PROVIDERS)

    def _relay(self, message: _Message) -> tuple[str, str]:
        name = message.domain[3]
        ip = f'203.0.113.{sum(map(ord, name)) % 250 + 1}'
        return name, ip

    def _reply(self, message: _Message, deferral: bool) -> tuple[str, str]:
        providers = message.domain[4]
        choices: list[tuple[str, str]] = []
        for provider in providers:
            choices += self.texts.get(provider, ([], []))[0 if deferral else 1]
        if not choices:
            choices = self.texts['postfix'][0 if deferral else 1]
        return self.rng.choice(choices)

    def _attempt(self, message: _Message, odds: tuple[float, float]) -> str:
        roll = self.rng.random()
        isp = message.domain[2]
        transport = f'out_{message.ip_key}' + (f'__{isp}' if isp else '')
        program = f'{message.instance}/{transport}/smtp[{self.pid()}]'
        mx, ip = self._relay(message)
        delay = 0.4 + message.deferrals * 900 + self.rng.random() * 3
        delays = f'delay={delay:.1f}, delays={delay - 0.3:.1f}/0.02/0.1/0.18'
        head = f'{message.queue_id}: to=<{message.recipient}>'
        if self.rng.random() < 0.25:
            self.line(
                program,
                f'Trusted TLS connection established to {mx}[{ip}]:25: TLSv1.3 with cipher '
                'TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits)',
            )
        if roll < odds[0]:
            if isp == 'gmail':
                reply = f'250 2.0.0 OK  {self.rng.randrange(10**9, 10**10)} {self._word()}.{self._word()} - gsmtp'
            else:
                reply = f'250 2.0.0 Ok: queued as {self.queue_id()}'
            self.line(program, f'{head}, relay={mx}[{ip}]:25, {delays}, dsn=2.0.0, status=sent ({reply})', 'S')
            self._removed(message)
            if self.rng.random() < ASYNC_DSN:
                self._arrives(message.sender, f'{mx}[{ip}]', 'A')
            return 'sent'
        if roll < odds[1]:
            if self.rng.random() < 0.15:
                text = self.rng.choice(CONNECT_FAILURES).format(mx=mx, ip=ip)
                self.line(program, f'{head}, relay=none, {delays}, dsn=4.4.1, status=deferred ({text})', 'D:')
            else:
                dsn, reply = self._reply(message, True)
                said = f'host {mx}[{ip}] said: {reply} (in reply to RCPT TO command)'
                self.line(program, f'{head}, relay={mx}[{ip}]:25, {delays}, dsn={dsn}, status=deferred ({said})', 'D:')
            self.tags[-1] = 'D:' + message.queue_id
            message.deferrals += 1
            return 'deferred'
        dsn, reply = self._reply(message, False)
        said = f'host {mx}[{ip}] said: {reply} (in reply to RCPT TO command)'
        self.line(program, f'{head}, relay={mx}[{ip}]:25, {delays}, dsn={dsn}, status=bounced ({said})', 'B')
        self._notify(message)
        return 'bounced'

    def _retry(self, message: _Message, pending: list[tuple[int, int, _Message]], serial: int) -> None:
        if message.deferrals >= MAX_DEFERRALS:
            self.line(
                f'{message.instance}/qmgr[{self.pids["qmgr"]}]',
                f'{message.queue_id}: from=<{message.sender}>, status=expired, returned to sender',
                'X',
            )
            self._notify(message)
            return
        self._qmgr_from(message, 'R')
        if self._attempt(message, RETRY) == 'deferred':
            self.tie += 1
            heapq.heappush(pending, (serial + self.rng.randrange(*RETRY_AFTER), self.tie, message))

    def _removed(self, message: _Message) -> None:
        self.line(f'{message.instance}/qmgr[{self.pids["qmgr"]}]', f'{message.queue_id}: removed')

    def _notify(self, message: _Message) -> None:
        """The bounce daemon's non-delivery notification, its delivery to the VERP address and its arrival."""
        notice = self.queue_id()
        instance = message.instance
        stamp = dt.datetime.fromtimestamp(int(self.clock), dt.UTC).strftime('%Y%m%d%H%M%S')
        self.line(f'{instance}/cleanup[{self.pid()}]', f'{notice}: message-id=<{stamp}.{notice}@{HOST_FQDN}>')
        self.line(
            f'{instance}/qmgr[{self.pids["qmgr"]}]',
            f'{notice}: from=<>, size={self.rng.randrange(2500, 9000)}, nrcpt=1 (queue active)',
            'N',
        )
        self.line(f'{instance}/bounce[{self.pid()}]', f'{message.queue_id}: sender non-delivery notification: {notice}')
        self._removed(message)
        address = message.sender
        relay = f'{HOST_FQDN}[198.51.100.5]:25'
        self.line(
            f'{instance}/out_{message.ip_key}/smtp[{self.pid()}]',
            f'{notice}: to=<{address}>, relay={relay}, delay=0.2, delays=0.01/0.01/0.1/0.08, dsn=2.0.0, '
            f'status=sent (250 2.0.0 Ok: queued as {self.queue_id()})',
            'SN',
        )
        self.line(f'{instance}/qmgr[{self.pids["qmgr"]}]', f'{notice}: removed')
        self._arrives(address, f'{HOST_FQDN}[198.51.100.{10 + STREAMS.index(message.stream) * 10}]', 'P')

    def _arrives(self, address: str, client: str, tag: str) -> None:
        """A DSN for ``address`` arrives on the primary instance (the bounce MX) and goes to the ingest pipe."""
        queue_id = self.queue_id()
        smtpd = f'postfix/smtpd[{self.pid()}]'
        self.line(smtpd, f'connect from {client}')
        self.line(smtpd, f'{queue_id}: client={client}', 'RCV')
        self.line(
            f'postfix/cleanup[{self.pid()}]', f'{queue_id}: message-id=<{self.queue_id()}@{client.split("[")[0]}>'
        )
        self.line(
            f'postfix/qmgr[{self.pids["qmgr"] + 1}]',
            f'{queue_id}: from=<>, size={self.rng.randrange(3000, 12000)}, nrcpt=1 (queue active)',
            'N',
        )
        self.line(smtpd, f'disconnect from {client} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5')
        self.line(
            f'postfix/pipe[{self.pids["pipe"]}]',
            f'{queue_id}: to=<{address}>, relay={PIPE}, delay=0.15, delays=0.05/0.01/0/0.09, dsn=2.0.0, '
            f'status=sent (delivered via {PIPE} service)',
            tag,
        )
        self.line(f'postfix/qmgr[{self.pids["qmgr"] + 1}]', f'{queue_id}: removed')

    def _noise(self) -> None:
        roll = self.rng.random()
        if roll < 0.10:  # an outside client that tries to relay through the bounce MX
            ip = f'198.18.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}'
            smtpd = f'postfix/smtpd[{self.pid()}]'
            self.line(smtpd, f'connect from unknown[{ip}]')
            victim = f'{self._word()}@{self.rng.choice(self.other_domains)}'
            self.line(
                smtpd,
                f'NOQUEUE: reject: RCPT from unknown[{ip}]: 454 4.7.1 <{victim}>: Relay access denied; '
                f'from=<{self._word()}@{self._word()}.example> to=<{victim}> proto=ESMTP helo=<{self._word()}>',
                'J',
            )
            self.line(smtpd, f'disconnect from unknown[{ip}] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4')
        elif roll < 0.13:
            instance = f'postfix-{self.rng.choice(STREAMS).name}'
            self.line(
                f'{instance}/anvil[{self.pids["anvil"]}]',
                'statistics: max connection rate 4/60s for '
                f'(inject:192.0.2.{self.rng.randrange(10, 14)}) at Dec  5 06:00:00',
            )
        elif roll < 0.15:
            instance = f'postfix-{self.rng.choice(STREAMS).name}'
            self.line(
                f'{instance}/scache[{self.pids["scache"]}]', 'statistics: domain lookup hits=12 miss=3 success=80%'
            )
        elif roll < 0.16:
            self.line(
                f'postfix/smtpd[{self.pid()}]',
                f'warning: hostname {self._word()}.example does not resolve to '
                f'address 198.18.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}: Name or service not known',
            )
        elif roll < 0.20:
            program, text = self.rng.choice(
                (
                    ('CRON[{}]', '(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)'),
                    ('systemd[1]', 'Started session-{}.scope - Session of User root.'),
                    ('sshd[{}]', 'Connection closed by 198.18.7.{} port 51022 [preauth]'),
                    ('dovecot[{}]', 'imap-login: Disconnected: Connection closed (no auth attempts in 0 secs)'),
                    ('kernel', '[UFW BLOCK] IN=eth0 OUT= SRC=198.18.3.{} DST=198.51.100.5 PROTO=TCP DPT=23'),
                )
            )
            self.line(program.format(self.pid()), text.format(self.rng.randrange(1, 250)))
        elif roll < 0.2005:
            self._garbage()

    def _garbage(self) -> None:
        kind = self.rng.randrange(3)
        queue_id = f'{self.rng.getrandbits(44):011X}'
        if kind == 0:  # a delivery line cut by a full disk or a crash
            self.line(
                f'postfix-marketing/out_198_51_100_20__gmail/smtp[{self.pid()}]',
                f'{queue_id}: to=<{self._word()}@gmail.com>, relay=gmail-smtp-in.l.google.com[203.0.113.25]:25, del',
                'T',
            )
        elif kind == 1:  # the tail of a line whose start was lost
            self.out.append(f'ys=0.1/0.02/0.1/0.18, dsn=2.0.0, status=sent (250 2.0.0 OK {self.pid()} - gsmtp)')
            self.tags.append('G')
        else:  # bytes that are not UTF-8
            self.line(f'dovecot[{self.pid()}]', 'auth: Error: user caf\udce9: unknown charset \udcff\udcfe')


def _truth_of(lines: list[str], tags: list[str]) -> dict[str, Any]:
    programs: Counter[str] = Counter()
    for line in lines:
        fields = line.split(None, 5)
        name = fields[4].split('[', 1)[0].rstrip(':') if len(fields) > 5 else '(no header)'
        programs['postfix ' + name.rsplit('/', 1)[-1] if name.startswith('postfix') else 'other programs'] += 1
    counts: Counter[str] = Counter()
    deferred_ids: set[str] = set()
    for tag in tags:
        if not tag:
            continue
        if tag.startswith('D:'):
            counts['D'] += 1
            deferred_ids.add(tag[2:])
        else:
            counts[tag] += 1
    return {
        'sent_stream': counts['S'],
        'sent_notifications': counts['SN'],
        'sent_pipe_own_notifications': counts['P'],
        'sent_pipe_provider_dsns': counts['A'],
        'sent_total': counts['S'] + counts['SN'] + counts['P'] + counts['A'],
        'deferred_lines': counts['D'],
        'deferred_messages': len(deferred_ids),
        'bounced': counts['B'],
        'expired': counts['X'],
        'notifications_queued': counts['N'],
        'messages_injected': counts['Q'],
        'retries': counts['R'],
        'received_on_primary': counts['RCV'],
        'rejected': counts['J'],
        'garbage_truncated': counts['T'],
        'garbage_headless': counts['G'],
        'lines_by_program': dict(sorted(programs.items())),
    }


def build(lines: int, seed: int = 5737, start: dt.datetime | None = None) -> tuple[list[str], dict[str, Any]]:
    """The log lines (without line ends) and the truth: what they contain, counted from the kept lines."""
    generator = Generator(lines, seed, start or dt.datetime(2026, 12, 4, tzinfo=dt.UTC))
    out = generator.generate()
    truth = _truth_of(out, generator.tags)
    truth['lines'] = len(out)
    return out, truth


def iter_bytes(lines: list[str]) -> Iterator[bytes]:
    for line in lines:
        yield line.encode('utf-8', 'surrogateescape') + b'\n'


def write(path: Path, lines: list[str], truth: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('wb') as handle:
        chunk: list[bytes] = []
        for data in iter_bytes(lines):
            chunk.append(data)
            if len(chunk) >= 10_000:
                handle.write(b''.join(chunk))
                chunk.clear()
        handle.write(b''.join(chunk))
    Path(f'{path}.truth.json').write_text(json.dumps(truth, indent=2, sort_keys=True) + '\n', encoding='utf-8')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--lines', type=int, default=1_000_000)
    parser.add_argument('--seed', type=int, default=5737)
    parser.add_argument('--start', default='2026-12-04T00:00:00+00:00', help='time of the first line (one day)')
    parser.add_argument('--output', type=Path, required=True)
    args = parser.parse_args(argv)
    lines, truth = build(args.lines, args.seed, dt.datetime.fromisoformat(args.start))
    write(args.output, lines, truth)
    print(json.dumps(truth, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
