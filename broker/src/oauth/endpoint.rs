//! Calls to a provider's token and revocation endpoints through the hardened client, with the
//! client authentication the integration asks for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use url::form_urlencoded::byte_serialize;

use super::catalog::ClientAuth;
use super::token_response::{self, RawResponse, TokenError, TokenSet};
use crate::integrations::OAuthSettings;
use crate::net;
use crate::secret::{ExposeSecret, SecretString};

/// Largest token or revocation response read.
const MAX_RESPONSE: usize = 1024 * 1024;

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The provider answered with an OAuth error, a bad status or an unusable body.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The provider could not be reached or did not answer in time.
    #[error("the provider's endpoint could not be reached")]
    Unreachable,
    /// The endpoint URL is not allowed.
    #[error("the endpoint URL is not allowed: {0}")]
    NotAllowed(#[from] net::VetError),
}

impl EndpointError {
    /// The OAuth error code, when the provider gave one.
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            EndpointError::Token(TokenError::OAuth { code, .. }) => Some(code),
            _ => None,
        }
    }

    /// Whether trying again later could succeed (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            EndpointError::Unreachable => true,
            EndpointError::Token(TokenError::Http(status)) => *status >= 500 || *status == 429,
            EndpointError::Token(TokenError::OAuth { code, .. }) => {
                code == "temporarily_unavailable" || code == "server_error"
            }
            _ => false,
        }
    }
}

/// What happened when asking the provider to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    Failed { retry: bool },
    NotSupported,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::Revoked => "revoked",
            Revocation::Failed { .. } => "failed",
            Revocation::NotSupported => "not_supported",
        }
    }
}

/// RFC 6749 §2.3.1: id and secret are form-encoded, then joined and base64-encoded.
pub fn basic_credentials(client_id: &str, secret: &SecretString) -> SecretString {
    let id: String = byte_serialize(client_id.as_bytes()).collect();
    let secret: String = byte_serialize(secret.expose_secret().as_bytes()).collect();
    SecretString::from(format!(
        "Basic {}",
        STANDARD.encode(format!("{id}:{secret}"))
    ))
}

/// Exchanges an authorization code.
pub async fn exchange_code(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    secret: &SecretString,
    code: &SecretString,
    redirect_uri: &str,
    verifier: Option<&SecretString>,
    allow_private: bool,
) -> Result<(TokenSet, Vec<&'static str>), EndpointError> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.expose_secret().to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier.expose_secret().to_owned()));
    }
    token_request(http, settings, secret, form, allow_private).await
}

/// Uses a refresh token.
pub async fn refresh(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    secret: &SecretString,
    refresh_token: &SecretString,
    allow_private: bool,
) -> Result<(TokenSet, Vec<&'static str>), EndpointError> {
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.expose_secret().to_owned()),
    ];
    token_request(http, settings, secret, form, allow_private).await
}

async fn token_request(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    secret: &SecretString,
    form: Vec<(&str, String)>,
    allow_private: bool,
) -> Result<(TokenSet, Vec<&'static str>), EndpointError> {
    let url = net::vet(&settings.token_url, allow_private)?;
    let response = authenticated(http.post(url), settings, secret, form)
        .send()
        .await
        .map_err(|_| EndpointError::Unreachable)?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_capped(response).await?;
    let raw = RawResponse {
        status,
        content_type: content_type.as_deref(),
        body: &body,
    };
    Ok(token_response::parse(&raw, settings.token_path.as_deref())?)
}

/// RFC 7009 revocation of one token. A 200 means revoked (also for a token the provider no
/// longer knows); anything else is a failure, retryable on 5xx and network errors.
pub async fn revoke(
    http: &reqwest::Client,
    settings: &OAuthSettings,
    secret: &SecretString,
    token: &SecretString,
    hint: &str,
    allow_private: bool,
) -> Revocation {
    let Some(revocation_url) = &settings.revocation_url else {
        return Revocation::NotSupported;
    };
    let Ok(url) = net::vet(revocation_url, allow_private) else {
        return Revocation::Failed { retry: false };
    };
    let form = vec![
        ("token", token.expose_secret().to_owned()),
        ("token_type_hint", hint.to_owned()),
    ];
    match authenticated(http.post(url), settings, secret, form)
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => Revocation::Revoked,
        Ok(response) => Revocation::Failed {
            retry: response.status().is_server_error(),
        },
        Err(_) => Revocation::Failed { retry: true },
    }
}

fn authenticated(
    request: reqwest::RequestBuilder,
    settings: &OAuthSettings,
    secret: &SecretString,
    mut form: Vec<(&str, String)>,
) -> reqwest::RequestBuilder {
    let request = request.header("accept", "application/json");
    let request = match settings.token_auth {
        ClientAuth::ClientSecretBasic => request.header(
            "authorization",
            basic_credentials(&settings.client_id, secret).expose_secret(),
        ),
        ClientAuth::ClientSecretPost => {
            form.push(("client_id", settings.client_id.clone()));
            form.push(("client_secret", secret.expose_secret().to_owned()));
            request
        }
    };
    request.form(&form)
}

async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, EndpointError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| EndpointError::Unreachable)?;
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(EndpointError::Token(TokenError::InvalidResponse(
                "the response is larger than 1 MiB",
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_follow_rfc_6749_2_3_1() {
        let header = basic_credentials("s6BhdRkqt3", &SecretString::from("gX1fBat3bV".to_owned()));
        assert_eq!(header.expose_secret(), "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW");
        // Reserved characters are form-encoded before base64.
        let header = basic_credentials("id:1", &SecretString::from("p@ss w".to_owned()));
        let encoded = header.expose_secret().trim_start_matches("Basic ");
        assert_eq!(STANDARD.decode(encoded).unwrap(), b"id%3A1:p%40ss+w");
    }
}
