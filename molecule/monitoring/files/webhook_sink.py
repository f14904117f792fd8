"""A webhook sink for the Molecule scenario "monitoring": records every POST it receives.

Usage: webhook_sink.py ADDRESS PORT FILE. Each request becomes one JSON line in FILE:
{"path": ..., "authorization": ..., "payload": <the JSON body>}; it answers 200. Test use only.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Sink(BaseHTTPRequestHandler):
    record_file = ''

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {'unparsed': body.decode('utf-8', 'replace')}
        entry = {'path': self.path, 'authorization': self.headers.get('Authorization'), 'payload': payload}
        with open(self.record_file, 'a', encoding='utf-8') as out:
            out.write(json.dumps(entry, sort_keys=True) + '\n')
        self.send_response(200)
        self.end_headers()


def main() -> None:
    address, port, Sink.record_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    HTTPServer((address, port), Sink).serve_forever()


if __name__ == '__main__':
    main()
