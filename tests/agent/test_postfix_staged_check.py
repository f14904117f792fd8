"""``mailinfra-agent postfix-check``: the staged-configuration guard of the postfix role.

The logic runs against fakes of postconf, postmap and ``postfix check`` that answer what a real Postfix prints;
the command line runs against Debian's Postfix (root only: ``postfix check`` sets up a queue directory, which
the test keeps in its temporary directory; no daemon is started).
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from mailinfra_agent.cli import main as agent
from mailinfra_agent.postfix.staged_check import (
    RESTART,
    check,
    install,
    lock_path,
    problems_of,
    stage,
    warnings,
)


class FakePostfix:
    """Answers postconf and postmap from a table keyed by the arguments after ``-c DIR``; records every call."""

    def __init__(
        self,
        answers: dict[tuple[str, ...], tuple[int, str, str]] | None = None,
        postfix_check: tuple[int, str] = (0, ''),
    ) -> None:
        self.answers = answers or {}
        self.postfix_check = postfix_check
        self.calls: list[list[str]] = []

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        # postconf -m runs on an empty temporary configuration: answered as if it were /s's.
        directory = '/s' if argv[3:] == ['-m'] else argv[2]
        code, stdout, stderr = self.answers.get((argv[0], directory, *argv[3:]), (0, '', ''))
        return subprocess.CompletedProcess(list(argv), code, stdout, stderr)

    def terminal(self, directory: str) -> tuple[int, str]:
        self.calls.append(['postfix', '-c', directory, 'check'])
        return self.postfix_check


def test_warnings_keep_all_but_overriding_earlier_entry() -> None:
    stderr = (
        'postconf: warning: /s/main.cf, line 40: overriding earlier entry: smtp_tls_security_level=may\n'
        '\n'
        'postconf: warning: /s/main.cf: unused parameter: smtpd_bogus=1\n'
    )
    assert warnings(stderr) == ['postconf: warning: /s/main.cf: unused parameter: smtpd_bogus=1']


def test_a_clean_configuration_passes(tmp_path: Path) -> None:
    fake = FakePostfix({('postconf', '/s', '-n', '-x'): (0, 'myhostname = mx1.example.com\n', '')})
    assert problems_of('/s', runner=fake.run, terminal=fake.terminal) == []
    assert fake.calls == [
        ['postconf', '-c', '/s', '-n', '-x'],
        ['postconf', '-c', '/s', '-M', '-x'],
        ['postconf', '-c', '/s', '-P', '-x'],
        ['postfix', '-c', '/s', 'check'],
        ['postconf', '-c', '/s', '-d'],
        ['postconf', '-c', fake.calls[-1][2], '-m'],
    ]
    assert check('/s', str(tmp_path), runner=fake.run, terminal=fake.terminal) == 0


def test_postconf_warnings_and_failures_are_problems() -> None:
    fake = FakePostfix(
        {
            ('postconf', '/s', '-n', '-x'): (1, '', 'postconf: warning: /s/main.cf: unused parameter: bogus=1\n'),
            ('postconf', '/s', '-M', '-x'): (0, '', 'postconf: warning: /s/master.cf: line 3: bad field count\n'),
            ('postconf', '/s', '-P', '-x'): (1, '', ''),
        }
    )
    assert problems_of('/s', runner=fake.run, terminal=fake.terminal) == [
        'main.cf: postconf: warning: /s/main.cf: unused parameter: bogus=1',
        'postconf -n failed with exit code 1',
        'master.cf: postconf: warning: /s/master.cf: line 3: bad field count',
        'postconf -P failed with exit code 1',
    ]


def test_a_failed_postfix_check_gives_its_reason() -> None:
    output = 'postfix: fatal: bad numerical configuration:\r\n  default_process_limit = x\r\n'
    reason = FakePostfix(postfix_check=(1, output))
    assert problems_of('/s', runner=reason.run, terminal=reason.terminal) == [
        'postfix check failed: postfix: fatal: bad numerical configuration: default_process_limit = x'
    ]
    silent = FakePostfix(postfix_check=(1, ''))
    assert problems_of('/s', runner=silent.run, terminal=silent.terminal) == ['postfix check failed: no reason given']


def test_tables_must_exist_and_parse(tmp_path: Path) -> None:
    good, bad, missing = tmp_path / 'good', tmp_path / 'bad', tmp_path / 'missing'
    good.write_text('a@example.com OK\n')
    bad.write_text('/unclosed REJECT\n')
    settings = (
        f'smtpd_sender_restrictions = check_sender_access texthash:{good}, check_sender_access pcre:{bad}\n'
        f'header_checks = pcre:{missing}\n'
    )
    fake = FakePostfix(
        {
            ('postconf', '/s', '-n', '-x'): (0, settings, ''),
            ('postconf', '/s', '-m'): (0, 'hash\npcre\ntexthash\n', ''),
            ('postmap', '/s', '-q', 'mailinfra-check@check.invalid', f'pcre:{bad}'): (
                0,
                '',
                f'postmap: warning: pcre:{bad}: line 1: unexpected end of regular expression\n',
            ),
        }
    )
    assert problems_of('/s', runner=fake.run, terminal=fake.terminal) == [
        f'main.cf: header_checks = pcre:{missing}: pcre:{missing}: the table does not exist ({missing})',
        f'pcre:{bad}: postmap: warning: pcre:{bad}: line 1: unexpected end of regular expression',
    ]
    assert ['postmap', '-c', '/s', '-q', 'mailinfra-check@check.invalid', f'texthash:{good}'] in fake.calls


def test_tls_files_must_be_readable(tmp_path: Path) -> None:
    key = tmp_path / 'key.pem'
    key.write_text('key\n')
    missing = tmp_path / 'chain.pem'
    fake = FakePostfix({('postconf', '/s', '-n', '-x'): (0, f'smtpd_tls_chain_files = {key}, {missing}\n', '')})
    assert problems_of('/s', runner=fake.run, terminal=fake.terminal) == [
        f'TLS file {missing} (smtpd_tls_chain_files) is not readable'
    ]


def test_check_exits_1_on_problems_and_3_when_the_listeners_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = tmp_path / 'live'
    live.mkdir()
    broken = FakePostfix(postfix_check=(1, 'postfix: fatal: no reason'))
    assert check('/s', str(live), runner=broken.run, terminal=broken.terminal) == 1
    assert capsys.readouterr().err == '/s: postfix check failed: postfix: fatal: no reason\n'

    listeners = ('-h', 'inet_interfaces', 'inet_protocols')
    answers: dict[tuple[str, ...], tuple[int, str, str]] = {
        ('postconf', str(live), *listeners): (0, 'all\nipv4\n', ''),
        ('postconf', '/s', *listeners): (0, '192.0.2.10\nipv4\n', ''),
    }
    # No live main.cf yet: a first install needs no restart.
    first = FakePostfix(answers)
    assert check('/s', str(live), runner=first.run, terminal=first.terminal) == 0
    assert capsys.readouterr().out == ''
    (live / 'main.cf').write_text('inet_interfaces = all\n')
    fake = FakePostfix(answers)
    assert check('/s', str(live), runner=fake.run, terminal=fake.terminal) == RESTART
    out = capsys.readouterr().out
    assert out == "inet_interfaces inet_protocols: ['all', 'ipv4'] -> ['192.0.2.10', 'ipv4']: restart needed\n"
    same = FakePostfix({**answers, ('postconf', '/s', *listeners): (0, 'all\nipv4\n', '')})
    assert check('/s', str(live), runner=same.run, terminal=same.terminal) == 0


def test_install_replaces_only_changed_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staged, live = tmp_path / 'staged', tmp_path / 'live'
    (staged / 'sub').mkdir(parents=True)
    live.mkdir()
    (staged / 'main.cf').write_text('new\n')
    (staged / 'master.cf').write_text('same\n')
    (staged / 'sub' / 'table').write_text('added\n')
    (live / 'main.cf').write_text('old\n')
    (live / 'master.cf').write_text('same\n')
    before = (live / 'master.cf').stat().st_ino
    assert install(str(staged), str(live), ['main.cf', 'master.cf', 'sub/table']) == 0
    assert capsys.readouterr().out == f'{live / "main.cf"}\n{live / "sub" / "table"}\n'
    assert (live / 'main.cf').read_text() == 'new\n'
    assert (live / 'sub' / 'table').read_text() == 'added\n'
    assert stat.S_IMODE((live / 'main.cf').stat().st_mode) == 0o644
    assert (live / 'master.cf').stat().st_ino == before
    assert not list(live.glob('.mailinfra-*'))


def test_install_waits_for_the_shaping_lock_and_needs_none_without_the_shaping_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    staged, live, shaping = tmp_path / 'staged', tmp_path / 'postfix-marketing', tmp_path / 'shaping'
    staged.mkdir()
    live.mkdir()
    (staged / 'main.cf').write_text('new\n')
    (live / 'main.cf').write_text('old\n')
    # No shaping directory (no shaping service on the host): installed as before, no lock file made.
    assert install(str(staged), str(live), ['main.cf'], lock_directory=str(shaping)) == 0
    assert (live / 'main.cf').read_text() == 'new\n'
    assert not shaping.exists()
    (live / 'main.cf').write_text('old\n')
    shaping.mkdir()
    with open(lock_path(str(shaping), 'postfix-marketing'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a convergence of the instance runs
        with pytest.raises(TimeoutError, match=r'shaping/postfix-marketing\.lock still locked after 0 s'):
            install(str(staged), str(live), ['main.cf'], lock_directory=str(shaping), wait=0, strict=True)
        assert (live / 'main.cf').read_text() == 'old\n'
        # The role's call is not strict: a lock held past the wait must not stop the play half-way (other
        # instances installed and never reloaded), so it installs without the lock and says so.
        assert install(str(staged), str(live), ['main.cf'], lock_directory=str(shaping), wait=0) == 0
        assert (live / 'main.cf').read_text() == 'new\n'
        assert 'still locked after 0 s (a shaping convergence); installing without it' in capsys.readouterr().err
        (live / 'main.cf').write_text('old\n')
        # Another instance's lock is not this one's.
        other = tmp_path / 'postfix-transactional'
        other.mkdir()
        assert install(str(staged), str(other), ['main.cf'], lock_directory=str(shaping), wait=0) == 0
    assert install(str(staged), str(live), ['main.cf'], lock_directory=str(shaping), wait=0) == 0
    assert (live / 'main.cf').read_text() == 'new\n'


def test_the_agent_command(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    staged, live = tmp_path / 'staged', tmp_path / 'live'
    staged.mkdir()
    (staged / 'main.cf').write_text('new\n')
    assert agent(['postfix-check', 'install', str(staged), str(live), 'main.cf']) == 0
    assert capsys.readouterr().out == f'{live / "main.cf"}\n'
    assert agent(['postfix-check', 'install', str(staged), str(live), 'absent.cf']) == 2
    assert 'postfix-check install: ' in capsys.readouterr().err
    # Without Postfix nothing can be checked: a clear message and exit 2, not a traceback.
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    assert agent(['postfix-check', 'check', str(staged), str(live)]) == 2
    assert "No such file or directory: 'postconf'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        agent(['postfix-check', 'install', str(staged), str(live)])


# --- the command line, with Debian's Postfix ----------------------------------------------------------------------

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
myhostname = mx1.example.test
inet_interfaces = loopback-only
inet_protocols = ipv4
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
"""


@pytest.fixture
def staged(tmp_path: Path) -> Path:
    if os.geteuid() != 0 or shutil.which('postconf') is None or not Path('/etc/postfix/master.cf').is_file():
        pytest.skip('needs root and Postfix (apt-get install postfix postfix-pcre; script/bootstrap does)')
    directory = tmp_path / 'staged'
    directory.mkdir()
    (tmp_path / 'queue').mkdir()
    shutil.copyfile('/etc/postfix/master.cf', directory / 'master.cf')
    (directory / 'main.cf').write_text(MAIN_CF.format(root=tmp_path))
    return directory


def postfix_check(staged: Path, extra: str = '') -> tuple[int, str]:
    """Exit code and stderr of ``mailinfra-agent postfix-check check`` with ``extra`` appended to main.cf."""
    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write(extra)
    live = staged.parent / 'live'
    result = subprocess.run(
        [sys.executable, '-m', 'mailinfra_agent', 'postfix-check', 'check', str(staged), str(live)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stderr


def test_a_real_postfix_passes_a_clean_configuration(staged: Path) -> None:
    # The same parameter twice is what postfix__main_cf_extra does: tolerated.
    assert postfix_check(staged, 'myhostname = other.example.test\n') == (0, '')


def test_a_real_postfix_finds_an_unknown_parameter(staged: Path) -> None:
    code, stderr = postfix_check(staged, 'bogus_parameter = 1\n')
    assert code == 1
    assert f'{staged}: main.cf: postconf: warning: {staged}/main.cf: unused parameter: bogus_parameter=1' in stderr


def test_a_real_postfix_finds_a_bad_value(staged: Path) -> None:
    code, stderr = postfix_check(staged, 'default_process_limit = lots\n')
    assert code == 1
    assert 'postfix check failed: postfix: fatal: bad numerical configuration: default_process_limit = lots' in stderr


def test_a_real_postfix_finds_broken_and_missing_tables_and_tls_files(staged: Path) -> None:
    bad = staged.parent / 'bad.pcre'
    bad.write_text('/unclosed( REJECT\n')
    missing, chain = staged.parent / 'none', staged.parent / 'missing.pem'
    code, stderr = postfix_check(
        staged,
        f'header_checks = pcre:{bad}\nsmtpd_sender_restrictions = check_sender_access texthash:{missing}\n'
        f'smtpd_tls_chain_files = {chain}\n',
    )
    assert code == 1
    assert f'pcre:{bad}: postmap: warning: pcre map {bad}, line 1: no closing regexp delimiter' in stderr
    assert f'texthash:{missing}: the table does not exist ({missing})' in stderr
    assert f'TLS file {chain} (smtpd_tls_chain_files) is not readable' in stderr


def test_a_real_postfix_needs_a_restart_when_the_listeners_change(staged: Path) -> None:
    live = staged.parent / 'live'
    live.mkdir()
    (live / 'main.cf').write_text('inet_interfaces = all\n')
    assert postfix_check(staged)[0] == RESTART
    shutil.copyfile(staged / 'main.cf', live / 'main.cf')
    assert postfix_check(staged) == (0, '')


# Issue 11: each of these passed `postfix check` and postconf, was installed, and stopped delivery.
ISSUE_11 = [
    ('maximal_queue_lifetime', '5 days', 'not a Postfix time'),
    ('default_destination_concurrency_limit', 'twenty', 'not an integer'),
    ('smtp_tls_security_level', 'always', 'must be one of: (empty), none, may, encrypt, dane'),
    ('smtpd_tls_security_level', 'mandatory', 'must be one of: (empty), none, may, encrypt'),
    ('smtp_bind_address_enforce', 'maybe', 'not a boolean: yes or no'),
    ('smtpd_milters', 'opendkim', 'opendkim: not a milter address'),
    ('smtpd_milters', 'inet:127.0.0.1:{port}', 'inet:127.0.0.1:{port}: cannot connect to inet:127.0.0.1:{port}'),
    ('transport_maps', 'hash:{root}/none', 'hash:{root}/none: the table does not exist ({root}/none.db)'),
]


@pytest.mark.parametrize(('name', 'value', 'reason'), ISSUE_11)
def test_a_real_postfix_configuration_with_an_issue_11_value_is_refused(
    staged: Path, name: str, value: str, reason: str
) -> None:
    with socket.socket() as closed:
        closed.bind(('127.0.0.1', 0))
        port = closed.getsockname()[1]
    value, reason = (text.format(port=port, root=staged.parent) for text in (value, reason))
    code, stderr = postfix_check(staged, f'{name} = {value}\n')
    assert code == 1
    assert f'{staged}: main.cf: {name} = {value}: {reason}' in stderr


def test_a_real_postfix_master_cf_override_is_checked_too(staged: Path) -> None:
    with (staged / 'master.cf').open('a') as master_cf:
        master_cf.write('out_1 unix - - n - - smtp\n  -o smtp_tls_security_level=always\n')
    code, stderr = postfix_check(staged, 'out_1_destination_rate_delay = 1 second\n')
    assert code == 1
    assert f'{staged}: master.cf: service out_1/unix: -o smtp_tls_security_level=always: must be one of' in stderr
    assert f'{staged}: main.cf: out_1_destination_rate_delay = 1 second: not a Postfix time' in stderr


def test_the_milters_are_not_tried_with_no_connect(staged: Path) -> None:
    with (staged / 'main.cf').open('a') as main_cf:
        main_cf.write('smtpd_milters = inet:127.0.0.1:9\n')
    live = staged.parent / 'live'
    assert agent(['postfix-check', 'check', '--no-connect', str(staged), str(live)]) == 0


def test_stage_writes_only_what_differs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    staging = tmp_path / 'staging'
    files = {'postfix/main.cf': 'a = 1\n', 'postfix-b/sasl/smtpd.conf': 'x\n'}
    assert stage(str(staging), files) == 0
    assert capsys.readouterr().out == f'{staging / "postfix-b/sasl/smtpd.conf"}\n{staging / "postfix/main.cf"}\n'
    assert (staging / 'postfix' / 'main.cf').read_bytes() == b'a = 1\n'
    assert stat.S_IMODE((staging / 'postfix' / 'main.cf').stat().st_mode) == 0o644
    for directory in (staging, staging / 'postfix-b', staging / 'postfix-b' / 'sasl'):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    before = (staging / 'postfix' / 'main.cf').stat().st_ino
    # the same files again: nothing written, nothing printed
    assert stage(str(staging), files) == 0
    assert capsys.readouterr().out == ''
    assert (staging / 'postfix' / 'main.cf').stat().st_ino == before
    # a changed content and a wrong mode are both written again
    (staging / 'postfix-b' / 'sasl' / 'smtpd.conf').chmod(0o666)
    assert stage(str(staging), {**files, 'postfix/main.cf': 'a = 2\n'}) == 0
    assert capsys.readouterr().out == f'{staging / "postfix-b/sasl/smtpd.conf"}\n{staging / "postfix/main.cf"}\n'
    assert (staging / 'postfix' / 'main.cf').read_text() == 'a = 2\n'
    assert stat.S_IMODE((staging / 'postfix-b' / 'sasl' / 'smtpd.conf').stat().st_mode) == 0o644
    assert not list(staging.rglob('.mailinfra-*'))


@pytest.mark.parametrize('name', ['/etc/postfix/main.cf', '../main.cf', 'postfix/../../x', 'postfix//main.cf', ''])
def test_stage_refuses_names_outside_the_staging_directory(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match='not a relative file name'):
        stage(str(tmp_path / 'staging'), {'postfix/main.cf': 'ok\n', name: 'x\n'})
    assert not (tmp_path / 'staging').exists()


def test_the_agent_command_stages_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = tmp_path / 'staging'
    monkeypatch.setattr(sys, 'stdin', io.StringIO(json.dumps({'postfix/main.cf': 'a = 1\n'})))
    assert agent(['postfix-check', 'stage', str(staging)]) == 0
    assert capsys.readouterr().out == f'{staging / "postfix/main.cf"}\n'
    for bad in ('not json', '["postfix/main.cf"]', '{"postfix/main.cf": 1}', '{"../x": "y"}'):
        monkeypatch.setattr(sys, 'stdin', io.StringIO(bad))
        assert agent(['postfix-check', 'stage', str(staging)]) == 2
        assert capsys.readouterr().err.startswith('postfix-check stage: ')
    assert sorted(path.name for path in staging.rglob('*')) == ['main.cf', 'postfix']


def test_install_itself_refuses_names_outside_its_directories(tmp_path: Path) -> None:
    """The library function, not only the command line: a caller passing ``../x`` installs nothing."""
    staged, live = tmp_path / 'staged', tmp_path / 'live'
    staged.mkdir()
    (staged / 'main.cf').write_text('y')
    (tmp_path / 'secret').write_text('x')
    for name in ('../secret', '/etc/hostname', 'sasl/../main.cf', 'a//b'):
        with pytest.raises(ValueError, match='not a relative file name'):
            install(str(staged), str(live), ['main.cf', name], lock_directory=str(tmp_path / 'none'))
    assert not live.exists()
