#!/usr/bin/python3
"""SMTP client for verify.yml (standard library only); prints one JSON object.

smtp_client.py probe  --host H --port P [--source S] [--starttls]
    banner, EHLO keywords, and with --starttls the TLS protocol version and the keywords after it
smtp_client.py send   --host H --port P [--source S] --sender A --to A [--to A ...]
                      [--header-from A] [--subject S] [--header 'NAME: VALUE' ...] [--count N] [--starttls]
                      [--auth USER:PASSWORD]
    sends N messages over one session; every reply code and text is reported, failures included
"""

import argparse
import json
import pathlib
import smtplib
import ssl
import sys
import time
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def connect(args: argparse.Namespace) -> tuple[smtplib.SMTP, str]:
    source = (args.source, 0) if args.source else None
    client = smtplib.SMTP(timeout=30, source_address=source)
    code, banner = client.connect(args.host, args.port)
    client._host = args.host  # connect() does not record it; starttls() needs it for the TLS server name
    return client, f'{code} {banner.decode()}'


def tls(client: smtplib.SMTP) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    client.starttls(context=context)
    client.ehlo('client.test')
    return client.sock.version()


def probe(args: argparse.Namespace) -> dict:
    client, banner = connect(args)
    client.ehlo('client.test')
    result = {'banner': banner, 'keywords': sorted(client.esmtp_features)}
    if args.starttls:
        result['tls_version'] = tls(client)
        result['keywords_after_tls'] = sorted(client.esmtp_features)
    client.quit()
    return result


def send(args: argparse.Namespace) -> dict:
    client, banner = connect(args)
    client.ehlo('client.test')
    result: dict = {'banner': banner, 'messages': []}
    if args.starttls:
        result['tls_version'] = tls(client)
    if args.auth:
        user, password = args.auth.split(':', 1)
        try:
            result['auth'] = list(client.login(user, password))
            result['auth'][1] = result['auth'][1].decode()
        except smtplib.SMTPException as error:
            result['auth'] = [getattr(error, 'smtp_code', 0), str(error)]
            client.close()
            return result
    for number in range(1, args.count + 1):
        recipients = [address.replace('{n}', str(number)) for address in args.to]
        token = uuid.uuid4().hex
        message = EmailMessage()
        message['From'] = args.header_from or args.sender
        message['To'] = ', '.join(recipients)
        message['Subject'] = f'{args.subject} {token}'
        message['Date'] = formatdate(localtime=False)
        message['Message-ID'] = make_msgid(idstring=token, domain='client.test')
        for header in args.header:
            name, _, value = header.partition(':')
            message[name.strip()] = value.strip()
        message.set_content(f'Test message {token}.\n')
        entry = {'token': token, 'time': time.time()}
        try:
            refused = client.send_message(message, from_addr=args.sender, to_addrs=recipients)
            entry['code'], entry['reply'] = 250, 'accepted'
            entry['refused'] = {address: [code, text.decode()] for address, (code, text) in refused.items()}
        except smtplib.SMTPRecipientsRefused as error:
            entry['code'] = 0
            entry['refused'] = {a: [code, text.decode()] for a, (code, text) in error.recipients.items()}
            client.rset()
        except smtplib.SMTPResponseException as error:
            entry['code'], entry['reply'] = error.smtp_code, error.smtp_error.decode()
            client.rset()
        result['messages'].append(entry)
    client.quit()
    return result


def await_tokens(args: argparse.Namespace) -> dict:
    deadline = time.time() + args.timeout
    found: dict = {}
    while True:
        for path in sorted(pathlib.Path('/var/lib/mailinfra-sink/messages').glob('*.json')):
            record = json.loads(path.read_text(errors='surrogateescape'))
            for token in args.token:
                if token not in found and token in record['data']:
                    found[token] = {**record, 'file': str(path)}
        if len(found) == len(args.token) or time.time() > deadline:
            return {'found': found, 'missing': [token for token in args.token if token not in found]}
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['probe', 'send', 'await'])
    parser.add_argument('--host')
    parser.add_argument('--port', type=int)
    parser.add_argument('--source')
    parser.add_argument('--starttls', action='store_true')
    parser.add_argument('--sender')
    parser.add_argument('--to', action='append', default=[])
    parser.add_argument('--header-from')
    parser.add_argument('--subject', default='mailinfra test')
    parser.add_argument('--header', action='append', default=[])
    parser.add_argument('--count', type=int, default=1)
    parser.add_argument('--auth')
    parser.add_argument('--token', action='append', default=[])
    parser.add_argument('--timeout', type=float, default=30)
    args = parser.parse_args()
    result = {'probe': probe, 'send': send, 'await': await_tokens}[args.mode](args)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    if args.mode == 'await' and result['missing']:
        sys.exit(1)


if __name__ == '__main__':
    main()
