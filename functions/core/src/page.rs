//! Cursor pagination: `limit` parsing and opaque cursors.
//!
//! A cursor is the base64url of the last returned id. It carries no account: the store always
//! scopes the query to the caller's account, so a cursor copied from another tenant can at most
//! position a query inside the caller's own data.

use crate::error::AppError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Page size when the request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest accepted `limit`.
pub const MAX_LIMIT: usize = 100;

/// `limit` query parameter: 1..=100, default 50.
pub fn parse_limit(raw: Option<&str>) -> Result<usize, AppError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(AppError::validation("limit", format!("limit must be an integer from 1 to {MAX_LIMIT}"))),
        },
    }
}

/// The opaque cursor for the page after `last_id`: base64url without padding.
pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(last_id)
}

/// Decodes a cursor and parses the id inside with `parse`, so a forged cursor is a 400.
pub fn decode_cursor<T, E>(raw: Option<&str>, parse: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, AppError> {
    let Some(raw) = raw else { return Ok(None) };
    let invalid = || AppError::validation("cursor", "cursor is invalid");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    parse(&text).map(Some).map_err(|_| invalid())
}

/// One page of results and the cursor of the next page, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// This page's items, in the store's order.
    pub items: Vec<T>,
    /// Cursor of the next page; None on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SubscriptionId;
    use proptest::prelude::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(parse_limit(None).unwrap(), 50);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(parse_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn forged_cursor_is_a_validation_error() {
        let r = decode_cursor(Some("not base64!"), SubscriptionId::parse);
        assert_eq!(r, Err(AppError::validation("cursor", "cursor is invalid")));
        let r = decode_cursor(Some(&encode_cursor("dlv_x")), SubscriptionId::parse);
        assert!(r.is_err());
    }

    proptest! {
        #[test]
        fn any_cursor_text_is_either_valid_or_a_400_never_a_panic(raw in "\\PC{0,120}") {
            match decode_cursor(Some(&raw), SubscriptionId::parse) {
                Ok(_) => {}
                Err(e) => prop_assert_eq!(e, AppError::validation("cursor", "cursor is invalid")),
            }
        }

        #[test]
        fn a_cursor_of_another_id_kind_is_refused(ms in 0u64..(1u64 << 48)) {
            let other = crate::ids::DeliveryId::generate(ms);
            prop_assert!(decode_cursor(Some(&encode_cursor(other.as_str())), SubscriptionId::parse).is_err());
        }

        #[test]
        fn cursor_round_trips(ms in 0u64..(1u64 << 48)) {
            let id = SubscriptionId::generate(ms);
            let back = decode_cursor(Some(&encode_cursor(id.as_str())), SubscriptionId::parse).unwrap();
            prop_assert_eq!(back, Some(id));
        }
    }
}
