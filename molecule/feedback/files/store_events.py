#!/opt/mailinfra-agent/bin/python
"""Print the host store's feedback events as JSON (one list), read only; or copy the store.

Usage: store_events.py [--copy DEST]     (the store path is the contract's store.path)

--copy writes a consistent copy (SQLite's online backup, WAL content included) for the controller's report.
"""

import json
import sqlite3
import sys

COLUMNS = ('kind', 'status', 'recipient', 'stream', 'category', 'dsn', 'smtp_code', 'feedback_type')


def main() -> None:
    with open('/etc/mailinfra/agent.json', encoding='utf-8') as handle:
        path = json.load(handle)['store']['path']
    source = sqlite3.connect(f'file:{path}?mode=ro', uri=True)
    if len(sys.argv) == 3 and sys.argv[1] == '--copy':
        with sqlite3.connect(sys.argv[2]) as copy:
            source.backup(copy)
        return
    rows = source.execute(f'SELECT {", ".join(COLUMNS)} FROM feedback_events ORDER BY time, key').fetchall()
    json.dump([dict(zip(COLUMNS, row, strict=True)) for row in rows], sys.stdout, indent=1)


if __name__ == '__main__':
    main()
