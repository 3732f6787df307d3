//! Reads the `patto.graphql.v1` options off the descriptors, as plain Rust values.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, MessageDescriptor, MethodDescriptor, ReflectMessage, Value,
};

/// Root type of an exposed RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Query`.
    Query,
    /// `Mutation`.
    Mutation,
    /// `Subscription`.
    Subscription,
}

/// The `operation` option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Root type.
    pub kind: Kind,
    /// GraphQL field name (explicit, or the RPC name in lowerCamelCase).
    pub name: String,
}

fn extension_message(options: &DynamicMessage, name: &str) -> Option<DynamicMessage> {
    let ext = options
        .descriptor()
        .parent_pool()
        .get_extension_by_name(name)?;
    if !options.has_extension(&ext) {
        return None;
    }
    match options.get_extension(&ext).into_owned() {
        Value::Message(m) => Some(m),
        _ => None,
    }
}

fn string_field(m: &DynamicMessage, name: &str) -> String {
    m.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The `operation` option of an RPC, if it is exposed.
pub fn operation(method: &MethodDescriptor) -> Option<Operation> {
    let op = extension_message(&method.options(), "patto.graphql.v1.operation")?;
    let kind = match op
        .get_field_by_name("kind")
        .and_then(|v| v.as_enum_number())
    {
        Some(1) => Kind::Query,
        Some(2) => Kind::Mutation,
        Some(3) => Kind::Subscription,
        _ => return None,
    };
    let name = string_field(&op, "name");
    let name = if name.is_empty() {
        super::names::lower_first(method.name())
    } else {
        name
    };
    Some(Operation { kind, name })
}

/// The entity a `lookup` RPC resolves.
pub fn lookup(method: &MethodDescriptor) -> Option<String> {
    extension_message(&method.options(), "patto.graphql.v1.lookup")
        .map(|m| string_field(&m, "entity"))
}

/// The type and field an `extends` RPC adds.
pub fn extends(method: &MethodDescriptor) -> Option<(String, String)> {
    extension_message(&method.options(), "patto.graphql.v1.extends")
        .map(|m| (string_field(&m, "type"), string_field(&m, "field")))
}

/// The key field of an entity message.
pub fn entity_key(message: &MessageDescriptor) -> Option<String> {
    extension_message(&message.options(), "patto.graphql.v1.entity")
        .map(|m| string_field(&m, "key"))
}

/// The entity a key field refers to, and the name of the resolved field.
pub fn reference(field: &FieldDescriptor) -> Option<(String, String)> {
    extension_message(&field.options(), "patto.graphql.v1.ref")
        .map(|m| (string_field(&m, "entity"), string_field(&m, "field")))
}

/// True when the RPC is marked `idempotency_level = NO_SIDE_EFFECTS` (safe to retry).
pub fn no_side_effects(method: &MethodDescriptor) -> bool {
    method
        .options()
        .get_field_by_name("idempotency_level")
        .and_then(|v| v.as_enum_number())
        .is_some_and(|n| n == 1)
}
