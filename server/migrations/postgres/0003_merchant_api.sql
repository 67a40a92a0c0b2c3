-- FacePay checkout server schema, version 3 (PostgreSQL): the merchant API after checkout. Order cancellation and
-- refunds, API keys that rotate, webhook endpoints with their secrets, the webhook outbox, and idempotency records
-- for every POST.

ALTER TABLE orders ADD COLUMN cancelled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN refunded_minor BIGINT NOT NULL DEFAULT 0;
-- GET /v1/payments: newest first, per merchant, with (recorded_at_ms, payment_id) as the cursor.
CREATE INDEX payments_by_merchant ON payments (merchant_id, recorded_at_ms, payment_id);

CREATE TABLE refunds (
    refund_id     TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL,
    payment_id    TEXT NOT NULL REFERENCES payments (payment_id),
    amount_minor  BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    reason        TEXT,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX refunds_by_payment ON refunds (payment_id, created_at_ms);

-- Merchant API keys (SHA-256 only). Several can be valid at once while a key is rotated; revoked or expired keys
-- stop working at once.
CREATE TABLE api_keys (
    key_hash      BYTEA PRIMARY KEY,
    key_id        TEXT NOT NULL UNIQUE,
    merchant_id   TEXT NOT NULL REFERENCES merchants (merchant_id),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT,
    revoked_at_ms BIGINT
);
INSERT INTO api_keys (key_hash, key_id, merchant_id, created_at_ms)
    SELECT api_key_hash, 'key_' || substr(merchant_id, 3), merchant_id, created_at_ms FROM merchants;

-- One webhook endpoint per merchant, and its signing secrets (kept as such: the server signs with them). During a
-- rotation the old secret stays valid until expires_at_ms and every delivery carries one signature per valid secret.
CREATE TABLE webhook_endpoints (
    merchant_id   TEXT PRIMARY KEY REFERENCES merchants (merchant_id),
    url           TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE webhook_secrets (
    secret        TEXT PRIMARY KEY,
    merchant_id   TEXT NOT NULL REFERENCES merchants (merchant_id),
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
);

-- The outbox: one row per event, written in the same transaction as the state change it reports, delivered at
-- least once by the server's webhook task. next_attempt_at_ms is NULL once delivery was given up.
CREATE TABLE webhook_events (
    event_id           TEXT PRIMARY KEY,
    merchant_id        TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    data               BYTEA NOT NULL,
    created_at_ms      BIGINT NOT NULL,
    attempts           BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    delivered_at_ms    BIGINT,
    last_error         TEXT
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at_ms) WHERE delivered_at_ms IS NULL;

-- The first response to a POST carrying an Idempotency-Key (other than /v1/checkout/pay, which has its own), per
-- scope (merchant, order or the device registration space), replayed for a retry with the same body.
CREATE TABLE idempotent_requests (
    scope         TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    route         TEXT NOT NULL,
    request_hash  BYTEA NOT NULL,
    status        BIGINT NOT NULL,
    body          BYTEA NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- A cancelled order cannot be paid. FOR UPDATE locks the order row, so a concurrent cancel either commits first
-- (and this payment fails here) or waits for this payment and then finds the order paid.
CREATE FUNCTION facepay_check_cancelled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM orders WHERE merchant_id = NEW.merchant_id AND order_id = NEW.order_id AND cancelled = 0
        FOR UPDATE;
    IF NOT FOUND THEN RAISE EXCEPTION 'order_cancelled'; END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER payments_check_cancelled BEFORE INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION facepay_check_cancelled();

-- payment.succeeded goes to the outbox with the payment, when the merchant has a webhook endpoint. The event id is
-- derived from the payment id, so it is unique and the same on every delivery.
CREATE FUNCTION facepay_payment_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_events (event_id, merchant_id, event_type, data, created_at_ms, next_attempt_at_ms)
        SELECT 'evt_' || substr(NEW.payment_id, 5), NEW.merchant_id, 'payment.succeeded', NEW.receipt,
               NEW.recorded_at_ms, NEW.recorded_at_ms
        WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE merchant_id = NEW.merchant_id);
    RETURN NEW;
END;
$$;
CREATE TRIGGER payments_event AFTER INSERT ON payments
    FOR EACH ROW EXECUTE FUNCTION facepay_payment_event();
