//! Compiled plans: the fast path for data-only queries.
//!
//! Most traffic is the same few documents reading service data: a list or a lookup, then fields of
//! the messages it returns. The GraphQL engine spends several thousand instructions per field
//! (futures, contexts, maps) to resolve such a selection, more than the backend call itself when a
//! page has a few hundred fields. A document that has already run cleanly through the engine
//! under the live schema (so it is known to be valid, within the depth and complexity limits) is
//! compiled here into a plan: which RPCs to call with which arguments, and which resolver to apply
//! to each selected field. Running a plan calls the same resolvers the engine would, in the same
//! order, and writes the JSON the engine's response serializes to, straight from their values;
//! only the engine's per-field machinery and its intermediate response tree are skipped.
//!
//! A plan covers queries whose root fields are unary RPCs and whose selections are message fields,
//! connection fields and `__typename`, fragments on those types included, without directives or
//! repeated response keys; variables are taken only when their values are plain scalars of the
//! declared type. A plan decodes only the part of each response its selection reads
//! ([`crate::wire`]), and writes a connection's items straight from their encoding when their
//! selection allows it ([`raw`]). Anything else, and any request a plan cannot finish on the happy path (a
//! failed call, an argument the service would refuse, a value the schema does not allow), goes to
//! the engine, which reports it exactly as it always has; results already fetched are handed over,
//! so no RPC is called twice.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::dynamic::{FieldValue, TypeRef};
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Value, Variables};

use prost_reflect::DynamicMessage;

use super::RootRpc;
use crate::convert::FieldOutput;
use crate::request::RequestCtx;
use crate::wire::{Decode, WireFilter};

mod raw;

/// A field's resolver, shared by the schema (engine) and by plans: from the parent's value to the
/// field's, exactly as the engine's resolver returns it (`None` reads as null).
pub(crate) type Resolve =
    Arc<dyn for<'a> Fn(&'a FieldValue<'a>) -> Option<FieldValue<'a>> + Send + Sync>;

/// Wraps a closure as a [`Resolve`], fixing its higher-ranked signature.
pub(crate) fn resolver<F>(f: F) -> Resolve
where
    F: for<'a> Fn(&'a FieldValue<'a>) -> Option<FieldValue<'a>> + Send + Sync + 'static,
{
    Arc::new(f)
}

/// What a field reads of the RPC response, so a plan decodes only that (see [`crate::wire`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// A field of the message (its [`FieldOutput`] says which).
    Field,
    /// A connection's `nodes`: its items.
    Items,
    /// A connection's `edges`: its items, through each edge's `node`.
    Edges,
    /// An edge's `node`: the item.
    Node,
    /// `pageInfo`, `totalCount` or a cursor: the response's page info, always kept.
    PageInfo,
}

/// One field of an object type that plans can resolve.
#[derive(Clone)]
struct Slot {
    resolve: Resolve,
    ty: TypeRef,
    /// For a message field: its output plan, which writes common leaves straight to JSON.
    output: Option<Arc<FieldOutput>>,
    wire: Wire,
}

/// What plans may use, recorded while composing: query fields backed by unary RPCs and the
/// resolvers of plain object fields.
#[derive(Default)]
pub(crate) struct Catalog {
    roots: HashMap<String, Arc<RootRpc>>,
    objects: HashMap<String, HashMap<String, Slot>>,
}

impl Catalog {
    /// Records a field of `type_name` resolved by `resolve`.
    pub(crate) fn field(
        &mut self,
        type_name: &str,
        field: &str,
        ty: &TypeRef,
        resolve: Resolve,
        wire: Wire,
    ) {
        self.slot(type_name, field, ty, resolve, None, wire);
    }

    /// Records a field of a message's object type: `resolve` applies `output` to the message.
    pub(crate) fn message_field(
        &mut self,
        type_name: &str,
        field: &str,
        ty: &TypeRef,
        resolve: Resolve,
        output: Arc<FieldOutput>,
    ) {
        self.slot(type_name, field, ty, resolve, Some(output), Wire::Field);
    }

    fn slot(
        &mut self,
        type_name: &str,
        field: &str,
        ty: &TypeRef,
        resolve: Resolve,
        output: Option<Arc<FieldOutput>>,
        wire: Wire,
    ) {
        self.objects
            .entry(type_name.to_owned())
            .or_default()
            .insert(
                field.to_owned(),
                Slot {
                    resolve,
                    ty: ty.clone(),
                    output,
                    wire,
                },
            );
    }

    /// Records a Query field backed by a unary RPC.
    pub(crate) fn root(&mut self, field: &str, rpc: Arc<RootRpc>) {
        self.roots.insert(field.to_owned(), rpc);
    }

    fn compile(&self, doc: &ExecutableDocument, operation: Option<&str>) -> Option<Plan> {
        let op = match (&doc.operations, operation) {
            (DocumentOperations::Single(op), _) => op,
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
            _ => return None,
        };
        let op = &op.node;
        if op.ty != OperationType::Query || !op.directives.is_empty() {
            return None;
        }
        let mut variables = Vec::new();
        for def in &op.variable_definitions {
            let def = &def.node;
            let BaseType::Named(base) = &def.var_type.node.base else {
                return None;
            };
            let kind = match base.as_str() {
                "Int" => Scalar::Int,
                "Float" => Scalar::Float,
                "String" | "ID" => Scalar::String,
                "Boolean" => Scalar::Boolean,
                _ => return None,
            };
            if !def.directives.is_empty() {
                return None;
            }
            variables.push(VariableDef {
                name: def.name.node.clone(),
                kind,
                nullable: def.var_type.node.nullable,
                default: def.default_value().cloned(),
            });
        }
        let mut roots = Vec::new();
        for (key, field) in fields(doc, "Query", &op.selection_set.node)? {
            if field.name.node == "__typename" {
                roots.push(Root::Typename(member(&key)));
                continue;
            }
            let rpc = self.roots.get(field.name.node.as_str())?.clone();
            let selection = self.selection(doc, rpc.type_name(), &field.selection_set.node)?;
            let raw =
                (rpc.shape.as_ref()).and_then(|c| raw::RawItems::compile(&c.list, &selection));
            let reading = match raw {
                Some(raw) => Reading::Raw(raw),
                None => rpc
                    .response_filter(&selection)
                    .map_or(Reading::Whole, Reading::Filter),
            };
            roots.push(Root::Rpc {
                key: member(&key),
                reading,
                rpc,
                field: Box::new(field.clone()),
                selection,
            });
        }
        Some(Plan { variables, roots })
    }

    fn selection(
        &self,
        doc: &ExecutableDocument,
        type_name: &str,
        set: &SelectionSet,
    ) -> Option<Shape> {
        let slots = self.objects.get(type_name)?;
        let mut steps = Vec::new();
        for (key, field) in fields(doc, type_name, set)? {
            if field.name.node == "__typename" {
                steps.push(Step {
                    key: member(&key),
                    what: What::Typename(serde_json::to_vec(type_name).ok()?.into()),
                });
                continue;
            }
            if !field.arguments.is_empty() {
                return None;
            }
            let slot = slots.get(field.name.node.as_str())?.clone();
            let inner = named(&slot.ty);
            let selection = if field.selection_set.node.items.is_empty() {
                if self.objects.contains_key(inner) {
                    return None;
                }
                None
            } else {
                Some(Box::new(self.selection(
                    doc,
                    inner,
                    &field.selection_set.node,
                )?))
            };
            steps.push(Step {
                key: member(&key),
                what: What::Field { slot, selection },
            });
        }
        Some(Shape { steps })
    }
}

/// The fields of a selection set on object type `type_name`, by response key, fragments on that
/// type expanded in place as the engine collects them; `None` when there are directives, a
/// fragment on another type (an interface or union: the engine decides) or a response key twice
/// (the engine merges those).
fn fields<'d>(
    doc: &'d ExecutableDocument,
    type_name: &str,
    set: &'d SelectionSet,
) -> Option<Vec<(Name, &'d async_graphql::parser::types::Field)>> {
    let mut out = Vec::new();
    collect(doc, type_name, set, &mut out)?;
    Some(out)
}

fn collect<'d>(
    doc: &'d ExecutableDocument,
    type_name: &str,
    set: &'d SelectionSet,
    out: &mut Vec<(Name, &'d async_graphql::parser::types::Field)>,
) -> Option<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let field = &field.node;
                if !field.directives.is_empty() {
                    return None;
                }
                let key = field.response_key().node.clone();
                if out.iter().any(|(k, _)| *k == key) {
                    return None;
                }
                out.push((key, field));
            }
            Selection::FragmentSpread(spread) => {
                let fragment = &doc.fragments.get(&spread.node.fragment_name.node)?.node;
                if !spread.node.directives.is_empty()
                    || !fragment.directives.is_empty()
                    || fragment.type_condition.node.on.node != type_name
                {
                    return None;
                }
                collect(doc, type_name, &fragment.selection_set.node, out)?;
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                let on_this_type = inline
                    .type_condition
                    .as_ref()
                    .is_none_or(|c| c.node.on.node == type_name);
                if !inline.directives.is_empty() || !on_this_type {
                    return None;
                }
                collect(doc, type_name, &inline.selection_set.node, out)?;
            }
        }
    }
    Some(())
}

/// The named type inside a type reference.
pub(super) fn named(ty: &TypeRef) -> &str {
    match ty {
        TypeRef::Named(n) => n,
        TypeRef::NonNull(t) | TypeRef::List(t) => named(t),
    }
}

#[derive(Clone, Copy)]
enum Scalar {
    Int,
    Float,
    String,
    Boolean,
}

struct VariableDef {
    name: Name,
    kind: Scalar,
    nullable: bool,
    default: Option<Value>,
}

/// `"key":` as JSON, escaped once when compiling.
fn member(key: &Name) -> Box<[u8]> {
    let mut out = serde_json::to_vec(key.as_str()).unwrap_or_default();
    out.push(b':');
    out.into()
}

enum Root {
    /// `__typename` of Query (its key as [`member`] gives it).
    Typename(Box<[u8]>),
    Rpc {
        key: Box<[u8]>,
        rpc: Arc<RootRpc>,
        /// The field as written: its arguments, variables substituted on each run.
        field: Box<async_graphql::parser::types::Field>,
        selection: Shape,
        reading: Reading,
    },
}

/// How a root reads its RPC's response.
enum Reading {
    /// Decoded whole.
    Whole,
    /// Decoded as far as the filter keeps (what the selection reads).
    Filter(Arc<WireFilter>),
    /// The connection's items written from the wire, the rest decoded.
    Raw(raw::RawItems),
}

impl Reading {
    /// What the decoder of one call is to do (a raw list is per call: it receives the items).
    fn decode(&self) -> Decode {
        match self {
            Reading::Whole => Decode::Whole,
            Reading::Filter(filter) => Decode::Filter(filter.clone()),
            Reading::Raw(raw) => Decode::RawList(raw.list()),
        }
    }
}

/// The selection on one object type, compiled.
pub(super) struct Shape {
    steps: Vec<Step>,
}

struct Step {
    /// The response key, as [`member`] gives it.
    key: Box<[u8]>,
    what: What,
}

enum What {
    /// `__typename`: the type's name as JSON.
    Typename(Box<[u8]>),
    Field {
        slot: Slot,
        selection: Option<Box<Shape>>,
    },
}

/// A compiled query.
pub(crate) struct Plan {
    variables: Vec<VariableDef>,
    roots: Vec<Root>,
}

impl Plan {
    /// The operation's `data` as JSON, or `None` when the engine must answer (nothing is lost:
    /// calls made are left in `rc` for it).
    pub(crate) async fn run(&self, variables: &Variables, rc: &Arc<RequestCtx>) -> Option<Vec<u8>> {
        let values = self.variables(variables)?;
        let mut requests = Vec::new();
        for root in &self.roots {
            if let Root::Rpc { rpc, field, .. } = root {
                let args: Vec<(&str, Value)> = field
                    .arguments
                    .iter()
                    .map(|(name, value)| {
                        let v = value
                            .node
                            .clone()
                            .into_const_with(|var| values.get(&var).cloned().ok_or(()))
                            .ok()?;
                        Some((name.node.as_str(), v))
                    })
                    .collect::<Option<_>>()?;
                let args: Vec<(&str, &Value)> = args.iter().map(|(k, v)| (*k, v)).collect();
                requests.push(rpc.request(&args).ok()?);
            }
        }
        // Root fields run concurrently, as in the engine.
        let calls: Vec<(&RootRpc, &Reading, Decode)> = self
            .roots
            .iter()
            .filter_map(|r| match r {
                Root::Rpc { rpc, reading, .. } => Some((&**rpc, reading, reading.decode())),
                Root::Typename(_) => None,
            })
            .collect();
        let mut fetched = futures::future::join_all(
            (calls.iter().zip(requests))
                .map(|((rpc, _, decode), request)| rpc.fetch(rc, request, decode.clone())),
        )
        .await;
        // The items each call set aside (none when its response was decoded whole).
        let items: Vec<Option<Vec<bytes::Bytes>>> = calls
            .iter()
            .map(|(_, _, decode)| match decode {
                Decode::RawList(list) => list.take(),
                _ => None,
            })
            .collect();
        if fetched.iter().any(|(f, _)| f.result.is_err()) {
            for (((f, _), items), (_, reading, _)) in fetched.iter_mut().zip(items).zip(&calls) {
                if let (Reading::Raw(raw), Some(items)) = (reading, items) {
                    raw.restore(f, items);
                }
            }
            rc.hand_over(fetched.into_iter().map(|(f, _)| f));
            return None;
        }
        let mut out = Vec::with_capacity(1024);
        out.push(b'{');
        let mut results = fetched.into_iter().zip(items);
        for (i, root) in self.roots.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match root {
                Root::Typename(key) => {
                    out.extend_from_slice(key);
                    out.extend_from_slice(b"\"Query\"");
                }
                Root::Rpc {
                    key,
                    rpc,
                    selection,
                    reading,
                    ..
                } => {
                    let ((fetched, had_after), items) = results.next()?;
                    let value = rpc.output(fetched.result.ok()?, had_after);
                    out.extend_from_slice(key);
                    let raw = match (reading, items.as_deref()) {
                        (Reading::Raw(raw), Some(items)) => Some((raw, items)),
                        _ => None,
                    };
                    // A value the schema does not allow: the engine calls again and reports it.
                    write(&mut out, &value, rpc.ty(), Some(selection), raw)?;
                }
            }
        }
        out.push(b'}');
        Some(out)
    }

    /// The variables' values, when each is present and a plain value of its declared type.
    fn variables(&self, given: &Variables) -> Option<HashMap<Name, Value>> {
        let mut out = HashMap::with_capacity(self.variables.len());
        for def in &self.variables {
            let value = given.get(&def.name).or(def.default.as_ref())?;
            let fits = match (value, def.kind) {
                (Value::Null, _) => def.nullable,
                (Value::Number(n), Scalar::Int) => {
                    n.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
                }
                (Value::Number(_), Scalar::Float) => true,
                (Value::String(_), Scalar::String) => true,
                (Value::Boolean(_), Scalar::Boolean) => true,
                _ => false,
            };
            if !fits {
                return None;
            }
            out.insert(def.name.clone(), value.clone());
        }
        Some(out)
    }
}

/// What of a message of type `desc` the selection `shape` reads: `None` for all of it.
pub(super) fn message_filter(
    desc: &prost_reflect::MessageDescriptor,
    shape: &Shape,
) -> Option<Arc<WireFilter>> {
    let mut keep = Vec::new();
    for step in &shape.steps {
        let What::Field { slot, selection } = &step.what else {
            continue;
        };
        // A field read some other way than as a field of this message: keep the message whole.
        let output = slot.output.as_ref().filter(|_| slot.wire == Wire::Field)?;
        let f = output.field();
        let inner = match (selection, f.kind()) {
            (Some(sel), prost_reflect::Kind::Message(m))
                if !f.is_map()
                    && !crate::convert::is_timestamp(&m)
                    && !crate::convert::is_wrapper(&m) =>
            {
                message_filter(&m, sel)
            }
            _ => None,
        };
        // Every member of a oneof travels together, so the last one set still wins.
        match f.containing_oneof() {
            Some(oneof) => keep.extend(oneof.fields().map(|m| {
                let inner = if m.number() == f.number() {
                    inner.clone()
                } else {
                    None
                };
                (m.number(), inner)
            })),
            None => keep.push((f.number(), inner)),
        }
    }
    let filter = WireFilter::new(keep);
    (!filter.keeps_all(desc.fields().map(|f| f.number()))).then(|| Arc::new(filter))
}

/// The filter of a connection's items for the selection of its `edges`: what their `node`s read.
pub(super) fn edges_filter(
    item: &prost_reflect::MessageDescriptor,
    edges: &Shape,
) -> Option<Arc<WireFilter>> {
    let node = edges.steps.iter().find_map(|step| match &step.what {
        What::Field { slot, selection } if slot.wire == Wire::Node => selection.as_deref(),
        _ => None,
    });
    match node {
        Some(shape) => message_filter(item, shape),
        // Only cursors: the items are still counted, but none of their fields is read.
        None => Some(Arc::new(WireFilter::new(Vec::new()))),
    }
}

/// The selected fields of an object, with what they read and their own selections.
pub(super) fn reads(shape: &Shape) -> impl Iterator<Item = (Wire, Option<&Shape>)> {
    shape.steps.iter().filter_map(|step| match &step.what {
        What::Field { slot, selection } => Some((slot.wire, selection.as_deref())),
        What::Typename(_) => None,
    })
}

/// Writes the response JSON of `value` as a field of type `ty`: the bytes `serde_json` gives for
/// the value the engine's completion builds, leaves serialized by `serde_json` itself. `None`
/// where the engine would report an error instead; `Some(true)` when the value written is null.
fn write(
    out: &mut Vec<u8>,
    value: &FieldValue<'_>,
    ty: &TypeRef,
    shape: Option<&Shape>,
    raw: Option<(&raw::RawItems, &[bytes::Bytes])>,
) -> Option<bool> {
    match ty {
        TypeRef::NonNull(inner) => match write(out, value, inner, shape, raw)? {
            true => None,
            false => Some(false),
        },
        TypeRef::List(inner) => {
            if let Some(items) = value.as_list() {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(out, item, inner, shape, None)?;
                }
                out.push(b']');
                return Some(false);
            }
            match value.as_value()? {
                Value::Null => {
                    out.extend_from_slice(b"null");
                    Some(true)
                }
                Value::List(items) => {
                    out.push(b'[');
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        write(out, &FieldValue::value(item.clone()), inner, shape, None)?;
                    }
                    out.push(b']');
                    Some(false)
                }
                _ => None,
            }
        }
        TypeRef::Named(_) => match (shape, value.as_value()) {
            (_, Some(Value::Null)) => {
                out.extend_from_slice(b"null");
                Some(true)
            }
            (None, Some(leaf)) => {
                serde_json::to_writer(&mut *out, leaf).ok()?;
                Some(false)
            }
            (None, None) => None,
            (Some(shape), _) => {
                out.push(b'{');
                for (i, step) in shape.steps.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&step.key);
                    // A connection's items set aside by the decoder, written from the wire.
                    if let Some((raw, items)) = raw
                        && let Some(nodes) = raw.nodes(i)
                    {
                        nodes.write_list(items, out)?;
                        continue;
                    }
                    match &step.what {
                        What::Typename(name) => out.extend_from_slice(name),
                        What::Field { slot, selection } => {
                            if selection.is_none()
                                && let Some(output) = &slot.output
                                && let Some(msg) = value.downcast_ref::<DynamicMessage>()
                            {
                                let start = out.len();
                                match output.write_json(msg, out) {
                                    Some(true) if matches!(slot.ty, TypeRef::NonNull(_)) => {
                                        return None;
                                    }
                                    Some(_) => continue,
                                    None => out.truncate(start),
                                }
                            }
                            let child = (slot.resolve)(value).unwrap_or(FieldValue::NULL);
                            write(out, &child, &slot.ty, selection.as_deref(), None)?;
                        }
                    }
                }
                out.push(b'}');
                Some(false)
            }
        },
    }
}

/// Most documents a gateway sees again and again; more distinct ones than this start the cache
/// over (cheap: a plan is compiled from an already parsed document).
const MAX_PLANS: usize = 512;

/// The plans of one composition, by (query text, operation name). `None` remembers a document
/// that ran cleanly but that plans do not cover.
#[derive(Default)]
pub(crate) struct Plans {
    catalog: Catalog,
    /// Read on every operation, written once per new document: readers do not wait on each other.
    known: RwLock<Documents>,
}

/// What the plans know of a request's document.
pub(crate) enum Known {
    /// It compiled to this plan.
    Plan(Arc<Plan>),
    /// It ran cleanly, but plans do not cover it.
    Engine,
    /// Not seen to run cleanly yet.
    Unknown,
}

type Documents = HashMap<String, Vec<(Option<String>, Option<Arc<Plan>>)>>;

fn entry<'k>(
    known: &'k Documents,
    request: &async_graphql::Request,
) -> Option<&'k Option<Arc<Plan>>> {
    known
        .get(request.query.as_str())?
        .iter()
        .find(|(op, _)| *op == request.operation_name)
        .map(|(_, plan)| plan)
}

impl Plans {
    pub(crate) fn new(catalog: Catalog) -> Self {
        Self {
            catalog,
            known: RwLock::default(),
        }
    }

    /// What is known of this request's document.
    pub(crate) fn lookup(&self, request: &async_graphql::Request) -> Known {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        match entry(&known, request) {
            Some(Some(plan)) => Known::Plan(plan.clone()),
            Some(None) => Known::Engine,
            None => Known::Unknown,
        }
    }

    /// A plan for `doc`, to keep once the engine has run it cleanly ([`Plans::keep`]).
    pub(crate) fn compile(
        &self,
        doc: &ExecutableDocument,
        operation: Option<&str>,
    ) -> Option<Arc<Plan>> {
        self.catalog.compile(doc, operation).map(Arc::new)
    }

    /// Remembers what a document that ran cleanly compiled to.
    pub(crate) fn keep(&self, query: String, operation: Option<String>, plan: Option<Arc<Plan>>) {
        if query.len() > crate::request::MAX_CACHED_QUERY {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_PLANS {
            known.clear();
        }
        let ops = known.entry(query).or_default();
        ops.retain(|(op, _)| *op != operation);
        ops.push((operation, plan));
    }
}
