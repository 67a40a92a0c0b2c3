-- FacePay checkout server schema, version 1 (SQLite).
CREATE TABLE merchants (
    merchant_id   TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    api_key_hash  BLOB NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE orders (
    merchant_id         TEXT NOT NULL REFERENCES merchants (merchant_id),
    order_id            TEXT NOT NULL,
    amount_minor        BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    items_digest        BLOB NOT NULL,
    client_token_hash   BLOB NOT NULL UNIQUE,
    token_expires_at_ms BIGINT NOT NULL,
    paid                BIGINT NOT NULL DEFAULT 0,
    created_at_ms       BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, order_id)
);

CREATE TABLE enrollments (
    token_hash    BLOB PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (merchant_id),
    account_id    TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    device_id        TEXT PRIMARY KEY,
    merchant_id      TEXT NOT NULL REFERENCES merchants (merchant_id),
    account_id       TEXT NOT NULL,
    public_key       BLOB NOT NULL,
    last_counter     BIGINT NOT NULL DEFAULT -1,
    registered_at_ms BIGINT NOT NULL
);

CREATE TABLE nonces (
    nonce         BLOB PRIMARY KEY,
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
    items_digest    BLOB NOT NULL,
    nonce           BLOB NOT NULL UNIQUE,
    counter         BIGINT NOT NULL,
    payload         BLOB NOT NULL,
    signature       BLOB NOT NULL,
    recorded_at_ms  BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);

CREATE TABLE payment_evidence (
    payment_id      TEXT PRIMARY KEY REFERENCES payments (payment_id),
    liveness        TEXT NOT NULL,
    challenges      TEXT NOT NULL,
    antispoof_score REAL,
    match_score     REAL NOT NULL,
    model_versions  TEXT NOT NULL,
    started_at_ms   BIGINT NOT NULL,
    finished_at_ms  BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    status        BIGINT NOT NULL,
    response      BLOB NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);
