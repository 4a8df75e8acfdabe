//! End-to-end tests: the real binary, a fresh database per test, SQLite and PostgreSQL.

mod support;

mod api_keys;
mod audit;
mod bad_input;
mod master_key;
mod operations;
mod sealing;
mod tenancy;
mod vaults;
