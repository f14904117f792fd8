"""``mailinfra-agent postfix-check trial``: the staged configuration in a throw-away instance (issue 11).

The trial must mean more than a start: a message on each listener, delivered to an smtp-sink on loopback, and a
log without fatal, panic, error or warning lines. The real tests start Debian's Postfix as root in a temporary
directory with its own queue and loopback ports; they never touch /etc/postfix or a running instance.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mailinfra_agent.postfix.trial import _log_problems, delivery_transport, listeners, trial

MASTER_CF = """\
# comment
smtp      inet  n       -       y       -       -       smtpd
#submission inet n       -       y       -       -       smtpd
2525      inet  n       -       n       -       -       smtpd
  -o syslog_name=postfix/inject
pickup    unix  n       -       y       60      1       pickup
"""


def test_listeners_move_every_inet_service_to_loopback() -> None:
    text, moved = listeners(MASTER_CF, [40001, 40002])
    assert moved == ['127.0.0.1:40001', '127.0.0.1:40002']
    assert text == MASTER_CF.replace('smtp      inet', '127.0.0.1:40001      inet', 1).replace(
        '2525      inet', '127.0.0.1:40002      inet'
    )


def test_listeners_adds_one_when_there_is_none() -> None:
    text, moved = listeners('pickup unix n - n 60 1 pickup\n', [40003])
    assert moved == ['127.0.0.1:40003']
    assert text == 'pickup unix n - n 60 1 pickup\n127.0.0.1:40003 inet n - n - - smtpd\n'


SERVICES = """\
smtp       inet  n       -       n       -       -       smtpd
error      unix  -       -       n       -       -       error
out_1      unix  -       -       n       -       1       smtp -o smtp_bind_address=192.0.2.10
relay      unix  -       -       n       -       -       smtp
"""


def test_the_trial_delivers_through_the_default_transport_or_the_first_smtp_client() -> None:
    assert delivery_transport('relay', SERVICES) == 'relay'
    assert delivery_transport('error', SERVICES) == 'out_1'
    assert delivery_transport('', SERVICES) == 'out_1'
    assert delivery_transport('', '') == 'smtp'


# --- Debian's Postfix ---------------------------------------------------------------------------------------------

MAIN_CF = """\
compatibility_level = 3.6
myhostname = trial-host.example.test
mydestination =
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file = /var/log/not-used-by-the-trial.log
"""


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    if os.geteuid() != 0 or shutil.which('postfix') is None or shutil.which('smtp-sink') is None:
        pytest.skip('needs root and Postfix with smtp-sink (apt-get install postfix; script/bootstrap does)')
    directory = tmp_path / 'staged'
    directory.mkdir()
    (directory / 'master.cf').write_text(
        Path('/etc/postfix/master.cf').read_text() + '10587 inet n - n - - smtpd\n  -o syslog_name=postfix/inject\n'
    )
    (directory / 'main.cf').write_text(MAIN_CF)
    return directory


def test_a_clean_configuration_delivers_from_every_listener(staged: Path) -> None:
    # A work directory of its own (other trials on the machine cannot make or hide a leftover), which Postfix's
    # unprivileged daemons may enter as they may enter /tmp (pytest's tmp_path is 0700).
    work = Path(tempfile.mkdtemp(prefix='mailinfra-test-trial-'))
    work.chmod(0o755)
    result = trial(str(staged), work=str(work))
    assert result.problems == []
    assert len(result.listeners) == 2  # Debian's smtp and our 10587, both moved to loopback
    assert all(address.startswith('127.0.0.1:') for address in result.listeners)
    assert list(work.iterdir()) == []  # its work directory removed (no timing assert: the trial has its timeout)
    work.rmdir()


def test_a_bad_time_value_fails_the_trial(staged: Path) -> None:
    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write('maximal_queue_lifetime = 5 days\n')
    problems = trial(str(staged), timeout=15).problems
    assert any(
        'qmgr' in line and 'fatal: parameter maximal_queue_lifetime: bad time value' in line for line in problems
    )
    assert any('did not reach the sink' in problem for problem in problems)


def test_a_milter_that_does_not_answer_fails_the_trial(staged: Path) -> None:
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]
    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write(f'smtpd_milters = inet:127.0.0.1:{port}\nmilter_default_action = tempfail\n')
    problems = trial(str(staged), timeout=10).problems
    assert sum('did not accept a message: (451' in problem for problem in problems) == 2
    assert any(f'warning: connect to Milter service inet:127.0.0.1:{port}: Connection refused' in p for p in problems)


def test_a_transport_that_fails_fails_the_trial(staged: Path) -> None:
    # The default transport binds an address this host does not have: accepted, never delivered.
    with (staged / 'master.cf').open('a') as master_cf:
        master_cf.write('out unix - - n - - smtp\n  -o smtp_bind_address=198.51.100.77\n')
        master_cf.write('  -o smtp_bind_address_enforce=yes\n')
    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write('default_transport = out\n')
    problems = trial(str(staged), timeout=5).problems
    assert any('did not reach the sink within 5 s' in problem for problem in problems)
    assert any('warning: smtp_connect_addr: bind 198.51.100.77: Cannot assign' in problem for problem in problems)


def run_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, '-m', 'mailinfra_agent', 'postfix-check', *args], capture_output=True, text=True, check=False
    )


def test_the_command_runs_only_when_the_files_differ(staged: Path) -> None:
    live = staged.parent / 'live'
    shutil.copytree(staged, live)
    same = run_agent('trial', '--if-differs', str(live), str(staged), 'main.cf', 'master.cf')
    assert (same.returncode, same.stderr) == (0, '')
    assert same.stdout == f'{staged}: no trial, the files are those of {live}\n'

    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write('smtp_bind_address_enforce = maybe\n')
    changed = run_agent('trial', '--if-differs', str(live), str(staged), 'main.cf', 'master.cf')
    assert changed.returncode == 1
    assert f'{staged}: trial failed in ' in changed.stdout
    assert 'fatal: bad boolean configuration: smtp_bind_address_enforce = maybe' in changed.stderr

    (staged / 'main.cf').write_text(MAIN_CF)
    passed = run_agent('trial', str(staged))
    assert (passed.returncode, passed.stderr) == (0, '')
    assert f'{staged}: trial passed in ' in passed.stdout


def test_the_command_says_why_it_could_not_try(tmp_path: Path) -> None:
    missing = run_agent('trial', str(tmp_path / 'none'))
    assert missing.returncode == 2
    assert missing.stderr.startswith('postfix-check trial: ')


def test_a_file_system_clock_ahead_is_not_a_problem_of_the_configuration(tmp_path: Path) -> None:
    """cleanup's "file system clock is 1 seconds ahead" is about the host (ext4 on Linux 6.18 now and then): it must not
    refuse an install; every other warning still does."""
    (tmp_path / 'maillog').write_text(
        'Dec  7 15:00:00 h postfix-marketing/cleanup[9]: warning: file system clock is 1 seconds ahead of local clock\n'
        'Dec  7 15:00:01 h postfix-marketing/smtpd[9]: warning: unknown smtpd restriction: "bogus"\n'
    )
    problems = _log_problems(str(tmp_path), '')
    assert len(problems) == 1 and 'unknown smtpd restriction' in problems[0], problems
