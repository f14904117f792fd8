"""Run a staged Postfix configuration in a throw-away instance and make it carry mail.

A start alone proves little: smtpd(8) and smtp(8) start only on demand, qmgr(8) reads its times when it starts,
and a milter that does not answer only tempfails mail. So the trial

1. copies the staged directory into a temporary one and points queue_directory, data_directory and maillog_file
   there (its own queue, its own log, its own master pid), with the multi-instance settings cleared, so that
   ``postfix start`` starts this instance alone;
2. moves every inet listener of master.cf to 127.0.0.1 on a free port (one is added if there is none), lets
   127.0.0.0/8 relay, and routes the domain ``sink.invalid`` through the configuration's own default transport
   (or its first smtp(8) service, when the default is not one) to an ``smtp-sink`` on 127.0.0.1 (TLS policy
   "none" for that one destination only);
3. starts it, sends one message to each listener, and waits until the sink has all of them;
4. fails on a refused message, a message that does not arrive, or any fatal, panic, error or warning line in the
   instance's log; then stops the instance and removes the directory.

Nothing of the live instances is touched: other directories, other ports, no reload.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ['BAD_LOG_LINE', 'SINK_DOMAIN', 'Trial', 'delivery_transport', 'free_port', 'listeners', 'trial']

SINK_DOMAIN = 'sink.invalid'
BAD_LOG_LINE = re.compile(r'\b(fatal|panic|error|warning):')
HARMLESS = re.compile(r'warning: file system clock is \d+ seconds? ahead of local clock')
"""A warning about the host, not the configuration: file systems whose time stamps run a second ahead of the
clock (seen with ext4 on Linux 6.18) make cleanup say so now and then."""
SINK_USER = 'nobody'


@dataclass
class Trial:
    """What a trial saw: the problems (empty when it passed) and the time it took."""

    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    listeners: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port: int = probe.getsockname()[1]
        return port


def _entries(text: str) -> list[list[str]]:
    """master.cf as logical entries, each the list of its physical lines (comments kept as their own entries)."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if line[:1].isspace() and line.strip() and not line.strip().startswith('#') and entries:
            entries[-1].append(line)
        else:
            entries.append([line])
    return entries


def listeners(master_cf: str, ports: Sequence[int]) -> tuple[str, list[str]]:
    """master.cf with each inet service on 127.0.0.1 and the next port; the new listener addresses.

    Without an inet service one smtpd listener is added, so that the trial can still inject a message."""
    available = iter(ports)
    out: list[str] = []
    moved: list[str] = []
    for entry in _entries(master_cf):
        fields = entry[0].split()
        if len(fields) >= 8 and not fields[0].startswith('#') and fields[1] == 'inet':
            address = f'127.0.0.1:{next(available)}'
            moved.append(address)
            entry = [entry[0].replace(fields[0], address, 1), *entry[1:]]
        out += entry
    if not moved:
        address = f'127.0.0.1:{next(available)}'
        moved.append(address)
        out.append(f'{address} inet n - n - - smtpd')
    return '\n'.join(out) + '\n', moved


def delivery_transport(default: str, services: str) -> str:
    """The transport the trial delivers through: the default transport when master.cf runs smtp(8) or lmtp(8)
    for it, else the first service that does (an instance whose default is error: still has its smtp)."""
    clients = [
        fields[0]
        for fields in (line.split() for line in services.splitlines())
        if len(fields) >= 8 and fields[1] == 'unix' and fields[7] in ('smtp', 'lmtp')
    ]
    if default in clients or not clients:
        return default or 'smtp'
    return clients[0]


def _postconf(config: str, *args: str) -> str:
    result = subprocess.run(['postconf', '-c', config, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f'postconf {" ".join(args)}: {result.stderr.strip()}')
    return result.stdout


def _prepare(staged: str, root: str, sink_port: int) -> list[str]:
    config = os.path.join(root, 'config')
    shutil.copytree(staged, config)
    for directory in ('queue', 'data', 'sink'):
        os.mkdir(os.path.join(root, directory))
    os.chmod(os.path.join(root, 'sink'), 0o1777)
    with open(os.path.join(config, 'master.cf'), encoding='utf-8') as handle:
        master_cf, moved = listeners(handle.read(), [free_port() for _ in range(64)])
    with open(os.path.join(config, 'master.cf'), 'w', encoding='utf-8') as handle:
        handle.write(master_cf)

    current = dict(line.split(' = ', 1) for line in _postconf(config, '-n').splitlines() if ' = ' in line)
    transport = delivery_transport(
        _postconf(config, '-h', '-x', 'default_transport').strip().split(':', 1)[0], _postconf(config, '-M')
    )
    destination = f'[127.0.0.1]:{sink_port}'
    routes = [f'inline:{{{SINK_DOMAIN}={transport}:{destination}}}', current.get('transport_maps', '')]
    policies = [f'inline:{{{destination}=none}}', current.get('smtp_tls_policy_maps', '')]
    settings = {
        'queue_directory': os.path.join(root, 'queue'),
        'data_directory': os.path.join(root, 'data'),
        'maillog_file': os.path.join(root, 'maillog'),
        'maillog_file_prefixes': root,
        'multi_instance_enable': 'no',
        'multi_instance_directories': '',
        'multi_instance_wrapper': '',
        'multi_instance_name': '',
        'multi_instance_group': '',
        'mynetworks': '127.0.0.0/8',
        'transport_maps': ', '.join(route for route in routes if route),
        'smtp_tls_policy_maps': ', '.join(policy for policy in policies if policy),
    }
    # The role builds the aliases database after the install: the trial builds its own from the same source.
    aliases, rebuild = _aliases(root, _postconf(config, '-h', '-x', 'alias_maps').strip())
    if rebuild:
        settings['alias_maps'] = settings['alias_database'] = ', '.join(aliases)
    _postconf(config, '-e', *(f'{name}={value}' for name, value in settings.items()))
    owner = pwd.getpwnam(_postconf(config, '-h', 'mail_owner').strip())
    os.chown(settings['data_directory'], owner.pw_uid, owner.pw_gid)
    for table in rebuild:
        built = subprocess.run(['postalias', '-c', config, table], capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise OSError(f'postalias {table}: {built.stderr.strip()}')
    return moved


def _aliases(root: str, alias_maps: str) -> tuple[list[str], list[str]]:
    """alias_maps with each hash: table whose database is missing replaced by a copy in ``root`` (from its source,
    or empty without one), and the copies to build."""
    tables: list[str] = []
    rebuild: list[str] = []
    for number, item in enumerate(item for item in re.split(r'[\s,]+', alias_maps) if item):
        match = re.fullmatch(r'hash:(/\S+)', item)
        if not match or os.path.isfile(match.group(1) + '.db'):
            tables.append(item)
            continue
        copy = os.path.join(root, f'aliases{number}')
        if os.path.isfile(match.group(1)):
            shutil.copyfile(match.group(1), copy)
        else:
            open(copy, 'w', encoding='utf-8').close()
        tables.append(f'hash:{copy}')
        rebuild.append(f'hash:{copy}')
    return tables, rebuild


def _send(address: str, token: str) -> str | None:
    host, port = address.rsplit(':', 1)
    message = (
        f'From: <trial@{SINK_DOMAIN}>\r\nTo: <{token}@{SINK_DOMAIN}>\r\nSubject: mailinfra trial {token}\r\n'
        f'Message-ID: <{token}@{SINK_DOMAIN}>\r\n\r\ntrial {token}\r\n'
    )
    try:
        with smtplib.SMTP(host, int(port), local_hostname='trial.invalid', timeout=20) as client:
            client.sendmail(f'trial@{SINK_DOMAIN}', [f'{token}@{SINK_DOMAIN}'], message)
    except (smtplib.SMTPException, OSError) as error:
        return f'listener {address} did not accept a message: {error}'
    return None


def _log_problems(root: str, output: str) -> list[str]:
    path = os.path.join(root, 'maillog')
    lines = output.splitlines()
    if os.path.isfile(path):
        with open(path, encoding='utf-8', errors='replace') as log:
            lines += log.read().splitlines()
    return [f'log: {line.strip()}' for line in lines if BAD_LOG_LINE.search(line) and not HARMLESS.search(line)]


def trial(staged: str, *, timeout: float = 30.0, work: str | None = None, keep: bool = False) -> Trial:
    """Run ``staged`` in a throw-away instance (root only); the problems found, or none."""
    started = time.monotonic()
    result = Trial()
    root = tempfile.mkdtemp(prefix='mailinfra-postfix-trial-', dir=work)
    os.chmod(root, 0o755)
    config = os.path.join(root, 'config')
    sink: subprocess.Popen[bytes] | None = None
    running = False
    try:
        sink_port = free_port()
        result.listeners = _prepare(staged, root, sink_port)
        dump = os.path.join(root, 'sink', 'messages')
        with open(os.path.join(root, 'sink.log'), 'wb') as sink_log:
            sink = subprocess.Popen(
                ['smtp-sink', '-u', SINK_USER, '-h', 'sink.invalid', '-D', dump, f'127.0.0.1:{sink_port}', '64'],
                stdout=subprocess.DEVNULL,
                stderr=sink_log,
            )
        start = subprocess.run(['postfix', '-c', config, 'start'], capture_output=True, text=True, check=False)
        running = start.returncode == 0
        if not running:
            result.problems.append(f'postfix start failed: {" ".join(start.stderr.split())}'.rstrip(': '))
            result.problems += _log_problems(root, start.stderr)
            return result
        tokens = {f'trial-{uuid.uuid4().hex[:16]}': address for address in result.listeners}
        for token, address in tokens.items():
            refused = _send(address, token)
            if refused:
                result.problems.append(refused)
        waiting = set(tokens) if not result.problems else set()
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            time.sleep(0.2)
            if os.path.isfile(dump):
                with open(dump, encoding='utf-8', errors='replace') as received:
                    content = received.read()
                waiting = {token for token in waiting if token not in content}
            if any('fatal:' in problem or 'panic:' in problem for problem in _log_problems(root, '')):
                break
        late = f'within {timeout:g} s' if time.monotonic() >= deadline else 'before a daemon failed'
        result.problems += [
            f'the message from listener {tokens[token]} did not reach the sink {late}' for token in sorted(waiting)
        ]
        result.problems += _log_problems(root, start.stderr)
        if sink.poll() is not None:
            with open(os.path.join(root, 'sink.log'), encoding='utf-8', errors='replace') as sink_log_text:
                result.problems.append(f'smtp-sink exited: {" ".join(sink_log_text.read().split())}')
        return result
    finally:
        if running:
            subprocess.run(['postfix', '-c', config, 'stop'], capture_output=True, check=False)
            _wait_stopped(os.path.join(root, 'queue', 'pid', 'master.pid'))
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=5)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        result.seconds = time.monotonic() - started


def _wait_stopped(pid_file: str, timeout: float = 10.0) -> None:
    """Wait until the trial's master has exited; kill it (and only it) if it does not."""
    try:
        with open(pid_file, encoding='ascii') as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
