"""The Postfix queue collector against Postfix's own view of the same queues: ``postqueue -j``, ``qshape`` and the
exporter's text through ``promtool check metrics``.

One throw-away Debian Postfix instance, started once, laid out the way a tuned production instance can be:
``enable_long_queue_ids = yes``, ``hash_queue_depth = 2`` and ``hash_queue_names = defer`` (the defer logs hashed,
the deferred queue flat). It takes mail over SMTP for domains whose servers defer it (421 4.7.28 greeting, 450 4.2.1
at RCPT, a closed port) or accept it (``discard:``): several recipients per message, one of them delivered (its
record marked done), a null sender, an SMTPUTF8 recipient, 1,200 recipients in one message. One message is held and
marked for forced expiry (``postsuper -h``, ``postsuper -e``: mode 0710). A stopped copy of the queue is a second
instance (postmulti's layout: its own config and queue directory, ``queue_directory`` written with a ``$name``),
requeued with ``postsuper -r ALL``; ``postqueue`` reads a stopped instance's queue directly.

Where Postfix's tools count otherwise, the difference is asserted and explained (docs/monitoring.md, "Queue
metrics").
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailinfra_agent.exporter.metrics import QueueMetrics
from mailinfra_agent.exporter.server import exposition
from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.queue import QUEUE_NAMES
from mailinfra_agent.queue.postfix import (
    HASH_DIR,
    InstanceScan,
    PostfixInstance,
    PostfixQueueCollector,
    queue_hash,
)
from mailinfra_agent.queue.postfix_records import domain_of, read_envelope
from tests.agent.test_queue_postfix import ISPS, _Deferring

BIG = 1200  # recipients of one message: more than duplicate_filter_limit (1000)
BIG_DOMAINS = 30


@dataclass
class Queues:
    root: Path
    live: PostfixInstance
    copy: PostfixInstance
    copy_queue: Path
    held: str


def postqueue_j(instance: PostfixInstance) -> list[dict[str, Any]]:
    out = subprocess.run(
        ['postqueue', '-c', instance.config_directory, '-j'], capture_output=True, check=True, timeout=60
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def _send(port: int, sender: str, recipients: list[str], utf8: bool = False) -> None:
    with smtplib.SMTP('127.0.0.1', port, local_hostname='client.example.test', timeout=30) as client:
        body = b'From: <news@brand.example>\r\nSubject: queue test\r\n\r\nhello\r\n'
        client.sendmail(sender, recipients, body, mail_options=['SMTPUTF8'] if utf8 else [])


@pytest.fixture(scope='module')
def queues() -> Iterator[Queues]:
    if os.geteuid() != 0 or shutil.which('postfix') is None or shutil.which('qshape') is None:
        pytest.skip('needs root and Postfix (apt-get install postfix; script/bootstrap does)')
    rate = _Deferring('421 4.7.28 gsmtp: unusual rate of unsolicited mail, try again later', '250 ok')
    busy = _Deferring('220 mx.yahoo.example.test ESMTP', '450 4.2.1 mailbox busy, try again later')
    for server in (rate, busy):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as closed:  # a port nobody listens on: connection refused, 4.4.1
        closed.bind(('127.0.0.1', 0))
        refused = closed.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix='mailinfra-postqueue-test-'))  # postfix must reach it
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
        f'gmail.com=smtp:[127.0.0.1]:{rate.server_address[1]}, yahoo.com=smtp:[127.0.0.1]:{busy.server_address[1]}, '
        'accepted.example=discard:'
    )
    settings = f"""\
compatibility_level = 3.6
myhostname = postqueue-test.example.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
data_directory = {data}
master_service_disable = smtp/inet, pickup/unix
transport_maps = inline:{{{transports}}}
default_transport = smtp:[127.0.0.1]:{refused}
smtp_tls_security_level = none
smtputf8_enable = yes
smtpd_recipient_limit = {BIG}
enable_long_queue_ids = yes
hash_queue_depth = 2
hash_queue_names = defer
"""
    (config / 'main.cf').write_text(
        f'{settings}queue_directory = {queue}\nmaillog_file = {root}/maillog\nmaillog_file_prefixes = {root}\n'
    )
    live = PostfixInstance('postfix-news', 'news', str(config))
    started = subprocess.run(['postfix', '-c', str(config), 'start'], capture_output=True, text=True, check=False)
    assert started.returncode == 0, started.stderr
    try:
        _send(port, 'one@brand.example', ['one@gmail.com'])
        _send(port, 'two@brand.example', ['two@gmail.com', 'two@yahoo.com', 'done@accepted.example', 'x@Example.ORG'])
        _send(port, '', ['null@gmail.com'])
        _send(port, 'utf8@brand.example', ['jörg@münchen.example', 'ü@GMAIL.com'], utf8=True)
        _send(port, 'big@brand.example', [f'user{n}@d{n % BIG_DOMAINS}.example' for n in range(BIG)])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            listed = postqueue_j(live)
            if [item['queue_name'] for item in listed] == ['deferred'] * 5:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f'the messages were not all deferred: {postqueue_j(live)}')
        held = next(str(item['queue_id']) for item in listed if item['sender'] == 'one@brand.example')
        for flag in ('-h', '-e'):  # held, and marked for forced expiry (S_IXGRP: mode 0710)
            subprocess.run(['postsuper', '-c', str(config), flag, held], check=True, capture_output=True)
        # The second instance: a copy of the queue (stopped), queue_directory written with a $name.
        copy_config, copy_queue = root / 'copy' / 'config', root / 'copy' / 'queue'
        copy_config.mkdir(parents=True)
        shutil.copytree(queue, copy_queue, symlinks=True, ignore=shutil.ignore_patterns('public', 'private', 'pid'))
        subprocess.run(['chown', '-R', 'postfix:postfix', str(copy_queue)], check=True)
        os.chown(copy_queue, 0, 0)
        shutil.copyfile(config / 'master.cf', copy_config / 'master.cf')
        (copy_config / 'main.cf').write_text(f'{settings}queue_directory = ${{config_directory}}/../queue\n')
        copy = PostfixInstance('postfix-copy', 'copy', str(copy_config))
        subprocess.run(['postsuper', '-c', str(copy_config), '-r', 'ALL'], check=True, capture_output=True)
        yield Queues(root, live, copy, copy_queue, held)
    finally:
        subprocess.run(['postfix', '-c', str(config), 'stop'], capture_output=True, check=False)
        for server in (rate, busy):
            server.shutdown()
            server.server_close()
        shutil.rmtree(root, ignore_errors=True)


def _postfix_view(listed: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str], dict[str, float]]:
    """Messages per queue, messages per recipient domain and the oldest arrival per queue, from postqueue -j."""
    messages: Counter[str] = Counter()
    domains: Counter[str] = Counter()
    oldest: dict[str, float] = {}
    for item in listed:
        queue = str(item['queue_name'])
        messages[queue] += 1
        domains.update({domain_of(str(rcpt['address'])) for rcpt in item['recipients']})
        oldest[queue] = min(oldest.get(queue, float(item['arrival_time'])), float(item['arrival_time']))
    return messages, domains, oldest


def _assert_matches_postqueue(scan: InstanceScan, listed: list[dict[str, Any]]) -> None:
    messages, domains, oldest = _postfix_view(listed)
    assert scan.up and scan.errors == {}
    assert scan.messages == {queue: messages[queue] for queue in QUEUE_NAMES}
    assert +scan.domain_messages == domains
    assert scan.oldest_arrival == oldest


def test_the_live_instance_matches_postqueue(queues: Queues) -> None:
    collector = PostfixQueueCollector([queues.live], ISPS)
    scan = collector.scan(queues.live)
    listed = postqueue_j(queues.live)
    _assert_matches_postqueue(scan, listed)
    assert scan.messages['hold'] == 1  # the held one, marked for expiry: mode 0710 (it was not counted)
    assert next(item for item in listed if item['queue_id'] == queues.held)['forced_expire'] is True
    assert scan.messages['deferred'] == 4
    # The delivered recipient is marked done in its queue file: counted by neither.
    assert 'accepted.example' not in scan.domain_messages
    assert scan.domain_messages['gmail.com'] == 4 and scan.domain_messages['münchen.example'] == 1
    assert scan.deferred_sender_domains['MAILER-DAEMON'] == 1
    # The defer logs are hashed (defer/X/Y/), the deferred queue is flat: every reason is still found.
    assert scan.deferral_reasons == {'4.7.28': 3, '4.2.1': 1, '4.4.1': 3}
    assert scan.deferred_by_isp == {'gmail': 3, 'yahoo': 1, 'other': 3}


def test_recipient_counts_match_qshape_where_postqueue_lists_some_twice(queues: Queues) -> None:
    scan = PostfixQueueCollector([queues.live], ISPS).scan(queues.live)
    shown = subprocess.run(
        ['qshape', '-c', queues.live.config_directory, 'deferred'], capture_output=True, text=True, check=True
    ).stdout
    qshape = {line.split()[0]: int(line.split()[1]) for line in shown.splitlines()[1:] if line.strip()}
    assert qshape.pop('TOTAL') == sum(scan.deferred_recipient_domains.values()) == BIG + 6
    assert qshape == dict(scan.deferred_recipient_domains)
    senders = subprocess.run(
        ['qshape', '-c', queues.live.config_directory, '-s', 'deferred'], capture_output=True, text=True, check=True
    ).stdout
    by_sender = {line.split()[0]: int(line.split()[1]) for line in senders.splitlines()[1:] if line.strip()}
    assert by_sender.pop('TOTAL') == scan.messages['deferred']
    assert by_sender == dict(scan.deferred_sender_domains)  # the null sender is MAILER-DAEMON in both
    # mailq's summary line counts every message, the held one too
    summary = subprocess.run(
        ['mailq', '-C', queues.live.config_directory], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert summary.endswith(f'in {sum(scan.messages.values())} Requests.'), summary
    # showq lists the defer log's recipients, then the queue file's not already listed; it remembers only
    # duplicate_filter_limit (1000) of them, so the rest of a 1,200-recipient message is listed twice.
    (big,) = [item for item in postqueue_j(queues.live) if item['sender'] == 'big@brand.example']
    assert len(big['recipients']) == BIG + (BIG - 1000)
    assert len({rcpt['address'] for rcpt in big['recipients']}) == BIG


def test_a_second_instance_requeued_matches_its_own_postqueue(queues: Queues) -> None:
    collector = PostfixQueueCollector([queues.live, queues.copy], ISPS)
    live, copy = (collector.scan(instance) for instance in (queues.live, queues.copy))
    listed = postqueue_j(queues.copy)  # postfix is stopped there: postqueue reads the queue directly
    _assert_matches_postqueue(copy, listed)
    assert copy.messages['maildrop'] == 5 == sum(live.messages.values())  # postsuper -r ALL: all in maildrop
    assert copy.deferral_reasons == {} and copy.domain_messages == live.domain_messages


def test_the_exporter_text_passes_promtool_and_carries_the_figures(queues: Queues) -> None:
    collector = PostfixQueueCollector([queues.live, queues.copy], ISPS)
    text = exposition(QueueMetrics([collector], '0.0.0', isps=[isp.name for isp in ISPS]))
    checked = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    for instance in (queues.live, queues.copy):
        by_queue = Counter(str(item['queue_name']) for item in postqueue_j(instance))
        labels = (('instance', instance.name), ('stream', instance.stream))
        for queue in QUEUE_NAMES:
            assert found[('mailinfra_queue_messages', tuple(sorted((*labels, ('queue', queue)))))] == by_queue[queue]
    reasons = {
        dict(labels)['status']: value
        for (name, labels), value in found.items()
        if name == 'mailinfra_queue_deferral_reasons' and dict(labels)['instance'] == 'postfix-news'
    }
    assert reasons == {'4.7.28': 3, '4.2.1': 1, '4.4.1': 3}


def test_bad_files_are_skipped_or_counted_and_their_neighbours_still_counted(queues: Queues, tmp_path: Path) -> None:
    work = tmp_path / 'work'
    shutil.copytree(queues.copy_queue, work / 'queue', symlinks=True)
    (work / 'config').mkdir()
    (work / 'config' / 'main.cf').write_text(f'queue_directory = {work / "queue"}\n')
    instance = PostfixInstance('postfix-work', 'work', str(work / 'config'))
    files = sorted(path for path in (work / 'queue' / 'maildrop').iterdir())
    assert len(files) == 5
    expected = Counter[str]()
    for path in files[1:2] + files[3:]:
        expected.update(set(read_envelope(str(path))[0].recipient_domains))
    os.chmod(files[0], 0o600)  # still being written: neither showq nor the collector counts it
    os.chown(files[1], 65534, 65534)  # another owner: read with the exporter's privilege
    files[2].write_bytes(files[2].read_bytes()[:50])  # truncated: counted, and a malformed error
    (work / 'queue' / 'incoming').mkdir(exist_ok=True)
    (work / 'queue' / 'incoming' / 'notaqueueid.tmp').write_bytes(b'x')  # not a queue file name
    scan = PostfixQueueCollector([instance], ISPS).scan(instance)
    assert scan.up
    assert scan.messages == {'maildrop': 4, 'incoming': 0, 'active': 0, 'deferred': 0, 'hold': 0}
    assert scan.errors == {'malformed': 1}
    assert +scan.domain_messages == expected  # the neighbours of the bad files, all counted


def test_queue_hash_is_postfix_layout() -> None:
    """mail_queue_dir(): the queue id's first characters; a long id's microseconds as five hex digits (the ids
    and directories below are what this Postfix wrote)."""
    assert queue_hash('C9F7824838E', 2) == 'C/9/'
    assert queue_hash('D977E23C112', 1) == 'D/'
    assert queue_hash('4jjlbM61rSzL1xl', 1) == 'C/'
    assert queue_hash('4jjlbj5JMjzbgbP', 2) == 'B/6/'
    assert queue_hash('AB', 3) == 'A/B/_/'
    assert queue_hash('C9F7824838E', 0) == ''
    assert re.fullmatch(r'[0-9A-F]/[0-9A-F]/', queue_hash('4jjlbj5Sjszbgbr', 2))
    # Past the five hex digits of a long id Postfix pads with '_': the walk enters those directories too.
    deep = queue_hash('4jjlbj5JMjzbgbP', 7)
    assert deep.endswith('_/_/')
    assert all(HASH_DIR.fullmatch(part) for part in deep.split('/')[:-1])
