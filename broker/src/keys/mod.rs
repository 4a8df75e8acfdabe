//! The key hierarchy: a versioned master key outside the database wraps one age identity per
//! vault; a vault's identity opens the credentials sealed to its public recipient.
//!
//! - [`source`]: where the master key lives (keychain, file, environment) and how it is loaded.
//! - [`master`]: the loaded master key ring and vault-key wrapping.
//! - [`change`]: adding and removing versions in a source (rotation, retirement).
//! - [`live`]: the ring a running server holds, reloaded when the database lists a new version.
//! - [`seal`]: sealing and opening with a binding checked on every open.

pub mod change;
pub mod keychain;
pub mod live;
pub mod master;
pub mod seal;
pub mod source;

pub use master::{MasterKeyRing, VaultKeyPair};
pub use seal::Binding;
pub use source::{KeySource, LoadOutcome};

/// Failures of key management and sealing. None of them carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key source {source_name} is unavailable: {reason}")]
    SourceUnavailable { source_name: String, reason: String },
    #[error("master key source {source_name} already holds a key; refusing to overwrite it")]
    AlreadyExists { source_name: String },
    #[error("master key source {source_name} holds malformed key material: {reason}")]
    Malformed { source_name: String, reason: String },
    #[error(
        "the database was sealed with master key {version} ({recipient}), which source {source_name} does not hold"
    )]
    Mismatch {
        version: String,
        recipient: String,
        source_name: String,
    },
    #[error("master key version {0} is not loaded")]
    UnknownVersion(String),
    #[error("sealed data does not belong here (binding mismatch)")]
    BindingMismatch,
    #[error("sealed data could not be opened")]
    Open,
    #[error("sealing failed")]
    Seal,
    #[error("the vault key has been destroyed")]
    VaultKeyDestroyed,
}
