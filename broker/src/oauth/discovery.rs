//! OpenID Connect discovery and RFC 8414 authorization-server metadata, from an issuer.

use serde::Deserialize;

use super::catalog::ClientAuth;
use crate::error::Error;
use crate::net;

/// What an issuer's metadata says about the settings an integration needs.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    pub iss_parameter_supported: bool,
    pub pkce_s256: bool,
    pub client_auth: ClientAuth,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

/// Fetches the issuer's metadata: the OpenID location first, then the RFC 8414 one. The
/// document must name exactly the issuer it was fetched for.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
    allow_private: bool,
) -> Result<Discovered, Error> {
    let failed =
        |reason: &str| Error::invalid("auth.issuer", format!("discovery failed: {reason}"));
    let base = net::vet(issuer, allow_private)
        .map_err(|e| Error::invalid("auth.issuer", e.to_string()))?;
    let trimmed = issuer.trim_end_matches('/');
    let path = base.path().trim_end_matches('/');
    let origin = base.origin().ascii_serialization();
    let locations = [
        format!("{trimmed}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ];
    for location in locations {
        let Ok(response) = http
            .get(&location)
            .header("accept", "application/json")
            .send()
            .await
        else {
            continue;
        };
        if !response.status().is_success() {
            continue;
        }
        let metadata: Metadata = response
            .json()
            .await
            .map_err(|_| failed("the metadata is not valid JSON"))?;
        if metadata.issuer != issuer {
            return Err(failed("the metadata names a different issuer"));
        }
        let client_auth = if metadata.token_endpoint_auth_methods_supported.is_empty()
            || metadata
                .token_endpoint_auth_methods_supported
                .iter()
                .any(|m| m == "client_secret_basic")
        {
            ClientAuth::ClientSecretBasic
        } else {
            ClientAuth::ClientSecretPost
        };
        return Ok(Discovered {
            issuer: metadata.issuer,
            authorization_endpoint: metadata.authorization_endpoint,
            token_endpoint: metadata.token_endpoint,
            revocation_endpoint: metadata.revocation_endpoint,
            iss_parameter_supported: metadata.authorization_response_iss_parameter_supported,
            pkce_s256: metadata
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256"),
            client_auth,
        });
    }
    Err(failed("no metadata document answered"))
}
