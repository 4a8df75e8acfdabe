//! The engine's error type: what went wrong, in terms the HTTP layer maps to one status each.
//! Causes that must not reach a client (database errors, key failures) are carried as sources
//! for the log.

use crate::keys::KeyError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist or belongs to another partner; the two look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique rule was violated; `existing_id` names the object that already holds it.
    #[error("{what} already exists")]
    Conflict {
        what: &'static str,
        existing_id: Option<String>,
    },
    /// Input that passed parsing but breaks a rule. `field` names where.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The object is in a state that does not allow the operation.
    #[error("{0}")]
    State(&'static str),
    /// An `Idempotency-Key` was used before with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// A request with the same `Idempotency-Key` is still being processed.
    #[error("a request with this idempotency key is in progress")]
    IdempotencyInProgress,
    /// Key management or sealing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database failed.
    #[error("storage error")]
    Store(#[from] sqlx::Error),
    /// Anything else unexpected, with context.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
