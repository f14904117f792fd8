"""Suffix lookups of names in zones, shared by the host and the controller."""

from __future__ import annotations

from mailinfra_agent.names import enclosing

ZONES = {'example.com', 'mail.example.com', 'example.net'}


def test_the_longest_enclosing_zone_wins() -> None:
    assert enclosing('mx1.mail.example.com', ZONES) == 'mail.example.com'
    assert enclosing('www.example.com', ZONES) == 'example.com'
    assert enclosing('example.net', ZONES) == 'example.net'


def test_names_outside_every_zone() -> None:
    assert enclosing('example.org', ZONES) is None
    assert enclosing('notexample.com', ZONES) is None  # a suffix of the text, not of the labels
    assert enclosing('com', ZONES) is None
