//! The OS keychain through the `keyring` crate (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows).
//!
//! A keychain is trusted only after a probe writes a random value, reads it back and deletes
//! it. Calls run on a separate thread with a deadline, because a Secret Service without an
//! unlock agent can block indefinitely.

use std::sync::mpsc;
use std::time::Duration;

use rand::RngCore;

use crate::secret::{ExposeSecret, SecretString};

/// The keychain service name under which the master key is stored.
pub const SERVICE: &str = "agentsecrets-connect";
/// The account name of the master key entry.
pub const MASTER_KEY_ACCOUNT: &str = "master-key";
const DEADLINE: Duration = Duration::from_secs(5);

/// Why the keychain could not be used, in words for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeychainError {
    #[error("no entry")]
    NoEntry,
    #[error("{0}")]
    Unavailable(String),
}

fn with_deadline<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
        Err(KeychainError::Unavailable(
            "the keychain did not answer within 5 s".into(),
        ))
    })
}

fn map_err(err: keyring::Error) -> KeychainError {
    match err {
        keyring::Error::NoEntry => KeychainError::NoEntry,
        other => KeychainError::Unavailable(other.to_string()),
    }
}

/// Writes, reads back and deletes a random probe entry.
pub fn probe() -> Result<(), KeychainError> {
    with_deadline(|| {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        let value = hex::encode(bytes);
        let entry = keyring::Entry::new(SERVICE, &format!("probe-{value}")).map_err(map_err)?;
        entry.set_password(&value).map_err(map_err)?;
        let read = entry.get_password().map_err(map_err);
        let _ = entry.delete_credential();
        match read {
            Ok(read) if read == value => Ok(()),
            Ok(_) => Err(KeychainError::Unavailable(
                "the probe read back a different value".into(),
            )),
            Err(err) => Err(err),
        }
    })
}

/// Reads the master key material.
pub fn read_master() -> Result<SecretString, KeychainError> {
    with_deadline(|| {
        let entry = keyring::Entry::new(SERVICE, MASTER_KEY_ACCOUNT).map_err(map_err)?;
        entry
            .get_password()
            .map(SecretString::from)
            .map_err(map_err)
    })
}

/// Stores the master key material, replacing what the entry held.
pub fn write_master(material: &SecretString) -> Result<(), KeychainError> {
    let material = SecretString::from(material.expose_secret().to_owned());
    with_deadline(move || {
        let entry = keyring::Entry::new(SERVICE, MASTER_KEY_ACCOUNT).map_err(map_err)?;
        entry
            .set_password(material.expose_secret())
            .map_err(map_err)
    })
}
