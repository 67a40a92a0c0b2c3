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

-- One row per accepted payment: the signed payload, its evidence and the receipt sent back. Inserting a row is the
-- whole write of a payment: the triggers below check and apply nonce consumption, the device counter, the order's
-- paid flag and the idempotency record inside the same statement, so it all commits or fails together.
CREATE TABLE payments (
    payment_id        TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    items_digest      BLOB NOT NULL,
    nonce             BLOB NOT NULL UNIQUE,
    counter           BIGINT NOT NULL,
    payload           BLOB NOT NULL,
    signature         BLOB NOT NULL,
    liveness          TEXT NOT NULL,
    challenges        TEXT NOT NULL,
    antispoof_score   REAL,
    match_score       REAL NOT NULL,
    model_versions    TEXT NOT NULL,
    started_at_ms     BIGINT NOT NULL,
    finished_at_ms    BIGINT NOT NULL,
    idem_key          TEXT NOT NULL,
    request_hash      BLOB NOT NULL,
    idem_expires_at_ms BIGINT NOT NULL,
    receipt           BLOB NOT NULL,
    recorded_at_ms    BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);

-- Idempotency keys of accepted payments (rejections store nothing), per merchant, until they expire.
CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    payment_id    TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);

-- The error messages are the protocol's error codes; the server maps them back.
CREATE TRIGGER payments_check BEFORE INSERT ON payments
BEGIN
    SELECT RAISE(ABORT, 'nonce_reused')
        WHERE NOT EXISTS (SELECT 1 FROM nonces WHERE nonce = NEW.nonce AND used = 0);
    SELECT RAISE(ABORT, 'counter_not_increasing')
        WHERE NOT EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id AND last_counter < NEW.counter);
    SELECT RAISE(ABORT, 'order_already_paid')
        WHERE NOT EXISTS (SELECT 1 FROM orders WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id AND paid = 0);
    SELECT RAISE(ABORT, 'idempotency_conflict')
        WHERE EXISTS (SELECT 1 FROM idempotency_keys WHERE merchant_id = NEW.merchant_id AND idem_key = NEW.idem_key
                      AND expires_at_ms > NEW.recorded_at_ms);
END;

CREATE TRIGGER payments_apply AFTER INSERT ON payments
BEGIN
    UPDATE nonces SET used = 1 WHERE nonce = NEW.nonce;
    UPDATE devices SET last_counter = NEW.counter WHERE device_id = NEW.device_id;
    UPDATE orders SET paid = 1 WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id;
    INSERT OR REPLACE INTO idempotency_keys (merchant_id, idem_key, request_hash, payment_id, expires_at_ms)
        VALUES (NEW.merchant_id, NEW.idem_key, NEW.request_hash, NEW.payment_id, NEW.idem_expires_at_ms);
END;
