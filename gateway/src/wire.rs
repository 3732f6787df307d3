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

use std::sync::Arc;

use prost::encoding::{decode_varint, encode_varint};

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
            let field_start = input;
            let key = decode_varint(&mut input).ok()?;
            let number = u32::try_from(key >> 3).ok()?;
            let body = match key & 7 {
                0 => {
                    decode_varint(&mut input).ok()?;
                    None
                }
                1 => {
                    input = input.get(8..)?;
                    None
                }
                2 => {
                    let len = usize::try_from(decode_varint(&mut input).ok()?).ok()?;
                    let body = input.get(..len)?;
                    input = &input[len..];
                    Some(body)
                }
                5 => {
                    input = input.get(4..)?;
                    None
                }
                // Groups are not proto3; let the full decode judge them.
                _ => return None,
            };
            let whole = &field_start[..field_start.len() - input.len()];
            match (self.get(number), body) {
                (None, _) => {}
                (Some(Some(inner)), Some(body)) => {
                    let mut kept = Vec::with_capacity(body.len());
                    inner.apply(body, &mut kept)?;
                    encode_varint(key, out);
                    encode_varint(kept.len() as u64, out);
                    out.extend_from_slice(&kept);
                }
                (Some(_), _) => out.extend_from_slice(whole),
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage, Value};

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
    fn the_same_field_twice_keeps_the_wider() {
        let narrow = Arc::new(WireFilter::new(vec![(1, None)]));
        let f = WireFilter::new(vec![(2, Some(narrow.clone())), (2, None), (1, None)]);
        assert_eq!(f.fields, vec![(1, None), (2, None)]);
        let g = WireFilter::new(vec![(2, Some(narrow.clone())), (2, Some(narrow.clone()))]);
        assert_eq!(g.fields, vec![(2, Some(narrow))]);
    }
}
