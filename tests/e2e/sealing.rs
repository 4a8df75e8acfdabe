//! Sealing: canaries stay out of every file and log, blobs do not move between rows, and a
//! deleted vault's ciphertext never opens again.

use connect_broker::auth::Tenant;
use connect_broker::credentials;
use connect_broker::keys::KeyError;
use connect_broker::secret::{ExposeSecret, secret_bytes};
use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, dep};

on_both_backends!(
    a_canary_sealed_into_a_vault_is_in_no_database_file_and_no_log,
    a_sealed_blob_copied_to_another_row_or_vault_does_not_open,
    a_deleted_vaults_saved_ciphertext_never_opens_again,
);

async fn a_canary_sealed_into_a_vault_is_in_no_database_file_and_no_log(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-canary").await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let canary = format!("canary-{}", ulid::Ulid::new());

    let connection = credentials::deposit(
        &db,
        &tenant,
        dep(&vault, "openai"),
        &secret_bytes(canary.clone().into()),
    )
    .await
    .unwrap();
    // Traffic that touches the vault after the deposit.
    app.get(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap();
    app.get(&app.partner.key, "/v1/audit").send().await.unwrap();

    let opened = credentials::open(&db, &app.master_ring(), &tenant, &connection)
        .await
        .unwrap()
        .secret;
    assert_eq!(
        opened.expose_secret(),
        canary.as_bytes(),
        "control: the canary was sealed"
    );
    let files = app.files_containing(canary.as_bytes());
    assert!(
        files.is_empty(),
        "the canary is stored in clear in {files:?}"
    );
    assert!(
        !app.server.logs().contains(&canary),
        "the canary was logged"
    );
}

async fn a_sealed_blob_copied_to_another_row_or_vault_does_not_open(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault_a = app.create_vault("u-a").await;
    let vault_b = app.create_vault("u-b").await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let deposit = |vault: String, secret: &'static str| {
        let (db, tenant) = (db.clone(), tenant.clone());
        async move {
            credentials::deposit(
                &db,
                &tenant,
                dep(&vault, "github"),
                &secret_bytes(secret.into()),
            )
            .await
            .unwrap()
        }
    };
    let source = deposit(vault_a.clone(), "secret-of-a1").await;
    let same_vault = deposit(vault_a.clone(), "secret-of-a2").await;
    let other_vault = deposit(vault_b.clone(), "secret-of-b1").await;
    let ring = app.master_ring();

    for (case, target, expect_binding_error) in [
        ("another row of the same vault", &same_vault, true),
        ("a row of another vault", &other_vault, false),
    ] {
        sqlx::query("UPDATE connections SET sealed = (SELECT sealed FROM connections WHERE id = $1) WHERE id = $2")
            .bind(&source)
            .bind(target)
            .execute(db.pool())
            .await
            .unwrap();

        let result = credentials::open(&db, &ring, &tenant, target).await;

        match (result, expect_binding_error) {
            (Err(connect_broker::Error::Key(KeyError::BindingMismatch)), true) => {}
            (Err(connect_broker::Error::Key(KeyError::Open)), false) => {}
            (other, _) => panic!(
                "case {case}: a moved blob must not open, got {:?}",
                other.map(|_| "a secret")
            ),
        }
    }
    let untouched = credentials::open(&db, &ring, &tenant, &source)
        .await
        .unwrap()
        .secret;
    assert_eq!(
        untouched.expose_secret(),
        b"secret-of-a1",
        "control: the original still opens"
    );
}

async fn a_deleted_vaults_saved_ciphertext_never_opens_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = app.create_vault("u-shred").await;
    let db = app.db.connect().await;
    let tenant = Tenant::operator(&app.partner.id);
    let connection = credentials::deposit(
        &db,
        &tenant,
        dep(&vault, "github"),
        &secret_bytes(b"to-be-shredded".to_vec()),
    )
    .await
    .unwrap();
    let (saved_blob,): (Vec<u8>,) = sqlx::query_as("SELECT sealed FROM connections WHERE id = $1")
        .bind(&connection)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let (saved_wrapped_key,): (Vec<u8>,) =
        sqlx::query_as("SELECT wrapped_key FROM vaults WHERE id = $1")
            .bind(&vault)
            .fetch_one(db.pool())
            .await
            .unwrap();

    let response = app
        .delete(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["connections_revoked"], 1, "{body}");

    // Put the saved ciphertext back and mark everything active again, as a restore from an
    // old backup of the credentials table would: it still must not open.
    sqlx::query("UPDATE connections SET sealed = $1, status = 'active' WHERE id = $2")
        .bind(&saved_blob)
        .bind(&connection)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE vaults SET status = 'active' WHERE id = $1")
        .bind(&vault)
        .execute(db.pool())
        .await
        .unwrap();
    let result = credentials::open(&db, &app.master_ring(), &tenant, &connection).await;
    assert!(
        matches!(
            result,
            Err(connect_broker::Error::Key(KeyError::VaultKeyDestroyed))
        ),
        "{:?}",
        result.map(|_| "a secret")
    );
    let (wrapped,): (Option<Vec<u8>>,) =
        sqlx::query_as("SELECT wrapped_key FROM vaults WHERE id = $1")
            .bind(&vault)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(wrapped.is_none(), "the wrapped vault key is destroyed");
    if backend == Backend::Sqlite {
        // secure_delete plus a checkpoint leave no copy of the wrapped key in the files. (On
        // PostgreSQL, dead row versions keep it until vacuum: see README, Limitations.)
        let files = app.files_containing(&saved_wrapped_key);
        assert!(
            files.is_empty(),
            "the destroyed vault key survives in {files:?}"
        );
    }
    let audit: Value = app
        .get(
            &app.partner.key,
            &format!("/v1/audit?connection_id={connection}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["connection.created", "connection.revoked"]);
}
