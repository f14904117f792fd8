-- PostgreSQL variant of 0002_feedback_events.sql (keep the two in step): the same tables, and feedback_events
-- gets an insert sequence "seq" (SQLite's rowid plays that part) for readers that follow new events.
-- Feedback (issue 13): the events ingest reads from logs, DSNs and complaints, and its bookkeeping.
-- Times are Unix seconds.

-- One row per event (mailinfra_agent.feedback.events.Event); the key makes a re-read line change nothing.
CREATE TABLE feedback_events (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    recipient TEXT NOT NULL,
    source TEXT NOT NULL,
    stream TEXT,
    queue_id TEXT,
    sending_ip TEXT,
    sender TEXT,
    isp TEXT,
    smtp_code TEXT,
    dsn TEXT,
    diagnostic TEXT,
    relay TEXT,
    delay DOUBLE PRECISION,
    message_id TEXT,
    segment TEXT,
    campaign TEXT,
    category TEXT,
    feedback_type TEXT,
    seq BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE INDEX feedback_events_seq ON feedback_events (seq);

-- The report groups by day and stream, ISP or segment; suppression and erasure look up a recipient.
CREATE INDEX feedback_events_time ON feedback_events (time);
CREATE INDEX feedback_events_stream_time ON feedback_events (stream, time);
CREATE INDEX feedback_events_isp_time ON feedback_events (isp, time);
CREATE INDEX feedback_events_recipient ON feedback_events (recipient);
CREATE INDEX feedback_events_message_id ON feedback_events (message_id);

-- What the log says about a queued message (cleanup: message-id, qmgr: from), to fill in delivery events.
CREATE TABLE feedback_messages (
    host TEXT NOT NULL,
    stream TEXT NOT NULL,
    queue_id TEXT NOT NULL,
    sender TEXT,
    message_id TEXT,
    time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host, stream, queue_id)
);

CREATE INDEX feedback_messages_message_id ON feedback_messages (message_id);

-- How far ingest has read each log file: its identity (device, inode, hash of the first line) and the byte
-- position after the last whole line stored (and that line's number). Advanced in the transaction that stores the events.
CREATE TABLE ingest_checkpoints (
    host TEXT NOT NULL,
    source TEXT NOT NULL,
    device BIGINT NOT NULL,
    inode BIGINT NOT NULL,
    first_line TEXT NOT NULL,
    position BIGINT NOT NULL,
    line BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (host, source)
);

-- Maildir messages already stored (the name without the ":2,..." flags), so a message is read once.
CREATE TABLE ingest_maildir (
    host TEXT NOT NULL,
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    done BIGINT NOT NULL,
    PRIMARY KEY (host, source, name)
);

-- Input ingest could not read, counted per host, kind of source and reason (the metric's labels).
CREATE TABLE ingest_problems (
    host TEXT NOT NULL,
    source_kind TEXT NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    last_location TEXT NOT NULL,
    last_seen BIGINT NOT NULL,
    PRIMARY KEY (host, source_kind, reason)
);
