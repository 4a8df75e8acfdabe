//! The routes, one module per resource, one function per verb.

pub mod api_keys;
pub mod audit;
pub mod connections;
pub mod docs;
pub mod health;
pub mod hosted;
pub mod integrations;
pub mod proxy;
pub mod settings;
pub mod vaults;
pub mod webhooks;

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(docs::openapi_json)
        .service(docs::docs_redirect)
        .service(docs::swagger())
        .service(hosted::connect_page)
        .service(hosted::start)
        .service(hosted::paste)
        .service(hosted::callback)
        // The proxy first: routes are tried in order, and it is the one on every hot path.
        .route(
            crate::telemetry::PROXY_PATTERN,
            web::route().to(proxy::forward),
        )
        .service(
            web::scope("/v1")
                .service(vaults::create)
                .service(vaults::list)
                .service(vaults::get)
                .service(vaults::delete)
                .service(api_keys::create)
                .service(api_keys::list)
                .service(api_keys::revoke)
                .service(audit::verify)
                .service(audit::list)
                .service(integrations::providers)
                .service(integrations::create)
                .service(integrations::list)
                .service(integrations::get)
                .service(integrations::update)
                .service(integrations::delete)
                .service(settings::get)
                .service(settings::put)
                .service(connections::create_session)
                .service(connections::deposit)
                .service(connections::list)
                .service(connections::get)
                .service(connections::delete)
                .service(webhooks::create)
                .service(webhooks::list)
                .service(webhooks::deliveries)
                .service(webhooks::get)
                .service(webhooks::delete),
        );
}

/// Formats an epoch-millisecond time for the API.
pub(crate) fn time(ms: i64) -> String {
    connect_broker::clock::to_rfc3339(ms)
}
