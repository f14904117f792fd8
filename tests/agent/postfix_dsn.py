"""Make real Postfix DSNs: a throw-away Postfix instance relays to a loopback SMTP sink that refuses some recipients.

The sink (a few lines of socket code, 127.0.0.1 only) answers ``RCPT TO`` by the recipient's local part:
``unknown*`` -> ``550 5.1.1 ... User unknown``, ``full*`` -> ``452 4.2.2 ... Mailbox full``, anything else -> 250.
Mail for the bounce domain is accepted and kept: those are the DSNs Postfix's bounce daemon sends to the
envelope sender. The instance has its own queue, log and ports in a temporary directory (like
``mailinfra_agent.postfix.trial``), and nothing of /etc/postfix is changed. Root only.

``python -m tests.agent.postfix_dsn DIR`` writes the samples in ``tests/data/feedback/messages/`` (README there).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailinfra_agent.feedback import verp
from mailinfra_agent.postfix.trial import free_port

RECIPIENT_DOMAIN = 'r.test'
BOUNCE_DOMAIN = 'bounces.example.test'
HOSTNAME = 'mta1.example.test'
TEST_KEYS = (b'mailinfra-test-key-feedback-samples-not-secret-0001',)
"""The VERP signing key of the samples: a test fixture, never used anywhere else."""


def verp_sender(**fields: str) -> str:
    """A signed VERP return path of stream ``marketing`` in the bounce domain, signed with :data:`TEST_KEYS`."""
    return verp.encode(TEST_KEYS, stream='marketing', domain=BOUNCE_DOMAIN, **fields)


@dataclass
class Received:
    """One message the sink accepted: envelope sender, recipients and the DATA bytes."""

    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class Sink:
    """A loopback SMTP server with per-recipient answers (see the module docstring)."""

    port: int
    received: list[Received] = field(default_factory=list)
    _server: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self._server = socket.create_server(('127.0.0.1', self.port))
        self._server.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()

    def _serve(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._session, args=(connection,), daemon=True).start()

    def _session(self, connection: socket.socket) -> None:
        with connection, connection.makefile('rwb') as stream:

            def reply(line: str) -> None:
                stream.write(line.encode('ascii') + b'\r\n')
                stream.flush()

            reply('220 sink.example.test ESMTP')
            sender, recipients = '', list[str]()
            while line := stream.readline():
                command = line.decode('ascii', 'replace').strip()
                verb = command[:4].upper()
                if verb in ('EHLO', 'HELO'):
                    reply('250-sink.example.test\r\n250 8BITMIME' if verb == 'EHLO' else '250 sink.example.test')
                elif verb == 'MAIL':
                    sender, recipients = command.split(':', 1)[1].split()[0].strip('<>'), []
                    reply('250 2.1.0 Ok')
                elif verb == 'RCPT':
                    address = command.split(':', 1)[1].split()[0].strip('<>')
                    local = address.split('@')[0]
                    if local.startswith('unknown'):
                        reply(
                            f'550 5.1.1 <{address}>: Recipient address rejected: User unknown in virtual mailbox table'
                        )
                    elif local.startswith('full'):
                        reply(f'452 4.2.2 <{address}>: Recipient address rejected: Mailbox full')
                    else:
                        recipients.append(address)
                        reply('250 2.1.5 Ok')
                elif verb == 'DATA':
                    reply('354 End data with <CR><LF>.<CR><LF>')
                    data = bytearray()
                    while (chunk := stream.readline()) not in (b'.\r\n', b''):
                        data += chunk[1:] if chunk.startswith(b'..') else chunk
                    self.received.append(Received(sender, list(recipients), bytes(data)))
                    reply('250 2.0.0 Ok: queued as SINK')
                elif verb == 'QUIT':
                    reply('221 2.0.0 Bye')
                    return
                else:
                    reply('250 2.0.0 Ok')


def _postconf(config: str, *settings: str) -> None:
    subprocess.run(['postconf', '-c', config, '-e', *settings], check=True, capture_output=True)


def make_dsns(sends: list[tuple[str, str, list[str], list[str]]], *, timeout: float = 60.0) -> list[Received]:
    """Send each ``(sender, message id, recipients, NOTIFY options)`` through a throw-away Postfix; the DSNs it
    returned to the bounce domain, in arrival order (stops when each sender got one or at ``timeout``)."""
    if os.geteuid() != 0 or shutil.which('postfix') is None:
        raise OSError('needs root and Postfix')
    root = tempfile.mkdtemp(prefix='mailinfra-dsn-')
    os.chmod(root, 0o755)
    config = os.path.join(root, 'config')
    os.mkdir(config)
    for directory in ('queue', 'data'):
        os.mkdir(os.path.join(root, directory))
    owner = pwd.getpwnam('postfix')
    os.chown(os.path.join(root, 'data'), owner.pw_uid, owner.pw_gid)
    sink = Sink(free_port())
    listen = free_port()
    master = Path('/etc/postfix/master.cf').read_text(encoding='utf-8').replace('smtp      inet', '#smtp inet', 1)
    Path(config, 'master.cf').write_text(master + f'127.0.0.1:{listen} inet n - n - - smtpd\n', encoding='utf-8')
    Path(config, 'main.cf').write_text('compatibility_level = 3.6\n', encoding='utf-8')
    destination = f'smtp:[127.0.0.1]:{sink.port}'
    _postconf(
        config,
        f'myhostname={HOSTNAME}',
        'mydestination=',
        'alias_maps=',
        'alias_database=',
        'inet_interfaces=loopback-only',
        'inet_protocols=ipv4',
        f'queue_directory={root}/queue',
        f'data_directory={root}/data',
        f'maillog_file={root}/maillog',
        f'maillog_file_prefixes={root}',
        'mynetworks=127.0.0.0/8',
        f'transport_maps=inline:{{{RECIPIENT_DOMAIN}={destination}, {BOUNCE_DOMAIN}={destination}}}',
        'smtp_tls_security_level=none',
        'delay_warning_time=1s',
        'queue_run_delay=1s',
        'minimal_backoff_time=1s',
        'maximal_backoff_time=2s',
    )
    sink.start()
    running = False
    try:
        started = subprocess.run(['postfix', '-c', config, 'start'], capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise OSError(f'postfix start: {started.stderr.strip()}')
        running = True
        for sender, message_id, recipients, notify in sends:
            message = (
                f'From: Newsletter <news@example.test>\r\nTo: {", ".join(recipients)}\r\n'
                f'Subject: DSN sample\r\nMessage-ID: <{message_id}>\r\nDate: Sun, 06 Dec 2026 06:00:00 +0000\r\n'
                f'List-Id: <news.example.test>\r\n\r\nHello.\r\n'
            )
            with smtplib.SMTP('127.0.0.1', listen, local_hostname='app.example.test', timeout=20) as client:
                client.sendmail(sender, recipients, message, rcpt_options=notify)
        deadline = time.monotonic() + timeout
        wanted = {sender for sender, *_ in sends}
        while time.monotonic() < deadline and not wanted <= {r for m in sink.received for r in m.recipients}:
            time.sleep(0.2)
        time.sleep(1.0)
        return [message for message in sink.received if message.sender == '']
    finally:
        if running:
            subprocess.run(['postfix', '-c', config, 'stop'], capture_output=True, check=False)
            wait_stopped(os.path.join(root, 'queue', 'pid', 'master.pid'))
        sink.stop()
        shutil.rmtree(root, ignore_errors=True)


def wait_stopped(pid_file: str | Path) -> None:
    """Wait until the instance's master has exited (its pid file stays behind); kill it after 10 s."""
    try:
        pid = int(Path(pid_file).read_text(encoding='ascii').strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):  # it exited at the deadline
        os.kill(pid, signal.SIGKILL)


SAMPLES = [
    # (file, sender (the return path), message id, recipients, NOTIFY)
    (
        'postfix-failed.eml',
        verp_sender(segment='7', recipient=f'unknown1@{RECIPIENT_DOMAIN}'),
        'failed.1@example.test',
        [f'unknown1@{RECIPIENT_DOMAIN}'],
        [],
    ),
    (
        'postfix-failed-two.eml',
        verp_sender(segment='7', campaign='42', message_id='1002'),
        'failed.2@example.test',
        [f'unknown.one@{RECIPIENT_DOMAIN}', f'unknown.two@{RECIPIENT_DOMAIN}', f'ok@{RECIPIENT_DOMAIN}'],
        [],
    ),
    (
        'postfix-delayed.eml',
        verp_sender(segment='7', campaign='42'),
        'delayed.1@example.test',
        [f'full.box@{RECIPIENT_DOMAIN}'],
        [],
    ),
    (
        'postfix-relayed.eml',
        f'bounces@{BOUNCE_DOMAIN}',
        'relayed.1@example.test',
        [f'Someone@{RECIPIENT_DOMAIN}'],
        ['NOTIFY=SUCCESS', f'ORCPT=rfc822;Someone@{RECIPIENT_DOMAIN}'],
    ),
]


def main(directory: str) -> int:
    dsns = make_dsns([(sender, message_id, rcpts, notify) for _, sender, message_id, rcpts, notify in SAMPLES])
    for name, sender, *_ in SAMPLES:
        found = [dsn for dsn in dsns if sender in dsn.recipients]
        if not found:
            print(f'{name}: no DSN arrived for {sender}', file=sys.stderr)
            return 1
        Path(directory, name).write_bytes(found[0].data)
        print(f'{name}: {len(found[0].data)} bytes, envelope recipient {sender}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
