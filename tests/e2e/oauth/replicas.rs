//! Two replicas on one PostgreSQL database: a flow started on one completes on the other, and
//! parallel refreshes on both cause one token request.

use std::time::Duration;

use super::{World, browser};
use crate::support::{Backend, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_flows_and_refresh_once() {
    let world = World::new(Backend::Postgres).await;
    let mut env = world.app.env.clone();
    env.retain(|(k, _)| k != "CONNECT_LISTEN");
    env.push(("CONNECT_LISTEN".into(), "127.0.0.1:0".into()));
    let second = Server::start(&env)
        .await
        .unwrap_or_else(|log| panic!("second replica:\n{log}"));

    // Start on the first replica; the provider sends the browser back to the public URL, which
    // the load balancer here routes to the second one.
    let b = browser();
    let authorize = world.begin(&b).await;
    let answer = world.provider.consent(&authorize, true).await;
    let on_second = answer.replacen(&world.app.server.base, &second.base, 1);
    let response = b.get(&on_second).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let connection = world.connections().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let key = world.app.partner.key.clone();
    let calls = (0..8).map(|n| {
        let base = if n % 2 == 0 {
            world.app.server.base.clone()
        } else {
            second.base.clone()
        };
        let (http, key, connection) = (world.app.http.clone(), key.clone(), connection.clone());
        async move {
            http.get(format!("{base}/v1/proxy/{connection}/me"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    });
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(
        world.provider.token_requests().await,
        (1, 1),
        "one refresh across both replicas"
    );
}
