#!/opt/mailinfra-agent/bin/python
"""Print the host store's feedback events as JSON (one list), read only; or its suppression list; or copy the store.

Usage: store_events.py [--suppressions | --copy DEST]     (the store path is the contract's store.path)

--suppressions prints the suppression list's rows (scope, address, address_hash, reason, source) instead.
--copy writes a consistent copy (SQLite's online backup, WAL content included) for the controller's report.
"""

import json
import sqlite3
import sys

COLUMNS = ('kind', 'status', 'recipient', 'stream', 'category', 'dsn', 'smtp_code', 'feedback_type', 'source')
SUPPRESSION_COLUMNS = ('scope', 'address', 'address_hash', 'reason', 'source')


def main() -> None:
    with open('/etc/mailinfra/agent.json', encoding='utf-8') as handle:
        path = json.load(handle)['store']['path']
    source = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    if len(sys.argv) == 3 and sys.argv[1] == '--copy':
        with sqlite3.connect(sys.argv[2]) as copy:
            source.backup(copy)
        return
    if sys.argv[1:] == ['--suppressions']:
        columns, query = SUPPRESSION_COLUMNS, 'FROM suppressions ORDER BY scope, address_hash'
    else:
        columns, query = COLUMNS, 'FROM feedback_events ORDER BY time, key'
    rows = source.execute(f'SELECT {", ".join(columns)} {query}').fetchall()
    json.dump([dict(zip(columns, row, strict=True)) for row in rows], sys.stdout, indent=1)


if __name__ == '__main__':
    main()
