//! The HTTP face of AgentSecrets Connect: routes, authentication, problem details, hosted
//! pages, the OpenAPI document and the operator CLI. The engine lives in `connect_broker`.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
