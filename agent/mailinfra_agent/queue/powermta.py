"""PowerMTA queue collector: reads PowerMTA's HTTP management API (``http-mgmt-port``) on loopback.

What the API gives, and how sure we are (shared/reference/mta.md, "PowerMTA directives confirmed from public
configurations", section 5):

- ``GET /status?format=xml`` (confirmed, several public monitoring plugins): root ``<rsp><data><status>``, with
  ``queue/smtp/rcp`` the recipients waiting in the SMTP queues. Used here as the liveness check and the total.
- ``GET /queues?format=xml`` (one source, a New Relic plugin): ``/rsp/data/queue`` elements, each with ``name``
  (``domain/vmta``), ``rcp``, ``kb``, ``conn``. This is the per-queue view the streams are computed from.
- ``GET /domains?format=xml`` (confirmed) has ``name`` and ``rcp`` per domain, but across all virtual MTAs: it
  cannot be split by stream, so it is not read.
- ASSUMED, not in any source we have: a ``mode`` (``normal``/``backoff``) and ``paused`` (``yes``/``true``) per
  queue entry. The queue-detail web page is documented to show the mode, but not in which form; fetching a page per
  queue would cost one request per queue each scrape. Without these fields every queue counts as normal.
- Values may come as child elements or as attributes of the ``<queue>`` element; both are read.

How the figures map onto the exporter's (``StreamQueue``):

- PowerMTA counts recipients, not messages: every count here is recipients.
- A queue is ``domain/vmta``. The virtual MTA is a sending IP's id (roles/powermta writes one ``<virtual-mta>`` per
  sending IP, named by its id); the contract's ``ips`` give the IP's stream. Queues of a virtual MTA the contract does
  not know (PowerMTA's own, or a pool name) are reported under the stream ``unknown``.
- The domain is a recipient domain, or ``<isp>.queue`` for the provider rollups roles/powermta renders
  (``queue-to gmail.queue``). The ISP is the rollup's name, else the contract's ISP whose ``recipient_domains`` holds
  the domain, else ``other``.
- ``active``: recipients of queues in normal mode; ``deferred``: of queues in backoff mode; ``hold``: of paused
  queues; ``maildrop`` and ``incoming`` are always 0 (PowerMTA has no such stages).
- ``deferred_by_isp`` counts the ``deferred`` recipients (queues in backoff) by ISP.
- ``recipient_domains``: queued recipients by queue domain (rollups keep their ``<isp>.queue`` name), top N + other.
- The age of the oldest recipient and deferral reasons are not in the API: ``oldest_age_seconds`` and
  ``deferral_reasons`` stay empty, so the exporter leaves those series out rather than report a made-up 0.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.parsers import expat

from ..contract import Contract
from .base import QUEUE_NAMES, CollectorError, StreamQueue

INSTANCE = 'pmta'
"""The ``instance`` label of every PowerMTA series (one PowerMTA per host)."""
UNKNOWN_STREAM = 'unknown'
OTHER = 'other'
ROLLUP_SUFFIX = '.queue'
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A larger answer is refused (kind ``too_large``) rather than parsed."""


@dataclass(frozen=True)
class PmtaQueue:
    """One ``domain/vmta`` queue as the API reports it."""

    domain: str
    vmta: str
    recipients: int
    mode: str
    paused: bool


def safe_url(url: str) -> str:
    """``url`` without user name and password, for logs and error messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ''
    netloc = f'{host}:{parts.port}' if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, '', ''))


def _field(element: ElementTree.Element, name: str) -> str | None:
    """A child element's text, else the attribute of that name."""
    child = element.find(name)
    if child is not None:
        return (child.text or '').strip()
    value = element.get(name)
    return value.strip() if value is not None else None


def _count(text: str | None, what: str) -> int:
    if text is None:
        raise CollectorError(f'{what} is missing', 'malformed')
    try:
        value = int(text)
    except ValueError:
        raise CollectorError(f'{what} is not a whole number: {text[:40]!r}', 'malformed') from None
    if value < 0:
        raise CollectorError(f'{what} is negative: {value}', 'malformed')
    return value


def parse_status(body: bytes) -> int:
    """Recipients in the SMTP queues from ``/status?format=xml``."""
    root = _parse(body, '/status')
    smtp = root.find('./data/status/queue/smtp')
    if smtp is None:
        raise CollectorError('/status: no rsp/data/status/queue/smtp element', 'malformed')
    return _count(_field(smtp, 'rcp'), '/status queue/smtp/rcp')


def parse_queues(body: bytes) -> list[PmtaQueue]:
    """The queues of ``/queues?format=xml``."""
    root = _parse(body, '/queues')
    data = root.find('./data')
    if data is None:
        raise CollectorError('/queues: no rsp/data element', 'malformed')
    queues = []
    for index, element in enumerate(data.findall('queue')):
        name = _field(element, 'name')
        if not name or name.count('/') != 1:
            raise CollectorError(f'/queues: queue {index} has no name of the form domain/vmta', 'malformed')
        domain, vmta = name.split('/')
        mode = (_field(element, 'mode') or 'normal').lower()
        paused = (_field(element, 'paused') or 'no').lower() in ('yes', 'true', '1')
        recipients = _count(_field(element, 'rcp'), f'/queues: rcp of queue {name[:80]!r}')
        queues.append(PmtaQueue(domain.lower(), vmta, recipients, mode, paused))
    return queues


class _RootReached(Exception):
    pass


def _refuse_doctype(body: bytes, what: str) -> None:
    """Raise when the prolog has a document type declaration (the API sends none; refusing it keeps entity
    expansion out of the parser). Read by expat up to the root element, in the document's own encoding: a search
    for the bytes ``<!DOCTYPE`` missed one in UTF-16."""

    def doctype(*_: object) -> None:
        raise CollectorError(f'{what}: document type declarations are not accepted', 'malformed')

    def root(*_: object) -> None:
        raise _RootReached

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = root
    with contextlib.suppress(_RootReached, expat.ExpatError):  # not well-formed: ElementTree says where
        parser.Parse(body, True)


def _parse(body: bytes, what: str) -> ElementTree.Element:
    _refuse_doctype(body, what)
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as error:
        raise CollectorError(f'{what}: not well-formed XML ({error})', 'malformed') from None
    if root.tag != 'rsp':
        raise CollectorError(f'{what}: root element is <{root.tag[:40]}>, not <rsp>', 'malformed')
    return root


def top_domains(counts: Mapping[str, int], limit: int) -> dict[str, int]:
    """The ``limit`` largest entries (ties by name) and the rest summed as ``other`` (only when there is a rest)."""
    ranked = sorted(((name, n) for name, n in counts.items() if name != OTHER), key=lambda item: (-item[1], item[0]))
    kept = dict(ranked[:limit])
    rest = sum(n for _, n in ranked[limit:]) + counts.get(OTHER, 0)
    if rest or (OTHER in counts):
        kept[OTHER] = rest
    return kept


class PowerMtaQueueCollector:
    """The streams' queues of the host's PowerMTA, from its HTTP management API."""

    name = 'powermta'
    instance = INSTANCE

    def __init__(self, contract: Contract, url: str, timeout: float = 5.0, top: int = 10) -> None:
        self.url = url.rstrip('/')
        parts = urllib.parse.urlsplit(self.url)
        self.problem: str | None = None
        if parts.username is not None or parts.password is not None:
            # Secrets are never values of the contract; PowerMTA's http-access limits the API by address.
            self.problem = f'{safe_url(self.url)}: credentials in the URL are not accepted'
        elif parts.scheme not in ('http', 'https') or not parts.hostname:
            self.problem = f'{safe_url(self.url)}: not an http(s) URL'
        self.timeout = timeout
        self.top = top
        self.streams = tuple(stream.name for stream in contract.streams)
        self.stream_of_vmta = {ip.id: ip.stream for ip in contract.ips if ip.stream is not None}
        self.isp_names = frozenset(isp.name for isp in contract.isps)
        self.isp_of_domain = {domain.lower(): isp.name for isp in contract.isps for domain in isp.recipient_domains}

    def _get(self, path: str, deadline: float) -> bytes:
        """The body of ``path``; the request may last until ``deadline`` (time.monotonic())."""
        url = f'{self.url}{path}'
        where = safe_url(url)
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            with urllib.request.urlopen(url, timeout=remaining) as response:
                body: bytes = response.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            raise CollectorError(f'{where}: HTTP status {error.code}', 'http_status') from None
        except TimeoutError:
            raise CollectorError(f'{where}: no answer within {self.timeout:g} s', 'timeout') from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise CollectorError(f'{where}: no answer within {self.timeout:g} s', 'timeout') from None
            if isinstance(reason, ConnectionRefusedError):
                raise CollectorError(f'{where}: connection refused', 'connect') from None
            raise CollectorError(f'{where}: {reason}', 'connect') from None
        except (OSError, http.client.HTTPException) as error:
            raise CollectorError(f'{where}: {type(error).__name__}: {error}', 'connect') from None
        if len(body) > MAX_RESPONSE_BYTES:
            raise CollectorError(f'{where}: answer larger than {MAX_RESPONSE_BYTES} bytes', 'too_large')
        return body

    def isp(self, domain: str) -> str:
        if domain.endswith(ROLLUP_SUFFIX):
            name = domain[: -len(ROLLUP_SUFFIX)]
            if name in self.isp_names:
                return name
        return self.isp_of_domain.get(domain, OTHER)

    def collect(self) -> list[StreamQueue]:
        if self.problem is not None:
            raise CollectorError(self.problem, 'config')
        # /status proves the API answers as PowerMTA's does; the per-stream figures come from /queues.
        deadline = time.monotonic() + self.timeout  # for the whole collection, not per request
        parse_status(self._get('/status?format=xml', deadline))
        return self.streams_of(parse_queues(self._get('/queues?format=xml', deadline)))

    def streams_of(self, queues: Iterable[PmtaQueue]) -> list[StreamQueue]:
        names = list(self.streams)
        messages: dict[str, Counter[str]] = {name: Counter() for name in names}
        by_isp: dict[str, Counter[str]] = {name: Counter() for name in names}
        domains: dict[str, Counter[str]] = {name: Counter() for name in names}
        for queue in queues:
            stream = self.stream_of_vmta.get(queue.vmta, UNKNOWN_STREAM)
            if stream not in messages:
                names.append(stream)
                messages[stream], by_isp[stream], domains[stream] = Counter(), Counter(), Counter()
            if queue.paused:
                state = 'hold'
            elif queue.mode == 'backoff':
                state = 'deferred'
                by_isp[stream][self.isp(queue.domain)] += queue.recipients
            else:
                state = 'active'
            messages[stream][state] += queue.recipients
            domains[stream][queue.domain] += queue.recipients
        return [
            StreamQueue(
                stream=name,
                instance=INSTANCE,
                messages={queue: messages[name][queue] for queue in QUEUE_NAMES},
                oldest_age_seconds={},
                deferred_by_isp=dict(sorted(by_isp[name].items())),
                recipient_domains=top_domains(domains[name], self.top),
                deferral_reasons={},
            )
            for name in names
        ]
