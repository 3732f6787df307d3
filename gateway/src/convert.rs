//! Values between GraphQL and protobuf dynamic messages.
//!
//! Output: a message field becomes a GraphQL value, or the nested message itself for object types
//! to resolve further. Input: GraphQL arguments become a request message, with errors that name the
//! argument path so they can be reported as `BAD_USER_INPUT`.

use std::borrow::Cow;

use async_graphql::dynamic::FieldValue;
use async_graphql::{Name, Number, Value as Gql};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use prost_reflect::{
    DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};

use crate::compose::names;
use crate::wire::{Encoded, Read};

/// Full names of the wrapper types that map to nullable scalars.
pub fn is_wrapper(m: &MessageDescriptor) -> bool {
    matches!(
        m.full_name(),
        "google.protobuf.StringValue"
            | "google.protobuf.BoolValue"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.FloatValue"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.BytesValue"
    )
}

/// True for `google.protobuf.Timestamp`, which maps to the `DateTime` scalar.
pub fn is_timestamp(m: &MessageDescriptor) -> bool {
    m.full_name() == "google.protobuf.Timestamp"
}

/// An input that cannot become the request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Path of the offending argument, in GraphQL names.
    pub path: Vec<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn err(path: &[String], message: impl Into<String>) -> InputError {
    InputError {
        path: path.to_vec(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// The GraphQL value of field `f` of `msg`, ready for the field's resolver. Nested messages are
/// borrowed from `msg`, not copied: the parent value outlives its fields' resolution.
pub fn field_output<'a>(msg: &'a DynamicMessage, f: &FieldDescriptor) -> FieldValue<'a> {
    if f.is_map() {
        let Some(entry) = f.kind().as_message().cloned() else {
            return FieldValue::NULL;
        };
        let (key_f, value_f) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let Some(map) = msg.get_field(f).as_map().cloned() else {
            return FieldValue::NULL;
        };
        let mut entries: Vec<(MapKey, Value)> = map.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        return FieldValue::list(entries.into_iter().map(|(k, v)| {
            let mut e = DynamicMessage::new(entry.clone());
            e.set_field(&key_f, Value::from(k));
            e.set_field(&value_f, v);
            FieldValue::owned_any(e)
        }));
    }
    let kind = f.kind();
    if f.is_list() {
        return match msg.get_field(f) {
            Cow::Borrowed(Value::List(items)) => FieldValue::list(items.iter().filter_map(|v| {
                let out = value_output(v, &kind);
                // A zero or unknown enum has no GraphQL value: leave it out of the list.
                (!out.is_null_value()).then_some(out)
            })),
            _ => FieldValue::list(Vec::<FieldValue<'a>>::new()),
        };
    }
    if f.supports_presence() && !msg.has_field(f) {
        return FieldValue::NULL;
    }
    match msg.get_field(f) {
        Cow::Borrowed(v) => value_output(v, &kind),
        Cow::Owned(v) => value_output(&v, &kind).into_owned_value(),
    }
}

/// [`field_output`] for one field, with what it needs from the descriptors worked out once, when
/// the schema is composed, instead of on every resolution: the field's shape and kind, and for an
/// enum the GraphQL value of each number (the name is not rebuilt per value).
pub struct FieldOutput {
    field: FieldDescriptor,
    /// See [`FieldOutput::writes_directly`].
    direct: bool,
    map: bool,
    list: bool,
    presence: bool,
    kind: Kind,
    value: ValuePlan,
}

/// How one value of a field becomes output.
enum ValuePlan {
    /// `scalar_output` as is (numbers, strings, bytes, booleans).
    Scalar,
    /// An enum: the output of each number, as `enum_output` gives it, and that output as JSON.
    Enum(Vec<(i32, Gql, Box<[u8]>)>),
    /// `google.protobuf.Timestamp`, with its two fields.
    Timestamp(FieldDescriptor, FieldDescriptor),
    /// Anything else (objects, wrappers): `value_output` as is.
    Other,
}

impl FieldOutput {
    /// The plan for field `f`.
    pub fn new(f: &FieldDescriptor) -> Self {
        let kind = f.kind();
        let value = match &kind {
            Kind::Enum(e) => {
                let mut numbers: Vec<i32> = e.values().map(|v| v.number()).collect();
                numbers.sort_unstable();
                numbers.dedup();
                ValuePlan::Enum(
                    numbers
                        .into_iter()
                        .map(|n| {
                            let out = enum_output(e, n);
                            let json = serde_json::to_vec(&out).unwrap_or_default().into();
                            (n, out, json)
                        })
                        .collect(),
                )
            }
            Kind::Message(m) if is_timestamp(m) => {
                match (m.get_field_by_name("seconds"), m.get_field_by_name("nanos")) {
                    (Some(s), Some(n)) => ValuePlan::Timestamp(s, n),
                    _ => ValuePlan::Other,
                }
            }
            Kind::Message(_) => ValuePlan::Other,
            _ => ValuePlan::Scalar,
        };
        Self {
            field: f.clone(),
            direct: !f.is_map()
                && !f.is_list()
                && !matches!(value, ValuePlan::Other)
                && f.containing_oneof().is_none_or(|o| o.is_synthetic()),
            map: f.is_map(),
            list: f.is_list(),
            presence: f.supports_presence(),
            kind,
            value,
        }
    }

    /// The field this plan outputs.
    pub fn field(&self) -> &FieldDescriptor {
        &self.field
    }

    /// The GraphQL value of this field of `msg`: the same as `field_output(msg, field)`.
    pub fn output<'a>(&self, msg: &'a DynamicMessage) -> FieldValue<'a> {
        if self.map {
            return field_output(msg, &self.field);
        }
        if self.list {
            return match msg.get_field(&self.field) {
                Cow::Borrowed(Value::List(items)) => {
                    FieldValue::list(items.iter().filter_map(|v| {
                        let out = self.value(v);
                        (!out.is_null_value()).then_some(out)
                    }))
                }
                _ => FieldValue::list(Vec::<FieldValue<'a>>::new()),
            };
        }
        if self.presence && !msg.has_field(&self.field) {
            return FieldValue::NULL;
        }
        match msg.get_field(&self.field) {
            Cow::Borrowed(v) => self.value(v),
            Cow::Owned(v) => self.value(&v).into_owned_value(),
        }
    }

    /// The field's kind (its message or enum type included).
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Whether [`FieldOutput::write_json`] and [`FieldOutput::write_wire_json`] write this field
    /// themselves: one scalar, enum or timestamp, outside any oneof of several members (which
    /// clear each other, as only a decode knows; `optional` makes a oneof of one).
    pub fn writes_directly(&self) -> bool {
        self.direct
    }

    /// Writes this field of `msg` as the JSON that serializing [`FieldOutput::output`] gives,
    /// without building it, for the common shapes (one scalar, enum or timestamp); `None` for
    /// the others, which go through `output`. `Some(true)` when it wrote `null`.
    pub fn write_json(&self, msg: &DynamicMessage, out: &mut Vec<u8>) -> Option<bool> {
        if self.map || self.list || matches!(self.value, ValuePlan::Other) {
            return None;
        }
        if self.presence && !msg.has_field(&self.field) {
            out.extend_from_slice(b"null");
            return Some(true);
        }
        match (&self.value, msg.get_field(&self.field).as_ref()) {
            (ValuePlan::Timestamp(seconds, nanos), Value::Message(m)) => write_gql(
                out,
                &timestamp_of(
                    m.get_field(seconds).as_i64().unwrap_or(0),
                    m.get_field(nanos).as_i32().unwrap_or(0),
                ),
            ),
            (_, v) => self.write_value_json(v, out),
        }
    }

    /// As [`FieldOutput::write_json`], from the field's value read straight off the wire
    /// (`None`: the field is absent), for a field that [`FieldOutput::writes_directly`].
    pub fn write_wire_json(&self, read: Option<Read<'_>>, out: &mut Vec<u8>) -> Option<bool> {
        if !self.writes_directly() {
            return None;
        }
        match read {
            None if self.presence => {
                out.extend_from_slice(b"null");
                Some(true)
            }
            None => self.write_value_json(&self.field.default_value(), out),
            Some(Read::Value(v)) => self.write_value_json(&v, out),
            Some(Read::Str(s)) => {
                json_str(out, s);
                Some(false)
            }
            Some(Read::Message(encoded)) => {
                let ValuePlan::Timestamp(seconds_field, nanos_field) = &self.value else {
                    return None;
                };
                // The last of each wins, as in a decode.
                let (mut seconds, mut nanos) = (0, 0);
                let mut input = encoded;
                while !input.is_empty() {
                    match crate::wire::next_field(&mut input)? {
                        (n, Encoded::Varint(v), _) if n == seconds_field.number() => {
                            seconds = v as i64;
                        }
                        (n, Encoded::Varint(v), _) if n == nanos_field.number() => {
                            nanos = v as i32;
                        }
                        (n, _, _) if n == seconds_field.number() || n == nanos_field.number() => {
                            return None;
                        }
                        _ => {}
                    }
                }
                write_gql(out, &timestamp_of(seconds, nanos))
            }
        }
    }

    /// Writes one scalar or enum value (not a timestamp: its message is read by the callers).
    fn write_value_json(&self, v: &Value, out: &mut Vec<u8>) -> Option<bool> {
        match (&self.value, v) {
            // The same characters `Gql::String(s.clone())` serializes to, without the copy.
            (ValuePlan::Scalar, Value::String(s)) => {
                json_str(out, s);
                Some(false)
            }
            (ValuePlan::Scalar, v) => write_gql(out, &scalar_output(v, &self.kind)),
            (ValuePlan::Enum(outputs), Value::EnumNumber(n)) => {
                match outputs.binary_search_by_key(n, |(number, ..)| *number) {
                    Ok(i) => {
                        out.extend_from_slice(&outputs[i].2);
                        Some(matches!(outputs[i].1, Gql::Null))
                    }
                    Err(_) => write_gql(out, &Gql::Null),
                }
            }
            _ => None,
        }
    }

    fn value<'a>(&self, v: &'a Value) -> FieldValue<'a> {
        match (&self.value, v) {
            (ValuePlan::Scalar, v) => FieldValue::value(scalar_output(v, &self.kind)),
            (ValuePlan::Enum(outputs), Value::EnumNumber(n)) => FieldValue::value(
                match outputs.binary_search_by_key(n, |(number, ..)| *number) {
                    Ok(i) => outputs[i].1.clone(),
                    Err(_) => Gql::Null,
                },
            ),
            (ValuePlan::Timestamp(seconds, nanos), Value::Message(m)) => {
                FieldValue::value(timestamp_of(
                    m.get_field(seconds).as_i64().unwrap_or(0),
                    m.get_field(nanos).as_i32().unwrap_or(0),
                ))
            }
            _ => value_output(v, &self.kind),
        }
    }
}

/// As [`field_output`], consuming the message so nested messages move instead of being copied.
pub fn field_output_owned(mut msg: DynamicMessage, f: &FieldDescriptor) -> FieldValue<'static> {
    if f.is_map() || (f.supports_presence() && !msg.has_field(f)) {
        return field_output(&msg, f).into_owned_value();
    }
    let kind = f.kind();
    let Some(value) = msg.take_field(f) else {
        return if f.is_list() {
            FieldValue::list(Vec::<FieldValue<'static>>::new())
        } else {
            field_output(&msg, f).into_owned_value()
        };
    };
    let one = |v: Value| -> FieldValue<'static> {
        match v {
            Value::Message(m) if matches!(&kind, Kind::Message(d) if !is_timestamp(d) && !is_wrapper(d)) => {
                FieldValue::owned_any(m)
            }
            other => value_output(&other, &kind).into_owned_value(),
        }
    };
    match value {
        Value::List(items) if f.is_list() => {
            FieldValue::list(items.into_iter().map(one).filter(|v| !v.is_null_value()))
        }
        other => one(other),
    }
}

/// Whether a field value is a null value (which the engine does not read as null by itself).
pub(crate) trait NullCheck {
    /// `true` for `FieldValue::value(Value::Null)`.
    fn is_null_value(&self) -> bool;
}

impl NullCheck for FieldValue<'_> {
    fn is_null_value(&self) -> bool {
        matches!(self.as_value(), Some(Gql::Null))
    }
}

/// Detaches a field value built from a temporary: only plain values can be, since a temporary
/// message (an unset field's default) reads as null anyway.
trait IntoOwned<'b> {
    fn into_owned_value(self) -> FieldValue<'b>;
}

impl<'b> IntoOwned<'b> for FieldValue<'_> {
    fn into_owned_value(self) -> FieldValue<'b> {
        match self.as_value() {
            Some(v) => FieldValue::value(v.clone()),
            None => FieldValue::NULL,
        }
    }
}

fn value_output<'a>(v: &'a Value, kind: &Kind) -> FieldValue<'a> {
    match (v, kind) {
        (Value::Message(m), Kind::Message(desc)) => {
            if is_timestamp(desc) {
                FieldValue::value(timestamp_output(m))
            } else if is_wrapper(desc) {
                match desc.get_field_by_name("value") {
                    Some(inner) => {
                        FieldValue::value(scalar_output(&m.get_field(&inner), &inner.kind()))
                    }
                    None => FieldValue::NULL,
                }
            } else {
                FieldValue::borrowed_any(m)
            }
        }
        (v, kind) => FieldValue::value(scalar_output(v, kind)),
    }
}

/// A scalar or enum as a GraphQL value.
pub fn scalar_output(v: &Value, kind: &Kind) -> Gql {
    match v {
        Value::Bool(b) => Gql::Boolean(*b),
        Value::I32(n) => Gql::Number((*n).into()),
        Value::U32(n) => Gql::Number((*n).into()),
        // 64-bit integers travel as strings: JSON numbers lose precision past 2^53.
        Value::I64(n) => Gql::String(n.to_string()),
        Value::U64(n) => Gql::String(n.to_string()),
        Value::F32(x) => Number::from_f64(f64::from(*x)).map_or(Gql::Null, Gql::Number),
        Value::F64(x) => Number::from_f64(*x).map_or(Gql::Null, Gql::Number),
        Value::String(s) => Gql::String(s.clone()),
        Value::Bytes(b) => Gql::String(B64.encode(b)),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => enum_output(e, *n),
            _ => Gql::Null,
        },
        Value::Message(m) if is_timestamp(&m.descriptor()) => timestamp_output(m),
        _ => Gql::Null,
    }
}

fn enum_output(e: &EnumDescriptor, n: i32) -> Gql {
    match e.get_value(n) {
        Some(v) if !names::is_unspecified(&v) => Gql::Enum(Name::new(names::enum_value(e, &v))),
        _ => Gql::Null,
    }
}

fn timestamp_output(m: &DynamicMessage) -> Gql {
    let seconds = m
        .get_field_by_name("seconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = m
        .get_field_by_name("nanos")
        .and_then(|v| v.as_i32())
        .unwrap_or(0);
    timestamp_of(seconds, nanos)
}

/// Writes `g` as `serde_json` serializes it; `Some(true)` when it is null.
fn write_gql(out: &mut Vec<u8>, g: &Gql) -> Option<bool> {
    match g {
        Gql::String(s) => json_str(out, s),
        Gql::Enum(name) => json_str(out, name),
        _ => serde_json::to_writer(&mut *out, g).ok()?,
    }
    Some(matches!(g, Gql::Null))
}

/// The bytes a JSON string escapes: controls, `"` and `\\`.
static ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Whether `s` holds a byte JSON escapes, eight bytes at a time: a byte below 0x20, `"` or `\\`
/// sets its high bit in one of the three words below (the classic "has a zero byte" test,
/// exact as a yes/no answer).
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let hits = (x.wrapping_sub(ONES * 0x20) & !x)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        if hits & HIGH != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| ESCAPED[usize::from(b)])
}

/// Writes `s` as a JSON string, byte for byte as `serde_json` does. Most strings need no escape:
/// those are checked eight bytes at a time and copied whole, several times cheaper than
/// `serde_json`'s escaping writer.
pub fn json_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn timestamp_of(seconds: i64, nanos: i32) -> Gql {
    match chrono::DateTime::from_timestamp(seconds, nanos.max(0) as u32) {
        Some(t) => Gql::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => Gql::Null,
    }
}

// ---------------------------------------------------------------------------------------------
// Input

/// Builds a message of type `desc` from GraphQL arguments or an input object's fields, keyed by
/// GraphQL (camelCase) names. `path` locates the object in the arguments, for errors.
pub fn message_input<'a>(
    desc: &MessageDescriptor,
    fields: impl IntoIterator<Item = (&'a str, &'a Gql)>,
    path: &[String],
) -> Result<DynamicMessage, InputError> {
    let mut msg = DynamicMessage::new(desc.clone());
    let mut oneofs_set: Vec<(String, String)> = Vec::new();
    for (name, value) in fields {
        if matches!(value, Gql::Null) {
            continue;
        }
        let Some(f) = desc.fields().find(|f| names::camel(f.name()) == name) else {
            // Arguments the gateway adds itself (paging) are handled by the caller.
            continue;
        };
        let mut here = path.to_vec();
        here.push(name.to_owned());
        if let Some(oneof) = f.containing_oneof().filter(|o| !o.is_synthetic()) {
            if let Some((_, other)) = oneofs_set.iter().find(|(o, _)| o == oneof.name()) {
                return Err(err(
                    &here,
                    format!("set only one of `{other}` and `{name}`: they are alternatives"),
                ));
            }
            oneofs_set.push((oneof.name().to_owned(), name.to_owned()));
        }
        let v = field_input(&f, value, &here)?;
        msg.set_field(&f, v);
    }
    Ok(msg)
}

fn field_input(f: &FieldDescriptor, value: &Gql, path: &[String]) -> Result<Value, InputError> {
    if f.is_map() {
        let entry = f
            .kind()
            .as_message()
            .cloned()
            .ok_or_else(|| err(path, "malformed map"))?;
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        let Gql::List(items) = value else {
            return Err(err(path, "must be a list of {key, value} entries"));
        };
        let mut map = std::collections::HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let mut p = path.to_vec();
            p.push(i.to_string());
            let Gql::Object(o) = item else {
                return Err(err(&p, "must be a {key, value} entry"));
            };
            let key = o.get("key").ok_or_else(|| err(&p, "needs a key"))?;
            let key = match single_input(&kf.kind(), key, &p)? {
                Value::String(s) => MapKey::String(s),
                Value::I32(n) => MapKey::I32(n),
                Value::I64(n) => MapKey::I64(n),
                Value::U32(n) => MapKey::U32(n),
                Value::U64(n) => MapKey::U64(n),
                Value::Bool(b) => MapKey::Bool(b),
                _ => return Err(err(&p, "unsupported map key")),
            };
            let val = o
                .get("value")
                .map_or(Ok(Value::default_value(&vf.kind())), |v| {
                    single_input(&vf.kind(), v, &p)
                })?;
            map.insert(key, val);
        }
        return Ok(Value::Map(map));
    }
    if f.is_list() {
        let items: Vec<&Gql> = match value {
            Gql::List(items) => items.iter().collect(),
            // GraphQL input coercion: a single value where a list is expected is a list of one.
            other => vec![other],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut p = path.to_vec();
            p.push(i.to_string());
            out.push(single_input(&f.kind(), item, &p)?);
        }
        return Ok(Value::List(out));
    }
    single_input(&f.kind(), value, path)
}

fn int_of(value: &Gql, path: &[String]) -> Result<i128, InputError> {
    match value {
        Gql::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| err(path, "must be a whole number")),
        // Long values arrive as strings.
        Gql::String(s) => s
            .trim()
            .parse::<i128>()
            .map_err(|_| err(path, format!("`{s}` is not a whole number"))),
        _ => Err(err(path, "must be a whole number")),
    }
}

fn ranged<T: TryFrom<i128>>(n: i128, path: &[String], what: &str) -> Result<T, InputError> {
    T::try_from(n).map_err(|_| err(path, format!("{n} is out of range for {what}")))
}

fn single_input(kind: &Kind, value: &Gql, path: &[String]) -> Result<Value, InputError> {
    Ok(match kind {
        Kind::Bool => match value {
            Gql::Boolean(b) => Value::Bool(*b),
            _ => return Err(err(path, "must be true or false")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(ranged(int_of(value, path)?, path, "a 32-bit integer")?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(ranged(
            int_of(value, path)?,
            path,
            "an unsigned 32-bit integer",
        )?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(ranged(int_of(value, path)?, path, "a 64-bit integer")?)
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(ranged(
            int_of(value, path)?,
            path,
            "an unsigned 64-bit integer",
        )?),
        Kind::Float | Kind::Double => {
            let x = match value {
                Gql::Number(n) => n.as_f64().ok_or_else(|| err(path, "must be a number"))?,
                _ => return Err(err(path, "must be a number")),
            };
            if matches!(kind, Kind::Float) {
                Value::F32(x as f32)
            } else {
                Value::F64(x)
            }
        }
        Kind::String => match value {
            Gql::String(s) => Value::String(s.clone()),
            _ => return Err(err(path, "must be a string")),
        },
        Kind::Bytes => match value {
            Gql::String(s) => Value::Bytes(
                B64.decode(s)
                    .map_err(|_| err(path, "must be base64"))?
                    .into(),
            ),
            _ => return Err(err(path, "must be a base64 string")),
        },
        Kind::Enum(e) => {
            let name = match value {
                Gql::Enum(n) => n.as_str(),
                Gql::String(s) => s.as_str(),
                _ => return Err(err(path, "must be an enum value")),
            };
            let v = e
                .values()
                .find(|v| !names::is_unspecified(v) && names::enum_value(e, v) == name)
                .ok_or_else(|| {
                    err(
                        path,
                        format!("`{name}` is not a value of {}", names::enum_type(e)),
                    )
                })?;
            Value::EnumNumber(v.number())
        }
        Kind::Message(m) if is_timestamp(m) => {
            let Gql::String(s) = value else {
                return Err(err(path, "must be an RFC 3339 date-time"));
            };
            let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|_| {
                err(
                    path,
                    format!("`{s}` is not an RFC 3339 date-time, e.g. 2026-12-24T21:00:00Z"),
                )
            })?;
            let mut ts = DynamicMessage::new(m.clone());
            ts.set_field_by_name("seconds", Value::I64(t.timestamp()));
            ts.set_field_by_name("nanos", Value::I32(t.timestamp_subsec_nanos() as i32));
            Value::Message(ts)
        }
        Kind::Message(m) if is_wrapper(m) => {
            let inner = m
                .get_field_by_name("value")
                .ok_or_else(|| err(path, "malformed wrapper"))?;
            let mut w = DynamicMessage::new(m.clone());
            w.set_field(&inner, single_input(&inner.kind(), value, path)?);
            Value::Message(w)
        }
        Kind::Message(m) => {
            let Gql::Object(o) = value else {
                return Err(err(path, "must be an input object"));
            };
            Value::Message(message_input(
                m,
                o.iter().map(|(k, v)| (k.as_str(), v)),
                path,
            )?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_reflect::DescriptorPool;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    fn obj(json: serde_json::Value) -> async_graphql::indexmap::IndexMap<Name, Gql> {
        match Gql::from_json(json).unwrap() {
            Gql::Object(o) => o,
            _ => panic!("object expected"),
        }
    }

    #[test]
    fn json_strings_are_written_as_serde_json_writes_them() {
        let cases = [
            "",
            "Teatro Massimo",
            "Sant'Agata – più è già",
            "quote \" and backslash \\",
            "new\nline, tab\t, return\r, bell\u{7}, nul\u{0}, unit\u{1f}",
            "del \u{7f} and emoji 🎭",
            "\"",
        ];
        // Every byte value at every position of a word, and around it.
        let mut long: Vec<String> = Vec::new();
        for b in (0u8..=0x7f).map(char::from).chain(['è', '€', '🎭']) {
            for at in 0..17 {
                let mut s = "abcdefghijklmnopq".to_owned();
                s.insert(at, b);
                long.push(s);
            }
        }
        for case in cases.iter().copied().chain(long.iter().map(String::as_str)) {
            assert_eq!(
                needs_escape(case.as_bytes()),
                case.bytes().any(|b| ESCAPED[usize::from(b)]),
                "{case:?}"
            );
            let mut out = Vec::new();
            json_str(&mut out, case);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(case).unwrap(),
                "{case:?}"
            );
        }
    }

    #[test]
    fn inputs_become_messages_and_back() {
        let desc = pool()
            .get_message_by_name("patto.culture.v1.CreateEventRequest")
            .unwrap();
        let args = obj(serde_json::json!({"event": {
            "istatCode": "082053", "name": "Tosca", "category": "THEATRE",
            "startTime": "2026-12-24T21:00:00Z", "price": {"cents": "2500"}, "capacity": 100
        }}));
        let msg = message_input(&desc, args.iter().map(|(k, v)| (k.as_str(), v)), &[]).unwrap();
        let event = msg
            .get_field_by_name("event")
            .unwrap()
            .as_message()
            .unwrap()
            .clone();
        assert_eq!(
            event
                .get_field_by_name("category")
                .unwrap()
                .as_enum_number(),
            Some(2)
        );
        let start = event.descriptor().get_field_by_name("start_time").unwrap();
        assert_eq!(
            field_output(&event, &start).as_value().unwrap(),
            &Gql::String("2026-12-24T21:00:00Z".into())
        );
        let cat = event.descriptor().get_field_by_name("category").unwrap();
        assert_eq!(
            field_output(&event, &cat).as_value().unwrap(),
            &Gql::Enum(Name::new("THEATRE"))
        );
        // The zero value reads as null.
        let status = event.descriptor().get_field_by_name("status").unwrap();
        assert_eq!(
            field_output(&event, &status).as_value().unwrap(),
            &Gql::Null
        );
    }

    #[test]
    fn bad_inputs_name_their_path() {
        let desc = pool()
            .get_message_by_name("patto.culture.v1.CreateEventRequest")
            .unwrap();
        let cases = [
            (
                serde_json::json!({"event": {"category": "OPERA"}}),
                vec!["event", "category"],
            ),
            (
                serde_json::json!({"event": {"startTime": "tomorrow"}}),
                vec!["event", "startTime"],
            ),
            (
                serde_json::json!({"event": {"price": {"cents": "12x"}}}),
                vec!["event", "price", "cents"],
            ),
            (
                serde_json::json!({"event": {"capacity": 3_000_000_000u64}}),
                vec!["event", "capacity"],
            ),
            (
                serde_json::json!({"event": {"name": 5}}),
                vec!["event", "name"],
            ),
        ];
        for (json, path) in cases {
            let args = obj(json);
            let e =
                message_input(&desc, args.iter().map(|(k, v)| (k.as_str(), v)), &[]).unwrap_err();
            assert_eq!(e.path, path, "{}", e.message);
        }
    }

    /// A comparable rendering of a field value: plain values as they are, objects by content.
    fn render(v: &FieldValue<'_>) -> String {
        if let Some(list) = v.as_list() {
            return format!(
                "[{}]",
                list.iter().map(render).collect::<Vec<_>>().join(",")
            );
        }
        if let Some(m) = v.downcast_ref::<DynamicMessage>() {
            return format!("object {m:?}");
        }
        format!("{:?}", v.as_value())
    }

    #[test]
    fn field_plans_output_what_field_output_does() {
        let pool = pool();
        let mut n: i64 = 0;
        let mut written = 0;
        for desc in pool.all_messages() {
            // Unset, then set to a few values (enum numbers past the declared ones included).
            let mut messages = vec![DynamicMessage::new(desc.clone())];
            for round in 0..3 {
                let mut m = DynamicMessage::new(desc.clone());
                for f in desc.fields() {
                    n += 1;
                    let value = |kind: &Kind| match kind {
                        Kind::Enum(_) => Some(Value::EnumNumber([0, 1, 2, 99][(n % 4) as usize])),
                        Kind::Message(t) if is_timestamp(t) => {
                            let mut ts = DynamicMessage::new(t.clone());
                            ts.set_field_by_name("seconds", Value::I64(1_790_000_000 + n));
                            let nanos = [0, 5_000_000, 123_456_000, 1][(n % 4) as usize];
                            ts.set_field_by_name("nanos", Value::I32(nanos));
                            Some(Value::Message(ts))
                        }
                        Kind::Message(t) if round == 1 => {
                            Some(Value::Message(DynamicMessage::new(t.clone())))
                        }
                        Kind::Message(_) => None,
                        Kind::String if round == 2 => {
                            Some(Value::String("Teatro \"Massimo\" \\ è\n\u{1}".into()))
                        }
                        Kind::Int64 if round == 2 => Some(Value::I64(-9_007_199_254_740_993)),
                        other => Some(other.default_value()),
                    };
                    if f.is_map() {
                        continue;
                    }
                    let Some(v) = value(&f.kind()) else { continue };
                    let v = if f.is_list() {
                        Value::List(vec![v.clone(), v])
                    } else {
                        v
                    };
                    m.set_field(&f, v);
                }
                messages.push(m);
            }
            for f in desc.fields() {
                let plan = FieldOutput::new(&f);
                for m in &messages {
                    assert_eq!(
                        render(&plan.output(m)),
                        render(&field_output(m, &f)),
                        "{}",
                        f.full_name()
                    );
                    // Written straight to JSON: the bytes the output value serializes to.
                    let mut json = Vec::new();
                    if let Some(null) = plan.write_json(m, &mut json) {
                        written += 1;
                        let out = plan.output(m);
                        let expected = serde_json::to_vec(out.as_value().expect("a leaf"));
                        assert_eq!(
                            String::from_utf8_lossy(&json),
                            String::from_utf8_lossy(&expected.unwrap()),
                            "{}",
                            f.full_name()
                        );
                        assert_eq!(null, json == b"null", "{}", f.full_name());
                    }
                }
            }
        }
        assert!(written > 100, "leaves written straight to JSON: {written}");
    }

    #[test]
    fn long_values_are_strings_both_ways() {
        let desc = pool().get_message_by_name("patto.common.v1.Money").unwrap();
        for input in [
            serde_json::json!({"cents": "9007199254740993"}),
            serde_json::json!({"cents": 42}),
        ] {
            let args = obj(input.clone());
            let m = message_input(&desc, args.iter().map(|(k, v)| (k.as_str(), v)), &[]).unwrap();
            let f = desc.get_field_by_name("cents").unwrap();
            let out = field_output(&m, &f);
            let expected = input["cents"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| input["cents"].to_string());
            assert_eq!(out.as_value().unwrap(), &Gql::String(expected));
        }
    }
}
