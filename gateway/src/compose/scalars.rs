//! Custom scalars: `Long` (64-bit integers as strings), `DateTime` (RFC 3339), `Base64` (bytes).

use async_graphql::Value;
use async_graphql::dynamic::Scalar;
use base64::Engine;

/// 64-bit integers.
pub const LONG: &str = "Long";
/// Instants.
pub const DATETIME: &str = "DateTime";
/// Bytes.
pub const BASE64: &str = "Base64";

/// The scalars the mapping uses, with validators so bad literals fail validation, before any call.
pub fn all() -> [Scalar; 3] {
    [
        Scalar::new(LONG)
            .description(
                "A 64-bit integer, written as a string so no precision is lost (JSON numbers stop at 2^53). \
                 Input also accepts an integer literal.",
            )
            .validator(|v| match v {
                Value::String(s) => s.trim().parse::<i64>().is_ok() || s.trim().parse::<u64>().is_ok(),
                Value::Number(n) => n.is_i64() || n.is_u64(),
                _ => false,
            }),
        Scalar::new(DATETIME)
            .description("An instant as an RFC 3339 string, e.g. `2026-12-24T21:00:00Z`.")
            .specified_by_url("https://datatracker.ietf.org/doc/html/rfc3339")
            .validator(|v| matches!(v, Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok())),
        Scalar::new(BASE64)
            .description("Bytes, base64-encoded (standard alphabet, padded).")
            .validator(|v| {
                matches!(v, Value::String(s) if base64::engine::general_purpose::STANDARD.decode(s).is_ok())
            }),
    ]
}
