"""DKIM signatures as they leave: Postfix and OpenDKIM as the roles render them, the copies caught on the wire.

The newsletter example's dual-signing stream instance (mx2, postfix-marketing: an RSA and an Ed25519 OpenDKIM)
runs on Debian's Postfix with the rendered main.cf, master.cf and opendkim configurations, changed only where a
test must: paths, loopback addresses and ports, test keys, the sinks as next hops, and on the receiving side the
test's client as the stream's network (no TLS, no SASL, no header rewriting, as for a client that is not on the
host's own addresses). It relays what applications
really send to two loopback SMTP sinks, one offering 8BITMIME and SMTPUTF8 and one offering neither, which keep
the raw bytes. Every copy must carry both signatures, and both must verify with dkimpy and with OpenDKIM's own
verifier (``opendkim -t``, keys from ``TestDNSData``, no DNS): whatever Postfix does to a message after the
milters signed it (MIME downgrade, folding long lines, adding headers) must not break them.

One Postfix and two OpenDKIM starts for all messages.
"""

from __future__ import annotations

import re
import shutil
import smtplib
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dkim
import pytest

from mailinfra_agent.postfix.trial import HARMLESS, free_port
from mailinfra_iac import load_spec
from mailinfra_iac.dkim.keys import generate_private_key, private_key_pem, public_txt_value
from tests.agent.test_suppression_postfix import needs_postfix, wait_for_port

from ..conftest import AS_OF, ROOT
from .role_files import context_of, render_role_files

HOST = 'mx2'
INSTANCE = 'postfix-marketing'
DOMAIN = 'news.dailybrief.example'
SENDER = f'bounce@{DOMAIN}'
SELECTORS = {'rsa': 's2026q4', 'ed25519': 's2026q4e'}
EIGHT, SEVEN = 'eight.test', 'seven.test'  # the sink offering 8BITMIME and SMTPUTF8, and the one offering neither


# --- The sinks -------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class Sink:
    extensions: list[str]
    deliveries: list[Delivery] = field(default_factory=list)


class SinkHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP server: advertises the sink's extensions and keeps every message's raw bytes."""

    server: SinkServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b'\r\n')

    def handle(self) -> None:
        sink = self.server.sink
        self.reply('220 sink.test ESMTP')
        mail_from, recipients = '', list[str]()
        while line := self.rfile.readline():
            command = line.decode('utf-8', 'replace').strip()
            verb = command.split(' ', 1)[0].upper()
            if verb == 'EHLO':
                for extension in sink.extensions:
                    self.reply(f'250-{extension}')
                self.reply('250 HELP')
            elif verb == 'MAIL':
                mail_from, recipients = command, []
                self.reply('250 2.1.0 ok')
            elif verb == 'RCPT':
                recipients.append(command.split(':', 1)[1].strip().split()[0].strip('<>'))
                self.reply('250 2.1.5 ok')
            elif verb == 'DATA':
                self.reply('354 go ahead')
                lines = []
                while (data := self.rfile.readline()) != b'.\r\n':
                    if not data:
                        return
                    lines.append(data[1:] if data.startswith(b'.') else data)
                sink.deliveries.append(Delivery(mail_from, recipients, b''.join(lines)))
                self.reply('250 2.0.0 queued')
            elif verb == 'QUIT':
                self.reply('221 2.0.0 bye')
                return
            else:  # HELO, RSET, NOOP
                self.reply('250 ok')


class SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sink: Sink) -> None:
        super().__init__(('127.0.0.1', 0), SinkHandler)
        self.sink = sink


# --- The rendered configuration, run locally ---------------------------------------------------------------


def replace_settings(text: str, settings: dict[str, str]) -> str:
    """``text`` (main.cf or opendkim.conf) with each named setting's value replaced; each must be there once."""
    for name, value in settings.items():
        found = list(re.finditer(rf'^{re.escape(name)}(\s*=\s*|\s+).*$', text, re.M))
        assert len(found) == 1, name
        start, end = found[0].span()
        text = f'{text[:start]}{name}{found[0].group(1)}{value}{text[end:]}'
    return text


@dataclass
class Wire:
    port: int
    sinks: dict[str, Sink]
    records: dict[str, bytes]  # DNS name of each selector -> its TXT value
    verifier_config: Path
    root: Path
    config: Path


def start_opendkim(text: str, directory: Path, port: int) -> subprocess.Popen[bytes]:
    config = directory / 'opendkim.conf'
    config.write_text(
        replace_settings(
            text,
            {
                'KeyTable': f'file:{directory}/KeyTable',
                'SigningTable': f'refile:{directory}/SigningTable',
                'InternalHosts': f'file:{directory}/TrustedHosts',
                'ExternalIgnoreList': f'file:{directory}/TrustedHosts',
                'Socket': f'inet:{port}@127.0.0.1',
                'PidFile': f'{directory}/pid',
                'Syslog': 'no',
                'RequireSafeKeys': 'no',  # the test's keys are below /tmp
                'UserID': 'root',
            },
        )
    )
    check = subprocess.run(['opendkim', '-n', '-x', str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    with (directory / 'stderr').open('w') as stderr:
        process = subprocess.Popen(['opendkim', '-f', '-x', str(config)], stderr=stderr)
    deadline = time.monotonic() + 30
    while True:  # listening before Postfix asks it (else the application would get a 4xx)
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()  # never left running behind a failed start
                process.wait()
                pytest.fail(f'opendkim does not listen: {(directory / "stderr").read_text()}', pytrace=False)
            time.sleep(0.05)


@pytest.fixture(scope='module')
def wire() -> Iterator[Wire]:
    needs_postfix()
    if shutil.which('opendkim') is None:
        pytest.skip('needs Debian package opendkim (script/bootstrap)')
    spec = load_spec((ROOT / 'examples' / 'newsletter-publisher.yml').relative_to(ROOT), as_of=AS_OF)
    files = render_role_files(context_of(spec))
    root = Path(tempfile.mkdtemp(prefix='mailinfra-dkim-wire-'))
    root.chmod(0o755)
    servers: list[SinkServer] = []
    processes: list[subprocess.Popen[bytes]] = []
    config = root / 'postfix' / 'config'
    try:
        sinks = {EIGHT: Sink(['8BITMIME', 'SMTPUTF8']), SEVEN: Sink([])}
        for sink in sinks.values():
            server = SinkServer(sink)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        sink_ports = {name: server.server_address[1] for name, server in zip(sinks, servers, strict=True)}

        records: dict[str, bytes] = {}
        milter_ports = []
        for algorithm, conf in (('rsa', 'opendkim.conf'), ('ed25519', 'opendkim/opendkim-ed25519.conf')):
            directory = root / f'opendkim-{algorithm}'
            directory.mkdir(mode=0o700)
            suffix = '' if algorithm == 'rsa' else '.ed25519'
            key = generate_private_key(algorithm)
            selector = SELECTORS[algorithm]
            key_file = directory / f'{selector}.key'
            key_file.write_bytes(private_key_pem(key))
            key_file.chmod(0o600)
            records[f'{selector}._domainkey.{DOMAIN}'] = public_txt_value(key).encode()
            key_table = files[f'{HOST}/etc/opendkim/KeyTable{suffix}']
            key_table = re.sub(r':/etc/opendkim/keys/\S+$', f':{key_file}', key_table, flags=re.M)
            assert str(key_file) in key_table
            (directory / 'KeyTable').write_text(key_table)
            (directory / 'SigningTable').write_text(files[f'{HOST}/etc/opendkim/SigningTable{suffix}'])
            (directory / 'TrustedHosts').write_text(files[f'{HOST}/etc/opendkim/TrustedHosts'])
            milter_ports.append(free_port())
            processes.append(start_opendkim(files[f'{HOST}/etc/{conf}'], directory, milter_ports[-1]))

        verifier = root / 'verifier'
        verifier.mkdir()
        (verifier / 'keys').write_text(''.join(f'{name} {value.decode()}\n' for name, value in records.items()))
        verifier_config = verifier / 'opendkim.conf'
        verifier_config.write_text(f'Mode v\nSyslog no\nTestDNSData file:{verifier}/keys\nAlwaysAddARHeader yes\n')

        port = free_port()
        queue, data = root / 'postfix' / 'queue', root / 'postfix' / 'data'
        for directory in (config, queue, data):
            directory.mkdir(parents=True)
        shutil.chown(data, 'postfix', 'postfix')
        suppression = root / 'suppression'
        suppression.write_text('')
        prefix = f'{HOST}/etc/{INSTANCE}'
        (config / 'delivery_status_filter').write_text(files[f'{prefix}/delivery_status_filter'])
        main_cf = replace_settings(
            files[f'{prefix}/main.cf'],
            {
                'queue_directory': str(queue),
                'data_directory': str(data),
                'maillog_file': f'{root}/maillog',
                'multi_instance_enable': 'no',
                'inet_interfaces': 'loopback-only',
                'mynetworks': '127.0.0.0/8',  # the test's application stands for the stream's network
                'smtpd_tls_security_level': 'none',  # no certificate here; receiving is not this test's subject
                'smtpd_tls_chain_files': '',
                'smtpd_sasl_auth_enable': 'no',
                'smtpd_milters': ', '.join(f'inet:127.0.0.1:{port}' for port in milter_ports),
                # The sinks as next hops, through the stream's own transport and its smtp_* settings.
                'transport_maps': 'inline:{ '
                + ', '.join(f'{name}=out_198_51_100_20:[127.0.0.1]:{sink_ports[name]}' for name in sinks)
                + ' }',
            },
        )
        # Applications connect from the stream's networks, never from an address of the host itself: no header
        # rewriting for them (Postfix's default permits only clients on its own interfaces, as this test's are).
        extra = f'maillog_file_prefixes = {root}\nlocal_header_rewrite_clients =\n'
        (config / 'main.cf').write_text(main_cf + extra)
        master_cf = files[f'{prefix}/master.cf']
        master_cf = re.sub(r'^2526(\s+inet)', rf'127.0.0.1:{port}\1', master_cf, flags=re.M)
        master_cf = master_cf.replace('hash:/var/lib/mailinfra/suppression/postfix-marketing', f'hash:{suppression}')
        master_cf = master_cf.replace('smtp_bind_address=198.51.100.20', 'smtp_bind_address=127.0.0.1')
        (config / 'master.cf').write_text(master_cf)
        subprocess.run(['postmap', '-c', str(config), str(suppression)], check=True)
        check = subprocess.run(['postfix', '-c', str(config), 'check'], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        started = subprocess.run(['postfix', '-c', str(config), 'start'], capture_output=True, text=True)
        assert started.returncode == 0, started.stderr
        wait_for_port(port)
        yield Wire(port, sinks, records, verifier_config, root, config)
    finally:
        pid_file = root / 'postfix' / 'queue' / 'pid' / 'master.pid'
        master = int(pid_file.read_text()) if pid_file.exists() else 0
        subprocess.run(['postfix', '-c', str(config), 'stop'], capture_output=True, check=False)
        deadline = time.monotonic() + 10
        while master and Path(f'/proc/{master}').exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for process in processes:
            process.kill()  # nothing to lose; SIGTERM waits for libmilter's 5 s poll
            process.wait(timeout=10)
        for server in servers:
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)


# --- What applications send --------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    headers: list[tuple[str, str]]
    body: bytes
    options: tuple[str, ...] = ()  # MAIL FROM parameters
    sinks: tuple[str, ...] = (EIGHT, SEVEN)
    local: str = ''  # the recipient's local part, the case's name by default


def usual(
    subject: str, *extra: tuple[str, str], content_type: str = 'text/plain; charset=utf-8'
) -> list[tuple[str, str]]:
    return [
        ('From', f'Daily Brief <news@{DOMAIN}>'),
        ('To', 'reader@example.net'),
        ('Subject', subject),
        ('Date', 'Mon, 07 Dec 2026 12:00:00 +0000'),
        ('Message-ID', f'<{subject.replace(" ", "-")}@{DOMAIN}>'),
        ('MIME-Version', '1.0'),
        ('Content-Type', content_type),
        *extra,
    ]


UTF8_TEXT = 'Grüße aus Köln, 5 € \u2013 naïve café.\r\nZweite Zeile: ßäöü ÆØÅ 日本語\r\n'.encode()
BOUNDARY = 'b1_mailinfra'
MULTIPART = (
    f'--{BOUNDARY}\r\n'
    'Content-Type: multipart/alternative; boundary="b2_mailinfra"\r\n\r\n'
    '--b2_mailinfra\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    'Grüße, dies ist der Text.\r\n'
    '--b2_mailinfra\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    '<html><body><p>Grüße, dies ist <b>HTML</b>.</p></body></html>\r\n'
    '--b2_mailinfra--\r\n'
    f'--{BOUNDARY}\r\n'
    'Content-Type: application/pdf; name="report.pdf"\r\nContent-Disposition: attachment; filename="report.pdf"\r\n'
    'Content-Transfer-Encoding: base64\r\n\r\n'
    + 'JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+CnN0cmVhbQp4\r\n'
    * 20
    + f'--{BOUNDARY}\r\n'
    'Content-Type: text/plain; charset=utf-8; name="notes.txt"\r\n'
    'Content-Disposition: attachment; filename="notes.txt"\r\n'
    'Content-Transfer-Encoding: 8bit\r\n\r\n'
    'Anhang mit Umlauten: äöü\r\n'
    f'--{BOUNDARY}--\r\n'
).encode()
REFERENCES = '\r\n '.join(f'<{n}.thread@{DOMAIN}>' for n in range(40))
LONG_URL = f'<https://{DOMAIN}/unsubscribe/' + 'x' * 1100 + '>'

CASES = [
    Case('utf8-8bit', usual('utf8 8bit', ('Content-Transfer-Encoding', '8bit')), UTF8_TEXT, ('BODY=8BITMIME',)),
    Case('utf8-undeclared', usual('utf8 undeclared', ('Content-Transfer-Encoding', '8bit')), UTF8_TEXT),
    Case('utf8-no-cte', usual('utf8 no cte'), UTF8_TEXT, ('BODY=8BITMIME',)),
    Case(
        'smtputf8',
        [
            ('From', f'Jürgen Müller <news@{DOMAIN}>'),
            ('To', 'Zoë <zoë@eight.test>'),
            ('Subject', 'Grüße \u2013 ünïcödé subject'),
            ('Date', 'Mon, 07 Dec 2026 12:00:00 +0000'),
            ('Message-ID', f'<smtputf8@{DOMAIN}>'),
            ('MIME-Version', '1.0'),
            ('Content-Type', 'text/plain; charset=utf-8'),
            ('Content-Transfer-Encoding', '8bit'),
        ],
        UTF8_TEXT,
        ('SMTPUTF8', 'BODY=8BITMIME'),
        (EIGHT,),
        'zoë',
    ),
    Case(
        'utf8-headers',
        [
            ('From', f'Jürgen Müller <news@{DOMAIN}>'),
            ('To', 'Zoë <reader@example.net>'),
            ('Subject', 'Grüße \u2013 ünïcödé subject'),
            *usual('utf8 headers', ('Content-Transfer-Encoding', '8bit'))[3:],
        ],
        UTF8_TEXT,
        ('BODY=8BITMIME',),  # raw UTF-8 headers without SMTPUTF8, as many applications send them
    ),
    Case('long-line', usual('long line', ('Content-Transfer-Encoding', '7bit')), b'a' * 2500 + b'\r\nend\r\n'),
    Case(
        'long-line-words',
        usual('long line words', ('Content-Transfer-Encoding', '7bit')),
        b' '.join([b'word'] * 600) + b'\r\nend\r\n',
    ),
    Case('bare-lf', usual('bare lf'), b'line one\nline two\r\nline three\n'),
    Case('bare-cr', usual('bare cr'), b'line one\rstill one\r\nline two\r\n'),
    Case('dots', usual('dots'), b'.leading dot\r\n..two dots\r\n.\r\n\r\n\r\ntrailing blank lines\r\n\r\n\r\n'),
    Case(
        'folded-headers',
        usual(
            'folded headers',
            ('References', REFERENCES),
            ('Cc', ',\r\n '.join(f'reader{n}@example.net' for n in range(80))),
        ),
        b'Hello.\r\n',
    ),
    Case(
        'long-header-line',
        usual(
            'long header line',
            ('Cc', ', '.join(f'reader{n}@example.net' for n in range(80))),
            ('X-Campaign', 'c' * 3000),
        ),
        b'Hello.\r\n',
    ),
    Case(
        'multipart',
        usual('multipart', content_type=f'multipart/mixed; boundary="{BOUNDARY}"'),
        MULTIPART,
        ('BODY=8BITMIME',),
    ),
    Case(
        'already-signed',
        [
            (
                'DKIM-Signature',
                'v=1; a=rsa-sha256; c=relaxed/relaxed; d=esp.example; s=old;\r\n\th=from:subject; '
                'bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=AAAA',
            ),
            *usual('already signed'),
        ],
        b'Hello.\r\n',
    ),
    Case(
        'list-unsubscribe',
        usual(
            'list unsubscribe',
            ('List-Unsubscribe', f'<https://{DOMAIN}/u/1>, <mailto:u@{DOMAIN}?subject=unsubscribe>'),
            ('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'),
            ('List-Id', f'Daily Brief <brief.{DOMAIN}>'),
        ),
        b'Hello.\r\n',
    ),
    Case('long-list-unsubscribe', usual('long list unsubscribe', ('List-Unsubscribe', LONG_URL)), b'Hello.\r\n'),
    Case(
        'no-date-message-id',
        [(name, value) for name, value in usual('no date') if name not in ('Date', 'Message-ID')],
        b'Hello.\r\n',
    ),
    Case('empty-body', usual('empty body'), b''),
]


def raw(case: Case) -> bytes:
    return b''.join(f'{name}: {value}\r\n'.encode() for name, value in case.headers) + b'\r\n' + case.body


@pytest.fixture(scope='module')
def delivered(wire: Wire) -> dict[tuple[str, str], bytes]:
    """(case name, sink) -> the bytes the sink received."""
    for case in CASES:
        recipients = [f'{case.local or case.name}@{sink}' for sink in case.sinks]
        with smtplib.SMTP('127.0.0.1', wire.port, local_hostname='app.example.test', timeout=30) as client:
            refused = client.sendmail(SENDER, recipients, raw(case), mail_options=list(case.options))
            assert not refused, (case.name, refused)
    expected = {(case.name, sink) for case in CASES for sink in case.sinks}
    copies: dict[tuple[str, str], bytes] = {}
    deadline = time.monotonic() + 60
    while set(copies) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        for sink in wire.sinks.values():
            for delivery in sink.deliveries:
                for recipient in delivery.recipients:
                    local, _, domain = recipient.rpartition('@')
                    case_name = next(case.name for case in CASES if (case.local or case.name) == local)
                    copies[(case_name, domain)] = delivery.data
    assert set(copies) == expected, (expected - set(copies), (wire.root / 'maillog').read_text())
    return copies


def dkimpy_results(wire: Wire, data: bytes) -> dict[str, bool]:
    """Our signatures (d=DOMAIN) by selector: does dkimpy verify it."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return wire.records.get(name.decode().rstrip('.'))

    signatures = [value for name, value in dkim.DKIM(data).headers if name.lower() == b'dkim-signature']
    results = {}
    for index, value in enumerate(signatures):
        tags = dkim.util.parse_tag_value(re.sub(rb'\s+', b'', value))
        if tags[b'd'] == DOMAIN.encode():
            try:
                results[tags[b's'].decode()] = bool(dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc))
            except dkim.DKIMException:
                results[tags[b's'].decode()] = False
    return results


def opendkim_results(wire: Wire, data: bytes, directory: Path) -> dict[str, bool]:
    """Our signatures by selector: does OpenDKIM's verifier (``opendkim -t``) pass it."""
    path = directory / 'copy.eml'
    path.write_bytes(data)
    result = subprocess.run(
        ['opendkim', '-x', str(wire.verifier_config), '-vvv', '-t', str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    results = re.findall(rf'dkim=(\w+)[^;]*header\.d={re.escape(DOMAIN)} [^;]*header\.s=(\S+)', result.stdout)
    return {selector: outcome == 'pass' for outcome, selector in results}


def signature_tags(data: bytes) -> list[dict[bytes, bytes]]:
    return [
        dkim.util.parse_tag_value(re.sub(rb'\s+', b'', value))
        for name, value in dkim.DKIM(data).headers
        if name.lower() == b'dkim-signature'
    ]


def signed(tags: dict[bytes, bytes]) -> list[str]:
    return tags[b'h'].decode().lower().split(':')


COPIES = [(case.name, sink) for case in CASES for sink in case.sinks]
BOTH = {selector: True for selector in SELECTORS.values()}


@pytest.mark.parametrize(('case', 'sink'), COPIES, ids=[f'{case}@{sink}' for case, sink in COPIES])
def test_every_copy_on_the_wire_verifies_with_both_signatures(
    wire: Wire, delivered: dict[tuple[str, str], bytes], case: str, sink: str, tmp_path: Path
) -> None:
    data = delivered[(case, sink)]
    assert dkimpy_results(wire, data) == BOTH
    assert opendkim_results(wire, data, tmp_path) == BOTH


def test_what_postfix_would_change_is_sent_as_signed(delivered: dict[tuple[str, str], bytes]) -> None:
    # No downgrade for the sink without 8BITMIME: the 8-bit body and its Content-Transfer-Encoding as signed.
    for case in ('utf8-8bit', 'utf8-undeclared'):
        assert delivered[(case, SEVEN)].endswith(b'\r\n\r\n' + UTF8_TEXT), case
        assert b'Content-Transfer-Encoding: 8bit\r\n' in delivered[(case, SEVEN)], case
    # No line broken at 998 octets, in the body or in a header.
    for sink in (EIGHT, SEVEN):
        assert delivered[('long-line', sink)].endswith(b'\r\n\r\n' + b'a' * 2500 + b'\r\nend\r\n')
        assert f'X-Campaign: {"c" * 3000}\r\n'.encode() in delivered[('long-header-line', sink)]


def test_list_unsubscribe_and_the_added_date_and_message_id_are_signed(delivered: dict[tuple[str, str], bytes]) -> None:
    for sink in (EIGHT, SEVEN):
        for tags in signature_tags(delivered[('list-unsubscribe', sink)]):
            assert {'list-unsubscribe', 'list-unsubscribe-post', 'list-id'} <= set(signed(tags))
        # Postfix (cleanup) adds the missing Date and Message-ID before the milters see the message.
        copy = delivered[('no-date-message-id', sink)]
        assert re.search(rb'^Date: ', copy, re.M) and re.search(rb'^Message-Id: <', copy, re.M)
        for tags in signature_tags(copy):
            assert {'date', 'message-id'} <= set(signed(tags))


def test_an_earlier_signature_is_left_and_ours_added(delivered: dict[tuple[str, str], bytes]) -> None:
    for sink in (EIGHT, SEVEN):
        domains = sorted(
            (tags[b'd'].decode(), tags[b's'].decode()) for tags in signature_tags(delivered[('already-signed', sink)])
        )
        assert domains == [('esp.example', 'old'), (DOMAIN, SELECTORS['rsa']), (DOMAIN, SELECTORS['ed25519'])]


def test_both_verifiers_fail_a_copy_changed_after_signing(
    wire: Wire, delivered: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    """What Postfix did before the fix, done by hand to good copies: both verifiers must see it."""
    copies = [delivered[('list-unsubscribe', EIGHT)], delivered[('utf8-8bit', EIGHT)]]
    folded = copies[0].replace(b'\r\nHello.', b'\r\nHel\r\n lo.')  # what smtp_line_length_limit inserts
    downgraded = copies[1].replace('ü'.encode(), b'=C3=BC')  # what the MIME downgrade does (in part)
    for copy, changed in zip(copies, (folded, downgraded), strict=True):
        assert changed != copy
        assert dkimpy_results(wire, changed) == {selector: False for selector in SELECTORS.values()}
        assert opendkim_results(wire, changed, tmp_path) == {selector: False for selector in SELECTORS.values()}


# RFC 5322 §3.6 allows From, Subject, To (and others) once: OpenDKIM's RequiredHeaders refuses what it would sign.
NON_COMPLIANT = {
    'two-from': (
        [('From', f'<news@{DOMAIN}>'), ('From', '<ceo@bank.example>'), *usual('two from')[1:]],
        b'5.0.0 message does not have exactly one From field',
    ),
    'two-subject': (usual('two subject', ('Subject', 'again')), b'5.0.0 message has multiple Subject fields'),
    'two-to': (usual('two to', ('To', 'other@example.net')), b'5.0.0 message has multiple To fields'),
}
# What still leaves: no key signs a message whose first From is another domain's (checked or not, it is unsigned);
# a message without From gets one made of the envelope sender from cleanup (always_add_missing_headers).
LEAVING = {
    'two-from-foreign-first': [('From', '<ceo@bank.example>'), *usual('foreign first')],
    'no-from': [(name, value) for name, value in usual('no from') if name != 'From'],
}


def test_a_second_from_subject_or_to_is_refused_at_the_end_of_data(
    wire: Wire, delivered: dict[tuple[str, str], bytes]
) -> None:
    def send(name: str, headers: list[tuple[str, str]]) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP('127.0.0.1', wire.port, local_hostname='app.example.test', timeout=30) as client:
            return client.sendmail(SENDER, [f'{name}@{EIGHT}'], raw(Case(name, headers, b'Hello.\r\n')))

    for name, (headers, reply) in NON_COMPLIANT.items():
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(name, headers)
        assert (refused.value.smtp_code, refused.value.smtp_error) == (550, reply), name
    for name, headers in LEAVING.items():
        assert send(name, headers) == {}
    copies: dict[str, bytes] = {}
    deadline = time.monotonic() + 30
    while set(copies) != set(LEAVING) and time.monotonic() < deadline:
        time.sleep(0.2)
        copies = {
            recipient.partition('@')[0]: delivery.data
            for delivery in wire.sinks[EIGHT].deliveries
            for recipient in delivery.recipients
            if recipient.partition('@')[0] in {*LEAVING, *NON_COMPLIANT}
        }
    assert set(copies) == set(LEAVING)  # nothing of the refused ones
    assert signature_tags(copies['two-from-foreign-first']) == []
    assert re.search(rb'^From: bounce@news\.dailybrief\.example\r$', copies['no-from'], re.M)
    log = (wire.root / 'maillog').read_text(encoding='utf-8', errors='replace')
    assert log.count('milter-reject: END-OF-MESSAGE') == len(NON_COMPLIANT)
    assert 'status=bounced' not in log


def test_the_instance_delivered_everything_cleanly(wire: Wire, delivered: dict[tuple[str, str], bytes]) -> None:
    queue = subprocess.run(['postqueue', '-c', str(wire.config), '-j'], capture_output=True, text=True, check=True)
    assert queue.stdout == ''
    log = (wire.root / 'maillog').read_text(encoding='utf-8', errors='replace')
    problems = [line for line in log.splitlines() if re.search(r'(warning|error|fatal|panic):', line)]
    assert [line for line in problems if not HARMLESS.search(line)] == [], log
