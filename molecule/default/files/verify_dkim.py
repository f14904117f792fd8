"""Verify every DKIM signature of delivered messages against the records the DNS layer publishes.

Usage: python verify_dkim.py RECORDS_JSON MESSAGE_JSON [MESSAGE_JSON ...]

RECORDS_JSON is the output of ``mailinfra records --format json``; each MESSAGE_JSON is a file the test
sink wrote (its "data" is the message as received). Runs on the controller with dkimpy; no DNS query
leaves the machine: the key records come from RECORDS_JSON only. Prints one JSON object per message
with every signature's domain, selector, algorithm and result.
"""

from __future__ import annotations

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
    keys = txt_records(sys.argv[1])

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return keys.get(name if name.endswith(b'.') else name + b'.')

    results = []
    for path in sys.argv[2:]:
        data = json.loads(Path(path).read_text())['data'].encode('utf-8', errors='surrogateescape')
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
                    'valid': valid,
                }
            )
        results.append({'file': Path(path).name, 'signatures': signatures})
    json.dump(results, sys.stdout, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
