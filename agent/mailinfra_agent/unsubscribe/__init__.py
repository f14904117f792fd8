"""The RFC 8058 one-click unsubscribe endpoint (``mailinfra-agent unsubscribe serve``), standard library only.

- :mod:`.service`: one request without HTTP: verify the token, store the event, apply the suppression.
- :mod:`.server`: the HTTPS server (``POST /u/<token>`` unsubscribes, ``GET`` shows a confirmation page).
- :mod:`.ratelimit`: per-client token buckets.
"""

from .ratelimit import RateLimiter, client_key
from .server import MAX_BODY, MAX_URL, PATH_PREFIX, TlsFiles, UnsubscribeServer, make_server, one_click_body
from .service import OUTCOMES, Outcome, Result, Unsubscriber, short_hash, unsubscribe_event

__all__ = [
    'MAX_BODY',
    'MAX_URL',
    'OUTCOMES',
    'PATH_PREFIX',
    'Outcome',
    'RateLimiter',
    'Result',
    'TlsFiles',
    'UnsubscribeServer',
    'Unsubscriber',
    'client_key',
    'make_server',
    'one_click_body',
    'short_hash',
    'unsubscribe_event',
]
