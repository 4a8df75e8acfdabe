//! Sealing: encrypt a secret to a vault's public recipient, with the place it belongs to bound
//! inside the plaintext.
//!
//! age has no associated data, so the plaintext carries its own binding: purpose, vault,
//! connection, integration and a version. [`open`] decrypts and then refuses the plaintext unless
//! its binding equals the one the caller derived from the row it read the blob from. A blob
//! copied into another row or another vault therefore never opens as that row's secret.
//!
//! Plaintext layout: `u32 big-endian binding length ‖ binding JSON ‖ secret bytes`.

use age::x25519::{Identity, Recipient};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::KeyError;
use crate::secret::{ExposeSecret, SecretBytes, secret_bytes};

/// Where a sealed blob belongs. Derived from the row on open, never trusted from the blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// What the secret is: `credential`, `vault_key`, `client_secret`.
    pub purpose: String,
    pub vault_id: Option<String>,
    pub connection_id: Option<String>,
    pub integration: Option<String>,
    /// Bumped when a secret in the same place is replaced (refresh), so an older blob written
    /// back into the row does not open.
    pub version: i64,
}

impl Binding {
    /// The binding of a credential stored on a connection row.
    pub fn credential(
        vault_id: &str,
        connection_id: &str,
        integration: &str,
        version: i64,
    ) -> Self {
        Binding {
            purpose: "credential".into(),
            vault_id: Some(vault_id.into()),
            connection_id: Some(connection_id.into()),
            integration: Some(integration.into()),
            version,
        }
    }

    /// A secret held for a partner-level object (`client_secret` of an integration,
    /// `pkce_verifier` of a connect session), sealed to master key `master_version`.
    pub fn partner_secret(
        purpose: &str,
        partner_id: &str,
        object: &str,
        master_version: i64,
    ) -> Self {
        Binding {
            purpose: purpose.into(),
            vault_id: None,
            connection_id: Some(format!("{partner_id}/{object}")),
            integration: None,
            version: master_version,
        }
    }

    /// The binding of a vault's private key wrapped by master key `master_version`.
    pub fn vault_key(vault_id: &str, master_version: i64) -> Self {
        Binding {
            purpose: "vault_key".into(),
            vault_id: Some(vault_id.into()),
            connection_id: None,
            integration: None,
            version: master_version,
        }
    }
}

/// Seals `secret` to `recipient`, binding it to `binding`. Needs only the public recipient.
pub fn seal(recipient: &Recipient, binding: &Binding, secret: &[u8]) -> Result<Vec<u8>, KeyError> {
    let header = serde_json::to_vec(binding).map_err(|_| KeyError::Seal)?;
    let header_len = u32::try_from(header.len()).map_err(|_| KeyError::Seal)?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(4 + header.len() + secret.len()));
    plaintext.extend_from_slice(&header_len.to_be_bytes());
    plaintext.extend_from_slice(&header);
    plaintext.extend_from_slice(secret);
    age::encrypt(recipient, &plaintext).map_err(|_| KeyError::Seal)
}

/// Opens `blob` with `identity` and returns the secret only if the blob's binding equals
/// `expected`.
pub fn open(identity: &Identity, expected: &Binding, blob: &[u8]) -> Result<SecretBytes, KeyError> {
    let plaintext = Zeroizing::new(age::decrypt(identity, blob).map_err(|_| KeyError::Open)?);
    let (len_bytes, rest) = plaintext.split_at_checked(4).ok_or(KeyError::Open)?;
    let header_len = u32::from_be_bytes(len_bytes.try_into().map_err(|_| KeyError::Open)?) as usize;
    let (header, secret) = rest.split_at_checked(header_len).ok_or(KeyError::Open)?;
    let found: Binding = serde_json::from_slice(header).map_err(|_| KeyError::Open)?;
    if &found != expected {
        return Err(KeyError::BindingMismatch);
    }
    Ok(secret_bytes(secret.to_vec()))
}

/// Convenience for tests and callers that hold the secret as text.
pub fn open_string(
    identity: &Identity,
    expected: &Binding,
    blob: &[u8],
) -> Result<secrecy::SecretString, KeyError> {
    let bytes = open(identity, expected, blob)?;
    let text = std::str::from_utf8(bytes.expose_secret()).map_err(|_| KeyError::Open)?;
    Ok(secrecy::SecretString::from(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_only_with_the_same_binding() {
        let identity = Identity::generate();
        let binding = Binding::credential("vlt_a", "con_a", "github", 1);
        let blob = seal(&identity.to_public(), &binding, b"canary-secret").unwrap();

        let opened = open(&identity, &binding, &blob).unwrap();
        assert_eq!(opened.expose_secret(), b"canary-secret");

        let other_row = Binding::credential("vlt_a", "con_b", "github", 1);
        assert!(matches!(
            open(&identity, &other_row, &blob),
            Err(KeyError::BindingMismatch)
        ));
        let older = Binding::credential("vlt_a", "con_a", "github", 2);
        assert!(matches!(
            open(&identity, &older, &blob),
            Err(KeyError::BindingMismatch)
        ));
    }

    #[test]
    fn another_identity_cannot_open() {
        let binding = Binding::credential("vlt_a", "con_a", "github", 1);
        let blob = seal(&Identity::generate().to_public(), &binding, b"x").unwrap();
        assert!(matches!(
            open(&Identity::generate(), &binding, &blob),
            Err(KeyError::Open)
        ));
    }

    #[test]
    fn the_plaintext_is_not_in_the_blob() {
        let identity = Identity::generate();
        let binding = Binding::credential("vlt_a", "con_a", "github", 1);
        let blob = seal(&identity.to_public(), &binding, b"canary-7731").unwrap();
        assert!(!blob.windows(11).any(|w| w == b"canary-7731"));
    }
}
