//! gRPC status → GraphQL error, in one place. `extensions.code` is API: clients branch on it.
//!
//! | gRPC | `extensions.code` |
//! |---|---|
//! | INVALID_ARGUMENT | BAD_USER_INPUT, with `violations` (field, argument path, description) |
//! | NOT_FOUND | NOT_FOUND |
//! | ALREADY_EXISTS | CONFLICT |
//! | FAILED_PRECONDITION | FAILED_PRECONDITION |
//! | PERMISSION_DENIED | FORBIDDEN |
//! | UNAUTHENTICATED | UNAUTHENTICATED |
//! | UNAVAILABLE, DEADLINE_EXCEEDED | SERVICE_UNAVAILABLE, with `service` |
//! | RESOURCE_EXHAUSTED | RATE_LIMITED |
//! | anything else | INTERNAL_SERVER_ERROR (message withheld) |
//!
//! Every error from a backend carries `service`, so a client knows whose data is missing.
//!
//! Requests the gateway refuses before executing them carry codes of their own:
//!
//! | code | HTTP | when |
//! |---|---|---|
//! | [`UNAUTHENTICATED`] | 401 | the credentials cannot be verified (`WWW-Authenticate: Bearer error="invalid_token"`) |
//! | [`RATE_LIMITED`] | 429 | the caller or its comune used up its requests for the minute (`Retry-After`) |
//! | [`PERSISTED_QUERY_NOT_FOUND`] | 200 | a persisted-query hash the gateway does not know: send the text with it |
//! | [`PERSISTED_QUERY_NOT_ALLOWED`] | 400 | allow-list mode, and the document is not on the list |
//! | [`BAD_REQUEST`] | 400 | a malformed `persistedQuery` extension, or a hash that does not match the text |

use async_graphql::{Error, ErrorExtensions, Value};
use tonic::Code;
use tonic_types::StatusExt;

use crate::compose::names::camel;
use crate::convert::InputError;
use crate::transport::CallError;

/// The caller's credentials cannot be verified.
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// The caller (or its comune) is over its rate limit.
pub const RATE_LIMITED: &str = "RATE_LIMITED";
/// A persisted-query hash without text that the gateway does not know (Apollo APQ).
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// Allow-list mode: the document is not on the list.
pub const PERSISTED_QUERY_NOT_ALLOWED: &str = "PERSISTED_QUERY_NOT_ALLOWED";
/// A request the gateway cannot make sense of (e.g. a persisted-query hash that does not match).
pub const BAD_REQUEST: &str = "BAD_REQUEST";

/// The `extensions.code` of a gRPC code.
pub fn code_of(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => "BAD_USER_INPUT",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists | Code::Aborted => "CONFLICT",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::PermissionDenied => "FORBIDDEN",
        Code::Unauthenticated => UNAUTHENTICATED,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => "SERVICE_UNAVAILABLE",
        Code::ResourceExhausted => RATE_LIMITED,
        _ => "INTERNAL_SERVER_ERROR",
    }
}

/// `event.start_time` → `["event", "startTime"]`; `keys[2]` → `["keys", 2]`.
pub fn argument_path(field: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(Value::String(camel(name)));
        }
        for idx in rest
            .split('[')
            .map(|s| s.trim_end_matches(']'))
            .filter(|s| !s.is_empty())
        {
            out.push(idx.parse::<i64>().map_or_else(
                |_| Value::String(idx.to_owned()),
                |n| Value::Number(n.into()),
            ));
        }
    }
    out
}

/// The GraphQL error for a failed backend call.
pub fn from_call(e: &CallError) -> Error {
    let code = code_of(e.status.code());
    let message = match code {
        "INTERNAL_SERVER_ERROR" => format!("the {} service failed", e.service),
        "SERVICE_UNAVAILABLE" => format!(
            "the {} service is unavailable: {}",
            e.service,
            e.status.message()
        ),
        _ => e.status.message().to_owned(),
    };
    if code == "INTERNAL_SERVER_ERROR" {
        tracing::error!(service = %e.service, status = ?e.status, "backend failed");
    }
    let details = e.status.get_error_details();
    let violations: Vec<Value> = details
        .bad_request()
        .map(|b| {
            b.field_violations
                .iter()
                .map(|v| {
                    Value::from_json(serde_json::json!({
                        "field": v.field,
                        "description": v.description,
                    }))
                    .map(|mut obj| {
                        if let Value::Object(o) = &mut obj {
                            o.insert(
                                async_graphql::Name::new("argumentPath"),
                                Value::List(argument_path(&v.field)),
                            );
                        }
                        obj
                    })
                    .unwrap_or(Value::Null)
                })
                .collect()
        })
        .unwrap_or_default();
    let service = e.service.to_string();
    Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        ext.set("service", service.clone());
        if !violations.is_empty() {
            ext.set("violations", Value::List(violations.clone()));
        }
    })
}

/// The GraphQL error for arguments that cannot become a request.
pub fn from_input(e: &InputError) -> Error {
    let path: Vec<Value> = e
        .path
        .iter()
        .map(|p| {
            p.parse::<i64>()
                .map_or_else(|_| Value::String(p.clone()), |n| Value::Number(n.into()))
        })
        .collect();
    let field = e.path.join(".");
    Error::new(format!("{field}: {}", e.message)).extend_with(|_, ext| {
        ext.set("code", "BAD_USER_INPUT");
        ext.set(
            "violations",
            Value::List(vec![Value::Object(
                [
                    (
                        async_graphql::Name::new("field"),
                        Value::String(field.clone()),
                    ),
                    (
                        async_graphql::Name::new("argumentPath"),
                        Value::List(path.clone()),
                    ),
                    (
                        async_graphql::Name::new("description"),
                        Value::String(e.message.clone()),
                    ),
                ]
                .into_iter()
                .collect(),
            )]),
        );
    })
}

/// An UNAUTHENTICATED error.
pub fn unauthenticated(message: &str) -> Error {
    Error::new(message).extend_with(|_, ext| ext.set("code", UNAUTHENTICATED))
}

/// A BAD_USER_INPUT error about one argument.
pub fn bad_input(argument: &str, message: impl Into<String>) -> Error {
    from_input(&InputError {
        path: vec![argument.to_owned()],
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_paths() {
        let j = |v: Vec<Value>| Value::List(v).into_json().unwrap().to_string();
        assert_eq!(
            j(argument_path("event.start_time")),
            r#"["event","startTime"]"#
        );
        assert_eq!(j(argument_path("keys[2]")), r#"["keys",2]"#);
        assert_eq!(
            j(argument_path("rows[3].fiscal_code")),
            r#"["rows",3,"fiscalCode"]"#
        );
    }

    #[test]
    fn codes() {
        let table = [
            (Code::InvalidArgument, "BAD_USER_INPUT"),
            (Code::NotFound, "NOT_FOUND"),
            (Code::PermissionDenied, "FORBIDDEN"),
            (Code::Unauthenticated, "UNAUTHENTICATED"),
            (Code::Unavailable, "SERVICE_UNAVAILABLE"),
            (Code::DeadlineExceeded, "SERVICE_UNAVAILABLE"),
            (Code::FailedPrecondition, "FAILED_PRECONDITION"),
            (Code::AlreadyExists, "CONFLICT"),
            (Code::Internal, "INTERNAL_SERVER_ERROR"),
            (Code::Unknown, "INTERNAL_SERVER_ERROR"),
        ];
        for (grpc, gql) in table {
            assert_eq!(code_of(grpc), gql);
        }
    }

    #[test]
    fn internal_messages_are_withheld() {
        let e = from_call(&CallError {
            service: "taxes".into(),
            status: tonic::Status::internal("db password wrong"),
        });
        assert_eq!(e.message, "the taxes service failed");
    }
}
