#!/opt/mailinfra-agent/bin/python
"""Test helper of the Molecule scenario feedback: what a mailbox provider does with a List-Unsubscribe link.

Usage: one_click.py METHOD RECIPIENT STREAM
Builds the link an application would put on its mail (mailinfra_agent.feedback.headers, the host's signing
key), then sends METHOD (POST: RFC 8058 one-click body; GET: what a link scanner does) to the endpoint over
TLS, trusting only the scenario's test CA. Prints the HTTP status code.
"""

import http.client
import socket
import ssl
import sys
import time
import urllib.parse

from mailinfra_agent.contract import load_contract
from mailinfra_agent.feedback.headers import list_unsubscribe_headers
from mailinfra_agent.feedback.signing import read_key_file

CA = '/etc/mailinfra/tls/test-ca.crt'


class Loopback(http.client.HTTPSConnection):
    """The host name is not in DNS here: connect to loopback, verify the certificate for the host name."""

    def connect(self) -> None:
        raw = socket.create_connection(('127.0.0.1', self.port), self.timeout)
        self.sock = ssl.create_default_context(cafile=CA).wrap_socket(raw, server_hostname=self.host)


def main() -> int:
    method, recipient, stream = sys.argv[1:4]
    contract = load_contract('/etc/mailinfra/agent.json')
    key_file, hostname = contract.suppression.signing_key_file, contract.unsubscribe.hostname
    if key_file is None or hostname is None:
        raise SystemExit('the contract names no signing key or no unsubscribe host name')
    keys = [read_key_file(key_file)]
    headers = list_unsubscribe_headers(recipient, stream, f'https://{hostname}/u', None, keys, time.time())
    url = urllib.parse.urlsplit(headers['List-Unsubscribe'].strip('<>'))
    connection = Loopback(hostname, contract.unsubscribe.port, timeout=10)
    body = 'List-Unsubscribe=One-Click' if method == 'POST' else None
    content = {'Content-Type': 'application/x-www-form-urlencoded'} if body else {}
    connection.request(method, url.path, body=body, headers={'Host': hostname, **content})
    print(connection.getresponse().status)
    return 0


if __name__ == '__main__':
    sys.exit(main())
