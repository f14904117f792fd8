-- Ingest speed (issue 13): three indexes of migration 0002 that no query reads; each was written at every insert.
-- Nothing looks events up by recipient (suppression and retention read by time; an erasure by address would scan)
-- or filters them by ISP (the report groups by it over a time range), and nothing looks message records up by
-- Message-ID (complaints are resolved through feedback_events_message_id; records are read by their primary key).
DROP INDEX IF EXISTS feedback_events_recipient;
DROP INDEX IF EXISTS feedback_events_isp_time;
DROP INDEX IF EXISTS feedback_messages_message_id;
