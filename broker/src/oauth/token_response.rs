//! Reading what a token endpoint answers to a code exchange or a refresh (RFC 6749 §5).
//!
//! Lenient where providers merely differ: JSON, form-encoded or `text/plain` form bodies;
//! `expires_in` as a number or numeric string; `scope` as a space- or comma-separated string or
//! an array; `token_type` missing or in any case; unknown members. A value that only matters
//! for bookkeeping (an odd `expires_in`, say) becomes a warning, not a failure.
//!
//! Strict where safety is at stake: an `error` member fails the answer whatever the status; the
//! access token must be a non-empty string of visible ASCII, at the top level or at the nested
//! path a provider template names; bodies over [`MAX_BODY_BYTES`] are refused. Nothing here
//! logs, and no `Debug` or `Display` output carries a token or the provider's text.
//!
//! Known shortcoming: tokens move into [`SecretString`]s and their buffers are wiped, but
//! serde_json's scratch buffers and the members in [`TokenSet::extra`] are ordinary heap memory
//! freed without zeroing; neither serde_json nor form_urlencoded can parse into wiped buffers.

use std::{fmt, io, mem};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::secret::{ExposeSecret, SecretString};

#[cfg(test)]
mod tests;

/// The largest token endpoint body we read (1 MiB). Real answers are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The `token_type` we store for bearer tokens, whatever case the provider used.
pub const BEARER: &str = "Bearer";

/// The layout version written by [`TokenSet::to_sealed_bytes`].
const SEALED_VERSION: u8 = 1;

/// A token endpoint's answer as it came off the wire.
#[derive(Clone, Copy)]
pub struct RawResponse<'a> {
    pub status: u16,
    /// The `Content-Type` header, parameters included, when there was one.
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The tokens a connection holds. Only ever stored sealed; `Debug` shows no token and no extra
/// member.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// [`BEARER`] when the provider named none or any case of `bearer`; otherwise as given.
    pub token_type: String,
    /// Lifetime in seconds from the moment of the response; `None` when unknown.
    pub expires_in: Option<u64>,
    /// Granted scopes; `None` when the response names none.
    pub scopes: Option<Vec<String>>,
    pub id_token: Option<SecretString>,
    /// Members we do not interpret (account ids, provider extras). They may hold secrets, so
    /// they are sealed with the tokens and never logged or returned.
    pub extra: Map<String, Value>,
}

/// Why a token response gave no token set. `Display` never shows a token or the body's text.
#[derive(thiserror::Error)]
pub enum TokenError {
    /// The provider answered with an `error` member (RFC 6749 §5.2), whatever the HTTP status.
    #[error("token endpoint answered with OAuth error {}", shown_code(.code))]
    OAuth {
        /// The `error` value, such as `invalid_grant`; `Display` shows only plain codes.
        code: String,
        /// `error_description` when short and printable; never shown by `Display` or `Debug`.
        description: Option<String>,
    },
    /// The answer (or a sealed token set) cannot be used; the reason is ours, never the body.
    #[error("unusable token response: {0}")]
    InvalidResponse(&'static str),
    /// A non-2xx status without a readable `error` member.
    #[error("token endpoint answered HTTP {0} without an OAuth error")]
    Http(u16),
}

/// Parses a token endpoint answer into a token set and the warnings met on the way.
///
/// `token_path` is a provider template's dotted path to a nested access token, such as
/// `authed_user.access_token`. With it, `token_type`, `scope`, `expires_in`, `refresh_token`
/// and `id_token` are read beside that token; without it, only a top-level `access_token`
/// counts.
pub fn parse(
    raw: &RawResponse<'_>,
    token_path: Option<&str>,
) -> Result<(TokenSet, Vec<&'static str>), TokenError> {
    if raw.body.len() > MAX_BODY_BYTES {
        return Err(unusable(raw.status, "body over 1 MiB"));
    }
    let mut members = decode_body(raw).ok_or_else(|| unusable(raw.status, "unparseable body"))?;
    check_error_member(&members, raw.status)?;
    if !(200..300).contains(&raw.status) {
        return Err(TokenError::Http(raw.status));
    }

    let mut warnings = Vec::new();
    let (holder, name) = locate(&mut members, token_path)?;
    let access_token = token_member(holder.remove(name), "access_token is not a string")?
        .ok_or(TokenError::InvalidResponse("no access_token"))?;
    let refresh_token = token_member(
        holder.remove("refresh_token"),
        "refresh_token is not a string",
    )?;
    let id_token = token_member(holder.remove("id_token"), "id_token is not a string")?;
    let token_type = token_type(holder.remove("token_type"), &mut warnings);
    let expires_in = expires_in(holder.remove("expires_in"), &mut warnings);
    let scopes = scopes(holder.remove("scope"), &mut warnings);
    let set = TokenSet {
        access_token,
        refresh_token,
        token_type,
        expires_in,
        scopes,
        id_token,
        extra: members,
    };
    Ok((set, warnings))
}

/// Combines a refresh answer with the set it replaces. What the answer leaves out stays as it
/// was: the refresh token (absent or empty), the scopes (RFC 6749 §6), the ID token and extra
/// members. The expiry is never carried over: an old lifetime says nothing about a new token.
pub fn merge_refresh(previous: &TokenSet, refreshed: TokenSet) -> TokenSet {
    let refresh_token = refreshed
        .refresh_token
        .filter(|token| !token.expose_secret().is_empty())
        .or_else(|| previous.refresh_token.clone());
    let mut extra = previous.extra.clone();
    extra.extend(refreshed.extra);
    TokenSet {
        access_token: refreshed.access_token,
        refresh_token,
        token_type: refreshed.token_type,
        expires_in: refreshed.expires_in,
        scopes: refreshed.scopes.or_else(|| previous.scopes.clone()),
        id_token: refreshed.id_token.or_else(|| previous.id_token.clone()),
        extra,
    }
}

impl TokenSet {
    /// The plaintext to seal: versioned JSON, in a buffer wiped on drop and sized up front so
    /// that no reallocation leaves a copy behind.
    pub fn to_sealed_bytes(&self) -> Zeroizing<Vec<u8>> {
        let sealed = SealedRef {
            v: SEALED_VERSION,
            access_token: self.access_token.expose_secret(),
            refresh_token: self.refresh_token.as_ref().map(ExposeSecret::expose_secret),
            token_type: &self.token_type,
            expires_in: self.expires_in,
            scopes: self.scopes.as_deref(),
            id_token: self.id_token.as_ref().map(ExposeSecret::expose_secret),
            extra: &self.extra,
        };
        let mut counter = ByteCounter(0);
        serde_json::to_writer(&mut counter, &sealed).expect("a token set always serialises");
        let mut bytes = Zeroizing::new(Vec::with_capacity(counter.0));
        serde_json::to_writer(&mut *bytes, &sealed).expect("a token set always serialises");
        bytes
    }

    /// Reads back what [`TokenSet::to_sealed_bytes`] wrote, once the seal is opened.
    pub fn from_sealed_bytes(bytes: &[u8]) -> Result<TokenSet, TokenError> {
        let unreadable = || TokenError::InvalidResponse("unreadable sealed token set");
        let mut sealed = serde_json::from_slice::<SealedOwned>(bytes)
            .ok()
            .filter(|sealed| sealed.v == SEALED_VERSION)
            .ok_or_else(unreadable)?;
        let optional = |token: Option<String>| token.and_then(secret_token);
        Ok(TokenSet {
            access_token: secret_token(mem::take(&mut sealed.access_token))
                .ok_or_else(unreadable)?,
            refresh_token: optional(sealed.refresh_token.take()),
            token_type: mem::take(&mut sealed.token_type),
            expires_in: sealed.expires_in,
            scopes: sealed.scopes.take(),
            id_token: optional(sealed.id_token.take()),
            extra: mem::take(&mut sealed.extra),
        })
    }
}

/// Secrets print as redacted (their own `Debug`); extra members only as a count.
impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .field("id_token", &self.id_token)
            .field("extra_members", &self.extra.len())
            .finish()
    }
}

/// The same text as `Display`, so that `{:?}` in a log shows no description either.
impl fmt::Debug for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenError({self})")
    }
}

impl fmt::Debug for RawResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// An unusable answer: our reason on a 2xx, the status otherwise (a 5xx page may be transient,
/// and the caller's retry policy keys on it).
fn unusable(status: u16, reason: &'static str) -> TokenError {
    if (200..300).contains(&status) {
        TokenError::InvalidResponse(reason)
    } else {
        TokenError::Http(status)
    }
}

/// The body's members, or `None` when it is neither a JSON object nor a form. A body that opens
/// with `{` is read as JSON whatever its declared type; any other body only as a form, and only
/// under the form or `text/plain` type or none.
fn decode_body(raw: &RawResponse<'_>) -> Option<Map<String, Value>> {
    let body = raw.body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw.body);
    let text = std::str::from_utf8(body).ok()?.trim();
    let media_type = raw
        .content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        _ if text.starts_with('{') => serde_json::from_str(text).ok(),
        None | Some("" | "application/x-www-form-urlencoded" | "text/plain") => {
            let pairs = url::form_urlencoded::parse(text.as_bytes());
            Some(
                pairs
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            )
        }
        Some(_) => None,
    }
}

/// Fails with the provider's error when the body names one. `null` or `""` name none; any other
/// value that is not an RFC 6749 error code makes the answer unusable.
fn check_error_member(members: &Map<String, Value>, status: u16) -> Result<(), TokenError> {
    let code = match members.get("error") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(code)) if code.is_empty() => return Ok(()),
        Some(Value::String(code)) if is_error_code(code) => code.clone(),
        Some(_) => return Err(unusable(status, "malformed error member")),
    };
    let description = members
        .get("error_description")
        .and_then(Value::as_str)
        .filter(|text| text.len() <= 1024 && !text.chars().any(char::is_control))
        .map(str::to_owned);
    Err(TokenError::OAuth { code, description })
}

/// The object that holds the access token, and the token's member name in it.
fn locate<'m, 'p>(
    members: &'m mut Map<String, Value>,
    token_path: Option<&'p str>,
) -> Result<(&'m mut Map<String, Value>, &'p str), TokenError> {
    let Some(path) = token_path else {
        return Ok((members, "access_token"));
    };
    if path.split('.').any(str::is_empty) {
        return Err(TokenError::InvalidResponse("malformed token_path"));
    }
    let Some((parents, name)) = path.rsplit_once('.') else {
        return Ok((members, path));
    };
    let mut holder = members;
    for segment in parents.split('.') {
        holder = match holder.get_mut(segment) {
            Some(Value::Object(inner)) => inner,
            _ => return Err(TokenError::InvalidResponse("no access_token at token_path")),
        };
    }
    Ok((holder, name))
}

/// A token member as a secret: `None` when absent, null or empty; an error when it is not a
/// string of visible ASCII (RFC 6749 Appendix A: VSCHAR), since it ends up in headers.
fn token_member(
    value: Option<Value>,
    not_a_string: &'static str,
) -> Result<Option<SecretString>, TokenError> {
    let reason = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(token)) if token.is_empty() || is_vschar(&token) => {
            return Ok(secret_token(token));
        }
        Some(Value::String(mut token)) => {
            token.zeroize();
            "a token holds characters outside visible ASCII"
        }
        Some(_) => not_a_string,
    };
    Err(TokenError::InvalidResponse(reason))
}

/// Copies a token into a secret and wipes the original. `None` for an empty or non-VSCHAR one.
fn secret_token(mut token: String) -> Option<SecretString> {
    let secret = (!token.is_empty() && is_vschar(&token)).then(|| token.as_str().into());
    token.zeroize();
    secret
}

/// [`BEARER`] for a missing, empty or any-case `bearer` type; other types as given.
fn token_type(value: Option<Value>, warnings: &mut Vec<&'static str>) -> String {
    let is_bearer = |kind: &str| kind.is_empty() || kind.eq_ignore_ascii_case("bearer");
    match value {
        Some(Value::String(kind)) if !is_bearer(kind.trim()) => kind,
        None | Some(Value::Null | Value::String(_)) => BEARER.to_owned(),
        Some(_) => {
            warn(warnings, "token_type is not a string; Bearer assumed");
            BEARER.to_owned()
        }
    }
}

/// Seconds from a number or numeric string. Anything else that is present leaves the expiry
/// unknown, with a warning.
fn expires_in(value: Option<Value>, warnings: &mut Vec<&'static str>) -> Option<u64> {
    let whole = |seconds: f64| {
        // Whole and non-negative; the bound keeps the float exact and the cast lossless.
        ((0.0..=9.0e15).contains(&seconds) && seconds.fract() == 0.0).then_some(seconds as u64)
    };
    let seconds = match value? {
        Value::Null => return None,
        Value::Number(number) => number.as_u64().or_else(|| whole(number.as_f64()?)),
        Value::String(text) => {
            let text = text.trim();
            text.parse().ok().or_else(|| whole(text.parse().ok()?))
        }
        _ => None,
    };
    if seconds.is_none() {
        warn(warnings, "expires_in not a whole number; expiry unknown");
    }
    seconds
}

/// The granted scopes from a space- or comma-separated string or a JSON array of them, in
/// order and without repeats. `None` when absent or empty.
fn scopes(value: Option<Value>, warnings: &mut Vec<&'static str>) -> Option<Vec<String>> {
    let mut list = Vec::new();
    match value? {
        Value::String(text) => push_scopes(&mut list, &text),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(text) => push_scopes(&mut list, &text),
                    _ => warn(warnings, "scope list holds a non-string item; skipped"),
                }
            }
        }
        Value::Null => {}
        _ => warn(warnings, "scope is neither a string nor a list; ignored"),
    }
    (!list.is_empty()).then_some(list)
}

fn push_scopes(list: &mut Vec<String>, text: &str) {
    let separator = |c: char| c == ',' || c.is_whitespace();
    for scope in text.split(separator).filter(|scope| !scope.is_empty()) {
        if !list.iter().any(|known| known == scope) {
            list.push(scope.to_owned());
        }
    }
}

fn warn(warnings: &mut Vec<&'static str>, warning: &'static str) {
    if !warnings.contains(&warning) {
        warnings.push(warning);
    }
}

/// RFC 6749 Appendix A VSCHAR: %x20-7E.
fn is_vschar(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// RFC 6749 §5.2: an error code is VSCHAR without `"` and `\`. We also cap its length.
fn is_error_code(code: &str) -> bool {
    code.len() <= 256 && is_vschar(code) && !code.contains(['"', '\\'])
}

/// The code as `Display` may show it. Codes made only of lowercase letters and underscores
/// (every registered code, and the common provider ones) cannot plausibly be a token; any other
/// code stays hidden, since a careless provider could echo a credential there.
fn shown_code(code: &str) -> &str {
    let plain = !code.is_empty() && code.len() <= 64;
    if plain && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        code
    } else {
        "(provider-specific code not shown)"
    }
}

/// Counts what serde_json would write, so the real buffer is allocated once.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sealed layout, borrowed from a [`TokenSet`] for writing.
#[derive(Serialize)]
struct SealedRef<'a> {
    v: u8,
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    token_type: &'a str,
    expires_in: Option<u64>,
    scopes: Option<&'a [String]>,
    id_token: Option<&'a str>,
    extra: &'a Map<String, Value>,
}

/// The sealed layout as read back; its strings are wiped when it is dropped.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
struct SealedOwned {
    v: u8,
    access_token: String,
    refresh_token: Option<String>,
    token_type: String,
    expires_in: Option<u64>,
    scopes: Option<Vec<String>>,
    id_token: Option<String>,
    #[serde(default)]
    #[zeroize(skip)]
    extra: Map<String, Value>,
}
