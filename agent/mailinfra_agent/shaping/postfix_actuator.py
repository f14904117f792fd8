"""Make a stream's Postfix instance follow the shaping engine's active actions.

The role renders the instance (docs/postfix.md): one transport ``out_<ip>`` per sending IP for ordinary
domains, picked at random by ``sender_dependent_default_transport_maps = randmap:{out_<ip>:, ...}``, and one
transport ``out_<ip>__<isp>`` per IP x ISP, picked by ``transport_maps = pipemap:{unionmap:{randmap:{<ips>},
pcre:transport_isp}, texthash:transport_ip_isp}`` (``"<ip>,<isp>" -> out_<ip>__<isp>:``). The actions map
onto that routing:

- ``backoff``: the transport's ``_destination_concurrency_limit`` becomes 1 and its ``_transport_rate_delay``
  ``ceil(3600 / backoff_messages_per_hour)`` seconds (never faster than the rendered values);
- ``suspend`` with failover: the ``"<ip>,<isp>"`` row of transport_ip_isp points at the rendered transport of
  another IP of the stream that is not suspended (ISP ``*``: the IP leaves the default randmap);
- ``suspend`` without failover (or no IP left to take over) and ``cap``: the transport goes into
  ``defer_transports``, so its mail stays queued;
- ``suspend_ip``: the IP leaves both randmaps; when no IP of the stream would be left, all its transports are
  deferred instead.

An action the instance has no transport for (an IP that is not the stream's, an ISP known only by its MX names,
which shares ``out_<ip>`` with every other domain) is skipped with a warning in the log, never guessed.

The rendered values are the baseline: the actuator keeps the baseline of every value it changed, and the value
it set, in a state file and puts the baseline back byte for byte when no action needs the change any more. A file
that is no longer the one the actuator wrote and is byte for byte the role's rendered one (in the role's staging
directory, ``/var/lib/mailinfra/postfix-staging/<instance>/``) is the new baseline, all of it. In one an operator
edited, a value still as the actuator set it stays the actuator's, and any other value is the new baseline.
main.cf is edited
with ``postconf -e`` / ``-X`` on a copy (parameters it did not have are appended in name order: postconf's own
order is random), transport_ip_isp is rewritten line by line; both are installed by atomic rename, then
``postfix -c DIR check`` runs and ``postfix -c DIR reload`` follows (only when the instance runs). Files that
changed while the convergence ran (the role's install) are left as they are: nothing is installed, and
:class:`ActuatorError` says so. A failed check or reload puts the previous files back and raises
:class:`ActuatorError`. Queued mail stays queued:
nothing is deleted or requeued; when a deferral ends, the messages it held ("deferred transport") are
scheduled for delivery with ``postqueue -i`` instead of waiting for their next retry.

Killed at any point (SIGKILL), the next convergence finishes the job: the state file is saved before the files
are installed and names both versions as the actuator's, with a mark that the instance still needs a check and a
reload; the mark goes only after the reload and the ``postqueue -i`` of the held mail. Temporary files a killed
process left (its staging directory, a state file or an instance file not yet renamed into place) are removed under
the instance's lock (``flock``: a dead process holds none).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..contract import DEFAULT_ISP, Contract, Stream
from ..files import replace_file
from ..postfix.staged_check import (
    SHAPING_DIRECTORY,
    Runner,
    TerminalRunner,
    lock_path,
    postfix_check,
    run,
    warnings,
)
from .actions import Action, ActuatorError

__all__ = ['DEFAULT_STATE_DIRECTORY', 'Plan', 'PostfixActuator', 'Topology', 'plan', 'rate_delay']

LOG = logging.getLogger(__name__)

DEFAULT_STATE_DIRECTORY = SHAPING_DIRECTORY
"""Where the baseline of each instance's changed values is kept (``<instance>.json``), and the instance's lock
(``<instance>.lock``, which the role's ``postfix-check install`` takes too)."""

DEFAULT_STAGING_DIRECTORY = '/var/lib/mailinfra/postfix-staging'
"""The postfix role's ``postfix__staging_directory`` (its default): the rendered files, ``<instance>/main.cf``."""
MAIN_CF = 'main.cf'
IP_ISP_TABLE = 'transport_ip_isp'
FAILED_COHORT_LIMIT = '10'
"""Postfix's advice for a destination with a rate delay; the role renders the same (docs/postfix.md)."""
SECONDS_PER_HOUR = 3600
HELD = 'deferred transport'
"""Postfix's delay reason of mail that ``defer_transports`` holds."""
STALE = 600.0
"""Seconds after which a temporary file of main.cf or transport_ip_isp is no write in progress but a leftover."""
PENDING = 'reload_pending'
"""The state file's mark, in each file's entry: files were (or are being) installed and the instance has not been
reloaded since. Not a key of its own: the agent before it read every top-level key as a file's entry."""
_RANDMAP = re.compile(r'randmap:\{([^{}]*)\}')
_TIME = re.compile(r'(\d+)([smhdw]?)')
_UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


def rate_delay(backoff_messages_per_hour: int) -> int:
    """Seconds between two deliveries that keep one connection under the back-off hourly rate (at least 1)."""
    return max(1, math.ceil(SECONDS_PER_HOUR / max(1, backoff_messages_per_hour)))


def _seconds(value: str | None) -> int:
    """A Postfix time value in seconds (``2s``, ``1m``); 0 when unset or not a plain time."""
    match = _TIME.fullmatch((value or '').strip())
    return int(match.group(1)) * _UNITS[match.group(2)] if match else 0


def _items(randmap: str) -> list[str]:
    return [item for item in re.split(r'[\s,]+', randmap) if item]


def _without(value: str, drop: Callable[[str], bool]) -> str:
    """``value`` with the items for which ``drop`` is true removed from its (first) randmap."""
    match = _RANDMAP.search(value)
    if match is None or not any(drop(item) for item in _items(match.group(1))):
        return value  # untouched, whatever its spacing
    kept = ', '.join(item for item in _items(match.group(1)) if not drop(item))
    return f'{value[: match.start(1)]}{kept}{value[match.end(1) :]}'


@dataclass(frozen=True)
class Topology:
    """A stream's sending IPs on this host, as the instance names them (``ip_key``), in the contract's order."""

    stream: str
    keys: dict[str, str]
    """Sending address (dotted quad) -> its key in the instance's transport names (``198_51_100_20``)."""
    backoff_per_hour: dict[str, int]
    """ISP name -> ``backoff_messages_per_hour`` of the stream towards it."""

    @classmethod
    def of(cls, contract: Contract, stream: Stream) -> Topology:
        keys = {
            ip.address: ip.id.removeprefix(f'{ip.pool}_')
            for ip in contract.ips
            if ip.stream == stream.name and ip.address is not None
        }
        backoff = {isp.isp: isp.limits.backoff_messages_per_hour for isp in stream.isps}
        return cls(stream.name, keys, backoff)


@dataclass
class Plan:
    """What the instance's files should say: main.cf values (None: not set) and transport_ip_isp rows."""

    main: dict[str, str | None]
    rows: dict[str, str]
    skipped: list[str] = field(default_factory=list)
    """Actions that cannot be applied to this instance, with the reason."""


def _transport(key: str, isp: str, main: Mapping[str, str], rows: Mapping[str, str]) -> str | None:
    """The rendered transport of IP ``key`` towards ``isp``; None when the instance has none of its own."""
    if isp == DEFAULT_ISP:
        name = f'out_{key}'
        return name if f'{name}_destination_concurrency_limit' in main else None
    row = rows.get(f'{key},{isp}')
    return row.split(':', 1)[0] if row else None


def plan(
    topology: Topology,
    main: Mapping[str, str],
    rows: Mapping[str, str],
    desired: Iterable[Action],
) -> Plan:
    """The files' values that put ``desired`` into effect on top of the baseline ``main`` and ``rows``.

    Only the values the actions need differ from the baseline; an empty ``desired`` gives the baseline.
    """
    target: dict[str, str | None] = dict(main)
    table = dict(rows)
    skipped: list[str] = []
    keys = list(topology.keys.values())
    actions: list[tuple[Action, str]] = []
    for action in sorted(set(desired), key=lambda item: (item.stream, item.ip, item.isp or '', item.kind)):
        key = topology.keys.get(action.ip)
        if action.stream != topology.stream:
            skipped.append(f'{action.kind} {action.ip} {action.isp}: stream {action.stream}, not {topology.stream}')
        elif key is None:
            skipped.append(f'{action.kind} {action.ip}: not a sending IP of stream {topology.stream} on this host')
        elif action.kind != 'suspend_ip' and _transport(key, action.isp or '', main, rows) is None:
            skipped.append(f'{action.kind} {action.ip} {action.isp}: the instance has no transport of its own for it')
        else:
            actions.append((action, key))

    off = {key for action, key in actions if action.kind == 'suspend_ip'}
    deferred: list[str] = []
    if off and off.issuperset(keys):  # no IP left to take the stream's mail: hold it
        deferred += [name for key in keys for name in _all_transports(key, main, rows)]
        off = set()
    held = {(key, action.isp) for action, key in actions if action.kind in ('suspend', 'cap')}
    slowed = {(key, action.isp) for action, key in actions if action.kind == 'backoff'}
    default_out = set(off)  # IPs that leave the randmap of ordinary domains
    for action, key in actions:
        isp = action.isp or ''
        transport = _transport(key, isp, main, rows)
        if action.kind == 'backoff' and transport is not None:
            _slow(target, transport, topology.backoff_per_hour.get(isp, topology.backoff_per_hour.get(DEFAULT_ISP)))
        if action.kind not in ('suspend', 'cap') or transport is None:
            continue
        others = [
            other
            for other in keys
            if other != key
            and other not in off
            and (other, isp) not in held
            and _transport(other, isp, main, rows) is not None
            and not (isp == DEFAULT_ISP and other in default_out)
        ]
        others.sort(key=lambda other: (other, isp) in slowed)  # an IP running normally first
        if action.kind == 'suspend' and action.failover and others:
            if isp == DEFAULT_ISP:
                default_out.add(key)
            else:
                table[f'{key},{isp}'] = rows[f'{others[0]},{isp}']
        else:
            deferred.append(transport)

    if 'transport_maps' in main:
        target['transport_maps'] = _without(main['transport_maps'], lambda entry: entry in off)
    if 'sender_dependent_default_transport_maps' in main:
        gone = {f'out_{key}' for key in default_out}
        value = main['sender_dependent_default_transport_maps']
        target['sender_dependent_default_transport_maps'] = _without(value, lambda entry: entry.split(':')[0] in gone)
    if deferred:
        existing = _items(main.get('defer_transports', ''))
        ordered = sorted(set(deferred) - set(existing), key=deferred.index)
        target['defer_transports'] = ', '.join(existing + ordered)
    return Plan(target, table, skipped)


def _all_transports(key: str, main: Mapping[str, str], rows: Mapping[str, str]) -> list[str]:
    names = [_transport(key, DEFAULT_ISP, main, rows)]
    names += [value.split(':', 1)[0] for row, value in rows.items() if row.split(',', 1)[0] == key]
    return sorted({name for name in names if name})


def _slow(target: dict[str, str | None], transport: str, per_hour: int | None) -> None:
    concurrency = f'{transport}_destination_concurrency_limit'
    delay = f'{transport}_transport_rate_delay'
    cohort = f'{transport}_destination_concurrency_failed_cohort_limit'
    target[concurrency] = '1'
    wanted = rate_delay(per_hour) if per_hour else 1
    if _seconds(target.get(delay)) < wanted:
        target[delay] = f'{wanted}s'
    if target.get(cohort) is None:
        target[cohort] = FAILED_COHORT_LIMIT


# --- Files ------------------------------------------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: str) -> bytes | None:
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _rows(text: str) -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.lstrip().startswith('#'):
            rows[fields[0]] = ' '.join(fields[1:])
    return rows


def _with_rows(text: str, rows: Mapping[str, str]) -> str:
    """``text`` with the value of each row in ``rows`` replaced; comments, order and spacing stay."""
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if len(fields) >= 2 and not line.lstrip().startswith('#') and fields[0] in rows:
            body = line.rstrip('\r\n')
            ending = line[len(body) :]
            start = body.index(fields[0]) + len(fields[0])
            gap = re.match(r'\s*', body[start:])
            separator = gap.group(0) if gap else ' '
            line = f'{body[:start]}{separator}{rows[fields[0]]}{ending}'
        out.append(line)
    return ''.join(out)


def _backdate(path: str) -> None:
    """Date ``path`` two seconds back: Postfix reads a file younger than a second again and again until it is one
    second old (its guard against files being edited in place), which would add a second or two to each command.
    Our files are replaced by rename, never written in place."""
    past = os.stat(path).st_mtime - 2
    os.utime(path, (past, past))


def _temporary_of(*names: str) -> re.Pattern[str]:
    """The names of :func:`~mailinfra_agent.files.replace_file`'s temporary files of ``names`` (mkstemp's
    ``.<name>.`` and eight random characters), not an editor's ``.main.cf.swp`` or ``.main.cf.un~``."""
    return re.compile(rf'\.({"|".join(map(re.escape, names))})\.[a-z0-9_]{{8}}')


def _write_atomically(path: str, data: bytes, like: str | None = None) -> None:
    """Replace ``path`` by ``data`` with one rename, keeping the mode and owner of ``like`` (or of ``path``)."""
    replace_file(path, data, like=like, before_rename=_backdate)


@dataclass
class _Tracked:
    """The actuator's record of one file: digests of the versions it wrote, baselines of the values it changed,
    and the values it set them to (either of two while an install is under way)."""

    ours: list[str] = field(default_factory=list)
    baseline: dict[str, str | None] = field(default_factory=dict)
    applied: dict[str, list[str | None]] = field(default_factory=dict)

    def current_baseline(self, digest: str | None, current: Mapping[str, str]) -> dict[str, str]:
        """The rendered values: the current ones, with the recorded baselines of the values that are still ours
        (all of them when the file is one the actuator wrote; else those still as the actuator set them)."""
        values: dict[str, str | None] = dict(current)
        if digest not in self.ours:
            self.baseline = {
                name: value
                for name, value in self.baseline.items()
                if name in self.applied and current.get(name) in self.applied[name]
            }
            self.applied = {name: self.applied[name] for name in self.baseline}
        values.update(self.baseline)
        return {name: value for name, value in values.items() if value is not None}


class PostfixActuator:
    """The :class:`~mailinfra_agent.shaping.actions.Actuator` of the contract's Postfix stream instances."""

    def __init__(
        self,
        contract: Contract,
        *,
        state_directory: str = DEFAULT_STATE_DIRECTORY,
        config_directory: Callable[[Stream], str] | None = None,
        runner: Runner = run,
        checker: TerminalRunner = postfix_check,
        reschedule_limit: int = 1000,
        stale: float = STALE,
        staging_directory: str | None = DEFAULT_STAGING_DIRECTORY,
    ) -> None:
        self.contract = contract
        self.state_directory = state_directory
        self.config_directory = config_directory or (lambda stream: f'/etc/{stream.instance}')
        self.runner = runner
        self.checker = checker
        self.reschedule_limit = reschedule_limit
        """Held messages rescheduled at once when a deferral ends (one ``postqueue -i`` each); the rest wait."""
        self.stale = stale
        """Age in seconds of a leftover temporary file of main.cf or transport_ip_isp that is removed."""
        self.staging_directory = staging_directory
        """Where the postfix role stages each instance's rendered files (``<instance>/main.cf``); None: nowhere."""
        self._seen: dict[str, tuple[tuple[int, ...] | None, ...]] = {}
        """Instance -> the files' identity (inode, size, times) when this actuator last converged it."""

    # The Actuator interface.
    def converge(self, stream: Stream, desired: Sequence[Action]) -> Sequence[str]:
        directory = self.config_directory(stream)
        os.makedirs(self.state_directory, mode=0o750, exist_ok=True)
        with open(lock_path(self.state_directory, stream.instance), 'a') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._remove_leftovers(stream.instance, directory)
            self._seen.pop(stream.instance, None)
            changes = self._converge(stream, directory, desired)
            self._seen[stream.instance] = self._identity(directory)
            return changes

    def changed(self, stream: Stream) -> bool:
        """Whether main.cf or transport_ip_isp was replaced or written since the last convergence (two stats)."""
        seen = self._seen.get(stream.instance)
        return seen is None or seen != self._identity(self.config_directory(stream))

    @staticmethod
    def _identity(directory: str) -> tuple[tuple[int, ...] | None, ...]:
        identity: list[tuple[int, ...] | None] = []
        for name in (MAIN_CF, IP_ISP_TABLE):
            try:
                status = os.stat(os.path.join(directory, name))
            except FileNotFoundError:
                identity.append(None)
                continue
            identity.append((status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns))
        return tuple(identity)

    def _remove_leftovers(self, instance: str, directory: str) -> None:
        """What a killed convergence of ``instance`` left: its staging directory, temporary files not renamed."""
        state_file = _temporary_of(f'{instance}.json')
        for entry in os.scandir(self.state_directory):
            if entry.name.startswith(f'{instance}.staging-') and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            elif state_file.fullmatch(entry.name):
                os.unlink(entry.path)
        # The role's install writes the same names (postfix-check install): only an old one is a leftover.
        ours = _temporary_of(MAIN_CF, IP_ISP_TABLE)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(directory):
                if ours.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        if time.time() - entry.stat(follow_symlinks=False).st_ctime >= self.stale:
                            os.unlink(entry.path)

    def _converge(self, stream: Stream, directory: str, desired: Sequence[Action]) -> list[str]:
        main_path = os.path.join(directory, MAIN_CF)
        table_path = os.path.join(directory, IP_ISP_TABLE)
        main_bytes = _read(main_path)
        if main_bytes is None:
            raise ActuatorError(f'{stream.instance}: {main_path} does not exist')
        table_bytes = _read(table_path)
        table_text = table_bytes.decode() if table_bytes is not None else ''
        current_main, known = self._settings(directory)
        current_rows = _rows(table_text)

        state, pending = self._load(stream.instance)
        main_state = state.setdefault(MAIN_CF, _Tracked())
        rows_state = state.setdefault(IP_ISP_TABLE, _Tracked())
        for name, data, tracked in ((MAIN_CF, main_bytes, main_state), (IP_ISP_TABLE, table_bytes, rows_state)):
            if data is not None and _digest(data) not in tracked.ours and self._rendered(stream, name) == data:
                # The role's rendered file, installed since: every value of it is the baseline, also one equal
                # to what an action set.
                tracked.baseline, tracked.applied = {}, {}
        base_main = main_state.current_baseline(_digest(main_bytes), current_main)
        base_rows = rows_state.current_baseline(_digest(table_bytes or b''), current_rows)

        result = plan(Topology.of(self.contract, stream), base_main, base_rows, desired)
        for reason in result.skipped:
            LOG.warning('shaping: %s: not applied: %s', stream.instance, reason)
        names = sorted(set(result.main) | set(current_main))
        edits = {name: result.main.get(name) for name in names if result.main.get(name) != current_main.get(name)}
        row_edits = {key: value for key, value in result.rows.items() if current_rows.get(key) != value}
        changes = [f'{MAIN_CF}: {name}: {current_main.get(name)} -> {value}' for name, value in edits.items()]
        changes += [f'{IP_ISP_TABLE}: {key}: {current_rows.get(key)} -> {value}' for key, value in row_edits.items()]

        if not changes:
            before = self._serialise(state, pending)
            if pending:  # killed after the files were installed, before the reload: check and reload them now
                self._check(directory, main_bytes, table_bytes)
                if self._reload(directory, main_bytes, table_bytes):
                    changes = [f'reloaded {stream.instance} (a change had not been reloaded)']
                    changes += self._reschedule(directory)
            self._remember(state, main_state, rows_state, base_main, base_rows, result, main_bytes, table_bytes)
            if self._serialise(state, False) != before:
                self._save(stream.instance, state, False)
            return changes
        new_main = self._edited_main(stream.instance, directory, main_bytes, edits, known, set(current_main))
        new_table = _with_rows(table_text, row_edits).encode() if row_edits else table_bytes
        # Record first, so that a crash between here and the install still knows both versions as ours.
        main_state.ours = [_digest(main_bytes), _digest(new_main)]
        rows_state.ours = [_digest(table_bytes or b''), _digest(new_table or b'')]
        self._remember_baselines(
            main_state, rows_state, base_main, base_rows, result, keep=(current_main, current_rows)
        )
        self._save(stream.instance, state, True)

        self._install(directory, main_bytes, new_main, table_bytes, new_table)
        reloaded = self._reload(directory, main_bytes, table_bytes)
        changes.append(
            f'reloaded {stream.instance}'
            if reloaded
            else f'{stream.instance} is not running: the change takes effect when it starts'
        )
        held = set(_items(current_main.get('defer_transports', '')))
        if reloaded and (pending or held - set(_items(result.main.get('defer_transports') or ''))):
            changes += self._reschedule(directory)  # before the mark goes: killed here, the restart reschedules
        self._remember(state, main_state, rows_state, base_main, base_rows, result, new_main, new_table)
        self._save(stream.instance, state, False)
        return changes

    def _rendered(self, stream: Stream, name: str) -> bytes | None:
        """The role's rendered version of the instance's file ``name``, from its staging directory (None: none)."""
        if self.staging_directory is None:
            return None
        try:
            return _read(os.path.join(self.staging_directory, stream.instance, name))
        except OSError:  # not readable (the role's staging directory is root's, mode 0700): no rendered version
            return None

    # --- Postfix ------------------------------------------------------------------------------------------------

    def _postconf(self, directory: str, *arguments: str) -> str:
        result = self.runner(['postconf', '-c', directory, *arguments])
        if result.returncode != 0:
            raise ActuatorError(f'postconf -c {directory} {" ".join(arguments)} failed: {result.stderr.strip()}')
        return result.stdout

    def _settings(self, directory: str) -> tuple[dict[str, str], set[str]]:
        """main.cf's settings (``postconf -n``), and the warnings postconf has about them already."""
        result = self.runner(['postconf', '-c', directory, '-n'])
        if result.returncode != 0:
            raise ActuatorError(f'postconf -c {directory} -n failed: {result.stderr.strip()}')
        settings = dict(line.split(' = ', 1) for line in result.stdout.splitlines() if ' = ' in line)
        return settings, set(warnings(result.stderr))

    def _edited_main(
        self,
        instance: str,
        directory: str,
        main_bytes: bytes,
        edits: Mapping[str, str | None],
        known: set[str],
        present: Collection[str],
    ) -> bytes:
        """main.cf with ``edits`` applied on a copy (``present``: the names it sets); postconf must not warn about
        it beyond ``known``."""
        with tempfile.TemporaryDirectory(prefix=f'{instance}.staging-', dir=self.state_directory) as staging:
            with open(os.path.join(staging, MAIN_CF), 'wb') as handle:
                handle.write(main_bytes)
            # postconf knows the per-transport parameters (out_*_destination_concurrency_limit) from master.cf.
            if os.path.exists(os.path.join(directory, 'master.cf')):
                shutil.copyfile(os.path.join(directory, 'master.cf'), os.path.join(staging, 'master.cf'))
            settings = [f'{name}={value}' for name, value in edits.items() if value is not None and name in present]
            removals = [name for name, value in edits.items() if value is None]
            if settings:
                self._postconf(staging, '-e', *settings)
            if removals:
                self._postconf(staging, '-X', *removals)
            added = [
                (name, value) for name, value in sorted(edits.items()) if value is not None and name not in present
            ]
            if added:  # postconf -e would append them in a random order
                with open(os.path.join(staging, MAIN_CF), 'r+b') as handle:
                    text = handle.read()
                    lines = ''.join(f'{name} = {value}\n' for name, value in added).encode()
                    handle.write(lines if not text or text.endswith(b'\n') else b'\n' + lines)
            _backdate(os.path.join(staging, MAIN_CF))
            check = self.runner(['postconf', '-c', staging, '-n'])
            problems = [line for line in warnings(check.stderr.replace(staging, directory)) if line not in known]
            if check.returncode != 0 or problems:
                raise ActuatorError(f'the edited main.cf does not pass postconf: {"; ".join(problems)}')
            with open(os.path.join(staging, MAIN_CF), 'rb') as handle:
                return handle.read()

    def _install(
        self, directory: str, main_bytes: bytes, new_main: bytes, table_bytes: bytes | None, new_table: bytes | None
    ) -> None:
        main_path = os.path.join(directory, MAIN_CF)
        table_path = os.path.join(directory, IP_ISP_TABLE)
        if _read(main_path) != main_bytes or _read(table_path) != table_bytes:
            # Written meanwhile (the role's install): ours was made from the version before, and would undo it.
            raise ActuatorError(f'{directory}: the files changed during the convergence; nothing installed')
        try:
            if new_table is not None and new_table != table_bytes:
                _write_atomically(table_path, new_table)
            if new_main != main_bytes:
                _write_atomically(main_path, new_main)
        except OSError as error:
            self._restore(directory, main_bytes, table_bytes)
            raise ActuatorError(f'{directory}: could not install the change: {error}') from error
        self._check(directory, main_bytes, table_bytes)

    def _check(self, directory: str, main_bytes: bytes, table_bytes: bytes | None) -> None:
        """``postfix check``; when it fails, the previous files go back."""
        try:
            code, output = self.checker(directory)
        except OSError as error:
            code, output = 1, str(error)
        if code != 0:
            self._restore(directory, main_bytes, table_bytes)
            raise ActuatorError(f'postfix -c {directory} check failed, change undone: {" ".join(output.split())}')

    def _restore(self, directory: str, main_bytes: bytes, table_bytes: bytes | None) -> None:
        for name, data in ((MAIN_CF, main_bytes), (IP_ISP_TABLE, table_bytes)):
            path = os.path.join(directory, name)
            if data is not None and _read(path) != data:
                _write_atomically(path, data)

    def _reload(self, directory: str, main_bytes: bytes, table_bytes: bytes | None) -> bool:
        """Reload the instance if it runs (whether it did); a failed reload puts the previous files back."""
        if self.runner(['postfix', '-c', directory, 'status']).returncode != 0:
            return False
        reload = self.runner(['postfix', '-c', directory, 'reload'])
        if reload.returncode == 0:
            return True
        self._restore(directory, main_bytes, table_bytes)
        self.runner(['postfix', '-c', directory, 'reload'])
        raise ActuatorError(f'postfix -c {directory} reload failed, change undone: {reload.stderr.strip()}')

    def _reschedule(self, directory: str) -> list[str]:
        """Deliver the mail a deferred transport held now, not at its next retry (``postqueue -i``, one by one).

        Postfix gives such mail the reason "deferred transport"; mail still held by another action is deferred
        again at once, without a connection. Best effort: the configuration is already in place."""
        listing = self.runner(['postqueue', '-c', directory, '-j'])
        if listing.returncode != 0:
            LOG.warning('shaping: postqueue -c %s -j failed: %s', directory, listing.stderr.strip())
            return []
        held = []
        for line in listing.stdout.splitlines():
            try:
                message = json.loads(line)
                reasons = [str(recipient.get('delay_reason', '')) for recipient in message['recipients']]
                if message['queue_name'] == 'deferred' and any(HELD in reason for reason in reasons):
                    held.append(str(message['queue_id']))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        rescheduled = 0
        for queue_id in held[: self.reschedule_limit]:
            if self.runner(['postqueue', '-c', directory, '-i', queue_id]).returncode == 0:
                rescheduled += 1
        if not held:
            return []
        later = f', {len(held) - rescheduled} at their next retry' if rescheduled < len(held) else ''
        return [f'rescheduled {rescheduled} message(s) the suspension held{later}']

    # --- State ------------------------------------------------------------------------------------------------

    def _state_path(self, instance: str) -> str:
        return os.path.join(self.state_directory, f'{instance}.json')

    def _load(self, instance: str) -> tuple[dict[str, _Tracked], bool]:
        """The tracked files, and whether an install may not have been reloaded yet."""
        data = _read(self._state_path(instance))
        if data is None:
            return {}, False
        try:
            raw = json.loads(data)
            marks = [raw.pop(PENDING, False)]  # where the agent of session 13 put it
            marks += [entry.get(PENDING, False) for entry in raw.values()]
            if not all(isinstance(mark, bool) for mark in marks):
                raise TypeError(f'{PENDING} is not true or false')
            pending = any(marks)
            state = {
                name: _Tracked(
                    list(entry['ours']),
                    dict(entry['baseline']),
                    {key: list(values) for key, values in entry.get('applied', {}).items()},
                )
                for name, entry in raw.items()
            }
            return state, pending
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ActuatorError(
                f'{self._state_path(instance)} is damaged ({error}); remove it after checking '
                f'that /etc/{instance} holds the rendered files'
            ) from error

    @staticmethod
    def _serialise(state: Mapping[str, _Tracked], pending: bool) -> bytes:
        data = {
            name: {'ours': entry.ours, 'baseline': entry.baseline, 'applied': entry.applied, PENDING: pending}
            for name, entry in sorted(state.items())
        }
        return (json.dumps(data, indent=2, sort_keys=True) + '\n').encode()

    def _save(self, instance: str, state: Mapping[str, _Tracked], pending: bool) -> None:
        _write_atomically(self._state_path(instance), self._serialise(state, pending))

    def _remember_baselines(
        self,
        main_state: _Tracked,
        rows_state: _Tracked,
        base_main: Mapping[str, str],
        base_rows: Mapping[str, str],
        result: Plan,
        *,
        keep: tuple[Mapping[str, str], Mapping[str, str]] | None = None,
    ) -> None:
        """Baselines of the values that differ from them in ``result``, and the values ``result`` sets them to.

        ``keep`` (the current main.cf values and rows, before an install): also the values recorded so far, and
        both the current and the new value count as the actuator's until the install is done."""
        before: tuple[Mapping[str, str | None], Mapping[str, str | None]] = keep or ({}, {})
        targets: tuple[Mapping[str, str | None], Mapping[str, str | None]] = (result.main, result.rows)
        for tracked, base, target, current in zip(
            (main_state, rows_state), (base_main, base_rows), targets, before, strict=True
        ):
            changed = {name for name in set(base) | set(target) if target.get(name) != base.get(name)}
            names = changed | set(tracked.baseline) if keep is not None else changed
            tracked.baseline = {name: base.get(name) for name in sorted(names)}
            tracked.applied = {}
            for name in sorted(names):
                values: list[str | None] = [target.get(name)]
                if keep is not None and current.get(name) != target.get(name):
                    values.append(current.get(name))
                tracked.applied[name] = values

    def _remember(
        self,
        state: dict[str, _Tracked],
        main_state: _Tracked,
        rows_state: _Tracked,
        base_main: Mapping[str, str],
        base_rows: Mapping[str, str],
        result: Plan,
        main_bytes: bytes,
        table_bytes: bytes | None,
    ) -> None:
        self._remember_baselines(main_state, rows_state, base_main, base_rows, result)
        main_state.ours = [_digest(main_bytes)] if main_state.baseline else []
        rows_state.ours = [_digest(table_bytes or b'')] if rows_state.baseline else []
