"""The loopback guard of the suppression gate: PowerMTA's listener behind the gate (``powermta__gate.upstream``) is
for the gate's user alone. The inventory rendered from the gated example is templated by Ansible into mta_base's
``/etc/nftables.conf`` (checked with ``nft --check`` as the role does), loaded with the real ``nft`` in a fresh
network namespace (``unshare -n``), and connections are opened there from several uids (a forked child with
``setresuid``). The gate's user in these tests is ``nobody`` (the role's default is the agent's user, which this
machine does not have); uid 1 stands for any other local process. Runs as root (namespaces, nft, setresuid)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from mailinfra_iac import load_spec

from ..conftest import AS_OF, ROOT
from .helpers import EXAMPLE, host_vars, render, run_role_tasks

ROLE = ROOT / 'roles' / 'mta_base'
GATE_USER = 'nobody'
GATE_UID = 65534
OTHER_UID = 1
OTHER_PORT = 9745  # the queue exporter's port: any other loopback listener


def _files(gate: bool, tmp_path: Path) -> dict[str, bytes]:
    spec_file = tmp_path / ('gated.yml' if gate else 'spec.yml')
    text = EXAMPLE.read_text()
    if gate:
        text = text.replace('\nmonitoring:', '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:', 1)
    spec_file.write_text(text)
    return render(load_spec(spec_file, as_of=AS_OF))


def _play(variables: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """mta_base's input checks (``tasks/assert.yml``), then its ``nftables.conf`` as the role writes it (with the
    role's ``nft --check``) to ``tmp_path``, for a host with these inventory variables."""
    mta_base = {key: value for key, value in variables.items() if key.startswith('mta_base__')}
    tasks = [
        {'ansible.builtin.include_tasks': str(ROLE / 'tasks' / 'assert.yml')},
        {
            'ansible.builtin.template': {
                'src': str(ROLE / 'templates' / 'etc' / 'nftables.conf.j2'),
                'dest': str(tmp_path / 'nftables.conf'),
                'mode': '0644',
                'validate': 'nft --check --file %s',
            }
        },
    ]
    return run_role_tasks(ROLE, {**mta_base, 'agent__user': GATE_USER}, tasks, tmp_path)


def _ruleset(variables: dict[str, Any], tmp_path: Path) -> str:
    result = _play(variables, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    return (tmp_path / 'nftables.conf').read_text()


# (name, uid, source address or None, destination, port: 'upstream' or 'other')
CASES = [
    ('gate from its stream source', GATE_UID, '127.0.0.3', '127.0.0.1', 'upstream'),
    ('gate from 127.0.0.1', GATE_UID, None, '127.0.0.1', 'upstream'),
    ('other uid', OTHER_UID, None, '127.0.0.1', 'upstream'),
    ('other uid from a stream source', OTHER_UID, '127.0.0.2', '127.0.0.1', 'upstream'),
    ('other uid through 0.0.0.0', OTHER_UID, None, '0.0.0.0', 'upstream'),  # Linux: the local host
    ('other uid, IPv4-mapped IPv6', OTHER_UID, None, '::ffff:127.0.0.1', 'upstream'),
    ('root', 0, None, '127.0.0.1', 'upstream'),
    ('other uid, other port', OTHER_UID, None, '127.0.0.1', 'other'),
    ('root, other port', 0, None, '127.0.0.1', 'other'),
    ('gate, other port', GATE_UID, None, '127.0.0.1', 'other'),
]


def _probe(ruleset: str, upstream: int, tmp_path: Path) -> dict[str, str]:
    """Load the ruleset in a new network namespace and open each case's connection there."""
    path = tmp_path / 'ruleset.nft'
    path.write_text(ruleset)
    result = subprocess.run(
        ['unshare', '--net', sys.executable, '-m', __name__, str(path), str(upstream)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    outcome: dict[str, str] = json.loads(result.stdout)
    return outcome


def test_only_the_gates_user_reaches_powermtas_loopback_listener(tmp_path: Path) -> None:
    variables = host_vars(_files(True, tmp_path), 'pmta1')
    address, port = variables['powermta__gate']['upstream'].rsplit(':', 1)
    assert variables['mta_base__firewall_loopback_guards'] == [
        {'name': 'powermta-gate-upstream', 'address': address, 'port': int(port)}
    ]
    ruleset = _ruleset(variables, tmp_path)
    assert (
        f'ip daddr 127.0.0.1 tcp dport {port} meta skuid != {{ "{GATE_USER}" }} reject with tcp reset '
        'comment "powermta-gate-upstream"'
    ) in ruleset
    assert _probe(ruleset, int(port), tmp_path) == {
        'gate from its stream source': 'connected',
        'gate from 127.0.0.1': 'connected',
        'other uid': 'refused',
        'other uid from a stream source': 'refused',
        'other uid through 0.0.0.0': 'refused',
        'other uid, IPv4-mapped IPv6': 'refused',
        'root': 'refused',
        'other uid, other port': 'connected',
        'root, other port': 'connected',
        'gate, other port': 'connected',
    }


def test_without_the_guard_any_local_user_reaches_the_listener(tmp_path: Path) -> None:
    """The failing case: the ruleset of a host without the gate lets every uid through, so the probe can tell."""
    gated = host_vars(_files(True, tmp_path), 'pmta1')
    port = int(gated['powermta__gate']['upstream'].rsplit(':', 1)[1])
    variables = host_vars(_files(False, tmp_path), 'pmta1')
    assert 'mta_base__firewall_loopback_guards' not in variables
    ruleset = _ruleset(variables, tmp_path)
    assert 'chain output' not in ruleset and 'skuid' not in ruleset
    assert _probe(ruleset, port, tmp_path) == {name: 'connected' for name, *_ in CASES}


def test_the_role_refuses_a_bad_guard(tmp_path: Path) -> None:
    variables = host_vars(_files(True, tmp_path), 'pmta1')
    [guard] = variables['mta_base__firewall_loopback_guards']
    bad = [
        {**guard, 'address': 'localhost'},
        {**guard, 'port': 0},
        {**guard, 'name': 'gate upstream'},
        {**guard, 'users': []},
        {**guard, 'users': ['mail infra']},
        # a trailing newline passed "$" and split the nft rule: its second half rejected all other TCP
        {**guard, 'port': '10025\n'},
        {**guard, 'address': '127.0.0.1\n'},
        {**guard, 'users': ['mailinfra\n']},
        {**guard, 'name': 'gate\n'},
    ]
    for item in bad:
        result = _play({**variables, 'mta_base__firewall_loopback_guards': [item]}, tmp_path)
        assert result.returncode != 0, item
        assert f'loopback guard {item["name"]}: the name must be unique' in result.stdout, item
    for rule in ({'name': 'x', 'port': '25\n'}, {'name': 'x', 'port': 25, 'proto': 'tcp\n'}):
        rules = [*variables['mta_base__firewall_rules'], rule]
        result = _play({**variables, 'mta_base__firewall_rules': rules}, tmp_path)
        assert result.returncode != 0 and 'firewall rule x: the name must be unique' in result.stdout, rule
    twice = _play({**variables, 'mta_base__firewall_loopback_guards': [guard, {**guard, 'port': 10026}]}, tmp_path)
    assert twice.returncode != 0 and 'loopback guard powermta-gate-upstream: the name' in twice.stdout
    two_users = {**guard, 'users': [GATE_USER, 'daemon']}
    ruleset = _ruleset({**variables, 'mta_base__firewall_loopback_guards': [two_users]}, tmp_path)
    assert 'meta skuid != { "nobody", "daemon" } reject' in ruleset


def test_no_guard_on_postfix_hosts(tmp_path: Path) -> None:
    """``powermta_gate`` on a Postfix deployment guards nothing: Postfix has no listener behind a gate."""
    spec_file = tmp_path / 'spec.yml'
    example = (ROOT / 'examples' / 'newsletter-publisher.yml').read_text()
    spec_file.write_text(example.replace('{soft_bounce_window: 14d}', '{soft_bounce_window: 14d, powermta_gate: true}'))
    assert 'powermta_gate: true' in spec_file.read_text()
    files = render(load_spec(spec_file, as_of=AS_OF))
    hosts = [path for path in files if path.startswith('inventory/host_vars/')]
    assert hosts and all('mta_base__firewall_rules' in yaml.safe_load(files[path]) for path in hosts)
    for path in hosts:
        assert 'mta_base__firewall_loopback_guards' not in yaml.safe_load(files[path]), path


# --- the probe, run as a script inside the namespace ----------------------------------------------------------------


def _connect(uid: int, source: str | None, destination: str, port: int) -> str:
    """Connect from a child with ``uid``'s credentials: 'connected', 'refused' or the error."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child)
        os.close(read)
        try:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            family = socket.AF_INET6 if ':' in destination else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(10)
                if source is not None:
                    sock.bind((source, 0))
                sock.connect((destination, port))
            answer = 'connected'
        except ConnectionRefusedError:
            answer = 'refused'
        except OSError as error:
            answer = repr(error)
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, 'rb') as pipe:
        answer = pipe.read().decode()
    os.waitpid(child, 0)
    return answer


def _main(ruleset: str, upstream: int) -> None:
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    subprocess.run(['nft', '--file', ruleset], check=True)
    listeners = []
    for port in (upstream, OTHER_PORT):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(('127.0.0.1', port))
        listener.listen(64)
        listeners.append(listener)
    ports = {'upstream': upstream, 'other': OTHER_PORT}
    outcome = {name: _connect(uid, source, dest, ports[which]) for name, uid, source, dest, which in CASES}
    print(json.dumps(outcome))


if __name__ == '__main__':
    _main(sys.argv[1], int(sys.argv[2]))
