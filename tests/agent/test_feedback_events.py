"""The Event type (and the Postfix parser's MessageSeen): built with plain slot stores, frozen once built."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from mailinfra_agent.feedback.events import Event
from mailinfra_agent.feedback.postfix_log import MessageSeen

FULL = Event(
    'k1', 'delivery', 'bounced', 1.5, 'a@example.com', 'maillog', 'marketing', '3F2A1B4C5D', '192.0.2.10',
    'b@example.net', 'gmail', '550', '5.1.1', 'no such user', 'mx.example.com[192.0.2.1]:25', 0.25, 'm@x',
    'seg', 'camp', 'invalid-recipient', 'abuse',
)  # fmt: skip


@pytest.mark.parametrize('cls', [Event, MessageSeen])
def test_the_constructor_takes_every_field_in_order_with_its_default(cls: type) -> None:
    parameters = list(inspect.signature(cls).parameters.values())
    fields = dataclasses.fields(cls)
    assert [p.name for p in parameters] == [f.name for f in fields]
    assert [p.default for p in parameters] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]


def test_an_event_holds_what_it_was_given_and_compares_as_a_dataclass() -> None:
    assert type(FULL) is Event
    assert dataclasses.astuple(FULL)[:6] == ('k1', 'delivery', 'bounced', 1.5, 'a@example.com', 'maillog')
    assert (FULL.category, FULL.feedback_type) == ('invalid-recipient', 'abuse')
    by_keyword = Event(**dataclasses.asdict(FULL))
    assert by_keyword == FULL and hash(by_keyword) == hash(FULL)
    assert dataclasses.replace(FULL, category='other') != FULL
    assert dataclasses.replace(FULL, category='other').category == 'other'
    short = Event('k2', 'delivery', 'sent', 2.0, 'c@example.com', 'maillog')
    assert short.stream is None and short.feedback_type is None


def test_an_event_cannot_be_changed() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        FULL.category = 'other'  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del FULL.key  # type: ignore[misc]
    assert FULL.category == 'invalid-recipient'


def test_a_message_record_cannot_be_changed() -> None:
    seen = MessageSeen('k', 1.0, 'maillog', None, '3F2A1B4C5D', '', None)
    assert type(seen) is MessageSeen and seen == MessageSeen('k', 1.0, 'maillog', None, '3F2A1B4C5D', '', None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        seen.sender = 'x'  # type: ignore[misc]


def test_missing_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError):
        Event('k', 'delivery', 'sent', 1.0, 'a@example.com')  # type: ignore[call-arg]
