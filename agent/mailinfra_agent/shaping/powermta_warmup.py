"""Today's warm-up caps in PowerMTA's configuration: the rendered baseline, completed on the host.

The powermta role writes the template to a baseline (``/etc/pmta/config.rendered``); ``mailinfra-agent warmup
powermta-apply`` writes the live ``/etc/pmta/config`` = baseline + today's caps (``warmup.caps``), so the daily step
moves without a re-render. Inside each warming IP's ``<virtual-mta>``:

- each queue's ``max-msg-rate`` becomes the stricter of the rendered rate and the queue's part of today's cap in
  PowerMTA's per-day form ``N/d`` (compared as messages per day); ``backoff-max-msg-rate`` is never above it;
- a comment line above says which won and why;
- an ISP with a queue of its own gets its own part (``<isp>.queue``, ``queue_name``);
- ``<domain *>`` gets the part of ``other`` plus the parts of ISPs without a queue in the VMTA (e.g. an ISP
  recognised only by MX). ISP queues without a part of their own (a share of 0: their recipients count with
  ``other``) share that part with ``<domain *>``: each gets an equal piece, rounded down, ``*`` the rest. PowerMTA has
  no counter shared by two queues, so this keeps the IP's total at or below its cap;
- a part of 0 (before the warm-up's first day, or a very small cap) is written ``1/d``: the smallest daily rate
  PowerMTA can express (``0`` means unlimited);
- an IP without a cap today (not warming, or its warm-up is over) keeps the rendered queues unchanged.

The VMTA of a sending IP is named after its contract ``id`` (``vmta_name``); the controller's renderer
(``mailinfra_iac.render.rolevars.powermta``) uses the same two functions, so the contract is all the host needs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..contract import DEFAULT_ISP, Contract
from ..powermta.checker import parse_rate
from .warmup import Cap

DAY = 86400
DEFAULT_QUEUE = '*'
COMMENT = '# mailinfra warm-up:'
UNLIMITED = frozenset({'unlimited', '0'})

_VMTA_OPEN = re.compile(r'^<virtual-mta\s+(\S+?)\s*>$')
_DOMAIN_OPEN = re.compile(r'^<domain\s+(\S+?)\s*>$')
_DIRECTIVE = re.compile(r'^(\s*)(max-msg-rate|backoff-max-msg-rate)\s+(\S+)\s*$')


class PowerMtaWarmupError(Exception):
    """The baseline and the contract do not fit together (the message says where)."""


def queue_name(isp: str) -> str:
    """The queue an ISP's recipient domains roll up to, in every VMTA (``<domain $isp> queue-to <isp>.queue``)."""
    return f'{isp}.queue'


def vmta_name(ip_id: str) -> str:
    """The ``<virtual-mta>`` of a sending IP, named after its id (contract ``ips[].id``)."""
    return ip_id


@dataclass(frozen=True)
class QueueCap:
    """Today's cap of one queue of one VMTA, messages per day."""

    vmta: str
    queue: str
    cap: int
    why: str


def per_day(rate: str) -> float:
    """Messages per day of a PowerMTA rate; ``unlimited``/``0``: infinity. ``ValueError`` if malformed."""
    if rate in UNLIMITED:
        return float('inf')
    count, seconds = parse_rate(rate)
    return count * DAY / seconds


def _number(value: float) -> str:
    return 'unlimited' if value == float('inf') else f'{value:,.0f}'


def vmta_queues(text: str) -> dict[str, list[str]]:
    """The queues (``<domain NAME>``) inside each ``<virtual-mta NAME>`` of a configuration, in file order."""
    result: dict[str, list[str]] = {}
    vmta: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := _VMTA_OPEN.match(line):
            vmta = match.group(1)
            result[vmta] = []
        elif line == '</virtual-mta>':
            vmta = None
        elif vmta is not None and (match := _DOMAIN_OPEN.match(line)):
            result[vmta].append(match.group(1))
    return result


def queue_caps(
    contract: Contract, caps: Iterable[Cap], queues: dict[str, list[str]]
) -> dict[tuple[str, str], QueueCap]:
    """Today's cap of every queue of every warming VMTA, keyed by (VMTA, queue)."""
    by_address = {ip.address: ip for ip in contract.ips if ip.address is not None}
    per_ip: dict[str, list[Cap]] = defaultdict(list)
    for cap in caps:
        per_ip[cap.ip].append(cap)
    result: dict[tuple[str, str], QueueCap] = {}
    for address, ip_caps in sorted(per_ip.items()):
        ip = by_address.get(address)
        if ip is None:
            raise PowerMtaWarmupError(f'a cap for {address}, which is not a sending IP of the contract')
        vmta = vmta_name(ip.id)
        if vmta not in queues:
            raise PowerMtaWarmupError(f'{address} warms up, but the baseline has no <virtual-mta {vmta}>')
        present = set(queues[vmta])
        if DEFAULT_QUEUE not in present:
            raise PowerMtaWarmupError(f'<virtual-mta {vmta}> has no <domain *> for the cap of "{DEFAULT_ISP}"')
        total = sum(cap.cap for cap in ip_caps)
        head = ip_caps[0]
        context = f'{head.reason}; {address} may send {total:,}/d'
        own = {queue_name(cap.isp): cap for cap in ip_caps if cap.isp != DEFAULT_ISP and queue_name(cap.isp) in present}
        rest = [cap for cap in ip_caps if queue_name(cap.isp) not in own]
        budget = sum(cap.cap for cap in rest)
        sharing = [queue for queue in queues[vmta] if queue != DEFAULT_QUEUE and queue not in own]
        piece = budget // (len(sharing) + 1)
        for queue, cap in own.items():
            result[(vmta, queue)] = QueueCap(vmta, queue, cap.cap, f'{context}, {cap.isp} part {cap.cap:,}')
        names = '+'.join(sorted(cap.isp for cap in rest))
        if sharing:
            why = f'{context}, part of {names} {budget:,} shared by {len(sharing) + 1} queues'
        else:
            why = f'{context}, part of {names} {budget:,}'
        for queue in sharing:
            result[(vmta, queue)] = QueueCap(vmta, queue, piece, why)
        result[(vmta, DEFAULT_QUEUE)] = QueueCap(vmta, DEFAULT_QUEUE, budget - piece * len(sharing), why)
    return result


def _decide(cap: QueueCap, rendered: str, line: int) -> tuple[str, str]:
    """(the rate to write, the comment's text) for one queue's ``max-msg-rate``."""
    try:
        rendered_day = per_day(rendered)
    except ValueError as error:
        raise PowerMtaWarmupError(f'line {line}: max-msg-rate: {error}') from None
    if cap.cap == 0:
        wanted, form = 1, '1/d (cap 0: PowerMTA has no smaller daily rate, 0 means unlimited)'
    else:
        wanted, form = cap.cap, f'{cap.cap}/d'
    if rendered_day <= wanted:
        return rendered, (
            f"{COMMENT} rendered {rendered} ({_number(rendered_day)}/d) is at or below today's cap "
            f'{form} ({cap.why}): rendered rate kept'
        )
    return f'{wanted}/d', (
        f"{COMMENT} today's cap {form} is stricter than the rendered {rendered} ({_number(rendered_day)}/d) ({cap.why})"
    )


def apply_caps(text: str, contract: Contract, caps: Sequence[Cap]) -> str:
    """The baseline ``text`` with today's ``caps`` written into its warming VMTAs' queues (the module docstring)."""
    wanted = queue_caps(contract, caps, vmta_queues(text))
    out: list[str] = []
    vmta: str | None = None
    queue: QueueCap | None = None
    limit: str | None = None  # the max-msg-rate written in the current queue
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(text.splitlines(keepends=True), 1):
        line = raw.strip()
        if match := _VMTA_OPEN.match(line):
            vmta = match.group(1)
        elif line == '</virtual-mta>':
            vmta = None
        elif vmta is not None and (match := _DOMAIN_OPEN.match(line)):
            queue, limit = wanted.get((vmta, match.group(1))), None
        elif line == '</domain>':
            if queue is not None and limit is None:
                raise PowerMtaWarmupError(f'line {number}: <domain {queue.queue}> of {queue.vmta} has no max-msg-rate')
            queue = None
        elif queue is not None and (match := _DIRECTIVE.match(raw.rstrip('\n'))):
            indent, name, value = match.groups()
            newline = raw[len(raw.rstrip('\n')) :]
            if name == 'max-msg-rate':
                rate, comment = _decide(queue, value, number)
                limit = rate
                seen.add((queue.vmta, queue.queue))
                out.append(f'{indent}{comment}{newline}{indent}{name} {rate}{newline}')
                continue
            if limit is None:
                raise PowerMtaWarmupError(f'line {number}: backoff-max-msg-rate before max-msg-rate in {queue.vmta}')
            if _backoff_above(value, limit, number):
                out.append(f'{indent}{COMMENT} back-off rate {value} lowered to max-msg-rate {limit}{newline}')
                out.append(f'{indent}{name} {limit}{newline}')
                continue
        out.append(raw)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise PowerMtaWarmupError(f'no max-msg-rate in <domain {missing[0][1]}> of <virtual-mta {missing[0][0]}>')
    return ''.join(out)


def _backoff_above(backoff: str, limit: str, line: int) -> bool:
    try:
        return per_day(backoff) > per_day(limit)
    except ValueError as error:
        raise PowerMtaWarmupError(f'line {line}: backoff-max-msg-rate: {error}') from None


def describe(caps: Sequence[Cap], today: dt.date) -> str:
    """One line for the log: how many IPs warm up today."""
    ips = sorted({cap.ip for cap in caps})
    return f'{today}: {len(ips)} warming IP(s) capped' + (f' ({", ".join(ips)})' if ips else '')
