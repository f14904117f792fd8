#!/usr/bin/python3
"""What the shaping check of verify.yml reads (standard library only); prints one JSON object.

shaping_check.py reaction --config DIR --transport T [--timeout S]
    waits for the sink's first refusal (/var/lib/mailinfra-sink/refused/*.json), then for T in the instance's
    defer_transports (postconf -c DIR -h); prints when the sink refused, when this helper saw T deferred, when
    the shaping service logged the change (its journal line "changed: ... defer_transports ... T", written after
    the check and the reload), and "seconds": refusal to that line (exit 1 on timeout).
shaping_check.py ledger --config DIR --recipient-regex RE
    per recipient matching RE: its deliveries at the sink (time, client, Message-ID), its refusals there,
    and the instance's queue entries for it (queue id, delay reason).
shaping_check.py midnight --time-zone TZ
    the next midnight in TZ (an IANA name) as UTC, in the form of `shaping status`'s "until".
"""

import argparse
import datetime
import email
import json
import pathlib
import re
import subprocess
import sys
import time
import zoneinfo

SINK = pathlib.Path('/var/lib/mailinfra-sink')


def records(directory: str) -> list[dict]:
    return [json.loads(path.read_text(errors='surrogateescape')) for path in sorted((SINK / directory).glob('*.json'))]


def deferred(config: str) -> list[str]:
    output = subprocess.run(
        ['postconf', '-c', config, '-h', 'defer_transports'], capture_output=True, text=True, check=True
    ).stdout
    return output.replace(',', ' ').split()


def logged(transport: str, since: float) -> float | None:
    """Time of the shaping service's first journal line after ``since`` that put ``transport`` into defer_transports."""
    journal = subprocess.run(
        ['journalctl', '-u', 'mailinfra-agent-shaping.service', '-o', 'json', f'--since=@{int(since) - 1}'],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in journal.stdout.splitlines():
        entry = json.loads(line)
        message, stamp = str(entry.get('MESSAGE', '')), int(entry['__REALTIME_TIMESTAMP']) / 1e6
        if stamp >= since and 'changed:' in message and 'defer_transports' in message and transport in message:
            return stamp
    return None


def reaction(args: argparse.Namespace) -> dict:
    deadline = time.time() + args.timeout
    result: dict = {'refused_at': None, 'deferred_at': None}
    while time.time() < deadline:
        refused = records('refused')
        if refused:
            result['refused_at'] = min(record['time'] for record in refused)
            result['refused_by'] = sorted({record['client'] for record in refused})
            break
        time.sleep(0.05)
    while result['refused_at'] is not None and time.time() < deadline:
        if args.transport in deferred(args.config):
            result['deferred_at'] = time.time()
            result['logged_at'] = logged(args.transport, result['refused_at'])
            result['seconds'] = round((result['logged_at'] or result['deferred_at']) - result['refused_at'], 3)
            break
        time.sleep(0.05)
    return result


def ledger(args: argparse.Namespace) -> dict:
    pattern = re.compile(args.recipient_regex)
    result: dict = {}

    def entry(recipient: str) -> dict:
        return result.setdefault(recipient, {'delivered': [], 'refused': [], 'queued': []})

    for record in records('messages'):
        message_id = email.message_from_string(record['data'])['Message-ID']
        for recipient in record['recipients']:
            if pattern.search(recipient):
                entry(recipient)['delivered'].append(
                    {'time': record['time'], 'client': record['client'], 'message_id': message_id}
                )
    for record in records('refused'):
        if pattern.search(record['recipient']):
            entry(record['recipient'])['refused'].append({'time': record['time'], 'client': record['client']})
    queue = subprocess.run(['postqueue', '-c', args.config, '-j'], capture_output=True, text=True, check=True)
    for line in queue.stdout.splitlines():
        message = json.loads(line)
        for recipient in message['recipients']:
            if pattern.search(recipient['address']):
                entry(recipient['address'])['queued'].append(
                    {'queue_id': message['queue_id'], 'reason': recipient.get('delay_reason', '')}
                )
    return result


def midnight(args: argparse.Namespace) -> dict:
    now = datetime.datetime.now(zoneinfo.ZoneInfo(args.time_zone))
    start = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), now.tzinfo)
    return {'until': start.astimezone(datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('mode', choices=['reaction', 'ledger', 'midnight'])
    parser.add_argument('--config', required=True)
    parser.add_argument('--transport')
    parser.add_argument('--recipient-regex', default='.')
    parser.add_argument('--timeout', type=float, default=60)
    parser.add_argument('--time-zone', default='UTC')
    args = parser.parse_args()
    result = {'reaction': reaction, 'ledger': ledger, 'midnight': midnight}[args.mode](args)
    json.dump(result, sys.stdout, indent=1, sort_keys=True)
    if args.mode == 'reaction' and result['deferred_at'] is None:
        sys.exit(1)


if __name__ == '__main__':
    main()
