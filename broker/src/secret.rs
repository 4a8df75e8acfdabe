//! Secret values as types. A credential, key or token is never a bare `String`: its `Debug`
//! prints nothing useful, its memory is wiped on drop, and reading it is an explicit
//! `expose_secret()` call that a reviewer can grep for.

pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Secret bytes (a sealed plaintext once opened, a raw key).
pub type SecretBytes = SecretBox<[u8]>;

/// Wraps owned bytes as a secret; the `Vec` is moved, not copied.
pub fn secret_bytes(bytes: Vec<u8>) -> SecretBytes {
    SecretBox::new(bytes.into_boxed_slice())
}
