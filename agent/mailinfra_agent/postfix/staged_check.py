"""Check a staged Postfix configuration directory, and install it once every instance passed.

``check STAGED LIVE`` fails (exit 1, reasons on stderr) when:

- postconf warns about main.cf (unknown or unused parameters, syntax), except "overriding earlier entry",
  which postfix__main_cf_extra does on purpose;
- postconf cannot parse master.cf or warns about it;
- ``postfix check`` fails (bad values of the parameters it validates, permissions, missing files);
- a texthash or pcre table the configuration names is missing or has lines Postfix would ignore;
- the TLS certificate or key file is not readable;
- a value of main.cf or of a master.cf ``-o`` override has the wrong type for its parameter, so that the daemon
  reading it would exit (times, sizes, integers, booleans, enumerations, lookup tables that do not exist or whose
  type this Postfix lacks, milter addresses that are malformed or do not answer): see
  ``mailinfra_agent.postfix.parameters``. Each such problem names the parameter, its value and the reason.

It exits 3 when everything passed but inet_interfaces or inet_protocols differ from a live configuration
that exists (a reload does not apply them: the instance needs a restart), else 0. Postfix prints the reason
of a failed ``postfix check`` only to a terminal, so it runs on a pseudo-terminal.

``install STAGED LIVE FILE...`` copies the named files whose content differs from STAGED to LIVE (mode 0644,
atomic rename) and prints one line per file it replaced. It holds the shaping service's lock of the instance
(``/var/lib/mailinfra/shaping/<basename of LIVE>.lock``, waiting up to two minutes) while it reads and replaces
the files, so that the service never installs a file it made from the version before; without that directory (no
shaping service on the host) it takes no lock, and after the wait it installs without it, with a warning.
``stage STAGING`` writes the files of a JSON object (relative name -> text) read on stdin under STAGING the same
way, directories 0700, and prints what it wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from .. import bounded
from ..bounded import run_bounded
from ..files import replace_file
from . import parameters

__all__ = [
    'LOCK_WAIT',
    'RESTART',
    'SHAPING_DIRECTORY',
    'check',
    'differs',
    'install',
    'instance_lock',
    'listeners_change',
    'lock_path',
    'postfix_check',
    'problems_of',
    'stage',
    'typed_problems',
    'types_of',
    'warnings',
]

LISTENER_SETTINGS = ('inet_interfaces', 'inet_protocols')
TOLERATED = re.compile(r'overriding earlier entry')
TABLE = re.compile(r'\b(texthash|pcre|regexp|cidr):(/[^\s,}]+)')
RESTART = 3
"""Exit code of ``check``: the staged configuration passed, but the instance needs a restart, not a reload."""

SHAPING_DIRECTORY = '/var/lib/mailinfra/shaping'
"""The shaping service's state directory; ``<instance>.lock`` there serialises every writer of the instance's files."""
LOCK_WAIT = 120.0
"""Seconds ``install`` waits for the shaping service's lock (a convergence takes about a second)."""

Runner = Callable[[Sequence[str]], 'subprocess.CompletedProcess[str]']
"""Runs a command and returns its exit code and captured output (injected by the tests)."""
TerminalRunner = Callable[[str], tuple[int, str]]
"""Runs ``postfix -c DIRECTORY check`` and returns its exit code and terminal output."""


def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return run_bounded(argv)


def warnings(stderr: str) -> list[str]:
    """The non-empty lines of ``stderr``, without the tolerated "overriding earlier entry" warnings."""
    return [line for line in stderr.splitlines() if line.strip() and not TOLERATED.search(line)]


def postfix_check(directory: str) -> tuple[int, str]:
    """``postfix -c DIR check`` with its output on a pseudo-terminal, so that it says why it failed; killed with its
    children after ``bounded.TIMEOUT`` seconds (exit code ``bounded.TIMED_OUT``) or when interrupted."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            ['postfix', '-c', directory, 'check'],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,  # its own process group: killed whole at the limit
        )
    except BaseException:
        os.close(controller)
        raise
    finally:
        os.close(terminal)
    output = b''
    deadline = time.monotonic() + bounded.TIMEOUT
    try:
        while select.select([controller], [], [], max(deadline - time.monotonic(), 0.0))[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not chunk:
                break
            output += chunk
        else:
            raise subprocess.TimeoutExpired(process.args, bounded.TIMEOUT)
        return process.wait(max(deadline - time.monotonic(), 0.0)), output.decode(errors='replace')
    except subprocess.TimeoutExpired:
        bounded.kill_group(process)
        note = f'postfix check: no answer within {bounded.TIMEOUT:g} s: killed'
        return bounded.TIMED_OUT, f'{output.decode(errors="replace")}{note}\n'
    except BaseException:  # interrupted: in its own session, nothing else stops it
        bounded.kill_group(process)
        raise
    finally:
        os.close(controller)


def types_of(directory: str, *, runner: Runner = run) -> parameters.Types:
    """The parameter defaults (including the per-transport ones of master.cf) and table types of this Postfix."""
    defaults = runner(['postconf', '-c', directory, '-d'])
    if defaults.returncode != 0:
        raise OSError(f'postconf -d failed: {defaults.stderr.strip()}')
    # postconf -m reads main.cf and exits on a bad number in it: ask with an empty configuration instead (the
    # table types come from the installed Postfix and dynamicmaps.cf, not from main.cf).
    with tempfile.TemporaryDirectory(prefix='mailinfra-postconf-') as empty:
        open(os.path.join(empty, 'main.cf'), 'w', encoding='utf-8').close()
        tables = runner(['postconf', '-c', empty, '-m'])
    if tables.returncode != 0:
        raise OSError(f'postconf -m failed: {tables.stderr.strip()}')
    return parameters.Types(
        defaults=dict(line.split(' = ', 1) for line in defaults.stdout.splitlines() if ' = ' in line),
        table_types=frozenset(tables.stdout.split()),
    )


def typed_problems(
    main: dict[str, str],
    overrides: str,
    types: parameters.Types,
    connector: parameters.Connector | None = parameters.reach,
) -> list[str]:
    """Values of main.cf (``postconf -n -x``) and of master.cf -o (``postconf -P -x``) of the wrong type."""
    problems: list[str] = []
    for name, value in sorted(main.items()):
        for reason in parameters.value_problems(name, value, types, connector=connector):
            problems.append(f'main.cf: {name} = {value}: {reason}')
    for line in overrides.splitlines():
        key, separator, value = line.partition(' = ')
        if not separator or key.count('/') != 2:
            continue
        service, kind, name = key.split('/')
        for reason in parameters.value_problems(name, value, types, connector=connector):
            problems.append(f'master.cf: service {service}/{kind}: -o {name}={value}: {reason}')
    return problems


def problems_of(
    directory: str,
    *,
    runner: Runner = run,
    terminal: TerminalRunner = postfix_check,
    connector: parameters.Connector | None = parameters.reach,
) -> list[str]:
    """Every reason why the configuration in ``directory`` must not be installed."""
    problems: list[str] = []
    settings = runner(['postconf', '-c', directory, '-n', '-x'])
    problems += [f'main.cf: {line}' for line in warnings(settings.stderr)]
    if settings.returncode != 0:
        problems.append(f'postconf -n failed with exit code {settings.returncode}')
    overrides = ''
    for option in ('-M', '-P'):
        services = runner(['postconf', '-c', directory, option, '-x'])
        problems += [f'master.cf: {line}' for line in warnings(services.stderr)]
        if services.returncode != 0:
            problems.append(f'postconf {option} failed with exit code {services.returncode}')
        elif option == '-P':
            overrides = services.stdout

    code, output = terminal(directory)
    if code != 0:
        reason = ' '.join(line.strip() for line in output.splitlines() if line.strip()) or 'no reason given'
        problems.append(f'postfix check failed: {reason}')

    values = dict(line.split(' = ', 1) for line in settings.stdout.splitlines() if ' = ' in line)
    problems += typed_problems(values, overrides, types_of(directory, runner=runner), connector)

    # Tables that exist but have lines Postfix would skip (a missing one is a typed problem above).
    for kind, path in sorted(set(TABLE.findall(settings.stdout + overrides))):
        if not os.path.isfile(path):
            continue
        lookup = runner(['postmap', '-c', directory, '-q', 'mailinfra-check@check.invalid', f'{kind}:{path}'])
        problems += [f'{kind}:{path}: {line}' for line in warnings(lookup.stderr)]

    for path in values.get('smtpd_tls_chain_files', '').replace(',', ' ').split():
        if not os.access(path, os.R_OK):
            problems.append(f'TLS file {path} (smtpd_tls_chain_files) is not readable')
    return problems


def listeners_change(live: str, staged: str, *, runner: Runner = run) -> bool:
    """Whether the staged listener settings differ from a live configuration that exists (printed if so)."""
    if not os.path.isfile(os.path.join(live, 'main.cf')):
        return False
    before = runner(['postconf', '-c', live, '-h', *LISTENER_SETTINGS]).stdout.split()
    after = runner(['postconf', '-c', staged, '-h', *LISTENER_SETTINGS]).stdout.split()
    if before != after:
        print(f'{" ".join(LISTENER_SETTINGS)}: {before} -> {after}: restart needed')
    return before != after


def check(
    staged: str,
    live: str,
    *,
    runner: Runner = run,
    terminal: TerminalRunner = postfix_check,
    connect: bool = True,
) -> int:
    """Exit code of ``check``: 1 with the problems on stderr, ``RESTART`` or 0."""
    connector = parameters.reach if connect else None
    problems = problems_of(staged, runner=runner, terminal=terminal, connector=connector)
    for problem in problems:
        print(f'{staged}: {problem}', file=sys.stderr)
    if problems:
        return 1
    return RESTART if listeners_change(live, staged, runner=runner) else 0


def _same(first: str, second: str) -> bool:
    if not os.path.isfile(second):
        return False
    with open(first, 'rb') as one, open(second, 'rb') as other:
        return one.read() == other.read()


def differs(staged: str, live: str, files: Sequence[str]) -> bool:
    """Whether any of ``files`` (all of ``staged`` when none are named) differs between ``staged`` and ``live``."""
    names = list(files) or sorted(os.listdir(staged))
    return not all(_same(os.path.join(staged, name), os.path.join(live, name)) for name in names)


def lock_path(directory: str, instance: str) -> str:
    """The lock file of ``instance`` (``postfix-marketing``) in the shaping state ``directory``."""
    return os.path.join(directory, f'{instance}.lock')


@contextlib.contextmanager
def instance_lock(live: str, *, directory: str = SHAPING_DIRECTORY, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the shaping service's lock of the instance configured in ``live`` (``/etc/<instance>``) for up to
    ``wait`` seconds (else :class:`TimeoutError`); no lock when ``directory`` does not exist."""
    if not os.path.isdir(directory):
        yield
        return
    path = lock_path(directory, os.path.basename(os.path.normpath(live)))
    with open(path, 'a') as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    message = f'{path} still locked after {wait:g} s (a shaping convergence)'
                    raise TimeoutError(message) from None
                time.sleep(0.05)
        yield  # closing the file releases the lock


def install(
    staged: str,
    live: str,
    files: Sequence[str],
    *,
    lock_directory: str = SHAPING_DIRECTORY,
    wait: float = LOCK_WAIT,
    strict: bool = False,
) -> int:
    """Copy each named file that differs from ``staged`` into ``live`` atomically, under the instance's shaping
    lock (:func:`instance_lock`); print the replaced paths.

    A lock still held after ``wait`` seconds raises TimeoutError when ``strict``; otherwise (the role) the files are
    installed without it, with a warning on stderr. Failing would stop the play with other instances installed and
    never reloaded, and a service that held the lock that long is past its renames (rescheduling held mail) or hung.
    A name that is not relative (``/x``, ``..``, an empty part) is a ValueError before anything is installed.
    """
    _relative_names(files)
    try:
        with instance_lock(live, directory=lock_directory, wait=wait):
            _install_files(staged, live, files)
            return 0
    except TimeoutError as error:
        if strict:
            raise
        print(f'postfix-check install: warning: {error}; installing without it', file=sys.stderr)
    _install_files(staged, live, files)
    return 0


def _relative_names(names: Iterable[str]) -> None:
    """ValueError for the first name that could reach outside its directory."""
    for name in names:
        if name.startswith('/') or any(part in ('', '.', '..') for part in name.split('/')):
            raise ValueError(f'{name!r}: not a relative file name')


def _install_files(staged: str, live: str, files: Sequence[str]) -> None:
    for name in files:
        source, target = os.path.join(staged, name), os.path.join(live, name)
        if _same(source, target):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        replace_file(target, Path(source).read_bytes(), mode=0o644)
        print(target)


def stage(staging: str, files: Mapping[str, str]) -> int:
    """Write ``files`` (relative name -> text) under ``staging``; print the paths whose content or mode changed.

    The postfix role renders every instance's files on the controller and stages them in one call (one
    template task per file costs seconds each over a connection without pipelining). Directories are created
    mode 0700, files are written like ``install`` (atomic, 0644) and only when their bytes or mode differ.
    """
    _relative_names(files)
    os.makedirs(os.path.dirname(os.path.normpath(staging)), exist_ok=True)
    for name in sorted(files):
        parts = name.split('/')
        for depth in range(len(parts)):
            directory = os.path.join(staging, *parts[:depth])
            if not os.path.isdir(directory):
                os.mkdir(directory, 0o700)
            os.chmod(directory, 0o700)
        target, content = os.path.join(staging, name), files[name].encode()
        if os.path.isfile(target) and stat.S_IMODE(os.stat(target).st_mode) == 0o644:
            with open(target, 'rb') as current:
                if current.read() == content:
                    continue
        replace_file(target, content, mode=0o644)
        print(target)
    return 0
