//! Request extractors that answer bad input with problem details: a JSON body that names the
//! offending field without quoting its value, query strings, and `Idempotency-Key`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body of type `T`, limited to `CONNECT_MAX_BODY_BYTES`. Unknown fields are refused by
/// the types themselves (`deny_unknown_fields`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Serialize + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.config.max_body_bytes)
            .unwrap_or(64 * 1024);
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let declared_too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|len| len > limit);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if declared_too_large {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let bytes = body.await.map_err(|_| ApiError::PayloadTooLarge(limit))?;
            if bytes.len() > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            parse_json(&bytes).map(JsonBody)
        })
    }
}

/// Parses `bytes` as `T`, describing failures by position and field, never by value. Every
/// request body of this API is a JSON object, and so is every nested structure; serde would
/// also fill a struct from an array, which is refused here at any depth.
pub fn parse_json<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => {
            return Err(ApiError::InvalidJson {
                detail: "the body must be a JSON object".into(),
                field: None,
            });
        }
        None => {
            return Err(ApiError::InvalidJson {
                detail: "the body is empty".into(),
                field: None,
            });
        }
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = parsed.map_err(|err| {
        let path = err.path().to_string();
        let field = (path != "." && path != "?").then(|| path.clone());
        let inner = err.into_inner();
        let detail = describe_json_error(&inner, field.as_deref());
        ApiError::InvalidJson { detail, field }
    })?;
    deserializer.end().map_err(|_| ApiError::InvalidJson {
        detail: "trailing characters after the JSON value".into(),
        field: None,
    })?;
    let sent: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let read = serde_json::to_value(&value).unwrap_or_default();
    if let Some(path) = array_read_as_object(&sent, &read, String::new()) {
        return Err(ApiError::InvalidJson {
            detail: format!("`{path}` has the wrong type or value; expected an object"),
            field: Some(path),
        });
    }
    Ok(value)
}

/// The first path where the body sent an array and the parsed value holds an object: serde
/// filled a struct from a sequence. Compares the body with the parsed value serialised again.
fn array_read_as_object(
    sent: &serde_json::Value,
    read: &serde_json::Value,
    path: String,
) -> Option<String> {
    use serde_json::Value;
    let join = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    match (sent, read) {
        (Value::Array(_), Value::Object(_)) => Some(path),
        (Value::Object(sent), Value::Object(read)) => read.iter().find_map(|(name, value)| {
            let inner = sent.get(name)?;
            array_read_as_object(inner, value, join(name))
        }),
        (Value::Array(sent), Value::Array(read)) => sent
            .iter()
            .zip(read)
            .enumerate()
            .find_map(|(i, (s, r))| array_read_as_object(s, r, join(&i.to_string()))),
        _ => None,
    }
}

fn describe_json_error(err: &serde_json::Error, field: Option<&str>) -> String {
    use serde_json::error::Category;
    let at = format!("line {} column {}", err.line(), err.column());
    let message = err.to_string();
    match err.classify() {
        Category::Syntax | Category::Io => format!("malformed JSON at {at}"),
        Category::Eof => "the JSON body ends early".to_owned(),
        Category::Data => {
            // serde's messages quote the offending value for type errors ("invalid type: string
            // \"…\""); only the field name and the expectation are repeated.
            if let Some(rest) = message.strip_prefix("unknown field `") {
                let name: String = rest.chars().take_while(|c| *c != '`').take(64).collect();
                return format!("unknown field `{name}`");
            }
            if let Some(rest) = message.strip_prefix("missing field `") {
                let name: String = rest.chars().take_while(|c| *c != '`').collect();
                return format!("missing field `{name}`");
            }
            let expected = message
                .split_once(", expected ")
                .map(|(_, e)| e.split(" at line").next().unwrap_or(e).to_owned());
            match (field, expected) {
                (Some(field), Some(expected)) => {
                    format!("`{field}` has the wrong type or value; expected {expected}")
                }
                (Some(field), None) => format!("`{field}` has the wrong type or value"),
                (None, Some(expected)) => {
                    format!("the body has the wrong shape; expected {expected}")
                }
                (None, None) => "the body has the wrong shape".to_owned(),
            }
        }
    }
}

/// Query parameters of type `T`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let pairs = url::form_urlencoded::parse(req.query_string().as_bytes());
        let deserializer = serde_urlencoded::Deserializer::new(pairs);
        let parsed = serde_path_to_error::deserialize::<_, T>(deserializer)
            .map(Query)
            .map_err(|err| {
                let parameter = err.path().to_string();
                let err = err.into_inner();
                // Only the part before any quoted value is kept.
                let message = err.to_string();
                let message = message.split(": \"").next().unwrap_or(&message).to_owned();
                match parameter.as_str() {
                    "." | "?" => ApiError::InvalidQuery(message),
                    name => ApiError::InvalidQuery(format!("`{name}`: {message}")),
                }
            });
        std::future::ready(parsed)
    }
}

/// The optional `Idempotency-Key` header.
pub struct IdempotencyKey(pub Option<String>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get("Idempotency-Key") {
            None => Ok(IdempotencyKey(None)),
            Some(value) => match value.to_str() {
                Ok(text) if !text.is_empty() && text.len() <= 255 => {
                    Ok(IdempotencyKey(Some(text.to_owned())))
                }
                _ => Err(ApiError::InvalidHeader {
                    header: "Idempotency-Key",
                    reason: "must be 1 to 255 visible ASCII characters",
                }),
            },
        };
        std::future::ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        api_key: String,
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inner: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        base_url: Option<String>,
        hosts: Option<Vec<String>>,
    }

    fn detail(body: &str) -> String {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::InvalidJson { detail, .. }) => detail,
            other => panic!("expected invalid JSON, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_fields_but_never_quote_values() {
        let cases = [
            (r#"{"api_key": 1234567, "count": 1}"#, "api_key", "1234567"),
            (
                r#"{"api_key": "x", "count": "canary-9b1"}"#,
                "count",
                "canary-9b1",
            ),
            (r#"{"api_key": "x", "count": 1, "extra": 1}"#, "extra", "@@"),
            (r#"{"count": 1}"#, "api_key", "@@"),
        ];
        for (body, names, value) in cases {
            let d = detail(body);
            assert!(d.contains(names), "case {body}: {d}");
            assert!(!d.contains(value), "case {body}: {d}");
        }
        assert!(detail("{not json").starts_with("malformed JSON"));
        assert!(detail(r#"{"api_key":"x","count":1} trailing"#).contains("trailing"));
        assert!(
            detail(r#"["x", 1]"#).contains("JSON object"),
            "a struct is not filled from an array"
        );
        assert!(
            detail(r#"{"api_key": "x", "count": 1, "inner": [null, null]}"#)
                .contains("`inner` has the wrong type or value; expected an object"),
            "a nested struct is not filled from an array either"
        );
        assert!(
            parse_json::<Body>(br#"{"api_key": "x", "count": 1, "inner": {"hosts": ["a"]}}"#)
                .is_ok(),
            "a nested object with an array inside is fine"
        );
    }
}
