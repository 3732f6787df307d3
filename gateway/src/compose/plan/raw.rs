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
struct RawShape {
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

    /// Writes the items for the connection step at `step`, when that step reads `nodes`; `None`
    /// when it does not (`Some(None)`: the items could not be written, the engine answers).
    pub(crate) fn write(
        &self,
        step: usize,
        items: &[Bytes],
        out: &mut Vec<u8>,
    ) -> Option<Option<()>> {
        let shape = self.nodes.get(step)?.as_ref()?;
        Some((|| {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                shape.write(item, out)?;
            }
            out.push(b']');
            Some(())
        })())
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
                source: steps.len(),
            });
        }
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
            match by_number[number] {
                0 => by_number[number] = u16::try_from(i + 1).ok()?,
                first => step.source = usize::from(first - 1),
            }
        }
        Some(Self { steps, by_number })
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
            if found[step].is_some() && matches!(self.steps[step].what, RawWhat::Message { .. }) {
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
