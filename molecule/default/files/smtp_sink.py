#!/usr/bin/python3
"""A recording SMTP sink for the Molecule scenario (standard library only).

Usage: smtp_sink.py ADDRESS [ADDRESS ...]      (listens on port 10025 of each address)

Port 25 of the host belongs to our own MX (Postfix listens on every address), so the sinks listen on
10025 and prepare.yml redirects connections to port 25 of their addresses there (nftables DNAT in the
output hook); the client address the sink sees is unchanged.

Every accepted message is written to /var/lib/mailinfra-sink/messages/<n>.json with the sink address,
the client's address and HELO name, the envelope and the message. Behaviour is steered by files in
/run/mailinfra-sink/:
  defer   client addresses, one a line, whose MAIL FROM is answered "451 4.7.1" (a throttling ISP)
  delay   seconds to wait before answering the end of DATA (keeps connections busy)
Recipients whose local part is "unknown" get "450 4.1.1 ... User unknown" (a 4xx that means 5xx).
/var/lib/mailinfra-sink/sessions.json keeps the most simultaneous sessions seen per (sink, client).
"""

import json
import socketserver
import sys
import threading
import time
from pathlib import Path

STATE = Path('/var/lib/mailinfra-sink')
CONTROL = Path('/run/mailinfra-sink')
LOCK = threading.Lock()
ACTIVE: dict[str, int] = {}
PEAK: dict[str, int] = {}
COUNTER = [0]
PORT = 10025


def control(name: str) -> str:
    try:
        return (CONTROL / name).read_text()
    except FileNotFoundError:
        return ''


def session(key: str, change: int) -> None:
    with LOCK:
        ACTIVE[key] = ACTIVE.get(key, 0) + change
        if ACTIVE[key] > PEAK.get(key, 0):
            PEAK[key] = ACTIVE[key]
            (STATE / 'sessions.json').write_text(json.dumps(PEAK, indent=1, sort_keys=True))


class Handler(socketserver.StreamRequestHandler):
    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b'\r\n')

    def handle(self) -> None:
        sink = self.server.server_address[0]
        client = self.client_address[0]
        key = f'{sink} {client}'
        session(key, 1)
        try:
            self.conversation(sink, client)
        finally:
            session(key, -1)

    def conversation(self, sink: str, client: str) -> None:
        self.sink, self.client = sink, client
        self.helo, self.sender, self.recipients = None, None, []
        self.reply('220 sink.test ESMTP test sink')
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode(errors='replace').rstrip('\r\n')
            verb = command[:4].upper()
            if verb == 'QUIT':
                self.reply('221 2.0.0 Bye')
                return
            handler = getattr(self, f'smtp_{verb.lower()}', None) if verb.isalpha() else None
            if handler is None:
                self.reply('502 5.5.2 Command not recognized')
            else:
                handler(command)

    def smtp_ehlo(self, command: str) -> None:
        self.helo = command[5:].strip()
        for text in ('250-sink.test', '250-PIPELINING', '250 8BITMIME'):
            self.reply(text)

    def smtp_helo(self, command: str) -> None:
        self.helo = command[5:].strip()
        self.reply('250 sink.test')

    def smtp_mail(self, command: str) -> None:
        if self.client in control('defer').split():
            self.reply('451 4.7.1 Deferred: too much mail from this address, try again later')
            return
        self.sender, self.recipients = command[10:].strip().split()[0].strip('<>'), []
        self.reply('250 2.1.0 Ok')

    def smtp_rcpt(self, command: str) -> None:
        recipient = command[8:].strip().split()[0].strip('<>')
        if recipient.split('@')[0] == 'unknown':
            self.reply(f'450 4.1.1 <{recipient}>: Recipient address rejected: User unknown')
            return
        self.recipients.append(recipient)
        self.reply('250 2.1.5 Ok')

    def smtp_data(self, command: str) -> None:
        if not self.recipients:
            self.reply('554 5.5.1 No valid recipients')
            return
        self.reply('354 End data with <CR><LF>.<CR><LF>')
        data = bytearray()
        while True:
            chunk = self.rfile.readline()
            if not chunk or chunk in (b'.\r\n', b'.\n'):
                break
            data += chunk[1:] if chunk.startswith(b'..') else chunk
        delay = control('delay').strip()
        if delay:
            time.sleep(float(delay))
        self.store(self.sink, self.client, self.helo, self.sender, self.recipients, bytes(data))
        self.recipients = []
        self.reply('250 2.0.0 Ok: queued')

    def smtp_rset(self, command: str) -> None:
        self.sender, self.recipients = None, []
        self.reply('250 2.0.0 Ok')

    def smtp_noop(self, command: str) -> None:
        self.reply('250 2.0.0 Ok')

    @staticmethod
    def store(sink: str, client: str, helo: str | None, sender: str | None, recipients: list, data: bytes) -> None:
        with LOCK:
            COUNTER[0] += 1
            number = COUNTER[0]
        record = {
            'time': time.time(),
            'sink': sink,
            'client': client,
            'helo': helo,
            'mail_from': sender,
            'rcpt_to': recipients,
            'data': data.decode('utf-8', errors='surrogateescape'),
        }
        path = STATE / 'messages' / f'{int(time.time() * 1000)}-{number:06d}.json'
        path.with_suffix('.tmp').write_text(json.dumps(record, indent=1), errors='surrogateescape')
        path.with_suffix('.tmp').rename(path)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main() -> None:
    (STATE / 'messages').mkdir(parents=True, exist_ok=True)
    CONTROL.mkdir(parents=True, exist_ok=True)
    servers = [Server((address, PORT), Handler) for address in sys.argv[1:]]
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == '__main__':
    main()
