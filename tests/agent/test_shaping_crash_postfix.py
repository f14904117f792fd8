"""The Postfix actuator killed (SIGKILL) at every step of applying and of reverting actions, on Debian's real Postfix.

Each step is a command it runs (postconf, ``postfix check``, status, reload, postqueue) or a file it renames into
place (the staged main.cf, transport_ip_isp, its state file): a child process converges and kills itself just
before or just after the n-th step. A new actuator (the restarted service) then converges, to the same actions or to
the other set (the action expired meanwhile). Afterwards the files are byte for byte those of the set converged to,
``postfix check``, ``postconf -n`` and ``postconf -M`` are clean, the running Postfix has reloaded since the files
last changed (its qmgr is a new process), and nothing is left behind: no temporary file, no staging directory.

The instance is the Postfix actuator tests' (tests/agent/test_shaping_postfix_actuator.py).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from mailinfra_agent.postfix.staged_check import postfix_check, run
from mailinfra_agent.shaping import postfix_actuator, state
from mailinfra_agent.shaping.actions import Action
from mailinfra_agent.shaping.engine import Engine
from mailinfra_agent.shaping.postfix_actuator import PostfixActuator
from mailinfra_agent.shaping.service import Service
from mailinfra_agent.store import connect
from tests.agent.shaping_fixtures import append, postfix_instance, stamp
from tests.agent.test_shaping_postfix_actuator import (
    IPS,
    KEYS,
    Instance,
    action,
    log_problems,
    settings,
)
from tests.agent.test_shaping_service_postfix import shaping_contract


@pytest.fixture
def postfix() -> Iterator[Instance]:
    with postfix_instance() as started:
        yield started


DESIRED = [
    action(IPS[0], 'gmail', 'backoff'),  # main.cf: concurrency, rate delay, cohort limit
    action(IPS[1], 'gmail', 'suspend', failover=True),  # transport_ip_isp: the row points at the other IP
    action(IPS[1], 'yahoo', 'cap'),  # main.cf: defer_transports
]


Step = int | Callable[[str], bool]
"""The hook to die at: its number, or a test of its label (``before postfix -c DIR reload``, ``before rename X``)."""


def converge_killed_at(
    instance: Instance,
    desired: Sequence[Action],
    step: Step,
    service: Callable[[PostfixActuator], Service] | None = None,
) -> bool:
    """Converge in a child process that SIGKILLs itself at hook ``step``; whether it was killed (else it finished).

    With ``service``: one round of the service made with the child's actuator, instead of ``desired``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends by os._exit or SIGKILL
        code = 1
        try:
            hooks = itertools.count(1)

            def hook(label: str) -> None:
                number = next(hooks)
                if step == number or (callable(step) and step(label)):
                    os.kill(os.getpid(), signal.SIGKILL)

            def runner(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
                hook(f'before {" ".join(argv)}')
                result = run(argv)
                hook(f'after {" ".join(argv)}')
                return result

            def checker(directory: str) -> tuple[int, str]:
                hook('before postfix check')
                result = postfix_check(directory)
                hook('after postfix check')
                return result

            backdate = postfix_actuator._backdate

            def before_rename(path: str) -> None:
                hook(f'before rename {path}')  # the temporary file is written, not yet renamed
                backdate(path)

            postfix_actuator._backdate = before_rename
            actuator = instance.actuator(runner=runner, checker=checker)
            if service is None:
                actuator.converge(instance.stream, desired)
            else:
                service(actuator).step()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f'the converge failed at step {step}'
    return False


def qmgr(instance: Instance, other_than: int | None = None) -> int | None:
    """The pid of the instance's queue manager (a reload starts a new one, which reads main.cf again).

    After a reload the old one exits and the master starts the new one a moment later: with ``other_than`` (the
    pid before), wait up to 30 s for another one; the pid found last (None: none) is returned."""
    master = int((instance.root / 'queue' / 'pid' / 'master.pid').read_text().split()[0])
    deadline = time.monotonic() + 30
    while True:
        found = None
        for entry in Path('/proc').iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
                    name = (entry / 'comm').read_text().strip()
                except OSError:
                    continue
                if name == 'qmgr' and int(fields[1]) == master:
                    found = int(entry.name)
        if (found is not None and found != other_than) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def clean(instance: Instance, expected: dict[str, bytes], where: str = '') -> None:
    """The files are ``expected``, Postfix accepts them, and no temporary file or staging directory is left."""
    assert instance.files() == expected, where  # a leftover temporary file is a file too
    state = {path.name for path in (instance.root / 'state').iterdir()}
    assert state <= {'postfix-marketing.json', 'postfix-marketing.lock'}, (where, state)
    code, output = postfix_check(str(instance.config))
    assert code == 0, output
    for option in ('-n', '-M'):
        listing = run(['postconf', '-c', str(instance.config), option])
        assert (listing.returncode, listing.stderr) == (0, ''), listing.stderr


def test_a_converge_killed_at_any_step_is_finished_by_the_next_one(postfix: Instance) -> None:
    instance = postfix
    rendered = instance.files()
    instance.actuator().converge(instance.stream, DESIRED)
    applied = instance.files()
    instance.actuator().converge(instance.stream, [])
    assert instance.files() == rendered
    ends = {'apply': (DESIRED, applied), 'revert': ([], rendered)}

    steps = 0
    for step in itertools.count(1):
        killed = False
        for phase, start, target in (('apply', 'revert', 'apply'), ('revert', 'apply', 'revert')):
            # From the start's files, killed on the way to the target's; the restart converges to either end.
            recovery = target if step % 2 else start
            desired, expected = ends[target]
            before = instance.files()
            assert before == ends[start][1]
            queue_manager = qmgr(instance)
            died = converge_killed_at(instance, desired, step)
            if died:
                instance.actuator(stale=0).converge(instance.stream, ends[recovery][0])
            else:
                assert instance.files() == expected
            killed |= died
            clean(instance, ends[recovery if died else target][1], f'{phase}, step {step}')
            if instance.files() != before:
                reloaded = qmgr(instance, other_than=queue_manager) != queue_manager
                assert reloaded, f'{phase}, step {step}: files changed, Postfix not reloaded'
            if died and recovery != target:  # back to the start of the next phase
                instance.actuator().converge(instance.stream, desired)
        if not killed:
            break
        steps = step
    assert steps > 10  # every command and rename of both ways was a point of death
    # Mail still flows through both IPs, and Postfix logged no problem.
    instance.actuator().converge(instance.stream, [])
    instance.wait_received(instance.send('gmail.example', 2) + instance.send('yahoo.example', 2))
    assert log_problems(instance) == []


def test_killed_between_install_and_reload_the_restart_reloads(postfix: Instance) -> None:
    instance = postfix
    rendered = instance.files()
    queue_manager = qmgr(instance)
    assert converge_killed_at(instance, DESIRED, lambda label: label.endswith(' reload'))
    installed = instance.files()
    assert installed != rendered
    assert qmgr(instance) == queue_manager  # Postfix still runs the rendered configuration
    # Nothing to change in the files, but the instance must be reloaded: the state file says it was not.
    changes = instance.actuator().converge(instance.stream, DESIRED)
    assert changes == ['reloaded postfix-marketing (a change had not been reloaded)']
    assert qmgr(instance, other_than=queue_manager) != queue_manager
    clean(instance, installed)
    assert instance.actuator().converge(instance.stream, DESIRED) == []  # once


def test_killed_before_a_rename_the_restart_removes_the_temporary_files(postfix: Instance) -> None:
    instance = postfix
    rendered = instance.files()
    # Killed while postconf edits the staged copy: the staging directory goes at the next convergence.
    assert converge_killed_at(
        instance, DESIRED, lambda label: label.startswith('after postconf -c') and ' -e ' in label
    )
    assert [path.name for path in (instance.root / 'state').iterdir() if path.is_dir()]
    instance.actuator().converge(instance.stream, [])
    clean(instance, rendered)
    # Killed before main.cf's rename: its temporary file is left beside it.
    assert converge_killed_at(
        instance, DESIRED, lambda label: label.startswith('before rename') and '.main.cf.' in label
    )
    assert [name for name in instance.files() if name.startswith('.main.cf.')]
    # A recent one may be the role's install in progress: it stays; an old one goes.
    instance.actuator().converge(instance.stream, [])
    assert [name for name in instance.files() if name.startswith('.main.cf.')]
    instance.actuator(stale=0).converge(instance.stream, [])
    clean(instance, rendered)


def test_parameters_main_cf_lacks_are_appended_in_name_order(postfix: Instance) -> None:
    """postconf -e appends new parameters in a random order: the same actions must give the same bytes."""
    instance = postfix
    rendered = instance.files()['main.cf'].decode()
    desired = [action(ip, isp, 'backoff') for ip in IPS for isp in ('gmail', 'yahoo')] + [
        action(IPS[0], 'gmail', 'cap')
    ]
    instance.actuator().converge(instance.stream, desired)
    lines = instance.files()['main.cf'].decode().splitlines()
    new = [line for line in lines if ' = ' in line and line.split(' = ')[0] not in settings(rendered)]
    assert len(new) >= 5 and new == sorted(new) and lines[-len(new) :] == new


@pytest.mark.parametrize(
    'point',
    [
        r'before postconf -c',  # the store holds the action, Postfix has nothing yet
        r'before rename .*\.postfix-marketing\.json\.',  # the actuator's state file
        r'before postfix check',  # installed, not checked
        r'before postfix -c \S+ reload',  # checked, not reloaded
        r'after postfix -c \S+ reload',  # reloaded, the state file not saved yet
    ],
)
def test_a_service_killed_after_storing_an_action_applies_it_once_after_the_restart(
    postfix: Instance, tmp_path: Path, point: str
) -> None:
    instance = postfix
    replies = tmp_path / 'replies.log'
    shaped = shaping_contract(instance, tmp_path, replies)
    clock = time.time()

    def service(actuator: PostfixActuator) -> Service:
        return Service(shaped, lambda: connect(shaped.store), actuator, engine=Engine(shaped, use_warmup=False))

    append(
        replies,
        f'{stamp(clock - 1)} mx2 postfix-marketing/out_{KEYS[0]}__gmail/smtp[4242]: 4A1B2C3D4E: '
        'to=<someone@gmail.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.2, delays=0/0/0.1/0.1, dsn=4.7.28, '
        'status=deferred (host 127.0.0.1[127.0.0.1] said: 421-4.7.28 unusual rate (in reply to end of DATA command))',
    )
    queue_manager = qmgr(instance)
    assert converge_killed_at(instance, [], lambda label: re.match(point, label) is not None, service)
    restarted = service(instance.actuator(stale=0))
    report = restarted.step()
    assert report.changes == []  # the line was stored with its checkpoint: not read, not applied again
    db = restarted.db()
    (item,) = state.active(db, shaped.host.name)
    assert (item.action.ip, item.action.isp, item.action.kind) == (IPS[0], 'gmail', 'suspend')
    assert [row[4:] for row in state.counters(db, shaped.host.name)] == [('applied', 1)]
    # What Postfix runs agrees with the store: the held transport, nothing else.
    assert instance.postconf('defer_transports') == f'out_{KEYS[0]}__gmail'
    assert qmgr(instance, other_than=queue_manager) != queue_manager  # and Postfix was reloaded since
    clean(instance, instance.files())
    assert restarted.actuator is not None and restarted.actuator.converge(instance.stream, [item.action]) == []
    restarted.close()
