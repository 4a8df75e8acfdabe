//! What the client sends besides the wire types: list filters and page positions, and the
//! two answers that hold a secret (a newly minted API key, a new webhook's signing secret).

use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::types::{
    ApiKey, ApiKeyList, AuditEvent, AuditList, Connection, ConnectionList, Vault, VaultList,
    Webhook, WebhookDelivery, WebhookDeliveryList, WebhookList,
};

/// `limit` and `cursor` of a list. Streams start from `cursor` and follow `next_cursor`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageParams {
    /// Page size, 1 to 100 (the server's default is 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(limit: u32) -> PageParams {
        PageParams {
            limit: Some(limit),
            cursor: None,
        }
    }

    pub(crate) fn push(&self, query: &mut Vec<(String, String)>) {
        if let Some(limit) = self.limit {
            query.push(("limit".into(), limit.to_string()));
        }
        if let Some(cursor) = &self.cursor {
            query.push(("cursor".into(), cursor.clone()));
        }
    }
}

/// Query of `GET /v1/vaults`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultParams {
    /// Only the vault of this end user.
    pub external_user_id: Option<String>,
    pub page: PageParams,
}

impl VaultParams {
    pub(crate) fn to_query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(user) = &self.external_user_id {
            query.push(("external_user_id".into(), user.clone()));
        }
        self.page.push(&mut query);
        query
    }
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditParams {
    pub vault_id: Option<String>,
    pub connection_id: Option<String>,
    /// An action such as `vault.created` or `proxy.request`.
    pub action: Option<String>,
    pub page: PageParams,
}

impl AuditParams {
    pub(crate) fn to_query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        for (name, value) in [
            ("vault_id", &self.vault_id),
            ("connection_id", &self.connection_id),
            ("action", &self.action),
        ] {
            if let Some(value) = value {
                query.push((name.into(), value.clone()));
            }
        }
        self.page.push(&mut query);
        query
    }
}

/// A page of a list answer: its items and where the next page starts.
pub trait Paged: DeserializeOwned + Send + 'static {
    type Item: Send + 'static;

    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

macro_rules! paged {
    ($($list:ty => $item:ty),* $(,)?) => {
        $(
            impl Paged for $list {
                type Item = $item;

                fn into_parts(self) -> (Vec<$item>, Option<String>) {
                    (self.data, self.next_cursor)
                }
            }
        )*
    };
}

paged!(
    VaultList => Vault,
    ConnectionList => Connection,
    AuditList => AuditEvent,
    ApiKeyList => ApiKey,
    WebhookList => Webhook,
    WebhookDeliveryList => WebhookDelivery,
);

/// Answer of `POST /v1/api-keys`: the key's metadata and, this once, the key as a secret.
///
/// `Debug` prints the metadata and `[REDACTED]` for the key; read it with
/// [`secrecy::ExposeSecret::expose_secret`].
#[derive(Debug)]
pub struct NewApiKey {
    pub key: ApiKey,
    pub api_key: SecretString,
}

/// Answer of `POST /v1/webhooks`: the endpoint and, this once, its signing secret as a secret.
///
/// `Debug` prints the endpoint and `[REDACTED]` for the secret; read it with
/// [`secrecy::ExposeSecret::expose_secret`] (for [`crate::webhooks::verify`]).
#[derive(Debug)]
pub struct NewWebhook {
    pub webhook: Webhook,
    pub secret: SecretString,
}
