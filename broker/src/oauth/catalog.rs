//! The built-in OAuth provider templates: endpoints, quirks and API hosts for providers we know.
//!
//! Pure data. An integration names a template by `key` and overrides what it needs; a `custom`
//! provider fills the same fields itself. Each entry was checked against the provider's own
//! documentation (its `docs_url`); a value we could not confirm says so in a comment beside it.

use serde::{Deserialize, Serialize};

/// How the token endpoint wants the client to prove who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Client id and secret in an HTTP Basic `Authorization` header (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` as fields of the form-encoded request body.
    ClientSecretPost,
}

/// One provider's OAuth 2.0 authorization-code setup and the API it unlocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderTemplate {
    /// Stable lowercase identifier, e.g. `github`.
    pub key: &'static str,
    /// Display name for the hosted connect page.
    pub name: &'static str,
    /// Where the user's browser is sent to consent.
    pub authorization_url: &'static str,
    /// Where the code (and later the refresh token) is exchanged.
    pub token_url: &'static str,
    /// An RFC 7009 endpoint (form body with `token`), or `None` when the provider has none in
    /// that form; provider-specific revocation APIs are not listed here.
    pub revocation_url: Option<&'static str>,
    /// The issuer identifier the provider publishes, set only where its authorization
    /// responses carry an RFC 9207 `iss` we can compare against it.
    pub issuer: Option<&'static str>,
    /// What joins scopes in the `scope` request parameter.
    pub scope_separator: &'static str,
    /// The authorization-request parameter that carries the scopes, normally `scope`.
    pub scope_param: &'static str,
    /// Whether the provider accepts PKCE with `S256` from a confidential client.
    pub pkce: bool,
    /// How the token endpoint wants client credentials.
    pub client_auth: ClientAuth,
    /// Dotted path to the access token in the token response when it is not `access_token`.
    pub token_path: Option<&'static str>,
    /// Scopes requested when the integration names none.
    pub default_scopes: &'static [&'static str],
    /// Fixed extra parameters for the authorization request.
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
    /// The API root that requests are proxied to by default.
    pub api_base_url: &'static str,
    /// Hosts the proxy may send this provider's tokens to: exact names, or `*.domain` for
    /// any subdomain of `domain` (not `domain` itself).
    pub allowed_hosts: &'static [&'static str],
    /// Whether the provider issues refresh tokens at all.
    pub refresh_tokens: bool,
    /// The provider's OAuth documentation the values were taken from.
    pub docs_url: &'static str,
}

impl ProviderTemplate {
    /// Whether `host` is on this template's allowlist. Comparison ignores ASCII case.
    pub fn allows_host(&self, host: &str) -> bool {
        self.allowed_hosts
            .iter()
            .any(|entry| host_matches(entry, host))
    }
}

/// Every built-in template, in a stable order.
pub fn all() -> &'static [ProviderTemplate] {
    TEMPLATES
}

/// The template with this `key`, if there is one.
pub fn get(key: &str) -> Option<&'static ProviderTemplate> {
    TEMPLATES.iter().find(|template| template.key == key)
}

fn host_matches(entry: &str, host: &str) -> bool {
    match entry.strip_prefix("*.") {
        Some(domain) => host
            .to_ascii_lowercase()
            .strip_suffix(&domain.to_ascii_lowercase())
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|subdomain| !subdomain.is_empty()),
        None => entry.eq_ignore_ascii_case(host),
    }
}

/// What most providers share, so each entry below states only where it differs: no RFC 7009
/// endpoint, no `iss` to check, scopes space-separated in `scope`, the token at
/// `access_token`, no extra authorization parameters, refresh tokens issued. Every entry sets
/// the remaining fields itself.
const COMMON: ProviderTemplate = ProviderTemplate {
    key: "",
    name: "",
    authorization_url: "",
    token_url: "",
    revocation_url: None,
    issuer: None,
    scope_separator: " ",
    scope_param: "scope",
    pkce: false,
    client_auth: ClientAuth::ClientSecretBasic,
    token_path: None,
    default_scopes: &[],
    extra_authorize_params: &[],
    api_base_url: "",
    allowed_hosts: &[],
    refresh_tokens: true,
    docs_url: "",
};

static TEMPLATES: &[ProviderTemplate] = &[
    // OAuth apps. PKCE (S256 only) since GitHub's changelog of 2025-07-14; older copies of the
    // docs still say otherwise. No refresh tokens (GitHub Apps with expiring tokens get them).
    // The token endpoint answers form-encoded unless sent `Accept: application/json`. Issuer
    // from GitHub's public-preview metadata; callbacks carry it as `iss` since April 2026.
    ProviderTemplate {
        key: "github",
        name: "GitHub",
        authorization_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        issuer: Some("https://github.com/login/oauth"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["read:user"],
        api_base_url: "https://api.github.com",
        allowed_hosts: &["api.github.com", "uploads.github.com"],
        refresh_tokens: false,
        docs_url: "https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
        ..COMMON
    },
    // gitlab.com only; a self-managed instance is a custom provider with its own host. GitLab
    // is an OIDC issuer (https://gitlab.com), but we found no sign that it sends `iss` in
    // authorization responses, so no issuer is set.
    ProviderTemplate {
        key: "gitlab",
        name: "GitLab",
        authorization_url: "https://gitlab.com/oauth/authorize",
        token_url: "https://gitlab.com/oauth/token",
        revocation_url: Some("https://gitlab.com/oauth/revoke"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["read_user"],
        api_base_url: "https://gitlab.com/api/v4",
        allowed_hosts: &["gitlab.com"],
        docs_url: "https://docs.gitlab.com/api/oauth2/",
        ..COMMON
    },
    // Google returns `iss` in callbacks without advertising it in its discovery document, and
    // not for every user, so a callback without `iss` must still be accepted. Hosts are listed
    // one by one: no wildcard over googleapis.com.
    ProviderTemplate {
        key: "google",
        name: "Google",
        authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
        token_url: "https://oauth2.googleapis.com/token",
        revocation_url: Some("https://oauth2.googleapis.com/revoke"),
        issuer: Some("https://accounts.google.com"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["openid", "email"],
        extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        api_base_url: "https://www.googleapis.com",
        allowed_hosts: &[
            "www.googleapis.com",
            "gmail.googleapis.com",
            "sheets.googleapis.com",
            "docs.googleapis.com",
            "people.googleapis.com",
        ],
        docs_url: "https://developers.google.com/identity/protocols/oauth2/web-server",
        ..COMMON
    },
    // The multi-tenant `common` endpoint; its issuer depends on the user's tenant, so none is
    // fixed here. No RFC 7009 endpoint. `offline_access` is what yields a refresh token.
    ProviderTemplate {
        key: "microsoft",
        name: "Microsoft",
        authorization_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["offline_access", "User.Read"],
        api_base_url: "https://graph.microsoft.com",
        allowed_hosts: &["graph.microsoft.com"],
        docs_url: "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow",
        ..COMMON
    },
    // User tokens: scopes go in `user_scope`, the token comes back under `authed_user`.
    // `auth.revoke` is not RFC 7009. PKCE exists, but enabling it makes the app a public client
    // for good. Refresh tokens only with token rotation on; where a refresh response puts the
    // new token was not confirmed.
    ProviderTemplate {
        key: "slack",
        name: "Slack",
        authorization_url: "https://slack.com/oauth/v2/authorize",
        token_url: "https://slack.com/api/oauth.v2.access",
        scope_separator: ",",
        scope_param: "user_scope",
        pkce: false,
        client_auth: ClientAuth::ClientSecretBasic,
        token_path: Some("authed_user.access_token"),
        default_scopes: &["users:read"],
        api_base_url: "https://slack.com/api",
        allowed_hosts: &["slack.com", "files.slack.com"],
        docs_url: "https://api.slack.com/authentication/oauth-v2",
        ..COMMON
    },
    // No scopes: access is chosen page by page at consent. The docs show JSON token requests
    // (form bodies not confirmed); revoke wants JSON and a `Notion-Version` header, as API calls
    // do, so it is not RFC 7009. PKCE is not documented.
    ProviderTemplate {
        key: "notion",
        name: "Notion",
        authorization_url: "https://api.notion.com/v1/oauth/authorize",
        token_url: "https://api.notion.com/v1/oauth/token",
        pkce: false,
        client_auth: ClientAuth::ClientSecretBasic,
        default_scopes: &[],
        extra_authorize_params: &[("owner", "user")],
        api_base_url: "https://api.notion.com",
        allowed_hosts: &["api.notion.com"],
        docs_url: "https://developers.notion.com/docs/authorization",
        ..COMMON
    },
    // Production login host (sandboxes use test.salesforce.com). API calls go to the org's own
    // `instance_url` from the token response; the generic login host stands in as the base.
    // The wildcard is only the outer bound: a connection should be narrowed to its own
    // instance host, since another org's custom Apex endpoint could read a stray token.
    ProviderTemplate {
        key: "salesforce",
        name: "Salesforce",
        authorization_url: "https://login.salesforce.com/services/oauth2/authorize",
        token_url: "https://login.salesforce.com/services/oauth2/token",
        revocation_url: Some("https://login.salesforce.com/services/oauth2/revoke"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["api", "refresh_token"],
        api_base_url: "https://login.salesforce.com",
        allowed_hosts: &["login.salesforce.com", "*.my.salesforce.com"],
        docs_url: "https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_web_server_flow.htm",
        ..COMMON
    },
    // The date-versioned OAuth API (2026-03); v1 token endpoints retire on 2027-02-16. PKCE is
    // inferred from the token endpoint's `code_verifier` field (authorize side not confirmed);
    // the `oauth` default scope was not re-checked for HubSpot's newer developer platform.
    ProviderTemplate {
        key: "hubspot",
        name: "HubSpot",
        authorization_url: "https://app.hubspot.com/oauth/authorize",
        token_url: "https://api.hubapi.com/oauth/2026-03/token",
        revocation_url: Some("https://api.hubapi.com/oauth/2026-03/token/revoke"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["oauth"],
        api_base_url: "https://api.hubapi.com",
        allowed_hosts: &["api.hubapi.com"],
        docs_url: "https://developers.hubspot.com/docs/api-reference/latest/authentication/manage-oauth-tokens",
        ..COMMON
    },
    // Jira and Confluence Cloud (3LO). Calls use the generic gateway host with the site's cloud
    // id in the path (`/ex/jira/{cloudid}/...`, from `/oauth/token/accessible-resources`). The
    // docs show a JSON token request (form bodies not confirmed) and document neither PKCE nor
    // revocation. Refresh tokens rotate and need `offline_access`; `read:me` needs the User
    // Identity API enabled on the app.
    ProviderTemplate {
        key: "atlassian",
        name: "Atlassian",
        authorization_url: "https://auth.atlassian.com/authorize",
        token_url: "https://auth.atlassian.com/oauth/token",
        pkce: false,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["read:me", "offline_access"],
        extra_authorize_params: &[("audience", "api.atlassian.com"), ("prompt", "consent")],
        api_base_url: "https://api.atlassian.com",
        allowed_hosts: &["api.atlassian.com"],
        docs_url: "https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/",
        ..COMMON
    },
    // Refresh tokens for every app since 2026-04-01. Linear documents a revoke endpoint
    // (https://api.linear.app/oauth/revoke) but we could not confirm it takes the RFC 7009
    // form, so it is left out.
    ProviderTemplate {
        key: "linear",
        name: "Linear",
        authorization_url: "https://linear.app/oauth/authorize",
        token_url: "https://api.linear.app/oauth/token",
        scope_separator: ",",
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["read"],
        api_base_url: "https://api.linear.app",
        allowed_hosts: &["api.linear.app"],
        docs_url: "https://linear.app/developers/oauth-2-0-authentication",
        ..COMMON
    },
    // `token_access_type=offline` asks for a refresh token. `/2/auth/token/revoke` is a
    // bearer-authenticated RPC, not RFC 7009. File content goes through content.dropboxapi.com.
    ProviderTemplate {
        key: "dropbox",
        name: "Dropbox",
        authorization_url: "https://www.dropbox.com/oauth2/authorize",
        token_url: "https://api.dropboxapi.com/oauth2/token",
        pkce: true,
        client_auth: ClientAuth::ClientSecretBasic,
        default_scopes: &["account_info.read"],
        extra_authorize_params: &[("token_access_type", "offline")],
        api_base_url: "https://api.dropboxapi.com",
        allowed_hosts: &["api.dropboxapi.com", "content.dropboxapi.com"],
        docs_url: "https://developers.dropbox.com/oauth-guide",
        ..COMMON
    },
    // Scopes are chosen on the Marketplace app and may be left out of the request, hence no
    // defaults. Revocation takes `token` in a form body with Basic client auth. Zoom defaults
    // the PKCE method to `plain`, so `S256` must be sent explicitly.
    ProviderTemplate {
        key: "zoom",
        name: "Zoom",
        authorization_url: "https://zoom.us/oauth/authorize",
        token_url: "https://zoom.us/oauth/token",
        revocation_url: Some("https://zoom.us/oauth/revoke"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretBasic,
        default_scopes: &[],
        api_base_url: "https://api.zoom.us/v2",
        allowed_hosts: &["api.zoom.us"],
        docs_url: "https://developers.zoom.us/docs/integrations/oauth/",
        ..COMMON
    },
    // Asana publishes an OIDC issuer (https://app.asana.com/api/1.0) but we found no sign of
    // `iss` in its callbacks. Granular scopes and "full permissions" are exclusive per app;
    // an app registered for full permissions must drop the default scope.
    ProviderTemplate {
        key: "asana",
        name: "Asana",
        authorization_url: "https://app.asana.com/-/oauth_authorize",
        token_url: "https://app.asana.com/-/oauth_token",
        revocation_url: Some("https://app.asana.com/-/oauth_revoke"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretPost,
        default_scopes: &["users:read"],
        api_base_url: "https://app.asana.com/api/1.0",
        allowed_hosts: &["app.asana.com"],
        docs_url: "https://developers.asana.com/docs/oauth",
        ..COMMON
    },
    // Checked against Discord's RFC 8414 metadata, which advertises `iss` in authorization
    // responses and PKCE S256 (absent from the prose docs). The verifier must be at least 43
    // characters, and the `role_connections.write` scope refuses PKCE.
    ProviderTemplate {
        key: "discord",
        name: "Discord",
        authorization_url: "https://discord.com/oauth2/authorize",
        token_url: "https://discord.com/api/oauth2/token",
        revocation_url: Some("https://discord.com/api/oauth2/token/revoke"),
        issuer: Some("https://discord.com"),
        pkce: true,
        client_auth: ClientAuth::ClientSecretBasic,
        default_scopes: &["identify"],
        api_base_url: "https://discord.com/api/v10",
        allowed_hosts: &["discord.com"],
        docs_url: "https://discord.com/developers/docs/topics/oauth2",
        ..COMMON
    },
    // No revocation endpoint; users remove apps from their account page.
    ProviderTemplate {
        key: "spotify",
        name: "Spotify",
        authorization_url: "https://accounts.spotify.com/authorize",
        token_url: "https://accounts.spotify.com/api/token",
        pkce: true,
        client_auth: ClientAuth::ClientSecretBasic,
        default_scopes: &["user-read-email"],
        api_base_url: "https://api.spotify.com/v1",
        allowed_hosts: &["api.spotify.com"],
        docs_url: "https://developer.spotify.com/documentation/web-api/tutorials/code-flow",
        ..COMMON
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    /// A sample of public suffixes, enough to catch an allowlist entry that names a whole
    /// registry rather than one company's hosts. Not the full Public Suffix List.
    const PUBLIC_SUFFIXES: &str = "com net org io app dev ai co us co.uk com.au \
        github.io herokuapp.com appspot.com vercel.app";

    /// Every URL a template holds, named by field; `true` for the ones requests are sent to.
    fn urls(t: &ProviderTemplate) -> Vec<(&'static str, &'static str, bool)> {
        let mut urls = vec![
            ("authorization_url", t.authorization_url, true),
            ("token_url", t.token_url, true),
            ("api_base_url", t.api_base_url, true),
            ("docs_url", t.docs_url, false),
        ];
        urls.extend(t.revocation_url.map(|url| ("revocation_url", url, true)));
        urls.extend(t.issuer.map(|url| ("issuer", url, false)));
        urls
    }

    #[test]
    fn keys_are_unique_lowercase_and_found_by_get() {
        for t in all() {
            let lowercase = !t.key.is_empty() && t.key.bytes().all(|b| b.is_ascii_lowercase());
            assert!(lowercase, "{}: key not lowercase", t.key);
            let same = all().iter().filter(|other| other.key == t.key).count();
            assert_eq!(same, 1, "{}: duplicate key", t.key);
            assert_eq!(get(t.key), Some(t), "{}: get finds another entry", t.key);
        }
    }

    #[test]
    fn every_url_is_https_and_parses() {
        for t in all() {
            for (field, raw, endpoint) in urls(t) {
                let url = Url::parse(raw).unwrap_or_else(|e| panic!("{}.{field}: {e}", t.key));
                assert_eq!(url.scheme(), "https", "{}.{field}", t.key);
                assert!(url.host_str().is_some(), "{}.{field}: no host", t.key);
                let bare = url.query().is_none() && url.fragment().is_none();
                assert!(!endpoint || bare, "{}.{field}: query or fragment", t.key);
            }
        }
    }

    #[test]
    fn api_base_host_is_on_the_allowlist() {
        for t in all() {
            let url = Url::parse(t.api_base_url).expect("checked above");
            let host = url.host_str().expect("checked above");
            assert!(t.allows_host(host), "{}: {host} not allowed", t.key);
        }
    }

    #[test]
    fn allowed_hosts_are_no_public_suffix_and_no_loose_wildcard() {
        for t in all() {
            for entry in t.allowed_hosts {
                let domain = entry.strip_prefix("*.").unwrap_or(entry);
                let suffix = PUBLIC_SUFFIXES.split_whitespace().any(|s| s == domain);
                assert!(!domain.contains('*'), "{}: stray `*` in {entry}", t.key);
                assert!(domain.contains('.'), "{}: {entry} is a bare label", t.key);
                assert!(!suffix, "{}: {entry} is a public suffix", t.key);
                assert_eq!(
                    *entry,
                    entry.to_ascii_lowercase(),
                    "{}: {entry} case",
                    t.key
                );
            }
        }
    }

    #[test]
    fn a_wildcard_matches_subdomains_only() {
        let salesforce = get("salesforce").expect("built in");
        assert!(salesforce.allows_host("acme.my.salesforce.com"));
        assert!(salesforce.allows_host("Acme.My.Salesforce.com"));
        assert!(!salesforce.allows_host("my.salesforce.com"));
        assert!(!salesforce.allows_host("evilmy.salesforce.com"));
        assert!(!salesforce.allows_host("acme.my.salesforce.com.evil.test"));
    }

    #[test]
    fn slack_reads_the_user_token_under_authed_user() {
        let slack = get("slack").expect("built in");
        assert_eq!(slack.token_path, Some("authed_user.access_token"));
        assert_eq!(slack.scope_separator, ",");
        assert_eq!(slack.scope_param, "user_scope");
    }

    #[test]
    fn an_unknown_key_has_no_template() {
        assert!(get("nope").is_none());
    }
}
