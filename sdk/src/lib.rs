//! AgentSecrets Connect for partners: the wire types of the v1 API.
//!
//! These types are the one definition of the JSON the API speaks: the server serialises them
//! and derives its OpenAPI document from them (feature `openapi`), and clients deserialise them.
//! None of them has a field that carries a credential value back to a caller; the only secret
//! ever returned is a newly minted API key, once, in [`types::CreatedApiKey`].
//!
//! The typed async client and the mock client are not part of this crate yet.

pub mod types;
