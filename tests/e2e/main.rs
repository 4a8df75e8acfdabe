//! End-to-end tests: the real binary, a fresh database per test, SQLite and PostgreSQL.

mod peers;
mod support;

mod api_keys;
mod audit;
mod bad_input;
mod conformance;
mod crash;
mod hosted_paste;
mod master_key;
mod oauth;
mod operations;
mod peer_selftest;
mod proxy;
mod replicas;
mod rotation;
mod sdk;
mod sealing;
mod soak;
mod tenancy;
mod vaults;
mod webhooks;
