"""Capture real Postfix log lines for the log parser tests (as root: ``python tests/data/feedback/logs/capture.py``).

Runs the golden cold_outreach instance of newsletter-publisher/mx1 in a throw-away instance (the trial's set-up,
``mailinfra_agent.postfix.trial``), its bind addresses moved to 127.0.0.1, against a small SMTP sink on loopback
that answers RCPT by the recipient's local part: ``bad*`` 550 5.1.1, ``soft*`` 450 4.2.1, anything else 250.
Prints the instance's own log (``maillog_file``, written by postlogd) to stdout.
"""

from __future__ import annotations

import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mailinfra_agent.postfix import trial

GOLDEN = Path(__file__).resolve().parents[3] / 'golden/newsletter-publisher/mta/mx1/etc/postfix-cold_outreach'
VERP = 'bounces+c7.s2.m{n}-x9f3@sink.invalid'


def reply(rcpt: str) -> bytes:
    local = rcpt.split('<', 1)[-1].split('@', 1)[0].lower()
    if local.startswith('bad'):
        return b'550 5.1.1 <' + local.encode() + b'@sink.invalid>: Recipient address rejected: User unknown\r\n'
    if local.startswith('soft'):
        return b'450 4.2.1 The user you are trying to contact is receiving mail too quickly\r\n'
    return b'250 2.1.5 Ok\r\n'


def serve(connection: socket.socket) -> None:
    with connection, connection.makefile('rb') as reader:
        connection.sendall(b'220 sink.invalid ESMTP\r\n')
        for raw in reader:
            command = raw.decode('ascii', 'replace').strip()
            verb = command[:4].upper()
            if verb in ('EHLO', 'HELO'):
                connection.sendall(b'250-sink.invalid\r\n250 8BITMIME\r\n')
            elif verb == 'RCPT':
                connection.sendall(reply(command))
            elif verb == 'DATA':
                connection.sendall(b'354 go ahead\r\n')
                for body in reader:
                    if body in (b'.\r\n', b'.\n'):
                        break
                connection.sendall(b'250 2.0.0 Ok: queued as SINK1\r\n')
            elif verb == 'QUIT':
                connection.sendall(b'221 2.0.0 Bye\r\n')
                return
            else:
                connection.sendall(b'250 2.0.0 Ok\r\n')


def sink(listener: socket.socket) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(connection,), daemon=True).start()


def main() -> int:
    root = tempfile.mkdtemp(prefix='mailinfra-capture-')
    os.chmod(root, 0o755)
    staged = os.path.join(root, 'staged')
    shutil.copytree(GOLDEN, staged)
    master = Path(staged, 'master.cf')
    master.write_text(re.sub(r'smtp_bind_address=[0-9.]+', 'smtp_bind_address=127.0.0.1', master.read_text()))
    listener = socket.create_server(('127.0.0.1', 0))
    port = listener.getsockname()[1]
    threading.Thread(target=sink, args=(listener,), daemon=True).start()
    work = os.path.join(root, 'work')
    os.mkdir(work)
    moved = trial._prepare(staged, work, port)
    config = os.path.join(work, 'config')
    routes = subprocess.run(['postconf', '-c', config, '-h', 'transport_maps'], capture_output=True, text=True).stdout
    gmail = f'inline:{{gmail.test=out_198_51_100_30__gmail:[127.0.0.1]:{port}}}'
    settings = [
        'smtpd_milters=',
        'non_smtpd_milters=',
        'smtpd_tls_security_level=none',
        f'transport_maps={gmail}, {routes.strip()}',
        'maximal_queue_lifetime=30s',
        'bounce_queue_lifetime=30s',
        'minimal_backoff_time=5s',
        'maximal_backoff_time=10s',
        'queue_run_delay=5s',
    ]
    subprocess.run(['postconf', '-c', config, '-e', *settings], check=True)
    subprocess.run(['postfix', '-c', config, 'start'], check=True)
    try:
        host, port_text = moved[0].rsplit(':', 1)
        batches = [
            ['ok1@sink.invalid', 'bad1@sink.invalid', 'soft1@sink.invalid'],
            ['ok2@gmail.test'],
            ['soft2@sink.invalid'],
        ]
        for number, recipients in enumerate(batches, 1):
            message = (
                f'From: <news@sink.invalid>\r\nTo: <{recipients[0]}>\r\nSubject: capture {number}\r\n'
                f'Message-ID: <capture-{number}@news.sink.invalid>\r\n\r\ncapture {number}\r\n'
            )
            with smtplib.SMTP(host, int(port_text), local_hostname='app.invalid', timeout=20) as client:
                client.sendmail(VERP.format(n=number), recipients, message)
        time.sleep(int(os.environ.get('CAPTURE_SECONDS', '75')))  # retries until the 30 s lifetime expires
        subprocess.run(['postqueue', '-c', config, '-f'], check=False)
        time.sleep(10)
    finally:
        subprocess.run(['postfix', '-c', config, 'stop'], check=False)
        listener.close()
    sys.stdout.write(Path(work, 'maillog').read_text(encoding='utf-8', errors='surrogateescape'))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
