"""Export the suppression list (CSV, JSON) and import a previous provider's list (CSV) with a report per line.

Export columns: scope, address, address_hash, reason, category, source, created, expires (times as
``YYYY-MM-DDTHH:MM:SSZ``). Import reads a CSV with a header: the address from the first of the columns
``address``, ``email``, ``email_address``, ``recipient`` (any case); optional ``scope`` or ``stream`` (else the
``--scope`` given, default ``*``), ``reason`` (one of ours, else ``import``) and ``created`` (ISO 8601 or Unix
seconds). So our own export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from .suppressions import ALL_STREAMS, REASONS, Entry, Reason, SuppressionList, address_problem, canonical_address

__all__ = ['CSV_COLUMNS', 'ImportLine', 'ImportReport', 'export_csv', 'export_json', 'import_csv']

CSV_COLUMNS = ('scope', 'address', 'address_hash', 'reason', 'category', 'source', 'created', 'expires')
ADDRESS_COLUMNS = ('address', 'email', 'email_address', 'recipient')
MAX_IMPORT_LINE = 4096


def _iso(seconds: int | None) -> str:
    return '' if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def _row(entry: Entry) -> dict[str, Any]:
    return {
        'scope': entry.scope,
        'address': entry.address,
        'address_hash': entry.address_hash,
        'reason': entry.reason,
        'category': entry.category,
        'source': entry.source,
        'created': _iso(entry.created),
        'expires': _iso(entry.expires) if entry.expires is not None else None,
    }


def export_csv(entries: Iterable[Entry]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for entry in entries:
        writer.writerow({name: '' if value is None else value for name, value in _row(entry).items()})
    return out.getvalue()


def export_json(entries: Iterable[Entry]) -> str:
    rows = [_row(entry) for entry in entries]
    return json.dumps({'count': len(rows), 'suppressions': rows}, indent=2, sort_keys=True) + '\n'


@dataclass(frozen=True)
class ImportLine:
    line: int
    address: str
    outcome: Literal['taken', 'skipped']
    why: str
    """``taken``: the scope; ``skipped``: invalid address (and why), duplicate, unknown stream, ..."""


@dataclass
class ImportReport:
    lines: list[ImportLine] = field(default_factory=list)
    problem: str | None = None
    """A problem with the whole file (no header, no address column); nothing was imported."""

    @property
    def taken(self) -> int:
        return sum(1 for line in self.lines if line.outcome == 'taken')

    @property
    def skipped(self) -> int:
        return sum(1 for line in self.lines if line.outcome == 'skipped')

    def text(self, name: str) -> str:
        if self.problem is not None:
            return f'{name}: {self.problem}; nothing imported\n'
        out = [f'{name}:{line.line}: {line.outcome} {line.address or "-"}: {line.why}\n' for line in self.lines]
        out.append(f'{name}: {self.taken} taken, {self.skipped} skipped\n')
        return ''.join(out)


def _created(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def import_csv(
    suppressions: SuppressionList,
    text: str,
    name: str,
    *,
    streams: Collection[str],
    scope: str = ALL_STREAMS,
    now: float,
) -> ImportReport:
    """Import ``text`` (the CSV file ``name``); every data line is either taken or skipped with its reason."""
    report = ImportReport()
    reader = csv.reader(io.StringIO(text))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        report.problem = 'the file is empty'
        return report
    except csv.Error as error:
        report.problem = f'line 1: unreadable CSV: {error}'
        return report
    column = next((header.index(candidate) for candidate in ADDRESS_COLUMNS if candidate in header), None)
    if column is None:
        report.problem = f'the header has no address column (one of: {", ".join(ADDRESS_COLUMNS)})'
        return report
    scope_column = next((header.index(name) for name in ('scope', 'stream') if name in header), None)
    reason_column = header.index('reason') if 'reason' in header else None
    created_column = header.index('created') if 'created' in header else None
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            fields: Sequence[str] = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            report.lines.append(ImportLine(reader.line_num, '', 'skipped', f'unreadable CSV: {error}'))
            continue
        number = reader.line_num
        if not any(value.strip() for value in fields):
            continue

        def value(index: int | None, row: Sequence[str] = fields) -> str:
            return row[index].strip() if index is not None and index < len(row) else ''

        address = canonical_address(value(column))
        line_scope = value(scope_column) or scope
        problem = address_problem(address)
        if problem is not None:
            report.lines.append(ImportLine(number, address[:254], 'skipped', f'invalid address: {problem}'))
            continue
        if line_scope != ALL_STREAMS and line_scope not in streams:
            report.lines.append(ImportLine(number, address, 'skipped', f'unknown stream "{line_scope}"'))
            continue
        if (line_scope, address) in seen:
            report.lines.append(ImportLine(number, address, 'skipped', 'duplicate: earlier in this file'))
            continue
        seen.add((line_scope, address))
        existing = suppressions.entries(line_scope, address=address)
        if existing:
            report.lines.append(
                ImportLine(number, address, 'skipped', f'duplicate: already suppressed ({existing[0].reason})')
            )
            continue
        given = value(reason_column)
        reason: Reason = next((known for known in REASONS if known == given), 'import')
        created = _created(value(created_column))
        entry = suppressions.add(
            line_scope, address, reason, f'import:{name}:{number}', created=now if created is None else created
        )
        if entry is None:  # added by someone else since the check above
            report.lines.append(ImportLine(number, address, 'skipped', 'duplicate: already suppressed'))
        else:
            report.lines.append(ImportLine(number, address, 'taken', f'scope {line_scope}, reason {reason}'))
    return report
