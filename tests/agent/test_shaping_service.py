"""The shaping service on real log files and a real store: follow, act, converge, restart, two processes."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from mailinfra_agent.contract import Contract
from mailinfra_agent.feedback import postfix_log
from mailinfra_agent.shaping import service as service_module
from mailinfra_agent.shaping import state
from mailinfra_agent.shaping.engine import Engine
from mailinfra_agent.shaping.service import Service, stream_logs
from mailinfra_agent.store import connect, connect_sqlite
from tests.agent.conftest import Postgres
from tests.agent.shaping_fixtures import (
    GMAIL_428,
    IP,
    STREAM,
    RecordingActuator,
    append,
    contract,
    contract_data,
    delivery,
    sent,
    sqlite_store,
)

NOW = time.time()


def _setup(tmp_path: Path, store: dict[str, Any] | None = None) -> tuple[Contract, Path]:
    log = tmp_path / 'postfix-transactional.log'
    log.touch()
    logs = {'postfix-transactional': log, 'postfix-cold_outreach': tmp_path / 'postfix-cold_outreach.log'}
    logs['postfix-cold_outreach'].touch()
    return contract(contract_data(store or sqlite_store(tmp_path), logs)), log


def _service(shaped: Contract, actuator: RecordingActuator, clock: list[float] | None = None) -> Service:
    moment = clock if clock is not None else [NOW]
    return Service(
        shaped,
        lambda: connect(shaped.store),
        actuator,
        engine=Engine(shaped, use_warmup=False),
        clock=lambda: moment[0],
    )


def test_the_stream_logs_come_from_the_contract(tmp_path: Path) -> None:
    shaped, log = _setup(tmp_path)
    assert stream_logs(shaped) == [(str(tmp_path / 'postfix-cold_outreach.log'), 'cold_outreach'), (str(log), STREAM)]


def test_a_deferral_is_suspended_converged_and_expires(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shaped, log = _setup(tmp_path)
    actuator = RecordingActuator()
    clock = [NOW]
    service = _service(shaped, actuator, clock)
    append(log, sent(NOW - 20, isp='yahoo'), delivery(NOW - 10))
    with caplog.at_level(logging.INFO, logger='mailinfra_agent.shaping'):
        report = service.run(follow=False)
    assert report.lines == 2
    assert [change.event for change in report.changes] == ['applied']
    assert any(r.getMessage().startswith('event=applied stream=transactional') for r in caplog.records)
    desired = actuator.state[STREAM]
    assert [(a.ip, a.isp, a.kind) for a in desired] == [(IP, 'gmail', 'suspend')]
    assert actuator.state['cold_outreach'] == ()
    calls = len(actuator.calls)
    # Nothing new: no convergence again (until the resync interval).
    service.run(follow=False)
    assert len(actuator.calls) == calls
    # Unless someone else changed the instance (the role installed its files again): converged in that round.
    actuator.touched.add(STREAM)
    service.run(follow=False)
    assert actuator.calls[calls:] == [(STREAM, desired)]
    # The duration ends: back to normal.
    clock[0] = NOW - 10 + 600
    report = service.run(follow=False)
    assert [change.event for change in report.changes] == ['expired']
    assert actuator.state[STREAM] == ()
    service.close()


def test_a_restart_keeps_the_state_and_applies_nothing_twice(tmp_path: Path) -> None:
    shaped, log = _setup(tmp_path)
    append(log, delivery(NOW - 10))
    first = _service(shaped, RecordingActuator())
    first.run(follow=False)
    first.close()
    actuator = RecordingActuator()
    second = _service(shaped, actuator)
    report = second.run(follow=False)
    assert report.lines == 0 and report.changes == []
    # The new process converges the stored state once at its start.
    assert [(a.isp, a.kind) for a in actuator.state[STREAM]] == [('gmail', 'suspend')]
    second.close()
    with connect_sqlite(tmp_path / 'agent.db') as db:
        assert state.counters(db, 'mx1') == [(STREAM, IP, 'gmail', 'suspend', 'applied', 1)]


def test_two_services_on_one_store_apply_each_line_once(tmp_path: Path) -> None:
    shaped, log = _setup(tmp_path)
    one, two = _service(shaped, RecordingActuator()), _service(shaped, RecordingActuator())
    append(log, delivery(NOW - 10))
    one.step()
    two.step()  # its checkpoint was moved by the first: it reads on from there
    append(log, delivery(NOW - 5, isp='yahoo', reply='421 4.7.0 [TSS04] deferred', dsn='4.7.0'))
    two.step()
    one.step()
    one.close()
    two.close()
    with connect_sqlite(tmp_path / 'agent.db') as db:
        counted = state.counters(db, 'mx1')
    assert counted == [
        (STREAM, IP, 'gmail', 'suspend', 'applied', 1),
        (STREAM, IP, 'yahoo', 'suspend', 'applied', 1),
    ]


def test_a_failed_convergence_is_retried(tmp_path: Path) -> None:
    shaped, log = _setup(tmp_path)
    actuator = RecordingActuator(fail=2)  # both streams' first convergence fails
    service = _service(shaped, actuator)
    append(log, delivery(NOW - 10))
    report = service.step()
    assert report.problems == 2
    assert actuator.state == {}
    service.step()
    assert [(a.isp, a.kind) for a in actuator.state[STREAM]] == [('gmail', 'suspend')]
    service.close()


def test_a_rotated_log_is_followed(tmp_path: Path) -> None:
    shaped, log = _setup(tmp_path)
    service = _service(shaped, RecordingActuator())
    append(log, sent(NOW - 30))
    service.step()
    log.rename(tmp_path / 'postfix-transactional.log.1')
    append(log, delivery(NOW - 10))
    changes = []
    for _ in range(3):
        changes.extend(service.step().changes)
    assert [c.event for c in changes] == ['applied']
    service.close()


def test_postgresql_store(postgres: Postgres, tmp_path: Path) -> None:
    with connect(postgres.store('postgres')) as admin:
        admin.execute('DROP DATABASE IF EXISTS shaping_service')
        admin.execute('CREATE DATABASE shaping_service')
    store = postgres.store('shaping_service')
    data = {'backend': store.backend, 'dsn': store.dsn, 'password_file': store.password_file, 'path': None}
    shaped, log = _setup(tmp_path, data)
    append(log, delivery(NOW - 10), delivery(NOW - 9))
    actuator = RecordingActuator()
    service = _service(shaped, actuator)
    report = service.run(follow=False)
    assert [c.event for c in report.changes] == ['applied', 'extended']
    service.close()
    again = _service(shaped, RecordingActuator())
    assert again.run(follow=False).changes == []
    again.close()
    with connect(store) as db:
        assert [(a.action.isp, a.action.kind) for a in state.active(db, 'mx1')] == [('gmail', 'suspend')]
        assert json.dumps(state.counters(db, 'mx1')) == json.dumps(
            [[STREAM, IP, 'gmail', 'suspend', 'applied', 1], [STREAM, IP, 'gmail', 'suspend', 'extended', 1]]
        )


def test_warmup_cap_from_the_contract_stops_the_transports_until_midnight(tmp_path: Path) -> None:
    log = tmp_path / 'postfix-transactional.log'
    log.touch()
    data = contract_data(sqlite_store(tmp_path), {'postfix-transactional': log})
    data['warmup'] = {
        'curve': 'test',
        'steps': [{'day': 1, 'cap': 20}, {'day': 30, 'cap': 10000}],
        'time_zone': 'Europe/Berlin',
        'on_threshold': 'hold',
        'min_sent': 50,
        'streams': [{'stream': STREAM, 'shares': {'gmail': 500_000}}],
    }
    data['ips'][0]['warmup_started'] = time.strftime('%Y-%m-%d', time.gmtime(NOW - 86400))
    shaped = contract(data)
    actuator = RecordingActuator()
    service = Service(shaped, lambda: connect(shaped.store), actuator, clock=lambda: NOW)
    # Day 2 of the curve: between 20 and 10000, geometric; Gmail gets half of it.
    append(log, sent(NOW - 2))
    service.step()
    caps = {cap.isp: cap for cap in service.engine.caps}
    gmail = caps['gmail']
    assert gmail.cap >= 2 and not actuator.state.get(STREAM)
    append(log, *(sent(NOW - 1) for _ in range(gmail.cap - 1)))
    report = service.step()
    assert [(c.event, c.action.isp, c.action.kind) for c in report.changes] == [('applied', 'gmail', 'cap')]
    (held,) = actuator.state[STREAM]
    assert held.until == gmail.until and not held.failover
    service.close()


def test_a_service_running_for_days_dates_new_lines_right(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shaped, log = _setup(tmp_path)
    clock = [NOW - 3 * 86400]
    with monkeypatch.context() as patch:  # the service (and its parser) started three days ago
        patch.setattr(postfix_log.time_module, 'time', lambda: clock[0])
        service = _service(shaped, RecordingActuator(), clock)
    clock[0] = NOW
    append(log, delivery(NOW - 10))
    # Dated from a three-day-old reference, the line would fall a year back and its action be long over.
    assert [c.event for c in service.step().changes] == ['applied']
    service.close()


def test_a_batch_read_again_after_a_store_failure_counts_its_foreign_lines_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shaped, log = _setup(tmp_path)
    service = _service(shaped, RecordingActuator())
    append(log, delivery(NOW - 10, ip='10.0.0.1'), delivery(NOW - 9, ip='10.0.0.2'))  # not the stream's IPs
    real = service_module.save_checkpoint
    failures = [RuntimeError('the store went away')]

    def save_once_failing(*args: Any) -> None:
        if failures and args[2].endswith(log.name):  # (db, host, source, ...): the log with the lines
            raise failures.pop()
        real(*args)

    monkeypatch.setattr(service_module, 'save_checkpoint', save_once_failing)
    with pytest.raises(RuntimeError, match='the store went away'):
        service.step()  # rolled back: the batch is read again
    report = service.step()
    assert (report.lines, report.problems) == (2, 2)
    assert service.engine.ignored.total() == 2
    service.close()


def test_oversized_lines_are_all_counted_and_logged_once_per_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shaped, log = _setup(tmp_path)
    service = _service(shaped, RecordingActuator())
    huge = delivery(NOW - 10, reply='421 4.7.0 ' + 'x' * 70_000)
    append(log, huge, huge, delivery(NOW - 9, isp='yahoo', reply='250 ok', status='sent'))
    with caplog.at_level(logging.WARNING):
        first = service.step()
        append(log, huge)
        second = service.step()
    assert (first.problems, second.problems) == (2, 1)
    warned = [record.getMessage() for record in caplog.records if '64 KiB' in record.getMessage()]
    assert warned == [f'{log}:1: line longer than 64 KiB skipped (logged once per file; all are counted)']
    service.close()


def test_a_deferral_postfix_cut_at_2000_bytes_with_a_byte_not_utf8_still_acts(tmp_path: Path) -> None:
    """Postfix cuts a log message at 2,000 bytes (a long reply loses its ')'); the cut is measured in the bytes it
    wrote. The service decoded a line with U+FFFD for a bad byte and did not pass the bytes, so such a deferral was
    'truncated' and no back-off followed."""
    shaped, log = _setup(tmp_path)
    actuator = RecordingActuator()
    service = _service(shaped, actuator)
    line = delivery(NOW - 10, reply=f'{GMAIL_428} caf\udce9 ' + 'x' * 3000).encode('utf-8', 'surrogateescape')
    head, message = line.split(b']: ', 1)
    with open(log, 'ab') as handle:
        handle.write(head + b']: ' + message[:2000] + b'\n')  # the message as Postfix cut it: 2,000 bytes
    report = service.run(follow=False)
    assert (report.problems, [change.event for change in report.changes]) == (0, ['applied'])
    service.close()
