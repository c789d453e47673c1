//! Keyset pagination parameters shared by the listings.

use std::collections::HashMap;

use uuid::Uuid;

use super::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// Parses `limit` (1..=200, default 50) and `cursor` (the id the previous page ended on).
pub fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<(i64, Option<Uuid>), ApiError> {
    let limit = self::limit(limit)?;
    let cursor = cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            Uuid::parse_str(c)
                .map_err(|_| ApiError::validation("cursor", "is not a cursor this API returned"))
        })
        .transpose()?;
    Ok((limit, cursor))
}

/// Parses `limit`: 1..=200, default 50.
pub fn limit(limit: Option<&str>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::validation("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))
            }),
    }
}

/// The `next_cursor` of a page: the id the next page starts after.
pub fn cursor(next: Option<Uuid>) -> Option<String> {
    next.map(|id| id.to_string())
}

/// Refuses query parameters a listing does not know, naming them: a misspelt filter must not
/// silently answer the unfiltered list.
pub fn only_known(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&str> = params
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    Err(ApiError::validation(
        &unknown.join(", "),
        format!("unknown query parameter; known: {}", known.join(", ")),
    ))
}
