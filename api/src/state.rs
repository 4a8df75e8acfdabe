//! What every handler shares.

use std::sync::Arc;

use connect_broker::connections::RevokeContext;
use connect_broker::fleet::Fleet;
use connect_broker::keys::live::LiveRing;
use connect_broker::oauth::flow::FlowContext;
use connect_broker::oauth::refresh::Refresher;
use connect_broker::proxy::{Gate, ProxyContext};
use connect_broker::store::Db;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// The master key ring; follows a rotation while the server runs.
    pub keys: Arc<LiveRing>,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// The one hardened outbound client.
    pub http: reqwest::Client,
    pub refresher: Arc<Refresher>,
    /// Between proxied requests and revocations, per connection.
    pub gate: Arc<Gate>,
    /// This replica among the others on the store: the store revision, the cache, revocation
    /// acknowledgements.
    pub fleet: Arc<Fleet>,
    /// The group-commit writer of proxied calls' audit events.
    pub audit: connect_broker::audit_batch::AuditBatcher,
    /// The group-commit writer of new vaults.
    pub vault_writer: connect_broker::vault_batch::VaultWriter,
    /// The outbound client's resolver settings.
    pub resolver: Arc<connect_broker::net::ResolverSettings>,
}

impl AppState {
    pub fn flow(&self) -> FlowContext<'_> {
        FlowContext {
            db: &self.db,
            keys: self.keys.current(),
            http: &self.http,
            public_url: &self.config.public_url,
            allow_private: self.config.allow_private_upstreams,
        }
    }

    pub fn revoker(&self) -> RevokeContext<'_> {
        RevokeContext {
            fleet: &self.fleet,
            db: &self.db,
            keys: self.keys.current(),
            http: &self.http,
            allow_private: self.config.allow_private_upstreams,
        }
    }

    pub fn proxy(&self) -> ProxyContext<'_> {
        ProxyContext {
            gate: &self.gate,
            fleet: &self.fleet,
            audit: &self.audit,
            resolver: &self.resolver,
            db: &self.db,
            keys: self.keys.current(),
            http: &self.http,
            refresher: &self.refresher,
            allow_private: self.config.allow_private_upstreams,
        }
    }
}
