//! Following an upstream's redirects, for integrations that opt in (`api.follow_redirects`).
//!
//! Without the opt-in a 3xx goes back to the caller as it came. With it, the proxy follows 301,
//! 302, 303, 307 and 308 answers that carry a `Location`, at most [`MAX_HOPS`] of them; one more
//! is refused with `too_many_redirects`. Every hop's `Location` is resolved against the URL that
//! answered and vetted exactly like the first target: [`net::vet`] (scheme, user information,
//! literal addresses), the integration's `allowed_hosts`, and the addresses the name resolves to
//! (the client's resolver vets them again when it connects). A hop that fails is refused with
//! `host_not_allowed` and nothing is sent to it.
//!
//! The credential is injected only while the hop's origin (scheme, host, port) is the first
//! target's. A hop to another origin goes without it; should its URL carry the credential in any
//! form (an upstream that copies a `query`-style key along with the query string), the hop is
//! refused with `redirect_refused`.
//!
//! Methods and bodies:
//! - 307 and 308 keep the method and the body, also to another origin: the body is the caller's
//!   own (it never holds the credential), the status asks for exactly that, and the partner's
//!   allowlist bounds where it can go;
//! - 303 turns every method but HEAD into GET;
//! - 301 and 302 turn every method but GET and HEAD into GET. Browsers do that for POST only;
//!   here a PUT or DELETE is never repeated at another location unless a 307 or 308 asks for it.
//!
//! The body goes along only on 307 and 308; when it is dropped, so are the headers that describe
//! it (`content-*`). The caller's other forwarded headers go to every hop.
//!
//! The whole chain shares one upstream deadline, counted from when the request began, so that no
//! hop carries the credential after a revocation has stopped waiting for the request (see
//! [`crate::proxy::Gate`]). An upstream 401 triggers a refresh and a retry only on the first
//! hop; a 401 at the end of a chain is passed back as it came.

use reqwest::Method;
use reqwest::header::{self, HeaderValue};
use url::Url;

use crate::error::Error;
use crate::integrations::{self, Integration};
use crate::net;
use crate::proxy::{self, Known, Outbound, ProxyContext};
use crate::secret::SecretString;

/// The most redirects followed for one request.
pub const MAX_HOPS: usize = 5;

/// Follows `response` while it is a redirect and the integration opts in; otherwise hands it
/// back untouched. `first` is the target the credential was sent to; `known` learns the host and
/// path of every hop tried, so the audit event names the last one.
pub(crate) async fn follow(
    ctx: &ProxyContext<'_>,
    integration: &Integration,
    first: &Url,
    outbound: &Outbound,
    credential: &SecretString,
    response: Result<reqwest::Response, Error>,
    known: &mut Known,
) -> Result<reqwest::Response, Error> {
    if !integration.follow_redirects {
        return response;
    }
    let mut response = response?;
    if location(&response).is_none() {
        return Ok(response);
    }
    let started = known.started.unwrap_or_else(std::time::Instant::now);
    let deadline = tokio::time::Instant::from_std(started + ctx.gate.upstream_timeout());
    let mut current = first.clone();
    let mut request = Outbound {
        method: outbound.method.clone(),
        path: String::new(),
        query: None,
        headers: outbound.headers.clone(),
        body: outbound.body.clone(),
    };
    let mut hops = 0;
    while let Some(to) = location(&response) {
        if hops == MAX_HOPS {
            return Err(Error::State("too_many_redirects"));
        }
        hops += 1;
        let next = resolve(&current, to)?;
        known.host = next.host_str().map(str::to_owned);
        known.path = Some(next.path().to_owned());
        vet_location(&next, &integration.allowed_hosts, ctx.allow_private)?;
        proxy::vet_addresses(ctx, &next).await?;
        request = rewrite(response.status().as_u16(), request);
        drop(response);

        let with_credential = same_origin(first, &next);
        if !with_credential {
            refuse_carried_credential(&next, credential, integration)?;
        }
        let sent = async {
            if with_credential {
                proxy::send(ctx, integration, &next, &request, credential).await
            } else {
                send_without_credential(ctx, &next, &request).await
            }
        };
        response = tokio::time::timeout_at(deadline, sent)
            .await
            .map_err(|_| Error::State("upstream_timeout"))??;
        current = next;
    }
    Ok(response)
}

/// The `Location` of an answer this module follows; `None` for anything else (a 300, a 304, a
/// redirect without a `Location`), which goes back to the caller as it came.
fn location(response: &reqwest::Response) -> Option<&HeaderValue> {
    match response.status().as_u16() {
        301 | 302 | 303 | 307 | 308 => response.headers().get(header::LOCATION),
        _ => None,
    }
}

/// The next hop: `location` resolved against the URL that answered, without a fragment. A
/// `Location` that is not a URL fails vetting.
fn resolve(current: &Url, location: &HeaderValue) -> Result<Url, Error> {
    let text = location
        .to_str()
        .map_err(|_| Error::State("host_not_allowed"))?;
    let mut next = current
        .join(text)
        .map_err(|_| Error::State("host_not_allowed"))?;
    next.set_fragment(None);
    Ok(next)
}

/// A hop passes the same URL checks as the first target: [`net::vet`] and the allowlist.
fn vet_location(next: &Url, allowed_hosts: &[String], allow_private: bool) -> Result<(), Error> {
    net::vet(next.as_str(), allow_private).map_err(|_| Error::State("host_not_allowed"))?;
    let host = next.host_str().unwrap_or_default();
    if !integrations::host_allowed(host, allowed_hosts) {
        return Err(Error::State("host_not_allowed"));
    }
    Ok(())
}

/// Whether the credential may go to `next`: scheme, host and port (the scheme's default when
/// none is written) all equal the first target's.
fn same_origin(first: &Url, next: &Url) -> bool {
    first.origin() == next.origin()
}

/// The request of the next hop, by the status that sent it there (see the module's rules).
fn rewrite(status: u16, mut request: Outbound) -> Outbound {
    let (method, keeps_body) = next_method(status, &request.method);
    request.method = method;
    if !keeps_body {
        request.body.clear();
        request
            .headers
            .retain(|(name, _)| !name.to_ascii_lowercase().starts_with("content-"));
    }
    request
}

/// The method of the next hop, and whether the body goes along.
fn next_method(status: u16, method: &Method) -> (Method, bool) {
    match status {
        307 | 308 => (method.clone(), true),
        303 if *method == Method::HEAD => (Method::HEAD, false),
        303 => (Method::GET, false),
        _ if *method == Method::GET || *method == Method::HEAD => (method.clone(), false),
        _ => (Method::GET, false),
    }
}

/// Refuses a hop to another origin whose URL carries the credential in any of the forms that
/// redaction knows. Known gap, shared with redaction: a form spelled differently (lower-case
/// percent escapes, for one) is not recognised.
fn refuse_carried_credential(
    next: &Url,
    credential: &SecretString,
    integration: &Integration,
) -> Result<(), Error> {
    let text = next.as_str().as_bytes();
    let carried = crate::redaction::forms(credential, &integration.inject)
        .iter()
        .any(|form| text.windows(form.len()).any(|w| w == form.as_slice()));
    if carried {
        return Err(Error::State("redirect_refused"));
    }
    Ok(())
}

/// A hop to another origin: the caller's forwarded headers and the (possibly dropped) body,
/// nothing injected. Kept apart from the proxy's `send` so that sending without a credential is
/// a separate path that cannot inject one by mistake.
async fn send_without_credential(
    ctx: &ProxyContext<'_>,
    next: &Url,
    request: &Outbound,
) -> Result<reqwest::Response, Error> {
    let headers = proxy::forwarded_headers(request);
    proxy::dispatch(ctx, &request.method, next.clone(), headers, &request.body).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::{AuthType, Inject};

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_credential_stays_on_the_first_origin() {
        let first = url("https://api.example.com/v1/items");
        let cases = [
            ("https://api.example.com/v2/items?page=2", true),
            ("https://API.example.com/elsewhere", true),
            ("https://api.example.com:443/explicit-default-port", true),
            ("http://api.example.com/downgrade", false),
            ("https://api.example.com:8443/other-port", false),
            ("https://files.example.com/sibling", false),
            ("https://example.com/apex", false),
            ("https://api.example.com.evil.test/look-alike", false),
        ];
        for (next, expected) in cases {
            assert_eq!(same_origin(&first, &url(next)), expected, "case {next}");
        }
    }

    #[test]
    fn methods_and_bodies_follow_the_status() {
        let cases = [
            (307, Method::POST, Method::POST, true),
            (308, Method::PUT, Method::PUT, true),
            (307, Method::GET, Method::GET, true),
            (303, Method::POST, Method::GET, false),
            (303, Method::DELETE, Method::GET, false),
            (303, Method::HEAD, Method::HEAD, false),
            (301, Method::GET, Method::GET, false),
            (302, Method::HEAD, Method::HEAD, false),
            (301, Method::POST, Method::GET, false),
            (302, Method::PUT, Method::GET, false),
            (302, Method::DELETE, Method::GET, false),
            (301, Method::PATCH, Method::GET, false),
        ];
        for (status, method, expected, keeps_body) in cases {
            assert_eq!(
                next_method(status, &method),
                (expected, keeps_body),
                "case {status} {method}"
            );
        }
    }

    #[test]
    fn a_dropped_body_takes_its_headers_along() {
        let request = Outbound {
            method: Method::POST,
            path: String::new(),
            query: None,
            headers: vec![
                ("Content-Type".into(), b"application/json".to_vec()),
                ("content-language".into(), b"en".to_vec()),
                ("x-trace".into(), b"t-1".to_vec()),
            ],
            body: bytes::Bytes::from_static(b"{\"a\":1}"),
        };
        let kept = rewrite(307, clone(&request));
        assert_eq!((kept.method.clone(), kept.body.len()), (Method::POST, 7));
        assert_eq!(kept.headers.len(), 3);

        let dropped = rewrite(303, request);
        assert_eq!(dropped.method, Method::GET);
        assert!(dropped.body.is_empty());
        assert_eq!(dropped.headers, vec![("x-trace".into(), b"t-1".to_vec())]);
    }

    fn clone(request: &Outbound) -> Outbound {
        Outbound {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        }
    }

    #[test]
    fn every_hop_is_vetted_like_the_first_target() {
        let allowed = vec!["api.example.com".to_owned(), "127.0.0.1".to_owned()];
        let cases = [
            ("https://api.example.com/next", false, true),
            ("https://other.example.com/next", false, false),
            ("http://api.example.com/plain-http", false, false),
            ("https://169.254.169.254/latest/meta-data/", false, false),
            ("http://169.254.169.254/latest/meta-data/", true, false),
            ("https://user:pw@api.example.com/", false, false),
            ("http://127.0.0.1:9/local", false, false),
            ("http://127.0.0.1:9/local", true, true),
            ("http://localhost:9/not-listed", true, false),
        ];
        for (next, allow_private, expected) in cases {
            let vetted = vet_location(&url(next), &allowed, allow_private);
            assert_eq!(vetted.is_ok(), expected, "case {next} ({allow_private})");
        }
    }

    #[test]
    fn locations_resolve_against_the_url_that_answered() {
        let current = url("http://127.0.0.1:8000/redirect/3?x=1");
        let cases = [
            ("/get", "http://127.0.0.1:8000/get"),
            ("relative/2", "http://127.0.0.1:8000/redirect/relative/2"),
            ("?page=2", "http://127.0.0.1:8000/redirect/3?page=2"),
            ("//127.0.0.1:9000/x#frag", "http://127.0.0.1:9000/x"),
            ("https://api.example.com/y", "https://api.example.com/y"),
        ];
        for (location, expected) in cases {
            let next = resolve(&current, &HeaderValue::from_static(location)).unwrap();
            assert_eq!(next.as_str(), expected, "case {location}");
        }
        let garbage = HeaderValue::from_bytes(b"http://[::zz]/").unwrap();
        assert!(resolve(&current, &garbage).is_err());
    }

    #[test]
    fn another_origin_never_gets_a_url_that_carries_the_credential() {
        let integration = Integration {
            partner_id: "ptn_1".into(),
            key: "k".into(),
            provider: "custom".into(),
            auth_type: AuthType::ApiKey,
            oauth: None,
            api_base_url: "https://api.example.com".into(),
            allowed_hosts: vec!["api.example.com".into()],
            follow_redirects: true,
            inject: Inject::Query {
                name: "api_key".into(),
            },
            created_at: 0,
            updated_at: 0,
        };
        let secret = SecretString::from("k/y+z secret".to_owned());
        let cases = [
            ("https://other.example.com/?api_key=k%2Fy%2Bz+secret", false),
            ("https://other.example.com/k%2Fy%2Bz%20secret/", false),
            ("https://other.example.com/?page=2", true),
        ];
        for (next, expected) in cases {
            let checked = refuse_carried_credential(&url(next), &secret, &integration);
            assert_eq!(checked.is_ok(), expected, "case {next}");
        }
    }
}
