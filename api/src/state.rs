//! What every handler shares.

use std::sync::Arc;

use connect_broker::keys::MasterKeyRing;
use connect_broker::store::Db;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub keys: Arc<MasterKeyRing>,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
}
