"""The contract's back-off rules per stream x ISP, and what of a delivery log line they are matched against.

A rule's pattern is searched in ``"<code> <enhanced> <text>"``: the remote server's reply code, the enhanced
status code and the reply text (without Postfix's ``host X said:`` prefix and ``(in reply to ...)`` suffix).
The first rule of the stream x ISP that matches wins.

Lines our own actions cause never match (:func:`internal`): Postfix's ``delivery temporarily suspended``
(its dead-destination cache repeats the remote text it saw), the ``deferred transport`` deferrals of a
transport in ``defer_transports``, and every attempt no remote server answered (``relay=none``: the
``retry:``/``error:`` transports, local deferrals). KumoMTA needs ``match_internal`` for the same reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..contract import DEFAULT_ISP, BackoffRule, Contract
from ..feedback.events import Event

INTERNAL_PREFIXES = ('delivery temporarily suspended',)
INTERNAL_TEXTS = ('deferred transport',)
_SAID = re.compile(r'(?:said|refused to talk to me): ')
_IN_REPLY = re.compile(r'\s*\(in reply to [^()]*\)$')
_LEAD = re.compile(r'^([245]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?')


@dataclass(frozen=True)
class CompiledRule:
    """A back-off rule of one stream x ISP, compiled."""

    id: str
    """Stable id: a digest of the stream, ISP, position and rule (stored with matches and actions)."""
    stream: str
    isp: str
    index: int
    rule: BackoffRule
    regex: re.Pattern[str]

    @property
    def label(self) -> str:
        """For status and logs: the description, else the pattern."""
        return self.rule.description or self.rule.pattern


def internal(event: Event) -> bool:
    """Whether the line was caused by our own MTA (a suspension, a deferred transport), not a remote reply."""
    diagnostic = (event.diagnostic or '').strip()
    if event.relay is None:
        return True
    lowered = diagnostic.lower()
    return lowered.startswith(INTERNAL_PREFIXES) or lowered in INTERNAL_TEXTS


def reply_subject(event: Event) -> str:
    """``"<code> <enhanced> <text>"`` of a delivery attempt (missing codes are empty)."""
    text = (event.diagnostic or '').strip()
    said = _SAID.search(text)
    if said is not None:
        text = text[said.end() :]
    text = _IN_REPLY.sub('', text)
    code, enhanced = event.smtp_code or '', event.dsn or ''
    lead = _LEAD.match(text)
    if lead is not None:
        code = code or lead.group(1)
        enhanced = enhanced or (lead.group(2) or '')
        text = text[lead.end() :]
    return f'{code} {enhanced} {text}'


def rule_id(stream: str, isp: str, index: int, rule: BackoffRule) -> str:
    text = '\x1f'.join((stream, isp, str(index), rule.pattern, rule.action, str(rule.duration)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RuleBook:
    """The back-off rules of the contract's streams, by stream and ISP."""

    def __init__(self, contract: Contract) -> None:
        self._rules: dict[tuple[str, str], tuple[CompiledRule, ...]] = {}
        self.by_id: dict[str, CompiledRule] = {}
        for stream in contract.streams:
            for stream_isp in stream.isps:
                compiled = []
                for index, rule in enumerate(stream_isp.backoff_rules):
                    try:
                        regex = re.compile(rule.pattern)
                    except re.error as error:
                        raise ValueError(
                            f'stream {stream.name}, ISP {stream_isp.isp}: back-off rule {index + 1} '
                            f'has an invalid pattern {rule.pattern!r}: {error}'
                        ) from None
                    item = CompiledRule(
                        rule_id(stream.name, stream_isp.isp, index, rule),
                        stream.name,
                        stream_isp.isp,
                        index,
                        rule,
                        regex,
                    )
                    compiled.append(item)
                    self.by_id[item.id] = item
                self._rules[(stream.name, stream_isp.isp)] = tuple(compiled)

    def isp_of(self, stream: str, isp: str | None) -> str:
        """The ISP whose rules apply: the event's ISP when the stream has rules for it, else the default one."""
        if isp is not None and (stream, isp) in self._rules:
            return isp
        return DEFAULT_ISP

    def match(self, stream: str, isp: str, subject: str) -> CompiledRule | None:
        """The first rule of ``stream`` x ``isp`` whose pattern is found in ``subject``."""
        for item in self._rules.get((stream, isp), ()):
            if item.regex.search(subject):
                return item
        return None
