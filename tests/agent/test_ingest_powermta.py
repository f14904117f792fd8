"""Ingest of PowerMTA accounting files (powermta_acct.py, the role's fields): header, restarts and rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mailinfra_agent.cli import main
from mailinfra_agent.store import connect_sqlite
from mailinfra_agent.store.events import EVENT_COLUMNS, events, problem_counts
from tests.agent.test_contract import contracts
from tests.agent.test_feedback_powermta_acct import HEADER, ROLE_FIELDS, row

VMTAS = ('marketing_203_0_113_20', 'transactional_203_0_113_10')


def _rows(count: int, start: int = 0) -> list[str]:
    out = []
    for number in range(start, start + count):
        kind = ('d', 't', 'b')[number % 3]
        values = {
            'rcpt': f'user{number}@gmail.com',
            'vmta': VMTAS[number % 2],
            'timeLogged': f'2026-12-06 06:{number // 60 % 60:02d}:{number % 60:02d}+0000',
        }
        if kind == 'b':
            values |= {'dsnAction': 'failed', 'dsnStatus': '5.1.1 (bad destination mailbox address)'}
            values['dsnDiag'] = 'smtp;550 5.1.1 The email account that you tried to reach does not exist'
        elif kind == 't':
            values |= {'dsnAction': 'delayed', 'dsnStatus': '4.7.28 (delivery not authorized)'}
            values['dsnDiag'] = 'smtp;421 4.7.28 Gmail has detected an unusual rate of unsolicited mail'
        out.append(row(kind, **values))
    return out


def _contract(tmp_path: Path, acct: Path, name: str) -> Path:
    data: dict[str, Any] = json.loads(contracts()['high-volume-powermta/pmta1'])
    data['store'] = {'backend': 'sqlite', 'path': str(tmp_path / f'{name}.db')}
    data['logs'] = [{'path': str(acct), 'format': 'powermta-acct', 'instance': 'powermta'}]
    data['feedback_maildirs'] = []
    path = tmp_path / f'{name}.json'
    path.write_text(json.dumps(data), encoding='utf-8')
    return path


def _ingest(contract: Path) -> int:
    return main(['ingest', '--contract', str(contract), 'run', '--once', '--batch-lines', '7'])


def _table(db_path: Path) -> list[tuple[Any, ...]]:
    """Every column but the source (the files' paths differ)."""
    columns = [column for column in EVENT_COLUMNS if column != 'source']
    with connect_sqlite(db_path) as db:
        return sorted(db.execute(f'SELECT {", ".join(columns)} FROM feedback_events'), key=repr)


def test_a_restart_in_the_middle_of_a_file_still_knows_its_header(tmp_path: Path) -> None:
    lines = [HEADER, *_rows(60)]
    whole = tmp_path / 'whole' / 'acct.csv'
    whole.parent.mkdir()
    whole.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    assert _ingest(_contract(tmp_path, whole, 'whole')) == 0

    growing = tmp_path / 'parts' / 'acct.csv'
    growing.parent.mkdir()
    growing.write_text('\n'.join(lines[:25]) + '\n', encoding='utf-8')
    contract = _contract(tmp_path, growing, 'parts')
    assert _ingest(contract) == 0
    with growing.open('a', encoding='utf-8') as handle:  # a new process reads on from line 26
        handle.write('\n'.join(lines[25:]) + '\n')
    assert _ingest(contract) == 0

    assert _table(tmp_path / 'parts.db') == _table(tmp_path / 'whole.db')
    with connect_sqlite(tmp_path / 'parts.db') as db:
        stored = events(db)
        assert problem_counts(db) == {}
    assert len(stored) == 60
    assert {event.stream for event in stored} == {'marketing', 'transactional'}
    assert {event.category for event in stored if event.status == 'bounced'} == {'bad-mailbox'}
    assert {event.status for event in stored} == {'sent', 'deferred', 'bounced'}


def test_a_rotated_file_is_finished_and_the_new_one_read_with_its_own_header(tmp_path: Path) -> None:
    acct = tmp_path / 'acct.csv'
    acct.write_text('\n'.join([HEADER, *_rows(10)]) + '\n', encoding='utf-8')
    contract = _contract(tmp_path, acct, 'agent')
    assert _ingest(contract) == 0
    with acct.open('a', encoding='utf-8') as handle:
        handle.write('\n'.join(_rows(5, start=10)) + '\n')
    os.rename(acct, tmp_path / 'acct.csv.1')
    # The new file lists the fields in another order: only its own header reads it right.
    fields = [ROLE_FIELDS[0], *reversed(ROLE_FIELDS[1:])]
    rows = [','.join([line.split(',', 1)[0], *reversed(_split(line)[1:])]) for line in _rows(5, start=15)]
    acct.write_text('\n'.join([','.join(fields), *rows]) + '\n', encoding='utf-8')
    assert _ingest(contract) == 0
    with connect_sqlite(tmp_path / 'agent.db') as db:
        stored = events(db)
        assert problem_counts(db) == {}
    assert sorted(int(event.recipient.split('@')[0].removeprefix('user')) for event in stored) == list(range(20))
    assert all(event.sending_ip == '198.51.100.20' for event in stored)


def _split(line: str) -> list[str]:
    """The fields of a row the tests made (quoted fields hold commas)."""
    import csv

    return next(csv.reader([line]))
