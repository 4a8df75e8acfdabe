//! Proxied calls killed in flight: a call answered before the kill has its audit event after the
//! restart (the event is committed before the answer goes out), and the chain still verifies.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::{KILLS, assert_audit_verifies, random_delay};
use crate::on_both_backends;
use crate::proxy::api_key_connection;
use crate::proxy::upstream::{Answer, Upstream};
use crate::support::{Backend, TestApp, all_pages};

on_both_backends!(every_answered_proxied_call_has_its_event_after_a_kill);

/// Concurrent callers per round.
const CALLERS: usize = 24;

/// The paths of every `proxy.request` event on `connection`.
async fn audited_paths(app: &TestApp, connection: &str) -> BTreeSet<String> {
    let query = format!("/v1/audit?connection_id={connection}&action=proxy.request&limit=100");
    all_pages(app, &query)
        .await
        .iter()
        .filter_map(|event| event["path"].as_str().map(str::to_owned))
        .collect()
}

async fn every_answered_proxied_call_has_its_event_after_a_kill(backend: Backend) {
    let upstream = Upstream::start(Answer::Echo).await;
    let mut app =
        TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let connection = api_key_connection(&app, &upstream.base, "127.0.0.1", "crash-proxy-key").await;

    let mut answered = Vec::new();
    let mut cut_off = 0;
    for round in 0..KILLS {
        // Each caller calls until the kill cuts its connection (or the round is over); every
        // call has its own path. An answer other than 200 is a failure, not a cut-off.
        let over = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (http, url, key, over, answers) = (
                    app.http.clone(),
                    app.url(&format!("/v1/proxy/{connection}/")),
                    app.partner.key.clone(),
                    over.clone(),
                    answers.clone(),
                );
                tokio::spawn(async move {
                    let mut answered = Vec::new();
                    let mut n = 0;
                    while !over.load(Ordering::SeqCst) {
                        let path = format!("r{round}/c{caller}/n{n}");
                        n += 1;
                        match http
                            .get(format!("{url}{path}"))
                            .bearer_auth(&key)
                            .send()
                            .await
                        {
                            Ok(response) => {
                                let status = response.status();
                                assert_eq!(
                                    status,
                                    200,
                                    "{path}: {}",
                                    response.text().await.unwrap()
                                );
                                answered.push(path);
                                answers.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => return (answered, true),
                        }
                    }
                    (answered, false)
                })
            })
            .collect();
        // Kill while calls are flowing: once the restarted server (cold caches, new database
        // connections, a busy test machine) has answered, after a random while.
        let flowing = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while answers.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() < flowing {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150) + random_delay(150)).await;
        over.store(true, Ordering::SeqCst);
        app.kill_and_restart().await;
        let before = answered.len();
        for caller in callers {
            let (paths, cut) = caller.await.unwrap();
            answered.extend(paths);
            cut_off += usize::from(cut);
        }
        assert!(
            answered.len() > before,
            "round {round}: no call was answered"
        );
    }

    let audited = audited_paths(&app, &connection).await;
    let missing: Vec<&String> = answered
        .iter()
        .filter(|path| !audited.contains(&format!("/{path}")))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered calls have no audit event, e.g. {:?}",
        missing.len(),
        answered.len(),
        missing.first()
    );
    eprintln!(
        "{} calls answered before {KILLS} kills all audited; {cut_off} callers cut off",
        answered.len()
    );
    assert_audit_verifies(&app).await;
}
