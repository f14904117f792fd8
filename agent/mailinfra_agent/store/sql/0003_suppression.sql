-- Suppression list (issue 13). Times are Unix seconds. Addresses are lower case; address_hash is the hex
-- HMAC-SHA256 of the address under the deployment's hash key (Retention.hash_key_file), so that a row can keep
-- only the hash (address NULL) once the address itself is no longer needed.

-- One row per suppressed recipient and scope: a stream name, or '*' for every stream.
CREATE TABLE suppressions (
    scope TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    address TEXT,
    reason TEXT NOT NULL,
    category TEXT,
    source TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT,
    PRIMARY KEY (scope, address_hash),
    CHECK (reason IN ('hard-bounce', 'soft-bounce', 'complaint', 'unsubscribe', 'import', 'manual')),
    CHECK (expires IS NULL OR expires > created)
);

CREATE INDEX suppressions_address_hash ON suppressions (address_hash);

-- Final soft bounces (bounced or expired, a category with suppress_after) counted towards the stream's
-- threshold: one row per event, so an event applied twice counts once; distinct messages are counted.
CREATE TABLE suppression_soft_bounces (
    event_key TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    address_hash TEXT NOT NULL,
    category TEXT NOT NULL,
    message TEXT NOT NULL,
    time BIGINT NOT NULL
);

CREATE INDEX suppression_soft_bounces_recipient ON suppression_soft_bounces (scope, address_hash, category, time);

-- Webhook outbox: written in the transaction that adds the suppression, deleted once the receiver took it.
CREATE TABLE suppression_webhooks (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL,
    last_error TEXT,
    failed BIGINT
);

CREATE INDEX suppression_webhooks_due ON suppression_webhooks (failed, next_attempt);
