//! When to repeat a request and how long to wait first.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Bounded retries with exponential backoff.
///
/// A request is repeated after a 429 or 503 answer, and after a connection failure or timeout
/// when repeating it is safe: an idempotent method, or a POST carrying the `Idempotency-Key`
/// the client set. A `Retry-After` in seconds is honoured; one longer than `max_delay` is not
/// waited for, and the answer is returned instead. (The HTTP-date form of `Retry-After` is not
/// read; the backoff applies then.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The wait before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// One attempt only.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` counts from 1), or `None` to stop.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        match retry_after {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(wait),
            None => {
                let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
                Some(self.base_delay.saturating_mul(factor).min(self.max_delay))
            }
        }
    }
}

/// Whether a status asks to come back later.
pub(crate) fn is_retry_status(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// Whether sending the request twice does no more than sending it once.
pub(crate) fn is_idempotent(method: &Method, has_idempotency_key: bool) -> bool {
    has_idempotency_key
        || matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        )
}

/// `Retry-After` in its seconds form.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_after_the_last_attempt() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        };

        let waits: Vec<_> = (1..=5).map(|attempt| policy.delay(attempt, None)).collect();

        assert_eq!(
            waits,
            vec![
                Some(Duration::from_millis(100)),
                Some(Duration::from_millis(200)),
                Some(Duration::from_millis(300)),
                Some(Duration::from_millis(300)),
                None,
            ]
        );
    }

    #[test]
    fn retry_after_is_honoured_unless_longer_than_the_cap() {
        let policy = RetryPolicy::default();

        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.delay(1, Some(Duration::from_secs(60))), None);
        assert_eq!(RetryPolicy::none().delay(1, None), None);
    }

    #[test]
    fn only_the_seconds_form_of_retry_after_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));

        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn a_post_is_repeated_only_with_an_idempotency_key() {
        assert!(!is_idempotent(&Method::POST, false));
        assert!(!is_idempotent(&Method::PATCH, false));
        assert!(is_idempotent(&Method::POST, true));
        assert!(is_idempotent(&Method::GET, false));
        assert!(is_idempotent(&Method::DELETE, false));
    }
}
