//! Time as the store keeps it: milliseconds since the Unix epoch, in a signed 64-bit integer
//! that both SQLite and PostgreSQL hold natively.

use time::OffsetDateTime;

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    let now = OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The longest lifetime believed from a token response (one year); anything longer is read as
/// this, so a hostile or broken `expires_in` cannot overflow or postpone refreshes forever.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// The expiry (epoch ms) of something that lives `seconds` from now, bounded by
/// [`MAX_TOKEN_LIFETIME_SECS`].
pub fn expiry_after(seconds: u64) -> i64 {
    let seconds = seconds.min(MAX_TOKEN_LIFETIME_SECS) as i64;
    now_ms().saturating_add(seconds * 1000)
}

/// An epoch-millisecond value as an RFC 3339 string, for the API.
pub fn to_rfc3339(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_millis_as_rfc3339() {
        assert_eq!(to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(to_rfc3339(1_500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn expiries_are_bounded() {
        let year = expiry_after(MAX_TOKEN_LIFETIME_SECS);
        assert!((expiry_after(u64::MAX) - year).abs() < 1000);
        assert!(expiry_after(600) > now_ms());
    }
}
