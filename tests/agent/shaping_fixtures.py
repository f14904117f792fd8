"""Shared pieces of the shaping tests: newsletter-publisher/mx1's contract, Postfix log lines, a recording actuator.

The contract is the rendered one (its rules come from the ISP catalogue): stream ``transactional`` sends from
198.51.100.10, ``cold_outreach`` from 198.51.100.30; Gmail's ``4.7.28`` rule suspends for 600 s.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailinfra_agent.contract import Contract, Stream, load_contract
from mailinfra_agent.shaping.actions import Action, ActuatorError
from tests.agent.test_contract import contracts

if TYPE_CHECKING:
    from tests.agent.test_shaping_postfix_actuator import Instance

IP = '198.51.100.10'
OTHER_STREAM_IP = '198.51.100.30'
STREAM = 'transactional'
INSTANCE = 'postfix-transactional'
RELAYS = {
    'gmail': ('gmail.com', 'gmail-smtp-in.l.google.com[203.0.113.25]:25'),
    'yahoo': ('yahoo.com', 'mta7.am0.yahoodns.net[203.0.113.26]:25'),
    'microsoft': ('outlook.com', 'outlook-com.olc.protection.outlook.com[203.0.113.27]:25'),
    '*': ('example.org', 'mx.example.org[203.0.113.29]:25'),
}
GMAIL_428 = '421-4.7.28 [198.51.100.10] Gmail has detected an unusual rate of unsolicited mail originating from your IP'
YAHOO_TSS04 = '421 4.7.0 [TSS04] Messages from 198.51.100.10 temporarily deferred due to unexpected volume'
SPAMHAUS = '554 5.7.1 Service unavailable; Client host [198.51.100.10] blocked using zen.spamhaus.org'


def contract_data(store: dict[str, Any], logs: dict[str, Path] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(json.loads(contracts()['newsletter-publisher/mx1']))
    data['store'] = store
    data['logs'] = [
        {
            'path': str(path),
            'format': 'postfix',
            'instance': instance,
            'syslog_name': instance,
            'stream': None if instance == 'postfix' else instance.removeprefix('postfix-'),
        }
        for instance, path in sorted((logs or {}).items())
    ]
    return data


def sqlite_store(tmp_path: Path) -> dict[str, Any]:
    return {'backend': 'sqlite', 'path': str(tmp_path / 'agent.db'), 'dsn': None, 'password_file': None}


def contract(data: dict[str, Any]) -> Contract:
    return load_contract(data)


def stamp(when: float) -> str:
    """postlogd's stamp (``Dec 06 10:00:00.123456``), in UTC like the parser's default."""
    return time.strftime('%b %d %H:%M:%S', time.gmtime(when)) + f'.{int(when * 1e6) % 1_000_000:06d}'


_serial = iter(range(0x10000, 0xFFFFFF))


def delivery(
    when: float,
    *,
    isp: str = 'gmail',
    ip: str = IP,
    instance: str = INSTANCE,
    status: str = 'deferred',
    reply: str | None = GMAIL_428,
    dsn: str = '4.7.28',
    text: str | None = None,
    relay: str | None = None,
    queue_id: str | None = None,
) -> str:
    """One smtp(8) delivery line of ``instance`` through the transport ``out_<ip>__<isp>``."""
    domain, default_relay = RELAYS[isp]
    host = default_relay.split('[')[0]
    transport = f'out_{ip.replace(".", "_")}' + ('' if isp == '*' else f'__{isp}')
    queue = queue_id or f'{next(_serial):X}'
    if text is None:
        text = f'host {host}[203.0.113.25] said: {reply} (in reply to end of DATA command)' if reply else '250 2.0.0 OK'
    where = relay if relay is not None else default_relay
    return (
        f'{stamp(when)} mx1 {instance}/{transport}/smtp[4242]: {queue}: to=<user{next(_serial)}@{domain}>, '
        f'relay={where}, delay=1.2, delays=0.1/0/0.5/0.6, dsn={dsn}, status={status} ({text})'
    )


def sent(when: float, *, isp: str = 'gmail', ip: str = IP) -> str:
    return delivery(when, isp=isp, ip=ip, status='sent', dsn='2.0.0', text='250 2.0.0 OK 1700000000 x1si')


def append(path: Path, *lines: str) -> None:
    with open(path, 'a', encoding='utf-8') as handle:
        for line in lines:
            handle.write(line + '\n')


@dataclass
class RecordingActuator:
    """Records each convergence (a test double of the Postfix actuator); ``fail`` makes the next calls raise."""

    calls: list[tuple[str, tuple[Action, ...]]] = field(default_factory=list)
    state: dict[str, tuple[Action, ...]] = field(default_factory=dict)
    fail: int = 0
    touched: set[str] = field(default_factory=set)
    """Streams whose instance someone else changed (``changed`` says so once)."""

    def converge(self, stream: Stream, desired: Sequence[Action]) -> Sequence[str]:
        if self.fail:
            self.fail -= 1
            raise ActuatorError('postfix check failed (test)')
        self.calls.append((stream.name, tuple(desired)))
        before = self.state.get(stream.name, ())
        self.state[stream.name] = tuple(desired)
        if before == tuple(desired):
            return []
        return [f'{a.kind} {a.ip} {a.isp or "*"}' for a in desired] or ['all back to normal']

    def changed(self, stream: Stream) -> bool:
        if stream.name in self.touched:
            self.touched.discard(stream.name)
            return True
        return False


@contextmanager
def postfix_instance() -> Iterator[Instance]:
    """A running Postfix instance of the Postfix actuator tests (``tests/agent/test_shaping_postfix_actuator.py``)
    under a fresh directory (mode 0755: the postfix user reads its files), removed afterwards. The ``postfix``
    fixture of the shaping tests that run Postfix (a fixture imported from here would shadow its parameters)."""
    from tests.agent.test_shaping_postfix_actuator import running_instance  # that module imports this one

    public = Path(tempfile.mkdtemp(prefix='mailinfra-shaping-test-'))
    public.chmod(0o755)
    try:
        with running_instance(public) as started:
            yield started
    finally:
        shutil.rmtree(public, ignore_errors=True)
