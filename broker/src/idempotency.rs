//! `Idempotency-Key` on creating POSTs.
//!
//! The key is recorded in the same transaction as the object it created, together with a hash
//! of the request and the new object's id. A retry with the same key and request answers with
//! that object; with a different request it is refused. A concurrent duplicate waits on the
//! first transaction's lock and then replays its result, so two objects are never created.

use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use crate::clock;
use crate::error::Error;
use crate::validate;

/// A validated idempotency key and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub operation: &'static str,
    pub request_hash: String,
}

impl Idempotency {
    /// `operation` names the endpoint; `request` is the canonical request body.
    pub fn new(
        key: &str,
        operation: &'static str,
        request: &serde_json::Value,
    ) -> Result<Self, Error> {
        validate::identifier("Idempotency-Key", key, 255)?;
        let mut hasher = Sha256::new();
        hasher.update(operation.as_bytes());
        hasher.update([0]);
        hasher.update(request.to_string().as_bytes());
        Ok(Idempotency {
            key: key.to_owned(),
            operation,
            request_hash: hex::encode(hasher.finalize()),
        })
    }
}

/// Claims the key for `resource_id`. Returns `Some(existing_id)` when an earlier request with
/// the same key and request already created an object; errors when the request differs.
/// Must be the first statement of the creating transaction.
pub async fn claim(
    conn: &mut AnyConnection,
    partner_id: &str,
    idem: &Idempotency,
    resource_id: &str,
) -> Result<Option<String>, Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (partner_id, idem_key, operation, request_hash, resource_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id, idem_key) DO NOTHING",
    )
    .bind(partner_id)
    .bind(&idem.key)
    .bind(idem.operation)
    .bind(&idem.request_hash)
    .bind(resource_id)
    .bind(clock::now_ms())
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(None);
    }
    let (operation, hash, existing): (String, String, String) = sqlx::query_as(
        "SELECT operation, request_hash, resource_id FROM idempotency_keys WHERE partner_id = $1 AND idem_key = $2",
    )
    .bind(partner_id)
    .bind(&idem.key)
    .fetch_one(&mut *conn)
    .await?;
    if operation != idem.operation || hash != idem.request_hash {
        return Err(Error::IdempotencyMismatch);
    }
    Ok(Some(existing))
}

/// Withdraws a claim this transaction made with [`claim`], when the object it was for turned
/// out not to be created; a later request with the key is then judged afresh.
pub async fn withdraw(
    conn: &mut AnyConnection,
    partner_id: &str,
    idem: &Idempotency,
) -> Result<(), Error> {
    sqlx::query("DELETE FROM idempotency_keys WHERE partner_id = $1 AND idem_key = $2")
        .bind(partner_id)
        .bind(&idem.key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
