//! Configuration: built-in defaults, then an optional TOML file (`CONNECT_CONFIG`, or
//! `connect.toml` in the working directory when present), then the environment, which wins.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `CONNECT_DATA_DIR`: where the SQLite database and, in automatic mode without a keychain,
    /// the master key file live.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite://…` or `postgres://…`; SQLite under the data dir when unset.
    pub database_url: Option<String>,
    /// `CONNECT_LISTEN`: the address to bind.
    pub listen: String,
    /// `CONNECT_PUBLIC_URL`: the base of connect and callback URLs.
    pub public_url: String,
    /// `CONNECT_MASTER_KEY`: `keyring`, `file:PATH`, `env:VAR`, or unset for automatic.
    pub master_key: Option<String>,
    /// `CONNECT_ALLOW_PRIVATE_UPSTREAMS`: let the proxy reach loopback and private addresses.
    pub allow_private_upstreams: bool,
    /// `CONNECT_LOG_FORMAT`: `json` or `pretty`.
    pub log_format: LogFormat,
    /// `CONNECT_MAX_BODY_BYTES`: the largest JSON request body accepted.
    pub max_body_bytes: usize,
    /// `CONNECT_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: Option<usize>,
    /// `CONNECT_UPSTREAM_TIMEOUT_SECS`: the deadline of one proxied upstream call, body included.
    pub upstream_timeout_secs: u64,
    /// `CONNECT_RESOLVE`: host names pinned to addresses, `name=ip,…` (like curl's --resolve);
    /// the addresses are vetted like resolved ones.
    pub resolve: Option<String>,
    /// `CONNECT_REFRESH_MARGIN_SECS`: refresh an OAuth token this long before it expires.
    pub refresh_margin_secs: u64,
    /// `CONNECT_MASTER_KEY_POLL_SECS`: how often a running server looks for a new or retired
    /// master key version even when the store revision has not moved.
    pub master_key_poll_secs: u64,
    /// `CONNECT_WEBHOOK_RETRY_SCHEDULE`: seconds to wait after each failed webhook attempt,
    /// comma-separated; when they run out the endpoint is disabled.
    #[serde(deserialize_with = "text_or_number")]
    pub webhook_retry_schedule: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            master_key: None,
            allow_private_upstreams: false,
            log_format: LogFormat::Json,
            max_body_bytes: 64 * 1024,
            workers: None,
            refresh_margin_secs: 60,
            resolve: None,
            upstream_timeout_secs: 60,
            master_key_poll_secs: 10,
            webhook_retry_schedule: connect_broker::webhooks::delivery::DEFAULT_SCHEDULE_SECS
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

const ENV_KEYS: &[&str] = &[
    "data_dir",
    "listen",
    "public_url",
    "master_key",
    "allow_private_upstreams",
    "log_format",
    "max_body_bytes",
    "workers",
    "refresh_margin_secs",
    "resolve",
    "upstream_timeout_secs",
    "master_key_poll_secs",
    "webhook_retry_schedule",
];

impl Config {
    /// Reads defaults, the optional file and the environment.
    pub fn load() -> Result<Config, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match std::env::var_os("CONNECT_CONFIG") {
            Some(path) => figment = figment.merge(Toml::file_exact(PathBuf::from(path))),
            None if Path::new("connect.toml").exists() => {
                figment = figment.merge(Toml::file_exact("connect.toml"))
            }
            None => {}
        }
        figment
            .merge(Env::prefixed("CONNECT_").only(ENV_KEYS))
            .merge(Env::raw().only(&["DATABASE_URL"]))
            .extract()
            .map_err(Box::new)
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => connect_broker::store::sqlite_url(&self.data_dir),
        }
    }

    /// Warnings about weaker choices, for the start-up log.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.allow_private_upstreams {
            warnings.push(
                "CONNECT_ALLOW_PRIVATE_UPSTREAMS=true: the proxy may reach loopback, private and link-local \
                 addresses; use this only for local development and tests"
                    .to_owned(),
            );
        }
        if let Ok(url) = url::Url::parse(&self.public_url) {
            let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
            if url.scheme() == "http" && !local {
                warnings.push(format!(
                    "CONNECT_PUBLIC_URL {} is plain http on a non-loopback host: connect pages and OAuth \
                     callbacks would travel unencrypted; serve them behind TLS",
                    self.public_url
                ));
            }
        }
        warnings
    }
}

/// Reads a setting that is text but may look like a number (`CONNECT_WEBHOOK_RETRY_SCHEDULE=5`
/// arrives from the environment as one).
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Integer(u64),
        Float(f64),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Integer(n) => n.to_string(),
        TextOrNumber::Float(n) => n.to_string(),
    })
}
