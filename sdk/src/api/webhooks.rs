//! `/v1/webhooks`: the endpoints that hear about lifecycle changes (needs the `admin` scope).

use reqwest::Method;
use secrecy::SecretString;

use super::{ApiRequest, ConnectApi, List, fetch, segment};
use crate::error::Result;
use crate::query::{NewWebhook, PageParams};
use crate::types::{CreateWebhook, CreatedWebhook, Webhook, WebhookDeliveryList, WebhookList};

/// `/v1/webhooks`.
pub struct Webhooks<'a, A: ?Sized>(pub(super) &'a A);

impl<'a, A: ConnectApi + ?Sized> Webhooks<'a, A> {
    /// Registers an endpoint. Its signing secret is in the answer this once, as a secret.
    ///
    /// A retry after a lost answer replays the `Idempotency-Key`; the server then answers 409
    /// naming the endpoint rather than showing the secret twice.
    pub async fn create(&self, body: &CreateWebhook) -> Result<NewWebhook> {
        let request = ApiRequest::new(Method::POST, "/v1/webhooks".into()).json(body);
        let created: CreatedWebhook = fetch(self.0, request.map(ApiRequest::creating)).await?;
        Ok(NewWebhook {
            webhook: created.webhook,
            secret: SecretString::from(created.secret),
        })
    }

    /// The partner's endpoints (never with their secrets).
    pub fn list(&self, params: PageParams) -> List<'a, A, WebhookList> {
        let mut request = ApiRequest::new(Method::GET, "/v1/webhooks".into());
        params.push(&mut request.query);
        List::new(self.0, Ok(request))
    }

    pub async fn get(&self, webhook_id: &str) -> Result<Webhook> {
        let path = format!("/v1/webhooks/{}", segment(webhook_id)?);
        fetch(self.0, Ok(ApiRequest::new(Method::GET, path))).await
    }

    /// Deletes the endpoint, its secret and its pending deliveries; answers it as it was, with
    /// status `deleted`.
    pub async fn delete(&self, webhook_id: &str) -> Result<Webhook> {
        let path = format!("/v1/webhooks/{}", segment(webhook_id)?);
        fetch(self.0, Ok(ApiRequest::new(Method::DELETE, path))).await
    }

    /// The endpoint's deliveries, one per event, oldest event first.
    pub fn deliveries(
        &self,
        webhook_id: &str,
        params: PageParams,
    ) -> List<'a, A, WebhookDeliveryList> {
        let request = segment(webhook_id).map(|webhook_id| {
            let path = format!("/v1/webhooks/{webhook_id}/deliveries");
            let mut request = ApiRequest::new(Method::GET, path);
            params.push(&mut request.query);
            request
        });
        List::new(self.0, request)
    }
}
