"""The Postfix queue collector (``mailinfra_agent.queue.postfix``) on real Postfix queues.

A throw-away Debian Postfix instance (its own config, queue and data directories, listeners on loopback only)
receives mail over SMTP for domains routed to local servers that defer it (a 421 4.7.28 greeting; 450 4.2.1 at RCPT;
a closed port), one message is held with ``postsuper -h`` and one stays in maildrop (pickup disabled). The collector
must report what Postfix's own ``postqueue -j`` sees, plus ISPs, status codes and ages. Then files are broken,
removed mid-scrape and made unreadable: counted errors, never a crash.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import smtplib
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import load_contract
from mailinfra_agent.contract.schema import Isp
from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.queue import QUEUE_NAMES, QueueCollector, StreamQueue
from mailinfra_agent.queue import postfix as collector_module
from mailinfra_agent.queue.postfix import (
    PRIMARY_STREAM,
    PostfixInstance,
    PostfixQueueCollector,
    instances_from_contract,
    top,
)
from tests.agent.test_queue_postfix_records import record

ROOT = Path(__file__).resolve().parents[2]
ISPS = (
    Isp('*', 'other recipients', (), ()),
    Isp('gmail', 'Gmail', ('gmail.com', 'googlemail.com'), ('.google.com',)),
    Isp('yahoo', 'Yahoo', ('yahoo.com',), ()),
)


# --- without Postfix -----------------------------------------------------------------------------------------------


def test_top_keeps_n_domains_and_sums_the_rest_as_other() -> None:
    counts = {'a.example': 5, 'b.example': 3, 'c.example': 3, 'd.example': 1}
    assert top(counts, 2) == {'a.example': 5, 'b.example': 3, 'other': 4}
    assert top(counts, 10) == counts


def test_instances_come_from_the_contract() -> None:
    postfix_host = load_contract(ROOT / 'tests/golden/newsletter-publisher/mta/mx2/etc/mailinfra/agent.json')
    assert instances_from_contract(postfix_host) == [
        PostfixInstance('postfix', PRIMARY_STREAM, '/etc/postfix'),
        PostfixInstance('postfix-marketing', 'marketing', '/etc/postfix-marketing'),
    ]
    powermta_hosts = [
        load_contract(path)
        for path in sorted(ROOT.glob('tests/golden/*/mta/*/etc/mailinfra/agent.json'))
        if json.loads(path.read_text())['host']['mta'] == 'powermta'
    ]
    assert powermta_hosts and all(instances_from_contract(contract) == [] for contract in powermta_hosts)
    collector = PostfixQueueCollector.from_contract(postfix_host, config_root='/nonexistent')
    checked: QueueCollector = collector  # the exporter's interface
    assert checked.name == 'postfix'
    assert collector._isp('mail.gmail.com') == 'gmail' and collector._isp('example.org') == 'other'


def test_an_instance_without_a_queue_directory_is_down_and_the_others_still_report(tmp_path: Path) -> None:
    if shutil.which('postconf') is None:
        pytest.skip('needs postconf (Debian postfix)')
    queue = tmp_path / 'queue'
    (queue / 'deferred').mkdir(parents=True)
    config = tmp_path / 'config'
    config.mkdir()
    (config / 'main.cf').write_text(f'queue_directory = {queue}\n')
    collector = PostfixQueueCollector(
        [PostfixInstance('postfix-a', 'a', str(config)), PostfixInstance('postfix-b', 'b', str(tmp_path / 'none'))]
    )
    good, missing = collector.collect()
    assert (good.up, good.messages, good.errors) == (True, dict.fromkeys(QUEUE_NAMES, 0), {})
    assert good.oldest_age_seconds == dict.fromkeys(QUEUE_NAMES, 0.0)
    assert (missing.up, missing.instance, missing.errors) == (False, 'postfix-b', {'queue_directory': 1})


# --- Debian's Postfix ----------------------------------------------------------------------------------------------


class _Deferring(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, greeting: str, rcpt: str) -> None:
        self.greeting, self.rcpt = greeting, rcpt
        super().__init__(('127.0.0.1', 0), _DeferringHandler)


class _DeferringHandler(socketserver.StreamRequestHandler):
    """An SMTP server that defers: at the greeting, or at RCPT TO."""

    server: _Deferring

    def handle(self) -> None:
        self.wfile.write(self.server.greeting.encode() + b'\r\n')
        if self.server.greeting.startswith('4'):
            return
        for line in self.rfile:
            verb = line[:4].upper()
            if verb == b'QUIT':
                self.wfile.write(b'221 bye\r\n')
                return
            reply = {b'EHLO': '250 sink.example.test', b'HELO': '250 ok', b'MAIL': '250 ok', b'RCPT': self.server.rcpt}
            self.wfile.write(reply.get(verb, '503 not now').encode() + b'\r\n')


@dataclass
class Instance:
    root: Path
    config: Path
    queue: Path
    smtp: str
    started: float

    def postfix(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(['postfix', '-c', str(self.config), *args], capture_output=True, text=True, check=False)

    def postqueue_j(self) -> list[dict[str, Any]]:
        out = subprocess.run(
            ['postqueue', '-c', str(self.config), '-j'], capture_output=True, text=True, check=True
        ).stdout
        return [json.loads(line) for line in out.splitlines()]


def _send(smtp: str, recipients: list[str]) -> None:
    host, port = smtp.rsplit(':', 1)
    message = f'From: <news@brand.example>\r\nTo: <{recipients[0]}>\r\nSubject: queue test\r\n\r\nhello\r\n'
    with smtplib.SMTP(host, int(port), local_hostname='client.example.test', timeout=20) as client:
        client.sendmail('news@brand.example', recipients, message)


@pytest.fixture(scope='module')
def instance() -> Iterator[Instance]:
    if os.geteuid() != 0 or shutil.which('postfix') is None:
        pytest.skip('needs root and Postfix (apt-get install postfix; script/bootstrap does)')
    rate = _Deferring('421 4.7.28 gsmtp: unusual rate of unsolicited mail, try again later', '250 ok')
    busy = _Deferring('220 mx.yahoo.example.test ESMTP', '450 4.2.1 mailbox busy, try again later')
    for server in (rate, busy):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:  # a port nobody listens on: connection refused, 4.4.1
        closed.bind(('127.0.0.1', 0))
        refused = closed.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix='mailinfra-queue-test-'))  # postfix must reach it: not under pytest's 0700 tmp
    os.chmod(root, 0o755)
    config, queue, data = root / 'config', root / 'queue', root / 'data'
    for directory in (config, queue, data):
        directory.mkdir()
    postfix_user = pwd.getpwnam('postfix')
    os.chown(data, postfix_user.pw_uid, postfix_user.pw_gid)
    shutil.copyfile('/etc/postfix/master.cf', config / 'master.cf')
    port = free_port()
    with (config / 'master.cf').open('a') as master_cf:
        master_cf.write(f'127.0.0.1:{port} inet n - n - - smtpd\n')
    transports = (
        f'gmail.com=smtp:[127.0.0.1]:{rate.server_address[1]}, yahoo.com=smtp:[127.0.0.1]:{busy.server_address[1]}'
    )
    (config / 'main.cf').write_text(
        f"""\
compatibility_level = 3.6
myhostname = queue-test.example.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
queue_directory = {queue}
data_directory = {data}
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
master_service_disable = smtp/inet, pickup/unix
transport_maps = inline:{{{transports}}}
default_transport = smtp:[127.0.0.1]:{refused}
smtp_tls_security_level = none
"""
    )
    started = time.time()
    run = Instance(root, config, queue, f'127.0.0.1:{port}', started)
    start = run.postfix('start')
    assert start.returncode == 0, start.stderr
    try:
        _send(run.smtp, ['one@gmail.com'])
        _send(run.smtp, ['two@gmail.com', 'two@yahoo.com'])
        _send(run.smtp, ['three@Example.ORG'])
        _send(run.smtp, ['four@yahoo.com'])
        _send(run.smtp, ['five@gmail.com'])
        # pickup is disabled: this one stays in maildrop.
        subprocess.run(
            ['sendmail', '-C', str(config), '-f', 'local@brand.example', 'six@example.net'],
            input='Subject: local\n\nhello\n',
            text=True,
            check=True,
            capture_output=True,  # postdrop warns that pickup does not answer: it is disabled
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            queued = run.postqueue_j()
            if sorted(str(item['queue_name']) for item in queued) == ['deferred'] * 5 + ['maildrop']:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f'the messages were not all deferred: {run.postqueue_j()}')
        held = next(item for item in run.postqueue_j() if item['recipients'][0]['address'] == 'four@yahoo.com')
        subprocess.run(['postsuper', '-c', str(config), '-h', str(held['queue_id'])], check=True, capture_output=True)
        yield run
    finally:
        run.postfix('stop')
        for server in (rate, busy):
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)


def scrape(instance: Instance, collector: PostfixQueueCollector | None = None) -> StreamQueue:
    collector = collector or PostfixQueueCollector(
        [PostfixInstance('postfix-news', 'news', str(instance.config))], ISPS
    )
    (result,) = collector.collect()
    return result


def test_counts_isps_reasons_and_domains_of_a_real_queue(instance: Instance) -> None:
    result = scrape(instance)
    assert result.up and result.errors == {}
    assert (result.stream, result.instance) == ('news', 'postfix-news')
    assert result.messages == {'maildrop': 1, 'incoming': 0, 'active': 0, 'deferred': 4, 'hold': 1}
    # what Postfix itself sees (showq lists maildrop files too)
    by_queue = {queue: 0 for queue in QUEUE_NAMES}
    for item in instance.postqueue_j():
        by_queue[str(item['queue_name'])] += 1
    assert by_queue == result.messages
    assert result.deferred_by_isp == {'gmail': 3, 'other': 1, 'yahoo': 1}
    assert result.deferral_reasons == {'4.2.1': 1, '4.4.1': 1, '4.7.28': 3}
    assert result.recipient_domains == {'gmail.com': 3, 'yahoo.com': 2, 'example.org': 1, 'example.net': 1}


def test_ages_of_the_oldest_message_per_queue(instance: Instance) -> None:
    result = scrape(instance)
    elapsed = time.time() - instance.started
    for queue in ('deferred', 'hold', 'maildrop'):
        assert 0 <= result.oldest_age_seconds[queue] <= elapsed + 1, queue
    assert result.oldest_age_seconds['deferred'] >= result.oldest_age_seconds['hold'] - 1  # the held one came 4th
    assert result.oldest_age_seconds['incoming'] == result.oldest_age_seconds['active'] == 0.0


def test_the_top_domains_are_cut_to_n_plus_other(instance: Instance) -> None:
    collector = PostfixQueueCollector(
        [PostfixInstance('postfix-news', 'news', str(instance.config))], ISPS, top_domains=1
    )
    assert scrape(instance, collector).recipient_domains == {'gmail.com': 3, 'other': 4}


def _copy(instance: Instance, tmp_path: Path) -> tuple[Path, PostfixInstance]:
    """A copy of the instance's queue (the live one stays intact for the other tests)."""
    copy = tmp_path / 'copy'
    shutil.copytree(instance.queue, copy / 'queue', symlinks=True, ignore=shutil.ignore_patterns('public', 'private'))
    (copy / 'config').mkdir()
    (copy / 'config' / 'main.cf').write_text(f'queue_directory = {copy / "queue"}\n')
    return copy / 'queue', PostfixInstance('postfix-copy', 'copy', str(copy / 'config'))


def _deferred_files(queue: Path) -> list[Path]:
    return sorted(path for path in (queue / 'deferred').rglob('*') if path.is_file())


def test_malformed_and_truncated_queue_files_are_counted_errors(instance: Instance, tmp_path: Path) -> None:
    queue, copy = _copy(instance, tmp_path)
    collector = PostfixQueueCollector([copy], ISPS)
    files = _deferred_files(queue)
    files[0].write_bytes(files[0].read_bytes()[:40])  # truncated
    files[1].write_bytes(b'\x00garbage' * 10)  # not a queue file
    (result,) = collector.collect()
    assert result.up
    assert result.errors == {'malformed': 2}
    assert result.messages['deferred'] == 4  # still queued files
    assert sum(result.deferral_reasons.values()) < 5  # only the readable ones are classified
    assert result.messages['hold'] == 1 and result.messages['maildrop'] == 1


def test_a_time_no_float_holds_is_a_malformed_file_not_a_failed_scrape(instance: Instance, tmp_path: Path) -> None:
    """A ``T`` record of 400 digits raised OverflowError: every instance of the collector failed at every scrape."""
    queue, copy = _copy(instance, tmp_path)
    collector = PostfixQueueCollector([copy], ISPS)
    (before,) = collector.collect()
    bad = _deferred_files(queue)[0].parent / 'BADF00D42'
    bad.write_bytes(record('T', b'9' * 400 + b' 0') + record('S', b'') + record('E', b''))
    bad.chmod(0o700)  # a finished queue file
    (after,) = PostfixQueueCollector([copy], ISPS).collect()
    assert after.up
    assert after.errors == {'malformed': 1}
    assert after.messages['deferred'] == before.messages['deferred'] + 1
    assert after.deferral_reasons == before.deferral_reasons


def test_files_that_vanish_mid_scrape_are_counted_and_the_scrape_goes_on(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, copy = _copy(instance, tmp_path)
    victim = _deferred_files(queue)[0]
    real = collector_module.read_envelope

    def vanishing(path: str, **kwargs: object) -> object:
        if path == str(victim):
            os.unlink(path)  # qmgr delivered it between our listing and our read
        return real(path)

    monkeypatch.setattr(collector_module, 'read_envelope', vanishing)
    (result,) = PostfixQueueCollector([copy], ISPS).collect()
    assert result.errors == {'vanished': 1}
    assert result.messages['deferred'] == 3 and result.messages['hold'] == 1


def test_a_warm_scrape_reads_only_new_or_changed_files(
    instance: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, copy = _copy(instance, tmp_path)
    reads: list[str] = []
    real = collector_module.read_envelope

    def counting(path: str, **kwargs: object) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(collector_module, 'read_envelope', counting)
    collector = PostfixQueueCollector([copy], ISPS)
    first = collector.collect()[0]
    assert len(reads) == 6
    past = time.time() - 60  # as if the directories had not changed for a minute
    for directory in [queue / 'deferred', queue / 'hold', *(queue / 'deferred').iterdir()]:
        os.utime(directory, (past, past))
    collector.collect()
    reads.clear()
    second = collector.collect()[0]
    assert reads == [] and second.messages == first.messages and second.deferral_reasons == first.deferral_reasons
    # qmgr retries one and defers it again: deferred -> active -> deferred, a new defer log, a new mtime.
    moved = _deferred_files(queue)[0]
    defer_log = queue / 'defer' / moved.parent.name / moved.name
    os.rename(moved, queue / 'active' / moved.name)
    defer_log.write_text(f'recipient=x@gmail.com\nstatus=5.9.9\naction=delayed\nreason=secret {moved.name}\n')
    os.utime(queue / 'active' / moved.name, (past + 3600, past + 3600))
    os.rename(queue / 'active' / moved.name, moved)
    third = collector.collect()[0]
    assert reads == [str(moved)]
    assert third.deferral_reasons.get('5.9.9') == 1  # read again with its new defer log
    assert not any('secret' in key for key in third.deferral_reasons)


def test_without_privilege_the_instance_is_down_not_a_crash(instance: Instance) -> None:
    base = Path(tempfile.mkdtemp(prefix='mailinfra-queue-test-'))
    try:
        _unprivileged(instance, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _unprivileged(instance: Instance, base: Path) -> None:
    queue, copy = _copy(instance, base)
    for directory in (base, base / 'copy', base / 'copy' / 'config', queue):
        os.chmod(directory, 0o755)  # the queue subdirectories stay 0700 postfix, as on a host
    os.chmod(base / 'copy' / 'config' / 'main.cf', 0o644)
    nobody = pwd.getpwnam('nobody')
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read)
            os.setgid(nobody.pw_gid)
            os.setgroups([])
            os.setuid(nobody.pw_uid)
            (result,) = PostfixQueueCollector([copy], ISPS).collect()
            os.write(write, json.dumps({'up': result.up, 'errors': dict(result.errors)}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = json.loads(pipe.read() or '{}')
    os.waitpid(child, 0)
    assert answer['up'] is False
    assert answer['errors'].get('unreadable', 0) >= 4


def test_a_warm_scrape_after_changes_equals_a_cold_one(instance: Instance, tmp_path: Path) -> None:
    queue, copy = _copy(instance, tmp_path)
    past = time.time() - 60  # every directory old enough to be trusted by the warm scrape, on any machine
    for directory in [queue, *(path for path in queue.rglob('*') if path.is_dir())]:
        os.utime(directory, (past, past))
    warm = PostfixQueueCollector([copy], ISPS)
    warm.collect()
    files = _deferred_files(queue)
    files[0].unlink()  # delivered
    os.rename(files[1], queue / 'hold' / files[1].name)  # held
    # Broken, the way a deferred file can change: moved out, edited, moved back (qmgr never edits it in place, and a
    # hash directory whose mtime did not change is trusted: an in-place edit passed only on a fast machine).
    os.rename(files[2], queue / 'active' / files[2].name)
    (queue / 'active' / files[2].name).write_bytes(b'garbage')
    os.rename(queue / 'active' / files[2].name, files[2])
    (after,) = warm.collect()
    (cold,) = PostfixQueueCollector([copy], ISPS).collect()
    assert after.messages == cold.messages == {'maildrop': 1, 'incoming': 0, 'active': 0, 'deferred': 2, 'hold': 2}
    assert after.errors == cold.errors == {'malformed': 1}
    for name in ('deferred_by_isp', 'recipient_domains', 'deferral_reasons'):
        assert getattr(after, name) == getattr(cold, name), name
    assert sum(after.deferred_by_isp.values()) <= 2


def test_files_postfix_moved_to_corrupt_are_counted(instance: Instance) -> None:
    """A damaged file dropped in incoming: Postfix's qmgr finds it unreadable and moves it to corrupt/ itself."""
    assert scrape(instance).corrupt == 0  # no corrupt/ yet, or an empty one
    postfix_user = pwd.getpwnam('postfix')
    name = 'D4MAGED1234'
    damaged = instance.queue / 'incoming' / name
    damaged.write_bytes(b'\x00not a queue file' * 4)
    os.chown(damaged, postfix_user.pw_uid, postfix_user.pw_gid)
    damaged.chmod(0o700)  # finished: qmgr takes it
    moved = instance.queue / 'corrupt' / name
    try:
        for _ in range(600):  # qmgr scans incoming when kicked
            subprocess.run(['postkick', '-c', str(instance.config), 'public', 'qmgr', 'I'], check=False)
            if moved.exists():
                break
            time.sleep(0.1)
        assert moved.exists(), (instance.root / 'maillog').read_text(errors='replace')[-2000:]
        result = scrape(instance)
        assert result.corrupt == 1 and result.up
        assert result.messages['incoming'] == result.messages['active'] == 0
    finally:
        damaged.unlink(missing_ok=True)
        moved.unlink(missing_ok=True)
