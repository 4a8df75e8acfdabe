//! Provision a vault for an end user and start a connect session for them.
//!
//! ```sh
//! CONNECT_BASE_URL=http://127.0.0.1:8080 CONNECT_API_KEY=acs_… \
//!     cargo run -p connect-sdk --example provision_and_connect -- u-123 github
//! ```

use connect_sdk::types::{CreateConnectSession, CreateVault};
use connect_sdk::{Client, ConnectApi, Error, VaultParams};
use futures_util::TryStreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = client_from_env()?;
    let mut args = std::env::args().skip(1);
    let user = args.next().unwrap_or_else(|| "u-123".into());
    let integration = args.next().unwrap_or_else(|| "github".into());

    // A second vault for the same user is a conflict that names the existing one.
    let request = CreateVault {
        external_user_id: user.clone(),
        metadata: None,
    };
    let vault_id = match client.vaults().create(&request).await {
        Ok(vault) => vault.id,
        Err(Error::Api {
            existing_id: Some(id),
            ..
        }) => id,
        Err(e) => return Err(e.into()),
    };
    println!("vault {vault_id} for {user}");

    let session = client
        .connect_sessions()
        .create(
            &vault_id,
            &CreateConnectSession {
                integration,
                return_url: None,
            },
        )
        .await?;
    println!(
        "send the user to {} (until {})",
        session.url, session.expires_at
    );

    let filter = VaultParams {
        external_user_id: Some(user),
        ..Default::default()
    };
    let vaults: Vec<_> = client
        .vaults()
        .list(filter)
        .into_stream()
        .try_collect()
        .await?;
    println!("{} vault(s) for this user", vaults.len());
    Ok(())
}

fn client_from_env() -> Result<Client, Box<dyn std::error::Error>> {
    let base = std::env::var("CONNECT_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("CONNECT_API_KEY").map_err(|_| "set CONNECT_API_KEY")?;
    Ok(Client::builder(base, key).build()?)
}
