//! The OAuth broker: the provider catalog, discovery, the consent flow, token endpoint calls,
//! token-response parsing and single-flight refresh.

pub mod catalog;
pub mod discovery;
pub mod endpoint;
pub mod flow;
pub mod refresh;
pub mod token_response;
