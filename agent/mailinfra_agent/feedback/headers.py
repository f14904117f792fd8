"""The headers an application adds to bulk mail: ``List-Unsubscribe`` (RFC 2369) with one-click (RFC 8058).

Gmail and Yahoo require both of the bulk senders' marketing mail (``mta.md`` §6)::

    List-Unsubscribe: <https://unsub.example.com/u/TOKEN>,
     <mailto:unsubscribe@bounces.example.com?subject=unsubscribe%20TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

RFC 8058 §3.1: the https URI is required, the POST carries no cookies or context, so the URI itself (its last
path segment, the token of ``tokens.make_token``) names the recipient and the stream. The message's DKIM
signature must cover both headers (RFC 8058 §4). Also here: the return path (:func:`envelope_sender`) and the
``X-Mailinfra-Id`` header (:func:`id_header`).

A URI cannot be folded (RFC 2369 §2: no whitespace inside the brackets) and is longer than 78 characters. The
``email`` package's default policy then writes the whole field as RFC 2047 encoded words, which RFC 2047 §5 does
not allow in a field of URIs: build messages with :data:`MESSAGE_POLICY` (or the legacy ``compat32``), which
keeps lines up to RFC 5322's limit of 998 characters. Standard library only.
"""

from __future__ import annotations

import email.policy
import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from . import verp
from .tokens import ID_HEADER, MAILTO_SUBJECT_PREFIX, make_id, make_token

__all__ = [
    'LIST_UNSUBSCRIBE',
    'LIST_UNSUBSCRIBE_POST',
    'MESSAGE_POLICY',
    'ONE_CLICK',
    'envelope_sender',
    'id_header',
    'list_unsubscribe_headers',
    'mailto_uri',
    'unsubscribe_url',
]

LIST_UNSUBSCRIBE = 'List-Unsubscribe'
LIST_UNSUBSCRIBE_POST = 'List-Unsubscribe-Post'
ONE_CLICK = 'List-Unsubscribe=One-Click'
"""The only value RFC 8058 §3.1 allows for ``List-Unsubscribe-Post`` (and the body of the POST)."""

MESSAGE_POLICY = email.policy.SMTP.clone(max_line_length=998)
"""``email`` policy for messages that carry these headers: CRLF, folding only beyond 998 characters."""
MAX_URI = 970
"""A URI cannot be folded: with the field name and separators it must stay below RFC 5322's 998 characters."""

_MAILBOX = re.compile(r'[^\s@<>(),;:"\[\]\\?&%]+@[A-Za-z0-9.-]+')
_URI_TEXT = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
"""RFC 3986 characters of an authority and path: unreserved, sub-delims, ':', '@', '/' and percent-escapes."""
_MAILTO_LOCAL_SAFE = "!$'*+"
"""Besides unreserved: the atext characters RFC 6068 §2 lets stand in a mailto address; the rest are escaped."""


def unsubscribe_url(https_base_url: str, token: str) -> str:
    """``https_base_url`` + ``/`` + ``token``; the base must be an https URL without query or fragment.

    Only ASCII URI characters are taken (an IDN host in its ``xn--`` form), and no user name or password.
    """
    problem = _base_url_problem(https_base_url)
    if problem:
        # never echo a password, nor control characters
        shown = https_base_url.isprintable() and '@' not in https_base_url
        raise ValueError(f'unsubscribe base URL{f" {https_base_url[:120]!r}" if shown else ""} {problem}')
    return f'{https_base_url.rstrip("/")}/{token}'


def _base_url_problem(url: str) -> str | None:
    if any(char.isspace() or ord(char) < 32 for char in url):
        return 'must not contain spaces or control characters'
    parts = urlsplit(url)
    if parts.scheme != 'https' or not parts.hostname or '?' in url or '#' in url:
        return 'must be https://host[/path] without query or fragment (RFC 8058 requires https)'
    host = re.sub(r'^\[[0-9A-Fa-f:.]+\]', '', parts.netloc.rpartition('@')[2])  # an IPv6 literal
    if not (_URI_TEXT.fullmatch(host) and _URI_TEXT.fullmatch(parts.netloc.rpartition('@')[0] + parts.path)):
        return (
            'must be an ASCII URI (RFC 3986): percent-encode other characters, write an IDN host as xn--, '
            'and escape a % as %25'
        )
    if '@' in parts.netloc:
        return 'must not carry a user name or password (every recipient would see it)'
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return 'has a port that is not 1-65535'
    if parts.port == 0:
        return 'has a port that is not 1-65535'
    return None


def mailto_uri(address: str, subject: str) -> str:
    """``mailto:`` URI of ``address`` with ``subject``: both percent-encoded as RFC 6068 §2 asks."""
    local, _, domain = address.rpartition('@')
    return f'mailto:{quote(local, safe=_MAILTO_LOCAL_SAFE)}@{domain}?subject={quote(subject, safe="")}'


def list_unsubscribe_headers(
    recipient: str,
    stream: str,
    https_base_url: str,
    mailto_address: str | None,
    keys: Sequence[bytes],
    now: float,
    *,
    segment: str | None = None,
) -> dict[str, str]:
    """``List-Unsubscribe`` (https and, unless ``mailto_address`` is None, mailto) and ``List-Unsubscribe-Post``.

    ``now`` is the sending time in POSIX seconds (the token's age counts from it). Raises ValueError for a bad
    URL, address or key, and for a control character (a line break) in the recipient, stream or segment.
    """
    token = make_token(recipient, stream, keys, now, segment=segment)
    uris = [f'<{unsubscribe_url(https_base_url, token)}>']
    if mailto_address is not None:
        if not _MAILBOX.fullmatch(mailto_address):
            raise ValueError(f'unsubscribe mailto address "{mailto_address[:120]}" is not a plain address')
        uris.append(f'<{mailto_uri(mailto_address, MAILTO_SUBJECT_PREFIX + token)}>')
    for uri in uris:
        if len(uri) > MAX_URI:
            raise ValueError(f'an unsubscribe URI of {len(uri)} characters cannot be one header line: shorten the URL')
    return {LIST_UNSUBSCRIBE: ', '.join(uris), LIST_UNSUBSCRIBE_POST: ONE_CLICK}


def envelope_sender(
    stream: str,
    domain: str,
    keys: Sequence[bytes],
    *,
    prefix: str = 'b',
    separator: str = '-',
    recipient: str | None = None,
    segment: str | None = None,
    campaign: str | None = None,
    message_id: str | None = None,
) -> str:
    """The signed VERP return path for one message (``verp.encode``): use it as the SMTP ``MAIL FROM``."""
    return verp.encode(
        keys,
        stream=stream,
        domain=domain,
        prefix=prefix,
        separator=separator,
        segment=segment,
        campaign=campaign,
        message_id=message_id,
        recipient=recipient,
    )


def id_header(
    recipient: str,
    stream: str,
    keys: Sequence[bytes],
    *,
    segment: str | None = None,
    campaign: str | None = None,
) -> dict[str, str]:
    """``{'X-Mailinfra-Id': ...}``: lets anonymised complaints be matched (``tokens.make_id``)."""
    return {ID_HEADER: make_id(recipient, stream, keys, segment=segment, campaign=campaign)}
