//! Where the master key lives, and loading it from there.
//!
//! `CONNECT_MASTER_KEY` chooses: `keyring`, `file:PATH`, `env:VAR`, or nothing (automatic).
//! An explicit source that is unavailable or empty stops start-up (fail closed). Automatic mode
//! uses, in order: an existing `DATA_DIR/master.key`; the OS keychain when a write-and-read probe
//! succeeds; otherwise a new `DATA_DIR/master.key` with mode 0600 and a warning.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::KeyError;
use super::keychain::{self, KeychainError};
use super::master::MasterKeyRing;
use crate::secret::{ExposeSecret, SecretString};

/// A configured master-key source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Automatic,
    Keyring,
    File(PathBuf),
    Env(String),
}

impl KeySource {
    /// Parses the `CONNECT_MASTER_KEY` setting.
    pub fn parse(value: Option<&str>) -> Result<Self, KeyError> {
        let value = value.map(str::trim).unwrap_or("");
        let invalid = |reason: &str| KeyError::SourceUnavailable {
            source_name: value.to_owned(),
            reason: reason.to_owned(),
        };
        match value {
            "" | "auto" | "automatic" => Ok(KeySource::Automatic),
            "keyring" | "keychain" => Ok(KeySource::Keyring),
            _ => match value.split_once(':') {
                Some(("file", path)) if !path.is_empty() => {
                    Ok(KeySource::File(PathBuf::from(path)))
                }
                Some(("env", var)) if !var.is_empty() => Ok(KeySource::Env(var.to_owned())),
                _ => Err(invalid("expected keyring, file:PATH or env:VAR")),
            },
        }
    }

    /// The default key file of automatic mode.
    pub fn default_file(data_dir: &Path) -> PathBuf {
        data_dir.join("master.key")
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Automatic => f.write_str("automatic"),
            KeySource::Keyring => f.write_str("keyring"),
            KeySource::File(path) => write!(f, "file:{}", path.display()),
            KeySource::Env(var) => write!(f, "env:{var}"),
        }
    }
}

/// A loaded master key and what loading it decided.
#[derive(Debug)]
pub struct LoadOutcome {
    pub ring: MasterKeyRing,
    /// The concrete source used (automatic mode resolves to keyring or a file).
    pub resolved: KeySource,
    /// Whether the key was created by this load.
    pub created: bool,
    /// Weaker choices, one warning each, for the start-up log.
    pub warnings: Vec<String>,
}

/// Loads the master key. `may_create` allows automatic mode to create a key; the caller passes
/// false when the database already has vaults sealed under an existing key, so that a missing
/// key is an error and never silently replaced.
pub fn load(
    source: &KeySource,
    data_dir: &Path,
    may_create: bool,
) -> Result<LoadOutcome, KeyError> {
    match source {
        KeySource::Automatic => load_automatic(data_dir, may_create),
        KeySource::Keyring => {
            let material = keychain::read_master().map_err(|err| keychain_error(source, err))?;
            finish(source, &material, false, Vec::new())
        }
        KeySource::File(path) => {
            let material = read_file(source, path)?;
            let warnings = file_mode_warning(path).into_iter().collect();
            finish(source, &material, false, warnings)
        }
        KeySource::Env(var) => {
            let material = std::env::var(var).map_err(|_| KeyError::SourceUnavailable {
                source_name: source.to_string(),
                reason: format!("environment variable {var} is not set"),
            })?;
            let warning = format!(
                "master key read from environment variable {var}: the environment is visible to \
                 anything that can inspect this process; prefer the OS keychain or a 0600 key file"
            );
            finish(source, &SecretString::from(material), false, vec![warning])
        }
    }
}

fn load_automatic(data_dir: &Path, may_create: bool) -> Result<LoadOutcome, KeyError> {
    let file = KeySource::default_file(data_dir);
    let file_source = KeySource::File(file.clone());
    let weaker = |path: &Path| {
        format!(
            "master key kept in the file {} (mode 0600) because no OS keychain answered a write-and-read \
             probe; anyone who can read this file and the database can open every vault. Move it to a \
             keychain or secret manager and set CONNECT_MASTER_KEY=keyring, file:PATH or env:VAR",
            path.display()
        )
    };
    if file.exists() {
        let material = read_file(&file_source, &file)?;
        let mut warnings = vec![weaker(&file)];
        warnings.extend(file_mode_warning(&file));
        return finish(&file_source, &material, false, warnings);
    }
    match keychain::probe() {
        Ok(()) => match keychain::read_master() {
            Ok(material) => finish(&KeySource::Keyring, &material, false, Vec::new()),
            Err(KeychainError::NoEntry) if may_create => {
                let ring = MasterKeyRing::generate();
                keychain::write_master(&ring.to_material())
                    .map_err(|err| keychain_error(&KeySource::Keyring, err))?;
                Ok(LoadOutcome {
                    ring,
                    resolved: KeySource::Keyring,
                    created: true,
                    warnings: Vec::new(),
                })
            }
            Err(err) => Err(keychain_error(&KeySource::Keyring, err)),
        },
        Err(_) if may_create => {
            let ring = MasterKeyRing::generate();
            write_new_file(&file_source, &file, &ring.to_material())?;
            Ok(LoadOutcome {
                ring,
                resolved: file_source,
                created: true,
                warnings: vec![weaker(&file)],
            })
        }
        Err(err) => Err(KeyError::SourceUnavailable {
            source_name: "automatic".into(),
            reason: format!(
                "the database already holds vaults but neither {} nor the OS keychain ({err}) holds \
                 their master key",
                file.display()
            ),
        }),
    }
}

/// Creates the master key in an explicit source. Refuses to overwrite an existing key. For
/// `env:VAR` nothing can be written: the material is returned for the operator to place.
pub fn init(
    source: &KeySource,
    data_dir: &Path,
) -> Result<(KeySource, Option<SecretString>), KeyError> {
    let ring = MasterKeyRing::generate();
    let material = ring.to_material();
    match source {
        KeySource::Automatic => {
            let file = KeySource::default_file(data_dir);
            if file.exists() {
                return Err(KeyError::AlreadyExists {
                    source_name: format!("file:{}", file.display()),
                });
            }
            if keychain::probe().is_ok() {
                return init(&KeySource::Keyring, data_dir);
            }
            let resolved = KeySource::File(file.clone());
            write_new_file(&resolved, &file, &material)?;
            Ok((resolved, None))
        }
        KeySource::Keyring => {
            match keychain::read_master() {
                Ok(_) => {
                    return Err(KeyError::AlreadyExists {
                        source_name: source.to_string(),
                    });
                }
                Err(KeychainError::NoEntry) => {}
                Err(err) => return Err(keychain_error(source, err)),
            }
            keychain::write_master(&material).map_err(|err| keychain_error(source, err))?;
            Ok((source.clone(), None))
        }
        KeySource::File(path) => {
            write_new_file(source, path, &material)?;
            Ok((source.clone(), None))
        }
        KeySource::Env(var) => {
            if std::env::var_os(var).is_some() {
                return Err(KeyError::AlreadyExists {
                    source_name: source.to_string(),
                });
            }
            Ok((source.clone(), Some(material)))
        }
    }
}

fn finish(
    source: &KeySource,
    material: &SecretString,
    created: bool,
    warnings: Vec<String>,
) -> Result<LoadOutcome, KeyError> {
    let ring = MasterKeyRing::parse(&source.to_string(), material)?;
    Ok(LoadOutcome {
        ring,
        resolved: source.clone(),
        created,
        warnings,
    })
}

fn keychain_error(source: &KeySource, err: KeychainError) -> KeyError {
    let reason = match err {
        KeychainError::NoEntry => {
            "the keychain holds no master key; run `agentsecrets-connect master-key init`".into()
        }
        KeychainError::Unavailable(reason) => reason,
    };
    KeyError::SourceUnavailable {
        source_name: source.to_string(),
        reason,
    }
}

fn read_file(source: &KeySource, path: &Path) -> Result<SecretString, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|err| KeyError::SourceUnavailable {
        source_name: source.to_string(),
        reason: err.to_string(),
    })?;
    Ok(SecretString::from(text))
}

pub(super) fn write_new_file(
    source: &KeySource,
    path: &Path,
    material: &SecretString,
) -> Result<(), KeyError> {
    let unavailable = |err: std::io::Error| match err.kind() {
        std::io::ErrorKind::AlreadyExists => KeyError::AlreadyExists {
            source_name: source.to_string(),
        },
        _ => KeyError::SourceUnavailable {
            source_name: source.to_string(),
            reason: err.to_string(),
        },
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(unavailable)?;
    file.write_all(material.expose_secret().as_bytes())
        .map_err(unavailable)?;
    file.sync_all().map_err(unavailable)
}

#[cfg(unix)]
fn file_mode_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then(|| {
        format!(
            "master key file {} has mode {mode:o}; other users may read it (chmod 600)",
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn file_mode_warning(_path: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_settings() {
        assert_eq!(KeySource::parse(None).unwrap(), KeySource::Automatic);
        assert_eq!(
            KeySource::parse(Some("keyring")).unwrap(),
            KeySource::Keyring
        );
        assert_eq!(
            KeySource::parse(Some("file:/k")).unwrap(),
            KeySource::File("/k".into())
        );
        assert_eq!(
            KeySource::parse(Some("env:MK")).unwrap(),
            KeySource::Env("MK".into())
        );
        assert!(KeySource::parse(Some("vault:xyz")).is_err());
        assert!(KeySource::parse(Some("file:")).is_err());
    }

    #[test]
    fn an_explicit_missing_file_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::File(dir.path().join("absent.key"));
        let err = load(&source, dir.path(), true).unwrap_err().to_string();
        assert!(err.contains("absent.key"), "{err}");
    }

    #[test]
    fn an_explicit_missing_env_var_fails_naming_it() {
        let source = KeySource::Env("CONNECT_TEST_SURELY_UNSET_VAR".into());
        let err = load(&source, Path::new("."), true).unwrap_err().to_string();
        assert!(err.contains("env:CONNECT_TEST_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn init_writes_a_0600_file_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeySource::File(dir.path().join("mk.key"));
        init(&source, dir.path()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("mk.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            init(&source, dir.path()),
            Err(KeyError::AlreadyExists { .. })
        ));
        assert!(load(&source, dir.path(), false).is_ok());
    }
}
