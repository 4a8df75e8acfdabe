//! The OpenAPI document, derived from the route annotations and the SDK's wire types.

use std::sync::OnceLock;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    api_keys, audit, connections, health, integrations, proxy, settings, vaults, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AgentSecrets Connect",
        description = "Credential infrastructure for platforms: one sealed vault per end user, hosted OAuth \
consent, and an injection proxy that uses a credential without ever returning it. No endpoint returns a \
credential value. Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    servers(
        (url = "http://127.0.0.1:8080", description = "The default listen address; a deployment serves at its CONNECT_PUBLIC_URL")
    ),
    paths(
        vaults::create, vaults::list, vaults::get, vaults::delete,
        api_keys::create, api_keys::list, api_keys::revoke,
        audit::list, audit::verify,
        integrations::providers, integrations::create, integrations::list, integrations::get, integrations::update, integrations::delete,
        settings::get, settings::put,
        connections::create_session, connections::deposit, connections::list, connections::get, connections::delete,
        webhooks::create, webhooks::list, webhooks::get, webhooks::delete, webhooks::deliveries,
        proxy::documented_get, proxy::documented_post, proxy::documented_put, proxy::documented_patch, proxy::documented_delete,
        health::healthz, health::readyz, health::metrics,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "vaults", description = "One sealed credential vault per end user"),
        (name = "api-keys", description = "Partner API keys and their scopes"),
        (name = "audit", description = "The tamper-evident audit log"),
        (name = "integrations", description = "Providers and how the partner connects to each"),
        (name = "settings", description = "Partner settings"),
        (name = "connections", description = "Connect sessions and the connections they create"),
        (name = "webhooks", description = "Signed notifications of connection and vault changes"),
        (name = "proxy", description = "Use a credential without seeing it"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("A partner API key: `Authorization: Bearer acs_…`".into());
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// The document as pretty JSON with a trailing newline: the bytes of `openapi/openapi.json`.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        text.push('\n');
        text
    })
}

/// The methods the document lists for the path template that `path` matches (`GET, POST`), or
/// `None` when no documented path matches. The routes are the document's source, so this is
/// also the router's own table.
pub fn allowed_methods(path: &str) -> Option<String> {
    static TABLE: OnceLock<Vec<(Vec<String>, String)>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let doc: serde_json::Value =
            serde_json::from_str(document()).expect("the OpenAPI document is JSON");
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(template, item)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let methods = item
                    .as_object()
                    .map(|ops| {
                        ops.keys()
                            .filter(|m| m.as_str() != "parameters")
                            .map(|m| m.to_ascii_uppercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    table.iter().find_map(|(template, methods)| {
        let matches = template.len() == segments.len()
            && template
                .iter()
                .zip(&segments)
                .all(|(t, s)| (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s);
        matches.then(|| methods.clone())
    })
}
