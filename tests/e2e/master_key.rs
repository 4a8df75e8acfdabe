//! Master-key sources, automatic fallback, and a database copy under another master key.

use std::os::unix::fs::PermissionsExt;

use connect_broker::auth::Tenant;
use connect_broker::keys::MasterKeyRing;
use connect_broker::secret::{ExposeSecret, secret_bytes};
use connect_broker::{credentials, keys::KeyError};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, Server, TestApp, TestDb, cli, dep};

on_both_backends!(
    an_explicit_master_key_source_that_is_missing_stops_startup_naming_it,
    automatic_mode_without_a_keychain_writes_a_0600_key_file_and_warns_once,
    an_env_master_key_made_by_init_serves,
    a_database_copy_with_a_different_master_key_opens_nothing,
);

fn warnings(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["level"] == "WARN")
        .collect()
}

async fn an_explicit_master_key_source_that_is_missing_stops_startup_naming_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let missing_file = db.data_dir().join("nowhere").join("master.key");
    let cases = [
        ("file", format!("file:{}", missing_file.display())),
        (
            "env",
            "env:CONNECT_TEST_MASTER_KEY_THAT_IS_NOT_SET".to_owned(),
        ),
        ("malformed", "vault:unknown".to_owned()),
    ];
    for (case, source) in cases {
        let mut env = db.env();
        env.push(("CONNECT_MASTER_KEY".into(), source.clone()));

        let log = match Server::start(&env).await {
            Ok(_) => panic!("case {case}: the server started without its master key"),
            Err(log) => log,
        };

        assert!(
            log.contains(&source),
            "case {case}: the error must name {source}:\n{log}"
        );
        assert!(
            !db.data_dir().join("master.key").exists(),
            "case {case}: fell back to a key file"
        );
    }
}

async fn automatic_mode_without_a_keychain_writes_a_0600_key_file_and_warns_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = db.env();
    // No Secret Service answers at this address, so the keychain probe fails.
    env.push((
        "DBUS_SESSION_BUS_ADDRESS".into(),
        "unix:path=/nonexistent/connect-test-bus".into(),
    ));

    let server = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("automatic mode failed:\n{log}"));

    let key_file = db.data_dir().join("master.key");
    let mode = std::fs::metadata(&key_file)
        .expect("master.key created")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let log = server.logs();
    let about_key: Vec<_> = warnings(&log)
        .into_iter()
        .filter(|w| w["message"].as_str().unwrap().contains("master.key"))
        .collect();
    assert_eq!(
        about_key.len(),
        1,
        "exactly one warning names the key file:\n{log}"
    );
    drop(server);

    // A restart reuses the same key rather than making another.
    let before = std::fs::read(&key_file).unwrap();
    let again = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("restart failed:\n{log}"));
    assert_eq!(std::fs::read(&key_file).unwrap(), before);
    drop(again);
}

async fn an_env_master_key_made_by_init_serves(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut env = db.env();
    env.push(("CONNECT_MASTER_KEY".into(), "env:CONNECT_TEST_MK".into()));
    let init = cli(&env, &["master-key", "init"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let material = String::from_utf8(init.stdout)
        .unwrap()
        .trim()
        .replace("\\n", "\n");
    env.push(("CONNECT_TEST_MK".into(), material));

    let refused = cli(&env, &["master-key", "init"]);
    assert!(
        !refused.status.success(),
        "init must refuse to replace an existing key"
    );

    let server = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("env source failed:\n{log}"));
    let started = server.logs();
    assert!(
        started.contains("\"master_key_source\":\"env:CONNECT_TEST_MK\""),
        "{started}"
    );
    assert_eq!(
        warnings(&started).len(),
        1,
        "one warning for the environment source:\n{started}"
    );
}

async fn a_database_copy_with_a_different_master_key_opens_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-copy").await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let canary = "canary-copy-5f0c2e";
    let connection = credentials::deposit(
        &db,
        &tenant,
        dep(&vault, "github"),
        &secret_bytes(canary.into()),
    )
    .await
    .unwrap();
    let right = app.master_ring();
    let opened = credentials::open(&db, &right, &tenant, &connection)
        .await
        .unwrap()
        .secret;
    assert_eq!(
        opened.expose_secret(),
        canary.as_bytes(),
        "control: the right key opens it"
    );

    let other = MasterKeyRing::generate();
    let refused = credentials::open(&db, &other, &tenant, &connection).await;
    assert!(
        matches!(refused, Err(connect_broker::Error::Key(KeyError::Open))),
        "{:?}",
        refused.map(|_| "a secret")
    );

    // The service itself refuses to start on this database with another master key.
    let other_key = app.db.data_dir().join("other.key");
    std::fs::write(&other_key, other.to_material().expose_secret()).unwrap();
    let mut env = app.env.clone();
    env.retain(|(k, _)| k != "CONNECT_MASTER_KEY");
    env.push((
        "CONNECT_MASTER_KEY".into(),
        format!("file:{}", other_key.display()),
    ));
    let log = match Server::start(&env).await {
        Ok(_) => panic!("started with the wrong master key"),
        Err(log) => log,
    };
    assert!(
        log.contains("mk1") && log.contains("does not hold"),
        "{log}"
    );
    assert!(!log.contains(canary));
}
