//! A connection's items written straight from the wire.
//!
//! Decoding a page into dynamic messages costs more than anything else a plan does with it: each
//! field of each item is a map insertion and often an allocation. When a connection's `nodes`
//! select only scalars, enums, timestamps and plain messages of those, the plan has the decoder
//! set the items aside still encoded ([`RawList`]) and writes each one from its bytes: one pass
//! over an item finds the selected fields, and each is written as [`FieldOutput::write_wire_json`]
//! does, the same bytes a decoded message gives. The rest of the response (the page info) is
//! decoded as usual. Anything unusual (a field's wire type that does not fit, an embedded message
//! sent twice, which a decode would merge) leaves the plan to the engine.

use std::sync::Arc;

use async_graphql::dynamic::TypeRef;
use bytes::Bytes;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::{Shape, What, Wire};
use crate::convert::FieldOutput;
use crate::request::Fetched;
use crate::transport::CallError;
use crate::wire::{Encoded, RawList, next_field, read};

/// The items of a connection root, written from the wire: the list field, and for each step of
/// the connection's selection that reads `nodes`, the selection on the items.
pub(crate) struct RawItems {
    list: FieldDescriptor,
    nodes: Vec<Option<RawShape>>,
}

/// A selection on a message, by field number.
pub(super) struct RawShape {
    steps: Vec<RawStep>,
    /// For each field number, 1 + the first step reading it (0: none), so one pass over an
    /// item finds each selected field without searching.
    by_number: Vec<u16>,
}

struct RawStep {
    /// The response key, as `member` gives it.
    key: Box<[u8]>,
    what: RawWhat,
    /// The first step reading the same field (itself unless an alias read it before).
    source: usize,
}

/// Field numbers up to this are indexed directly; a selection of higher ones is not written
/// from the wire (contracts number their fields densely from 1).
const MAX_NUMBER: u32 = 4096;
/// Selections up to this many fields find theirs in a buffer on the stack.
const STACK_STEPS: usize = 32;

enum RawWhat {
    Typename(Box<[u8]>),
    Leaf {
        number: u32,
        output: Arc<FieldOutput>,
        non_null: bool,
    },
    Message {
        number: u32,
        shape: RawShape,
        non_null: bool,
    },
}

impl RawWhat {
    fn number(&self) -> Option<u32> {
        match self {
            RawWhat::Typename(_) => None,
            RawWhat::Leaf { number, .. } | RawWhat::Message { number, .. } => Some(*number),
        }
    }

    /// Whether the field holds a message (a timestamp included), which a decode merges when it
    /// is sent more than once, where a scalar's last value simply wins.
    fn merges(&self) -> bool {
        match self {
            RawWhat::Typename(_) => false,
            RawWhat::Leaf { output, .. } => matches!(output.kind(), Kind::Message(_)),
            RawWhat::Message { .. } => true,
        }
    }
}

impl RawItems {
    /// The raw plan of a connection whose item field is `list`, for its selection `shape`:
    /// `None` unless some step reads `nodes` and every step is one this module writes (`edges`
    /// and its cursors stay with the decoded path).
    pub(crate) fn compile(list: &FieldDescriptor, shape: &Shape) -> Option<Self> {
        let Kind::Message(item) = list.kind() else {
            return None;
        };
        let mut nodes = Vec::with_capacity(shape.steps.len());
        for step in &shape.steps {
            nodes.push(match &step.what {
                What::Typename(_) => None,
                What::Field { slot, .. } if slot.wire == Wire::PageInfo => None,
                What::Field {
                    slot,
                    selection: Some(selection),
                } if slot.wire == Wire::Items => Some(RawShape::compile(&item, selection)?),
                What::Field { .. } => return None,
            });
        }
        nodes.iter().any(Option::is_some).then(|| Self {
            list: list.clone(),
            nodes,
        })
    }

    /// A fresh list for one call to set its items aside in.
    pub(crate) fn list(&self) -> RawList {
        RawList::new(self.list.number())
    }

    /// The selection on the items of the connection step at `step`, when that step reads
    /// `nodes`.
    pub(super) fn nodes(&self, step: usize) -> Option<&RawShape> {
        self.nodes.get(step)?.as_ref()
    }

    /// Puts the items set aside back into the response, decoded, for the engine to take over.
    pub(crate) fn restore(&self, fetched: &mut Fetched, items: Vec<Bytes>) {
        let Kind::Message(item) = self.list.kind() else {
            return;
        };
        let decoded: Result<Vec<Value>, _> = items
            .iter()
            .map(|bytes| DynamicMessage::decode(item.clone(), &bytes[..]).map(Value::Message))
            .collect();
        match (&mut fetched.result, decoded) {
            (Ok(response), Ok(list)) => response.set_field(&self.list, Value::List(list)),
            (Ok(_), Err(e)) => {
                // What the decoder would have said of the whole response.
                fetched.result = Err(CallError {
                    service: fetched.service.clone(),
                    status: tonic::Status::internal(format!("decode: {e}")),
                });
            }
            (Err(_), _) => {}
        }
    }
}

impl RawShape {
    fn compile(desc: &MessageDescriptor, shape: &Shape) -> Option<Self> {
        let mut steps = Vec::with_capacity(shape.steps.len());
        for step in &shape.steps {
            let what = match &step.what {
                What::Typename(name) => RawWhat::Typename(name.clone()),
                What::Field { slot, selection } => {
                    let output = slot.output.as_ref().filter(|_| slot.wire == Wire::Field)?;
                    let field = output.field();
                    // Only this message's own fields (a plan's slots are per type, so always).
                    if field.parent_message() != desc {
                        return None;
                    }
                    let non_null = matches!(slot.ty, TypeRef::NonNull(_));
                    match (selection, field.kind()) {
                        (None, _) if output.writes_directly() => RawWhat::Leaf {
                            number: field.number(),
                            output: output.clone(),
                            non_null,
                        },
                        (Some(selection), Kind::Message(m))
                            if !field.is_list()
                                && !field.is_map()
                                && field.containing_oneof().is_none_or(|o| o.is_synthetic()) =>
                        {
                            RawWhat::Message {
                                number: field.number(),
                                shape: Self::compile(&m, selection)?,
                                non_null,
                            }
                        }
                        _ => return None,
                    }
                }
            };
            steps.push(RawStep {
                key: step.key.clone(),
                what,
                // Set by `indexed`.
                source: 0,
            });
        }
        Self::indexed(steps)
    }

    /// The shape of `steps`, each field indexed by its number; `None` past [`MAX_NUMBER`].
    fn indexed(mut steps: Vec<RawStep>) -> Option<Self> {
        let mut by_number = Vec::new();
        for (i, step) in steps.iter_mut().enumerate() {
            let Some(number) = step.what.number() else {
                continue;
            };
            if number > MAX_NUMBER {
                return None;
            }
            let number = number as usize;
            if by_number.len() <= number {
                by_number.resize(number + 1, 0);
            }
            step.source = match by_number[number] {
                0 => {
                    by_number[number] = u16::try_from(i + 1).ok()?;
                    i
                }
                first => usize::from(first - 1),
            };
        }
        Some(Self { steps, by_number })
    }

    /// Writes the encoded `items` as a JSON list of the selection's objects; `None` when one
    /// cannot be written (the engine answers).
    pub(super) fn write_list(&self, items: &[Bytes], out: &mut Vec<u8>) -> Option<()> {
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.write(item, out)?;
        }
        out.push(b']');
        Some(())
    }

    /// Writes the encoded message `bytes` as the selection's JSON object.
    fn write(&self, bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
        // One pass finds the last occurrence of each selected field, as a decode keeps it.
        let mut stack = [None; STACK_STEPS];
        let mut heap = Vec::new();
        let found: &mut [Option<Encoded<'_>>] = match self.steps.len() {
            n if n <= STACK_STEPS => &mut stack[..n],
            n => {
                heap.resize(n, None);
                &mut heap
            }
        };
        let mut input = bytes;
        while !input.is_empty() {
            let (number, value, _) = next_field(&mut input)?;
            let Some(&step) = self.by_number.get(number as usize) else {
                continue;
            };
            let Some(step) = usize::from(step).checked_sub(1) else {
                continue;
            };
            // A message sent twice is merged by a decode: leave that to the engine.
            if found[step].is_some() && self.steps[step].what.merges() {
                return None;
            }
            found[step] = Some(value);
        }
        out.push(b'{');
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let value = found[step.source];
            out.extend_from_slice(&step.key);
            match &step.what {
                RawWhat::Typename(name) => out.extend_from_slice(name),
                RawWhat::Leaf {
                    output, non_null, ..
                } => {
                    let value = match value {
                        Some(v) => Some(read(output.kind(), v)?),
                        None => None,
                    };
                    // A null where the schema allows none is the engine's error to report.
                    if output.write_wire_json(value, out)? && *non_null {
                        return None;
                    }
                }
                RawWhat::Message {
                    shape, non_null, ..
                } => match value {
                    Some(Encoded::Len(message)) => shape.write(message, out)?,
                    Some(_) => return None,
                    None if *non_null => return None,
                    None => out.extend_from_slice(b"null"),
                },
            }
        }
        out.push(b'}');
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost::encoding::{WireType, encode_key, encode_varint};

    fn leaf(key: &str, f: &FieldDescriptor) -> RawStep {
        RawStep {
            key: format!("\"{key}\":").into_bytes().into(),
            what: RawWhat::Leaf {
                number: f.number(),
                output: Arc::new(FieldOutput::new(f)),
                non_null: false,
            },
            source: 0,
        }
    }

    /// Appends a length-delimited field: a string or an encoded message.
    fn delimited(number: u32, value: &[u8], out: &mut Vec<u8>) {
        encode_key(number, WireType::LengthDelimited, out);
        encode_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    /// Fields sent more than once: a scalar's last value wins, as in a decode; a message (a
    /// timestamp too) would be merged, so the plan leaves it to the engine.
    #[test]
    fn repeated_fields_read_as_a_decode_reads_them_or_not_at_all() {
        let pool = prost_reflect::DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap();
        let event = pool.get_message_by_name("patto.culture.v1.Event").unwrap();
        let field = |name: &str| event.get_field_by_name(name).unwrap();
        let (id, start, price) = (field("id"), field("start_time"), field("price"));
        let money = price.kind().as_message().unwrap().clone();
        let cents = money.get_field_by_name("cents").unwrap();
        let shape = RawShape::indexed(vec![
            leaf("id", &id),
            leaf("again", &id),
            leaf("start", &start),
            RawStep {
                key: b"\"price\":".as_slice().into(),
                what: RawWhat::Message {
                    number: price.number(),
                    shape: RawShape::indexed(vec![leaf("cents", &cents)]).unwrap(),
                    non_null: false,
                },
                source: 0,
            },
        ])
        .unwrap();
        let write = |bytes: &[u8]| {
            let mut out = Vec::new();
            shape
                .write(bytes, &mut out)
                .map(|()| String::from_utf8(out).unwrap())
        };

        let mut twice = Vec::new();
        delimited(id.number(), b"first", &mut twice);
        delimited(id.number(), b"last", &mut twice);
        let decoded = prost_reflect::DynamicMessage::decode(event.clone(), twice.as_slice());
        assert_eq!(decoded.unwrap().get_field(&id).as_str(), Some("last"));
        assert_eq!(
            write(&twice).as_deref(),
            Some(r#"{"id":"last","again":"last","start":null,"price":null}"#)
        );

        let mut with_price = twice.clone();
        let mut amount = Vec::new();
        encode_key(cents.number(), WireType::Varint, &mut amount);
        encode_varint(1250, &mut amount);
        delimited(price.number(), &amount, &mut with_price);
        assert_eq!(
            write(&with_price).as_deref(),
            Some(r#"{"id":"last","again":"last","start":null,"price":{"cents":"1250"}}"#)
        );

        let timestamp = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }
        .encode_to_vec();
        let mut start_once = twice.clone();
        delimited(start.number(), &timestamp, &mut start_once);
        assert_eq!(
            write(&start_once).as_deref(),
            Some(r#"{"id":"last","again":"last","start":"2023-11-14T22:13:20Z","price":null}"#)
        );
        let mut start_twice = start_once.clone();
        delimited(start.number(), &timestamp, &mut start_twice);
        assert_eq!(write(&start_twice), None, "a timestamp sent twice");
        let mut price_twice = with_price.clone();
        delimited(price.number(), &amount, &mut price_twice);
        assert_eq!(write(&price_twice), None, "a message sent twice");
        // A wire type that does not fit the field, and bytes cut short.
        let mut wrong = Vec::new();
        encode_key(id.number(), WireType::Varint, &mut wrong);
        encode_varint(7, &mut wrong);
        assert_eq!(write(&wrong), None);
        assert_eq!(write(&twice[..twice.len() - 1]), None);
    }
}
