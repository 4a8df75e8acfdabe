//! The audit log: every change recorded, append-only, and tampering named by verify.

use connect_broker::store::Db;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

on_both_backends!(
    every_create_delete_and_key_change_is_recorded_and_filterable,
    the_database_refuses_to_update_or_delete_audit_rows,
    editing_or_deleting_any_audit_row_makes_verify_name_it,
);

async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let body: Value = app
        .get(&app.partner.key, &format!("/v1/audit{query}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().clone()
}

async fn verify(app: &TestApp) -> Value {
    app.get(&app.partner.key, "/v1/audit/verify")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Makes a small history: a vault created and deleted, a key minted and revoked.
async fn history(app: &TestApp) -> String {
    let vault = app.create_vault("u-audit").await;
    let minted: Value = app
        .post(
            &app.partner.key,
            "/v1/api-keys",
            &json!({"name": "tmp", "scopes": ["audit"]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = minted["id"].as_str().unwrap();
    app.delete(&app.partner.key, &format!("/v1/api-keys/{key_id}"))
        .send()
        .await
        .unwrap();
    app.delete(&app.partner.key, &format!("/v1/vaults/{vault}"))
        .send()
        .await
        .unwrap();
    vault
}

async fn every_create_delete_and_key_change_is_recorded_and_filterable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let vault = history(&app).await;

    let all = events(&app, "").await;
    let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "partner.created",
            "api_key.created",
            "vault.created",
            "api_key.created",
            "api_key.revoked",
            "vault.revoked"
        ]
    );
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    for pair in all.windows(2) {
        assert_eq!(
            pair[1]["prev_hash"], pair[0]["hash"],
            "each event links to the one before"
        );
    }
    let vault_events = events(&app, &format!("?vault_id={vault}")).await;
    assert_eq!(vault_events.len(), 2);
    let revoked = events(&app, "?action=api_key.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0]["path"]
            .as_str()
            .unwrap()
            .starts_with("/v1/api-keys/key_")
    );

    let result = verify(&app).await;
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["events"], 6);
    assert_eq!(result["head"], all[5]["hash"]);
}

async fn the_database_refuses_to_update_or_delete_audit_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    history(&app).await;
    let db = app.db.connect().await;

    let update = sqlx::query("UPDATE audit_events SET action = 'vault.created' WHERE seq = 6")
        .execute(db.pool())
        .await;
    let delete = sqlx::query("DELETE FROM audit_events WHERE seq = 6")
        .execute(db.pool())
        .await;

    assert!(update.is_err(), "an audit row was updated");
    assert!(delete.is_err(), "an audit row was deleted");
    assert_eq!(verify(&app).await["ok"], true);
}

async fn disable_guards(db: &Db, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_events_no_update",
            "DROP TRIGGER audit_events_no_delete",
        ],
        Backend::Postgres => &["ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change"],
    };
    for statement in statements {
        sqlx::query(statement).execute(db.pool()).await.unwrap();
    }
}

async fn editing_or_deleting_any_audit_row_makes_verify_name_it(backend: Backend) {
    // (case, tampering statement, broken seq, whether the event still exists, reason)
    let cases = [
        (
            "edit an action",
            "UPDATE audit_events SET action = 'vault.created' WHERE seq = 4",
            4,
            true,
            "content_changed",
        ),
        (
            "edit a time",
            "UPDATE audit_events SET occurred_at = occurred_at + 1 WHERE seq = 2",
            2,
            true,
            "content_changed",
        ),
        (
            "rewrite a hash",
            "UPDATE audit_events SET hash = prev_hash WHERE seq = 3",
            3,
            true,
            "content_changed",
        ),
        (
            "delete the first",
            "DELETE FROM audit_events WHERE seq = 1",
            1,
            false,
            "missing",
        ),
        (
            "delete a middle one",
            "DELETE FROM audit_events WHERE seq = 3",
            3,
            false,
            "missing",
        ),
        (
            "delete the last",
            "DELETE FROM audit_events WHERE seq = 6",
            6,
            false,
            "tail_removed",
        ),
    ];
    for (case, statement, seq, exists, reason) in cases {
        let app = TestApp::spawn(backend).await;
        history(&app).await;
        let before = events(&app, "").await;
        let target_id = before[(seq - 1) as usize]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let db = app.db.connect().await;
        disable_guards(&db, backend).await;

        sqlx::query(statement).execute(db.pool()).await.unwrap();

        let result = verify(&app).await;
        assert_eq!(result["ok"], false, "case {case}: {result}");
        let broken = &result["first_broken"];
        assert_eq!(broken["seq"], seq, "case {case}: {result}");
        assert_eq!(broken["reason"], reason, "case {case}: {result}");
        if exists {
            assert_eq!(
                broken["event_id"],
                target_id.as_str(),
                "case {case}: {result}"
            );
        } else {
            assert!(broken["event_id"].is_null(), "case {case}: {result}");
        }
        assert_eq!(
            result["events"],
            seq - 1,
            "case {case}: events before the break"
        );
    }
}
