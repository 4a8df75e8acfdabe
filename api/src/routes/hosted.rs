//! The end user's pages: the connect page, the start of the provider leg, the OAuth callback,
//! and the success and error pages. Server-rendered HTML with no third-party assets, no
//! referrer, no caching and a Content-Security-Policy that allows only the page's own style.

use std::sync::OnceLock;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, get as http_get, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use connect_broker::integrations::AuthType;
use connect_broker::oauth::catalog;
use connect_broker::oauth::flow::{self, Callback, Failure};
use connect_broker::secret::{ExposeSecret, SecretString};
use maud::{DOCTYPE, Markup, html};
use sha2::{Digest, Sha256};

use crate::error::ApiResult;
use crate::state::AppState;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}\
main{max-width:28rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
h1{font-size:1.4rem;margin-top:0}p{line-height:1.5}\
a.button{display:inline-block;background:#1f5eff;color:#fff;padding:.7rem 1.2rem;border-radius:.5rem;text-decoration:none;font-weight:600}\
a.button:focus,button:focus,input:focus{outline:3px solid #0b3bb3;outline-offset:2px}\
label{display:block;font-weight:600;margin:1rem 0 .3rem}input{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem}\
button{margin-top:1rem;background:#1f5eff;color:#fff;border:0;padding:.7rem 1.2rem;border-radius:.5rem;font-weight:600;font-size:1rem}.code{font-family:monospace;color:#555}";

fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

fn hosted(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder
        .insert_header(("Content-Security-Policy", csp()))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"));
    builder
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { main { (body) } }
        }
    }
}

fn provider_name(provider: &str) -> String {
    catalog::get(provider)
        .map(|t| t.name.to_owned())
        .unwrap_or_else(|| provider.to_owned())
}

/// The connect page: names the partner and the provider, and links to the provider.
#[http_get("/connect/{token}")]
pub async fn connect_page(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let shown = flow::page(&state.db, &token).await?;

    let page_or_failure = match shown {
        Ok(info) => info,
        Err(failure) => return Ok(failure_page(failure)),
    };
    let provider = match page_or_failure.provider.as_str() {
        // A custom provider has no display name of its own: show the integration's key.
        "custom" => page_or_failure.integration_key.clone(),
        template => provider_name(template),
    };
    let body = match page_or_failure.auth_type {
        AuthType::Oauth2 => html! {
            h1 { "Connect your " (provider) " account" }
            p { (page_or_failure.partner_name) " asks to use your " (provider) " account on your behalf. "
                "You will sign in at " (provider) " and choose what to allow. "
                (page_or_failure.partner_name) " never sees your password or tokens." }
            a class="button" href={ "/connect/" (token.as_str()) "/start" } { "Continue to " (provider) }
        },
        AuthType::ApiKey => html! {
            h1 { "Connect " (provider) }
            p { (page_or_failure.partner_name) " asks for your " (provider) " API key to call " (provider)
                " on your behalf. The key is sealed on arrival; " (page_or_failure.partner_name)
                " can use it through this service but never read it." }
            form method="post" action={ "/connect/" (token.as_str()) "/api-key" } {
                label for="api_key" { (provider) " API key" }
                input type="password" id="api_key" name="api_key" autocomplete="off" required;
                button type="submit" { "Connect" }
            }
        },
    };
    // Marks that this browser saw the page; `start` requires it, so a link straight to the
    // provider leg (say, planted on another site) does not start a flow.
    let seen = format!(
        "{SEEN_COOKIE}={}; Path=/connect; HttpOnly; SameSite=Strict; Max-Age=1800",
        seen_value(&token)
    );
    Ok(hosted(StatusCode::OK)
        .insert_header(("Set-Cookie", seen))
        .content_type("text/html; charset=utf-8")
        .body(page("Connect", body).into_string()))
}

const SEEN_COOKIE: &str = "connect_seen";

fn seen_value(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..16])
}

/// Sends the browser to the provider, binding the flow to this browser with a cookie. Only from
/// the connect page itself: the page's cookie must be present and the request same-origin.
#[http_get("/connect/{token}/start")]
pub async fn start(
    state: web::Data<AppState>,
    request: HttpRequest,
    token: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let seen = request
        .cookie(SEEN_COOKIE)
        .is_some_and(|c| c.value() == seen_value(&token));
    let fetch_site = request
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if !seen || fetch_site.is_some_and(|site| site != "same-origin") {
        let failure = Failure {
            code: "start_from_page".into(),
            return_url: None,
        };
        return Ok(failure_page(failure));
    }

    let started = flow::start(&state.flow(), &token).await?;

    let started = match started {
        Ok(started) => started,
        Err(failure) => return Ok(failure_page(failure)),
    };
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={}; Path=/oauth/callback; HttpOnly; SameSite=Lax; Max-Age=1800{secure}",
        started.cookie_name,
        started.cookie_value.expose_secret()
    );
    Ok(hosted(StatusCode::SEE_OTHER)
        .insert_header(("Location", started.location))
        .insert_header(("Set-Cookie", cookie))
        .finish())
}

/// The API key the end user pasted.
#[derive(serde::Deserialize)]
pub struct Pasted {
    api_key: String,
}

/// Receives the paste form of an `api_key` integration.
#[actix_web::post("/connect/{token}/api-key")]
pub async fn paste(
    state: web::Data<AppState>,
    token: web::Path<String>,
    form: web::Form<Pasted>,
) -> ApiResult<HttpResponse> {
    let key = SecretString::from(form.into_inner().api_key);

    let outcome = flow::paste(&state.flow(), &token, &key).await?;

    Ok(connected_or_failed(outcome))
}

/// The OAuth redirect URI of one integration.
#[http_get("/oauth/callback/{partner_id}/{key}")]
pub async fn callback(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<(String, String)>,
) -> ApiResult<HttpResponse> {
    let (partner_id, integration_key) = path.into_inner();
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let first = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let cookies = request
        .cookies()
        .map(|all| {
            all.iter()
                .filter(|c| c.name().starts_with("connect_"))
                .map(|c| {
                    (
                        c.name().to_owned(),
                        SecretString::from(c.value().to_owned()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let input = Callback {
        partner_id,
        integration_key,
        code: first("code").map(SecretString::from),
        state: first("state").map(SecretString::from),
        iss: first("iss"),
        error: first("error"),
        cookies,
    };

    let outcome = flow::callback(&state.flow(), input).await?;

    Ok(connected_or_failed(outcome))
}

fn connected_or_failed(outcome: Result<(String, Option<String>), Failure>) -> HttpResponse {
    match outcome {
        Ok((connection_id, Some(return_url))) => redirect_back(
            &return_url,
            &[("connection_id", &connection_id), ("status", "connected")],
        ),
        Ok((_, None)) => hosted(StatusCode::OK)
            .content_type("text/html; charset=utf-8")
            .body(
                page(
                    "Connected",
                    html! {
                        h1 { "Connected" }
                        p { "Your account is connected. You can close this window." }
                    },
                )
                .into_string(),
            ),
        Err(failure) => failure_page(failure),
    }
}

fn redirect_back(return_url: &str, params: &[(&str, &str)]) -> HttpResponse {
    let location = match url::Url::parse(return_url) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => {
            return failure_page(Failure {
                code: "invalid_return_url".into(),
                return_url: None,
            });
        }
    };
    hosted(StatusCode::SEE_OTHER)
        .insert_header(("Location", location))
        .finish()
}

fn failure_page(failure: Failure) -> HttpResponse {
    if let Some(return_url) = &failure.return_url {
        return redirect_back(return_url, &[("status", "error"), ("code", &failure.code)]);
    }
    let message = match failure.code.as_str() {
        "session_not_found" => {
            "This link is not valid. Ask the app that sent you here for a new one."
        }
        "session_expired" => "This link has expired. Ask the app that sent you here for a new one.",
        "session_used" | "state_already_used" => "This link has already been used.",
        "access_denied" => "You declined the request. Nothing was connected.",
        "browser_mismatch" => {
            "This sign-in was started in another browser. Start again from the app."
        }
        "invalid_state" => "This sign-in response is not valid. Start again from the app.",
        "start_from_page" => "Open the link you were given and press Continue there.",
        "invalid_api_key_format" => {
            "That does not look like an API key. Go back and paste it again."
        }
        _ => "The account could not be connected. Nothing was stored. Start again from the app.",
    };
    let body = html! {
        h1 { "Not connected" }
        p { (message) }
        p class="code" { "Error code: " (failure.code) }
    };
    hosted(StatusCode::BAD_REQUEST)
        .content_type("text/html; charset=utf-8")
        .body(page("Not connected", body).into_string())
}
