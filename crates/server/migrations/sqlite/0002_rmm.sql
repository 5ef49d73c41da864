-- Customers with their API key, agents, the tasks they run, and scripts.
CREATE TABLE customers (
    id                 TEXT PRIMARY KEY NOT NULL,
    name               TEXT NOT NULL,
    address            TEXT,
    -- SHA-256 of the key (hex) for look-up, and the key sealed with secret.key for id.ini.
    api_key_hash       TEXT,
    api_key_sealed     TEXT,
    api_key_created_at BIGINT,
    api_key_last_used  BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_api_key ON customers (api_key_hash);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY NOT NULL,
    customer_id    TEXT REFERENCES customers (id),
    token_hash     TEXT NOT NULL,
    hostname       TEXT NOT NULL,
    ip_address     TEXT NOT NULL,
    port           BIGINT NOT NULL,
    capabilities   TEXT NOT NULL,
    version        TEXT NOT NULL,
    registered_at  BIGINT NOT NULL,
    last_heartbeat BIGINT,
    status         TEXT NOT NULL,
    system_info    TEXT
);
CREATE UNIQUE INDEX agents_token ON agents (token_hash);
CREATE INDEX agents_customer ON agents (customer_id);

CREATE TABLE tasks (
    id                TEXT PRIMARY KEY NOT NULL,
    agent_id          TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    command           TEXT NOT NULL,
    args              TEXT NOT NULL,
    shell_type        TEXT NOT NULL,
    timeout           BIGINT NOT NULL,
    working_directory TEXT,
    environment       TEXT,
    -- pending → running (delivered) → completed | failed
    status            TEXT NOT NULL,
    output            TEXT NOT NULL DEFAULT '',
    error             TEXT,
    exit_code         BIGINT,
    output_truncated  BIGINT NOT NULL DEFAULT 0,
    -- 1 once the agent's own result arrived; a second one is refused.
    reported          BIGINT NOT NULL DEFAULT 0,
    late_result       BIGINT NOT NULL DEFAULT 0,
    cancelled_by      TEXT,
    created_by        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    -- When a delivered task without a result is failed for its timeout.
    deadline          BIGINT
);
CREATE INDEX tasks_agent ON tasks (agent_id, created_at);
CREATE INDEX tasks_unfinished ON tasks (agent_id, reported, status);
CREATE INDEX tasks_deadline ON tasks (status, deadline);

CREATE TABLE scripts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    content     TEXT NOT NULL,
    script_type TEXT NOT NULL,
    customer_id TEXT REFERENCES customers (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX scripts_customer ON scripts (customer_id);
