//! Call an upstream API as the user through the proxy: the server injects the credential, this
//! program never sees it.
//!
//! ```sh
//! CONNECT_BASE_URL=http://127.0.0.1:8080 CONNECT_API_KEY=acs_… \
//!     cargo run -p connect-sdk --example proxy_call -- con_… /user
//! ```

use connect_sdk::{Client, ConnectApi, Error};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("CONNECT_BASE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("CONNECT_API_KEY").map_err(|_| "set CONNECT_API_KEY")?;
    let client = Client::builder(base, key).build()?;
    let mut args = std::env::args().skip(1);
    let connection_id = args
        .next()
        .ok_or("usage: proxy_call CONNECTION_ID [PATH]")?;
    let path = args.next().unwrap_or_else(|| "/user".into());

    let answer = client
        .proxy(&connection_id)
        .get(&path)
        .header("Accept", "application/json")
        .query(&[("per_page", "5")])
        .send()
        .await;

    match answer {
        Ok(response) => {
            println!(
                "upstream answered {} (request {})",
                response.status,
                response.request_id().unwrap_or("-")
            );
            println!("{}", response.text());
        }
        Err(Error::Api { code, .. })
            if code == "reauth_required" || code == "connection_revoked" =>
        {
            println!("the user must connect again ({code})");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
