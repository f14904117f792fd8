"""The exporter's own logic (mailinfra_agent/exporter/metrics.py) with small collectors written here.

The real collectors and the real process are in test_exporter_process.py.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Mapping

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailinfra_agent.exporter import QueueMetrics, exposition
from mailinfra_agent.queue.base import QUEUE_NAMES, CollectorError, StreamQueue

PROMTOOL = '/usr/bin/promtool'
ERRORS = 'mailinfra_collector_errors_total'
UP = 'mailinfra_collector_up'
MESSAGES = 'mailinfra_queue_messages'
DURATION = 'mailinfra_collector_scrape_duration_seconds'


def stream_queue(stream: str, instance: str, **fields: object) -> StreamQueue:
    values: dict[str, object] = {
        'messages': dict.fromkeys(QUEUE_NAMES, 0),
        'oldest_age_seconds': dict.fromkeys(QUEUE_NAMES, 0.0),
        'deferred_by_isp': {},
        'recipient_domains': {},
        'deferral_reasons': {},
    }
    values.update(fields)
    return StreamQueue(stream, instance, **values)  # type: ignore[arg-type]


class Fixed:
    """A collector that returns what it is given, or raises it."""

    def __init__(self, name: str, result: list[StreamQueue] | BaseException, delay: float = 0.0) -> None:
        self.name = name
        self.result = result
        self.delay = delay
        self.calls = 0

    def collect(self) -> list[StreamQueue]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def samples(metrics: QueueMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = exposition(metrics).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def promtool_check(text: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PROMTOOL, 'check', 'metrics'], input=text, capture_output=True, timeout=60)


POSTFIX_OK = [
    stream_queue(
        'transactional',
        'postfix-transactional',
        messages={'maildrop': 0, 'incoming': 1, 'active': 2, 'deferred': 30, 'hold': 4},
        oldest_age_seconds={'maildrop': 0.0, 'incoming': 1.5, 'active': 3.0, 'deferred': 7200.0, 'hold': 60.0},
        deferred_by_isp={'gmail': 20, 'other': 10},
        recipient_domains={'gmail.com': 20, 'example.org': 10, 'other': 3},
        deferral_reasons={'4.7.28': 18, 'unknown': 12},
        corrupt=2,
    )
]


def test_values_of_a_working_collector() -> None:
    metrics = QueueMetrics([Fixed('postfix', POSTFIX_OK)], '1.2.3', isps=['gmail', 'yahoo', '*'])
    found = samples(metrics)
    labels = {'stream': 'transactional', 'instance': 'postfix-transactional'}
    assert value(found, MESSAGES, queue='deferred', **labels) == 30
    assert value(found, MESSAGES, queue='maildrop', **labels) == 0
    assert value(found, 'mailinfra_queue_oldest_message_age_seconds', queue='deferred', **labels) == 7200
    assert value(found, 'mailinfra_queue_deferred_messages_by_isp', isp='gmail', **labels) == 20
    assert value(found, 'mailinfra_queue_recipient_domain_messages', domain='other', **labels) == 3
    assert value(found, 'mailinfra_queue_deferral_reasons', status='4.7.28', **labels) == 18
    assert value(found, 'mailinfra_queue_corrupt_files', **labels) == 2
    assert value(found, UP, collector='postfix', instance='postfix-transactional') == 1
    assert value(found, ERRORS, collector='postfix', instance='postfix', kind='collect') == 0
    assert value(found, 'mailinfra_exporter_build_info', version='1.2.3') == 1
    assert value(found, DURATION, collector='postfix', instance='postfix-transactional') is not None


def test_promtool_accepts_the_output() -> None:
    metrics = QueueMetrics(
        [Fixed('postfix', POSTFIX_OK), Fixed('powermta', CollectorError('down', 'connect'))], '0.1.0', isps=['gmail']
    )
    text = exposition(metrics)
    result = promtool_check(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_can_fail() -> None:
    """The check above is a real one: promtool refuses a counter without _total and a broken line."""
    result = promtool_check(b'# TYPE mailinfra_x counter\nmailinfra_x 1\nbroken{ 2\n')
    assert result.returncode != 0


def test_a_failing_collector_does_not_hide_the_others(caplog: pytest.LogCaptureFixture) -> None:
    failing = Fixed('powermta', CollectorError('http://127.0.0.1:8080/status: connection refused', 'connect'))
    metrics = QueueMetrics([Fixed('postfix', POSTFIX_OK), failing], '0.1.0', isps=['gmail'])
    with caplog.at_level(logging.INFO, logger='mailinfra_agent.exporter'):
        found = samples(metrics)
        found_again = samples(metrics)
    assert value(found, UP, collector='powermta', instance='powermta') == 0
    assert value(found, ERRORS, collector='powermta', instance='powermta', kind='connect') == 1
    assert value(found_again, ERRORS, collector='powermta', instance='powermta', kind='connect') == 2
    assert value(found, UP, collector='postfix', instance='postfix-transactional') == 1
    labels = {'stream': 'transactional', 'instance': 'postfix-transactional'}
    assert value(found_again, MESSAGES, queue='deferred', **labels) == 30
    # One line for the problem, not one per scrape.
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ['collector powermta: connect: http://127.0.0.1:8080/status: connection refused']
    failing.result = []
    samples(metrics)
    assert [r.getMessage() for r in caplog.records][1:] == ['collector powermta: working again']


def test_a_collector_bug_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    metrics = QueueMetrics(
        [Fixed('postfix', ValueError('bad things')), Fixed('powermta', 'not a list')],  # type: ignore[arg-type]
        '0.1.0',
    )
    found = samples(metrics)
    assert value(found, UP, collector='postfix', instance='postfix') == 0
    assert value(found, ERRORS, collector='postfix', instance='postfix', kind='internal') == 1
    assert value(found, UP, collector='powermta', instance='powermta') == 0
    assert 'collector postfix: internal: ValueError: bad things' in caplog.text
    assert 'returned str, not a list of StreamQueue' in caplog.text


def test_an_instance_that_cannot_be_read_is_down_and_has_no_queue_series() -> None:
    unreadable = stream_queue('marketing', 'postfix-marketing', up=False, errors={'unreadable': 1})
    metrics = QueueMetrics([Fixed('postfix', [*POSTFIX_OK, unreadable])], '0.1.0')
    found = samples(metrics)
    assert value(found, UP, collector='postfix', instance='postfix-marketing') == 0
    assert value(found, UP, collector='postfix', instance='postfix-transactional') == 1
    assert value(found, MESSAGES, stream='marketing', instance='postfix-marketing', queue='active') is None
    key = {'collector': 'postfix', 'instance': 'postfix-marketing', 'kind': 'unreadable'}
    assert value(found, ERRORS, **key) == 1
    assert value(samples(metrics), ERRORS, **key) == 2


def test_labels_stay_bounded_whatever_the_collector_returns() -> None:
    wild = stream_queue(
        'bulk',
        'pmta',
        deferred_by_isp={'gmail': 1, 'made-up-isp': 2, '*': 3, 'other': 4},
        recipient_domains={f'd{i:02}.example': 100 - i for i in range(30)},
        deferral_reasons={'4.7.28': 1, 'Mailbox full, try later': 2, '4.2.2 extra': 3, '5.1.1': 4},
        oldest_age_seconds={'deferred': float('nan'), 'active': -5.0, 'bogus': 9.0},
    )
    metrics = QueueMetrics([Fixed('powermta', [wild])], '0.1.0', isps=['gmail', '*'], top_domains=3)
    found = samples(metrics)
    labels = {'stream': 'bulk', 'instance': 'pmta'}

    def of(name: str, label: str) -> dict[str, float]:
        return {
            dict(key[1])[label]: v
            for key, v in found.items()
            if key[0] == name and all((k, w) in key[1] for k, w in labels.items())
        }

    assert of('mailinfra_queue_deferred_messages_by_isp', 'isp') == {'gmail': 1, 'other': 9}
    assert of('mailinfra_queue_recipient_domain_messages', 'domain') == {
        'd00.example': 100,
        'd01.example': 99,
        'd02.example': 98,
        'other': sum(100 - i for i in range(3, 30)),
    }
    assert of('mailinfra_queue_deferral_reasons', 'status') == {'4.7.28': 1, '5.1.1': 4, 'unknown': 5}
    # Not a number, negative, or not a queue name: left out rather than exported.
    assert of('mailinfra_queue_oldest_message_age_seconds', 'queue') == {}


def test_the_same_stream_twice_adds_up() -> None:
    one = stream_queue('s', 'pmta', messages={**dict.fromkeys(QUEUE_NAMES, 0), 'active': 2})
    two = stream_queue('s', 'pmta', messages={**dict.fromkeys(QUEUE_NAMES, 0), 'active': 3})
    found = samples(QueueMetrics([Fixed('powermta', [one, two])], '0.1.0'))
    assert value(found, MESSAGES, stream='s', instance='pmta', queue='active') == 5


def test_concurrent_scrapes_share_one_collection() -> None:
    slow = Fixed('postfix', POSTFIX_OK, delay=1.0)
    metrics = QueueMetrics([slow], '0.1.0')
    outputs: list[bytes] = []
    threads = [threading.Thread(target=lambda: outputs.append(exposition(metrics))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(outputs) == 6
    assert slow.calls == 1 and metrics.collections == 1
    # A scrape that arrives after that collection ended collects again.
    exposition(metrics)
    assert slow.calls == 2


def test_no_collector_serves_build_info_only() -> None:
    found = samples(QueueMetrics([], '0.1.0'))
    assert value(found, 'mailinfra_exporter_build_info', version='0.1.0') == 1
    assert not [key for key in found if key[0] == UP]


def test_error_kinds_are_bounded() -> None:
    found = samples(QueueMetrics([Fixed('postfix', CollectorError('x', 'Not A Label!\n'))], '0.1.0'))
    assert value(found, ERRORS, collector='postfix', instance='postfix', kind='internal') == 1
