"""The shaping service end to end on Debian's real Postfix: a 421 4.7.28 line suspends that IP x Gmail transport of
a running instance, Postfix's own "deferred transport" lines never extend it, and the expiry gives the rendered
files back with every held message delivered once.

The instance (two sending IPs on loopback, the rendered routing, an smtp-sink) is the Postfix actuator tests'
(tests/agent/test_shaping_postfix_actuator.py); the service, its store and its engine are the real ones.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailinfra_agent.contract import Contract, LogSource, Store, load_contract
from mailinfra_agent.files import replace_file
from mailinfra_agent.postfix.staged_check import postfix_check, run
from mailinfra_agent.shaping import state
from mailinfra_agent.shaping.engine import Engine
from mailinfra_agent.shaping.postfix_actuator import PostfixActuator
from mailinfra_agent.shaping.service import Service
from mailinfra_agent.store import connect, connect_sqlite
from tests.agent.shaping_fixtures import append, postfix_instance, stamp
from tests.agent.test_shaping_postfix_actuator import GOLDEN, IPS, KEYS, Instance, log_problems


@pytest.fixture
def postfix() -> Iterator[Instance]:
    with postfix_instance() as started:
        yield started


RULE = {
    'action': 'suspend',
    'category': None,
    'description': 'unusual rate of unsolicited mail from this IP',
    'duration': 600,
    'origin': 'isp',
    'pattern': r'4\.7\.28',
    'failover': False,
    'trigger_count': 1,
    'trigger_window': 0,
}


def shaping_contract(instance: Instance, tmp_path: Path, replies: Path) -> Contract:
    """mx2's contract with the instance's IPs, a Gmail 4.7.28 suspend rule, the test's store and logs."""
    data = json.loads((GOLDEN / 'mailinfra' / 'agent.json').read_text())
    data['ips'] = [
        {'address': ip, 'helo': f'n{n}.shaping.test', 'id': f'marketing_{key}', 'pool': 'marketing',
         'ptr': f'n{n}.shaping.test', 'stream': 'marketing'}
        for n, (ip, key) in enumerate(zip(IPS, KEYS, strict=True), start=1)
    ]  # fmt: skip
    for stream in data['streams']:
        for isp in stream['isps']:
            if isp['isp'] == 'gmail':
                isp['backoff_rules'] = [RULE]
    shaped = load_contract(data)
    logs = (
        LogSource(str(replies), 'postfix', 'postfix-marketing', 'postfix-marketing', 'marketing'),
        LogSource(str(instance.root / 'maillog'), 'postfix', 'postfix-marketing', 'postfix-marketing', 'marketing'),
    )
    return dataclasses.replace(shaped, store=Store('sqlite', path=str(tmp_path / 'agent.db')), logs=logs)


def test_a_428_suspends_the_transport_of_a_running_postfix_and_expiry_restores_it(
    postfix: Instance, tmp_path: Path
) -> None:
    instance = postfix
    rendered = instance.files()
    replies = tmp_path / 'replies.log'
    replies.touch()
    shaped = shaping_contract(instance, tmp_path, replies)
    actuator = PostfixActuator(
        shaped, state_directory=str(instance.root / 'state'), config_directory=lambda stream: str(instance.config)
    )
    clock = [time.time()]
    service = Service(
        shaped, lambda: connect(shaped.store), actuator, engine=Engine(shaped, use_warmup=False), clock=lambda: clock[0]
    )
    service.step()  # converges the instance to "nothing active": no change at all
    assert instance.files() == rendered

    # Gmail answers 421 4.7.28 to the first IP (the line as Postfix's smtp client logs it).
    key = KEYS[0]
    append(
        replies,
        f'{stamp(clock[0] - 1)} mx2 postfix-marketing/out_{key}__gmail/smtp[4242]: 4A1B2C3D4E: '
        f'to=<someone@gmail.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=4.7.28, '
        'status=deferred (host 127.0.0.1[127.0.0.1] said: 421-4.7.28 Our system has detected an unusual rate of '
        'unsolicited mail originating from your IP address. (in reply to end of DATA command))',
    )
    report = service.step()
    assert [(c.event, c.action.ip, c.action.isp, c.action.kind) for c in report.changes] == [
        ('applied', IPS[0], 'gmail', 'suspend')
    ]
    assert report.converged[-1] == 'marketing: reloaded postfix-marketing'
    assert instance.postconf('defer_transports') == f'out_{key}__gmail'

    gmail = instance.send('gmail.example', 12)
    yahoo = instance.send('yahoo.example', 4)
    instance.wait_received(yahoo)
    time.sleep(2)
    seen = instance.received()
    # Yahoo from both IPs, Gmail only from the other IP; the first IP's Gmail mail waits in the queue.
    assert all(IPS[0] not in seen.get(token, []) for token in gmail)
    queued = instance.queue()
    assert queued, 'no Gmail message went to the suspended transport (randmap picked the other IP 12 times)'
    assert set(queued) <= set(gmail)
    assert all('deferred transport' in reason for reason in queued.values())

    # Postfix's own "deferred transport" lines are read, and neither trigger nor extend anything.
    (before,) = state.active(service.db(), shaped.host.name)
    for _ in range(3):
        report = service.step()
        assert report.changes == []
    assert 'deferred transport' in (instance.root / 'maillog').read_text()
    (after,) = state.active(service.db(), shaped.host.name)
    assert after.action.until == before.action.until

    # The duration ends: the rendered files come back, the held mail goes out once, through either IP.
    clock[0] = before.action.until + 1
    report = service.step()
    assert [c.event for c in report.changes] == ['expired']
    assert instance.files() == rendered
    subprocess.run(['postqueue', '-c', str(instance.config), '-f'], check=True)
    seen = instance.wait_received(gmail + yahoo)
    assert all(len(seen[token]) == 1 for token in gmail + yahoo)
    assert log_problems(instance) == []
    service.close()
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert [row[4:] for row in state.counters(db, shaped.host.name)] == [('applied', 1), ('expired', 1)]


def accepted(instance: Instance) -> None:
    """Postfix takes the instance's files: ``postfix check`` passes, postconf reads main.cf and master.cf silently."""
    code, output = postfix_check(str(instance.config))
    assert code == 0, output
    for option in ('-n', '-M'):
        listing = run(['postconf', '-c', str(instance.config), option])
        assert (listing.returncode, listing.stderr) == (0, ''), listing.stderr


def test_bad_and_foreign_lines_are_counted_and_postfix_only_gets_values_it_accepts(
    postfix: Instance, tmp_path: Path
) -> None:
    instance = postfix
    rendered = instance.files()
    replies = tmp_path / 'replies.log'
    shaped = shaping_contract(instance, tmp_path, replies)
    actuator = PostfixActuator(
        shaped, state_directory=str(instance.root / 'state'), config_directory=lambda stream: str(instance.config)
    )
    clock = [time.time()]
    service = Service(
        shaped, lambda: connect(shaped.store), actuator, engine=Engine(shaped, use_warmup=False), clock=lambda: clock[0]
    )

    def line(transport: str, reply: str, delay: str = '0.2', when: str | None = None) -> str:
        return (
            f'{when or stamp(clock[0] - 1)} mx2 postfix-marketing/{transport}/smtp[4242]: 4A1B2C3D4E: '
            f'to=<someone@gmail.example>, relay=127.0.0.1[127.0.0.1]:25, delay={delay}, delays=0/0/0.1/0.1, '
            f'dsn=4.7.28, status=deferred (host 127.0.0.1[127.0.0.1] said: {reply} (in reply to end of DATA command))'
        )

    rate = '421-4.7.28 Our system has detected an unusual rate of unsolicited mail'
    lines = [
        line(f'out_{KEYS[0]}__gmail', rate, delay='1e308'),  # unreadable
        line(f'out_{KEYS[0]}__gmail', rate, when='Feb 30 99:99:99.000000'),  # unreadable
        # A storm: 200 transports of IPs that are not the stream's, 200 of ISPs the contract does not know.
        *(line(f'out_10_0_{n // 100}_{n % 100 + 1}__gmail', rate) for n in range(200)),
        *(line(f'out_{KEYS[1]}__isp{n}', '421 4.7.0 too fast ' * 100) for n in range(200)),
        line(f'out_{KEYS[1]}__microsoft', '421 4.7.0 ' + 'x' * 100_000),  # oversized
        # An ISP of the contract the instance has no transport of its own for: stored, never guessed.
        line(f'out_{KEYS[1]}__microsoft', '421 4.7.0 ' + 'x' * 10_000),
        line(f'out_{KEYS[0]}__gmail', rate),  # the one line that can act
    ]
    append(replies, *lines)
    with open(replies, 'ab') as log:
        log.write(b'\xff\xfe\x00 not a Postfix line\n')
    report = service.run(follow=False)
    # Each unreadable, oversized (over 64 KiB) or foreign line is counted; the service goes on.
    assert report.problems == 2 + 200 + 200 + 1  # the unreadable and the foreign lines; the service went on
    assert sorted((c.action.ip, c.action.isp, c.action.kind) for c in report.changes) == [
        (IPS[0], 'gmail', 'suspend'),
        (IPS[1], 'microsoft', 'backoff'),
    ]
    accepted(instance)
    assert instance.postconf('defer_transports') == f'out_{KEYS[0]}__gmail'
    assert {name for name, data in instance.files().items() if data != rendered[name]} == {'main.cf'}

    # The actions end: Postfix gets its rendered files back, byte for byte.
    clock[0] = max(item.action.until for item in state.active(service.db(), shaped.host.name)) + 1
    assert [c.event for c in service.step().changes] == ['expired', 'expired']
    accepted(instance)
    assert instance.files() == rendered
    service.close()


def test_a_backoff_survives_postfix_restarts_and_the_roles_reinstall(postfix: Instance, tmp_path: Path) -> None:
    """The files carry the actions, so a restart or an operator's reload keeps them; the role's install of the
    rendered files wipes them, and the service puts them back in its next round (not at the next resync)."""
    instance = postfix
    rendered = instance.files()
    replies = tmp_path / 'replies.log'
    shaped = shaping_contract(instance, tmp_path, replies)
    actuator = PostfixActuator(
        shaped, state_directory=str(instance.root / 'state'), config_directory=lambda stream: str(instance.config)
    )
    clock = [time.time()]
    service = Service(
        shaped, lambda: connect(shaped.store), actuator, engine=Engine(shaped, use_warmup=False), clock=lambda: clock[0]
    )
    append(
        replies,
        f'{stamp(clock[0] - 1)} mx2 postfix-marketing/out_{KEYS[0]}__gmail/smtp[4242]: 4A1B2C3D4E: '
        'to=<someone@gmail.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=4.7.28, '
        'status=deferred (host 127.0.0.1[127.0.0.1] said: 421-4.7.28 unusual rate (in reply to end of DATA command))',
    )
    assert [c.event for c in service.step().changes] == ['applied']
    suspended = instance.files()
    held = f'out_{KEYS[0]}__gmail'
    assert instance.postconf('defer_transports') == held

    # An operator reloads, then restarts the instance: the files hold the suspension, nothing changes.
    config = str(instance.config)
    subprocess.run(['postfix', '-c', config, 'reload'], check=True, capture_output=True)
    subprocess.run(['postfix', '-c', config, 'stop'], check=True, capture_output=True)
    subprocess.run(['postfix', '-c', config, 'start'], check=True, capture_output=True)
    clock[0] += 1
    assert service.step().converged == []
    assert instance.files() == suspended

    # The role installs the rendered files again (postfix-check install: one rename each) and reloads.
    for name in ('main.cf', 'transport_ip_isp'):
        replace_file(instance.config / name, rendered[name], mode=0o644)
    subprocess.run(['postfix', '-c', config, 'reload'], check=True, capture_output=True)
    clock[0] += 1  # well within the resync interval
    report = service.step()
    assert report.converged[-1] == 'marketing: reloaded postfix-marketing'
    assert instance.postconf('defer_transports') == held
    accepted(instance)

    # The suspension ends: the rendered files, byte for byte.
    (item,) = state.active(service.db(), shaped.host.name)
    clock[0] = item.action.until + 1
    assert [c.event for c in service.step().changes] == ['expired']
    assert instance.files() == rendered
    service.close()
