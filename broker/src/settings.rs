//! Partner settings: the return URLs a connect session may send the end user back to. A
//! `return_url` must equal one of them exactly — no prefix or pattern matching.

use crate::audit::{self, NewEvent};
use crate::auth::Tenant;
use crate::clock;
use crate::error::Error;
use crate::store::Db;

/// Most return URLs a partner may register.
pub const MAX_RETURN_URLS: usize = 20;

/// The tenant's allowed return URLs.
pub async fn return_urls(db: &Db, partner_id: &str) -> Result<Vec<String>, Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT allowed_return_urls FROM partner_settings WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_optional(db.pool())
            .await?;
    match row {
        Some((text,)) => serde_json::from_str(&text).map_err(|e| Error::Internal(e.into())),
        None => Ok(Vec::new()),
    }
}

/// Replaces the tenant's allowed return URLs. Each must be an absolute https URL (http only for
/// loopback) without a fragment.
pub async fn set_return_urls(
    db: &Db,
    tenant: &Tenant,
    urls: &[String],
) -> Result<Vec<String>, Error> {
    if urls.len() > MAX_RETURN_URLS {
        return Err(Error::invalid(
            "allowed_return_urls",
            format!("may list at most {MAX_RETURN_URLS} URLs"),
        ));
    }
    for text in urls {
        let url = url::Url::parse(text)
            .map_err(|_| Error::invalid("allowed_return_urls", "entries must be absolute URLs"))?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok || url.fragment().is_some() || !url.username().is_empty() || text.len() > 2000
        {
            return Err(Error::invalid(
                "allowed_return_urls",
                "entries must be https URLs (http only on loopback) without fragment or user information",
            ));
        }
    }
    let mut urls = urls.to_vec();
    urls.dedup();
    let text = serde_json::to_string(&urls).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO partner_settings (partner_id, allowed_return_urls, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (partner_id) DO UPDATE SET allowed_return_urls = $2, updated_at = $3",
    )
    .bind(tenant.partner_id())
    .bind(&text)
    .bind(clock::now_ms())
    .execute(&mut *tx)
    .await?;
    audit::append(
        &mut tx,
        tenant.partner_id(),
        NewEvent::lifecycle(tenant.actor(), "settings.updated"),
    )
    .await?;
    tx.commit().await?;
    Ok(urls)
}
