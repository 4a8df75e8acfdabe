//! API keys and scopes, revocation, suspension and the 401/403 answers.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, expect_problem};

on_both_backends!(
    a_minted_key_holds_only_its_scopes,
    a_revoked_key_fails_on_its_next_request,
    suspending_a_partner_fails_all_its_keys_until_resumed,
    missing_and_unknown_keys_answer_401_with_a_challenge,
    a_key_secret_is_shown_once_and_stored_only_as_a_hash,
);

async fn mint(app: &TestApp, key: &str, scopes: Value) -> reqwest::Response {
    app.post(
        key,
        "/v1/api-keys",
        &json!({"name": "agent", "scopes": scopes}),
    )
    .send()
    .await
    .unwrap()
}

async fn a_minted_key_holds_only_its_scopes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = mint(&app, &app.partner.key, json!(["vaults"])).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let minted: Value = response.json().await.unwrap();
    let narrow = minted["api_key"].as_str().unwrap();
    assert_eq!(minted["scopes"], json!(["vaults"]));

    let created = app
        .post(narrow, "/v1/vaults", &json!({"external_user_id": "u-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    let audit = app.get(narrow, "/v1/audit").send().await.unwrap();
    let challenge = audit
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("scope=\"audit\""),
        "{challenge}"
    );
    expect_problem(audit, 403, "insufficient_scope").await;

    // A narrow key can mint nothing: minting needs admin.
    expect_problem(
        mint(&app, narrow, json!(["vaults"])).await,
        403,
        "insufficient_scope",
    )
    .await;
}

async fn a_revoked_key_fails_on_its_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let minted: Value = mint(&app, &app.partner.key, json!(["vaults", "audit"]))
        .await
        .json()
        .await
        .unwrap();
    let key = minted["api_key"].as_str().unwrap();
    let key_id = minted["id"].as_str().unwrap();
    assert_eq!(
        app.get(key, "/v1/vaults").send().await.unwrap().status(),
        200
    );

    let revoked = app
        .delete(&app.partner.key, &format!("/v1/api-keys/{key_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let revoked: Value = revoked.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");

    expect_problem(
        app.get(key, "/v1/vaults").send().await.unwrap(),
        401,
        "invalid_api_key",
    )
    .await;
    // The admin key is unaffected.
    assert_eq!(
        app.get(&app.partner.key, "/v1/vaults")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn suspending_a_partner_fails_all_its_keys_until_resumed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let minted: Value = mint(&app, &app.partner.key, json!(["vaults"]))
        .await
        .json()
        .await
        .unwrap();
    let second = minted["api_key"].as_str().unwrap().to_owned();
    let bystander = app.new_partner("bystander");

    let out = app.cli(&["partner", "suspend", "--id", &app.partner.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for key in [&app.partner.key, &second] {
        expect_problem(
            app.get(key, "/v1/vaults").send().await.unwrap(),
            401,
            "partner_suspended",
        )
        .await;
    }
    assert_eq!(
        app.get(&bystander.key, "/v1/vaults")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let out = app.cli(&["partner", "resume", "--id", &app.partner.id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.get(&second, "/v1/vaults")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn missing_and_unknown_keys_answer_401_with_a_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("no header", None, "unauthenticated"),
        (
            "unknown key",
            Some("Bearer acs_not-a-real-key"),
            "invalid_api_key",
        ),
        (
            "wrong scheme",
            Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            "invalid_api_key",
        ),
        ("empty bearer", Some("Bearer "), "invalid_api_key"),
    ];
    for (case, header, code) in cases {
        let mut request = app.http.get(app.url("/v1/vaults"));
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer realm=")),
            "case {case}: {challenge:?}"
        );
        expect_problem(response, 401, code).await;
    }
}

async fn a_key_secret_is_shown_once_and_stored_only_as_a_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let minted: Value = mint(&app, &app.partner.key, json!(["proxy"]))
        .await
        .json()
        .await
        .unwrap();
    let secret = minted["api_key"].as_str().unwrap().to_owned();

    let listed: Value = app
        .get(&app.partner.key, "/v1/api-keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !listed.to_string().contains(&secret),
        "a list must not show a key"
    );
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("api_key").is_none())
    );

    // An idempotent replay cannot show the secret again; it names the key instead.
    let body = json!({"name": "once", "scopes": ["proxy"]});
    let first = app
        .post(&app.partner.key, "/v1/api-keys", &body)
        .header("Idempotency-Key", "k1")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let replay = app
        .post(&app.partner.key, "/v1/api-keys", &body)
        .header("Idempotency-Key", "k1")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(replay, 409, "idempotent_replay_secret_unavailable").await;
    assert_eq!(problem["existing_id"], first["id"]);

    for needle in [secret.as_str(), app.partner.key.as_str()] {
        let files = app.files_containing(needle.as_bytes());
        assert!(
            files.is_empty(),
            "an API key is stored in clear in {files:?}"
        );
        assert!(!app.server.logs().contains(needle), "an API key was logged");
    }
}
