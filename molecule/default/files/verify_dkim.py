"""Verify every DKIM signature of delivered messages against the records the DNS layer publishes.

Usage: python verify_dkim.py [--add-header 'NAME: VALUE' ...] RECORDS_JSON MESSAGE_JSON [MESSAGE_JSON ...]

RECORDS_JSON is the output of ``mailinfra records --format json``; each MESSAGE_JSON is a file the test
sink wrote (its "data" is the message as received). Runs on the controller with dkimpy; no DNS query
leaves the machine: the key records come from RECORDS_JSON only. Prints one JSON object per message
with every signature's domain, selector, algorithm, signed header names (h=) and result.
--add-header puts these header fields on top of each message before verifying (a tampered copy).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import dkim


def txt_records(path: str) -> dict[bytes, bytes]:
    records = json.loads(Path(path).read_text())['records']
    return {
        f'{record["fqdn"]}.'.encode(): ''.join(record['values']).encode()
        for record in records
        if record['type'] == 'TXT' and '._domainkey.' in record['fqdn']
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('--add-header', action='append', default=[])
    parser.add_argument('records')
    parser.add_argument('messages', nargs='+')
    args = parser.parse_args()
    keys = txt_records(args.records)
    added = b''.join(f'{header}\r\n'.encode() for header in args.add_header)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return keys.get(name if name.endswith(b'.') else name + b'.')

    results = []
    for path in args.messages:
        data = json.loads(Path(path).read_text())['data'].encode('utf-8', errors='surrogateescape')
        data = added + data
        verifier = dkim.DKIM(data)
        headers = [value for name, value in verifier.headers if name.lower() == b'dkim-signature']
        signatures = []
        for index, header in enumerate(headers):
            tags = dkim.util.parse_tag_value(header)
            valid = bool(verifier.verify(idx=index, dnsfunc=dnsfunc))
            signatures.append(
                {
                    'd': tags[b'd'].decode(),
                    's': tags[b's'].decode(),
                    'a': tags[b'a'].decode(),
                    'h': [name.strip().lower() for name in tags[b'h'].decode().split(':')],
                    'valid': valid,
                }
            )
        results.append({'file': Path(path).name, 'signatures': signatures})
    json.dump(results, sys.stdout, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
