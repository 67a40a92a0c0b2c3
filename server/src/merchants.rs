//! Creating merchants: an id and an API key that is shown once and stored only as its SHA-256.

use serde::Serialize;

use crate::app::now_ms;
use crate::store::{Store, StoreError};
use crate::tokens::{self, API_KEY_PREFIX};

/// A newly created merchant. The API key is not stored anywhere else: hand it over now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMerchant {
    /// The merchant id.
    pub merchant_id: String,
    /// The merchant's display name.
    pub name: String,
    /// The secret API key (`fpk_…`), for `Authorization: Bearer`.
    pub api_key: String,
}

/// Creates a merchant with a fresh id and API key.
pub async fn create_merchant(store: &Store, name: &str) -> Result<NewMerchant, StoreError> {
    let merchant_id = tokens::new_id("m_");
    let api_key = tokens::new_token(API_KEY_PREFIX);
    let key_id = tokens::new_id("key_");
    store
        .insert_merchant(
            &merchant_id,
            name,
            &key_id,
            &tokens::token_hash(&api_key),
            now_ms(),
        )
        .await?;
    Ok(NewMerchant {
        merchant_id,
        name: name.to_owned(),
        api_key,
    })
}
