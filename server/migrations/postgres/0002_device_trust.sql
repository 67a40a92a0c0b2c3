-- FacePay checkout server schema, version 2 (PostgreSQL): registration challenges, device lifecycle and
-- attestation, failure counters and lock-outs shared by every server instance.

CREATE TABLE registration_challenges (
    challenge     BYTEA PRIMARY KEY,
    token_hash    BYTEA NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0
);

ALTER TABLE devices ADD COLUMN revoked_at_ms BIGINT;
ALTER TABLE devices ADD COLUMN attestation TEXT NOT NULL DEFAULT 'none';
ALTER TABLE devices ADD COLUMN security_level TEXT;
ALTER TABLE devices ADD COLUMN app_id TEXT;
ALTER TABLE devices ADD COLUMN app_attest_key BYTEA;
ALTER TABLE devices ADD COLUMN app_attest_counter BIGINT NOT NULL DEFAULT 0;
CREATE INDEX devices_by_account ON devices (merchant_id, account_id);

CREATE INDEX nonces_by_device ON nonces (device_id, expires_at_ms);
CREATE INDEX nonces_by_order ON nonces (merchant_id, order_id, expires_at_ms);

CREATE TABLE lockouts (
    subject         TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    window_start_ms BIGINT NOT NULL,
    locked_until_ms BIGINT NOT NULL DEFAULT 0
);

-- As in version 1, plus: a revoked device pays nothing.
CREATE OR REPLACE FUNCTION facepay_record_payment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE nonces SET used = 1 WHERE nonce = NEW.nonce AND used = 0;
    IF NOT FOUND THEN RAISE EXCEPTION 'nonce_reused'; END IF;
    UPDATE devices SET last_counter = NEW.counter
        WHERE device_id = NEW.device_id AND last_counter < NEW.counter AND revoked_at_ms IS NULL;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM devices WHERE device_id = NEW.device_id AND revoked_at_ms IS NOT NULL) THEN
            RAISE EXCEPTION 'device_revoked';
        END IF;
        RAISE EXCEPTION 'counter_not_increasing';
    END IF;
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
