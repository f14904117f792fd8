-- Shaping service (issue 14): active actions, trigger matches, warm-up delivery counts and action counters.
-- Times are Unix seconds (DOUBLE PRECISION is REAL in SQLite); the same SQL serves SQLite and PostgreSQL.
-- Every row names its host: one PostgreSQL store may serve several MTA hosts. The log checkpoints are
-- ingest_checkpoints rows whose source is "shaping:<path>".

-- The actions in force: one per host, stream, sending IP, ISP ('' for suspend_ip) and kind.
CREATE TABLE shaping_actions (
    host TEXT NOT NULL,
    stream TEXT NOT NULL,
    ip TEXT NOT NULL,
    isp TEXT NOT NULL,
    kind TEXT NOT NULL,
    failover INTEGER NOT NULL,
    since DOUBLE PRECISION NOT NULL,
    until DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,
    rule TEXT NOT NULL,
    PRIMARY KEY (host, stream, ip, isp, kind),
    CHECK (kind IN ('backoff', 'suspend', 'suspend_ip', 'cap')),
    CHECK (until > since)
);

-- Log lines that matched a rule (the event key makes a line read twice count once), for count-in-window triggers.
CREATE TABLE shaping_matches (
    host TEXT NOT NULL,
    event_key TEXT NOT NULL,
    stream TEXT NOT NULL,
    ip TEXT NOT NULL,
    isp TEXT NOT NULL,
    rule TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (host, event_key)
);

CREATE INDEX shaping_matches_trigger ON shaping_matches (host, stream, ip, isp, rule, time);

-- Deliveries per warming sending IP and ISP on one warm-up day (day_start: its midnight in the warm-up time
-- zone), for the daily caps.
CREATE TABLE shaping_deliveries (
    host TEXT NOT NULL,
    stream TEXT NOT NULL,
    ip TEXT NOT NULL,
    isp TEXT NOT NULL,
    day_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (host, stream, ip, isp, day_start)
);

-- How often an action was applied, extended, expired or released (the exporter's counter).
CREATE TABLE shaping_counters (
    host TEXT NOT NULL,
    stream TEXT NOT NULL,
    ip TEXT NOT NULL,
    isp TEXT NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (host, stream, ip, isp, kind, event),
    CHECK (event IN ('applied', 'extended', 'expired', 'released'))
);
