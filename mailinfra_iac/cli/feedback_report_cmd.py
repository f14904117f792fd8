"""``mailinfra feedback report``: daily bounce, complaint, deferral and delivery rates from the feedback store.

Reads the store the hosts' ingest writes (a SQLite file, or the shared PostgreSQL), never changes it. Exit 0 when
the report is written, 1 when it cannot be (database unreachable, no feedback table, unwritable output), 2 on
usage errors (a bad date, or a store argument that names no mailinfra store). See docs/feedback-report.md.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from mailinfra_agent.contract import Store
from mailinfra_agent.store import Database, NoStore, StoreError, connect

from ..feedback_report import as_csv, as_html, as_json, as_table, build_report
from ..feedback_report.html import chart_days
from ..feedback_report.stores import open_sqlite_stores
from ..feedback_report.warmup_chart import warmup_section
from ..problems import MailinfraError

if TYPE_CHECKING:
    from .. import api

FORMATS = ('table', 'csv', 'json', 'html')


def day(text: str) -> date:
    """``--from``/``--to``: an ISO date, ``YYYY-MM-DD`` (a usage error otherwise)."""
    try:
        if not re.fullmatch(r'\d{4}-\d{2}-\d{2}', text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a date: expected YYYY-MM-DD, e.g. 2026-11-30') from None


def sqlite_store(text: str) -> str:
    """``--store``: ``sqlite:PATH``."""
    prefix = 'sqlite:'
    if not text.startswith(prefix) or len(text) == len(prefix):
        raise argparse.ArgumentTypeError(
            f'"{text}": expected sqlite:PATH (for PostgreSQL use --dsn and --password-file)'
        )
    return text[len(prefix) :]


def open_store(args: argparse.Namespace) -> Database:
    """The store(s) named on the command line, opened read-only (never created, migrated or converted); a usage
    error (exit 2) when one is missing or not a mailinfra store, a clear error when it cannot be opened."""
    try:
        if args.store is not None and len(args.store) > 1:
            # Several hosts' stores (playbooks/feedback-collect.yml), read as one.
            return open_sqlite_stores([Path(path) for path in args.store])
        if args.store is not None:
            return connect(Store('sqlite', path=args.store[0]), read_only=True)
        return connect(Store('postgresql', dsn=args.dsn, password_file=args.password_file), read_only=True)
    except NoStore as error:
        parser: argparse.ArgumentParser = args.parser
        parser.error(str(error))  # exit 2
    except StoreError as error:
        raise MailinfraError(f'cannot open the store{"s" if len(args.store or ()) > 1 else ""}: {error}') from None


def write_atomic(path: Path, text: str) -> None:
    """Readers see the old file or the whole new one (a temporary file renamed over it)."""
    directory = path.parent if str(path.parent) else Path('.')
    try:
        fd, name = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=directory)
    except OSError as error:
        raise MailinfraError(f'cannot write {path}: {error.strerror or error}') from None
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='') as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
        os.replace(name, path)
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        raise MailinfraError(f'cannot write {path}: {error.strerror or error}') from None


def cmd_report(args: argparse.Namespace) -> int:
    if args.password_file is not None and args.dsn is None:
        args.parser.error('--password-file goes with --dsn')
    if args.first is not None and args.last is not None and args.first > args.last:
        args.parser.error(f'--from {args.first} is after --to {args.last}')
    spec: api.Spec | None = None
    if args.spec:
        # only with --spec: the model, pydantic and the checks (tests/cli/test_startup.py)
        from .. import api

        spec = api.load_spec(args.spec)
    thresholds = spec.deployment.monitoring.rates.default if spec else None
    with open_store(args) as db:
        try:
            db.execute('SELECT 1 FROM feedback_events WHERE 1 = 0')
        except StoreError:
            raise MailinfraError(
                'the store has no feedback_events table: it is not a feedback store, or its schema is older than '
                'migration 0002 (the ingest service migrates it when it starts)'
            ) from None
        try:
            report = build_report(db, args.first, args.last)
        except StoreError as error:
            raise MailinfraError(f'cannot read the store: {error}') from None
    if args.format == 'csv':
        text = as_csv(report)
    elif args.format == 'json':
        text = as_json(report)
    elif args.format == 'html':
        sections: list[str] = []
        if spec:
            from ..facts.warmup import warmup_plan

            warmup = warmup_plan(spec.deployment, spec.facts.streams)
            sections = warmup_section(warmup, report, chart_days(report)) if warmup and warmup.days else []
        text = as_html(report, thresholds, sections=sections)
    else:
        text = as_table(report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_atomic(Path(args.output), text)
    return 0


def add_report(feedback_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = feedback_sub.add_parser(
        'report',
        help='daily bounce, complaint, deferral and delivery rates per stream, sending IP, ISP and segment',
        description='Reads the feedback store (read only) and reports, per UTC day, stream, sending IP, ISP and '
        'list segment, the counts, rates and top diagnostic reasons. See docs/feedback-report.md.',
    )
    where = report.add_mutually_exclusive_group(required=True)
    where.add_argument(
        '--store',
        type=sqlite_store,
        action='append',
        metavar='sqlite:PATH',
        help="a SQLite store file; repeat it for several hosts' stores (reported as one)",
    )
    where.add_argument('--dsn', help='the shared PostgreSQL store: a libpq connection string without a password')
    report.add_argument('--password-file', metavar='FILE', help='with --dsn: a 0600 file holding the password')
    report.add_argument('--from', dest='first', type=day, metavar='DATE', help='first day (UTC), YYYY-MM-DD')
    report.add_argument('--to', dest='last', type=day, metavar='DATE', help='last day (UTC, inclusive), YYYY-MM-DD')
    report.add_argument('--format', choices=FORMATS, default='table')
    report.add_argument('--output', metavar='FILE', help='write here (atomically) instead of standard output')
    report.add_argument('--spec', help='a deployment spec: its monitoring.rates thresholds are drawn in the HTML')
    report.set_defaults(func=cmd_report, parser=report)
