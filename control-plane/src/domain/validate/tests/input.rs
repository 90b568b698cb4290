//! Run input JSON and idempotency key checks.

use serde_json::json;

use crate::domain::limits;
use crate::domain::validate::{validate_idempotency_key, validate_input_json};

#[test]
fn empty_input_is_an_empty_object() {
    for text in ["", "  ", "\n\t"] {
        assert_eq!(validate_input_json(text), Ok(json!({})));
    }
}

#[test]
fn input_must_be_json() {
    assert_eq!(validate_input_json(r#"{"a": [1, 2]}"#), Ok(json!({"a": [1, 2]})));
    assert_eq!(validate_input_json("42"), Ok(json!(42)));
    let err = validate_input_json("{\"a\": }").unwrap_err();
    assert_eq!(err.path, "input_json");
    assert!(err.reason.starts_with("not valid JSON: "), "{err}");
    assert!(err.reason.contains("line 1 column 7"), "{err}");
}

#[test]
fn too_large_input_names_the_limit() {
    let fits = format!("\"{}\"", "x".repeat(limits::MAX_INPUT_BYTES - 2));
    assert!(validate_input_json(&fits).is_ok());
    let big = format!("\"{}\"", "x".repeat(limits::MAX_INPUT_BYTES - 1));
    let err = validate_input_json(&big).unwrap_err();
    assert_eq!(err.to_string(), "input_json: too large: 1048577 bytes (limit 1048576 bytes)");
}

#[test]
fn idempotency_keys() {
    assert_eq!(validate_idempotency_key(""), Ok(None));
    assert_eq!(validate_idempotency_key("order-42"), Ok(Some("order-42")));
    let longest = "k".repeat(limits::MAX_IDEMPOTENCY_KEY_LEN);
    assert_eq!(validate_idempotency_key(&longest), Ok(Some(longest.as_str())));
    let err = validate_idempotency_key(&format!("{longest}k")).unwrap_err();
    assert_eq!(err.to_string(), "idempotency_key: too long: 129 bytes (limit 128 bytes)");
    let err = validate_idempotency_key("a\nb").unwrap_err();
    assert_eq!(err.to_string(), "idempotency_key: contains the control character '\\n'");
}
