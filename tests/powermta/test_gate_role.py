"""From the rendered inventory to a serving gate, without Molecule: the feedback role's unit of the suppression gate
(``roles/feedback/tasks/gate.yml`` and ``vars/main.yml``) is templated by Ansible with the gated example's
``powermta__gate`` of pmta1, and the command it yields is run with that host's rendered contract (store and key moved
to the test's directory, the ports to free ones, PowerMTA replaced by the STAND-IN SMTP sink of
tests/agent/test_suppression_gate.py, NOT PowerMTA). Unit installation and systemd are not exercised here."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from mailinfra_agent.contract import dump_contract_json, load_contract
from mailinfra_agent.postfix.trial import free_port
from mailinfra_agent.store import connect_sqlite, migrate
from mailinfra_agent.suppression import SuppressionList
from mailinfra_iac import load_spec
from tests.agent.test_suppression_gate import StandIn, client, gate_process

from ..conftest import AS_OF, ROOT
from .helpers import EXAMPLE, host_vars, render, run_playbook

ROLE = ROOT / 'roles' / 'feedback'
KEY = 'role-test-key-of-at-least-32-characters'


def _unit(gate: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The role's ``agent__unit`` of the gate, as Ansible templates it for a host with ``powermta__gate``."""
    [task] = [t for t in yaml.safe_load((ROLE / 'tasks' / 'gate.yml').read_text()) if 'include_role' in str(t)]
    playbook = [
        {
            'hosts': 'localhost',
            'gather_facts': False,
            'vars_files': [str(ROLE / 'vars' / 'main.yml')],
            'vars': {'powermta__gate': gate, 'unit': task['vars']['agent__unit']},
            'tasks': [
                {'ansible.builtin.assert': {'that': [task['when']]}},
                {'ansible.builtin.copy': {'content': '{{ unit | to_json }}', 'dest': str(tmp_path / 'unit.json')}},
            ],
        }
    ]
    (tmp_path / 'play.yml').write_text(yaml.safe_dump(playbook))
    result = run_playbook(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    unit: dict[str, Any] = json.loads((tmp_path / 'unit.json').read_text())
    return unit


def test_the_roles_gate_unit_serves_the_rendered_streams(tmp_path: Path) -> None:
    spec_file = tmp_path / 'spec.yml'
    spec_file.write_text(
        EXAMPLE.read_text().replace('\nmonitoring:', '\nfeedback: {suppression: {powermta_gate: true}}\nmonitoring:', 1)
    )
    files = render(load_spec(spec_file, as_of=AS_OF))
    gate = host_vars(files, 'pmta1')['powermta__gate']
    standin = StandIn()
    threading.Thread(target=standin.serve_forever, daemon=True).start()
    ports = {item['name']: free_port() for item in gate['streams']}
    local = {
        'upstream': f'127.0.0.1:{standin.server_address[1]}',
        'streams': [{**item, 'port': ports[item['name']], 'networks': ['127.0.0.0/8']} for item in gate['streams']],
    }
    assert [item['networks'] for item in gate['streams']] == [['10.8.0.0/16'], ['10.8.0.0/16']]
    unit = _unit(local, tmp_path)
    assert unit['name'] == 'suppression-gate'
    assert unit['capabilities'] == []  # ports above 1024: no capability
    assert unit['after'] == ['network-online.target', 'pmta.service']
    assert _unit({**gate, 'streams': [{**gate['streams'][0], 'port': 25}]}, tmp_path)['capabilities'] == [
        'CAP_NET_BIND_SERVICE'
    ]

    contract_path = tmp_path / 'agent.json'
    key_file = tmp_path / 'hash.key'
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    contract = load_contract_text(files['mta/pmta1/etc/mailinfra/agent.json'], tmp_path)
    contract = replace(
        contract,
        store=replace(contract.store, backend='sqlite', path=str(tmp_path / 'agent.db'), dsn=None, password_file=None),
        retention=replace(contract.retention, hash_key_file=str(key_file)),
    )
    contract_path.write_text(dump_contract_json(contract))
    with connect_sqlite(tmp_path / 'agent.db') as database:
        migrate(database)
        SuppressionList(database, KEY.encode()).add('marketing', 'gone@example.net', 'complaint', 'k')

    # the unit's command with the test's contract (the unit reads the default /etc/mailinfra/agent.json)
    assert unit['command'][:2] == ['suppression', 'gate']
    assert [arg for arg in unit['command'] if arg.startswith('--allow')] == [
        f'--allow={item["name"]}=127.0.0.0/8' for item in gate['streams']
    ]
    command = [sys.executable, '-m', 'mailinfra_agent', 'suppression', '--contract', str(contract_path)]
    with gate_process(command + unit['command'][1:], standin) as process:
        assert process.stdout is not None
        started = process.stdout.readline()
        assert started.startswith('suppression gate to 127.0.0.1:'), process.communicate(timeout=20)
        for name, expected in (('marketing', 550), ('transactional', 250)):
            with client(ports[name]) as smtp:
                smtp.ehlo()
                smtp.mail('news@example.com')
                assert smtp.rcpt('gone@example.net')[0] == expected, name
        sources = {item['name']: item['source'] for item in gate['streams']}
        assert [session.peer for session in standin.sessions] == [sources['marketing'], sources['transactional']]


def load_contract_text(content: bytes, tmp_path: Path) -> Any:
    path = tmp_path / 'rendered-agent.json'
    path.write_bytes(content)
    return load_contract(path)
