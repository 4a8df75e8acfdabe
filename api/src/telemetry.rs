//! Logs and metrics.
//!
//! Logs are `tracing` events, JSON by default. The access log records method, path, status and
//! duration with the request id, never the query string (OAuth `code` and `state` travel there)
//! nor headers or bodies. Paths that carry a bearer token of their own (hosted connect pages) are
//! logged as their route pattern.
//!
//! Metrics are Prometheus counters and histograms labelled by route pattern, method and status:
//! no ids, no values.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "connect-request-id";

/// The proxy route, registered in `routes::configure`, and the prefix only it matches.
pub const PROXY_PATTERN: &str = "/v1/proxy/{connection_id}/{path:.*}";
const PROXY_PREFIX: &str = "/v1/proxy/";

/// Paths whose segments are secrets in their own right; logged as their route pattern.
const TOKEN_BEARING_PREFIXES: &[&str] = &["/connect/"];

/// Installs the global log subscriber. `RUST_LOG` refines the default `info` level. The server
/// logs to standard output; the other commands log to standard error, keeping their output
/// clean for scripts.
pub fn init_logging(format: LogFormat, to_stderr: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer =
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("static buckets are valid")
                .install_recorder()
                .expect("the metrics recorder is installed once")
        })
        .clone()
}

/// Request id, span, access log and metrics for every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = connect_broker::ids::new(connect_broker::ids::Kind::Request);
    let method = req.method().to_string();
    // Finding the pattern runs the router's matching a second time; the proxy, on every hot
    // path, is told apart by its prefix instead.
    let proxied = req
        .path()
        .strip_prefix(PROXY_PREFIX)
        .is_some_and(|rest| rest.find('/').is_some_and(|slash| slash > 0));
    let route = if proxied {
        PROXY_PATTERN.to_owned()
    } else {
        req.match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned())
    };
    let path = if TOKEN_BEARING_PREFIXES
        .iter()
        .any(|p| req.path().starts_with(p))
    {
        route.clone()
    } else {
        req.path().to_owned()
    };
    let span = tracing::info_span!("request", request_id = %request_id, partner_id = tracing::field::Empty);

    let result = next.call(req).instrument(span.clone()).await;

    let status = match &result {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            target: "access",
            method = %method,
            path = %path,
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    let labels = [
        ("route", route),
        ("method", method),
        ("status", status.to_string()),
    ];
    metrics::counter!("connect_http_requests_total", &labels).increment(1);
    metrics::histogram!("connect_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());

    result.map(|mut response| {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response
                .headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        response
    })
}
