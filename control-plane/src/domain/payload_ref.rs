//! Large payloads in object storage: the size limits, a reference as kept in the payload's own column, and a run output assembled from its parts.
//!
//! A payload column (`runs.input`, `runs.output`, `tasks.output`, `task_attempts.output`) holds
//! either the JSON document itself or, for one larger than the inline limit, a reference:
//! `@object {"key":…,"size":…,"sha256":…}`. Every document Braid stores is checked to be JSON at
//! the edge, and JSON text never starts with `@`, so the two cannot be confused, no migration was
//! needed, and rows written before references existed read as they always did. A run's output is
//! `{"task": output}` over the tasks nothing depends on; when any of those outputs is a reference
//! (or the document would be larger than the inline limit) the run keeps `@assembled {"size":…}`
//! instead, and readers assemble the document from the tasks' own payloads.

use super::limits;
use serde::{Deserialize, Serialize};

/// When a payload goes to object storage, and how large one may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Documents up to this many bytes stay in the database.
    pub inline_max: usize,
    /// No run input or task output may be larger (the error names the field and this limit).
    pub max: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self { inline_max: limits::DEFAULT_PAYLOAD_INLINE_MAX, max: limits::DEFAULT_PAYLOAD_MAX }
    }
}

impl PayloadLimits {
    /// Whether a document of `len` bytes stays in its column.
    pub fn keeps_inline(&self, len: usize) -> bool {
        len <= self.inline_max
    }

    /// Every problem with these limits (for configuration errors).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.max == 0 || self.max > limits::PAYLOAD_MAX_LIMIT {
            out.push(format!("payload_max: {} bytes is out of range (1 to {})", self.max, limits::PAYLOAD_MAX_LIMIT));
        }
        if self.inline_max > self.max {
            out.push(format!(
                "payload_inline_max: {} bytes is larger than payload_max ({} bytes)",
                self.inline_max, self.max
            ));
        }
        out
    }
}

/// A document kept in object storage: where, how large, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PayloadRef {
    /// The object's key; empty for a run output assembled from its parts.
    pub key: String,
    /// Bytes of JSON text.
    pub size: u64,
    /// Lowercase hex; empty for a run output assembled from its parts (each part has its own).
    pub sha256: String,
}

impl PayloadRef {
    /// A run output of `size` bytes assembled from its tasks' payloads.
    pub fn assembled(size: u64) -> Self {
        Self { key: String::new(), size, sha256: String::new() }
    }

    pub fn is_assembled(&self) -> bool {
        self.key.is_empty()
    }
}

/// What a payload column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// The JSON document itself.
    Inline(String),
    /// A reference to the object holding the document.
    Object(PayloadRef),
    /// A run output to assemble from its sink tasks' payloads; its size in bytes.
    Assembled { size: u64 },
}

const OBJECT: &str = "@object ";
const ASSEMBLED: &str = "@assembled ";

#[derive(Serialize, Deserialize)]
struct Size {
    size: u64,
}

impl Stored {
    /// The column text.
    pub fn encode(&self) -> String {
        match self {
            Self::Inline(doc) => doc.clone(),
            // Serializing a struct of strings and numbers cannot fail.
            Self::Object(r) => format!("{OBJECT}{}", serde_json::to_string(r).unwrap_or_default()),
            Self::Assembled { size } => {
                format!("{ASSEMBLED}{}", serde_json::to_string(&Size { size: *size }).unwrap_or_default())
            }
        }
    }

    /// Reads a column's text; a malformed reference is an error naming it.
    pub fn decode(text: String) -> Result<Self, String> {
        if !text.starts_with('@') {
            return Ok(Self::Inline(text));
        }
        if let Some(json) = text.strip_prefix(OBJECT) {
            return serde_json::from_str(json)
                .map(Self::Object)
                .map_err(|e| format!("malformed payload reference {text:?}: {e}"));
        }
        if let Some(json) = text.strip_prefix(ASSEMBLED) {
            return serde_json::from_str::<Size>(json)
                .map(|s| Self::Assembled { size: s.size })
                .map_err(|e| format!("malformed payload reference {text:?}: {e}"));
        }
        Err(format!("malformed payload reference {text:?}"))
    }

    /// The document when inline, else the reference (an assembled output as [`PayloadRef::assembled`]).
    pub fn split(self) -> (Option<String>, Option<PayloadRef>) {
        match self {
            Self::Inline(doc) => (Some(doc), None),
            Self::Object(r) => (None, Some(r)),
            Self::Assembled { size } => (None, Some(PayloadRef::assembled(size))),
        }
    }

    /// Size of the document in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Self::Inline(doc) => doc.len() as u64,
            Self::Object(r) => r.size,
            Self::Assembled { size } => *size,
        }
    }
}

/// Whether a column's text is a reference rather than a document.
pub fn is_reference(text: &str) -> bool {
    text.starts_with('@')
}

/// A JSON object `{"name": part, …}` written from its parts' exact text, in the order given.
pub fn assemble<'a>(parts: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (name, part)) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::String(name.to_owned()).to_string());
        out.push(':');
        out.push_str(part);
    }
    out.push('}');
    out
}

/// The size of what [`assemble`] makes from parts of these names and sizes, without the parts.
pub fn assembled_size<'a>(parts: impl IntoIterator<Item = (&'a str, u64)>) -> u64 {
    let (mut size, mut n) = (2u64, 0u64);
    for (name, part) in parts {
        size += serde_json::Value::String(name.to_owned()).to_string().len() as u64 + 1 + part;
        n += 1;
    }
    size + n.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_documents_stay_as_they_are() {
        let r = PayloadRef { key: "acme/runs/x/ab".into(), size: 5, sha256: "ab".into() };
        for s in [Stored::Inline("{\"a\": 1}".into()), Stored::Object(r.clone()), Stored::Assembled { size: 9 }] {
            assert_eq!(Stored::decode(s.encode()), Ok(s));
        }
        assert_eq!(Stored::Object(r).encode(), r#"@object {"key":"acme/runs/x/ab","size":5,"sha256":"ab"}"#);
        assert_eq!(Stored::decode(" [1]".into()), Ok(Stored::Inline(" [1]".into())));
        assert!(Stored::decode("@object {".into()).unwrap_err().starts_with("malformed payload reference"));
        assert!(Stored::decode("@other".into()).is_err());
    }

    #[test]
    fn no_json_document_reads_as_a_reference() {
        for doc in ["{}", "[]", "\"@object\"", "1", "-1", "true", "null", " \n{}"] {
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_ok());
            assert!(!is_reference(doc), "{doc}");
        }
    }

    #[test]
    fn the_threshold_keeps_small_documents_inline() {
        let l = PayloadLimits::default();
        assert_eq!(l.inline_max, 256 * 1024);
        assert!(l.keeps_inline(256 * 1024));
        assert!(!l.keeps_inline(256 * 1024 + 1));
        assert!(l.problems().is_empty());
        let bad = PayloadLimits { inline_max: 2 << 20, max: 1 << 20 };
        assert_eq!(
            bad.problems(),
            vec!["payload_inline_max: 2097152 bytes is larger than payload_max (1048576 bytes)"]
        );
        let huge = PayloadLimits { inline_max: 0, max: limits::PAYLOAD_MAX_LIMIT + 1 };
        assert!(huge.problems()[0].starts_with("payload_max: "), "{:?}", huge.problems());
    }

    #[test]
    fn an_assembled_document_is_json_of_the_exact_parts_and_its_size_is_known_beforehand() {
        let parts = [("b", "[1, 2]"), ("a\"q", "{\"x\": \"y\"}")];
        let doc = assemble(parts);
        assert_eq!(doc, r#"{"b":[1, 2],"a\"q":{"x": "y"}}"#);
        assert!(serde_json::from_str::<serde_json::Value>(&doc).is_ok());
        assert_eq!(assembled_size(parts.map(|(n, p)| (n, p.len() as u64))), doc.len() as u64);
        assert_eq!(assemble([]), "{}");
        assert_eq!(assembled_size([]), 2);
    }
}
