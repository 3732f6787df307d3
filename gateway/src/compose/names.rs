//! Naming rules from protobuf to GraphQL: camelCase fields, type names from message paths, enum
//! values without their type prefix.

use prost_reflect::{EnumDescriptor, EnumValueDescriptor, MessageDescriptor};

/// `start_time` → `startTime`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `ListEvents` → `listEvents`.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `EventStatus` → `EVENT_STATUS`.
pub fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The GraphQL name of a message: its path inside the package, dots removed
/// (`patto.building.v1.Permit.Attachment` → `PermitAttachment`).
pub fn message_type(m: &MessageDescriptor) -> String {
    relative(m.full_name(), m.package_name())
}

/// The GraphQL name of an enum, as for messages.
pub fn enum_type(e: &EnumDescriptor) -> String {
    relative(e.full_name(), e.package_name())
}

fn relative(full: &str, package: &str) -> String {
    full.strip_prefix(package)
        .unwrap_or(full)
        .trim_start_matches('.')
        .replace('.', "")
}

/// The GraphQL name of an enum value: the proto name without the enum's prefix
/// (`EVENT_STATUS_CANCELLED` → `CANCELLED`); the full name where stripping would not leave a name.
pub fn enum_value(e: &EnumDescriptor, v: &EnumValueDescriptor) -> String {
    let prefix = format!("{}_", upper_snake(e.name()));
    match v.name().strip_prefix(&prefix) {
        Some(rest)
            if rest
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_') =>
        {
            rest.to_owned()
        }
        _ => v.name().to_owned(),
    }
}

/// True for the zero value a proto3 enum uses for "not set" (hidden in GraphQL).
pub fn is_unspecified(v: &EnumValueDescriptor) -> bool {
    v.number() == 0 && v.name().ends_with("_UNSPECIFIED")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(camel("start_time"), "startTime");
        assert_eq!(camel("istat_code"), "istatCode");
        assert_eq!(camel("id"), "id");
        assert_eq!(camel("population_2011"), "population2011");
        assert_eq!(lower_first("ListEvents"), "listEvents");
        assert_eq!(upper_snake("EventStatus"), "EVENT_STATUS");
    }
}
