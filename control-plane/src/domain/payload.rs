//! What a worker reports, made safe to keep: task outputs checked, errors bounded and storable.

use super::limits::{MAX_ERROR_MESSAGE_BYTES, MAX_NAME_LEN, MAX_OUTPUT_BYTES};
use super::records::TaskError;

/// Why `output_json` cannot be kept as a task's output (larger than [`MAX_OUTPUT_BYTES`] or not
/// JSON), or `None`. See [`output_problem_within`].
pub fn output_problem(output_json: &str) -> Option<String> {
    output_problem_within(output_json, MAX_OUTPUT_BYTES)
}

/// Why `output_json` cannot be kept as a task's output (larger than `max` bytes or not JSON), or
/// `None`. The size is checked before parsing, so an oversized output costs no parse.
pub fn output_problem_within(output_json: &str, max: usize) -> Option<String> {
    if output_json.len() > max {
        return Some(format!("output_json is {} bytes; the limit is {max}", output_json.len()));
    }
    serde_json::from_str::<serde_json::Value>(output_json).err().map(|e| format!("output_json is not JSON: {e}"))
}

/// An error as kept: the message cut to [`MAX_ERROR_MESSAGE_BYTES`], `details` a JSON document
/// within the output bound (or a note that it was dropped), and the type at most
/// [`MAX_NAME_LEN`] bytes without NUL characters (it is stored as text, which in PostgreSQL
/// cannot hold NUL). Cuts fall on character boundaries.
pub fn bounded_error(mut e: TaskError) -> TaskError {
    if e.message.len() > MAX_ERROR_MESSAGE_BYTES {
        truncate_to_boundary(&mut e.message, MAX_ERROR_MESSAGE_BYTES);
        e.message.push_str("… (truncated)");
    }
    if let Some(d) = &e.details
        && (d.len() > MAX_OUTPUT_BYTES || serde_json::from_str::<serde_json::Value>(d).is_err())
    {
        let note = format!("details_json was not a JSON document of at most {MAX_OUTPUT_BYTES} bytes");
        e.details = Some(serde_json::json!({ "dropped": note }).to_string());
    }
    if e.kind.contains('\0') {
        e.kind = e.kind.replace('\0', "\u{fffd}");
    }
    truncate_to_boundary(&mut e.kind, MAX_NAME_LEN);
    e
}

/// Cuts `s` to at most `max` bytes, backing off to the nearest character boundary.
fn truncate_to_boundary(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: &str) -> TaskError {
        TaskError { message: "boom".into(), kind: kind.into(), retryable: true, details: None }
    }

    #[test]
    fn a_multibyte_type_is_cut_on_a_character_boundary() {
        // 3-byte characters: byte 64 falls inside the 22nd one (this used to panic).
        let kept = bounded_error(error(&"€".repeat(30)));
        assert_eq!(kept.kind, "€".repeat(21));
        let kept = bounded_error(error(&"x".repeat(100)));
        assert_eq!(kept.kind.len(), MAX_NAME_LEN);
    }

    #[test]
    fn nul_characters_leave_the_type() {
        assert_eq!(bounded_error(error("bad\0type")).kind, "bad\u{fffd}type");
    }

    #[test]
    fn long_messages_are_cut_and_marked() {
        let mut e = error("t");
        e.message = format!("a{}", "é".repeat(MAX_ERROR_MESSAGE_BYTES));
        let kept = bounded_error(e);
        assert!(kept.message.ends_with("… (truncated)"));
        assert!(kept.message.len() <= MAX_ERROR_MESSAGE_BYTES + "… (truncated)".len());
    }

    #[test]
    fn details_must_be_bounded_json() {
        let mut e = error("t");
        e.details = Some(r#"{"row": 3}"#.into());
        assert_eq!(bounded_error(e.clone()).details, e.details);
        e.details = Some("[[[".into());
        let kept = bounded_error(e).details.unwrap_or_default();
        assert!(kept.starts_with(r#"{"dropped":"details_json was not a JSON document"#), "{kept}");
    }

    #[test]
    fn outputs_are_checked_by_size_before_parsing() {
        assert_eq!(output_problem(r#"{"ok": true}"#), None);
        assert_eq!(output_problem(r#""a\u0000b""#), None, "an escaped NUL is JSON text, storable as is");
        let raw_nul = output_problem("\"a\0b\"").unwrap_or_default();
        assert!(raw_nul.starts_with("output_json is not JSON: control character"), "{raw_nul}");
        let deep = output_problem(&"[".repeat(10_000)).unwrap_or_default();
        assert!(deep.starts_with("output_json is not JSON: recursion limit exceeded"), "{deep}");
        let huge = output_problem(&" ".repeat(MAX_OUTPUT_BYTES + 1)).unwrap_or_default();
        assert_eq!(huge, format!("output_json is {} bytes; the limit is {MAX_OUTPUT_BYTES}", MAX_OUTPUT_BYTES + 1));
    }
}
