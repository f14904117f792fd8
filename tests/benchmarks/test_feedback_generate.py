"""The feedback benchmark's log generator (benchmarks/feedback/generate.py) and its pflogsumm reader.

The generator must be deterministic, and the Postfix log parser must find in its lines exactly what the generator
says it logged (its truth): otherwise the benchmark's count comparison would compare against a wrong answer.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailinfra_agent.feedback import verp
from mailinfra_agent.feedback.events import Event, EventError
from mailinfra_agent.feedback.postfix_log import MessageSeen, PostfixLogParser

BENCH = Path(__file__).resolve().parents[2] / 'benchmarks' / 'feedback'


def _module(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f'feedback_bench_{name}', BENCH / f'{name}.py')
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generate = _module('generate')


@pytest.fixture(scope='module')
def sample() -> tuple[list[str], dict[str, Any]]:
    # Enough lines for deferred messages to reach their fifth deferral and expire.
    return generate.build(60_000, seed=11)


def test_the_same_seed_gives_the_same_log_and_another_seed_another() -> None:
    first = generate.build(3_000, seed=3)
    assert generate.build(3_000, seed=3) == first
    other = generate.build(3_000, seed=4)
    assert other[0] != first[0]
    assert len(first[0]) == first[1]['lines'] == 3_000


def test_the_file_is_written_byte_for_byte_the_same(tmp_path: Path) -> None:
    lines, truth = generate.build(2_000, seed=5)
    generate.write(tmp_path / 'a.log', lines, truth)
    generate.write(tmp_path / 'b.log', *generate.build(2_000, seed=5))
    data = (tmp_path / 'a.log').read_bytes()
    assert data == (tmp_path / 'b.log').read_bytes()
    assert data.count(b'\n') == 2_000
    assert (tmp_path / 'a.log.truth.json').read_text() == (tmp_path / 'b.log.truth.json').read_text()


def test_the_parser_finds_what_the_generator_logged(sample: tuple[list[str], dict[str, Any]]) -> None:
    lines, truth = sample
    parser = PostfixLogParser(reference_time=time.mktime((2026, 12, 6, 0, 0, 0, 0, 0, 0)))
    statuses: Counter[str] = Counter()
    null_sender: Counter[str] = Counter()
    deferred_ids: set[str] = set()
    errors: Counter[str] = Counter()
    senders = 0
    for number, line in enumerate(lines, 1):
        try:
            records = parser.parse_line(line, 'bench', number)
        except EventError as error:
            errors[error.reason] += 1
            continue
        for record in records:
            if isinstance(record, MessageSeen):
                senders += record.sender is not None
                continue
            assert isinstance(record, Event)
            statuses[record.status] += 1
            if record.sender == '':
                null_sender[record.status] += 1
            if record.status == 'deferred':
                assert record.queue_id is not None
                deferred_ids.add(record.queue_id)
            if record.stream is not None:
                # The transport names carry the sending IP; every stream message has a signed VERP sender.
                assert record.sending_ip is not None and record.sending_ip.startswith('198.51.100.')
                assert record.sender is not None
                if record.sender:
                    assert verp.decode(record.sender, [generate.BENCH_KEY]).stream == record.stream
    assert statuses['sent'] == truth['sent_total']
    assert null_sender['sent'] == (
        truth['sent_notifications'] + truth['sent_pipe_own_notifications'] + truth['sent_pipe_provider_dsns']
    )
    assert statuses['deferred'] == truth['deferred_lines']
    assert len(deferred_ids) == truth['deferred_messages']
    assert statuses['bounced'] == truth['bounced']
    assert statuses['expired'] == truth['expired'] > 0
    assert errors == Counter({'truncated': truth['garbage_truncated']})
    assert senders > 0


def test_the_proportions_are_the_documented_ones(sample: tuple[list[str], dict[str, Any]]) -> None:
    _, truth = sample
    first_attempts = truth['messages_injected']
    assert isinstance(first_attempts, int) and first_attempts > 5_000
    assert 0.03 < truth['bounced'] / first_attempts < 0.06
    assert 0.06 < truth['deferred_messages'] / first_attempts < 0.10
    programs = truth['lines_by_program']
    assert isinstance(programs, dict)
    assert {'postfix smtp', 'postfix qmgr', 'postfix bounce', 'postfix pipe', 'other programs'} <= set(programs)


PFLOGSUMM_OUTPUT = """Grand Totals
------------
messages

    874k  received
    963k  delivered
      0   forwarded
   9876   deferred  (15321  deferrals)
   5121   bounced
  13402   rejected (1%)
"""


def test_pflogsumm_totals_are_read_with_their_units() -> None:
    run = _module('run')
    totals = run.pflogsumm_totals(PFLOGSUMM_OUTPUT)
    assert totals['delivered'] == 963 * 1024 and totals['delivered (rounded)'] is True
    assert totals['deferred'] == 9876 and totals['deferrals'] == 15321
    assert totals['bounced'] == 5121 and totals['rejected'] == 13402 and totals['forwarded'] == 0
    assert 'held' not in totals
    assert run.pflogsumm_totals('no summary here') == {}


def test_the_batch_parser_reads_the_generated_log_as_the_line_parser(
    sample: tuple[list[str], dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines, _ = sample
    raw = [line.rstrip('\n').encode('utf-8', 'surrogateescape') for line in lines]
    reference = time.mktime((2026, 12, 6, 0, 0, 0, 0, 0, 0))
    one, batch = PostfixLogParser(reference_time=reference), PostfixLogParser(reference_time=reference)
    expected: list[Any] = []
    for number, text in enumerate(raw, 1):  # as the ingest read lines one by one
        try:
            line = text.decode('utf-8')
        except UnicodeDecodeError:
            line = text.decode('utf-8', 'replace')
            expected.append((number, 'encoding'))
        try:
            expected += one.parse_line(line, 'bench', number)
        except EventError as error:
            expected.append((number, error.reason, str(error)))
    got: list[Any] = []
    for start in range(0, len(raw), 20_000):
        parsed = batch.parse_lines(raw[start : start + 20_000], 'bench', start + 1)
        got += [(n, 'encoding') if e is None else (n, e.reason, str(e)) for n, e in parsed.problems]
        got += parsed.events + parsed.messages + [event for event, _ in parsed.expiries]
    # Events, records and problems come in separate lists: compared as multisets.
    assert sorted(map(repr, got)) == sorted(map(repr, expected))
    assert len(got) > 20_000
    # The benchmark's parser-alone child reads the file so too.
    log = tmp_path / 'maillog'
    log.write_bytes(b''.join(line + b'\n' for line in raw))
    _module('run').parser_only(log)
    counts = json.loads(capsys.readouterr().out)['counts']
    assert counts['sent'] == sum(1 for r in expected if isinstance(r, Event) and r.status == 'sent')
    assert counts['message-record'] == sum(1 for r in expected if isinstance(r, MessageSeen))


def test_the_floor_stores_every_delivery_attempt_the_generator_logged(
    sample: tuple[list[str], dict[str, Any]], tmp_path: Path
) -> None:
    """benchmarks/feedback/floor.py claims to do less than ingest; it must still store every delivery attempt (one
    keyed row each, with its sender), or its time would be a floor of less than the goal's work."""
    floor = _module('floor')
    lines, truth = sample
    log = tmp_path / 'maillog'
    generate.write(log, lines, truth)
    database = tmp_path / 'floor.db'
    floor._floor('rows+key+report', log, database)
    store = sqlite3.connect(database)
    counts = dict(store.execute('SELECT status, count(DISTINCT key) FROM events WHERE sender IS NOT NULL GROUP BY 1'))
    assert counts == {'sent': truth['sent_total'], 'deferred': truth['deferred_lines'], 'bounced': truth['bounced']}
