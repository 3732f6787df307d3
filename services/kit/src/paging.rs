//! Relay-style forward paging with opaque cursors.
//!
//! A cursor encodes the position after an item; clients must treat it as opaque, which leaves the
//! encoding free to change (e.g. to keyset cursors) without breaking them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use patto_proto::common::v1::{PageInfo, PageRequest};

use crate::error::ServiceError;

/// Items per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Most items a page may hold.
pub const MAX_PAGE_SIZE: u64 = 100;

/// A validated page request: how many items, starting where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to return.
    pub limit: u64,
    /// Items to skip.
    pub offset: u64,
}

impl Page {
    /// Validates a request's `page` field; `field` names it in errors (e.g. `page`).
    pub fn from_request(request: Option<&PageRequest>, field: &str) -> Result<Self, ServiceError> {
        let Some(req) = request else {
            return Ok(Self {
                limit: DEFAULT_PAGE_SIZE,
                offset: 0,
            });
        };
        let limit = match req.first {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 || n as u64 > MAX_PAGE_SIZE => {
                return Err(ServiceError::invalid(
                    format!("{field}.first"),
                    format!("must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})"),
                ));
            }
            n => n as u64,
        };
        let offset = if req.after.is_empty() {
            0
        } else {
            decode_cursor(&req.after).ok_or_else(|| {
                ServiceError::invalid(
                    format!("{field}.after"),
                    "is not a cursor this service issued; pass back a previous page's end_cursor",
                )
            })?
        };
        Ok(Self { limit, offset })
    }

    /// The page info for `returned` items of this page out of `total`.
    pub fn info(&self, returned: usize, total: u64) -> PageInfo {
        let end = self.offset + returned as u64;
        PageInfo {
            end_cursor: if returned == 0 {
                String::new()
            } else {
                encode_cursor(end)
            },
            has_next_page: end < total,
            total_count: total as i64,
        }
    }
}

fn encode_cursor(position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{position}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_pages_chain() {
        let first = Page::from_request(
            Some(&PageRequest {
                first: 2,
                after: String::new(),
            }),
            "page",
        )
        .unwrap();
        let info = first.info(2, 5);
        assert!(info.has_next_page);
        let second = Page::from_request(
            Some(&PageRequest {
                first: 2,
                after: info.end_cursor,
            }),
            "page",
        )
        .unwrap();
        assert_eq!(
            second,
            Page {
                limit: 2,
                offset: 2
            }
        );
        let last = Page {
            limit: 2,
            offset: 4,
        }
        .info(1, 5);
        assert!(!last.has_next_page);
        assert_eq!(last.total_count, 5);
    }

    #[test]
    fn bad_requests_name_the_field() {
        let cases = [
            (
                PageRequest {
                    first: -1,
                    after: String::new(),
                },
                "page.first",
            ),
            (
                PageRequest {
                    first: 101,
                    after: String::new(),
                },
                "page.first",
            ),
            (
                PageRequest {
                    first: 1,
                    after: "garbage!".into(),
                },
                "page.after",
            ),
        ];
        for (req, field) in cases {
            match Page::from_request(Some(&req), "page") {
                Err(ServiceError::InvalidArgument(v)) => assert_eq!(v.as_slice()[0].field, field),
                other => panic!("expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            Page::from_request(None, "page").unwrap(),
            Page {
                limit: 20,
                offset: 0
            }
        );
    }
}
