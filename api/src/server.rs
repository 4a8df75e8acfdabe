//! Start-up and the HTTP server: configuration → database → master key → routes.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::middleware::{self, DefaultHeaders};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use connect_broker::cache::Cache;
use connect_broker::fleet::{Fleet, FleetSettings};
use connect_broker::keys::live::LiveRing;
use connect_broker::keys::{self, KeySource, LoadOutcome};
use connect_broker::net::ResolverSettings;
use connect_broker::oauth::refresh::Refresher;
use connect_broker::proxy::Gate;
use connect_broker::store::{self, Db, master_keys};
use connect_broker::webhooks::delivery::{DeliverySettings, Worker, parse_schedule};

use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry;

/// Connects to the database named by the configuration.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let url = config.database_url();
    Db::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", store::redact_url(&url)))
}

/// Loads the master key from the configured source and checks it against the database.
pub async fn load_master_key(config: &Config, db: &Db) -> anyhow::Result<LoadOutcome> {
    let source = KeySource::parse(config.master_key.as_deref())?;
    let may_create = !master_keys::any_registered(db).await?;
    let data_dir = config.data_dir.clone();
    let source_for_load = source.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        keys::source::load(&source_for_load, &data_dir, may_create)
    })
    .await
    .context("the master key loader stopped")??;
    master_keys::reconcile(db, &outcome.ring, &outcome.resolved.to_string()).await?;
    Ok(outcome)
}

/// Runs the server until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    db.migrate().await.context("database migration failed")?;
    let outcome = load_master_key(&config, &db).await?;
    let schedule = parse_schedule(&config.webhook_retry_schedule)
        .map_err(|e| anyhow::anyhow!("CONNECT_WEBHOOK_RETRY_SCHEDULE: {e}"))?;

    let listener = TcpListener::bind(&config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        database = %store::redact_url(&config.database_url()),
        backend = db.backend().name(),
        master_key_source = %outcome.resolved,
        master_key_version = format!("mk{}", outcome.ring.current_version()),
        master_key_created = outcome.created,
        listen = %address,
        public_url = %config.public_url,
        "agentsecrets-connect started"
    );
    for warning in outcome.warnings.iter().chain(config.warnings().iter()) {
        tracing::warn!("{warning}");
    }

    let resolver = ResolverSettings {
        allow_private: config.allow_private_upstreams,
        pinned: match &config.resolve {
            Some(text) => ResolverSettings::parse_pinned(text)
                .map_err(|e| anyhow::anyhow!("CONNECT_RESOLVE: {e}"))?,
            None => Default::default(),
        },
    };
    let (http, resolver) = connect_broker::net::client_with_settings(resolver);
    let gate = Arc::new(Gate::new(std::time::Duration::from_secs(
        config.upstream_timeout_secs.max(1),
    )));
    let fleet = Fleet::join(
        db.clone(),
        gate.clone(),
        Arc::new(Cache::default()),
        FleetSettings::default(),
    )
    .await?;
    // Retired versions stay out of memory even if the source still holds them.
    let retired: Vec<i64> = master_keys::list(&db)
        .await?
        .into_iter()
        .filter(|r| r.retired_at.is_some())
        .map(|r| r.version)
        .collect();
    let ring = outcome.ring.without(&retired).with_context(|| {
        format!(
            "master key source {} holds only retired versions",
            outcome.resolved
        )
    })?;
    let keys = Arc::new(LiveRing::new(
        ring,
        outcome.resolved.clone(),
        config.data_dir.clone(),
    ));
    connect_broker::keys::live::follow(
        keys.clone(),
        db.clone(),
        fleet.clone(),
        std::time::Duration::from_secs(config.master_key_poll_secs.max(1)),
    );
    let webhooks = Worker::start(
        db.clone(),
        keys.clone(),
        connect_broker::net::client((*resolver).clone()),
        DeliverySettings {
            schedule,
            allow_private: config.allow_private_upstreams,
            ..DeliverySettings::default()
        },
    );
    let (audit, audit_writer) = connect_broker::audit_batch::AuditBatcher::start(db.clone())
        .map_err(|e| anyhow::anyhow!("starting the audit writer: {e}"))?;
    let state = AppState {
        db: db.clone(),
        keys,
        config: Arc::new(config.clone()),
        metrics: telemetry::metrics_handle(),
        http,
        refresher: Arc::new(Refresher::new(
            connect_broker::net::client((*resolver).clone()),
            std::time::Duration::from_secs(config.refresh_margin_secs),
            config.allow_private_upstreams,
        )),
        resolver,
        audit,
        vault_writer: connect_broker::vault_batch::VaultWriter::start(db.clone()),
        gate: gate.clone(),
        fleet: fleet.clone(),
    };
    let mut server = HttpServer::new(move || app(state.clone()))
        .listen(listener)?
        .shutdown_timeout(15);
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    let served = server.run().await;
    webhooks.stop().await;
    audit_writer.stop().await;
    served?;
    fleet.leave().await;
    tracing::info!("agentsecrets-connect stopped");
    db.close().await;
    Ok(())
}

/// The application: middleware, shared state and routes.
pub fn app(
    state: AppState,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.max_body_bytes;
    App::new()
        .app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::PathConfig::default().error_handler(|_, _| ApiError::RouteNotFound.into()))
        .wrap(
            DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("Referrer-Policy", "no-referrer")),
        )
        .wrap(middleware::from_fn(telemetry::observe))
        .configure(crate::routes::configure)
        .default_service(web::to(|request: actix_web::HttpRequest| async move {
            // A documented path with another method is 405 with `Allow`, anything else 404.
            let error = match crate::openapi::allowed_methods(request.path()) {
                Some(allow) => ApiError::MethodNotAllowed { allow },
                None => ApiError::RouteNotFound,
            };
            Err::<actix_web::HttpResponse, _>(error)
        }))
}
