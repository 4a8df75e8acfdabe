//! The committed OpenAPI document checked by third-party tools, as a partner who never saw the
//! code would use it: `openapi-spec-validator` on the file, `schemathesis` fuzzing a live server
//! from it, and a Python client generated from it by `openapi-python-client` driving the
//! api-key flow against httpbin; `@redocly/cli` lint as well. The Python tools live in
//! `tests/peers/.venv`, redocly in `tests/peers/node_modules` (both installed by
//! `bash tests/setup`); the script and the tools' settings in `tests/conformance/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peers::httpbin;
use crate::support::{Backend, TestApp};

fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn spec_path() -> PathBuf {
    repo_root().join("openapi/openapi.json")
}

/// A program of the test virtualenv, or a panic that says how to install it.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo_root().join("tests/peers/.venv/bin").join(name);
    assert!(
        path.exists(),
        "{name} is missing ({} not found): run `bash tests/setup`",
        path.display()
    );
    path
}

/// What a finished tool run left: whether it exited 0, and everything it printed.
struct Run {
    success: bool,
    output: String,
}

/// Runs `program` with `args` and extra `env`, killing it after `limit`. Its output goes to a
/// file (a pipe could fill and stall it) and is returned whole.
fn run_tool(program: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
    let dir = tempfile::tempdir().expect("output directory");
    let log_path = dir.path().join("output");
    let log = std::fs::File::create(&log_path).expect("output file");
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("output handle")))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the tool") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut output = std::fs::read_to_string(&log_path).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n[killed after {} s]", limit.as_secs()));
    }
    Run {
        success: status.is_some_and(|s| s.success()),
        output,
    }
}

#[test]
fn the_committed_document_passes_openapi_spec_validator() {
    let spec = spec_path();
    let run = run_tool(
        &venv_tool("openapi-spec-validator"),
        &[spec.to_str().unwrap()],
        &[],
        Duration::from_secs(120),
    );

    assert!(
        run.success,
        "openapi-spec-validator failed:\n{}",
        run.output
    );
    assert!(
        run.output.contains("OK"),
        "no verdict printed:\n{}",
        run.output
    );
}

/// Redocly's recommended rules (errors fail; the three operations endpoints keep a warning for
/// having no 4xx answer, which they do not have).
#[test]
fn the_committed_document_passes_redocly_lint() {
    let redocly = repo_root().join("tests/peers/node_modules/.bin/redocly");
    assert!(
        redocly.exists(),
        "@redocly/cli is missing ({} not found): run `bash tests/setup`",
        redocly.display()
    );
    let spec = spec_path();
    let run = run_tool(
        &redocly,
        &["lint", spec.to_str().unwrap(), "--format=stylish"],
        &[
            ("REDOCLY_TELEMETRY", "off"),
            ("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true"),
        ],
        Duration::from_secs(120),
    );

    assert!(run.success, "redocly lint failed:\n{}", run.output);
    assert!(
        run.output.contains("is valid") && !run.output.contains(" error "),
        "redocly lint printed errors:\n{}",
        run.output
    );
}

/// Schemathesis with every check, a fixed seed and bounded examples, against a server on
/// SQLite with the partner's admin key. Anything it reports fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_on_a_live_server() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = spec_path();
    let config = repo_root().join("tests/conformance/schemathesis.toml");
    let auth = format!("Authorization: Bearer {}", app.partner.key);
    let base = app.server.base.clone();
    let schemathesis = venv_tool("schemathesis");

    let run = tokio::task::spawn_blocking(move || {
        run_tool(
            &schemathesis,
            &[
                "--config-file",
                config.to_str().unwrap(),
                "run",
                spec.to_str().unwrap(),
                "--url",
                &base,
                "-H",
                &auth,
                "--checks",
                "all",
                // Deleted vaults and connections stay readable as revoked tombstones by
                // contract; tests/conformance/schemathesis.toml says why this one check is off.
                "--exclude-checks",
                "use_after_free",
                "--max-examples",
                "15",
                "--seed",
                "20261204",
                "--generation-deterministic",
                "--max-time",
                "150",
                "--workers",
                "2",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            &[("SCHEMATHESIS_TELEMETRY", "false")],
            Duration::from_secs(240),
        )
    });
    let run = run.await.expect("schemathesis runner");

    assert!(
        run.success,
        "schemathesis reported failures:\n{}\n--- server log (tail) ---\n{}",
        run.output,
        tail(&app.server.logs(), 40)
    );
    assert!(
        run.output.contains("passed") && !run.output.contains("failed"),
        "schemathesis printed no clean summary:\n{}",
        run.output
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Generates the Python client from the committed document into a temporary directory and
/// returns that directory (the package `connect_client` is inside it).
fn generate_python_client() -> tempfile::TempDir {
    let out = tempfile::tempdir().expect("client directory");
    let target = out.path().join("connect_client");
    let spec = spec_path();
    let config = repo_root().join("tests/conformance/client-config.yml");
    let run = run_tool(
        &venv_tool("openapi-python-client"),
        &[
            "generate",
            "--path",
            spec.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--meta",
            "none",
            "--output-path",
            target.to_str().unwrap(),
            "--fail-on-warning",
        ],
        &[],
        Duration::from_secs(180),
    );
    assert!(run.success, "openapi-python-client failed:\n{}", run.output);
    out
}

async fn the_generated_python_client_completes_the_api_key_flow(backend: Backend) {
    let upstream = httpbin::start().await;
    let app = TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let client_dir = tokio::task::spawn_blocking(generate_python_client)
        .await
        .expect("generator");
    let python = venv_tool("python");
    let script = repo_root().join("tests/conformance/api_key_flow.py");
    let pythonpath = client_dir.path().display().to_string();
    let base = app.server.base.clone();
    let key = app.partner.key.clone();
    let upstream_base = upstream.base.clone();

    let run = tokio::task::spawn_blocking(move || {
        run_tool(
            &python,
            &[script.to_str().unwrap()],
            &[
                ("PYTHONPATH", &pythonpath),
                ("CONNECT_URL", &base),
                ("CONNECT_API_KEY", &key),
                ("UPSTREAM_URL", &upstream_base),
            ],
            Duration::from_secs(120),
        )
    })
    .await
    .expect("script runner");

    assert!(
        run.success,
        "the api-key flow failed:\n{}\n--- server log (tail) ---\n{}",
        run.output,
        tail(&app.server.logs(), 40)
    );
    assert!(
        run.output.contains("api-key flow completed"),
        "the script did not finish:\n{}",
        run.output
    );
}

crate::on_both_backends!(the_generated_python_client_completes_the_api_key_flow);
