#!/usr/bin/python3
"""A recording SMTP sink for the "feedback" scenario that answers per recipient (standard library only).

Usage: smtp_sink.py ADDRESS PORT

RCPT TO a local part "gone" or "gone-..." -> "550 5.1.1 ... User unknown" (a hard bounce);
RCPT TO a local part "throttled" -> "421 4.7.28 ..." and the connection is closed (Gmail's rate limit);
so does every RCPT from a client address to a recipient domain listed together in /var/lib/mailinfra-sink/throttle
(lines "CLIENT DOMAIN", read at each RCPT; e.g. "192.0.2.20 gmail.com": Gmail limits that sending IP only), and
each such refusal is written to /var/lib/mailinfra-sink/refused/<n>.json (time, client, sender, recipient);
any other recipient is accepted, and each accepted message is written to
/var/lib/mailinfra-sink/messages/<n>.json (time, client, envelope, message).
"""

import json
import socketserver
import sys
import threading
import time
from pathlib import Path

STATE = Path('/var/lib/mailinfra-sink/messages')
REFUSED = Path('/var/lib/mailinfra-sink/refused')
THROTTLE = Path('/var/lib/mailinfra-sink/throttle')
RATE_LIMIT = '421 4.7.28 Our system has detected an unusual rate of unsolicited mail; try later'
LOCK = threading.Lock()
COUNTER = [0]


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b'\r\n')

    def rcpt(self, recipient: str, sender: str, recipients: list[str]) -> bool:
        """Answer RCPT TO; False when the connection is to be closed (after a 421)."""
        local = recipient.split('@', 1)[0].lower()
        if local == 'gone' or local.startswith('gone-'):
            self.reply(f'550 5.1.1 <{recipient}>: Recipient address rejected: User unknown')
            return True
        if local == 'throttled':
            self.reply(RATE_LIMIT)
            return False
        if throttled(self.client_address[0], recipient):
            record = {'time': time.time(), 'client': self.client_address[0], 'sender': sender, 'recipient': recipient}
            (REFUSED / f'{next_number()}.json').write_text(json.dumps(record))
            self.reply(RATE_LIMIT)
            return False
        recipients.append(recipient)
        self.reply('250 2.1.5 Ok')
        return True

    def handle(self) -> None:
        self.reply('220 sink.test ESMTP test sink')
        sender, recipients = '', []
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            command = line.decode('utf-8', 'replace').strip()
            verb = command[:4].upper()
            if verb in ('EHLO', 'HELO'):
                self.reply('250 sink.test')
            elif verb == 'MAIL':
                sender, recipients = command[10:].strip(), []
                self.reply('250 2.1.0 Ok')
            elif verb == 'RCPT':
                if not self.rcpt(command[8:].strip().strip('<>'), sender, recipients):
                    return
            elif verb == 'DATA':
                if not recipients:
                    self.reply('554 5.5.1 No valid recipients')
                    continue
                self.reply('354 End data with <CR><LF>.<CR><LF>')
                data = []
                while True:
                    chunk = self.rfile.readline(65536)
                    if not chunk or chunk in (b'.\r\n', b'.\n'):
                        break
                    data.append(chunk[1:] if chunk.startswith(b'..') else chunk)
                number = next_number()
                record = {
                    'time': time.time(),
                    'client': self.client_address[0],
                    'sender': sender,
                    'recipients': recipients,
                    'data': b''.join(data).decode('utf-8', 'replace'),
                }
                (STATE / f'{number}.json').write_text(json.dumps(record))
                self.reply('250 2.0.0 Ok: queued')
            elif verb == 'RSET':
                sender, recipients = '', []
                self.reply('250 2.0.0 Ok')
            elif verb == 'QUIT':
                self.reply('221 2.0.0 Bye')
                return
            else:
                self.reply('250 2.0.0 Ok')


def next_number() -> int:
    with LOCK:
        COUNTER[0] += 1
        return COUNTER[0]


def throttled(client: str, recipient: str) -> bool:
    try:
        lines = THROTTLE.read_text().splitlines()
    except FileNotFoundError:
        return False
    domain = recipient.rpartition('@')[2].lower()
    return any(line.split() == [client, domain] for line in lines)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    REFUSED.mkdir(parents=True, exist_ok=True)
    with Server((sys.argv[1], int(sys.argv[2])), Handler) as server:
        server.serve_forever()


if __name__ == '__main__':
    main()
