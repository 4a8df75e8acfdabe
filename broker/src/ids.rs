//! Prefixed, time-ordered identifiers (`vlt_01J…`).
//!
//! The part after the prefix is a ULID: 48 bits of milliseconds and 80 random bits, so ids sort
//! by creation time and keyset pagination can order by id alone.

use std::sync::Mutex;

use ulid::{Generator, Ulid};

/// The resource prefixes of API.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Partner,
    ApiKey,
    Vault,
    Connection,
    ConnectSession,
    Event,
    Webhook,
    Request,
    /// A running server process (not part of API.md: it names replicas in the store).
    Replica,
}

impl Kind {
    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Partner => "ptn_",
            Kind::ApiKey => "key_",
            Kind::Vault => "vlt_",
            Kind::Connection => "con_",
            Kind::ConnectSession => "cs_",
            Kind::Event => "evt_",
            Kind::Webhook => "whk_",
            Kind::Request => "req_",
            Kind::Replica => "rep_",
        }
    }
}

/// A new id of the given kind. Ids made by one process are strictly increasing, also within
/// one millisecond; ids from different replicas interleave by millisecond.
pub fn new(kind: Kind) -> String {
    static GENERATOR: Mutex<Generator> = Mutex::new(Generator::new());
    let generated = GENERATOR
        .lock()
        .ok()
        .and_then(|mut generator| generator.generate().ok());
    // The generator fails only when one millisecond has used up 80 random bits; then a fresh,
    // unordered id is still unique.
    let ulid = match generated {
        Some(ulid) => ulid,
        None => Ulid::new(),
    };
    format!("{}{}", kind.prefix(), ulid)
}

/// Whether `id` has the shape of an id of `kind`. Anything else cannot exist in the store, so
/// callers answer 404 without a query.
pub fn is_valid(kind: Kind, id: &str) -> bool {
    id.strip_prefix(kind.prefix())
        .is_some_and(|rest| Ulid::from_string(rest).is_ok() && rest.len() == 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_carry_their_prefix_and_validate() {
        let id = new(Kind::Vault);
        assert!(id.starts_with("vlt_"));
        assert!(is_valid(Kind::Vault, &id));
        assert!(!is_valid(Kind::Connection, &id));
        assert!(!is_valid(Kind::Vault, "vlt_'; DROP TABLE vaults; --"));
    }

    #[test]
    fn ids_sort_by_creation_time() {
        let a = new(Kind::Vault);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new(Kind::Vault);
        assert!(a < b);
    }
}
