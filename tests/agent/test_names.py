"""Suffix lookups of names in zones and the ASCII form of a domain, shared by the host and the controller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mailinfra_agent.names import ascii_domain, enclosing

ZONES = {'example.com', 'mail.example.com', 'example.net'}


def test_the_longest_enclosing_zone_wins() -> None:
    assert enclosing('mx1.mail.example.com', ZONES) == 'mail.example.com'
    assert enclosing('www.example.com', ZONES) == 'example.com'
    assert enclosing('example.net', ZONES) == 'example.net'


def test_names_outside_every_zone() -> None:
    assert enclosing('example.org', ZONES) is None
    assert enclosing('notexample.com', ZONES) is None  # a suffix of the text, not of the labels
    assert enclosing('com', ZONES) is None


@pytest.mark.parametrize(
    ('given', 'mapped'),
    [
        ('Example.NET.', 'example.net'),
        ('Bücher.de', 'xn--bcher-kva.de'),
        ('bu\u0308cher\u3002DE.', 'xn--bcher-kva.de'),  # NFD, an ideographic full stop, a trailing dot
        ('faß.de', 'xn--fa-hia.de'),  # non-transitional: IDNA 2003 gave fass.de, another domain
        ('FAẞ.DE', 'xn--fa-hia.de'),
        ('ΟΔΟΣ.gr', 'xn--pxavbq.gr'),  # a final capital sigma: the plain sigma (str.lower would give ς)
        ('b\ufffd.de', None),  # a disallowed code point (a replaced byte)
    ],
)
def test_the_ascii_domain_is_the_uts46_form(given: str, mapped: str | None) -> None:
    assert ascii_domain(given) == mapped


def test_the_idna_package_is_imported_only_for_a_utf8_domain() -> None:
    """The pipe transport starts a process per message: an ASCII domain must not load idna's tables."""
    code = (
        'import sys\nfrom mailinfra_agent.feedback import _mime\n'
        "assert _mime.address('rfc822; gone@Example.NET', typed=True) == 'gone@example.net'\n"
        "assert 'idna' not in sys.modules\n"
        "assert _mime.address('utf-8; gone@fa\\\\x{DF}.de', typed=True) == 'gone@xn--fa-hia.de'\n"
        "assert 'idna' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_non_ascii_domain_longer_than_any_dns_name_is_not_mapped() -> None:
    # a recipient of 4,000 CJK characters cost the gate's event loop seconds of UTS 46 mapping per RCPT
    assert ascii_domain('\u4e00' * 255) is None
    assert ascii_domain('\u4e00' * 10 + '.example') is not None
