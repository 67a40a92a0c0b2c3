//! The writes after checkout: refunds, cancelling an open order and replacing its client token. Each handler puts
//! these steps in one [`Store::write_all`] with its outbox event and idempotency record.

use super::statement::Statement;
use super::transaction::Step;
use super::{Conflict, Store};

/// A refund to record.
#[derive(Debug, Clone)]
pub struct NewRefund<'a> {
    /// New refund id.
    pub refund_id: &'a str,
    /// Merchant.
    pub merchant_id: &'a str,
    /// Refunded payment.
    pub payment_id: &'a str,
    /// Amount, minor units (> 0).
    pub amount_minor: i64,
    /// Currency (the payment's).
    pub currency: &'a str,
    /// Merchant's reason.
    pub reason: Option<&'a str>,
    /// Record time (Unix ms).
    pub created_at_ms: i64,
}

impl Store {
    /// The steps of a refund: raise the payment's refunded total (only while it stays within the amount, so
    /// concurrent refunds can never exceed it) and insert the refund row.
    pub fn refund_steps(refund: &NewRefund<'_>) -> Vec<Step> {
        vec![
            Step::must_affect(
                Statement::new(
                    "UPDATE payments SET refunded_minor = refunded_minor + $1 \
                     WHERE payment_id = $2 AND merchant_id = $3 AND refunded_minor + $1 <= amount_minor",
                )
                .bind(refund.amount_minor)
                .bind(refund.payment_id.to_owned())
                .bind(refund.merchant_id.to_owned()),
                Conflict::RefundExceedsRemaining,
            ),
            Step::any(
                Statement::new(
                    "INSERT INTO refunds (refund_id, merchant_id, payment_id, amount_minor, currency, reason, \
                     created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(refund.refund_id.to_owned())
                .bind(refund.merchant_id.to_owned())
                .bind(refund.payment_id.to_owned())
                .bind(refund.amount_minor)
                .bind(refund.currency.to_owned())
                .bind(refund.reason.map(str::to_owned))
                .bind(refund.created_at_ms),
            ),
        ]
    }

    /// The step that cancels an open order ([`Conflict::OrderNotOpen`] otherwise: the caller reads why).
    pub fn cancel_step(merchant_id: &str, order_id: &str) -> Step {
        Step::must_affect(
            Statement::new(
                "UPDATE orders SET cancelled = 1 \
                 WHERE merchant_id = $1 AND order_id = $2 AND paid = 0 AND cancelled = 0",
            )
            .bind(merchant_id.to_owned())
            .bind(order_id.to_owned()),
            Conflict::OrderNotOpen,
        )
    }

    /// The step that gives an open order a new client token (the old one stops working;
    /// [`Conflict::OrderNotOpen`] when it is not open).
    pub fn client_token_step(
        merchant_id: &str,
        order_id: &str,
        token_hash: &[u8],
        expires_at_ms: i64,
    ) -> Step {
        Step::must_affect(
            Statement::new(
                "UPDATE orders SET client_token_hash = $1, token_expires_at_ms = $2 \
                 WHERE merchant_id = $3 AND order_id = $4 AND paid = 0 AND cancelled = 0",
            )
            .bind(token_hash.to_vec())
            .bind(expires_at_ms)
            .bind(merchant_id.to_owned())
            .bind(order_id.to_owned()),
            Conflict::OrderNotOpen,
        )
    }
}
