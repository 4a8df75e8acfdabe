//! `bench-floor LISTEN UPSTREAM KEY`: what the broker's HTTP stack costs with none of the
//! broker's work. It answers every request by sending it on to `UPSTREAM` with
//! `Authorization: Bearer KEY`, through the same server (actix-web), client (reqwest, no
//! redirects, no proxy, kept-alive connections) and allocator as the broker, and passes back
//! the upstream's status, headers and body. The caller's own headers are not forwarded (the
//! broker filters and forwards them), so the floor does slightly less work than any broker could.
//!
//! It has no API key check, no connection lookup, no allowlist or address vetting, no
//! credential opening, no redaction, no audit event, no access log and no metrics: `bench/run`
//! measures it beside the nginx hop and the broker, so the gap between it and the broker is what
//! the broker's own work costs per call, and its gap to the nginx hop is the stack's.

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Forward {
    client: reqwest::Client,
    upstream: String,
    authorization: String,
}

async fn forward(
    forward: web::Data<Forward>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    // actix-web and reqwest use different versions of the `http` crate's method type.
    let Ok(method) = reqwest::Method::from_bytes(request.method().as_str().as_bytes()) else {
        return HttpResponse::BadRequest().finish();
    };
    let url = format!("{}{}", forward.upstream, request.uri());
    let sent = forward
        .client
        .request(method, url)
        .header("authorization", &forward.authorization)
        .body(body)
        .send()
        .await;
    let answer = match sent {
        Ok(answer) => answer,
        Err(_) => return HttpResponse::BadGateway().finish(),
    };
    let mut response = HttpResponse::build(
        StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
    );
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    match answer.bytes().await {
        Ok(body) => response.body(body),
        Err(_) => HttpResponse::BadGateway().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, key] = args.as_slice() else {
        eprintln!("usage: bench-floor LISTEN UPSTREAM KEY");
        std::process::exit(2);
    };
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let state = web::Data::new(Forward {
        client,
        upstream: upstream.trim_end_matches('/').to_owned(),
        authorization: format!("Bearer {key}"),
    });
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(forward))
    })
    .bind(listen.as_str())?
    .run()
    .await
}
