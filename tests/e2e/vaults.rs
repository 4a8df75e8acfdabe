//! Vaults: create, read, list, delete, duplicates and idempotency.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, all_pages, expect_problem};

on_both_backends!(
    a_vault_is_created_read_and_listed,
    a_second_vault_for_the_same_user_conflicts_with_the_existing_id,
    deleting_a_vault_revokes_it_and_is_repeatable,
    idempotency_key_replays_the_first_result_and_refuses_a_different_body,
    concurrent_requests_with_one_idempotency_key_create_one_vault,
    lists_page_through_every_vault_once,
    a_burst_of_creations_sharing_commits_answers_each_request_alone,
);

async fn a_vault_is_created_read_and_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.partner.key;

    let response = app
        .post(
            key,
            "/v1/vaults",
            &json!({"external_user_id": "u-123", "metadata": {"plan": "pro"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("connect-request-id"));
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("vlt_"), "{created}");
    assert_eq!(created["external_user_id"], "u-123");
    assert_eq!(created["status"], "active");
    assert_eq!(created["metadata"], json!({"plan": "pro"}));

    let fetched: Value = app
        .get(key, &format!("/v1/vaults/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, created);

    let by_user: Value = app
        .get(key, "/v1/vaults?external_user_id=u-123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_user["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_user["data"][0]["id"], id);
    let other_user: Value = app
        .get(key, "/v1/vaults?external_user_id=u-999")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other_user["data"], json!([]));
}

async fn a_second_vault_for_the_same_user_conflicts_with_the_existing_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.create_vault("u-dup").await;

    let response = app
        .post(
            &app.partner.key,
            "/v1/vaults",
            &json!({"external_user_id": "u-dup"}),
        )
        .send()
        .await
        .unwrap();

    let problem = expect_problem(response, 409, "already_exists").await;
    assert_eq!(problem["existing_id"], first.as_str());
}

async fn deleting_a_vault_revokes_it_and_is_repeatable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_vault("u-gone").await;

    let response = app
        .delete(&app.partner.key, &format!("/v1/vaults/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": id, "status": "revoked", "connections_revoked": 0})
    );

    let again: Value = app
        .delete(&app.partner.key, &format!("/v1/vaults/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "revoked");
    let fetched: Value = app
        .get(&app.partner.key, &format!("/v1/vaults/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched["status"], "revoked");
    assert!(fetched["revoked_at"].is_string());

    // The end user can be given a new vault once the old one is revoked.
    let replacement = app.create_vault("u-gone").await;
    assert_ne!(replacement, id);
}

async fn idempotency_key_replays_the_first_result_and_refuses_a_different_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let send = |body: Value| {
        app.post(&app.partner.key, "/v1/vaults", &body)
            .header("Idempotency-Key", "create-u-7")
            .send()
    };

    let first = send(json!({"external_user_id": "u-7"})).await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = send(json!({"external_user_id": "u-7"})).await.unwrap();
    assert_eq!(replay.status(), 200);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], first["id"]);

    let different = send(json!({"external_user_id": "u-8"})).await.unwrap();
    expect_problem(different, 422, "idempotency_key_reused").await;
    let listed: Value = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

async fn concurrent_requests_with_one_idempotency_key_create_one_vault(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let requests = (0..8).map(|_| {
        app.post(
            &app.partner.key,
            "/v1/vaults",
            &json!({"external_user_id": "u-race"}),
        )
        .header("Idempotency-Key", "race-1")
        .send()
    });
    let responses = futures_util::future::join_all(requests).await;

    let mut ids = Vec::new();
    for response in responses {
        let response = response.unwrap();
        assert!(
            [200, 201].contains(&response.status().as_u16()),
            "status {}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same vault: {ids:?}");
    let listed: Value = app
        .get(&app.partner.key, "/v1/vaults")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

async fn lists_page_through_every_vault_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(app.create_vault(&format!("u-page-{n}")).await);
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/vaults?limit=2&cursor={c}"),
            None => "/v1/vaults?limit=2".to_owned(),
        };
        let page: Value = app
            .get(&app.partner.key, &path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        for vault in page["data"].as_array().unwrap() {
            seen.push(vault["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, created, "oldest first, each once");
}

/// One request of a burst: the end user it is for and its `Idempotency-Key`, if any.
type Sent = (String, Option<String>);

/// Many creations at once, which the server commits several to a transaction: fresh users,
/// duplicates of one another and of an earlier vault, idempotent retries (of each other and of
/// an earlier request) and one key sent with two different bodies. Each request must get the
/// answer it would get alone, exactly the right vaults must exist, each with one audit event,
/// and the chain must verify.
async fn a_burst_of_creations_sharing_commits_answers_each_request_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let key = &app.partner.key;
    let existing = app.create_vault("u-existing").await;
    let earlier = app
        .post(key, "/v1/vaults", &json!({"external_user_id": "u-earlier"}))
        .header("Idempotency-Key", "earlier")
        .send()
        .await
        .unwrap();
    assert_eq!(earlier.status(), 201);
    let earlier: Value = earlier.json().await.unwrap();
    let earlier = earlier["id"].as_str().unwrap().to_owned();

    let mut burst: Vec<Sent> = Vec::new();
    let user = |name: String| (name, None::<String>);
    burst.extend((0..64).map(|n| user(format!("u-fresh-{n}"))));
    for n in 0..8 {
        burst.extend((0..3).map(|_| user(format!("u-dup-{n}"))));
        burst.extend((0..3).map(|_| (format!("u-retry-{n}"), Some(format!("retry-{n}")))));
    }
    burst.extend((0..4).map(|_| user("u-existing".into())));
    burst.extend((0..3).map(|_| ("u-earlier".to_owned(), Some("earlier".to_owned()))));
    burst.push(("u-other".into(), Some("earlier".into())));
    for n in 0..4 {
        for side in ["a", "b"] {
            burst.push((format!("u-mixed-{n}-{side}"), Some(format!("mixed-{n}"))));
        }
    }
    burst.shuffle(&mut rand::thread_rng());

    let app = &app;
    let answers = futures_util::future::join_all(burst.iter().map(|(user, idem)| async move {
        let mut request = app.post(key, "/v1/vaults", &json!({"external_user_id": user}));
        if let Some(idem) = idem {
            request = request.header("Idempotency-Key", idem);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (status, body)
    }))
    .await;

    // Every answer, grouped by the end user it was for: (status, vault id or existing_id).
    let mut by_user: BTreeMap<&str, Vec<(u16, String)>> = BTreeMap::new();
    for ((user, _), (status, body)) in burst.iter().zip(&answers) {
        let id = match status {
            200 | 201 => {
                assert_eq!(body["external_user_id"], user.as_str(), "{body}");
                body["id"].as_str().unwrap().to_owned()
            }
            409 => {
                assert_eq!(body["code"], "already_exists", "{body}");
                body["existing_id"].as_str().unwrap().to_owned()
            }
            422 => {
                assert_eq!(body["code"], "idempotency_key_reused", "{body}");
                String::new()
            }
            _ => panic!("{user}: unexpected answer {status} {body}"),
        };
        by_user.entry(user).or_default().push((*status, id));
    }
    let statuses = |user: &str| -> Vec<u16> {
        let mut statuses: Vec<u16> = by_user[user].iter().map(|(s, _)| *s).collect();
        statuses.sort();
        statuses
    };
    let only_id = |user: &str| -> String {
        let ids: BTreeSet<&String> = by_user[user].iter().map(|(_, id)| id).collect();
        assert_eq!(
            ids.len(),
            1,
            "{user}: every answer names one vault: {ids:?}"
        );
        ids.into_iter().next().unwrap().clone()
    };

    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    expected.insert("u-existing".into(), existing.clone());
    expected.insert("u-earlier".into(), earlier.clone());
    for n in 0..64 {
        let user = format!("u-fresh-{n}");
        assert_eq!(statuses(&user), [201], "{user}");
        expected.insert(user.clone(), only_id(&user));
    }
    for n in 0..8 {
        let user = format!("u-dup-{n}");
        assert_eq!(
            statuses(&user),
            [201, 409, 409],
            "{user}: one created, two conflicts"
        );
        expected.insert(user.clone(), only_id(&user));
        let user = format!("u-retry-{n}");
        assert_eq!(
            statuses(&user),
            [200, 200, 201],
            "{user}: one created, two replays"
        );
        expected.insert(user.clone(), only_id(&user));
    }
    assert_eq!(statuses("u-existing"), [409; 4]);
    assert_eq!(only_id("u-existing"), existing);
    assert_eq!(statuses("u-earlier"), [200; 3]);
    assert_eq!(only_id("u-earlier"), earlier);
    assert_eq!(statuses("u-other"), [422]);
    for n in 0..4 {
        let (a, b) = (format!("u-mixed-{n}-a"), format!("u-mixed-{n}-b"));
        let mut both = [statuses(&a)[0], statuses(&b)[0]];
        both.sort();
        assert_eq!(
            both,
            [201, 422],
            "mixed-{n}: the first body wins, the other is refused"
        );
        let winner = if statuses(&a) == [201] { a } else { b };
        expected.insert(winner.clone(), only_id(&winner));
    }

    let stored = all_vaults(app).await;
    assert_eq!(stored, expected, "exactly the vaults answered, each once");
    let created = all_created_events(app).await;
    let mut ids: Vec<String> = expected.values().cloned().collect();
    ids.sort();
    assert_eq!(created, ids, "one vault.created event per vault");
    let verify: Value = app
        .get(key, "/v1/audit/verify")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
    assert!(
        verify["events"].as_i64().unwrap() >= expected.len() as i64,
        "{verify}"
    );

    // The burst really was committed in shared transactions.
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from {metrics}"))
    };
    let (batches, requests) = (
        counter("connect_vault_batches_total"),
        counter("connect_vault_batch_requests_total"),
    );
    assert!(
        requests > batches,
        "{requests} creations in {batches} commits: none shared one"
    );
}

/// Every vault of the partner as external_user_id → id, all pages.
async fn all_vaults(app: &TestApp) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for vault in all_pages(app, "/v1/vaults?limit=100").await {
        let user = vault["external_user_id"].as_str().unwrap().to_owned();
        let id = vault["id"].as_str().unwrap().to_owned();
        assert!(all.insert(user, id).is_none(), "a second vault: {vault}");
    }
    all
}

/// The vault ids of every `vault.created` audit event, sorted.
async fn all_created_events(app: &TestApp) -> Vec<String> {
    let mut ids: Vec<String> = all_pages(app, "/v1/audit?action=vault.created&limit=100")
        .await
        .iter()
        .map(|event| event["vault_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}
