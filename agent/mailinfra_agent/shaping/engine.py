"""The shaping engine: log events in, the desired set of active actions out (durable in the store).

- ``observe`` (in the caller's transaction, with the log checkpoint): every deferral or bounce a back-off
  rule of its stream x ISP matches is recorded once (by event key); when the rule's trigger is met (count
  within window, per stream, sending IP, ISP and rule) the action is applied, or extended when it is active;
  deliveries of warming IPs are counted per IP x ISP and warm-up day.
- ``evaluate``: actions whose time is over are removed (``expired``); warming transports whose daily
  count reached today's cap get a ``cap`` action until the next midnight of the warm-up time zone.
- ``desired``: the active actions per stream, which an :class:`~.actions.Actuator` converges the MTA to.

Lines our own actions cause never match (``rules.internal``). A matching line of a transport whose sending IP is not
one of the stream's on this host, or whose ISP the stream does not know, cannot be acted on (no transport of the
instance is meant): it is logged once per transport, counted in ``Engine.ignored`` and skipped. Every change is
returned as a :class:`Change` and logged by :func:`log_change` after the transaction commits, as one ``key=value``
line.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..contract import DEFAULT_ISP, Contract
from ..feedback.events import Event
from ..feedback.postfix_log import IspMatcher
from ..ingest.service import isp_domains
from ..store import Database
from . import state, warmup
from .actions import Action, ActionKind
from .rules import CompiledRule, RuleBook, internal, reply_subject

log = logging.getLogger('mailinfra_agent.shaping')

MATCH_MEMORY = 86400.0
"""Matches are kept at least this long (a line re-read after a failed batch is still recognised)."""
HOUSEKEEPING = 60.0
"""Seconds between removals of old matches and delivery counts."""
CAPS_REFRESH = 300.0
"""Seconds between recomputations of the warm-up caps (and at every change of the warm-up day)."""


@dataclass(frozen=True)
class Change:
    """A change of the state: ``event`` happened to ``action`` (for logs; counted in the store)."""

    event: state.Event
    action: Action
    since: float


class CapLike(Protocol):
    """What the engine reads of a warm-up cap (``warmup.Cap``)."""

    @property
    def stream(self) -> str: ...
    @property
    def ip(self) -> str: ...
    @property
    def isp(self) -> str: ...
    @property
    def cap(self) -> int: ...
    @property
    def isps(self) -> tuple[str, ...]:
        """The ISPs whose deliveries count towards the cap and whose transports stop when it is reached."""
        ...

    @property
    def since(self) -> float: ...
    @property
    def until(self) -> float: ...
    @property
    def reason(self) -> str: ...


CapsFunction = Callable[[Contract, Database | None, float], Sequence[CapLike]]
DayBounds = Callable[[float], tuple[float, float]]


def _warmup_caps(contract: Contract, db: Database | None, now: float) -> Sequence[CapLike]:
    """Today's caps from the warm-up module (``warmup.caps``)."""
    return warmup.caps(contract, db, now)


def _warmup_bounds(contract: Contract) -> DayBounds:
    """The warm-up day around a time, in the warm-up time zone (``warmup.day_bounds``)."""
    return lambda now: warmup.day_bounds(contract.warmup, now)


def _stamp(value: float) -> str:
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _quote(value: str) -> str:
    if value and all(char.isalnum() or char in '._:-/*@' for char in value):
        return value
    return '"' + value.replace('\\', '\\\\').replace('"', '\\"') + '"'


def format_change(change: Change) -> str:
    """One ``key=value`` line (values with spaces quoted), e.g. for the journal."""
    action = change.action
    fields = [
        ('event', change.event),
        ('stream', action.stream),
        ('ip', action.ip),
        ('isp', action.isp or '*'),
        ('action', action.kind),
        ('failover', 'true' if action.failover else 'false'),
        ('since', _stamp(change.since)),
        ('until', _stamp(action.until)),
        ('reason', action.reason),
    ]
    return ' '.join(f'{name}={_quote(str(value))}' for name, value in fields)


def log_change(change: Change) -> None:
    log.info('%s', format_change(change))


class Engine:
    """The shaping decisions of one host, from its contract; state lives in the store."""

    def __init__(
        self,
        contract: Contract,
        *,
        caps: CapsFunction | None = None,
        day_bounds: DayBounds | None = None,
        use_warmup: bool = True,
    ) -> None:
        self.contract = contract
        self.host = contract.host.name
        self.rules = RuleBook(contract)
        self.streams = {stream.name for stream in contract.streams}
        self._ips = {
            name: {ip.address for ip in contract.ips if ip.stream == name and ip.address is not None}
            for name in self.streams
        }
        self._isps = {stream.name: {isp.isp for isp in stream.isps} for stream in contract.streams}
        self._isp_of_domain = IspMatcher(isp_domains(contract))
        self.ignored: Counter[tuple[str, str, str | None]] = Counter()
        """Matching lines skipped per (stream, sending IP, ISP) of a transport the contract does not know."""
        self._caps_of: CapsFunction | None = caps if caps is not None else (_warmup_caps if use_warmup else None)
        self._bounds: DayBounds | None = day_bounds
        if day_bounds is None and use_warmup:
            self._bounds = _warmup_bounds(contract)
        windows = [
            item.trigger_window for stream in contract.streams for isp in stream.isps for item in isp.backoff_rules
        ]
        self.memory = max([MATCH_MEMORY, *map(float, windows)])
        self._caps: tuple[CapLike, ...] = ()
        self._caps_at: float | None = None
        self._caps_day: float | None = None
        self._warming: dict[tuple[str, str], dict[str, str]] = {}
        """(stream, ip) of a warming IP -> ISP of a delivery -> the ISP of the cap it counts towards."""
        self._day: tuple[float, float] | None = None
        self._housekept: float | None = None

    # --- log events ---------------------------------------------------------------------------------------------

    def observe(self, db: Database, events: Iterable[Event], now: float) -> list[Change]:
        """Record the matches and deliveries of ``events`` and apply what they trigger (call inside a transaction)."""
        changes: list[Change] = []
        delivered: Counter[tuple[str, str, str, int]] = Counter()
        for event in events:
            stream, ip = event.stream, event.sending_ip
            if stream is None or ip is None or stream not in self.streams or event.kind != 'delivery':
                continue
            if event.status == 'sent':
                if self._warming:
                    self._count_delivery(delivered, stream, ip, event)
                continue
            if event.status not in ('deferred', 'bounced') or internal(event):
                continue
            isp = self.rules.isp_of(stream, event.isp)
            subject = reply_subject(event)
            rule = self.rules.match(stream, isp, subject)
            if rule is None:
                continue
            if ip not in self._ips[stream] or self._foreign_transport(stream, event):
                self._ignore(stream, ip, event.isp, rule)
                continue
            if not state.add_match(db, self.host, event.key, stream, ip, isp, rule.id, event.time):
                continue  # read before
            if self._triggered(db, rule, stream, ip, isp, event.time):
                self._apply(db, rule, stream, ip, isp, event.time, subject, now, changes)
        if delivered:
            state.add_deliveries(db, self.host, delivered.items())
        return changes

    def _foreign_transport(self, stream: str, event: Event) -> bool:
        """Whether the event's ISP is one the stream does not know, taken from a transport's name
        (``out_<ip>__<isp>``). From the recipient's domain (the default transport ``out_<ip>``) it is not: the
        default ISP's rules apply, as to any domain the stream has no rules for."""
        isp = event.isp
        if isp is None or isp in self._isps[stream]:
            return False
        return isp != self._isp_of_domain(event.recipient.rpartition('@')[2])

    def _ignore(self, stream: str, ip: str, isp: str | None, rule: CompiledRule) -> None:
        key = (stream, ip, isp)
        if not self.ignored[key]:
            what = (
                'not a sending IP of the stream' if ip not in self._ips[stream] else 'an ISP the stream does not know'
            )
            log.warning(
                'stream=%s ip=%s isp=%s: rule "%s" matched, but %s: ignored (logged once)',
                stream,
                ip,
                isp or '*',
                rule.label[:80],
                what,
            )
        self.ignored[key] += 1

    def _count_delivery(
        self, delivered: Counter[tuple[str, str, str, int]], stream: str, ip: str, event: Event
    ) -> None:
        isps = self._warming.get((stream, ip))
        if isps is None or self._bounds is None:
            return
        isp = isps.get(event.isp or DEFAULT_ISP)
        if isp is None:
            return  # an ISP no cap of the IP covers
        day = self._day
        if day is None or not day[0] <= event.time < day[1]:
            day = self._day = self._bounds(event.time)
        delivered[(stream, ip, isp, int(day[0]))] += 1

    def _triggered(self, db: Database, rule: CompiledRule, stream: str, ip: str, isp: str, time: float) -> bool:
        count, window = rule.rule.trigger_count, rule.rule.trigger_window
        if count <= 1:
            return True
        since = time - window if window > 0 else None
        return state.matches_since(db, self.host, stream, ip, isp, rule.id, since) >= count

    def _apply(
        self,
        db: Database,
        rule: CompiledRule,
        stream: str,
        ip: str,
        isp: str,
        time: float,
        subject: str,
        now: float,
        changes: list[Change],
    ) -> None:
        kind: ActionKind = rule.rule.action
        until = time + rule.rule.duration
        if until <= now:
            return  # an old line (read late): its action would already be over
        reason = f'{rule.label}; matched "{subject.strip()[:160]}"'
        action = Action(
            stream=stream,
            ip=ip,
            isp=None if kind == 'suspend_ip' else isp,
            kind=kind,
            failover=rule.rule.failover if kind == 'suspend' else False,
            until=until,
            reason=reason,
        )
        self._put(db, action, time, rule.id, changes)

    def _put(self, db: Database, action: Action, since: float, rule: str, changes: list[Change]) -> None:
        found = state.find(db, self.host, action.stream, action.ip, action.isp, action.kind)
        if found is None:
            state.put(db, self.host, action, since, rule)
            state.count(db, self.host, action, 'applied')
            changes.append(Change('applied', action, since))
        elif action.until > found.action.until:
            state.put(db, self.host, action, found.since, rule)
            state.count(db, self.host, action, 'extended')
            changes.append(Change('extended', action, found.since))

    # --- time ---------------------------------------------------------------------------------------------------

    def refresh_caps(self, db: Database | None, now: float) -> None:
        """Recompute today's warm-up caps when they are older than CAPS_REFRESH or from another day."""
        if self._caps_of is None:
            return
        stale = self._caps_at is None or now - self._caps_at >= CAPS_REFRESH
        if not stale and self._caps_day is not None and self._bounds is not None:
            stale = self._bounds(now)[0] != self._caps_day
        if not stale:
            return
        self._caps = tuple(self._caps_of(self.contract, db, now))
        self._caps_at = now
        self._caps_day = self._caps[0].since if self._caps else (self._bounds(now)[0] if self._bounds else None)
        warming: dict[tuple[str, str], dict[str, str]] = {}
        for cap in self._caps:
            covered = warming.setdefault((cap.stream, cap.ip), {})
            for name in (cap.isp, *cap.isps):
                covered[name] = cap.isp
        self._warming = warming

    @property
    def caps(self) -> tuple[CapLike, ...]:
        return self._caps

    def evaluate(self, db: Database, now: float) -> list[Change]:
        """Expire what is over, apply reached caps, forget old matches (call inside a transaction)."""
        changes: list[Change] = []
        for item in state.active(db, self.host):
            if item.action.until <= now:
                state.remove(db, self.host, item.action)
                state.count(db, self.host, item.action, 'expired')
                changes.append(Change('expired', item.action, item.since))
        for cap in self._caps:
            if not cap.since <= now < cap.until:
                continue
            sent = state.deliveries(db, self.host, cap.stream, cap.ip, cap.isp, int(cap.since))
            if sent < cap.cap:
                continue
            reason = f'{cap.reason}: {sent} of {cap.cap} deliveries today'
            for isp in sorted({cap.isp, *cap.isps}):
                if state.find(db, self.host, cap.stream, cap.ip, isp, 'cap') is None:
                    action = Action(cap.stream, cap.ip, isp, 'cap', False, cap.until, reason)
                    self._put(db, action, now, 'warmup', changes)
        if self._housekept is None or now - self._housekept >= HOUSEKEEPING:
            state.forget_matches(db, self.host, now - self.memory)
            if self._bounds is not None:
                state.forget_deliveries(db, self.host, int(self._bounds(now)[0] - 2 * 86400))
            self._housekept = now
        return changes

    def desired(self, db: Database, now: float) -> dict[str, tuple[Action, ...]]:
        """The active actions per stream of the contract (every stream, empty when nothing is active)."""
        result: dict[str, list[Action]] = {name: [] for name in sorted(self.streams)}
        for item in state.active(db, self.host):
            if item.action.until > now and item.action.stream in result:
                result[item.action.stream].append(item.action)
        return {name: tuple(sorted(actions)) for name, actions in result.items()}

    def release(self, db: Database, stream: str, ip: str, isp: str | None, now: float) -> list[Change]:
        """End by hand the actions of ``stream`` x ``ip`` (x ``isp``; None: all of the IP, ``suspend_ip`` included).

        Releasing a warm-up ``cap`` also restarts today's count, so the transport may send one more cap's worth.
        The count restarted is the one the ISP's deliveries go to: for an ISP without a share of its own, the
        default ``*`` cap's. Raises ``WarmupError`` when a cap is released and the warm-up section is bad.
        """
        changes: list[Change] = []
        for item in state.active(db, self.host, stream):
            action = item.action
            if action.ip != ip or (isp is not None and action.isp != isp):
                continue
            state.remove(db, self.host, action)
            state.count(db, self.host, action, 'released')
            if action.kind == 'cap' and action.isp is not None and self._bounds is not None:
                self.refresh_caps(db, now)  # a fresh engine (the release command) learns which count covers the ISP
                counted = self._warming.get((stream, ip), {}).get(action.isp, action.isp)
                day = int(self._bounds(now)[0])
                db.execute(
                    'DELETE FROM shaping_deliveries WHERE host = ? AND stream = ? AND ip = ? AND isp = ? '
                    'AND day_start = ?',
                    (self.host, stream, ip, counted, day),
                )
            changes.append(Change('released', action, item.since))
        return changes
