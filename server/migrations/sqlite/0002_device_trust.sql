-- FacePay checkout server schema, version 2 (SQLite): registration challenges, device lifecycle and attestation,
-- failure counters and lock-outs shared by every server instance.

-- Single-use registration challenges, each bound to the enrolment token it was issued for.
CREATE TABLE registration_challenges (
    challenge     BLOB PRIMARY KEY,
    token_hash    BLOB NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

-- Revocation, and what the device's registration proved (attestation kind, security level, app, and the App Attest
-- key with its counter, kept for per-payment assertions).
ALTER TABLE devices ADD COLUMN revoked_at_ms BIGINT;
ALTER TABLE devices ADD COLUMN attestation TEXT NOT NULL DEFAULT 'none';
ALTER TABLE devices ADD COLUMN security_level TEXT;
ALTER TABLE devices ADD COLUMN app_id TEXT;
ALTER TABLE devices ADD COLUMN app_attest_key BLOB;
ALTER TABLE devices ADD COLUMN app_attest_counter BIGINT NOT NULL DEFAULT 0;
CREATE INDEX devices_by_account ON devices (merchant_id, account_id);

-- Challenges outstanding per device and per order (the challenge rate limits count them).
CREATE INDEX nonces_by_device ON nonces (device_id, expires_at_ms);
CREATE INDEX nonces_by_order ON nonces (merchant_id, order_id, expires_at_ms);

-- Failed attempts and lock-outs per subject ('device:<id>', 'account:<merchant>/<account>', 'order:<merchant>/<order>').
CREATE TABLE lockouts (
    subject         TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL DEFAULT 0
);

DROP TRIGGER payments_check;
CREATE TRIGGER payments_check BEFORE INSERT ON payments
BEGIN
    SELECT RAISE(ABORT, 'nonce_reused')
        WHERE NOT EXISTS (SELECT 1 FROM nonces WHERE nonce = NEW.nonce AND used = 0);
    SELECT RAISE(ABORT, 'device_revoked')
        WHERE EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id AND revoked_at_ms IS NOT NULL);
    SELECT RAISE(ABORT, 'counter_not_increasing')
        WHERE NOT EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id AND last_counter < NEW.counter);
    SELECT RAISE(ABORT, 'order_already_paid')
        WHERE NOT EXISTS (SELECT 1 FROM orders WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id AND paid = 0);
    SELECT RAISE(ABORT, 'idempotency_conflict')
        WHERE EXISTS (SELECT 1 FROM idempotency_keys WHERE merchant_id = NEW.merchant_id AND idem_key = NEW.idem_key
                      AND expires_at_ms > NEW.recorded_at_ms);
END;
