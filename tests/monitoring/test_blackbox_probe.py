"""The rendered blackbox modules against the real blackbox exporter (Debian), on loopback: smtp_starttls completes
EHLO, STARTTLS, EHLO with an SMTP server and reports the certificate's expiry; tcp_connect tells an open port from a
closed one. The SMTP server is a small scripted one (the exchange Postfix's smtpd has with the probe), with a
self-signed certificate made here. The probes the scrape configuration renders for a PowerMTA injection listener
succeed against the real suppression gate, which offers no STARTTLS."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import socketserver
import ssl
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_iac import parse_spec

from ..agent.test_suppression_gate import StandIn, gate_process
from ..conftest import AS_OF
from .harness import monitoring_files, rules_spec, rules_spec_text, serve, stop, tool, write_tree

BLACKBOX = '/usr/bin/prometheus-blackbox-exporter'
NOT_AFTER = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def _certificate(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'mx.test.invalid')])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    (directory / 'cert.pem').write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / 'key.pem').write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / 'cert.pem', directory / 'key.pem')
    return context


class _Smtp(socketserver.StreamRequestHandler):
    """EHLO (offering STARTTLS until TLS is on), STARTTLS, QUIT: the exchange the probe has with Postfix's smtpd."""

    tls: ssl.SSLContext

    def handle(self) -> None:
        with contextlib.ExitStack() as opened:
            try:
                self._converse(opened)
            except OSError:  # a plain TCP probe closes without QUIT (ssl.SSLError is an OSError too)
                return

    def _converse(self, opened: contextlib.ExitStack) -> None:
        connection: socket.socket = self.connection
        stream = opened.enter_context(connection.makefile('rwb'))
        stream.write(b'220 mx.test.invalid ESMTP\r\n')
        stream.flush()
        secure = False
        while line := stream.readline():
            command = line.strip().upper()
            if command.startswith(b'EHLO'):
                offer = b'' if secure else b'250-STARTTLS\r\n'
                stream.write(b'250-mx.test.invalid\r\n' + offer + b'250 8BITMIME\r\n')
            elif command == b'STARTTLS' and not secure:
                stream.write(b'220 2.0.0 Ready to start TLS\r\n')
                stream.flush()
                connection = opened.enter_context(self.tls.wrap_socket(connection, server_side=True))
                stream = opened.enter_context(connection.makefile('rwb'))
                secure = True
                continue
            elif command == b'QUIT':
                stream.write(b'221 2.0.0 Bye\r\n')
                stream.flush()
                break
            else:
                stream.write(b'502 5.5.2 Error: command not recognized\r\n')
            stream.flush()


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[int]:
    handler = type('Handler', (_Smtp,), {'tls': _certificate(tmp_path)})
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def blackbox(tmp_path: Path) -> Iterator[str]:
    tree = write_tree(monitoring_files(rules_spec()), tmp_path / 'rendered')
    address = f'127.0.0.1:{_free_port()}'
    command = [tool(BLACKBOX), f'--config.file={tree / "blackbox" / "blackbox.yml"}', f'--web.listen-address={address}']
    process = serve(command, f'http://{address}/-/healthy')
    try:
        yield f'http://{address}'
    finally:
        stop(process)


def blackbox_probe(base: str, module: str, target: str) -> dict[str, float]:
    with urllib.request.urlopen(f'{base}/probe?module={module}&target={target}', timeout=30) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            values[name] = float(value)
    return values


def test_smtp_starttls_probe_reports_the_certificate_expiry(blackbox: str, smtp_server: int) -> None:
    values = blackbox_probe(blackbox, 'smtp_starttls', f'127.0.0.1:{smtp_server}')
    assert values['probe_success'] == 1
    assert values['probe_ssl_earliest_cert_expiry'] == NOT_AFTER.timestamp()


def test_tcp_connect_tells_an_open_port_from_a_closed_one(blackbox: str, smtp_server: int) -> None:
    assert blackbox_probe(blackbox, 'tcp_connect', f'127.0.0.1:{smtp_server}')['probe_success'] == 1
    assert blackbox_probe(blackbox, 'tcp_connect', f'127.0.0.1:{_free_port()}')['probe_success'] == 0
    # and STARTTLS fails where nothing answers
    assert blackbox_probe(blackbox, 'smtp_starttls', f'127.0.0.1:{_free_port()}')['probe_success'] == 0


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[int]:
    """``mailinfra-agent suppression gate`` for stream cold_outreach on a free port, before a stand-in upstream."""
    from ..agent.test_suppression import write_contract

    contract = str(write_contract(tmp_path))
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
    upstream = StandIn()
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = _free_port()
    command = [sys.executable, '-m', 'mailinfra_agent', 'suppression', '--contract', contract, 'gate']
    command += ['--upstream', f'127.0.0.1:{upstream.server_address[1]}', '--stream', f'cold_outreach={port}@127.0.0.4']
    command += ['--allow', 'cold_outreach=127.0.0.0/8', '--listen-address', '127.0.0.1']
    with gate_process(command, upstream) as process:
        assert process.stdout is not None
        assert process.stdout.readline().startswith('suppression gate to ')
        yield port


def test_the_rendered_probes_of_a_powermta_injection_listener_succeed_on_the_gate(blackbox: str, gate: int) -> None:
    """Neither PowerMTA nor the suppression gate in its place offers STARTTLS on the injection ports
    (docs/powermta.md): a STARTTLS probe there fails on a healthy host, and MailinfraStarttlsFailed never resolves."""
    gated = '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:'
    text = rules_spec_text().replace('mta: auto', 'mta: powermta', 1).replace('\nmonitoring:', gated, 1)
    config = yaml.safe_load(monitoring_files(parse_spec(text, 'spec.yml', as_of=AS_OF))['prometheus/prometheus.yml'])
    probes = [
        (job['params']['module'][0], static['labels']['stream'])
        for job in config['scrape_configs']
        if job.get('metrics_path') == '/probe'
        for static in job['static_configs']
        if static['labels']['listener'] == 'injection'
    ]
    assert {stream for _, stream in probes} == {'marketing', 'transactional'}
    for module, stream in probes:
        assert blackbox_probe(blackbox, module, f'127.0.0.1:{gate}')['probe_success'] == 1, (module, stream)
