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

-- One row per accepted payment: the signed payload, its evidence and the receipt sent back. Inserting a row is the
-- whole write of a payment: the trigger below checks and apply nonce consumption, the device counter, the order's
-- paid flag and the idempotency record inside the same statement, so it all commits or fails together.
CREATE TABLE payments (
    payment_id        TEXT PRIMARY KEY,
    merchant_id       TEXT NOT NULL,
    order_id          TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    amount_minor      BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    items_digest      BYTEA NOT NULL,
    nonce             BYTEA NOT NULL UNIQUE,
    counter           BIGINT NOT NULL,
    payload           BYTEA NOT NULL,
    signature         BYTEA NOT NULL,
    liveness          TEXT NOT NULL,
    challenges        TEXT NOT NULL,
    antispoof_score   DOUBLE PRECISION,
    match_score       DOUBLE PRECISION NOT NULL,
    model_versions    TEXT NOT NULL,
    started_at_ms     BIGINT NOT NULL,
    finished_at_ms    BIGINT NOT NULL,
    idem_key          TEXT NOT NULL,
    request_hash      BYTEA NOT NULL,
    idem_expires_at_ms BIGINT NOT NULL,
    receipt           BYTEA NOT NULL,
    recorded_at_ms    BIGINT NOT NULL,
    UNIQUE (merchant_id, order_id)
);

-- Idempotency keys of accepted payments (rejections store nothing), per merchant, until they expire.
CREATE TABLE idempotency_keys (
    merchant_id   TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    payment_id    TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (merchant_id, idem_key)
);

-- The error messages are the protocol's error codes; the server maps them back. Row locks taken by the conditional
-- updates make concurrent payments for the same nonce, device or order wait, then fail here.
CREATE FUNCTION facepay_record_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nonces SET used = 1 WHERE nonce = NEW.nonce AND used = 0;
    IF NOT FOUND THEN RAISE EXCEPTION 'nonce_reused'; END IF;
    UPDATE devices SET last_counter = NEW.counter WHERE device_id = NEW.device_id AND last_counter < NEW.counter;
    IF NOT FOUND THEN RAISE EXCEPTION 'counter_not_increasing'; END IF;
    UPDATE orders SET paid = 1 WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id AND paid = 0;
    IF NOT FOUND THEN RAISE EXCEPTION 'order_already_paid'; END IF;
    INSERT INTO idempotency_keys (merchant_id, idem_key, request_hash, payment_id, expires_at_ms)
        VALUES (NEW.merchant_id, NEW.idem_key, NEW.request_hash, NEW.payment_id, NEW.idem_expires_at_ms)
        ON CONFLICT (merchant_id, idem_key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, payment_id = EXCLUDED.payment_id,
                expires_at_ms = EXCLUDED.expires_at_ms
            WHERE idempotency_keys.expires_at_ms <= NEW.recorded_at_ms;
    IF NOT FOUND THEN RAISE EXCEPTION 'idempotency_conflict'; END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER payments_record BEFORE INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION facepay_record_payment();
