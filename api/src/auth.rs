//! The `Caller` extractor: `Authorization: Bearer <api key>` checked on every request against
//! the store, or against the replica's cache while the store revision says nothing changed.
//! Handlers then ask it for a [`Tenant`] with the scope they need.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use connect_broker::auth::{AuthError, Principal, Scope, Tenant};
use connect_broker::secret::SecretString;

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller.
pub struct Caller(pub Principal);

impl Caller {
    /// The tenant capability for `scope`, or 403.
    pub fn require(&self, scope: Scope) -> Result<Tenant, ApiError> {
        Ok(self.0.require(scope)?)
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let key = bearer_key(req);
        Box::pin(async move {
            let state =
                state.ok_or_else(|| ApiError::Broker(anyhow::anyhow!("state missing").into()))?;
            let key = key?;
            let revision = state.fleet.revision().map_err(ApiError::Broker)?;
            let principal = state
                .fleet
                .cache()
                .authenticate(&state.db, revision, &key)
                .await?;
            tracing::Span::current().record("partner_id", principal.partner_id());
            Ok(Caller(principal))
        })
    }
}

fn bearer_key(req: &HttpRequest) -> Result<SecretString, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Auth(AuthError::Missing))?;
    let text = value
        .to_str()
        .map_err(|_| ApiError::Auth(AuthError::Invalid))?;
    let (scheme, key) = text
        .split_once(' ')
        .ok_or(ApiError::Auth(AuthError::Invalid))?;
    if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
        return Err(ApiError::Auth(AuthError::Invalid));
    }
    Ok(SecretString::from(key.trim().to_owned()))
}
