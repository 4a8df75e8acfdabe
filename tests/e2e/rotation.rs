//! Master-key rotation: a new version added to the source, every vault key and master-sealed
//! secret rewrapped to it, running servers following without a restart, a crash mid-way
//! repaired by running it again, and the old version retired only when nothing uses it.

use std::time::{Duration, Instant};

use connect_broker::auth::Tenant;
use connect_broker::keys::{KeyError, MasterKeyRing};
use connect_broker::secret::{ExposeSecret, SecretString, secret_bytes};
use connect_broker::store::Db;
use connect_broker::{credentials, integrations};
use connect_sdk::webhooks::{self as verifier, WebhookHeaders};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::peers::httpbin;
use crate::support::{Backend, Server, TestApp, TestDb, cli, command, dep};
use crate::webhooks::receiver::Receiver;

on_both_backends!(
    rotating_a_key_file_rewraps_everything_and_retiring_removes_the_old_version,
    a_running_server_follows_a_rotation_without_restart,
    a_rotation_killed_midway_completes_when_run_again,
    an_env_source_rotation_hands_the_operator_each_new_value,
);

fn stdout_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

fn run_ok(env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let output = cli(env, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn versions_of_vaults(db: &Db) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT id, master_key_version FROM vaults ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap()
}

async fn count_on(db: &Db, version: i64) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM vaults WHERE wrapped_key IS NOT NULL AND master_key_version = $1",
    )
    .bind(version)
    .fetch_one(db.pool())
    .await
    .unwrap();
    n
}

fn version_entry<'a>(status: &'a Value, version: &str) -> &'a Value {
    status["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == version)
        .unwrap_or_else(|| panic!("{version} in {status}"))
}

async fn rotating_a_key_file_rewraps_everything_and_retiring_removes_the_old_version(
    backend: Backend,
) {
    // Private upstreams allowed so that a webhook may point at a receiver on loopback.
    let app = TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let old_ring = app.master_ring();
    let mut deposits = Vec::new();
    for n in 0..3 {
        let vault = app.create_vault(&format!("u-rot-{n}")).await;
        let canary = format!("canary-rotation-{n}-7c1d");
        let connection = credentials::deposit(
            &db,
            &tenant,
            dep(&vault, "github"),
            &secret_bytes(canary.clone().into_bytes()),
        )
        .await
        .unwrap();
        deposits.push((connection, canary));
    }
    let github = json!({"key": "gh", "provider": "github",
        "auth": {"client_id": "Iv1.rot", "client_secret": "canary-client-secret-rot"}});
    let response = app
        .post(&app.partner.key, "/v1/integrations", &github)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let receiver = Receiver::answering(204).await;
    let webhook_secret =
        crate::webhooks::register(&app, &receiver.url, &["vault.revoked"]).await["secret"]
            .as_str()
            .unwrap()
            .to_owned();
    let before = stdout_json(&app.cli(&["master-key", "status"]));
    assert_eq!(before["rotation"]["state"], "none", "{before}");
    assert_eq!(version_entry(&before, "mk1")["vaults"], 3, "{before}");
    assert_eq!(
        version_entry(&before, "mk1")["client_secrets"],
        1,
        "{before}"
    );
    assert_eq!(
        version_entry(&before, "mk1")["webhook_secrets"],
        1,
        "{before}"
    );

    let refused = app.cli(&["master-key", "retire", "--version", "1"]);
    assert!(!refused.status.success(), "retired the only version");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("current master key version"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    run_ok(&app.env, &["master-key", "rotate"]);

    assert!(
        versions_of_vaults(&db).await.iter().all(|(_, v)| *v == 2),
        "{:?}",
        versions_of_vaults(&db).await
    );
    let after = stdout_json(&app.cli(&["master-key", "status"]));
    assert_eq!(after["current"], "mk2", "{after}");
    assert_eq!(after["rotation"]["state"], "complete", "{after}");
    assert_eq!(after["rotation"]["remaining"], 0, "{after}");
    assert_eq!(version_entry(&after, "mk1")["vaults"], 0, "{after}");
    assert_eq!(version_entry(&after, "mk2")["vaults"], 3, "{after}");
    assert_eq!(version_entry(&after, "mk2")["client_secrets"], 1, "{after}");
    assert_eq!(
        version_entry(&after, "mk1")["webhook_secrets"],
        0,
        "{after}"
    );
    assert_eq!(
        version_entry(&after, "mk2")["webhook_secrets"],
        1,
        "{after}"
    );
    let new_ring = app.master_ring();
    assert_eq!(new_ring.versions().collect::<Vec<_>>(), vec![1, 2]);
    for (connection, canary) in &deposits {
        let opened = credentials::open(&db, &new_ring, &tenant, connection)
            .await
            .unwrap();
        assert_eq!(opened.secret.expose_secret(), canary.as_bytes());
    }
    let integration = integrations::get(&db, &tenant, "gh").await.unwrap();
    let secret = integrations::client_secret(&db, &new_ring, &integration)
        .await
        .unwrap();
    assert_eq!(secret.expose_secret(), "canary-client-secret-rot");

    // Running it again once complete changes nothing.
    let again = run_ok(&app.env, &["master-key", "rotate"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("complete"));
    assert_eq!(app.master_ring().versions().collect::<Vec<_>>(), vec![1, 2]);

    let retired = run_ok(&app.env, &["master-key", "retire", "--version", "mk1"]);
    assert!(String::from_utf8_lossy(&retired.stderr).contains("removed from"));
    let key_file = std::fs::read_to_string(app.db.data_dir().join("master.key")).unwrap();
    assert!(!key_file.contains("mk1:"), "the key file still holds mk1");
    assert_eq!(app.master_ring().versions().collect::<Vec<_>>(), vec![2]);
    let status = stdout_json(&app.cli(&["master-key", "status"]));
    assert_eq!(version_entry(&status, "mk1")["retired"], true, "{status}");
    assert_eq!(status["rotation"]["state"], "none", "{status}");
    assert_eq!(
        version_entry(&status, "mk2")["webhook_secrets"],
        1,
        "{status}"
    );
    for (connection, canary) in &deposits {
        let opened = credentials::open(&db, &app.master_ring(), &tenant, connection)
            .await
            .unwrap();
        assert_eq!(opened.secret.expose_secret(), canary.as_bytes());
    }

    // The webhook registered under mk1 still signs, with the secret it was given, an event
    // that happens after mk1 is gone.
    let late = app.create_vault("u-rot-after-retire").await;
    let deleted = app
        .delete(&app.partner.key, &format!("/v1/vaults/{late}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let received = receiver
        .wait_for("the event after retiring", Duration::from_secs(60), |r| {
            r.iter().any(|request| request.accepted())
        })
        .await;
    let request = received.iter().find(|r| r.accepted()).unwrap();
    let headers = WebhookHeaders {
        id: request.header("webhook-id"),
        timestamp: request.header("webhook-timestamp"),
        signature: request.header("webhook-signature"),
    };
    verifier::verify(
        &webhook_secret,
        &headers,
        &request.body,
        Duration::from_secs(300),
    )
    .expect("the delivery after retiring is signed with the registered secret");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "vault.revoked", "{body}");
    assert_eq!(body["data"]["vault_id"], late.as_str(), "{body}");

    // A copy of the database with only the old version opens nothing any more.
    for (connection, _) in &deposits {
        let refused = credentials::open(&db, &old_ring, &tenant, connection).await;
        assert!(
            matches!(
                refused,
                Err(connect_broker::Error::Key(KeyError::UnknownVersion(_)))
            ),
            "{:?}",
            refused.map(|_| "a secret")
        );
    }
    let old_key = app.db.data_dir().join("old.key");
    std::fs::write(&old_key, old_ring.to_material().expose_secret()).unwrap();
    let mut env = app.env.clone();
    env.retain(|(k, _)| k != "CONNECT_MASTER_KEY");
    env.push((
        "CONNECT_MASTER_KEY".into(),
        format!("file:{}", old_key.display()),
    ));
    let log = match Server::start(&env).await {
        Ok(_) => panic!("started with only the retired master key"),
        Err(log) => log,
    };
    assert!(
        log.contains("mk2") && log.contains("does not hold"),
        "{log}"
    );
}

async fn a_running_server_follows_a_rotation_without_restart(backend: Backend) {
    let bin = httpbin::start().await;
    let app = TestApp::spawn_with(backend, &[("CONNECT_ALLOW_PRIVATE_UPSTREAMS", "true")]).await;
    let db = app.db.connect().await;
    // Deposited before the rotation and never proxied before it, so nothing of it is cached.
    let connection =
        crate::proxy::api_key_connection(&app, &bin.base, "127.0.0.1", "canary-follow-9e2").await;
    let old_vault = versions_of_vaults(&db).await;
    assert_eq!(old_vault.len(), 1);
    assert_eq!(old_vault[0].1, 1);

    let rotated = run_ok(&app.env, &["master-key", "rotate"]);
    assert!(
        String::from_utf8_lossy(&rotated.stderr).contains("complete"),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );

    let new_vault = app.create_vault("u-after-rotation").await;
    let versions = versions_of_vaults(&db).await;
    let wrapped_with = versions.iter().find(|(id, _)| *id == new_vault).unwrap().1;
    assert_eq!(wrapped_with, 2, "a new vault is wrapped by the new version");
    assert!(versions.iter().all(|(_, v)| *v == 2), "{versions:?}");

    let proxied = app
        .get(&app.partner.key, &format!("/v1/proxy/{connection}/bearer"))
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 200, "the old vault's credential proxies");
    let logs = app.server.logs();
    assert!(logs.contains("master key ring reloaded"), "{logs}");
    let status = stdout_json(&app.cli(&["master-key", "status"]));
    assert_eq!(
        status["replicas"][0]["master_key_version"], "mk2",
        "{status}"
    );
}

async fn a_rotation_killed_midway_completes_when_run_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let mut deposits = Vec::new();
    for n in 0..12 {
        let vault = app.create_vault(&format!("u-crash-{n}")).await;
        let canary = format!("canary-crash-{n}-41f0");
        let connection = credentials::deposit(
            &db,
            &tenant,
            dep(&vault, "github"),
            &secret_bytes(canary.clone().into_bytes()),
        )
        .await
        .unwrap();
        deposits.push((connection, canary));
    }

    let mut rotate = command(&app.env)
        .args([
            "master-key",
            "rotate",
            "--batch-size",
            "1",
            "--batch-pause-ms",
            "300",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count_on(&db, 2).await < 2 {
        assert!(Instant::now() < deadline, "the rotation never started");
        assert!(rotate.try_wait().unwrap().is_none(), "rotate exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rotate.kill().unwrap(); // SIGKILL
    rotate.wait().unwrap();
    let moved = count_on(&db, 2).await;
    assert!(moved < 12, "killed too late to test anything: {moved}");

    let status = stdout_json(&app.cli(&["master-key", "status"]));
    assert_eq!(status["rotation"]["state"], "in_progress", "{status}");
    assert_eq!(status["rotation"]["remaining"], 12 - moved, "{status}");
    let refused = app.cli(&["master-key", "retire", "--version", "1"]);
    assert!(!refused.status.success(), "retired a version still in use");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("still seals"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        app.master_ring().holds(1),
        "a refused retire changed the key file"
    );

    let resumed = run_ok(&app.env, &["master-key", "rotate", "--batch-size", "5"]);
    assert!(String::from_utf8_lossy(&resumed.stderr).contains("continuing the rotation to mk2"));
    assert_eq!(count_on(&db, 2).await, 12);
    assert_eq!(app.master_ring().versions().collect::<Vec<_>>(), vec![1, 2]);
    let ring = app.master_ring();
    for (connection, canary) in &deposits {
        let opened = credentials::open(&db, &ring, &tenant, connection)
            .await
            .unwrap();
        assert_eq!(opened.secret.expose_secret(), canary.as_bytes());
    }
    let verify: Value = app
        .get(&app.partner.key, "/v1/audit/verify")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verify["ok"], true, "{verify}");
    run_ok(&app.env, &["master-key", "retire", "--version", "1"]);
}

/// The env value `master-key` printed, with its `\n` escapes undone.
fn material(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .trim()
        .replace("\\n", "\n")
}

fn with_value(env: &[(String, String)], value: &str) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    env.retain(|(k, _)| k != "CONNECT_TEST_MK");
    env.push(("CONNECT_TEST_MK".into(), value.to_owned()));
    env
}

fn ring_of(value: &str) -> MasterKeyRing {
    MasterKeyRing::parse("env:CONNECT_TEST_MK", &SecretString::from(value.to_owned())).unwrap()
}

async fn an_env_source_rotation_hands_the_operator_each_new_value(backend: Backend) {
    let test_db = TestDb::new(backend).await;
    let mut env = test_db.env();
    env.push(("CONNECT_MASTER_KEY".into(), "env:CONNECT_TEST_MK".into()));
    let first = material(&cli(&env, &["master-key", "init"]));
    let env = with_value(&env, &first);
    let partner = crate::support::create_partner(&env, "acme");
    let db = test_db.connect().await;
    let tenant = Tenant::operator(&partner.id);
    let mut server = Server::start(&env).await.unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/vaults", server.base))
        .bearer_auth(&partner.key)
        .json(&json!({"external_user_id": "u-env"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let vault: Value = response.json().await.unwrap();
    let vault = vault["id"].as_str().unwrap().to_owned();
    let connection = credentials::deposit(
        &db,
        &tenant,
        dep(&vault, "github"),
        &secret_bytes(b"canary-env-rotation-5a".to_vec()),
    )
    .await
    .unwrap();
    assert!(server.terminate().success());

    // Step 1: the new value is handed out; nothing is registered or rewrapped yet.
    let second = material(&cli(&env, &["master-key", "rotate"]));
    let two = ring_of(&second);
    assert_eq!(two.versions().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(two.recipient(1), ring_of(&first).recipient(1));
    let status = stdout_json(&cli(&env, &["master-key", "status"]));
    assert_eq!(status["versions"].as_array().unwrap().len(), 1, "{status}");
    assert_eq!(count_on(&db, 1).await, 1);

    // Step 2: replicas restarted with the value, then the rotation rewraps.
    let env = with_value(&env, &second);
    let mut server = Server::start(&env).await.unwrap();
    run_ok(&env, &["master-key", "rotate"]);
    assert_eq!(count_on(&db, 2).await, 1);
    let opened = credentials::open(&db, &two, &tenant, &connection)
        .await
        .unwrap();
    assert_eq!(opened.secret.expose_secret(), b"canary-env-rotation-5a");

    // Step 3: retiring hands out the value without the old version.
    let third = material(&cli(&env, &["master-key", "retire", "--version", "1"]));
    let only_two = ring_of(&third);
    assert_eq!(only_two.versions().collect::<Vec<_>>(), vec![2]);
    assert_eq!(only_two.recipient(2), two.recipient(2));
    assert!(server.terminate().success());
    let env = with_value(&env, &third);
    let _server = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("restart with the retired value failed:\n{log}"));
    let opened = credentials::open(&db, &only_two, &tenant, &connection)
        .await
        .unwrap();
    assert_eq!(opened.secret.expose_secret(), b"canary-env-rotation-5a");
    let status = stdout_json(&cli(&env, &["master-key", "status"]));
    assert_eq!(version_entry(&status, "mk1")["retired"], true, "{status}");
}
