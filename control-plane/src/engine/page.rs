//! Opaque page tokens and page sizes shared by the List use cases.

use super::EngineError;
use crate::domain::records::Page;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Items per page when the request says 0.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page served; larger requests are capped.
pub const MAX_PAGE_SIZE: u32 = 500;

/// The page size to use for a requested size.
pub fn size(requested: u32) -> u64 {
    u64::from(match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    })
}

/// Encodes a cursor as an opaque token.
pub fn encode<C: Serialize>(cursor: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// Decodes a token made by [`encode`]; empty means the first page.
pub fn decode<C: DeserializeOwned>(token: &str) -> Result<Option<C>, EngineError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || EngineError::invalid("page.page_token", "not a token from a previous page");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
}

/// Makes a page of at most `limit` items from a query that asked for `limit + 1`:
/// the extra item only tells that a next page exists.
pub fn split<T>(mut items: Vec<T>, limit: u64, token_of: impl Fn(&T) -> String) -> Page<T, String> {
    let more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more { items.last().map(token_of) } else { None };
    Page { items, next }
}
