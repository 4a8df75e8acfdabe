//! Changing which versions a master-key source holds: adding the new version of a rotation,
//! removing a retired one.
//!
//! A key file is replaced atomically (a 0600 file beside it, synced, then renamed over it), so
//! a crash leaves either the old or the new ring, never half of one. The keychain entry is
//! replaced in one call. An environment variable cannot be changed from here: the new value is
//! handed back for the operator to set.

use std::path::Path;

use super::KeyError;
use super::keychain;
use super::master::MasterKeyRing;
use super::source::{KeySource, write_new_file};
use crate::secret::SecretString;

/// Where a changed ring went.
#[derive(Debug)]
pub enum Stored {
    /// Written to the keychain or the key file.
    Written,
    /// An `env:VAR` source: the operator must set the variable to this value.
    ForOperator(SecretString),
}

/// Replaces the key material of `source` (a resolved source, not `automatic`) with `ring`.
pub fn store(source: &KeySource, ring: &MasterKeyRing) -> Result<Stored, KeyError> {
    let material = ring.to_material();
    match source {
        KeySource::Keyring => {
            keychain::write_master(&material).map_err(|err| KeyError::SourceUnavailable {
                source_name: source.to_string(),
                reason: err.to_string(),
            })?;
            Ok(Stored::Written)
        }
        KeySource::File(path) => {
            replace_file(source, path, &material)?;
            Ok(Stored::Written)
        }
        KeySource::Env(_) => Ok(Stored::ForOperator(material)),
        KeySource::Automatic => Err(KeyError::SourceUnavailable {
            source_name: source.to_string(),
            reason: "resolve the automatic source before changing it".into(),
        }),
    }
}

fn replace_file(source: &KeySource, path: &Path, material: &SecretString) -> Result<(), KeyError> {
    let unavailable = |err: std::io::Error| KeyError::SourceUnavailable {
        source_name: source.to_string(),
        reason: err.to_string(),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "master.key".into());
    let staged = path.with_file_name(format!(".{name}.new"));
    // Left behind by a crash before the rename: it never replaced anything, so drop it.
    match std::fs::remove_file(&staged) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(unavailable(err)),
    }
    write_new_file(source, &staged, material)?;
    std::fs::rename(&staged, path).map_err(unavailable)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::source;

    #[test]
    fn a_key_file_is_replaced_whole_and_stays_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mk.key");
        let key_source = KeySource::File(path.clone());
        source::init(&key_source, dir.path()).unwrap();
        let ring = source::load(&key_source, dir.path(), false).unwrap().ring;
        let (rotated, version) = ring.with_new_version(1);
        // A staged file left by an earlier crash does not stop the replacement.
        std::fs::write(dir.path().join(".mk.key.new"), "half").unwrap();

        assert!(matches!(
            store(&key_source, &rotated).unwrap(),
            Stored::Written
        ));

        let again = source::load(&key_source, dir.path(), false).unwrap().ring;
        assert_eq!(again.versions().collect::<Vec<_>>(), vec![1, version]);
        assert_eq!(again.recipient(1), ring.recipient(1));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!dir.path().join(".mk.key.new").exists());
    }

    #[test]
    fn an_env_source_hands_the_value_back() {
        let ring = MasterKeyRing::generate();
        match store(&KeySource::Env("MK".into()), &ring).unwrap() {
            Stored::ForOperator(material) => {
                let parsed = MasterKeyRing::parse("env:MK", &material).unwrap();
                assert_eq!(parsed.recipient(1), ring.recipient(1));
            }
            Stored::Written => panic!("nothing can be written to the environment"),
        }
    }
}
