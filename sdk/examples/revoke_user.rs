//! Offboard an end user: revoke each connection (upstream too), then delete the vault.
//!
//! ```sh
//! CONNECT_BASE_URL=http://127.0.0.1:8080 CONNECT_API_KEY=acs_… \
//!     cargo run -p connect-sdk --example revoke_user -- u-123
//! ```

use connect_sdk::{Client, ConnectApi, PageParams, VaultParams};
use futures_util::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("CONNECT_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("CONNECT_API_KEY").map_err(|_| "set CONNECT_API_KEY")?;
    let client = Client::builder(base, key).build()?;
    let user = std::env::args()
        .nth(1)
        .ok_or("usage: revoke_user EXTERNAL_USER_ID")?;

    let filter = VaultParams {
        external_user_id: Some(user.clone()),
        ..Default::default()
    };
    let vaults: Vec<_> = client
        .vaults()
        .list(filter)
        .into_stream()
        .try_collect()
        .await?;
    if vaults.is_empty() {
        println!("no vault for {user}");
    }
    for vault in vaults {
        let connections: Vec<_> = client
            .connections()
            .list(&vault.id, PageParams::default())
            .into_stream()
            .try_collect()
            .await?;
        for connection in connections.iter().filter(|c| c.status != "revoked") {
            let revoked = client
                .connections()
                .delete(&vault.id, &connection.id)
                .await?;
            println!(
                "connection {} revoked (upstream: {})",
                revoked.id, revoked.upstream_revocation
            );
        }
        let deleted = client.vaults().delete(&vault.id).await?;
        println!(
            "vault {} {:?}, {} more connection(s) revoked",
            deleted.id, deleted.status, deleted.connections_revoked
        );
    }
    Ok(())
}
