"""Keep the sending IP addresses of ``/etc/mailinfra/sending-ips.conf`` on their interfaces.

The configuration (written by the mta_base role) has one ``ADDRESS/PREFIX INTERFACE`` pair a line; ``#`` starts
a comment, and lines with fewer than two fields are ignored.

- ``apply`` removes the addresses applied before that are no longer listed, then adds every listed address
  (``ip address replace``, so rerunning is harmless; IPv6 with ``nodad``), and remembers what it applied;
- ``check`` prints ``stale: ADDRESS on INTERFACE`` and ``missing: ADDRESS on INTERFACE`` lines and returns 1 when
  ``apply`` would change anything, else returns 0 and prints nothing;
- ``remove`` removes every address applied before and forgets them.

What was applied last is remembered in ``/run/mailinfra/sending-ips.applied`` (under /run, so forgotten at reboot,
when nothing is applied yet). A failing ``ip`` command stops ``apply`` and ``remove`` with its exit code. A
configuration that is missing or cannot be read stops ``apply`` and ``check`` with exit code 2 before anything
changes (read as an empty list, it would remove every sending address); an empty one lists no addresses.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ['CONFIG', 'STATE', 'ConfigUnreadable', 'IpFailed', 'SendingIps', 'entries', 'run_ip']

CONFIG = Path('/etc/mailinfra/sending-ips.conf')
STATE = Path('/run/mailinfra/sending-ips.applied')

Entry = tuple[str, str]
"""``(ADDRESS/PREFIX, INTERFACE)``."""
IpRunner = Callable[[Sequence[str]], 'subprocess.CompletedProcess[str]']
"""Runs ``ip ARGS...`` and returns its exit code and captured output (the tests inject a fake or a namespace)."""


def run_ip(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(['ip', *args], capture_output=True, text=True, check=False)


class IpFailed(Exception):
    """An ``ip`` command that changes an address failed; ``code`` is its exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ConfigUnreadable(Exception):
    """The configuration is missing or cannot be read; the message says which and why."""


def entries(path: Path, *, required: bool = False) -> list[Entry]:
    """The pairs of a file, in order; none when the file is missing or unreadable, unless it is ``required``
    (then ConfigUnreadable)."""
    try:
        text = path.read_text(encoding='utf-8', errors='replace')
    except OSError as error:
        if required:
            raise ConfigUnreadable(f'cannot read {path}: {error.strerror or error}') from None
        return []
    pairs = []
    for line in text.splitlines():
        fields = line.split('#', 1)[0].split()
        if len(fields) >= 2:
            pairs.append((fields[0], fields[1]))
    return pairs


class SendingIps:
    """The three actions on one configuration and state file, through one ``ip`` runner."""

    def __init__(self, config: Path = CONFIG, state: Path = STATE, ip: IpRunner = run_ip) -> None:
        self.config = config
        self.state = state
        self.ip = ip

    def present(self, cidr: str, device: str) -> bool:
        """Whether ``cidr`` is on ``device`` (a missing device has no address)."""
        listing = self.ip(['-o', 'address', 'show', 'dev', device])
        return any(len(fields) >= 4 and fields[3] == cidr for fields in map(str.split, listing.stdout.splitlines()))

    def stale(self) -> list[Entry]:
        """The pairs applied before that are no longer listed."""
        listed = set(entries(self.config, required=True))
        return [pair for pair in entries(self.state) if pair not in listed]

    def _change(self, args: list[str]) -> None:
        result = self.ip(args)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        if result.returncode != 0:
            raise IpFailed(result.returncode)

    def apply(self) -> int:
        for cidr, device in self.stale():
            if self.present(cidr, device):
                self._change(['address', 'del', cidr, 'dev', device])
        listed = entries(self.config, required=True)
        for cidr, device in listed:
            # Skip duplicate address detection: an IPv6 address stays "tentative", and cannot be bound,
            # until DAD has finished.
            nodad = ['nodad'] if ':' in cidr else []
            self._change(['address', 'replace', cidr, 'dev', device, *nodad])
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(''.join(f'{cidr} {device}\n' for cidr, device in listed), encoding='utf-8')
        return 0

    def differences(self) -> list[str]:
        """What ``apply`` would change, one line each."""
        lines = [f'stale: {cidr} on {device}' for cidr, device in self.stale() if self.present(cidr, device)]
        lines += [
            f'missing: {cidr} on {device}'
            for cidr, device in entries(self.config, required=True)
            if not self.present(cidr, device)
        ]
        return lines

    def check(self) -> int:
        lines = self.differences()
        for line in lines:
            print(line)
        return 1 if lines else 0

    def remove(self) -> int:
        for cidr, device in entries(self.state):
            if self.present(cidr, device):
                self._change(['address', 'del', cidr, 'dev', device])
        self.state.unlink(missing_ok=True)
        return 0

    def run(self, action: str) -> int:
        """Run ``apply``, ``check`` or ``remove``; a failing ``ip`` command gives its exit code."""
        try:
            return {'apply': self.apply, 'check': self.check, 'remove': self.remove}[action]()
        except IpFailed as failure:
            return failure.code
        except ConfigUnreadable as error:
            print(f'sending-ips {action}: {error}; nothing changed', file=sys.stderr)
            return 2
