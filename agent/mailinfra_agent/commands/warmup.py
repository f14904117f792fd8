"""``mailinfra-agent warmup powermta-apply``: today's warm-up caps into PowerMTA's live configuration.

Reads the baseline the powermta role rendered (``--baseline``), writes ``--config`` = baseline + today's caps
(``shaping.powermta_warmup``), and reloads PowerMTA when the bytes changed. The new text is checked with the
structural checker (and ``--validate`` when given) before it replaces the live file, atomically (temp + rename,
same owner and mode); a failed reload puts the old file back, so the next run tries again. Nothing is written when
the bytes are the same. The daily timer and the role run it.

Prints ``changed: ...`` or ``unchanged: ...`` (the role's changed_when reads it). Exit 0: applied or unchanged;
1: the new configuration fails a check or the reload failed (the old file stays); 2: the contract, the baseline,
the store or the live file cannot be used; 64: bad arguments.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..bounded import run_bounded
from ..contract import DEFAULT_CONTRACT_PATH, Contract
from ..files import replace_file
from ..powermta.checker import check_text
from ..shaping import warmup
from ..shaping.powermta_warmup import PowerMtaWarmupError, apply_caps, describe
from ..store import Database, StoreError, connect
from ._contract import load_or_report

NAME = 'warmup'
HELP = "Apply today's IP warm-up caps (PowerMTA: the live configuration from the rendered baseline)."

EXIT_CHECK = 1
EXIT_CANNOT = 2
EXIT_USAGE = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    apply = actions.add_parser(
        'powermta-apply',
        help="write the live PowerMTA configuration: the rendered baseline with today's caps",
        description=(__doc__ or '').replace('``', ''),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument('--contract', default=DEFAULT_CONTRACT_PATH, help='the contract (default: %(default)s)')
    apply.add_argument(
        '--baseline', default='/etc/pmta/config.rendered', help='what the role rendered (default: %(default)s)'
    )
    apply.add_argument('--config', default='/etc/pmta/config', help='the live configuration (default: %(default)s)')
    apply.add_argument(
        '--reload-command',
        default='/usr/sbin/pmta reload',
        help='run when the file changed (shell words, no shell; default: %(default)s)',
    )
    apply.add_argument('--no-reload', action='store_true', help='write the file only (the caller reloads)')
    apply.add_argument(
        '--validate',
        metavar='COMMAND',
        help='a further check of the new file before it replaces the live one; %%s: the file',
    )
    apply.add_argument('--now', help='the moment to compute the caps for, ISO 8601 with offset (default: now)')
    apply.set_defaults(run=run)


def _now(text: str | None) -> float:
    if text is None:
        return time.time()
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f'--now: "{text}" has no UTC offset')
    return moment.timestamp()


def _feedback_store(contract: Contract) -> Database | None:
    """The store to judge held days from; None when it does not exist yet (no events: no held day)."""
    store = contract.store
    if store.backend == 'sqlite' and store.path is not None and not Path(store.path).is_file():
        return None
    db = connect(store, read_only=True)
    if not db.has_tables(warmup.EVENTS_TABLE):
        db.close()
        return None
    return db


def _write(path: Path, text: str, like: Path) -> None:
    """Replace ``path`` by ``text`` atomically, with the owner and mode of ``like``."""
    replace_file(path, text.encode('utf-8'), like=like)


def _validate(command: str, text: str, directory: Path) -> str | None:
    """Run ``command`` (``%s``: a file holding ``text``); its output when it fails, else None."""
    with tempfile.NamedTemporaryFile('w', dir=directory, prefix='.warmup-check.', encoding='utf-8') as candidate:
        candidate.write(text)
        candidate.flush()
        argv = [word.replace('%s', candidate.name) for word in shlex.split(command)]
        try:
            result = run_bounded(argv)
        except OSError as error:
            return f'{argv[0]}: cannot run: {error.strerror}'
    if result.returncode == 0:
        return None
    return (result.stdout + result.stderr).strip() or f'exit {result.returncode}'


def run(args: argparse.Namespace) -> int:
    contract = load_or_report(args.contract)
    if contract is None:
        return EXIT_CANNOT
    try:
        now = _now(args.now)
    except ValueError as error:
        print(f'warmup: {error}', file=sys.stderr)
        return EXIT_USAGE
    baseline, config = Path(args.baseline), Path(args.config)
    try:
        text = baseline.read_text(encoding='utf-8')
        old = config.read_text(encoding='utf-8') if config.exists() else None
    except (OSError, UnicodeDecodeError) as error:
        print(
            f'warmup: cannot read {error.filename if isinstance(error, OSError) else baseline}: {error}',
            file=sys.stderr,
        )
        return EXIT_CANNOT
    try:
        db = _feedback_store(contract)
        try:
            caps = warmup.caps(contract, db, now)
        finally:
            if db is not None:
                db.close()
        new = apply_caps(text, contract, caps)
    except (warmup.WarmupError, PowerMtaWarmupError, StoreError) as error:
        print(f'warmup: {error}', file=sys.stderr)
        return EXIT_CANNOT
    summary = describe(caps, warmup.local_date(contract.warmup, now))
    if new == old:
        print(f'unchanged: {config} already has the caps of {summary}')
        return 0
    problems = check_text(new)
    failed = '\n'.join(f'  {problem}' for problem in problems) or (
        _validate(args.validate, new, config.parent) if args.validate else None
    )
    if failed:
        print(f'warmup: the new configuration fails the check, {config} stays as it is:\n{failed}', file=sys.stderr)
        return EXIT_CHECK
    try:
        _write(config, new, config if old is not None else baseline)
    except OSError as error:
        print(f'warmup: cannot write {config}: {error}', file=sys.stderr)
        return EXIT_CANNOT
    if not args.no_reload:
        argv = shlex.split(args.reload_command)
        try:
            result = run_bounded(argv)
        except OSError as error:
            result = subprocess.CompletedProcess(argv, 127, '', f'{argv[0]}: cannot run: {error.strerror}')
        if result.returncode != 0:
            if old is not None:
                _write(config, old, config)
            output = (result.stdout + result.stderr).strip()
            print(f'warmup: "{args.reload_command}" failed, the previous {config} is back: {output}', file=sys.stderr)
            return EXIT_CHECK
    print(f'changed: {config} written with the caps of {summary}' + ('' if args.no_reload else ', PowerMTA reloaded'))
    return 0
