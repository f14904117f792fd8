"""The feedback ingest service: Postfix and PowerMTA logs, DSN and ARF messages -> events in the store.

Crash-safe and idempotent: events have unique keys, and each batch is stored in one transaction with
the checkpoint of its source (``ingest.files`` follows log files across rotation, ``ingest.sources``
reads them and Maildirs, ``ingest.store`` writes with retries, ``ingest.service`` runs it all).
"""

# Defaults the command line shows, here so that ``ingest return-path-policy`` (spawned per smtpd connection) does
# not import the service to build its parser.
BATCH_LINES = 20_000
"""Lines per transaction at most (a follower stores what it finds sooner: a batch ends at the end of the file)."""
PIPE_KEEP_DIRECTORY = '/var/lib/mailinfra/pipe-kept'
"""Where ``ingest message`` keeps a message its parser failed on (a Maildir: ``ingest run --once --maildir`` reads
it again after a fix); ``--keep-dir`` names another."""
