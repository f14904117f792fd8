"""A real authoritative server for tests and benchmarks: Knot DNS (Debian's ``knot``) on loopback.

Everything is ours: a configuration file, zone files, rundir (control socket) and database in a
temporary directory; no system paths, no systemd, no privilege change. The server listens on
127.0.0.1 on a random high port (UDP and TCP).

Changing a zone is "rewrite its file, ``knotc -b zone-reload``" (blocking), then the new SOA
serial is confirmed over DNS. Measured on the development machine (Knot 3.2.6, 2 cores): starting
``knotd`` until every zone answers takes about 30 ms, a blocking reload of a small zone about 15 to
20 ms. A reload is cheaper than a server per test module and keeps one port for the whole session,
so the test fixtures start one server per session and reload zones.

    with KnotServer({'example.com': zone_text}) as server:
        server.nameserver               # '127.0.0.1:PORT'
        server.set_zones({'example.com': new_text})

    python -m tests.dnsserver.knot DIR     # serve DIR/*.zone until interrupted (for manual checks)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

INSTALL_HINT = 'install it with `apt-get install knot knot-dnsutils` (script/bootstrap does)'
_SEARCH = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/usr/local/sbin', '/sbin'])
_SERIAL = re.compile(r'^@\s+\d+\s+IN\s+SOA\s+\S+\s+\S+\s+(\d+)\s', re.MULTILINE)


class KnotError(RuntimeError):
    """Knot could not be started, reloaded or stopped."""


class KnotNotInstalled(KnotError):
    """``knotd``/``knotc`` are not on this machine."""


def knot_binaries() -> tuple[str, str]:
    knotd = shutil.which('knotd', path=_SEARCH)
    knotc = shutil.which('knotc', path=_SEARCH)
    if knotd is None or knotc is None:
        raise KnotNotInstalled(f'Knot DNS (knotd, knotc) is not installed: {INSTALL_HINT}')
    return knotd, knotc


def zone_serial(text: str) -> int | None:
    match = _SERIAL.search(text)
    return int(match.group(1)) if match else None


def _free_port(address: str) -> int:
    """A random high port free for both UDP and TCP right now (Knot binds both)."""
    for _ in range(50):
        port = random.randint(20000, 60999)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
                udp.bind((address, port))
                tcp.bind((address, port))
            return port
        except OSError:
            continue
    raise KnotError(f'no free port found on {address}')


class KnotServer:
    """One ``knotd`` process serving the given zones (name -> zone file text)."""

    def __init__(
        self,
        zones: dict[str, str],
        *,
        address: str = '127.0.0.1',
        udp_workers: int = 1,
        root: Path | None = None,
        log_level: str = 'notice',
    ) -> None:
        if not zones:
            raise ValueError('Knot needs at least one zone')
        self.knotd, self.knotc = knot_binaries()
        self.address = address
        self.udp_workers = udp_workers
        self.log_level = log_level
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix='mailinfra-knot-')) if root is None else root
        self.zones: dict[str, str] = {}
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        for directory in ('zones', 'db', 'run'):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        for name, text in zones.items():
            self._write_zone(name, text)

    # -- files ---------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / 'knot.conf'

    @property
    def log_path(self) -> Path:
        return self.root / 'knot.log'

    @property
    def nameserver(self) -> str:
        return f'{self.address}:{self.port}'

    def _write_zone(self, name: str, text: str) -> None:
        path = self.root / 'zones' / f'{name}.zone'
        temporary = path.with_name(f'.{path.name}.tmp')
        temporary.write_text(text, encoding='utf-8')
        os.replace(temporary, path)
        self.zones[name] = text

    def _write_config(self) -> None:
        zones = '\n'.join(f'  - domain: "{name}."' for name in sorted(self.zones))
        self.config_path.write_text(
            f"""# Written by tests/dnsserver/knot.py: a throw-away server on loopback.
server:
    rundir: "{self.root / 'run'}"
    listen: {self.address}@{self.port}
    udp-workers: {self.udp_workers}
    tcp-workers: 1
    background-workers: 1

control:
    listen: "{self.root / 'run' / 'knot.sock'}"

log:
  - target: stderr
    any: {self.log_level}

database:
    storage: "{self.root / 'db'}"

template:
  - id: default
    storage: "{self.root / 'zones'}"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none

zone:
{zones}
""",
            encoding='utf-8',
        )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return '(no log)'

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> KnotServer:
        last = ''
        for _ in range(5):
            self.port = _free_port(self.address)
            self._write_config()
            check = subprocess.run(
                [self.knotc, '-c', str(self.config_path), 'conf-check'], capture_output=True, text=True, timeout=30
            )
            if check.returncode != 0:
                raise KnotError(f'invalid Knot configuration: {check.stdout}{check.stderr}')
            started = time.perf_counter()
            with self.log_path.open('ab') as log:
                self.process = subprocess.Popen(
                    [self.knotd, '-c', str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
                )
            try:
                self._wait_ready(started + timeout)
            except KnotError as error:
                last = str(error)
                self._terminate()
                if 'cannot bind' in self.log_tail(50) or 'address already in use' in self.log_tail(50).lower():
                    continue  # lost the port to someone else: try another
                raise
            return self
        raise KnotError(f'Knot did not start: {last}')

    def _wait_ready(self, deadline: float) -> None:
        pending = dict(self.zones)
        while pending:
            if self.process is not None and self.process.poll() is not None:
                raise KnotError(f'knotd exited with {self.process.returncode}:\n{self.log_tail()}')
            for name in list(pending):
                if self.soa_serial(name, timeout=0.05) == zone_serial(pending[name]):
                    del pending[name]
            if pending and time.perf_counter() > deadline:
                raise KnotError(f'Knot did not serve {", ".join(sorted(pending))} in time:\n{self.log_tail()}')
            if pending:
                time.sleep(0.005)

    def soa_serial(self, zone: str, timeout: float = 1.0) -> int | None:
        """The serial this server answers for ``zone`` (authoritatively), or None."""
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.flags &= ~dns.flags.RD
        try:
            response = dns.query.udp(query, self.address, port=self.port, timeout=timeout)
        except (OSError, dns.exception.DNSException):
            return None
        if not response.flags & dns.flags.AA:
            return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def set_zones(self, zones: dict[str, str]) -> None:
        """Replace the text of served zones and reload them (blocking); only changed zones are reloaded."""
        unknown = sorted(set(zones) - set(self.zones))
        if unknown:
            raise KnotError(f'not served by this server: {", ".join(unknown)}')
        changed = [name for name, text in zones.items() if self.zones[name] != text]
        if not changed:
            return
        for name in changed:
            self._write_zone(name, zones[name])
        reload = subprocess.run(
            [self.knotc, '-c', str(self.config_path), '-b', '-t', '30', 'zone-reload', *[f'{n}.' for n in changed]],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if reload.returncode != 0:
            raise KnotError(f'knotc zone-reload failed: {reload.stdout}{reload.stderr}\n{self.log_tail()}')
        for name in changed:
            want = zone_serial(zones[name])
            if want is not None and self.soa_serial(name) != want:
                raise KnotError(f'{name} still answers an old serial after the reload:\n{self.log_tail()}')

    def _terminate(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def stop(self) -> None:
        """Stop our knotd (``knotc stop``, then SIGTERM to our own process if needed) and clean up."""
        if self.process is not None and self.process.poll() is None:
            subprocess.run(
                [self.knotc, '-c', str(self.config_path), '-t', '5', 'stop'], capture_output=True, timeout=30
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
        self._terminate()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> KnotServer:
        return self.start() if self.process is None else self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Serve a directory of BIND zone files (<zone>.zone) with Knot.')
    parser.add_argument('directory', type=Path, help='e.g. the dns/zones directory of `mailinfra render`')
    args = parser.parse_args(argv)
    zones = {path.name[: -len('.zone')]: path.read_text() for path in sorted(args.directory.glob('*.zone'))}
    with KnotServer(zones) as server:
        print(f'serving {len(zones)} zones on {server.nameserver}; Ctrl-C stops', flush=True)
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
