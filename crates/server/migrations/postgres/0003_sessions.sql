-- Remote-support sessions (remote-access-api.md). Integer ids as the spec shows; times are
-- microseconds since the Unix epoch; the counters are written when a session closes. `replica`
-- names the server process (its data dir's `replica-id`) that binds the session's UDP port.
CREATE TABLE sessions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code            TEXT NOT NULL,
    tech_user_id    TEXT NOT NULL,
    customer_name   TEXT,
    customer_email  TEXT,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disconnected', 'closed')),
    udp_port        BIGINT NOT NULL,
    email_status    TEXT CHECK (email_status IN ('pending', 'sent', 'failed')),
    frames          BIGINT NOT NULL DEFAULT 0,
    bytes           BIGINT NOT NULL DEFAULT 0,
    dropped_packets BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    closed_at       BIGINT,
    replica         TEXT
);
-- A code belongs to one open session at a time, whatever the replica.
CREATE UNIQUE INDEX sessions_open_code ON sessions (code) WHERE status <> 'closed';
CREATE INDEX sessions_code ON sessions (code, id);
CREATE INDEX sessions_tech ON sessions (tech_user_id, id);
CREATE INDEX sessions_status ON sessions (status, created_at);
