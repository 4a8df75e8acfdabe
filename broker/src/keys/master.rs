//! The loaded master key ring and vault-key wrapping.
//!
//! Key material is text, one version a line: `mk1:AGE-SECRET-KEY-1…`. A bare age identity line
//! is read as `mk1`, so a key made by `age-keygen` can be imported as is.

use std::collections::BTreeMap;
use std::str::FromStr;

use age::x25519::{Identity, Recipient};

use super::KeyError;
use super::seal::{self, Binding};
use crate::secret::{ExposeSecret, SecretString};

/// Every loaded master key version; the highest is the one new vault keys are wrapped with.
pub struct MasterKeyRing {
    versions: BTreeMap<i64, Identity>,
    /// Each version's public half, derived once: deriving it costs a scalar multiplication,
    /// which every new vault key would otherwise pay again.
    recipients: BTreeMap<i64, Recipient>,
}

impl std::fmt::Debug for MasterKeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKeyRing")
            .field("versions", &self.versions.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// A new vault's key pair: the public recipient (stored in clear) and the private identity
/// wrapped by the master key.
pub struct VaultKeyPair {
    pub recipient: String,
    pub wrapped: Vec<u8>,
    pub master_version: i64,
}

impl MasterKeyRing {
    fn from_versions(versions: BTreeMap<i64, Identity>) -> Self {
        let recipients = versions
            .iter()
            .map(|(version, identity)| (*version, identity.to_public()))
            .collect();
        MasterKeyRing {
            versions,
            recipients,
        }
    }

    /// A new ring holding one fresh key, version 1.
    pub fn generate() -> Self {
        MasterKeyRing::from_versions(BTreeMap::from([(1, Identity::generate())]))
    }

    /// Parses key material; `source_name` only labels errors.
    pub fn parse(source_name: &str, material: &SecretString) -> Result<Self, KeyError> {
        let malformed = |reason: &str| KeyError::Malformed {
            source_name: source_name.to_owned(),
            reason: reason.to_owned(),
        };
        let mut versions = BTreeMap::new();
        for line in material.expose_secret().lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (version, key) = match line.split_once(':') {
                Some((label, key)) if label.starts_with("mk") => {
                    let number = label[2..]
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| malformed("a version label is not mk<N>"))?;
                    (number, key)
                }
                _ => (1, line),
            };
            let identity =
                Identity::from_str(key).map_err(|_| malformed("not an age X25519 identity"))?;
            if versions.insert(version, identity).is_some() {
                return Err(malformed("a version appears twice"));
            }
        }
        if versions.is_empty() {
            return Err(malformed("it is empty"));
        }
        Ok(MasterKeyRing::from_versions(versions))
    }

    /// The key material, in the format [`MasterKeyRing::parse`] reads.
    pub fn to_material(&self) -> SecretString {
        let mut text = String::new();
        for (version, identity) in &self.versions {
            text.push_str(&format!(
                "mk{version}:{}\n",
                identity.to_string().expose_secret()
            ));
        }
        SecretString::from(text)
    }

    /// HMAC-SHA256 of `data` under a key derived from the current version's identity, as
    /// `mkN:<hex>`. For fingerprints of secrets that must be compared later but must not be
    /// checkable against a guess by anyone who holds only the database. The value changes with
    /// the current version, so a fingerprint taken before a rotation does not match one taken
    /// after it.
    pub fn keyed_digest(&self, purpose: &str, data: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha256};
        let version = self.current_version();
        let identity = &self.versions[&version];
        let mut derive = Sha256::new();
        derive.update(b"agentsecrets-connect keyed digest\0");
        derive.update(purpose.as_bytes());
        derive.update([0]);
        derive.update(identity.to_string().expose_secret().as_bytes());
        let key = zeroize::Zeroizing::new(derive.finalize().to_vec());
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any size");
        mac.update(data);
        format!("mk{version}:{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// This ring plus a freshly generated version one above `above` (the highest version ever
    /// registered, so that a retired number is never reused).
    pub fn with_new_version(&self, above: i64) -> (MasterKeyRing, i64) {
        let version = above.max(self.current_version()) + 1;
        let mut versions = self.versions.clone();
        versions.insert(version, Identity::generate());
        (MasterKeyRing::from_versions(versions), version)
    }

    /// This ring without the versions `drop` names; `None` if nothing would remain.
    pub fn without(&self, drop: &[i64]) -> Option<MasterKeyRing> {
        let versions: BTreeMap<i64, Identity> = self
            .versions
            .iter()
            .filter(|(v, _)| !drop.contains(v))
            .map(|(v, id)| (*v, id.clone()))
            .collect();
        (!versions.is_empty()).then(|| MasterKeyRing::from_versions(versions))
    }

    /// Whether this ring holds `version`.
    pub fn holds(&self, version: i64) -> bool {
        self.versions.contains_key(&version)
    }

    /// The version new vault keys are wrapped with.
    pub fn current_version(&self) -> i64 {
        *self
            .versions
            .keys()
            .next_back()
            .expect("a ring is never empty")
    }

    pub fn versions(&self) -> impl Iterator<Item = i64> + '_ {
        self.versions.keys().copied()
    }

    /// The public recipient of a version, as `age1…` text. Public; safe to store and print.
    pub fn recipient(&self, version: i64) -> Option<String> {
        self.recipients.get(&version).map(Recipient::to_string)
    }

    /// Creates a vault key and wraps it with the current master version, bound to `vault_id`.
    pub fn new_vault_key(&self, vault_id: &str) -> Result<VaultKeyPair, KeyError> {
        let version = self.current_version();
        let master = self.public(version)?;
        let vault_identity = Identity::generate();
        let binding = Binding::vault_key(vault_id, version);
        let private = vault_identity.to_string();
        let wrapped = seal::seal(master, &binding, private.expose_secret().as_bytes())?;
        Ok(VaultKeyPair {
            recipient: vault_identity.to_public().to_string(),
            wrapped,
            master_version: version,
        })
    }

    /// Unwraps a vault key stored on the row of `vault_id`. Fails when the wrapped key was
    /// destroyed, belongs to another vault, or was wrapped by a master key this ring lacks.
    pub fn open_vault_key(
        &self,
        vault_id: &str,
        master_version: i64,
        wrapped: Option<&[u8]>,
    ) -> Result<Identity, KeyError> {
        let wrapped = wrapped.ok_or(KeyError::VaultKeyDestroyed)?;
        let master = self.identity(master_version)?;
        let binding = Binding::vault_key(vault_id, master_version);
        let private = seal::open_string(master, &binding, wrapped)?;
        Identity::from_str(private.expose_secret()).map_err(|_| KeyError::Open)
    }

    /// Rewraps the vault key of `vault_id` from master version `from` to `to`. The vault's own
    /// identity is unchanged, so nothing sealed to the vault is touched.
    pub fn rewrap_vault_key(
        &self,
        vault_id: &str,
        from: i64,
        wrapped: &[u8],
        to: i64,
    ) -> Result<Vec<u8>, KeyError> {
        let private = seal::open(
            self.identity(from)?,
            &Binding::vault_key(vault_id, from),
            wrapped,
        )?;
        seal::seal(
            self.public(to)?,
            &Binding::vault_key(vault_id, to),
            private.expose_secret(),
        )
    }

    /// Reseals a blob made by [`MasterKeyRing::seal_to_master`] from version `from` to `to`;
    /// `binding_of` gives the binding for a version, as when it was sealed.
    pub fn reseal_to_master(
        &self,
        binding_of: impl Fn(i64) -> Binding,
        from: i64,
        blob: &[u8],
        to: i64,
    ) -> Result<Vec<u8>, KeyError> {
        let secret = seal::open(self.identity(from)?, &binding_of(from), blob)?;
        seal::seal(self.public(to)?, &binding_of(to), secret.expose_secret())
    }

    /// Seals `secret` to the current master key (integration client secrets, webhook signing
    /// secrets, PKCE verifiers).
    /// Returns the blob and the master version it needs.
    pub fn seal_to_master(
        &self,
        binding_of: impl Fn(i64) -> Binding,
        secret: &[u8],
    ) -> Result<(Vec<u8>, i64), KeyError> {
        let version = self.current_version();
        let recipient = self.public(version)?;
        Ok((
            seal::seal(recipient, &binding_of(version), secret)?,
            version,
        ))
    }

    /// Opens a blob sealed by [`MasterKeyRing::seal_to_master`].
    pub fn open_from_master(
        &self,
        version: i64,
        binding: &Binding,
        blob: &[u8],
    ) -> Result<crate::secret::SecretBytes, KeyError> {
        seal::open(self.identity(version)?, binding, blob)
    }

    fn public(&self, version: i64) -> Result<&Recipient, KeyError> {
        self.recipients
            .get(&version)
            .ok_or_else(|| KeyError::UnknownVersion(format!("mk{version}")))
    }

    fn identity(&self, version: i64) -> Result<&Identity, KeyError> {
        self.versions
            .get(&version)
            .ok_or_else(|| KeyError::UnknownVersion(format!("mk{version}")))
    }
}

/// Parses a stored public recipient.
pub fn parse_recipient(text: &str) -> Result<Recipient, KeyError> {
    Recipient::from_str(text).map_err(|_| KeyError::Seal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyed_digest_needs_the_master_key_to_reproduce() {
        use sha2::{Digest, Sha256};
        let ring = MasterKeyRing::generate();
        let digest = ring.keyed_digest("deposit idempotency", b"sk-canary-123");
        assert_eq!(
            digest,
            ring.keyed_digest("deposit idempotency", b"sk-canary-123"),
            "the same ring, purpose and data give the same digest"
        );
        assert!(digest.starts_with("mk1:"), "{digest}");
        let other = MasterKeyRing::generate();
        assert_ne!(
            digest,
            other.keyed_digest("deposit idempotency", b"sk-canary-123"),
            "without this master key the digest of a correct guess does not match"
        );
        assert_ne!(
            digest,
            ring.keyed_digest("another purpose", b"sk-canary-123")
        );
        let plain = hex::encode(Sha256::digest(b"sk-canary-123"));
        assert!(!digest.contains(&plain), "not a plain hash of the value");
        let (rotated, _) = ring.with_new_version(1);
        assert!(
            rotated
                .keyed_digest("deposit idempotency", b"sk-canary-123")
                .starts_with("mk2:")
        );
    }

    #[test]
    fn material_round_trips() {
        let ring = MasterKeyRing::generate();
        let again = MasterKeyRing::parse("test", &ring.to_material()).unwrap();
        assert_eq!(ring.recipient(1), again.recipient(1));
        assert_eq!(again.current_version(), 1);
    }

    #[test]
    fn a_bare_age_identity_is_version_one() {
        let identity = Identity::generate();
        let material = SecretString::from(identity.to_string().expose_secret().to_owned());
        let ring = MasterKeyRing::parse("test", &material).unwrap();
        assert_eq!(ring.recipient(1).unwrap(), identity.to_public().to_string());
    }

    #[test]
    fn malformed_material_names_the_source_and_not_the_value() {
        let err = MasterKeyRing::parse("env:KEY", &SecretString::from("mk1:not-a-key".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("env:KEY"), "{err}");
        assert!(!err.contains("not-a-key"), "{err}");
    }

    #[test]
    fn a_wrapped_vault_key_opens_only_for_its_vault() {
        let ring = MasterKeyRing::generate();
        let pair = ring.new_vault_key("vlt_a").unwrap();
        let identity = ring
            .open_vault_key("vlt_a", 1, Some(&pair.wrapped))
            .unwrap();
        assert_eq!(identity.to_public().to_string(), pair.recipient);
        assert!(matches!(
            ring.open_vault_key("vlt_b", 1, Some(&pair.wrapped)),
            Err(KeyError::BindingMismatch)
        ));
        assert!(matches!(
            ring.open_vault_key("vlt_a", 1, None),
            Err(KeyError::VaultKeyDestroyed)
        ));
    }

    #[test]
    fn a_rewrapped_vault_key_opens_with_the_new_version_only() {
        let (ring, two) = MasterKeyRing::generate().with_new_version(1);
        assert_eq!(two, 2);
        let old = MasterKeyRing::parse("test", &ring.to_material())
            .unwrap()
            .without(&[2])
            .unwrap();
        let pair = old.new_vault_key("vlt_a").unwrap();
        assert_eq!(pair.master_version, 1);
        let rewrapped = ring.rewrap_vault_key("vlt_a", 1, &pair.wrapped, 2).unwrap();
        let opened = ring.open_vault_key("vlt_a", 2, Some(&rewrapped)).unwrap();
        assert_eq!(opened.to_public().to_string(), pair.recipient);
        assert!(ring.open_vault_key("vlt_a", 1, Some(&rewrapped)).is_err());
        assert!(ring.without(&[1]).unwrap().holds(2));
        assert!(ring.without(&[1, 2]).is_none());
        assert!(matches!(
            old.open_vault_key("vlt_a", 2, Some(&rewrapped)),
            Err(KeyError::UnknownVersion(_))
        ));
    }

    #[test]
    fn another_master_key_opens_nothing() {
        let pair = MasterKeyRing::generate().new_vault_key("vlt_a").unwrap();
        let other = MasterKeyRing::generate();
        assert!(
            other
                .open_vault_key("vlt_a", 1, Some(&pair.wrapped))
                .is_err()
        );
    }
}
