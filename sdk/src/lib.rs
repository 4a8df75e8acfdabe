//! AgentSecrets Connect for partners: the wire types of the v1 API.
//!
//! These types are the one definition of the JSON the API speaks: the server serialises them
//! and derives its OpenAPI document from them (feature `openapi`), and clients deserialise them.
//! None of them has a field that carries a credential value back to a caller; the only secret
//! ever returned is a newly minted API key or webhook signing secret, once, in
//! [`types::CreatedApiKey`] and [`types::CreatedWebhook`].
//!
//! [`webhooks`] verifies the signature of a webhook a receiver got.
//!
//! The typed async client and the mock client are not part of this crate yet.

pub mod types;
pub mod webhooks;
