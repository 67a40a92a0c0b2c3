-- FacePay checkout server schema, version 1 (PostgreSQL).
CREATE TABLE merchants (
    merchant_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    api_key_hash  BYTEA NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE orders (
    merchant_id         TEXT NOT NULL REFERENCES merchants (merchant_id),
    order_id            TEXT NOT NULL,
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    items_digest        BYTEA NOT NULL,
    client_token_hash   BYTEA NOT NULL UNIQUE,
    token_expires_at_ms BIGINT NOT NULL,
    paid                BIGINT NOT NULL DEFAULT 0,
    created_at_ms       BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, order_id)
);

CREATE TABLE enrollments (
    token_hash    BYTEA PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (merchant_id),
    account_id    TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    device_id        TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (merchant_id),
    account_id       TEXT NOT NULL,
    public_key       BYTEA NOT NULL,
    last_counter     BIGINT NOT NULL DEFAULT -1,
    registered_at_ms BIGINT NOT NULL
);

CREATE TABLE nonces (
    nonce         BYTEA PRIMARY KEY,
    merchant_id   TEXT NOT NULL,
    order_id      TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE payments (
    payment_id      TEXT PRIMARY KEY,
    merchant_id     TEXT NOT NULL,
    order_id        TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    amount_minor    BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    items_digest    BYTEA NOT NULL,
    nonce           BYTEA NOT NULL UNIQUE,
    counter         BIGINT NOT NULL,
    payload         BYTEA NOT NULL,
    signature       BYTEA NOT NULL,
    recorded_at_ms  BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);

CREATE TABLE payment_evidence (
    payment_id      TEXT PRIMARY KEY REFERENCES payments (payment_id),
    liveness        TEXT NOT NULL,
    challenges      TEXT NOT NULL,
    antispoof_score DOUBLE PRECISION,
    match_score     DOUBLE PRECISION NOT NULL,
    model_versions  TEXT NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    finished_at_ms  BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        BIGINT NOT NULL,
    response      BYTEA NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);
