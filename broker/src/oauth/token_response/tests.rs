//! Token response parsing: one test per shared exchange/refresh case, then a table per kind.

use std::path::Path;

use serde::Deserialize;

use super::*;

/// The shared cases live beside the repository, in `shared/cases/oauth`.
const CASES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/cases/oauth");

/// The exchange and refresh cases covered below, by file name.
const COVERED: [&str; 8] = [
    "01-expires-in-as-string.json",
    "02-missing-token-type.json",
    "03-scope-array-lowercase-type.json",
    "04-error-with-200.json",
    "05-form-encoded-body.json",
    "06-refresh-without-new-refresh-token.json",
    "07-invalid-grant-on-refresh.json",
    "08-token-at-nested-path.json",
];

const JSON: Option<&str> = Some("application/json");
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const TEXT: Option<&str> = Some("text/plain");
const HTML: Option<&str> = Some("text/html");

#[derive(Deserialize)]
struct Case {
    when: String,
    response: CaseResponse,
}

#[derive(Deserialize)]
struct CaseResponse {
    status: u16,
    content_type: Option<String>,
    body: String,
}

fn cases_dir() -> &'static Path {
    let dir = Path::new(CASES_DIR);
    assert!(
        dir.is_dir(),
        "shared OAuth cases not found at {}; they are expected in `shared/cases/oauth` next to \
         the repository checkout",
        dir.display()
    );
    dir
}

fn load(file: &str) -> Case {
    let path = cases_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read case {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("case {file} is not valid: {e}"))
}

/// Parses a case's response as the broker would for its `when`.
fn run_case(file: &str, token_path: Option<&str>) -> Result<TokenSet, TokenError> {
    let case = load(file);
    assert!(
        matches!(case.when.as_str(), "exchange" | "refresh"),
        "{file}"
    );
    let response = &case.response;
    let raw = answer(
        response.status,
        response.content_type.as_deref(),
        &response.body,
    );
    parse(&raw, token_path).map(|(set, _)| set)
}

fn expect_set(file: &str, token_path: Option<&str>) -> TokenSet {
    run_case(file, token_path).unwrap_or_else(|e| panic!("{file}: expected a token set, got {e}"))
}

fn answer<'a>(status: u16, content_type: Option<&'a str>, body: &'a str) -> RawResponse<'a> {
    RawResponse {
        status,
        content_type,
        body: body.as_bytes(),
    }
}

fn json(body: &str) -> RawResponse<'_> {
    answer(200, JSON, body)
}

fn parsed(raw: RawResponse<'_>) -> (TokenSet, Vec<&'static str>) {
    parse(&raw, None).unwrap_or_else(|e| panic!("expected a token set, got {e}"))
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

#[test]
fn every_exchange_and_refresh_case_has_a_test() {
    let entries = std::fs::read_dir(cases_dir()).expect("readable cases folder");
    for entry in entries {
        let name = entry.expect("readable entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".json") && matches!(load(&name).when.as_str(), "exchange" | "refresh") {
            assert!(
                COVERED.contains(&name.as_ref()),
                "case {name} has no test here"
            );
        }
    }
}

#[test]
fn case_01_expires_in_as_string_is_a_number() {
    let set = expect_set(COVERED[0], None);

    assert_eq!(set.access_token.expose_secret(), "at-7f3a");
    assert_eq!(set.expires_in, Some(600));
    assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-91c2");
}

#[test]
fn case_02_missing_token_type_is_bearer_and_unknown_members_are_kept() {
    let set = expect_set(COVERED[1], None);

    assert_eq!(set.token_type, BEARER);
    assert_eq!(set.expires_in, Some(43200));
    assert_eq!(set.extra.get("user_id"), Some(&Value::from(66748)));
    assert!(!format!("{set:?}").contains("66748"));
}

#[test]
fn case_03_scope_array_and_lowercase_bearer() {
    let set = expect_set(COVERED[2], None);

    assert_eq!(set.scopes, Some(strings(&["openid", "user:read:email"])));
    assert_eq!(set.token_type, BEARER);
}

#[test]
fn case_04_error_member_wins_over_200() {
    let error = run_case(COVERED[3], None).expect_err("an error member must fail");

    let TokenError::OAuth { code, description } = &error else {
        panic!("expected an OAuth error, got {error}");
    };
    assert_eq!(code, "bad_verification_code");
    assert!(description.as_deref().unwrap().contains("incorrect"));
    let shown = error.to_string();
    assert!(shown.contains("bad_verification_code"), "{shown}");
    assert!(!shown.contains("incorrect"), "{shown}");
}

#[test]
fn case_05_form_encoded_body() {
    let set = expect_set(COVERED[4], None);

    assert_eq!(set.access_token.expose_secret(), "gho_k2v9");
    assert_eq!(set.scopes, Some(strings(&["repo", "gist"])));
    assert_eq!(set.expires_in, None);
    assert_eq!(set.token_type, BEARER);
}

#[test]
fn case_06_refresh_without_refresh_token_keeps_the_old_one() {
    let (previous, _) = parsed(json(
        r#"{"access_token":"at-old","refresh_token":"rt-old"}"#,
    ));
    let refreshed = expect_set(COVERED[5], None);

    let merged = merge_refresh(&previous, refreshed);

    assert_eq!(merged.access_token.expose_secret(), "at-new-44");
    assert_eq!(merged.refresh_token.unwrap().expose_secret(), "rt-old");
    assert_eq!(merged.expires_in, Some(3600));
}

#[test]
fn case_07_invalid_grant_on_refresh() {
    let error = run_case(COVERED[6], None).expect_err("invalid_grant must fail");

    assert!(
        matches!(&error, TokenError::OAuth { code, .. } if code == "invalid_grant"),
        "{error:?}"
    );
}

#[test]
fn case_08_nested_token_only_with_a_token_path() {
    let without = run_case(COVERED[7], None).expect_err("no top-level token");
    assert!(matches!(
        without,
        TokenError::InvalidResponse("no access_token")
    ));

    let set = expect_set(COVERED[7], Some("authed_user.access_token"));

    assert_eq!(set.access_token.expose_secret(), "xoxp-c0de");
    assert_eq!(set.token_type, "user");
    assert_eq!(set.scopes, Some(strings(&["chat:write"])));
    assert_eq!(set.extra["app_id"], "A0X");
    assert_eq!(set.extra["authed_user"], serde_json::json!({"id": "U1"}));
}

#[test]
fn scope_forms_give_the_same_list() {
    let cases = [
        ("space string", r#""read write""#),
        ("comma string", r#""read,write""#),
        ("comma and space", r#""read, write""#),
        ("array", r#"["read","write"]"#),
        ("array with repeats", r#"["read","write","read"]"#),
    ];
    for (name, scope) in cases {
        let body = format!(r#"{{"access_token":"t","scope":{scope}}}"#);
        let (set, _) = parsed(json(&body));
        assert_eq!(set.scopes, Some(strings(&["read", "write"])), "{name}");
    }
    for (name, scope) in [("empty", r#""""#), ("null", "null"), ("empty array", "[]")] {
        let body = format!(r#"{{"access_token":"t","scope":{scope}}}"#);
        assert_eq!(parsed(json(&body)).0.scopes, None, "{name}");
    }
    assert_eq!(
        parsed(json(r#"{"access_token":"t"}"#)).0.scopes,
        None,
        "absent"
    );
}

#[test]
fn expires_in_forms() {
    let cases: [(&str, &str, Option<u64>, bool); 11] = [
        ("number", "600", Some(600), false),
        ("string", r#""600""#, Some(600), false),
        ("padded string", r#"" 600 ""#, Some(600), false),
        ("whole float", "600.0", Some(600), false),
        ("zero", "0", Some(0), false),
        ("null", "null", None, false),
        ("word", r#""soon""#, None, true),
        ("negative", "-1", None, true),
        ("negative string", r#""-1""#, None, true),
        ("fraction", "1.5", None, true),
        ("boolean", "true", None, true),
    ];
    for (name, value, expected, warns) in cases {
        let body = format!(r#"{{"access_token":"t","expires_in":{value}}}"#);
        let (set, warnings) = parsed(json(&body));
        assert_eq!(set.expires_in, expected, "{name}");
        assert_eq!(!warnings.is_empty(), warns, "{name}: {warnings:?}");
    }
}

#[test]
fn token_type_forms() {
    let cases = [
        ("absent", "", BEARER),
        ("lowercase", r#","token_type":"bearer""#, BEARER),
        ("uppercase", r#","token_type":"BEARER""#, BEARER),
        ("empty", r#","token_type":"""#, BEARER),
        ("null", r#","token_type":null"#, BEARER),
        ("other type kept", r#","token_type":"DPoP""#, "DPoP"),
        ("mac kept", r#","token_type":"mac""#, "mac"),
    ];
    for (name, member, expected) in cases {
        let body = format!(r#"{{"access_token":"t"{member}}}"#);
        assert_eq!(parsed(json(&body)).0.token_type, expected, "{name}");
    }
}

#[test]
fn error_member_wins_whatever_the_status() {
    let body = r#"{"error":"invalid_grant","access_token":"t"}"#;
    for status in [200, 201, 400, 401, 500] {
        let result = parse(&answer(status, JSON, body), None);
        assert!(
            matches!(&result, Err(TokenError::OAuth { code, .. }) if code == "invalid_grant"),
            "status {status}: {result:?}"
        );
    }
}

#[test]
fn failures_without_an_error_member() {
    // `None` expects InvalidResponse, `Some(status)` expects Http(status).
    let cases = [
        ("400 json", 400, JSON, r#"{"x":1}"#, Some(400)),
        ("503 html", 503, HTML, "<html>busy</html>", Some(503)),
        ("500 bad json", 500, None, "{oops", Some(500)),
        ("200 html", 200, HTML, "<html>hi</html>", None),
        ("null error", 200, None, r#"{"error":null}"#, None),
        (
            "object error",
            200,
            None,
            r#"{"error":{"x":1},"access_token":"t"}"#,
            None,
        ),
        (
            "number error",
            200,
            JSON,
            r#"{"error":7,"access_token":"t"}"#,
            None,
        ),
        ("json array", 200, JSON, r#"["t"]"#, None),
    ];
    for (name, status, content_type, body, expected) in cases {
        let error = parse(&answer(status, content_type, body), None).expect_err(name);
        match (error, expected) {
            (TokenError::Http(got), Some(want)) => assert_eq!(got, want, "{name}"),
            (TokenError::InvalidResponse(_), None) => {}
            (error, _) => panic!("{name}: unexpected {error:?}"),
        }
    }
}

#[test]
fn form_and_json_bodies_give_the_same_set() {
    let json_body = r#"{"access_token":"t-1","scope":"a b","expires_in":"60"}"#;
    let form_body = "access_token=t-1&scope=a+b&expires_in=60\n";
    let bom_json = "\u{feff}{\"access_token\":\"t-1\",\"scope\":\"a,b\",\"expires_in\":60}";
    let cases = [
        ("json", Some("application/json; charset=utf-8"), json_body),
        ("json sniffed under text/plain", TEXT, json_body),
        ("json sniffed under form type", FORM, json_body),
        ("json with BOM and no type", None, bom_json),
        ("form", FORM, form_body),
        (
            "form type in odd case",
            Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            form_body,
        ),
        ("text/plain form", TEXT, form_body),
        ("untyped form", None, form_body),
    ];
    for (name, content_type, body) in cases {
        let (set, warnings) =
            parse(&answer(200, content_type, body), None).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(set.access_token.expose_secret(), "t-1", "{name}");
        assert_eq!(set.scopes, Some(strings(&["a", "b"])), "{name}");
        assert_eq!(set.expires_in, Some(60), "{name}");
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}

#[test]
fn unusable_tokens_are_refused() {
    let cases = [
        ("absent", r#"{"token_type":"bearer"}"#),
        ("empty", r#"{"access_token":""}"#),
        ("null", r#"{"access_token":null}"#),
        ("number", r#"{"access_token":123}"#),
        ("object", r#"{"access_token":{"value":"t"}}"#),
        ("newline", r#"{"access_token":"t\r\nX-Evil: 1"}"#),
        ("non-ascii", r#"{"access_token":"tö"}"#),
        (
            "refresh_token number",
            r#"{"access_token":"t","refresh_token":7}"#,
        ),
        ("id_token array", r#"{"access_token":"t","id_token":[]}"#),
        (
            "refresh_token tab",
            r#"{"access_token":"t","refresh_token":"r\t1"}"#,
        ),
    ];
    for (name, body) in cases {
        let result = parse(&json(body), None);
        assert!(
            matches!(result, Err(TokenError::InvalidResponse(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn empty_refresh_token_counts_as_absent_and_merge_keeps_the_old_one() {
    let (previous, _) = parsed(json(
        r#"{"access_token":"a1","refresh_token":"r1","scope":"x","id_token":"i1","user":"u"}"#,
    ));
    let (refreshed, _) = parsed(json(r#"{"access_token":"a2","refresh_token":""}"#));
    assert!(refreshed.refresh_token.is_none());

    let merged = merge_refresh(&previous, refreshed);

    assert_eq!(merged.access_token.expose_secret(), "a2");
    assert_eq!(merged.refresh_token.as_ref().unwrap().expose_secret(), "r1");
    assert_eq!(merged.scopes, Some(strings(&["x"])));
    assert_eq!(merged.id_token.as_ref().unwrap().expose_secret(), "i1");
    assert_eq!(merged.extra["user"], "u");

    let (rotated, _) = parsed(json(r#"{"access_token":"a3","refresh_token":"r2"}"#));
    let merged = merge_refresh(&merged, rotated);
    assert_eq!(merged.refresh_token.unwrap().expose_secret(), "r2");
}

#[test]
fn oversized_bodies_are_refused() {
    let body = format!(
        r#"{{"access_token":"t","pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let result = parse(&json(&body), None);
    assert!(
        matches!(result, Err(TokenError::InvalidResponse(_))),
        "{result:?}"
    );

    let result = parse(&answer(502, JSON, &body), None);
    assert!(matches!(result, Err(TokenError::Http(502))), "{result:?}");
}

#[test]
fn token_path_edge_cases() {
    let body = r#"{"data":{"token":"t-9","scope":"s"},"flat":"x"}"#;
    let (set, _) = parse(&json(body), Some("data.token")).expect("nested token");
    assert_eq!(set.access_token.expose_secret(), "t-9");
    assert_eq!(set.scopes, Some(strings(&["s"])));

    let cases = [
        ("", "malformed token_path"),
        ("data.", "malformed token_path"),
        (".token", "malformed token_path"),
        ("missing.token", "no access_token at token_path"),
        ("flat.token", "no access_token at token_path"),
        ("data.absent", "no access_token"),
    ];
    for (path, reason) in cases {
        let result = parse(&json(body), Some(path));
        assert!(
            matches!(result, Err(TokenError::InvalidResponse(got)) if got == reason),
            "{path:?}: {result:?}"
        );
    }
}

#[test]
fn debug_prints_no_token_or_extra_value() {
    let body = r#"{"access_token":"QXZ-A","refresh_token":"QXZ-R","id_token":"QXZ-I",
        "api_key":"QXZ-X","scope":"read"}"#;
    let raw = json(body);
    let (set, _) = parsed(raw);

    for printed in [format!("{set:?}"), format!("{set:#?}"), format!("{raw:?}")] {
        assert!(!printed.contains("QXZ"), "{printed}");
    }
    assert!(format!("{set:?}").contains("read"));
}

#[test]
fn errors_show_no_token_or_body_text() {
    let cases = [
        r#"{"error":"invalid_grant","error_description":"QXZ-R was revoked"}"#,
        r#"{"error":"QXZ-T","error_description":"QXZ-D"}"#,
        r#"{"error":{"token":"QXZ-T"}}"#,
        r#"{"access_token":"QXZ-T\n"}"#,
        r#"{"access_token":"QXZ-T","refresh_token":1}"#,
        "QXZ-T",
    ];
    for body in cases {
        for status in [200, 400] {
            let error = parse(&answer(status, JSON, body), None).expect_err(body);
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("QXZ"), "{body}: {shown}");
        }
    }
}

#[test]
fn sealed_bytes_round_trip() {
    let body = r#"{"access_token":"a\"1","refresh_token":"r1","id_token":"i1","token_type":"mac",
        "expires_in":60,"scope":"x y","user":{"id":7}}"#;
    let (set, _) = parsed(json(body));

    let bytes = set.to_sealed_bytes();
    assert_eq!(bytes.len(), bytes.capacity());
    let back = TokenSet::from_sealed_bytes(&bytes).expect("round trip");

    assert_eq!(back.access_token.expose_secret(), "a\"1");
    assert_eq!(back.refresh_token.unwrap().expose_secret(), "r1");
    assert_eq!(back.id_token.unwrap().expose_secret(), "i1");
    assert_eq!(back.token_type, "mac");
    assert_eq!(back.expires_in, Some(60));
    assert_eq!(back.scopes, Some(strings(&["x", "y"])));
    assert_eq!(back.extra, set.extra);
}

#[test]
fn unreadable_sealed_bytes_are_refused() {
    let cases: [(&str, &[u8]); 4] = [
        ("garbage", b"\x00\x01"),
        (
            "wrong version",
            br#"{"v":9,"access_token":"a","token_type":"Bearer"}"#,
        ),
        (
            "empty token",
            br#"{"v":1,"access_token":"","token_type":"Bearer"}"#,
        ),
        ("missing token", br#"{"v":1,"token_type":"Bearer"}"#),
    ];
    for (name, bytes) in cases {
        let result = TokenSet::from_sealed_bytes(bytes);
        assert!(
            matches!(result, Err(TokenError::InvalidResponse(_))),
            "{name}"
        );
    }
}
