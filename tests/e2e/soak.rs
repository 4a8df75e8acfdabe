//! A bounded soak: two replicas on one PostgreSQL database under a mixed load (vaults
//! provisioned, API keys deposited, calls proxied through both replicas, connections and vaults
//! revoked on either one) for `CONNECT_SOAK_SECS` seconds (75 by default, trimmed for CI).
//! Asserts no 5xx, no upstream request with a credential after its revocation returned, a
//! verified audit chain for every partner, and flat memory on both replicas.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::proxy::upstream::{Answer, Upstream};
use crate::support::{Backend, Partner, Server, TestApp};

/// A deposited connection still in use.
#[derive(Clone)]
struct Live {
    partner: usize,
    vault: String,
    connection: String,
    key: String,
}

/// A revocation: the keys it ended and when the DELETE returned.
struct Ended {
    keys: Vec<String>,
    returned: Instant,
}

/// What every worker shares.
struct Load {
    http: reqwest::Client,
    bases: [String; 2],
    partners: Vec<Partner>,
    live: Mutex<Vec<Live>>,
    ended: Mutex<Vec<Ended>>,
    /// Answers with a 5xx status, by "METHOD route status".
    server_errors: Mutex<Vec<String>>,
    calls: AtomicU64,
    proxied: AtomicU64,
    deadline: Instant,
}

impl Load {
    fn base(&self) -> &str {
        &self.bases[rand::thread_rng().gen_range(0..2)]
    }

    /// Sends a request and records a 5xx; returns the status and the JSON body, if any.
    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.expect("the replica answered");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        if status >= 500 {
            self.server_errors
                .lock()
                .unwrap()
                .push(format!("{what} {status} {body}"));
        }
        (status, body)
    }

    fn running(&self) -> bool {
        Instant::now() < self.deadline
    }
}

fn soak_duration() -> Duration {
    let secs = std::env::var("CONNECT_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(75);
    Duration::from_secs(secs)
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kib * 1024
}

/// Creates vaults and deposits keys into them.
async fn provision(load: Arc<Load>, worker: usize) {
    let mut n = 0;
    while load.running() {
        n += 1;
        let partner = rand::thread_rng().gen_range(0..load.partners.len());
        let admin = &load.partners[partner].key;
        let (status, vault) = load
            .send(
                "POST /v1/vaults",
                load.http
                    .post(format!("{}/v1/vaults", load.base()))
                    .bearer_auth(admin)
                    .json(&json!({"external_user_id": format!("soak-{worker}-{n}")})),
            )
            .await;
        assert_eq!(status, 201, "create vault: {vault}");
        let vault = vault["id"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            let key = format!("soak-key-{}", ulid::Ulid::new());
            let (status, created) = load
                .send(
                    "POST /v1/vaults/{id}/connections",
                    load.http
                        .post(format!("{}/v1/vaults/{vault}/connections", load.base()))
                        .bearer_auth(admin)
                        .header("Idempotency-Key", format!("soak-{}", ulid::Ulid::new()))
                        .json(&json!({"integration": "target", "api_key": key})),
                )
                .await;
            if status == 404 {
                // The revoker deleted this vault in between.
                break;
            }
            assert_eq!(status, 201, "deposit: {created}");
            load.live.lock().unwrap().push(Live {
                partner,
                vault: vault.clone(),
                connection: created["id"].as_str().unwrap().to_owned(),
                key,
            });
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Proxies calls through random live connections on random replicas.
async fn call(load: Arc<Load>) {
    while load.running() {
        let picked = load
            .live
            .lock()
            .unwrap()
            .choose(&mut rand::thread_rng())
            .cloned();
        let Some(live) = picked else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let (status, body) = load
            .send(
                "GET /v1/proxy/{id}/*",
                load.http
                    .get(format!("{}/v1/proxy/{}/soak", load.base(), live.connection))
                    .bearer_auth(&load.partners[live.partner].key),
            )
            .await;
        // 409: revoked between the pick and the call.
        assert!(
            status == 200 || status == 409,
            "proxy answered {status}: {body}"
        );
        load.proxied.fetch_add(1, Ordering::Relaxed);
    }
}

/// Revokes a random live connection, or now and then its whole vault, on a random replica.
async fn revoke(load: Arc<Load>) {
    while load.running() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let whole_vault = rand::thread_rng().gen_bool(0.25);
        let victims: Vec<Live> = {
            let mut live = load.live.lock().unwrap();
            if live.len() < 4 {
                continue;
            }
            let at = rand::thread_rng().gen_range(0..live.len());
            let chosen = live[at].clone();
            if whole_vault {
                let (gone, kept) = live.drain(..).partition(|l| l.vault == chosen.vault);
                *live = kept;
                gone
            } else {
                vec![live.swap_remove(at)]
            }
        };
        let first = &victims[0];
        let path = if whole_vault {
            format!("/v1/vaults/{}", first.vault)
        } else {
            format!(
                "/v1/vaults/{}/connections/{}",
                first.vault, first.connection
            )
        };
        let (status, body) = load
            .send(
                if whole_vault {
                    "DELETE /v1/vaults/{id}"
                } else {
                    "DELETE /v1/vaults/{id}/connections/{id}"
                },
                load.http
                    .delete(format!("{}{path}", load.base()))
                    .bearer_auth(&load.partners[first.partner].key),
            )
            .await;
        let returned = Instant::now();
        assert_eq!(status, 200, "revoke: {body}");
        load.ended.lock().unwrap().push(Ended {
            keys: victims.iter().map(|v| v.key.clone()).collect(),
            returned,
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_stay_correct_and_flat_under_a_mixed_load() {
    let upstream = Upstream::start(Answer::Echo).await;
    let app = TestApp::spawn_with(
        Backend::Postgres,
        &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")],
    )
    .await;
    let mut env = app.env.clone();
    env.retain(|(k, _)| k != "CONNECT_LISTEN");
    env.push(("CONNECT_LISTEN".into(), "127.0.0.1:0".into()));
    let second = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("second replica:\n{log}"));
    let partners = vec![
        Partner {
            id: app.partner.id.clone(),
            key: app.partner.key.clone(),
        },
        app.new_partner("soak-beta"),
    ];
    let integration = json!({"key": "target", "provider": "custom", "auth": {"type": "api_key"},
        "api": {"base_url": upstream.base, "allowed_hosts": ["127.0.0.1"]},
        "inject": {"style": "bearer"}});
    for partner in &partners {
        let response = app
            .post(&partner.key, "/v1/integrations", &integration)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    let duration = soak_duration();
    let started = Instant::now();
    let load = Arc::new(Load {
        http: reqwest::Client::new(),
        bases: [app.server.base.clone(), second.base.clone()],
        partners,
        live: Mutex::new(Vec::new()),
        ended: Mutex::new(Vec::new()),
        server_errors: Mutex::new(Vec::new()),
        calls: AtomicU64::new(0),
        proxied: AtomicU64::new(0),
        deadline: started + duration,
    });
    let mut workers = Vec::new();
    for worker in 0..2 {
        workers.push(tokio::spawn(provision(load.clone(), worker)));
    }
    for _ in 0..6 {
        workers.push(tokio::spawn(call(load.clone())));
    }
    workers.push(tokio::spawn(revoke(load.clone())));

    let pids = [app.server.child.id(), second.child.id()];
    // Warm-up: a fifth of the run (at least 10 s); the comparison is with the end of the run.
    tokio::time::sleep((duration / 5).max(Duration::from_secs(10)).min(duration)).await;
    let warm = pids.map(rss);
    for worker in workers {
        worker.await.unwrap();
    }
    let end = pids.map(rss);

    let errors = load.server_errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "the service answered 5xx: {errors:?}");

    let seen = upstream.requests();
    let ended = std::mem::take(&mut *load.ended.lock().unwrap());
    assert!(ended.len() > 5, "too few revocations ({})", ended.len());
    for end in ended.iter() {
        for key in &end.keys {
            let marker = format!("Bearer {key}\r\n");
            let late = seen
                .iter()
                .filter(|s| s.at >= end.returned && s.head.contains(&marker))
                .count();
            assert_eq!(
                late, 0,
                "{late} upstream requests carried a key after its revocation returned"
            );
        }
    }

    for partner in &load.partners {
        for base in &load.bases {
            let verify: Value = load
                .http
                .get(format!("{base}/v1/audit/verify"))
                .bearer_auth(&partner.key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(verify["ok"], true, "audit verify: {verify}");
        }
    }

    eprintln!(
        "soak {:?}: {} calls ({} proxied), {} upstream requests, {} revocations; RSS warm {:?} end {:?} MiB",
        started.elapsed(),
        load.calls.load(Ordering::Relaxed),
        load.proxied.load(Ordering::Relaxed),
        seen.len(),
        ended.len(),
        warm.map(|b| b >> 20),
        end.map(|b| b >> 20),
    );
    for (warm, end) in warm.iter().zip(end) {
        assert!(
            end as f64 <= *warm as f64 * 1.5 + 20.0 * 1024.0 * 1024.0,
            "memory grew from {} MiB after warm-up to {} MiB",
            warm >> 20,
            end >> 20
        );
    }
}
