//! End-to-end tests: the real binary, a fresh database per test, SQLite and PostgreSQL.

mod peers;
mod support;

mod api_keys;
mod audit;
mod bad_input;
mod master_key;
mod oauth;
mod operations;
mod peer_selftest;
mod proxy;
mod replicas;
mod sdk;
mod sealing;
mod tenancy;
mod vaults;
