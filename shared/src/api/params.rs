//! Validation of the API's query parameters (pure). Each rule is exactly the `pattern` or bounds
//! openapi.json declares for the parameter, so a value the document allows is never refused and
//! a value it forbids never gets through (tests/tests/openapi.rs and the schemathesis run check
//! both directions).

use crate::domain::CheckoutSessionId;
use crate::http::ApiError;

/// `limit` of the paged lists: a decimal integer from 1 to 100 (no sign, no spaces).
pub const MAX_LIMIT: u16 = 100;

/// `cursor` of `GET /api/billing/invoices`: empty (the first page) or the lowercase hex of a
/// sort key `INV#<printable ASCII>` of at most 300 bytes, as the store issues it.
pub const INVOICE_CURSOR_PATTERN: &str = "^(494e5623(2[1-9a-f]|[3-6][0-9a-f]|7[0-9a-e]){0,296})?$";

/// `session_id` of `POST /api/billing/sync`: empty (no session) or a Stripe Checkout Session id.
/// The id goes into a Stripe URL path, so nothing but Stripe's own form is let through.
pub const SESSION_ID_PATTERN: &str = "^(cs_(test|live)_[A-Za-z0-9]{1,200})?$";

/// `cursor` of `GET /api/leads`: empty (the first page) or the lowercase hex of a sort key
/// `LEAD#<id>`, the id being 1 to 255 printable ASCII characters other than `#`.
pub const LEAD_CURSOR_PATTERN: &str = "^(4c45414423(2[124-9a-f]|[3-6][0-9a-f]|7[0-9a-e]){1,255})?$";

/// A page size from 1 to `max`: absent means `default`.
pub fn limit(raw: Option<&str>, max: u16, default: u16) -> Result<u16, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    raw.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| raw.parse::<u16>().ok())
        .flatten()
        .filter(|l| (1..=max).contains(l))
        .ok_or_else(|| ApiError::bad_request(format!("limit must be an integer from 1 to {max}.")))
}

/// `prefix` (lowercase hex) then `min..=max` hex-encoded bytes each allowed by `byte_ok`.
fn hex_key(raw: &str, prefix: &str, min: usize, max: usize, byte_ok: fn(u8) -> bool) -> bool {
    let Some(rest) = raw.strip_prefix(prefix) else {
        return false;
    };
    let bytes = rest.as_bytes();
    bytes.len() % 2 == 0
        && (2 * min..=2 * max).contains(&bytes.len())
        && bytes.iter().all(|b| is_lower_hex(*b))
        && bytes.chunks(2).all(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .is_some_and(byte_ok)
        })
}

/// The leads cursor (see [`LEAD_CURSOR_PATTERN`]); `None` for the first page.
pub fn lead_cursor(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    match raw.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c)
            if hex_key(c, "4c45414423", 1, 255, |b| {
                b.is_ascii_graphic() && b != b'#'
            }) =>
        {
            Ok(Some(c))
        }
        Some(_) => Err(ApiError::bad_request("cursor is not valid.")),
    }
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// The invoices cursor (see [`INVOICE_CURSOR_PATTERN`]); `None` for the first page.
pub fn invoice_cursor(raw: Option<&str>) -> Result<Option<&str>, ApiError> {
    let Some(raw) = raw.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    // Every byte of the key after `INV#` is printable ASCII (0x21-0x7e).
    if hex_key(raw, "494e5623", 0, 296, |b| b.is_ascii_graphic()) {
        Ok(Some(raw))
    } else {
        Err(ApiError::bad_request("cursor is not valid."))
    }
}

/// The Checkout Session id of the eager sync (see [`SESSION_ID_PATTERN`]); `None` when absent.
pub fn session_id(raw: Option<&str>) -> Result<Option<CheckoutSessionId>, ApiError> {
    let Some(raw) = raw.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ApiError::bad_request("session_id is not valid.");
    let body = raw
        .strip_prefix("cs_test_")
        .or_else(|| raw.strip_prefix("cs_live_"))
        .ok_or_else(invalid)?;
    if body.is_empty() || body.len() > 200 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    CheckoutSessionId::parse(raw)
        .map(Some)
        .map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_a_plain_integer_from_1_to_100() {
        assert_eq!(limit(None, 100, 20).unwrap(), 20);
        assert_eq!(limit(Some("1"), 100, 20).unwrap(), 1);
        assert_eq!(limit(Some("100"), 100, 20).unwrap(), 100);
        assert!(limit(Some("51"), 50, 20).is_err());
        for bad in [
            "0",
            "101",
            "",
            "+5",
            "-1",
            " 5",
            "5 ",
            "1.0",
            "ten",
            "99999999999",
        ] {
            assert!(limit(Some(bad), 100, 20).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn invoice_cursor_is_the_hex_of_an_invoice_key() {
        let key = "INV#001700000000#in_1";
        let cursor = hex::encode(key);
        assert_eq!(
            invoice_cursor(Some(&cursor)).unwrap(),
            Some(cursor.as_str())
        );
        assert_eq!(invoice_cursor(None).unwrap(), None);
        assert_eq!(invoice_cursor(Some("")).unwrap(), None);
        assert_eq!(invoice_cursor(Some("494e5623")).unwrap(), Some("494e5623"));
        let long = hex::encode(format!("INV#{}", "~".repeat(296)));
        assert!(invoice_cursor(Some(&long)).is_ok());
        for bad in [
            "!!!".to_owned(),
            cursor.to_ascii_uppercase(),
            hex::encode("SUB#sub_1"),
            hex::encode("INV#a b"),
            hex::encode("INV#\u{7f}"),
            hex::encode("INV#é"),
            format!("{cursor}0"),
            hex::encode(format!("INV#{}", "~".repeat(297))),
        ] {
            assert!(invoice_cursor(Some(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lead_cursor_is_the_hex_of_a_lead_key() {
        let cursor = hex::encode("LEAD#lead_1");
        assert_eq!(lead_cursor(Some(&cursor)).unwrap(), Some(cursor.as_str()));
        assert_eq!(lead_cursor(Some("")).unwrap(), None);
        assert!(lead_cursor(Some(&hex::encode(format!("LEAD#{}", "x".repeat(255))))).is_ok());
        for bad in [
            hex::encode("LEAD#"),
            hex::encode("LEAD#a#b"),
            hex::encode("INV#000#in_1"),
            hex::encode(format!("LEAD#{}", "x".repeat(256))),
            cursor.to_ascii_uppercase(),
            "%%".to_owned(),
        ] {
            assert!(lead_cursor(Some(&bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn session_id_is_a_checkout_session_id() {
        assert_eq!(
            session_id(Some("cs_test_a1B2c3"))
                .unwrap()
                .unwrap()
                .as_str(),
            "cs_test_a1B2c3"
        );
        assert!(session_id(Some("cs_live_x")).unwrap().is_some());
        assert!(session_id(None).unwrap().is_none());
        assert!(session_id(Some("")).unwrap().is_none());
        let long = format!("cs_test_{}", "a".repeat(200));
        assert!(session_id(Some(&long)).is_ok());
        for bad in [
            "cs_test_",
            "cs_1",
            "cs_test_a/b",
            "cs_test_a%2F..",
            "cs_test_a_b",
            "cs#1",
            "sub_123",
            "CS_TEST_A",
            "cs_test_a ",
        ] {
            assert!(session_id(Some(bad)).is_err(), "{bad:?}");
        }
        assert!(session_id(Some(&format!("{long}a"))).is_err());
    }
}
