"""The Postfix actuator: the plan on the rendered routing, and the changes on Debian's real Postfix.

The plan tests use newsletter-publisher/mx2's rendered instance (stream ``marketing``, three IPs). The Postfix
tests start a throw-away instance shaped like the rendered one (two sending IPs 127.0.0.2 and 127.0.0.3,
``out_<ip>`` and ``out_<ip>__<isp>`` transports, the same randmap/pipemap routing) that relays everything to an
``smtp-sink`` on 127.0.0.1, which records the client address of each message. It never touches /etc/postfix.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import smtplib
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import Contract, Stream, load_contract
from mailinfra_agent.postfix.staged_check import install, run
from mailinfra_agent.postfix.trial import HARMLESS, free_port
from mailinfra_agent.shaping.actions import Action, ActuatorError
from mailinfra_agent.shaping.postfix_actuator import Plan, PostfixActuator, Topology, plan, rate_delay
from tests.agent.postfix_dsn import wait_stopped
from tests.agent.shaping_fixtures import postfix_instance

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'newsletter-publisher' / 'mta' / 'mx2' / 'etc'
UNTIL = 2_000_000_000.0
A, B, C = '198.51.100.20', '198.51.100.21', '198.51.100.22'
DEFAULT_ROUTES = 'randmap:{out_198_51_100_20:, out_198_51_100_21:, out_198_51_100_22:}'
ISP_ROUTES = (
    'pipemap:{unionmap:{randmap:{198_51_100_20, 198_51_100_21, 198_51_100_22}, pcre:$config_directory/transport_isp},'
    ' texthash:$config_directory/transport_ip_isp}'
)


def action(ip: str, isp: str | None, kind: str, failover: bool = False, stream: str = 'marketing') -> Action:
    return Action(stream, ip, isp, kind, failover, UNTIL, f'test {kind}')  # type: ignore[arg-type]


def golden_contract() -> Contract:
    return load_contract(GOLDEN / 'mailinfra' / 'agent.json')


def settings(text: str) -> dict[str, str]:
    """main.cf's settings (the rendered file has no continuation lines)."""
    pairs = (line.split(' = ', 1) for line in text.splitlines() if ' = ' in line and not line.startswith('#'))
    return {name: value for name, value in pairs}


def golden_plan(*actions: Action) -> tuple[dict[str, str], dict[str, str], Plan]:
    contract = golden_contract()
    main = settings((GOLDEN / 'postfix-marketing' / 'main.cf').read_text())
    rows = dict(
        line.split(None, 1)
        for line in (GOLDEN / 'postfix-marketing' / 'transport_ip_isp').read_text().splitlines()
        if line and not line.startswith('#')
    )
    return main, rows, plan(Topology.of(contract, contract.streams[0]), main, rows, actions)


def changed(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> dict[str, str | None]:
    return {name: after.get(name) for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)}


# --- The plan ------------------------------------------------------------------------------------------------


def test_no_action_is_the_rendered_baseline() -> None:
    main, rows, result = golden_plan()
    assert (result.main, result.rows, result.skipped) == (main, rows, [])


def test_backoff_slows_that_transport_only_to_the_isps_backoff_rate() -> None:
    main, rows, result = golden_plan(action(A, 'gmail', 'backoff'))
    gmail = next(isp for isp in golden_contract().streams[0].isps if isp.isp == 'gmail')
    delay = rate_delay(gmail.limits.backoff_messages_per_hour)
    assert delay > 1
    assert changed(main, result.main) == {
        'out_198_51_100_20__gmail_destination_concurrency_failed_cohort_limit': '10',
        'out_198_51_100_20__gmail_destination_concurrency_limit': '1',
        'out_198_51_100_20__gmail_transport_rate_delay': f'{delay}s',
    }
    assert result.rows == rows


def test_backoff_never_speeds_a_transport_up() -> None:
    # Yahoo's rendered delay (2s) is kept when the back-off rate would allow a shorter one.
    assert rate_delay(3600) == 1 and rate_delay(100_000) == 1 and rate_delay(500) == 8
    main, _, result = golden_plan(action(B, 'yahoo', 'backoff'))
    yahoo = next(isp for isp in golden_contract().streams[0].isps if isp.isp == 'yahoo')
    expected = max(2, rate_delay(yahoo.limits.backoff_messages_per_hour))
    assert result.main['out_198_51_100_21__yahoo_transport_rate_delay'] == f'{expected}s'
    assert set(changed(main, result.main)) <= {
        'out_198_51_100_21__yahoo_transport_rate_delay',
        'out_198_51_100_21__yahoo_destination_concurrency_limit',
    }


def test_suspend_with_failover_points_the_row_at_another_ips_transport() -> None:
    main, rows, result = golden_plan(action(A, 'gmail', 'suspend', failover=True))
    assert changed(rows, result.rows) == {'198_51_100_20,gmail': 'out_198_51_100_21__gmail:'}
    assert result.main == main
    # B is slowed: C, running normally, takes A's Gmail mail.
    _, _, slowed = golden_plan(action(A, 'gmail', 'suspend', failover=True), action(B, 'gmail', 'backoff'))
    assert slowed.rows['198_51_100_20,gmail'] == 'out_198_51_100_22__gmail:'


def test_suspend_without_failover_or_without_another_ip_defers_the_transport() -> None:
    main, rows, result = golden_plan(action(A, 'gmail', 'suspend'))
    assert changed(main, result.main) == {'defer_transports': 'out_198_51_100_20__gmail'}
    assert result.rows == rows
    # Every other IP suspended for Gmail: nobody can take the mail, all three wait.
    _, _, all_held = golden_plan(
        action(A, 'gmail', 'suspend', failover=True),
        action(B, 'gmail', 'suspend', failover=True),
        action(C, 'gmail', 'cap'),
    )
    assert all_held.rows == rows
    assert all_held.main['defer_transports'] == (
        'out_198_51_100_20__gmail, out_198_51_100_21__gmail, out_198_51_100_22__gmail'
    )


def test_a_cap_defers_the_transport_and_failover_avoids_capped_and_suspended_ips() -> None:
    _, rows, result = golden_plan(
        action(A, 'yahoo', 'suspend', failover=True), action(B, 'yahoo', 'cap'), action(C, None, 'suspend_ip')
    )
    # B is capped and C out of rotation: A's Yahoo mail waits.
    assert result.main['defer_transports'] == 'out_198_51_100_20__yahoo, out_198_51_100_21__yahoo'
    assert result.rows == rows


def test_suspend_ip_leaves_both_randmaps() -> None:
    main, rows, result = golden_plan(action(B, None, 'suspend_ip'))
    assert changed(main, result.main) == {
        'sender_dependent_default_transport_maps': 'randmap:{out_198_51_100_20:, out_198_51_100_22:}',
        'transport_maps': ISP_ROUTES.replace('198_51_100_21, ', ''),
    }
    assert result.rows == rows


def test_randmaps_written_otherwise_are_left_alone_until_an_ip_leaves() -> None:
    main = {'sender_dependent_default_transport_maps': 'randmap:{out_a:,out_b:}', 'transport_maps': 'randmap:{a,b}'}
    main |= {f'out_{key}_destination_concurrency_limit': '10' for key in 'ab'}
    topology = Topology('marketing', {A: 'a', B: 'b'}, {})
    assert plan(topology, main, {}, []).main == main
    assert plan(topology, main, {}, [action(B, None, 'suspend_ip')]).main == main | {
        'sender_dependent_default_transport_maps': 'randmap:{out_a:}',
        'transport_maps': 'randmap:{a}',
    }


def test_suspend_ip_of_every_ip_defers_all_their_transports_instead() -> None:
    _, _, result = golden_plan(*(action(ip, None, 'suspend_ip') for ip in (A, B, C)))
    assert result.main['transport_maps'] == ISP_ROUTES
    assert result.main['sender_dependent_default_transport_maps'] == DEFAULT_ROUTES
    deferred = str(result.main['defer_transports']).split(', ')
    assert len(deferred) == 3 * 9  # out_<ip> and its 8 ISP transports, for each IP
    assert 'out_198_51_100_22' in deferred and 'out_198_51_100_21__t_online' in deferred


def test_several_actions_on_one_ip_combine() -> None:
    main, rows, result = golden_plan(
        action(A, None, 'suspend_ip'), action(A, 'gmail', 'backoff'), action(A, 'yahoo', 'suspend', failover=True)
    )
    assert set(changed(main, result.main)) == {
        'sender_dependent_default_transport_maps',
        'transport_maps',
        'out_198_51_100_20__gmail_destination_concurrency_limit',
        'out_198_51_100_20__gmail_destination_concurrency_failed_cohort_limit',
        'out_198_51_100_20__gmail_transport_rate_delay',
    }
    assert changed(rows, result.rows) == {'198_51_100_20,yahoo': 'out_198_51_100_21__yahoo:'}


def test_the_default_isp_fails_over_through_the_default_randmap() -> None:
    main, _, result = golden_plan(action(C, '*', 'suspend', failover=True))
    assert changed(main, result.main) == {
        'sender_dependent_default_transport_maps': DEFAULT_ROUTES.replace(', out_198_51_100_22:', '')
    }


def test_actions_the_instance_cannot_apply_are_skipped_with_their_reason() -> None:
    main, rows, result = golden_plan(
        action(A, 'office365', 'backoff'),  # known only by MX names: no transport of its own
        action('192.0.2.99', 'gmail', 'suspend'),
        action(A, 'gmail', 'suspend', stream='transactional'),
    )
    assert (result.main, result.rows) == (main, rows)
    assert result.skipped == [
        'suspend 192.0.2.99: not a sending IP of stream marketing on this host',
        'backoff 198.51.100.20 office365: the instance has no transport of its own for it',
        'suspend 198.51.100.20 gmail: stream transactional, not marketing',
    ]


# --- On a real Postfix instance -----------------------------------------------------------------------------

IPS = ('127.0.0.2', '127.0.0.3')
KEYS = tuple(ip.replace('.', '_') for ip in IPS)
ISPS = {'gmail': 'gmail.example', 'yahoo': 'yahoo.example'}


def needs_postfix() -> None:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ('postfix', 'postconf', 'smtp-sink')):
        pytest.skip('needs root and Postfix with smtp-sink (apt-get install postfix; script/bootstrap does)')


def instance_contract() -> Contract:
    """mx2's contract with the stream's sending IPs moved to loopback addresses."""
    data = json.loads((GOLDEN / 'mailinfra' / 'agent.json').read_text())
    data['ips'] = [
        {'address': ip, 'helo': f'n{n}.shaping.test', 'id': f'marketing_{key}', 'pool': 'marketing',
         'ptr': f'n{n}.shaping.test', 'stream': 'marketing'}
        for n, (ip, key) in enumerate(zip(IPS, KEYS, strict=True), start=1)
    ]  # fmt: skip
    return load_contract(data)


def main_cf(root: Path, sink_port: int, gmail_concurrency: int = 4) -> str:
    limits = []
    for key in KEYS:
        limits += [f'out_{key}_destination_concurrency_limit = 10', f'out_{key}_destination_recipient_limit = 50']
    for key in KEYS:
        limits += [
            f'out_{key}__gmail_destination_concurrency_limit = {gmail_concurrency}',
            f'out_{key}__gmail_destination_recipient_limit = 50',
        ]
    for key in KEYS:
        limits += [
            f'out_{key}__yahoo_destination_concurrency_limit = 1',
            f'out_{key}__yahoo_destination_recipient_limit = 50',
            f'out_{key}__yahoo_transport_rate_delay = 1s',
            f'out_{key}__yahoo_destination_concurrency_failed_cohort_limit = 10',
        ]
    return (
        '# Shaped like a rendered stream instance (docs/postfix.md).\n'
        'compatibility_level = 3.6\n'
        f'queue_directory = {root}/queue\ndata_directory = {root}/data\n'
        f'maillog_file = {root}/maillog\nmaillog_file_prefixes = {root}\n'
        'myhostname = shaping-test.example.test\nmydestination =\nalias_maps =\nalias_database =\nrelay_domains =\n'
        'inet_interfaces = loopback-only\ninet_protocols = ipv4\nmynetworks = 127.0.0.0/8\n'
        'smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\nsmtpd_peername_lookup = no\n'
        '# Everything goes to the sink; the transports still bind their own sending IP.\n'
        f'relayhost = [127.0.0.1]:{sink_port}\nsmtp_bind_address_enforce = yes\nsmtp_tls_security_level = none\n'
        f"\n# Every other domain: one of the stream's IPs at random.\ndefault_transport = out_{KEYS[0]}:\n"
        f'sender_dependent_default_transport_maps = randmap:{{{", ".join(f"out_{key}:" for key in KEYS)}}}\n'
        f'transport_maps = pipemap:{{unionmap:{{randmap:{{{", ".join(KEYS)}}}, pcre:$config_directory/transport_isp}}'
        ', texthash:$config_directory/transport_ip_isp}\n'
        '\n# Limits per transport.\n' + '\n'.join(limits) + '\n'
    )


def master_cf(port: int) -> str:
    base = Path('/etc/postfix/master.cf').read_text().replace('smtp      inet', '#', 1)
    services = [f'127.0.0.1:{port} inet n - n - - smtpd\n  -o syslog_name=postfix-marketing/inject\n']
    for ip, key in zip(IPS, KEYS, strict=True):
        for suffix in ('', '__gmail', '__yahoo'):
            name = f'out_{key}{suffix}'
            services.append(
                f'{name} unix - - n - - smtp\n  -o syslog_name=postfix-marketing/{name}\n  -o smtp_bind_address={ip}\n'
            )
    return base + ''.join(services)


def transport_files(config: Path, sink_port: int) -> None:
    (config / 'transport_isp').write_text(
        '# Recipient address -> ISP.\n' + ''.join(f'/@{re.escape(domain)}$/ {isp}\n' for isp, domain in ISPS.items())
    )
    # The rendered rows have no next hop (the ISP's MX); here each names the sink.
    (config / 'transport_ip_isp').write_text(
        '# "<sending IP>,<ISP>" -> transport.\n'
        + ''.join(f'{key},{isp} out_{key}__{isp}:[127.0.0.1]:{sink_port}\n' for isp in ISPS for key in KEYS)
    )


@dataclass
class Instance:
    root: Path
    config: Path
    port: int
    dump: Path
    contract: Contract
    sink_port: int

    def row(self, key: str, isp: str) -> str:
        return f'out_{key}__{isp}:[127.0.0.1]:{self.sink_port}'

    @property
    def stream(self) -> Stream:
        return self.contract.streams[0]

    def actuator(self, **kwargs: Any) -> PostfixActuator:
        return PostfixActuator(
            self.contract,
            state_directory=str(self.root / 'state'),
            config_directory=lambda stream: str(self.config),
            **kwargs,
        )

    def files(self) -> dict[str, bytes]:
        return {path.name: path.read_bytes() for path in sorted(self.config.iterdir()) if path.is_file()}

    def postconf(self, name: str) -> str:
        return subprocess.run(
            ['postconf', '-c', str(self.config), '-h', name], capture_output=True, text=True, check=True
        ).stdout.strip()

    def send(self, domain: str, count: int) -> list[str]:
        """Inject ``count`` messages to ``domain``; their tokens (also the recipients' local parts)."""
        tokens = [f'{domain.split(".")[0]}-{uuid.uuid4().hex[:12]}' for _ in range(count)]
        with smtplib.SMTP('127.0.0.1', self.port, local_hostname='app.example.test', timeout=20) as client:
            for token in tokens:
                message = f'From: <news@example.com>\r\nTo: <{token}@{domain}>\r\nSubject: {token}\r\n\r\n{token}\r\n'
                client.sendmail('news@example.com', [f'{token}@{domain}'], message)
        return tokens

    def received(self) -> dict[str, list[str]]:
        """Token -> the client addresses the sink received it from (one entry per delivery)."""
        if not self.dump.exists():
            return {}
        seen: dict[str, list[str]] = {}
        client = ''
        for line in self.dump.read_text(errors='replace').splitlines():
            if line.startswith('X-Client-Addr:'):
                client = line.split(':', 1)[1].strip()
            elif line.startswith('X-Rcpt-Args:'):
                token = line.split(':', 1)[1].strip().strip('<>').split('@')[0]
                seen.setdefault(token, []).append(client)
        return seen

    def wait_received(self, tokens: Sequence[str], timeout: float = 30) -> dict[str, list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.received()
            if all(token in seen for token in tokens):
                return seen
            time.sleep(0.2)
        missing = [token for token in tokens if token not in self.received()]
        raise AssertionError(f'not delivered within {timeout} s: {missing}')

    def queue(self) -> dict[str, str]:
        """Recipient local part -> delay reason of the messages in the queue."""
        output = subprocess.run(
            ['postqueue', '-c', str(self.config), '-j'], capture_output=True, text=True, check=True
        ).stdout
        queued: dict[str, str] = {}
        for line in output.splitlines():
            for recipient in json.loads(line)['recipients']:
                queued[recipient['address'].split('@')[0]] = recipient.get('delay_reason', '')
        return queued


@contextmanager
def running_instance(public: Path) -> Iterator[Instance]:
    needs_postfix()
    root = public / 'instance'
    config, queue, data, sink = root / 'config', root / 'queue', root / 'data', root / 'sink'
    for directory in (root, config, queue, data, sink):
        directory.mkdir(parents=True)
    root.chmod(0o755)
    sink.chmod(0o1777)
    shutil.chown(data, 'postfix', 'postfix')
    sink_port, port = free_port(), free_port()
    (config / 'main.cf').write_text(main_cf(root, sink_port))
    (config / 'master.cf').write_text(master_cf(port))
    transport_files(config, sink_port)
    dump = sink / 'messages'
    with open(root / 'sink.log', 'wb') as sink_log:
        server = subprocess.Popen(
            ['smtp-sink', '-u', 'nobody', '-D', str(dump), f'127.0.0.1:{sink_port}', '64'],
            stdout=subprocess.DEVNULL,
            stderr=sink_log,
        )
    started = subprocess.run(['postfix', '-c', str(config), 'start'], capture_output=True, text=True, check=False)
    try:
        assert started.returncode == 0, started.stderr
        yield Instance(root, config, port, dump, instance_contract(), sink_port)
    finally:
        subprocess.run(['postfix', '-c', str(config), 'stop'], capture_output=True, check=False)
        wait_stopped(queue / 'pid' / 'master.pid')
        server.terminate()
        server.wait(timeout=5)


@pytest.fixture
def instance() -> Iterator[Instance]:
    with postfix_instance() as started:
        yield started


def log_problems(instance: Instance) -> list[str]:
    """Problems and bounces in the instance's log (every test message must be delivered)."""
    log = (instance.root / 'maillog').read_text(errors='replace')
    found = [line for line in log.splitlines() if re.search(r'\b(fatal|panic|error|warning):|status=bounced', line)]
    return [line for line in found if not HARMLESS.search(line)]  # the host's clock, not the configuration


def test_backoff_changes_that_transport_only_and_the_undo_restores_the_files(instance: Instance) -> None:
    rendered = instance.files()
    actuator = instance.actuator()
    key = KEYS[0]
    started = time.time()
    changes = actuator.converge(instance.stream, [action(IPS[0], 'gmail', 'backoff')])
    # Postfix rereads a main.cf younger than a second until it is a second old (check, reload and every daemon
    # would wait a second): the new file is dated two seconds back.
    assert os.stat(instance.config / 'main.cf').st_mtime < started
    assert changes[-1] == 'reloaded postfix-marketing'
    assert f'main.cf: out_{key}__gmail_destination_concurrency_limit: 4 -> 1' in changes
    assert instance.postconf(f'out_{key}__gmail_destination_concurrency_limit') == '1'
    gmail = next(isp for isp in instance.stream.isps if isp.isp == 'gmail').limits.backoff_messages_per_hour
    assert instance.postconf(f'out_{key}__gmail_transport_rate_delay') == f'{rate_delay(gmail)}s'
    assert instance.postconf(f'out_{KEYS[1]}__gmail_destination_concurrency_limit') == '4'
    after = instance.files()
    assert {name for name in after if after[name] != rendered[name]} == {'main.cf'}
    lines = set(after['main.cf'].decode().splitlines()) ^ set(rendered['main.cf'].decode().splitlines())
    assert all(line.startswith(f'out_{key}__gmail_') for line in lines), lines

    # Idempotent: the same desired set changes nothing, not even the file's time stamp.
    stamp = os.stat(instance.config / 'main.cf').st_mtime_ns
    assert actuator.converge(instance.stream, [action(IPS[0], 'gmail', 'backoff')]) == []
    assert os.stat(instance.config / 'main.cf').st_mtime_ns == stamp

    # A new actuator (service restart) knows the baseline from its state file; the undo leaves no residue.
    assert instance.actuator().converge(instance.stream, [])[-1] == 'reloaded postfix-marketing'
    assert instance.files() == rendered
    assert [path.name for path in instance.config.iterdir() if path.name.startswith('.')] == []
    state = json.loads((instance.root / 'state' / 'postfix-marketing.json').read_text())
    empty = {'applied': {}, 'baseline': {}, 'ours': [], 'reload_pending': False}
    assert state == {'main.cf': empty, 'transport_ip_isp': empty}
    # The reloads went through: mail still flows, nothing logged a problem.
    instance.wait_received(instance.send('gmail.example', 2))
    assert log_problems(instance) == []


def test_a_suspended_transport_gets_nothing_and_its_mail_stays_queued(instance: Instance) -> None:
    rendered = instance.files()
    actuator = instance.actuator()
    held = [action(ip, 'gmail', 'suspend') for ip in IPS]  # both IPs: every Gmail message is held, none random
    changes = actuator.converge(instance.stream, held)
    assert f'main.cf: defer_transports: None -> out_{KEYS[0]}__gmail, out_{KEYS[1]}__gmail' in changes

    gmail = instance.send('gmail.example', 6)
    others = instance.send('yahoo.example', 3) + instance.send('other.example', 3)
    seen = instance.wait_received(others)
    time.sleep(2)  # the qmgr has long seen the held messages by now
    seen = instance.received()
    assert not [token for token in gmail if token in seen]
    queued = instance.queue()
    assert sorted(queued) == sorted(gmail)
    assert all('deferred transport' in reason for reason in queued.values()), queued

    # Released: the rendered files come back, and the held mail is scheduled at once (no flush of the queue).
    changes = actuator.converge(instance.stream, [])
    assert changes[-2:] == ['reloaded postfix-marketing', 'rescheduled 6 message(s) the suspension held']
    assert instance.files() == rendered
    seen = instance.wait_received(gmail + others, timeout=20)
    assert all(len(seen[token]) == 1 for token in gmail + others)  # nothing lost, nothing twice
    assert log_problems(instance) == []


def test_failover_and_suspend_ip_move_the_mail_to_the_other_ip(instance: Instance) -> None:
    actuator = instance.actuator()
    changes = actuator.converge(instance.stream, [action(IPS[0], 'gmail', 'suspend', failover=True)])
    row = instance.row
    assert f'transport_ip_isp: {KEYS[0]},gmail: {row(KEYS[0], "gmail")} -> {row(KEYS[1], "gmail")}' in changes
    gmail = instance.send('gmail.example', 8)
    seen = instance.wait_received(gmail)
    assert {client for token in gmail for client in seen[token]} == {IPS[1]}

    # The whole IP out of rotation: ordinary domains and ISPs alike leave from the other IP.
    actuator.converge(instance.stream, [action(IPS[0], None, 'suspend_ip')])
    assert instance.postconf('sender_dependent_default_transport_maps') == f'randmap:{{out_{KEYS[1]}:}}'
    tokens = instance.send('other.example', 6) + instance.send('gmail.example', 4) + instance.send('yahoo.example', 2)
    seen = instance.wait_received(tokens)
    assert {client for token in tokens for client in seen[token]} == {IPS[1]}
    assert instance.queue() == {}
    assert log_problems(instance) == []


def test_a_rerendered_instance_is_the_new_baseline(instance: Instance) -> None:
    actuator = instance.actuator()
    desired = [action(IPS[0], 'gmail', 'backoff'), action(IPS[1], 'yahoo', 'suspend', failover=True)]
    actuator.converge(instance.stream, desired)
    # The role renders again, with another Gmail concurrency: our changes are gone, the new values are the baseline.
    (instance.config / 'main.cf').write_text(main_cf(instance.root, instance.sink_port, gmail_concurrency=6))
    transport_files(instance.config, instance.sink_port)
    rerendered = instance.files()
    changes = actuator.converge(instance.stream, desired)
    assert f'main.cf: out_{KEYS[0]}__gmail_destination_concurrency_limit: 6 -> 1' in changes
    row = instance.row
    assert f'transport_ip_isp: {KEYS[1]},yahoo: {row(KEYS[1], "yahoo")} -> {row(KEYS[0], "yahoo")}' in changes
    assert actuator.converge(instance.stream, desired) == []
    actuator.converge(instance.stream, [])
    assert instance.files() == rerendered
    assert instance.postconf(f'out_{KEYS[0]}__gmail_destination_concurrency_limit') == '6'


def test_an_operators_edit_while_actions_are_active_does_not_make_them_permanent(instance: Instance) -> None:
    """A file edited by someone else is not ours any more, but the values we set in it still are: they go back."""
    rendered = instance.files()
    actuator = instance.actuator()
    desired = [
        action(IPS[0], 'gmail', 'backoff'),
        action(IPS[1], 'yahoo', 'suspend', failover=True),
        action(IPS[0], 'yahoo', 'cap'),
    ]
    actuator.converge(instance.stream, desired)
    # The operator sets another parameter and notes something in the table while the actions are in force.
    subprocess.run(['postconf', '-c', str(instance.config), '-e', 'smtp_tls_loglevel=1'], check=True)
    with open(instance.config / 'transport_ip_isp', 'a') as table:
        table.write('# checked by hand\n')
    assert actuator.converge(instance.stream, desired) == []
    # The actions end: every value the actuator set goes back, the operator's edits stay.
    assert actuator.converge(instance.stream, [])[-1] == 'reloaded postfix-marketing'
    assert instance.files() == rendered | {
        'main.cf': rendered['main.cf'] + b'smtp_tls_loglevel = 1\n',
        'transport_ip_isp': rendered['transport_ip_isp'] + b'# checked by hand\n',
    }
    # The operator changes a value the actuator set: theirs is the new baseline.
    actuator.converge(instance.stream, desired[:1])
    name = f'out_{KEYS[0]}__gmail_destination_concurrency_limit'
    subprocess.run(['postconf', '-c', str(instance.config), '-e', f'{name}=2'], check=True)
    actuator.converge(instance.stream, desired[:1])
    assert instance.postconf(name) == '1'
    actuator.converge(instance.stream, [])
    assert instance.postconf(name) == '2'
    assert f'out_{KEYS[0]}__gmail_transport_rate_delay' not in settings((instance.config / 'main.cf').read_text())


def test_files_the_role_installs_during_a_convergence_are_never_overwritten(instance: Instance) -> None:
    desired = [action(IPS[0], 'gmail', 'backoff')]
    rerendered = main_cf(instance.root, instance.sink_port, gmail_concurrency=6)

    def role_installs_meanwhile(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[-1] == '-n' and argv[2] != str(instance.config):  # the actuator checks its staged copy
            (instance.config / 'main.cf').write_text(rerendered)
        return run(argv)

    with pytest.raises(ActuatorError, match='the files changed during the convergence; nothing installed'):
        instance.actuator(runner=role_installs_meanwhile).converge(instance.stream, desired)
    assert (instance.config / 'main.cf').read_text() == rerendered
    # The next round applies the action on top of the role's files, and undoes it to them.
    actuator = instance.actuator()
    assert f'main.cf: out_{KEYS[0]}__gmail_destination_concurrency_limit: 6 -> 1' in actuator.converge(
        instance.stream, desired
    )
    actuator.converge(instance.stream, [])
    assert (instance.config / 'main.cf').read_text() == rerendered


def failing(command: str) -> Any:
    def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if command in argv:
            return subprocess.CompletedProcess(list(argv), 1, '', f'{command} refused by the test')
        return run(argv)

    return runner


def test_a_failed_check_or_reload_puts_the_files_back(instance: Instance) -> None:
    rendered = instance.files()
    desired = [action(IPS[0], 'gmail', 'backoff'), action(IPS[1], 'gmail', 'suspend', failover=True)]
    refused = instance.actuator(checker=lambda directory: (1, 'postfix/postfix-script: fatal: refused by the test'))
    with pytest.raises(ActuatorError, match='check failed, change undone: postfix/postfix-script: fatal: refused'):
        refused.converge(instance.stream, desired)
    assert instance.files() == rendered

    with pytest.raises(ActuatorError, match='reload failed, change undone: reload refused by the test'):
        instance.actuator(runner=failing('reload')).converge(instance.stream, desired)
    assert instance.files() == rendered

    # A failure on top of an applied action puts that action's files back, and they are still known as ours.
    applied = instance.actuator()
    applied.converge(instance.stream, desired[:1])
    with_backoff = instance.files()
    with pytest.raises(ActuatorError, match='reload failed'):
        instance.actuator(runner=failing('reload')).converge(
            instance.stream, [desired[0], action(IPS[1], 'yahoo', 'cap')]
        )
    assert instance.files() == with_backoff
    applied.converge(instance.stream, [])
    assert instance.files() == rendered

    # The state still knows the baseline: a later converge applies and undoes cleanly.
    actuator = instance.actuator()
    assert actuator.converge(instance.stream, desired)
    assert actuator.converge(instance.stream, [])
    assert instance.files() == rendered


def test_a_stopped_instance_gets_the_files_without_a_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    needs_postfix()
    config = tmp_path / 'config'
    config.mkdir()
    (config / 'main.cf').write_text(main_cf(tmp_path, 2525))
    (config / 'master.cf').write_text(master_cf(2526))
    transport_files(config, 2525)
    actuator = PostfixActuator(
        instance_contract(), state_directory=str(tmp_path / 'state'), config_directory=lambda stream: str(config)
    )
    stream = instance_contract().streams[0]
    with pytest.raises(ActuatorError, match='check failed'):  # its queue directory does not exist
        actuator.converge(stream, [action(IPS[0], 'gmail', 'cap')])
    for directory in ('queue', 'data'):
        (tmp_path / directory).mkdir()
    shutil.chown(tmp_path / 'data', 'postfix', 'postfix')
    changes = actuator.converge(stream, [action(IPS[0], 'gmail', 'cap'), action(IPS[1], 'apple', 'cap')])
    assert changes[-1] == 'postfix-marketing is not running: the change takes effect when it starts'
    assert 'not applied: cap 127.0.0.3 apple: the instance has no transport of its own for it' in caplog.text
    deferred = subprocess.run(['postconf', '-c', str(config), '-h', 'defer_transports'], capture_output=True, text=True)
    assert deferred.stdout.strip() == f'out_{KEYS[0]}__gmail'


def test_a_missing_instance_is_a_clear_error(tmp_path: Path) -> None:
    actuator = PostfixActuator(
        golden_contract(), state_directory=str(tmp_path), config_directory=lambda stream: str(tmp_path / 'none')
    )
    with pytest.raises(ActuatorError, match=r'postfix-marketing: .*/none/main.cf does not exist'):
        actuator.converge(golden_contract().streams[0], [])


def test_a_crash_between_install_and_bookkeeping_still_restores_the_rendered_files(tmp_path: Path) -> None:
    """The state names both the old and the new file before the install, so an interrupted converge is undone."""
    if shutil.which('postconf') is None:
        pytest.skip('needs postconf (apt-get install postfix)')
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    rendered = {path.name: path.read_bytes() for path in config.iterdir() if path.is_file()}
    contract = golden_contract()

    def crash(directory: str) -> tuple[int, str]:
        raise KeyboardInterrupt  # the service is killed while postfix check runs

    def actuator(**kwargs: Any) -> PostfixActuator:
        return PostfixActuator(
            contract, state_directory=str(tmp_path / 'state'), config_directory=lambda stream: str(config), **kwargs
        )

    desired = [action(A, 'gmail', 'backoff'), action(B, 'yahoo', 'suspend', failover=True)]
    with pytest.raises(KeyboardInterrupt):
        actuator(checker=crash).converge(contract.streams[0], desired)
    assert (config / 'main.cf').read_bytes() != rendered['main.cf']  # installed, bookkeeping not finished

    stopped = actuator(checker=lambda directory: (0, ''), runner=failing('status'))
    assert stopped.converge(contract.streams[0], []) != []
    assert {path.name: path.read_bytes() for path in config.iterdir() if path.is_file()} == rendered


def test_an_edit_postconf_warns_about_is_refused_and_known_warnings_are_not_ours(tmp_path: Path) -> None:
    if shutil.which('postconf') is None:
        pytest.skip('needs postconf (apt-get install postfix)')
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    # A transport main.cf and transport_ip_isp know but master.cf lacks: postconf already warns about its limit.
    with open(config / 'main.cf', 'a') as main:
        main.write('out_ghost__gmail_destination_concurrency_limit = 4\n')
    with open(config / 'transport_ip_isp', 'a') as table:
        table.write('ghost,gmail out_ghost__gmail:\n')
    rendered = {path.name: path.read_bytes() for path in config.iterdir() if path.is_file()}
    contract = golden_contract()
    ghost = dataclasses.replace(contract.ips[0], id='marketing_ghost', address='192.0.2.50')
    contract = dataclasses.replace(contract, ips=(*contract.ips, ghost))
    actuator = PostfixActuator(
        contract,
        state_directory=str(tmp_path / 'state'),
        config_directory=lambda stream: str(config),
        checker=lambda directory: (0, ''),
        runner=failing('status'),
    )
    # Its rate delay would be a new "unused parameter": refused, nothing written.
    with pytest.raises(
        ActuatorError, match=r'does not pass postconf: .*unused parameter: out_ghost__gmail_transport_rate'
    ):
        actuator.converge(contract.streams[0], [action('192.0.2.50', 'gmail', 'backoff')])
    assert {path.name: path.read_bytes() for path in config.iterdir() if path.is_file()} == rendered
    # The warning postconf already had does not block other changes.
    assert actuator.converge(contract.streams[0], [action(A, 'gmail', 'backoff')])


def test_killed_before_the_held_mail_is_rescheduled_the_restart_reschedules_it(tmp_path: Path) -> None:
    """The reload-pending mark goes only after ``postqueue -i``: a kill before it leaves the work to the restart."""
    needs_postfix()
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    contract = golden_contract()
    commands: list[str] = []

    def running(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """The instance runs and reloads (faked); postqueue is recorded."""
        commands.append(' '.join(argv))
        if argv[0] == 'postfix' or argv[0] == 'postqueue':
            return subprocess.CompletedProcess(list(argv), 0, '', '')
        return run(argv)

    def killed_at_postqueue(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[0] == 'postqueue':
            raise KeyboardInterrupt  # the service is killed before it lists the queue
        return running(argv)

    def actuator(runner: Any) -> PostfixActuator:
        return PostfixActuator(
            contract,
            state_directory=str(tmp_path / 'state'),
            config_directory=lambda stream: str(config),
            runner=runner,
            checker=lambda directory: (0, ''),
        )

    actuator(running).converge(contract.streams[0], [action(A, 'gmail', 'cap')])
    with pytest.raises(KeyboardInterrupt):
        actuator(killed_at_postqueue).converge(contract.streams[0], [])
    commands.clear()
    changes = actuator(running).converge(contract.streams[0], [])
    assert changes == ['reloaded postfix-marketing (a change had not been reloaded)']
    assert f'postqueue -c {config} -j' in commands
    commands.clear()
    assert actuator(running).converge(contract.streams[0], []) == []  # once
    assert not [command for command in commands if command.startswith(('postqueue', 'postfix'))]


def test_only_the_installers_old_temporary_files_are_leftovers_not_an_editors(tmp_path: Path) -> None:
    needs_postfix()
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    (tmp_path / 'state').mkdir()
    names = ['.main.cf.swp', '.main.cf.un~', '.transport_ip_isp.swx', '.main.cf.k2x_9q0z', '.transport_ip_isp.abcd1234']
    for name in names:
        (config / name).write_text('x\n')
    (tmp_path / 'state' / '.postfix-marketing.json.swp').write_text('x\n')
    (tmp_path / 'state' / '.postfix-marketing.json.a1b2c3d4').write_text('x\n')
    actuator = PostfixActuator(
        golden_contract(),
        state_directory=str(tmp_path / 'state'),
        config_directory=lambda stream: str(config),
        runner=failing('status'),
        checker=lambda directory: (0, ''),
        stale=0,
    )
    assert actuator.converge(golden_contract().streams[0], []) == []
    assert sorted(path.name for path in config.iterdir() if path.name.startswith('.')) == names[:3]
    left = sorted(path.name for path in (tmp_path / 'state').iterdir() if path.name.startswith('.'))
    assert left == ['.postfix-marketing.json.swp']


def test_the_state_file_stays_readable_by_the_agent_before_the_reload_mark(tmp_path: Path) -> None:
    """That agent read every top-level key as a file's entry (``ours``, ``baseline``): rolled back to it, a
    top-level mark would make every convergence fail. Its state files, and session 13's, load here."""
    needs_postfix()
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    contract = golden_contract()
    path = tmp_path / 'state' / 'postfix-marketing.json'

    def crash(directory: str) -> tuple[int, str]:
        raise KeyboardInterrupt  # killed after the install, before the reload: the mark is set

    def actuator(**kwargs: Any) -> PostfixActuator:
        return PostfixActuator(
            contract, state_directory=str(tmp_path / 'state'), config_directory=lambda stream: str(config), **kwargs
        )

    with pytest.raises(KeyboardInterrupt):
        actuator(checker=crash).converge(contract.streams[0], [action(A, 'gmail', 'backoff')])
    for pending in (True, False):
        state = json.loads(path.read_text())
        assert set(state) == {'main.cf', 'transport_ip_isp'}
        for entry in state.values():  # what the old reader takes from an entry
            assert isinstance(entry['ours'], list) and isinstance(entry['baseline'], dict)
            assert entry['reload_pending'] is pending
        assert actuator()._load('postfix-marketing')[1] is pending
        if pending:  # the restart checks and reloads (a stopped instance: no reload), and the mark goes
            actuator(checker=lambda directory: (0, ''), runner=failing('status')).converge(
                contract.streams[0], [action(A, 'gmail', 'backoff')]
            )

    # The old format (no "applied", no mark) and session 13's (a top-level mark) load.
    old = {name: {key: entry[key] for key in ('ours', 'baseline')} for name, entry in state.items()}
    for data, pending in ((old, False), ({**old, 'reload_pending': True}, True)):
        path.write_text(json.dumps(data))
        loaded, mark = actuator()._load('postfix-marketing')
        assert (sorted(loaded), mark) == (['main.cf', 'transport_ip_isp'], pending)
        assert loaded['main.cf'].baseline == state['main.cf']['baseline']
    path.write_text(json.dumps(old))
    assert actuator(checker=lambda directory: (0, ''), runner=failing('status')).converge(contract.streams[0], []) != []
    assert {name: (config / name).read_bytes() for name in ('main.cf', 'transport_ip_isp')} == {
        name: (GOLDEN / 'postfix-marketing' / name).read_bytes() for name in ('main.cf', 'transport_ip_isp')
    }


def test_the_roles_install_waits_while_a_convergence_holds_the_instances_lock(tmp_path: Path) -> None:
    """``postfix-check install`` (the role) takes the actuator's lock: it cannot land between the actuator's last
    read of the files and its renames, where the actuator would replace it by a file made from the old one."""
    needs_postfix()
    config = tmp_path / 'postfix-marketing'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    staged = tmp_path / 'staged'
    staged.mkdir()
    rerendered = (config / 'main.cf').read_text() + '# rendered again\n'
    (staged / 'main.cf').write_text(rerendered)
    contract = golden_contract()
    state = tmp_path / 'state'
    refused: list[str] = []

    def role_installs_meanwhile(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        if argv[-1] == '-n' and argv[2] != str(config):  # the actuator checks its staged copy
            try:
                install(str(staged), str(config), ['main.cf'], lock_directory=str(state), wait=0, strict=True)
            except TimeoutError as error:
                refused.append(str(error))
        return failing('status')(argv)

    actuator = PostfixActuator(
        contract,
        state_directory=str(state),
        config_directory=lambda stream: str(config),
        runner=role_installs_meanwhile,
        checker=lambda directory: (0, ''),
    )
    changes = actuator.converge(contract.streams[0], [action(A, 'gmail', 'backoff')])
    assert changes[-1] == 'postfix-marketing is not running: the change takes effect when it starts'
    assert len(refused) == 1 and 'postfix-marketing.lock still locked' in refused[0]
    # Once the convergence is done, the install goes through, and the next round builds on the role's file.
    assert install(str(staged), str(config), ['main.cf'], lock_directory=str(state), wait=0) == 0
    assert (config / 'main.cf').read_text() == rerendered


def test_the_roles_render_with_exactly_the_value_an_action_set_is_the_baseline(tmp_path: Path) -> None:
    """The role renders a transport's concurrency limit as 1, the value the active back-off set: the file it staged
    and installed is the baseline, all of it, and the 1 stays when the action ends (not the old 4)."""
    needs_postfix()
    config, staging = tmp_path / 'postfix-marketing', tmp_path / 'staging'
    shutil.copytree(GOLDEN / 'postfix-marketing', config)
    shutil.copytree(GOLDEN / 'postfix-marketing', staging / 'postfix-marketing')
    contract = golden_contract()
    actuator = PostfixActuator(
        contract,
        state_directory=str(tmp_path / 'state'),
        config_directory=lambda stream: str(config),
        runner=failing('status'),
        checker=lambda directory: (0, ''),
        staging_directory=str(staging),
    )
    name = f'out_{A.replace(".", "_")}__gmail_destination_concurrency_limit'
    desired = [action(A, 'gmail', 'backoff')]
    assert f'main.cf: {name}: 4 -> 1' in actuator.converge(contract.streams[0], desired)
    # The role renders the limit as 1, stages the file and installs it (postfix-check stage / install).
    text = (GOLDEN / 'postfix-marketing' / 'main.cf').read_text()
    rerendered = re.sub(rf'(?m)^{name} = 4$', f'{name} = 1', text)
    assert rerendered != text
    (staging / 'postfix-marketing' / 'main.cf').write_text(rerendered)
    install(str(staging / 'postfix-marketing'), str(config), ['main.cf'], lock_directory=str(tmp_path / 'state'))
    assert (config / 'main.cf').read_text() == rerendered
    actuator.converge(contract.streams[0], desired)  # the back-off's rate delay goes back on top
    assert (config / 'main.cf').read_text() != rerendered
    actuator.converge(contract.streams[0], [])
    assert (config / 'main.cf').read_text() == rerendered
