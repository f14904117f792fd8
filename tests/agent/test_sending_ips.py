"""``mailinfra-agent sending-ips``: the sending addresses on their interfaces (mta_base role).

The logic runs against a fake ``ip`` that keeps addresses per device; the command line runs against the real
``ip`` inside a network namespace the test creates (root only), with RFC 5737 and RFC 3849 addresses on its ``lo``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from mailinfra_agent.cli import main as agent
from mailinfra_agent.sending_ips import SendingIps, entries


class FakeIp:
    """``ip -o address show``, ``ip address replace`` and ``ip address del`` on in-memory devices."""

    def __init__(self, **devices: list[str]) -> None:
        self.devices = devices
        self.changes: list[list[str]] = []

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(args)
        if args[:3] == ['-o', 'address', 'show']:
            device = args[4]
            if device not in self.devices:
                return subprocess.CompletedProcess(args, 1, '', f'Device "{device}" does not exist.\n')
            lines = [f'1: {device}    inet {cidr} scope global {device}\\' for cidr in self.devices[device]]
            return subprocess.CompletedProcess(args, 0, ''.join(line + '\n' for line in lines), '')
        self.changes.append(args)
        action, cidr, device = args[1], args[2], args[4]
        if device not in self.devices:
            return subprocess.CompletedProcess(args, 1, '', f'Cannot find device "{device}"\n')
        if action == 'replace' and cidr not in self.devices[device]:
            self.devices[device].append(cidr)
        elif action == 'del':
            if cidr not in self.devices[device]:
                return subprocess.CompletedProcess(args, 2, '', 'Error: ipv4: Address not found.\n')
            self.devices[device].remove(cidr)
        return subprocess.CompletedProcess(args, 0, '', '')


def setup(tmp_path: Path, config: str, ip: FakeIp) -> SendingIps:
    (tmp_path / 'sending-ips.conf').write_text(config)
    return SendingIps(tmp_path / 'sending-ips.conf', tmp_path / 'run' / 'sending-ips.applied', ip)


def test_entries_skip_comments_blank_and_short_lines(tmp_path: Path) -> None:
    path = tmp_path / 'conf'
    path.write_text('# header\n\n192.0.2.10/32 eth0 # pool_a_1\n  198.51.100.7/32\tlo extra\nlonely\n#192.0.2.9 lo\n')
    assert entries(path) == [('192.0.2.10/32', 'eth0'), ('198.51.100.7/32', 'lo')]
    assert entries(tmp_path / 'missing') == []


def test_apply_adds_every_address_and_remembers_them(tmp_path: Path) -> None:
    ip = FakeIp(lo=['127.0.0.1/8'], eth0=[])
    ips = setup(tmp_path, '192.0.2.10/32 eth0\n2001:db8::10/128 lo\n', ip)
    assert ips.run('check') == 1
    assert ips.run('apply') == 0
    assert ip.changes == [
        ['address', 'replace', '192.0.2.10/32', 'dev', 'eth0'],
        ['address', 'replace', '2001:db8::10/128', 'dev', 'lo', 'nodad'],
    ]
    assert ip.devices == {'lo': ['127.0.0.1/8', '2001:db8::10/128'], 'eth0': ['192.0.2.10/32']}
    assert ips.state.read_text() == '192.0.2.10/32 eth0\n2001:db8::10/128 lo\n'
    assert ips.run('apply') == 0
    assert ip.devices == {'lo': ['127.0.0.1/8', '2001:db8::10/128'], 'eth0': ['192.0.2.10/32']}


def test_check_names_the_differences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ip = FakeIp(lo=[], eth0=[])
    ips = setup(tmp_path, '192.0.2.10/32 eth0\n192.0.2.11/32 eth0\n', ip)
    assert ips.run('apply') == 0
    assert ips.run('check') == 0
    assert capsys.readouterr().out == ''
    ips.config.write_text('192.0.2.11/32 eth0\n198.51.100.7/32 lo\n')
    assert ips.run('check') == 1
    assert capsys.readouterr().out == 'stale: 192.0.2.10/32 on eth0\nmissing: 198.51.100.7/32 on lo\n'
    # A stale address already gone from the host is no difference.
    ip.devices['eth0'].remove('192.0.2.10/32')
    ips.config.write_text('192.0.2.11/32 eth0\n')
    assert ips.run('check') == 0


def test_apply_removes_what_is_no_longer_listed_and_nothing_else(tmp_path: Path) -> None:
    ip = FakeIp(eth0=['203.0.113.5/24'])
    ips = setup(tmp_path, '192.0.2.10/32 eth0\n192.0.2.11/32 eth0\n192.0.2.12/32 eth0\n', ip)
    assert ips.run('apply') == 0
    ip.devices['eth0'].remove('192.0.2.12/32')  # removed by hand: not deleted a second time
    ips.config.write_text('192.0.2.11/32 eth0\n')
    ip.changes.clear()
    assert ips.run('apply') == 0
    assert ip.changes == [
        ['address', 'del', '192.0.2.10/32', 'dev', 'eth0'],
        ['address', 'replace', '192.0.2.11/32', 'dev', 'eth0'],
    ]
    assert ip.devices == {'eth0': ['203.0.113.5/24', '192.0.2.11/32']}
    assert ips.state.read_text() == '192.0.2.11/32 eth0\n'


def test_a_missing_or_unreadable_configuration_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Read as an empty list, a configuration that is gone (a typo in --config, a failed copy) would remove every
    sending address: apply and check stop with exit code 2 instead, and an empty file still means no addresses."""
    ip = FakeIp(eth0=[])
    ips = setup(tmp_path, '192.0.2.10/32 eth0\n', ip)
    assert ips.run('apply') == 0
    ips.config.unlink()
    ip.changes.clear()
    for action in ('apply', 'check'):
        assert ips.run(action) == 2
        assert f'sending-ips {action}: cannot read {ips.config}: No such file or directory; nothing changed' in (
            capsys.readouterr().err
        )
    ips.config.mkdir()  # not a file either
    assert ips.run('apply') == 2
    assert ip.changes == []
    assert ip.devices == {'eth0': ['192.0.2.10/32']}
    assert ips.state.read_text() == '192.0.2.10/32 eth0\n'
    ips.config.rmdir()
    ips.config.write_text('# no addresses any more\n')
    assert ips.run('apply') == 0
    assert ip.devices == {'eth0': []}


def test_remove_deletes_only_what_was_applied(tmp_path: Path) -> None:
    ip = FakeIp(eth0=['203.0.113.5/24'])
    ips = setup(tmp_path, '192.0.2.10/32 eth0\n', ip)
    assert ips.run('remove') == 0
    assert ips.run('apply') == 0
    assert ips.run('remove') == 0
    assert ip.devices == {'eth0': ['203.0.113.5/24']}
    assert not ips.state.exists()
    # Nothing applied since: the listed address stays wherever it is.
    ip.devices['eth0'].append('192.0.2.10/32')
    assert ips.run('remove') == 0
    assert ip.devices == {'eth0': ['203.0.113.5/24', '192.0.2.10/32']}


def test_a_failing_ip_command_stops_with_its_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ip = FakeIp(eth0=[])
    ips = setup(tmp_path, '192.0.2.10/32 eth9\n192.0.2.11/32 eth0\n', ip)
    assert ips.run('apply') == 1
    assert 'Cannot find device' in capsys.readouterr().err
    assert ip.devices == {'eth0': []}
    assert not ips.state.exists()


# --- the command line, with the real ip in a network namespace -------------------------------------------------


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which('ip') is None:
        pytest.skip('needs root and iproute2 to create a network namespace')
    name = f'mailinfra-test-{uuid.uuid4().hex[:8]}'
    created = subprocess.run(['ip', 'netns', 'add', name], capture_output=True, text=True, check=False)
    if created.returncode != 0:
        pytest.skip(f'cannot create a network namespace: {created.stderr.strip()}')
    try:
        yield name
    finally:
        subprocess.run(['ip', 'netns', 'del', name], check=True)


def agent_in(namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = ['ip', 'netns', 'exec', namespace, sys.executable, '-m', 'mailinfra_agent', *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def addresses(namespace: str) -> set[str]:
    listing = subprocess.run(
        ['ip', '-n', namespace, '-o', 'address', 'show', 'dev', 'lo'], capture_output=True, text=True, check=True
    )
    return {line.split()[3] for line in listing.stdout.splitlines()}


def test_the_command_in_a_network_namespace(namespace: str, tmp_path: Path) -> None:
    config, state = tmp_path / 'sending-ips.conf', tmp_path / 'run' / 'sending-ips.applied'
    files = ('--config', str(config), '--state', str(state))
    config.write_text('192.0.2.10/32 lo\n198.51.100.7/32 lo # pool_b_1\n2001:db8::10/128 lo\n')
    wanted = {'192.0.2.10/32', '198.51.100.7/32', '2001:db8::10/128'}

    result = agent_in(namespace, 'sending-ips', 'check', *files)
    assert (result.returncode, result.stdout) == (
        1,
        'missing: 192.0.2.10/32 on lo\nmissing: 198.51.100.7/32 on lo\nmissing: 2001:db8::10/128 on lo\n',
    )
    assert agent_in(namespace, 'sending-ips', 'apply', *files).returncode == 0
    assert wanted <= addresses(namespace)
    assert agent_in(namespace, 'sending-ips', 'apply', *files).returncode == 0
    result = agent_in(namespace, 'sending-ips', 'check', *files)
    assert (result.returncode, result.stdout) == (0, '')

    config.write_text('192.0.2.10/32 lo\n2001:db8::10/128 lo\n')
    result = agent_in(namespace, 'sending-ips', 'check', *files)
    assert (result.returncode, result.stdout) == (1, 'stale: 198.51.100.7/32 on lo\n')
    assert agent_in(namespace, 'sending-ips', 'apply', *files).returncode == 0
    assert '198.51.100.7/32' not in addresses(namespace)

    assert agent_in(namespace, 'sending-ips', 'remove', *files).returncode == 0
    assert not addresses(namespace) & wanted
    assert not state.exists()

    config.write_text('192.0.2.10/32 nosuch0\n')
    result = agent_in(namespace, 'sending-ips', 'apply', *files)
    assert result.returncode != 0
    assert 'nosuch0' in result.stderr


def test_the_command_line_refuses_an_unknown_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        agent(['sending-ips', 'restart'])
    assert exit_.value.code == 2
    assert "invalid choice: 'restart'" in capsys.readouterr().err
