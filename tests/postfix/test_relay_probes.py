"""Relay attempts against every SMTP listener the postfix role configures, on Debian's real Postfix.

The role's rendered main.cf and master.cf of newsletter-publisher (its injection networks set to 127.0.0.2/32, and a
SASL user added to transactional so that a user of another stream can try) run in throw-away instances, one start
each: the inbound primary of mx1, the bounce MX on port 25 (as rendered, the Maildir; and with
``postfix__feedback_pipe``), and the injection listeners of the transactional instance of mx1 and the marketing
instance of mx2. Every attempt (abuse.net style: percent hack, quoted and double-@ local parts, source routes, bang
paths, trailing dots, domain literals, odd case, SMTPUTF8, null senders, the return-path domain's FBL and
unsubscribe addresses with a suffix, the RFC 5321 ``postmaster``, BDAT, XCLIENT/XFORWARD, a DSN success notice for a
forged sender) is made from an address inside the stream's networks (127.0.0.2; loopback for the MX), one outside
(203.0.113.199, added to ``lo``), as a SASL user of the stream and of another stream, and with AUTH before STARTTLS.
Whatever leaves goes to a sink on loopback (``relayhost``; the transports bind 127.0.0.1). The monitoring role's
blackbox probes (Debian's blackbox exporter, the rendered modules) pass on every listener.

What the test changes beyond listener addresses and directories: the TLS pair (a throw-away one), the suppression
map path, no milters (OpenDKIM is tests/postfix/test_opendkim_signing.py's), the sink as relayhost, the MX's alias
table (its mailboxes are files in the test's directory, not the host's /var/mail) and the feedback pipe's command
(a script appending to a file) and user (nobody).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pwd
import re
import shutil
import smtplib
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import idna
import pytest

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.signing import b32_decode, b32_encode
from mailinfra_agent.postfix.trial import HARMLESS, free_port, listeners
from mailinfra_iac import parse_spec
from mailinfra_iac.render.base import RenderContext
from mailinfra_iac.render.mta_configs import role_template_variables, template_environment
from mailinfra_iac.render.rolevars import opendkim

from ..agent.ingest_logs import contract_data
from ..agent.postfix_dsn import TEST_KEYS
from ..conftest import AS_OF, ROOT
from ..monitoring.test_blackbox_probe import blackbox, blackbox_probe  # noqa: F401
from .role_files import context_of, host_variables, render_role_files

EXAMPLE = ROOT / 'examples' / 'newsletter-publisher.yml'
INSIDE = '127.0.0.2'  # the streams' injection network in this test's spec
OUTSIDE = '203.0.113.199'  # RFC 5737, added to lo for the test: outside every network, the primary's too
SYSTEM_PYTHON = '/usr/bin/python3'  # Debian's, whose dbm.ndbm writes the Berkeley DB that Cyrus' sasldb reads
PASSWORDS = {'newsletter-app': 'newsletter-app-password', 'billing-app': 'billing-app-password'}
BOUNCE_DOMAIN = 'rp.dailybrief.example'  # a return-path domain (inbound on mx1)
MARKETING_BOUNCE_DOMAIN = 'rp.news.dailybrief.example'
OUTREACH_BOUNCE_DOMAIN = 'rp.partners.dailybrief.example'
FORGED_VERP = 'n-forged+victim=other.test'  # VERP-like, but not with rp.dailybrief.example's prefix and separator
OTHER_KEY = b'a key this deployment never had, not secret, 0001'
ROLE_POLICY = 'user=mailinfra argv=/opt/mailinfra-agent/bin/mailinfra-agent ingest return-path-policy'


def _return_paths() -> dict[str, str]:
    """The bounce MX's RCPT check (ingest return-path-policy): what it must refuse and what it must let through."""
    valid = verp.encode(TEST_KEYS, stream='transactional', domain=BOUNCE_DOMAIN, message_id='42', recipient='a@b.test')
    local = valid.partition('@')[0]
    altered = local[:10] + ('a' if local[10] != 'a' else 'b') + local[11:]
    data = bytearray(b32_decode(local[2:], strict=False))
    data[0] = (verp.VERSION + 1) << 5 | (data[0] & 0x1F)  # the payload version a later agent may write
    return {
        'valid': valid,
        'valid-other-case': valid.upper(),  # a relay changed the case
        # marketing sends from mx2 with prefix n: mx1's contract lacks the stream, the rendered arguments do not
        'valid-marketing': verp.encode(TEST_KEYS, stream='marketing', domain=MARKETING_BOUNCE_DOMAIN, prefix='n'),
        'forged': verp.encode((OTHER_KEY,), stream='transactional', domain=BOUNCE_DOMAIN, recipient='x@other.test'),
        'forged-marketing': verp.encode((OTHER_KEY,), stream='marketing', domain=MARKETING_BOUNCE_DOMAIN, prefix='n'),
        'altered': f'{altered}@{BOUNCE_DOMAIN}',
        'truncated': f'{local[:30]}@{BOUNCE_DOMAIN}',
        'bad-shape': f'b-victim+other.test@{BOUNCE_DOMAIN}',
        'newer-version': f'b-{b32_encode(bytes(data))}@{BOUNCE_DOMAIN}',  # applications upgraded first: kept
        'fbl': f'fbl@{BOUNCE_DOMAIN}',  # not VERP: a feedback-loop address the operator chose
        'unsubscribe': f'unsubscribe@{MARKETING_BOUNCE_DOMAIN}',  # a mailto: unsubscribe address (token in Subject)
    }


RETURN_PATHS = _return_paths()
# What the MX answers at RCPT: a bad signature may be a wrong key on the MX, so it is temporary (retried for days).
NOT_VERIFIED = (450, '4.7.1 <{address}>: Recipient address rejected: return path not verified (bad-signature)')
REFUSED = {
    'forged': NOT_VERIFIED,
    'forged-marketing': NOT_VERIFIED,
    'altered': NOT_VERIFIED,
    'truncated': (550, '5.1.1 <{address}>: Recipient address rejected: not a return path of ours (truncated)'),
    'bad-shape': (550, '5.1.1 <{address}>: Recipient address rejected: not a return path of ours (malformed)'),
}


def probe_spec() -> str:
    text = EXAMPLE.read_text(encoding='utf-8')
    changed = text.replace('networks: [10.1.0.0/24]', f'networks: [{INSIDE}/32]')
    changed = changed.replace(
        f'injection: {{port: 2525, networks: [{INSIDE}/32]}}',
        f'injection: {{port: 2525, networks: [{INSIDE}/32], sasl_users: [billing-app]}}',
    )
    assert changed.count(f'{INSIDE}/32') == 3 and 'billing-app' in changed
    return changed


def needs_postfix() -> None:
    if os.geteuid() != 0 or shutil.which('postfix') is None:
        pytest.skip('needs root and Postfix (apt-get install postfix; script/bootstrap does)')


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            with smtplib.SMTP('127.0.0.1', port, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# --- Sink --------------------------------------------------------------------------------------------------


class Sink(socketserver.ThreadingTCPServer):
    """An SMTP server on loopback that takes every message and keeps its envelope and text."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), _SinkSession)
        self.messages: list[tuple[str, list[str], bytes]] = []


class _SinkSession(socketserver.StreamRequestHandler):
    server: Sink

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b'\r\n')

    def handle(self) -> None:
        self.reply('220 sink.test ESMTP')
        sender = ''
        recipients: list[str] = []
        while line := self.rfile.readline():
            command = line.decode('utf-8', 'replace').rstrip('\r\n')
            verb = command[:4].upper()
            if verb in ('EHLO', 'HELO'):
                self.reply('250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8')
            elif verb == 'MAIL':
                sender, recipients = command.split(':', 1)[1].split()[0], []
                self.reply('250 2.1.0 ok')
            elif verb == 'RCPT':
                recipients.append(command.split(':', 1)[1].split()[0])
                self.reply('250 2.1.5 ok')
            elif verb == 'DATA':
                self.reply('354 go ahead')
                data = b''
                while (chunk := self.rfile.readline()) not in (b'.\r\n', b''):
                    data += chunk
                self.server.messages.append((sender, recipients, data))
                self.reply('250 2.0.0 queued')
            elif verb == 'QUIT':
                self.reply('221 2.0.0 bye')
                return
            else:
                self.reply('250 2.0.0 ok')


# --- Throw-away instances of the role's files ----------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    name: str
    root: Path
    config: Path
    port: int
    hostname: str
    sasl: bool  # the listener offers AUTH (the stream has SASL users)

    @property
    def log(self) -> str:
        return (self.root / 'maillog').read_text(encoding='utf-8', errors='replace')

    def queue(self) -> list[dict[str, Any]]:
        """The instance's queue as Postfix's own tool lists it."""
        listing = subprocess.run(
            ['postqueue', '-c', str(self.config), '-j'], capture_output=True, text=True, check=True
        ).stdout
        return [json.loads(line) for line in listing.splitlines() if line.strip()]


def _postconf(config: Path, *arguments: str) -> str:
    result = subprocess.run(['postconf', '-c', str(config), *arguments], capture_output=True, text=True, check=True)
    _aged(config)
    return result.stdout


def _aged(config: Path) -> None:
    """Date the configuration files back a minute: Postfix waits until a main.cf is a second old (about 2 s a read)."""
    past = time.time() - 60
    for path in config.rglob('*'):
        os.utime(path, (past, past))


def _tls_pair(directory: Path) -> tuple[Path, Path]:
    key, certificate = directory / 'tls.key', directory / 'tls.pem'
    request = ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
    subject = ['-days', '2', '-subj', '/CN=relay-probe.test', '-keyout', str(key), '-out', str(certificate)]
    subprocess.run(
        [*request, *subject],
        capture_output=True,
        check=True,
    )
    return key, certificate


def _sasldb(path: Path, users: list[str], realm: str) -> None:
    """What the role's ``saslpasswd2 -c -u <instance hostname>`` writes: ``user NUL realm NUL userPassword``."""
    script = (
        'import dbm.ndbm, json, sys\n'
        'database = dbm.ndbm.open(sys.argv[1], "c", 0o640)\n'
        'for user, password in json.loads(sys.argv[2]).items():\n'
        '    database[f"{user}\\0{sys.argv[3]}\\0userPassword".encode()] = password.encode()\n'
        'database.close()\n'
    )
    secrets = json.dumps({user: PASSWORDS[user] for user in users})
    subprocess.run([SYSTEM_PYTHON, '-c', script, str(path), secrets, realm], check=True)
    Path(f'{path}.db').rename(path)  # Berkeley DB's ndbm adds .db; sasldb_path names the file itself
    path.chmod(0o640)  # whatever the umask: the postfix group reads it
    shutil.chown(path, 'root', 'postfix')


def _prepare(
    name: str,
    files: dict[str, str],
    prefix: str,
    root: Path,
    sink_port: int,
    tls: tuple[Path, Path],
    sasl_users: list[str],
    policy: str,
) -> Instance:
    config = root / 'config'
    for directory in (root, config, root / 'queue', root / 'data', root / 'mail'):
        directory.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / 'mail').chmod(0o1777)
    for path, text in files.items():
        if path.startswith(prefix):
            (config / path.removeprefix(prefix)).parent.mkdir(parents=True, exist_ok=True)
            (config / path.removeprefix(prefix)).write_text(text, encoding='utf-8')

    _aged(config)
    master_cf = (config / 'master.cf').read_text()
    master_cf = re.sub(r'-o smtp_bind_address=\S+', '-o smtp_bind_address=127.0.0.1', master_cf)
    assert (ROLE_POLICY in master_cf) == prefix.endswith('/etc/postfix/'), name  # the inbound primary only
    master_cf = master_cf.replace(ROLE_POLICY, policy)
    for table in set(re.findall(r'check_recipient_access hash:(\S+)', master_cf)):
        copy = root / Path(table).name
        copy.write_text('')  # the role creates a missing map empty
        subprocess.run(['postmap', '-c', str(config), f'hash:{copy}'], capture_output=True, check=True)
        master_cf = master_cf.replace(table, str(copy))
    master_cf, moved = listeners(master_cf, [free_port()])
    (config / 'master.cf').write_text(master_cf)
    _aged(config)

    settings = {
        'queue_directory': f'{root}/queue',
        'data_directory': f'{root}/data',
        'maillog_file': f'{root}/maillog',
        'maillog_file_prefixes': str(root),
        'multi_instance_enable': 'no',
        'multi_instance_directories': '',
        'multi_instance_wrapper': '',
        'multi_instance_name': '',
        'multi_instance_group': '',
        'smtpd_tls_chain_files': f'{tls[0]}, {tls[1]}',
        'smtpd_milters': '',
        'non_smtpd_milters': '',
        'relayhost': f'[127.0.0.1]:{sink_port}',
    }
    if _postconf(config, '-h', 'alias_maps').strip():
        aliases = root / 'aliases'
        aliases.write_text(
            f'postmaster: root\nroot: {root}/mail/root\nmailinfra-inbound: {root}/mail/inbound\n', encoding='utf-8'
        )
        settings['alias_maps'] = settings['alias_database'] = f'hash:{aliases}'
    _postconf(config, '-e', *(f'{name}={value}' for name, value in settings.items()))
    if 'alias_maps' in settings:  # the primary's aliases: its mailboxes are files in the test's directory
        subprocess.run(['postalias', '-c', str(config), settings['alias_maps']], capture_output=True, check=True)
    shutil.chown(root / 'data', 'postfix', 'postfix')

    hostname = _postconf(config, '-h', 'myhostname').strip()
    smtpd_conf = config / 'sasl' / 'smtpd.conf'
    if smtpd_conf.exists():
        original = f'/etc/{prefix.split("/etc/", 1)[1].rstrip("/")}'
        smtpd_conf.write_text(smtpd_conf.read_text().replace(original, str(config)))
        _sasldb(config / 'sasl' / 'sasldb2', sasl_users, hostname)
    return Instance(name, root, config, int(moved[0].rpartition(':')[2]), hostname, bool(sasl_users))


@contextmanager
def _running(instances: list[Instance]) -> Iterator[dict[str, Instance]]:
    """Start the instances; stop them all at once at the end (a stop takes a second or two)."""
    masters: list[Path] = []
    try:
        for instance in instances:
            started = subprocess.run(['postfix', '-c', str(instance.config), 'start'], capture_output=True, text=True)
            assert started.returncode == 0, started.stderr
            masters.append(Path('/proc') / (instance.root / 'queue' / 'pid' / 'master.pid').read_text().strip())
            wait_for_port(instance.port)
        yield {instance.name: instance for instance in instances}
    finally:
        stops = [
            subprocess.Popen(
                ['postfix', '-c', str(instance.config), 'stop'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for instance in instances
        ]
        for stop in stops:
            stop.wait()
        deadline = time.monotonic() + 10
        while any(master.exists() for master in masters) and time.monotonic() < deadline:
            time.sleep(0.05)


OUTSIDE_USERS = Path(tempfile.gettempdir()) / 'mailinfra-test-outside-address'
"""The test processes using OUTSIDE (pytest-xdist runs this file and test_fbl_address_mx.py side by side): their
pids, and whether the first of them added the address, under a lock."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _outside_users(change: int) -> None:
    """Join (+1) or leave (-1) the users of OUTSIDE: the first adds it to lo if missing, the last one out removes it
    if it was added."""
    with open(OUTSIDE_USERS, 'a+', encoding='utf-8') as users:
        fcntl.flock(users, fcntl.LOCK_EX)
        users.seek(0)
        lines = users.read().split()
        added = 'added' in lines
        pids = [int(line) for line in lines if line.isdigit() and _alive(int(line)) and int(line) != os.getpid()]
        shown = subprocess.run(['ip', '-o', '-4', 'address', 'show', 'dev', 'lo'], capture_output=True, text=True)
        present = f' {OUTSIDE}/' in shown.stdout
        if change > 0:
            pids.append(os.getpid())
            if not present:
                subprocess.run(['ip', 'address', 'add', f'{OUTSIDE}/32', 'dev', 'lo'], capture_output=True, check=True)
                added = True
        elif not pids and added and present:
            subprocess.run(['ip', 'address', 'del', f'{OUTSIDE}/32', 'dev', 'lo'], capture_output=True, check=False)
            added = False
        users.seek(0)
        users.truncate()
        users.write(' '.join([*map(str, pids), *(['added'] if added else [])]))


@contextmanager
def _outside_address() -> Iterator[None]:
    _outside_users(+1)
    try:
        yield
    finally:
        _outside_users(-1)


# --- The attempts ------------------------------------------------------------------------------------------

SENDER = 'app@apps.example'


@dataclass(frozen=True)
class Attempt:
    listener: str  # the instance: mx, mx-pipe (the bounce MX), postfix-transactional, postfix-marketing
    # outside, inside, own-sasl (a user of the stream), other-sasl (a user of another stream), cleartext-sasl (AUTH
    # before STARTTLS)
    client: str
    recipient: str
    sender: str = SENDER
    mail_command: str = 'MAIL FROM:<{sender}>'
    rcpt_command: str = 'RCPT TO:<{recipient}>'
    smtputf8: bool = False
    bdat: bool = False
    prelude: tuple[str, ...] = ()  # commands before MAIL


@dataclass
class Outcome:
    auth: int | None = None
    prelude: tuple[int, ...] = ()
    mail: int | None = None
    rcpt: int | None = None
    rcpt_text: str = ''
    data: int | None = None  # the reply to the end of DATA (or to BDAT LAST); None when RCPT was refused

    @property
    def accepted(self) -> bool:
        return self.data == 250


def relay_recipients(domain: str, hostname: str) -> list[str]:
    """The classic relay tests with ``domain`` (a domain of ours: a return-path domain)."""
    return [
        f'bounces@{domain}',  # the control: a return-path address
        f'{FORGED_VERP}@{domain}',
        'victim@other.test',
        f'victim%other.test@{domain}',
        f'"victim@other.test"@{domain}',
        f'victim@other.test@{domain}',
        f'@{domain}:victim@other.test',
        f'@{domain},@{hostname}:victim@other.test',
        f'other.test!victim@{domain}',
        f'victim%other.test@{hostname}',
        'other.test!victim@localhost',
        'other.test!victim',
        'victim%other.test',
        'victim@other.test.',
        'victim@[192.0.2.77]',
        'victim@192.0.2.77',
        'victim@[IPv6:2001:db8::77]',
        'ViCtIm@OtHeR.TeSt.',
        f'fbl%other.test@{domain}',
        f'other.test!fbl@{domain}',
        f'@{domain}:unsubscribe@other.test',
        f'unsubscribe%other.test@{domain}',
        f'"unsubscribe@other.test"@{domain}',
        'victim',
        'postmaster',  # RFC 5321: every server takes it unqualified, without any restriction
        f'victim@[{OUTSIDE}]',  # a domain literal of the host's own address
        f'postmaster@[{OUTSIDE}]',
        'victim@[127.0.0.1]',
    ]


def special_attempts(listener: str, client: str) -> list[Attempt]:
    """Null senders, odd case, SMTPUTF8, BDAT, XCLIENT and XFORWARD, a success notice (DSN) for a forged sender."""
    attempts = [
        Attempt(listener, client, 'victim@other.test', sender='', mail_command='MAIL FROM:<>'),
        Attempt(listener, client, 'victim@other.test', sender='', mail_command='mail from: <>'),
        Attempt(listener, client, 'postmaster', sender='', mail_command='MAIL FROM:<>'),
        Attempt(listener, client, f'victim@[{OUTSIDE}]', sender='', mail_command='MAIL FROM:<>'),
        Attempt(
            listener,
            client,
            'VICTIM@Other.Test',
            mail_command='mAiL fRoM:<{sender}>',
            rcpt_command='rCpT tO: <{recipient}>',
        ),
        Attempt(listener, client, 'víctim@ôther.test', smtputf8=True),
        Attempt(listener, client, 'postmaster', bdat=True),
        # Another client's address and name through XCLIENT or XFORWARD (smtpd_authorized_*_hosts: nobody).
        Attempt(listener, client, 'victim@other.test', prelude=(f'XCLIENT ADDR={INSIDE} NAME=app.example',)),
        Attempt(listener, client, 'victim@other.test', prelude=(f'XFORWARD ADDR={INSIDE} NAME=app.example',)),
    ]
    if is_mx(listener) or client == 'outside':  # a success notice to a forged sender is backscatter too
        bounces = f'bounces@{BOUNCE_DOMAINS.get(listener, BOUNCE_DOMAIN)}'
        notify = 'NOTIFY=SUCCESS,DELAY,FAILURE ORCPT=rfc822;{recipient}'
        mail = 'MAIL FROM:<{sender}> RET=FULL ENVID=probe'
        attempts.append(
            Attempt(listener, client, bounces, 'victim@other.test', mail, f'RCPT TO:<{{recipient}}> {notify}')
        )
    return attempts


def message(attempt_id: str) -> bytes:
    headers = f'From: <{SENDER}>\r\nTo: <victim@other.test>\r\nSubject: relay probe\r\n'
    return f'{headers}X-Relay-Probe: {attempt_id}\r\n\r\nrelay probe {attempt_id}\r\n'.encode()


PROBE_ID = re.compile(rb'^X-Relay-Probe: (a\d+)\r?$', re.M)


def attempt_once(instance: Instance, attempt: Attempt, attempt_id: str) -> Outcome:
    outcome = Outcome()
    source = INSIDE if attempt.client == 'inside' else OUTSIDE
    if attempt.client == 'inside' and is_mx(instance.name):
        source = '127.0.0.1'  # the primary's networks are loopback
    with smtplib.SMTP(
        '127.0.0.1', instance.port, local_hostname='probe.other.test', timeout=20, source_address=(source, 0)
    ) as client:
        client.ehlo()
        if attempt.client == 'cleartext-sasl':  # AUTH is offered after STARTTLS only
            secret = base64.b64encode(b'\0billing-app\0' + PASSWORDS['billing-app'].encode()).decode()
            outcome.auth = client.docmd('AUTH', f'PLAIN {secret}')[0]
            if outcome.auth != 235:
                return outcome
        elif attempt.client.endswith('sasl'):
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            client.starttls(context=context)
            client.ehlo()
            if not client.has_extn('auth'):  # a stream without SASL users offers none
                return outcome
            own = 'newsletter-app' if instance.name == 'postfix-marketing' else 'billing-app'
            user = own if attempt.client == 'own-sasl' else next(name for name in PASSWORDS if name != own)
            try:
                outcome.auth = client.login(user, PASSWORDS[user])[0]
            except smtplib.SMTPAuthenticationError as error:
                outcome.auth = error.smtp_code
                return outcome
        client.command_encoding = 'utf-8'
        outcome.prelude = tuple(client.docmd(command)[0] for command in attempt.prelude)
        mail = attempt.mail_command.format(sender=attempt.sender) + (' SMTPUTF8' if attempt.smtputf8 else '')
        outcome.mail = client.docmd(mail)[0]
        if outcome.mail != 250:
            return outcome
        code, text = client.docmd(attempt.rcpt_command.format(recipient=attempt.recipient))
        outcome.rcpt, outcome.rcpt_text = code, text.decode('utf-8', 'replace')
        if code != 250:
            return outcome
        body = message(attempt_id)
        if attempt.bdat:
            client.send(f'BDAT {len(body)} LAST\r\n'.encode() + body)
            outcome.data = client.getreply()[0]
        else:
            try:
                outcome.data = client.data(body)[0]
            except smtplib.SMTPDataError as error:
                outcome.data = error.smtp_code
    return outcome


def attempts_for(instance: Instance) -> list[Attempt]:
    domain = BOUNCE_DOMAINS.get(instance.name, BOUNCE_DOMAIN)
    attempts: list[Attempt] = []
    clients = ['outside', 'inside'] + (['own-sasl'] if instance.sasl else [])
    for client in clients:
        recipients = relay_recipients(domain, instance.hostname)
        if client == 'own-sasl':  # relaying is what the user may do; what matters is the rest
            recipients = ['victim@other.test', 'postmaster', f'victim@[{OUTSIDE}]']
        attempts += [Attempt(instance.name, client, recipient) for recipient in recipients]
        attempts += special_attempts(instance.name, client) if client != 'own-sasl' else []
        if is_mx(instance.name):
            attempts += [Attempt(instance.name, client, recipient) for recipient in RETURN_PATHS.values()]
    if not is_mx(instance.name):
        attempts.append(Attempt(instance.name, 'other-sasl', 'victim@other.test'))
        attempts.append(Attempt(instance.name, 'cleartext-sasl', 'victim@other.test'))
    return attempts


@dataclass
class Probe:
    instances: dict[str, Instance]
    results: dict[str, tuple[Attempt, Outcome]]
    sink: list[tuple[str, list[str], bytes]]
    queues: dict[str, list[dict[str, Any]]]
    logs: dict[str, str]
    base: Path  # the instances' directories (removed after the module's tests)


# (name, the files' prefix in the render, the instance's SASL users)
INSTANCES = [
    ('mx', 'mx1/etc/postfix/', []),
    ('mx-pipe', 'pipe/etc/postfix/', []),
    ('postfix-transactional', 'mx1/etc/postfix-transactional/', ['billing-app']),
    ('postfix-marketing', 'mx2/etc/postfix-marketing/', ['newsletter-app']),
    ('postfix-cold_outreach', 'mx1/etc/postfix-cold_outreach/', []),  # no SASL users: AUTH is not offered
]
BOUNCE_DOMAINS = {'postfix-marketing': MARKETING_BOUNCE_DOMAIN, 'postfix-cold_outreach': OUTREACH_BOUNCE_DOMAIN}


def is_mx(listener: str) -> bool:
    """The bounce MX: the inbound primary instance, with the Maildir (mx) or with ``postfix__feedback_pipe``."""
    return listener.startswith('mx')


def pipe_primary_files(context: RenderContext, command: Path) -> dict[str, str]:
    """mx1's primary with ``postfix__feedback_pipe``, its command a script that appends each message to a file."""
    host: dict[str, Any] = {
        **host_variables(context, 'mx1'),
        'inventory_hostname': 'mx1',
        'ansible_managed': 'test',
        'postfix__feedback_pipe': True,
        'postfix__feedback_pipe_command': [str(command)],
        'postfix__feedback_pipe_user': 'nobody',
    }
    environment = template_environment()
    variables = role_template_variables(environment, 'postfix', host, opendkim.template_variables('postfix', host, {}))
    return {
        f'pipe/etc/postfix/{name}': environment.get_template(f'postfix/templates/etc/postfix/{name}.j2').render(
            variables
        )
        for name in host['postfix__primary']['files']
    }


@contextmanager
def started(
    context: RenderContext, instances: list[tuple[str, str, list[str]]], prefix: str
) -> Iterator[tuple[dict[str, Instance], Sink, Path]]:
    """The role's files of ``context`` as running throw-away instances (name, file prefix, SASL users), with the
    sink and the outside address; yields them, the sink and their base directory."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    command = base / 'feedback-pipe'
    command.write_text(f'#!/bin/sh\ncat >> {base}/mx-pipe/mail/pipe\n', encoding='utf-8')
    command.chmod(0o755)
    files = render_role_files(context) | pipe_primary_files(context, command)
    policy = _policy_command(base / 'agent')
    sink = Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        tls = _tls_pair(base)
        with ExitStack() as stack:
            stack.enter_context(_outside_address())
            prepared = [
                _prepare(name, files, files_prefix, base / name, sink.server_address[1], tls, users, policy)
                for name, files_prefix, users in instances
            ]
            yield stack.enter_context(_running(prepared)), sink, base
    finally:
        sink.shutdown()
        sink.server_close()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope='module')
def probe() -> Iterator[Probe]:
    needs_postfix()
    context = context_of(parse_spec(probe_spec(), 'spec.yml', as_of=AS_OF))
    with started(context, INSTANCES, 'mailinfra-relay-probe-') as (instances, sink, base):
        results: dict[str, tuple[Attempt, Outcome]] = {}
        for instance in instances.values():
            for attempt in attempts_for(instance):
                attempt_id = f'a{len(results)}'
                results[attempt_id] = (attempt, attempt_once(instance, attempt, attempt_id))

        # Wait until every message has gone where it goes (a deferred one stays: the test then fails on it).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queues = {name: instance.queue() for name, instance in instances.items()}
            if all(entry['queue_name'] == 'deferred' for queue in queues.values() for entry in queue):
                break
            time.sleep(0.2)
        yield Probe(
            instances,
            results,
            list(sink.messages),
            queues,
            {name: instance.log for name, instance in instances.items()},
            base,
        )


def _policy_command(directory: Path) -> str:
    """The role's policy service as the test runs it: user nobody, the system's Python, a contract of the test's.

    The contract is mx1's with the test's signing key (0600, nobody's); ``site`` holds idna, the agent's one base
    dependency (a host's venv has it from the wheelhouse).
    """
    directory.mkdir(mode=0o755)
    user = pwd.getpwnam('nobody')
    key = directory / 'signing-key'
    key.write_bytes(TEST_KEYS[0] + b'\n')
    key.chmod(0o600)
    os.chown(key, user.pw_uid, user.pw_gid)
    data = contract_data({'backend': 'sqlite', 'path': str(directory / 'agent.db')}, {})
    data['suppression'] |= {'signing_key_file': str(key), 'old_signing_key_files': []}
    contract = directory / 'agent.json'
    contract.write_text(json.dumps(data), encoding='utf-8')
    contract.chmod(0o644)
    site = directory / 'site'
    shutil.copytree(Path(idna.__file__).parent, site / 'idna', ignore=shutil.ignore_patterns('__pycache__'))
    python = f'/usr/bin/env PYTHONPATH={ROOT / "agent"}:{site} {SYSTEM_PYTHON} -m mailinfra_agent'
    return f'user=nobody argv={python} ingest --contract {contract} return-path-policy'


def _probe_ids(data: bytes) -> list[str]:
    return [match.decode() for match in PROBE_ID.findall(data)]


# --- What the attempts must show -----------------------------------------------------------------------------


def test_no_injection_listener_takes_a_message_from_outside(probe: Probe) -> None:
    taken = [
        (attempt.listener, attempt.client, attempt.recipient, outcome)
        for attempt, outcome in probe.results.values()
        if not is_mx(attempt.listener)
        and attempt.client in ('outside', 'other-sasl', 'cleartext-sasl')
        and outcome.accepted
    ]
    assert taken == []


def test_the_rfc_5321_postmaster_gets_no_further_than_data(probe: Probe) -> None:
    postmaster = [
        (attempt, outcome)
        for attempt, outcome in probe.results.values()
        if not is_mx(attempt.listener) and attempt.client == 'outside' and attempt.recipient == 'postmaster'
    ]
    assert len(postmaster) == 3 * 3  # plain, null sender, BDAT; three listeners
    for attempt, outcome in postmaster:
        assert (outcome.rcpt, outcome.data) == (250, 554), attempt  # smtpd takes it at RCPT whatever the rules say


def test_a_domain_literal_of_the_host_is_refused_at_rcpt_by_every_injection_listener(probe: Probe) -> None:
    literals = [
        (attempt, outcome)
        for attempt, outcome in probe.results.values()
        if not is_mx(attempt.listener) and attempt.recipient in (f'victim@[{OUTSIDE}]', f'postmaster@[{OUTSIDE}]')
    ]
    assert {attempt.client for attempt, _ in literals} == {'outside', 'inside', 'own-sasl'}
    for attempt, outcome in literals:
        assert (outcome.rcpt, outcome.rcpt_text) == (
            550,
            f'5.1.1 <{attempt.recipient}>: Recipient address rejected: this instance delivers no local mail',
        ), attempt


def test_no_client_speaks_for_another_with_xclient_or_xforward(probe: Probe) -> None:
    preludes = [(attempt, outcome) for attempt, outcome in probe.results.values() if attempt.prelude]
    assert len(preludes) == 2 * 2 * len(probe.instances)  # XCLIENT and XFORWARD, inside and outside
    for attempt, outcome in preludes:
        assert outcome.prelude == (550,), attempt
        if attempt.client == 'outside':
            assert outcome.rcpt in (550, 554), attempt


def test_sasl_users_inject_into_their_own_stream_only(probe: Probe) -> None:
    for attempt, outcome in probe.results.values():
        if attempt.client == 'other-sasl':
            offered = probe.instances[attempt.listener].sasl  # else AUTH is not offered even after STARTTLS
            assert (outcome.auth, outcome.mail) == (535 if offered else None, None), attempt
        elif attempt.client == 'cleartext-sasl':
            assert (outcome.auth, outcome.mail) == (503, None), attempt  # smtpd_tls_auth_only
        elif attempt.client == 'own-sasl':
            assert outcome.auth == 235, attempt
            expected = attempt.recipient in ('victim@other.test', 'postmaster')
            assert outcome.accepted == expected, attempt


@pytest.mark.parametrize('listener', ['mx', 'mx-pipe'])
def test_the_bounce_mx_refuses_every_other_domain_and_delivers_its_own_locally(probe: Probe, listener: str) -> None:
    accepted = {
        attempt_id: attempt
        for attempt_id, (attempt, outcome) in probe.results.items()
        if attempt.listener == listener and outcome.accepted
    }
    outside = {attempt.recipient for attempt in accepted.values() if attempt.client == 'outside'}
    # Ours only, and only plain: Postfix refuses a %, ! or @ in the local part of a domain it does not deliver
    # itself from an untrusted client, so the bounce MX takes none of the routing tricks from outside.
    assert outside == {
        f'bounces@{BOUNCE_DOMAIN}',
        f'{FORGED_VERP}@{BOUNCE_DOMAIN}',
        'postmaster',
        f'postmaster@[{OUTSIDE}]',
        *(address for name, address in RETURN_PATHS.items() if name not in REFUSED),
    }
    # From loopback (its mynetworks) it takes the same forms of its own domains, and still nothing for another.
    inside = {attempt.recipient for attempt in accepted.values() if attempt.client == 'inside'}
    assert all(
        recipient.lower().endswith((f'@{BOUNCE_DOMAIN}', f'@{MARKETING_BOUNCE_DOMAIN}'))
        or recipient.startswith(f'@{BOUNCE_DOMAIN}')
        or 'postmaster' in recipient
        for recipient in inside
    ), inside
    # Each one is in a local mailbox (the inbound user's or the feedback pipe's, root's for postmaster), none at the
    # sink.
    mailboxes = b''.join(path.read_bytes() for path in sorted((probe.base / listener / 'mail').glob('*')))
    assert sorted(_probe_ids(mailboxes)) == sorted(accepted)
    assert not set(accepted) & {found for _, _, data in probe.sink for found in _probe_ids(data)}


@pytest.mark.parametrize('listener', ['mx', 'mx-pipe'])
def test_the_bounce_mx_refuses_a_return_path_of_ours_that_does_not_verify_at_rcpt(probe: Probe, listener: str) -> None:
    answers = {
        (attempt.client, name): outcome
        for attempt, outcome in probe.results.values()
        if attempt.listener == listener
        for name, address in RETURN_PATHS.items()
        if attempt.recipient == address
    }
    assert len(answers) == 2 * len(RETURN_PATHS)  # from outside and from loopback
    for (client, name), outcome in answers.items():
        address = RETURN_PATHS[name]
        if name in REFUSED:  # refused before the message: nothing to bounce, the client's MTA has it
            code, text = REFUSED[name]
            assert (outcome.rcpt, outcome.rcpt_text) == (code, text.format(address=address)), (client, name, outcome)
        else:  # on to the Maildir or the pipe, i.e. to ingest (test_the_bounce_mx_refuses_every_other_domain...)
            assert (outcome.rcpt, outcome.data) == (250, 250), (client, name, outcome)
    log = probe.logs[listener]
    assert 'mailinfra-return-path' not in log  # spawn ran the service and it answered every request


def test_only_the_streams_own_clients_get_mail_out_and_nothing_bounces(probe: Probe) -> None:
    relayed = {
        attempt_id: attempt
        for attempt_id, (attempt, outcome) in probe.results.items()
        if not is_mx(attempt.listener) and outcome.accepted
    }
    assert relayed and {attempt.client for attempt in relayed.values()} == {'inside', 'own-sasl'}
    arrived: dict[str, str] = {}
    for sender, _, data in probe.sink:
        (attempt_id,) = _probe_ids(data)  # a bounce would carry the original's header too
        arrived[attempt_id] = sender
    assert sorted(arrived) == sorted(relayed)
    for attempt_id, sender in arrived.items():
        assert sender == f'<{relayed[attempt_id].sender}>'  # the client's message, not a bounce of it
    # No backscatter waiting either: every queue is empty as postqueue sees it, and no instance bounced anything.
    assert probe.queues == {name: [] for name in probe.instances}
    for name, log in probe.logs.items():
        bounced = [line for line in log.splitlines() if 'status=bounced' in line or 'non-delivery notification' in line]
        if is_mx(name):  # the success notices asked for with a forged sender: refused on the host, never sent
            assert len(bounced) == 2, bounced  # one from outside, one from loopback
            assert all('to=<victim@other.test>, relay=none' in line for line in bounced), bounced
            assert all('status=bounced (this host sends no mail of its own' in line for line in bounced), bounced
        else:
            assert bounced == [], name
        problems = [line for line in log.splitlines() if re.search(r'\b(fatal|panic|error|warning):', line)]
        expected = ('Illegal address syntax', 'authentication fail')  # the 501 to victim@192.0.2.77; other-sasl
        unexpected = [line for line in problems if not any(text in line for text in expected)]
        assert [line for line in unexpected if not HARMLESS.search(line)] == [], name


def test_the_monitoring_probes_pass_on_every_listener(probe: Probe, blackbox: str) -> None:  # noqa: F811
    """The rendered blackbox modules (STARTTLS, TCP) against the real listeners, from 127.0.0.1: outside the injection
    networks (127.0.0.2/32), as the monitoring host is. A healthy listener raises no MailinfraStarttlsFailed."""
    for name, instance in probe.instances.items():
        for module in ('smtp_starttls', 'tcp_connect'):
            assert blackbox_probe(blackbox, module, f'127.0.0.1:{instance.port}')['probe_success'] == 1, (name, module)
