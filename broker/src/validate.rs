//! Input rules shared by every resource. A value that breaks one is refused with the field's
//! name and the rule, never with the value itself.

use crate::error::Error;

/// Longest accepted `external_user_id`.
pub const MAX_EXTERNAL_ID: usize = 256;
/// Largest accepted `metadata` object, serialised.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Most keys in a `metadata` object.
pub const MAX_METADATA_KEYS: usize = 50;

/// The characters an identifier-like field may hold: letters, digits and `. _ - : @ + = | /`.
/// Quotes, semicolons, spaces, control characters and anything outside ASCII are refused, so
/// these values are safe to show in a log or a terminal as they are.
pub fn identifier(field: &str, value: &str, max_len: usize) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > max_len {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_len} characters"),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-:@+=|/".contains(c);
    if !value.chars().all(allowed) {
        return Err(Error::invalid(
            field,
            "may contain only letters, digits and . _ - : @ + = | /",
        ));
    }
    Ok(())
}

/// A human-readable name: 1 to 100 printable characters, no control characters.
pub fn name(field: &str, value: &str) -> Result<(), Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() || value.chars().count() > 100 {
        return Err(Error::invalid(field, "must be 1 to 100 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Partner-supplied metadata: a JSON object, bounded in size and key count, with no control
/// characters in its keys.
pub fn metadata(value: &serde_json::Value) -> Result<String, Error> {
    let object = value
        .as_object()
        .ok_or_else(|| Error::invalid("metadata", "must be a JSON object"))?;
    if object.len() > MAX_METADATA_KEYS {
        return Err(Error::invalid(
            "metadata",
            format!("must have at most {MAX_METADATA_KEYS} keys"),
        ));
    }
    if object
        .keys()
        .any(|k| k.is_empty() || k.len() > 64 || k.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "metadata",
            "keys must be 1 to 64 characters without control characters",
        ));
    }
    let text = serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))?;
    if text.len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_refuse_what_a_log_or_query_could_misread() {
        let cases = [
            ("u-123", true),
            ("alice@example.com", true),
            ("tenant:42/user|7", true),
            ("", false),
            ("a b", false),
            ("x'; DROP TABLE vaults; --", false),
            ("line\nbreak", false),
            ("nul\0", false),
            ("tab\t", false),
            ("ünïcode", false),
        ];
        for (value, ok) in cases {
            assert_eq!(
                identifier("external_user_id", value, 256).is_ok(),
                ok,
                "case {value:?}"
            );
        }
        assert!(identifier("external_user_id", &"a".repeat(10_000), 256).is_err());
    }

    #[test]
    fn errors_name_the_field_not_the_value() {
        let err = identifier("external_user_id", "secret value", 256)
            .unwrap_err()
            .to_string();
        assert!(err.contains("external_user_id"));
        assert!(!err.contains("secret value"));
    }

    #[test]
    fn metadata_must_be_a_bounded_object() {
        assert!(metadata(&serde_json::json!({"plan": "pro"})).is_ok());
        assert!(metadata(&serde_json::json!(["a"])).is_err());
        assert!(metadata(&serde_json::json!({"k": "v".repeat(9000)})).is_err());
    }
}
