"""The feedback ingest service: Postfix and PowerMTA logs, DSN and ARF messages -> events in the store.

Crash-safe and idempotent: events have unique keys, and each batch is stored in one transaction with
the checkpoint of its source (``ingest.files`` follows log files across rotation, ``ingest.sources``
reads them and Maildirs, ``ingest.store`` writes with retries, ``ingest.service`` runs it all).
"""
