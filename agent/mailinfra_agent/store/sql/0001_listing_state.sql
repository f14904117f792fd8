-- Blocklist history: one row per listing of a subject (a sending IP or a domain) in a zone.
-- Times are Unix seconds. A listing is open while "cleared" is NULL; at most one is open per subject and zone.
CREATE TABLE listing_state (
    subject TEXT NOT NULL,
    zone TEXT NOT NULL,
    codes TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    cleared BIGINT,
    PRIMARY KEY (subject, zone, first_seen),
    CHECK (last_seen >= first_seen),
    CHECK (cleared IS NULL OR cleared >= last_seen)
);

CREATE UNIQUE INDEX listing_state_open ON listing_state (subject, zone) WHERE cleared IS NULL;
