"""``mailinfra-agent shaping run|status|release`` end to end (real SQLite store, real log file, recorded actuator)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.cli import main
from mailinfra_agent.commands import shaping as command
from tests.agent.shaping_fixtures import (
    IP,
    STREAM,
    RecordingActuator,
    append,
    contract_data,
    delivery,
    sent,
    sqlite_store,
)

NOW = time.time()


@pytest.fixture
def actuator(monkeypatch: pytest.MonkeyPatch) -> RecordingActuator:
    recorder = RecordingActuator()
    monkeypatch.setattr(command, 'make_actuator', lambda contract, config_root: recorder)
    return recorder


def _contract_file(tmp_path: Path, edit: Any = None) -> tuple[Path, Path]:
    log = tmp_path / 'postfix-transactional.log'
    log.touch()
    data = contract_data(sqlite_store(tmp_path), {'postfix-transactional': log})
    if edit is not None:
        edit(data)
    path = tmp_path / 'agent.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    return path, log


def test_run_status_release(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger='mailinfra_agent.shaping')
    path, log = _contract_file(tmp_path)
    append(log, delivery(time.time() - 10))
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 0
    out, _ = capsys.readouterr()
    assert 'read 1 lines, 1 changes' in out
    assert 'event=applied stream=transactional ip=198.51.100.10 isp=gmail action=suspend' in caplog.text
    assert [(a.isp, a.kind) for a in actuator.state[STREAM]] == [('gmail', 'suspend')]

    assert main(['shaping', '--contract', str(path), 'status']) == 0
    out, _ = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split()[:5] == ['STREAM', 'IP', 'ISP', 'ACTION', 'UNTIL']
    assert row.split()[:4] == [STREAM, IP, 'gmail', 'suspend']
    assert 'unusual rate of unsolicited mail' in row

    assert main(['shaping', '--contract', str(path), 'status', '--format', 'json']) == 0
    document = json.loads(capsys.readouterr().out)
    (item,) = document['actions']
    assert (item['stream'], item['ip'], item['isp'], item['action'], item['active']) == (
        STREAM,
        IP,
        'gmail',
        'suspend',
        True,
    )
    assert 580 <= item['remaining'] <= 590

    assert main(['shaping', '--contract', str(path), 'release', STREAM, IP, 'gmail']) == 0
    assert 'event=released stream=transactional ip=198.51.100.10 isp=gmail action=suspend' in caplog.text
    assert actuator.state[STREAM] == ()
    assert main(['shaping', '--contract', str(path), 'release', STREAM, IP, 'gmail']) == 1
    assert 'no active action on transactional 198.51.100.10 gmail' in capsys.readouterr().err
    assert main(['shaping', '--contract', str(path), 'status']) == 0
    assert 'nothing is slowed or suspended' in capsys.readouterr().out


def test_release_of_an_unknown_stream_is_a_usage_error(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _contract_file(tmp_path)
    assert main(['shaping', '--contract', str(path), 'release', 'nosuch', IP]) == 64
    assert "no stream 'nosuch' on this host (streams: transactional, cold_outreach)" in capsys.readouterr().err


def test_an_unreadable_contract_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / 'agent.json'
    path.write_text('{"version": 4}', encoding='utf-8')
    assert main(['shaping', '--contract', str(path), 'status']) == 2
    assert capsys.readouterr().err


def test_a_host_without_postfix_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        data['host']['mta'] = 'powermta'

    path, _ = _contract_file(tmp_path, edit)
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 2
    assert 'runs no Postfix' in capsys.readouterr().err


def test_an_unusable_store_exits_2(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str]
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data['store']['path'] = str(tmp_path / 'missing-dir' / 'agent.db')

    path, _ = _contract_file(tmp_path, edit)
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 2
    assert 'does not exist' in capsys.readouterr().err
    assert main(['shaping', '--contract', str(path), 'status']) == 2


def test_bad_poll_is_a_usage_error(tmp_path: Path, actuator: RecordingActuator) -> None:
    path, _ = _contract_file(tmp_path)
    assert main(['shaping', '--contract', str(path), 'run', '--once', '--poll', '0']) == 64


def test_an_instance_that_cannot_be_converged_exits_2(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str]
) -> None:
    path, log = _contract_file(tmp_path)
    append(log, delivery(time.time() - 10))
    actuator.fail = 100
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 2
    assert 'Postfix not converged: cold_outreach, transactional' in capsys.readouterr().err
    actuator.fail = 0
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 0  # the stored state converges later
    assert [(a.isp, a.kind) for a in actuator.state[STREAM]] == [('gmail', 'suspend')]


def test_the_actuator_is_postfixs_for_the_config_root(tmp_path: Path) -> None:
    from mailinfra_agent.contract import load_contract
    from mailinfra_agent.shaping.postfix_actuator import PostfixActuator

    path, _ = _contract_file(tmp_path)
    shaped = load_contract(path)
    made = command.make_actuator(shaped, str(tmp_path / 'etc'))
    assert isinstance(made, PostfixActuator)
    assert made.config_directory(shaped.streams[0]) == str(tmp_path / 'etc' / 'postfix-transactional')


def test_status_and_release_never_create_a_store(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = _contract_file(tmp_path)
    assert main(['shaping', '--contract', str(path), 'status']) == 0
    assert 'nothing is slowed or suspended' in capsys.readouterr().out
    assert main(['shaping', '--contract', str(path), 'release', STREAM, IP]) == 1
    assert 'no shaping state in the store' in capsys.readouterr().err
    assert not (tmp_path / 'agent.db').exists()


def _warming(data: dict[str, Any]) -> None:
    """Today is day 1 of a curve of 2 mails a day for the stream's first IP (no ISP shares: one default cap)."""
    data['warmup'] = {
        'curve': 'test',
        'steps': [{'day': 1, 'cap': 2}],
        'time_zone': 'UTC',
        'on_threshold': 'hold',
        'min_sent': 50,
        'streams': [],
    }
    data['ips'][0]['warmup_started'] = time.strftime('%Y-%m-%d', time.gmtime())


def test_a_cap_is_released_and_a_bad_warmup_section_is_a_clear_error(
    tmp_path: Path, actuator: RecordingActuator, capsys: pytest.CaptureFixture[str]
) -> None:
    path, log = _contract_file(tmp_path, _warming)
    append(log, sent(time.time() - 2), sent(time.time() - 1))
    assert main(['shaping', '--contract', str(path), 'run', '--once']) == 0
    assert ('gmail', 'cap') in [(a.isp, a.kind) for a in actuator.state[STREAM]]
    capsys.readouterr()

    data = json.loads(path.read_text(encoding='utf-8'))
    data['warmup']['time_zone'] = 'Europe/Berln'
    path.write_text(json.dumps(data), encoding='utf-8')
    assert main(['shaping', '--contract', str(path), 'release', STREAM, IP, 'gmail']) == 2
    assert 'shaping: warm-up: ' in capsys.readouterr().err

    _contract_file(tmp_path, _warming)
    assert main(['shaping', '--contract', str(path), 'release', STREAM, IP, 'gmail']) == 0
    assert ('gmail', 'cap') not in [(a.isp, a.kind) for a in actuator.state[STREAM]]
