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
        license(name = "Apache-2.0")
    ),
    paths(
        vaults::create, vaults::list, vaults::get, vaults::delete,
        api_keys::create, api_keys::list, api_keys::revoke,
        audit::list, audit::verify,
        integrations::providers, integrations::create, integrations::list, integrations::get, integrations::update, integrations::delete,
        settings::get, settings::put,
        connections::create_session, connections::deposit, connections::list, connections::get, connections::delete,
        webhooks::create, webhooks::list, webhooks::get, webhooks::delete, webhooks::deliveries,
        proxy::documented,
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
