-- Ingest speed (issue 13): two indexes of migration 0002 that no query reads. Each took random keys, so every
-- ingest transaction rewrote pages all over them. Nothing looks events up by recipient (suppression reads by time,
-- retention by time; an erasure by address would scan), and nothing looks message records up by Message-ID
-- (complaints are resolved through feedback_events_message_id; records are read by their primary key).
DROP INDEX IF EXISTS feedback_events_recipient;
DROP INDEX IF EXISTS feedback_messages_message_id;
