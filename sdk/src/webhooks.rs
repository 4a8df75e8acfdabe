//! Verifying webhooks as a receiver, the Standard Webhooks way.
//!
//! Every webhook carries three headers: `webhook-id` (the event id, the same on every retry,
//! so a receiver can drop duplicates), `webhook-timestamp` (Unix seconds of this attempt) and
//! `webhook-signature` (one or more space-separated `v1,<base64>` signatures). Each signature
//! is HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the bytes of the
//! endpoint's secret after its `whsec_` prefix, base64-decoded.
//!
//! [`verify`] checks the timestamp against a tolerance (a replayed old request fails) and
//! compares signatures in constant time. Verify the raw body bytes, before parsing them.
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use connect_sdk::webhooks::{self, WebhookHeaders};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = br#"{"id":"evt_1","type":"vault.revoked"}"#;
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
//! // What the server sends (here signed locally to have something to check).
//! let signature = webhooks::sign(secret, "evt_1", &now, body).unwrap();
//!
//! let headers = WebhookHeaders {
//!     id: "evt_1",
//!     timestamp: &now,
//!     signature: &format!("v1,bm90IHRoaXMgb25l v1,{signature}"),
//! };
//! webhooks::verify(secret, &headers, body, Duration::from_secs(300)).unwrap();
//!
//! let tampered = br#"{"id":"evt_1","type":"connection.created"}"#;
//! assert_eq!(
//!     webhooks::verify(secret, &headers, tampered, Duration::from_secs(300)),
//!     Err(webhooks::VerifyError::NoMatchingSignature)
//! );
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// The three header values of a webhook, as received.
#[derive(Debug, Clone, Copy)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`.
    pub timestamp: &'a str,
    /// `webhook-signature`.
    pub signature: &'a str,
}

impl<'a> WebhookHeaders<'a> {
    /// Reads the three headers through `get` (a lookup by lower-case name into whatever
    /// header map the receiver's framework has); `None` when one is missing.
    pub fn from_lookup(get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        Some(WebhookHeaders {
            id: get("webhook-id")?,
            timestamp: get("webhook-timestamp")?,
            signature: get("webhook-signature")?,
        })
    }
}

/// Why a webhook was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The secret is not `whsec_<base64>` (or bare base64).
    InvalidSecret,
    /// `webhook-timestamp` is not Unix seconds.
    InvalidTimestamp,
    /// The timestamp is further from now than the tolerance.
    TimestampOutOfTolerance,
    /// No `v1` signature in the header matches.
    NoMatchingSignature,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VerifyError::InvalidSecret => "the webhook secret is malformed",
            VerifyError::InvalidTimestamp => "webhook-timestamp is not a Unix time in seconds",
            VerifyError::TimestampOutOfTolerance => "webhook-timestamp is too far from now",
            VerifyError::NoMatchingSignature => "no webhook signature matches",
        })
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a webhook against the endpoint's `secret`, with `tolerance` around the current
/// time for its timestamp.
pub fn verify(
    secret: &str,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, tolerance, SystemTime::now())
}

/// [`verify`] with an explicit "now".
pub fn verify_at(
    secret: &str,
    headers: &WebhookHeaders<'_>,
    body: &[u8],
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let key = decode_secret(secret)?;
    let sent: u64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if sent.abs_diff(now) > tolerance.as_secs() {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let mac = mac_over(&key, headers.id, headers.timestamp.trim(), body)?;
    let matched = headers
        .signature
        .split_whitespace()
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, signature)| STANDARD.decode(signature).ok())
        // `verify_slice` compares in constant time.
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

/// The base64 `v1` signature of a message (without the `v1,` prefix), for receivers' tests.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<String, VerifyError> {
    let key = decode_secret(secret)?;
    let mac = mac_over(&key, id, timestamp, body)?;
    Ok(STANDARD.encode(mac.finalize().into_bytes()))
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .ok()
        .filter(|key| !key.is_empty())
        .ok_or(VerifyError::InvalidSecret)
}

fn mac_over(
    key: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> Result<Hmac<Sha256>, VerifyError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| VerifyError::InvalidSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn headers(signature: &str) -> WebhookHeaders<'_> {
        WebhookHeaders {
            id: ID,
            timestamp: "1614265330",
            signature,
        }
    }

    #[test]
    fn accepts_the_specification_example() {
        let tolerance = Duration::from_secs(300);
        assert_eq!(
            verify_at(SECRET, &headers(SIGNATURE), BODY, tolerance, at(1614265330)),
            Ok(())
        );
        let several = format!("v1,AAAA v2,xyz {SIGNATURE}");
        assert_eq!(
            verify_at(SECRET, &headers(&several), BODY, tolerance, at(1614265400)),
            Ok(())
        );
    }

    #[test]
    fn refuses_tampering_old_timestamps_and_bad_input() {
        let tolerance = Duration::from_secs(300);
        let cases = [
            (
                "other body",
                verify_at(
                    SECRET,
                    &headers(SIGNATURE),
                    b"{}",
                    tolerance,
                    at(1614265330),
                ),
                VerifyError::NoMatchingSignature,
            ),
            (
                "too old",
                verify_at(SECRET, &headers(SIGNATURE), BODY, tolerance, at(1614266330)),
                VerifyError::TimestampOutOfTolerance,
            ),
            (
                "wrong version",
                verify_at(
                    SECRET,
                    &headers("v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                    BODY,
                    tolerance,
                    at(1614265330),
                ),
                VerifyError::NoMatchingSignature,
            ),
            (
                "bad secret",
                verify_at(
                    "whsec_!!",
                    &headers(SIGNATURE),
                    BODY,
                    tolerance,
                    at(1614265330),
                ),
                VerifyError::InvalidSecret,
            ),
        ];
        for (case, got, expected) in cases {
            assert_eq!(got, Err(expected), "case {case}");
        }
        let bad_time = WebhookHeaders {
            timestamp: "yesterday",
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify_at(SECRET, &bad_time, BODY, tolerance, at(1614265330)),
            Err(VerifyError::InvalidTimestamp)
        );
    }
}
