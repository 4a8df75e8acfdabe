//! Vaults: create, read, list, delete, duplicates and idempotency.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, expect_problem};

on_both_backends!(
    a_vault_is_created_read_and_listed,
    a_second_vault_for_the_same_user_conflicts_with_the_existing_id,
    deleting_a_vault_revokes_it_and_is_repeatable,
    idempotency_key_replays_the_first_result_and_refuses_a_different_body,
    concurrent_requests_with_one_idempotency_key_create_one_vault,
    lists_page_through_every_vault_once,
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
