//! Selective decoding: the fields of a response a compiled plan reads, picked from the wire
//! before `prost-reflect` decodes it.
//!
//! Decoding into a dynamic message costs about twice what generated code does, and a query often
//! reads a few fields of each item (or only a count) while the service sends whole items. A
//! [`WireFilter`] copies the encoded fields the plan selects, recursively into the messages whose
//! fields it selects in turn, and drops the rest unread; the dynamic message decoded from what is
//! left holds the selected fields exactly as a full decode would (every occurrence is kept, in
//! order, so repeated and merged fields decode the same; all members of a oneof are kept together,
//! so the last one still wins).
//!
//! A plan that writes a connection's items straight from the wire asks instead for a
//! [`RawList`]: the items are set aside still encoded (sharing the response's buffer) and only the
//! rest of the response is decoded; [`next_field`] and [`read`] then give each selected field's
//! value as `prost` would decode it.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use prost::encoding::{decode_varint, encode_varint};
use prost_reflect::{Kind, Value};

/// The fields to keep of one message, by number; a field with a filter of its own keeps only
/// those fields of its message(s), one without keeps them whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFilter {
    fields: Vec<(u32, Option<Arc<WireFilter>>)>,
}

impl WireFilter {
    /// A filter keeping `fields` (number, and the filter of a message field, if any).
    pub fn new(mut fields: Vec<(u32, Option<Arc<WireFilter>>)>) -> Self {
        fields.sort_by_key(|(n, _)| *n);
        fields.dedup_by(|b, a| {
            if a.0 != b.0 {
                return false;
            }
            // The same field twice (e.g. `nodes` and `edges`): keep the wider of the two.
            if a.1 != b.1 {
                a.1 = None;
            }
            true
        });
        Self { fields }
    }

    /// Whether this keeps every field of a message whose fields are `numbers`, each whole: then
    /// filtering would only copy.
    pub fn keeps_all(&self, numbers: impl IntoIterator<Item = u32>) -> bool {
        numbers
            .into_iter()
            .all(|n| matches!(self.get(n), Some(None)))
    }

    fn get(&self, number: u32) -> Option<&Option<Arc<WireFilter>>> {
        self.fields
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()
            .map(|i| &self.fields[i].1)
    }

    /// Appends to `out` the fields of the encoded message `input` this filter keeps. `None` when
    /// `input` is not a well-formed message (the caller then decodes it whole, which reports it).
    pub fn apply(&self, mut input: &[u8], out: &mut Vec<u8>) -> Option<()> {
        while !input.is_empty() {
            let (number, value, whole) = next_field(&mut input)?;
            match (self.get(number), value) {
                (None, _) => {}
                (Some(Some(inner)), Encoded::Len(body)) => {
                    let mut kept = Vec::with_capacity(body.len());
                    inner.apply(body, &mut kept)?;
                    encode_varint(u64::from(number) << 3 | 2, out);
                    encode_varint(kept.len() as u64, out);
                    out.extend_from_slice(&kept);
                }
                (Some(_), _) => out.extend_from_slice(whole),
            }
        }
        Some(())
    }
}

/// One encoded field's value, as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoded<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, a message or a packed list.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Reads the next field of the encoded message `input`: its number, its value, and all its bytes
/// (key included). `None` when malformed, and for groups, which proto3 has not.
pub fn next_field<'a>(input: &mut &'a [u8]) -> Option<(u32, Encoded<'a>, &'a [u8])> {
    let start = *input;
    let key = decode_varint(input).ok()?;
    let number = u32::try_from(key >> 3).ok()?;
    let value = match key & 7 {
        0 => Encoded::Varint(decode_varint(input).ok()?),
        1 => {
            let (bytes, rest) = input.split_first_chunk::<8>()?;
            *input = rest;
            Encoded::Fixed64(u64::from_le_bytes(*bytes))
        }
        2 => {
            let len = usize::try_from(decode_varint(input).ok()?).ok()?;
            let body = input.get(..len)?;
            *input = &input[len..];
            Encoded::Len(body)
        }
        5 => {
            let (bytes, rest) = input.split_first_chunk::<4>()?;
            *input = rest;
            Encoded::Fixed32(u32::from_le_bytes(*bytes))
        }
        _ => return None,
    };
    Some((number, value, &start[..start.len() - input.len()]))
}

/// A singular field's value read straight from the wire, without a dynamic message.
#[derive(Debug, Clone, PartialEq)]
pub enum Read<'a> {
    /// A number, a boolean, an enum's number or bytes.
    Value(Value),
    /// A string, borrowed from the message.
    Str(&'a str),
    /// An embedded message, still encoded.
    Message(&'a [u8]),
}

/// The value of a field of kind `kind` from its encoding, as `prost` decodes it; `None` when the
/// wire type does not fit the kind, or a string is not UTF-8 (a full decode reports those).
pub fn read<'a>(kind: &Kind, value: Encoded<'a>) -> Option<Read<'a>> {
    let v = match (kind, value) {
        (Kind::Int32, Encoded::Varint(v)) => Value::I32(v as i32),
        (Kind::Int64, Encoded::Varint(v)) => Value::I64(v as i64),
        (Kind::Uint32, Encoded::Varint(v)) => Value::U32(v as u32),
        (Kind::Uint64, Encoded::Varint(v)) => Value::U64(v),
        (Kind::Sint32, Encoded::Varint(v)) => {
            let v = v as u32;
            Value::I32((v >> 1) as i32 ^ -((v & 1) as i32))
        }
        (Kind::Sint64, Encoded::Varint(v)) => Value::I64((v >> 1) as i64 ^ -((v & 1) as i64)),
        (Kind::Bool, Encoded::Varint(v)) => Value::Bool(v != 0),
        (Kind::Enum(_), Encoded::Varint(v)) => Value::EnumNumber(v as i32),
        (Kind::Fixed64, Encoded::Fixed64(v)) => Value::U64(v),
        (Kind::Sfixed64, Encoded::Fixed64(v)) => Value::I64(v as i64),
        (Kind::Double, Encoded::Fixed64(v)) => Value::F64(f64::from_bits(v)),
        (Kind::Fixed32, Encoded::Fixed32(v)) => Value::U32(v),
        (Kind::Sfixed32, Encoded::Fixed32(v)) => Value::I32(v as i32),
        (Kind::Float, Encoded::Fixed32(v)) => Value::F32(f32::from_bits(v)),
        (Kind::Bytes, Encoded::Len(b)) => Value::Bytes(bytes::Bytes::copy_from_slice(b)),
        (Kind::String, Encoded::Len(b)) => return std::str::from_utf8(b).ok().map(Read::Str),
        (Kind::Message(_), Encoded::Len(b)) => return Some(Read::Message(b)),
        _ => return None,
    };
    Some(Read::Value(v))
}

/// How much of a response to decode: a compiled plan's choice; everything otherwise.
#[derive(Debug, Clone, Default)]
pub enum Decode {
    /// The whole response.
    #[default]
    Whole,
    /// What the filter keeps.
    Filter(Arc<WireFilter>),
    /// The response without the list's items, which stay encoded.
    RawList(RawList),
}

/// The items of a repeated message field of a response, set aside as encoded while the rest of
/// the response is decoded: a compiled plan writes them straight to JSON (see
/// `compose::plan::raw`). One per call: the decoder leaves the items here.
#[derive(Debug, Clone)]
pub struct RawList {
    number: u32,
    items: Arc<Mutex<Option<Vec<Bytes>>>>,
}

impl RawList {
    /// Sets aside the items of field `number`.
    pub fn new(number: u32) -> Self {
        Self {
            number,
            items: Arc::default(),
        }
    }

    /// The encoded response without the list, the items kept here (sharing `bytes`, not copied);
    /// `None` when the response is malformed (the caller decodes it whole, which reports it).
    pub fn split(&self, bytes: &Bytes) -> Option<Vec<u8>> {
        let mut input = &bytes[..];
        let mut rest = Vec::new();
        let mut items = Vec::new();
        while !input.is_empty() {
            match next_field(&mut input)? {
                (number, Encoded::Len(item), _) if number == self.number => {
                    items.push(bytes.slice_ref(item));
                }
                (_, _, whole) => rest.extend_from_slice(whole),
            }
        }
        *self.items.lock().unwrap_or_else(PoisonError::into_inner) = Some(items);
        Some(rest)
    }

    /// The items set aside by the last decode; `None` when the response was decoded whole.
    pub fn take(&self) -> Option<Vec<Bytes>> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn kept_fields_decode_as_a_full_decode_does() {
        let pool = pool();
        let desc = pool
            .get_message_by_name("patto.culture.v1.ListEventsResponse")
            .expect("culture's list response");
        let event_desc = pool.get_message_by_name("patto.culture.v1.Event").unwrap();
        let mut events = Vec::new();
        for i in 0..3 {
            let mut e = DynamicMessage::new(event_desc.clone());
            e.set_field_by_name("id", Value::String(format!("evt-{i}")));
            e.set_field_by_name("name", Value::String(format!("Concerto {i}")));
            e.set_field_by_name("description", Value::String("a long description".repeat(5)));
            e.set_field_by_name("capacity", Value::I32(100 + i));
            events.push(Value::Message(e));
        }
        let mut response = DynamicMessage::new(desc.clone());
        let list = desc
            .fields()
            .find(|f| f.is_list())
            .expect("the items field");
        let info = desc.fields().find(|f| !f.is_list()).expect("page info");
        response.set_field(&list, Value::List(events));
        let mut page = DynamicMessage::new(info.kind().as_message().unwrap().clone());
        page.set_field_by_name("total_count", Value::I64(3));
        response.set_field(&info, Value::Message(page));
        let bytes = response.encode_to_vec();
        let field = |name: &str| event_desc.get_field_by_name(name).unwrap();

        // Items keep `id` and `name`; the page info stays whole.
        let items = Arc::new(WireFilter::new(vec![
            (field("name").number(), None),
            (field("id").number(), None),
        ]));
        let filter = WireFilter::new(vec![(list.number(), Some(items)), (info.number(), None)]);
        let mut kept = Vec::new();
        filter.apply(&bytes, &mut kept).expect("well formed");
        assert!(kept.len() < bytes.len());
        let decoded = DynamicMessage::decode(desc.clone(), kept.as_slice()).unwrap();
        assert_eq!(decoded.get_field(&info), response.get_field(&info));
        let (got, want) = (decoded.get_field(&list), response.get_field(&list));
        let (got, want) = (got.as_list().unwrap(), want.as_list().unwrap());
        assert_eq!(got.len(), 3, "every item is kept");
        for (g, w) in got.iter().zip(want) {
            let (g, w) = (g.as_message().unwrap(), w.as_message().unwrap());
            for name in ["id", "name"] {
                assert_eq!(g.get_field(&field(name)), w.get_field(&field(name)));
            }
            assert!(!g.has_field(&field("description")));
            assert!(!g.has_field(&field("capacity")));
        }

        // Only the count: the items are not even copied.
        let count = WireFilter::new(vec![(info.number(), None)]);
        let mut kept = Vec::new();
        count.apply(&bytes, &mut kept).unwrap();
        let decoded = DynamicMessage::decode(desc.clone(), kept.as_slice()).unwrap();
        assert_eq!(decoded.get_field(&info), response.get_field(&info));
        assert!(decoded.get_field(&list).as_list().unwrap().is_empty());

        // Malformed input is refused, not guessed at.
        assert!(
            count
                .apply(&bytes[..bytes.len() - 1], &mut Vec::new())
                .is_none()
        );
        assert!(count.apply(&[0x0b], &mut Vec::new()).is_none(), "a group");
    }

    #[test]
    fn fields_read_off_the_wire_as_a_decode_gives_them() {
        let pool = crate::compose::tests::pool_of(&[(
            "kinds.proto",
            r#"syntax = "proto3";
            package kinds;
            enum E { E_ZERO = 0; E_ONE = 1; }
            message All {
              int32 a = 1; int64 b = 2; uint32 c = 3; uint64 d = 4; sint32 e = 5; sint64 f = 6;
              bool g = 7; fixed32 h = 8; fixed64 i = 9; sfixed32 j = 10; sfixed64 k = 11;
              float l = 12; double m = 13; string n = 14; bytes o = 15; E p = 16; All q = 17;
            }"#,
        )]);
        let all = pool.get_message_by_name("kinds.All").unwrap();
        let cases = [
            ("a", Value::I32(-1)),
            ("a", Value::I32(i32::MIN)),
            ("b", Value::I64(i64::MIN)),
            ("c", Value::U32(u32::MAX)),
            ("d", Value::U64(u64::MAX)),
            ("e", Value::I32(-5)),
            ("e", Value::I32(i32::MIN)),
            ("f", Value::I64(-7)),
            ("f", Value::I64(i64::MAX)),
            ("g", Value::Bool(true)),
            ("h", Value::U32(u32::MAX)),
            ("i", Value::U64(u64::MAX - 1)),
            ("j", Value::I32(-3)),
            ("k", Value::I64(-9)),
            ("l", Value::F32(1.5)),
            ("m", Value::F64(-2.25)),
            ("n", Value::String("è già".into())),
            ("o", Value::Bytes(vec![0, 255].into())),
            ("p", Value::EnumNumber(1)),
            ("p", Value::EnumNumber(99)),
        ];
        for (name, value) in cases {
            let field = all.get_field_by_name(name).unwrap();
            let mut msg = DynamicMessage::new(all.clone());
            msg.set_field(&field, value.clone());
            let bytes = msg.encode_to_vec();
            let decoded = DynamicMessage::decode(all.clone(), bytes.as_slice()).unwrap();
            let mut input = bytes.as_slice();
            let (number, encoded, whole) = next_field(&mut input).expect("one field");
            assert!(input.is_empty() && whole == bytes.as_slice());
            assert_eq!(number, field.number());
            let got = match read(&field.kind(), encoded).expect("fits its kind") {
                Read::Value(v) => v,
                Read::Str(s) => Value::String(s.to_owned()),
                Read::Message(_) => unreachable!("no message here"),
            };
            assert_eq!(got, *decoded.get_field(&field), "{name}: {value:?}");
        }
        let mut nested = DynamicMessage::new(all.clone());
        nested.set_field_by_name("q", Value::Message(DynamicMessage::new(all.clone())));
        let bytes = nested.encode_to_vec();
        let (_, encoded, _) = next_field(&mut bytes.as_slice()).unwrap();
        assert_eq!(
            read(&all.get_field_by_name("q").unwrap().kind(), encoded),
            Some(Read::Message(&[]))
        );

        // A wire type that does not fit the kind, and a string that is not UTF-8, are not guessed.
        let kind = |name: &str| all.get_field_by_name(name).unwrap().kind();
        assert_eq!(read(&kind("a"), Encoded::Len(b"x")), None);
        assert_eq!(read(&kind("n"), Encoded::Varint(1)), None);
        assert_eq!(read(&kind("n"), Encoded::Len(&[0xff, 0xfe])), None);
        assert_eq!(read(&kind("l"), Encoded::Fixed64(0)), None);
        assert_eq!(
            next_field(&mut [0x08u8].as_slice()),
            None,
            "a key without its value"
        );
    }

    #[test]
    fn a_list_set_aside_leaves_the_rest_to_decode() {
        let pool = pool();
        let desc = pool
            .get_message_by_name("patto.culture.v1.ListEventsResponse")
            .unwrap();
        let list = desc.fields().find(|f| f.is_list()).unwrap();
        let info = desc.fields().find(|f| !f.is_list()).unwrap();
        let event = list.kind().as_message().unwrap().clone();
        let mut response = DynamicMessage::new(desc.clone());
        let events: Vec<Value> = (0..3)
            .map(|i| {
                let mut e = DynamicMessage::new(event.clone());
                e.set_field_by_name("id", Value::String(format!("evt-{i}")));
                Value::Message(e)
            })
            .collect();
        response.set_field(&list, Value::List(events.clone()));
        let mut page = DynamicMessage::new(info.kind().as_message().unwrap().clone());
        page.set_field_by_name("total_count", Value::I64(3));
        response.set_field(&info, Value::Message(page));
        let bytes = Bytes::from(response.encode_to_vec());

        let raw = RawList::new(list.number());
        assert_eq!(raw.take(), None, "nothing before a decode");
        let rest = raw.split(&bytes).expect("well formed");
        let decoded = DynamicMessage::decode(desc.clone(), rest.as_slice()).unwrap();
        assert_eq!(decoded.get_field(&info), response.get_field(&info));
        assert!(!decoded.has_field(&list));
        let items = raw.take().expect("the items");
        let items: Vec<Value> = items
            .iter()
            .map(|b| Value::Message(DynamicMessage::decode(event.clone(), &b[..]).unwrap()))
            .collect();
        assert_eq!(items, events);
        assert!(raw.split(&bytes.slice(..bytes.len() - 1)).is_none());
    }

    #[test]
    fn the_same_field_twice_keeps_the_wider() {
        let narrow = Arc::new(WireFilter::new(vec![(1, None)]));
        let f = WireFilter::new(vec![(2, Some(narrow.clone())), (2, None), (1, None)]);
        assert_eq!(f.fields, vec![(1, None), (2, None)]);
        let g = WireFilter::new(vec![(2, Some(narrow.clone())), (2, Some(narrow.clone()))]);
        assert_eq!(g.fields, vec![(2, Some(narrow))]);
    }
}
