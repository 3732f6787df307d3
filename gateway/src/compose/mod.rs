//! Composition: one GraphQL schema from the services' protobuf descriptors, with no network.
//!
//! Rules (each tested in `tests`):
//! - messages → object types (output) and `…Input` types (input); nested messages are named by
//!   their path (`Permit.Attachment` → `PermitAttachment`);
//! - snake_case fields → camelCase; proto comments → descriptions;
//! - enums keep their name, drop their value prefix and hide the `_UNSPECIFIED` zero value (a zero
//!   value reads as null);
//! - `oneof` members are nullable; in input, setting more than one is BAD_USER_INPUT;
//! - maps → lists of `{key, value}` entry objects;
//! - int64/uint64 → `Long` (a string, so no precision is lost), bytes → `Base64`, Timestamp →
//!   `DateTime`, wrappers and `optional` → nullable scalars, repeated → lists;
//! - a List RPC taking `patto.common.v1.PageRequest` and returning one repeated field plus
//!   `patto.common.v1.PageInfo` → a Relay connection (`edges`, `nodes`, `pageInfo`, `totalCount`)
//!   with `first`/`after` arguments;
//! - the `operation` option puts an RPC under Query, Mutation or Subscription;
//! - `lookup` RPCs resolve entities; `ref` fields add the referenced entity next to the key;
//!   `extends` RPCs add fields to `Citizen`, `Municipality` or an entity, batched per request;
//! - the same GraphQL name for two different proto types, or two definitions of one proto type,
//!   is a composition error naming both sources, never a silent overwrite.

mod audit;
pub mod comments;
mod guard;
pub mod names;
pub mod options;
pub(crate) mod plan;
mod roots;
mod scalars;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_graphql::dynamic::{
    Enum, EnumItem, Field, FieldFuture, FieldValue, InputObject, InputValue, Object,
    ResolverContext, Schema, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use futures::StreamExt;
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor,
};

use crate::convert;
use crate::errors;
use crate::request::{BatchSpec, RequestCtx};
use crate::transport::Invoker;
use crate::wire::WireFilter;
use comments::Comments;

pub use audit::AUDIT_SERVICE;
pub use roots::{CitizenValue, INDICATORS_SERVICE};

/// Deepest selection a document may nest (GraphiQL's introspection query needs 13).
pub const MAX_DEPTH: usize = 15;
/// Most fields a document may select, counted statically.
pub const MAX_COMPLEXITY: usize = 5_000;
/// Most directives on one field.
pub const MAX_DIRECTIVES: usize = 10;

/// Where a service's descriptors came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the running service through gRPC reflection.
    Reflection,
    /// The descriptor set compiled into the gateway (the service was unreachable).
    Embedded,
}

/// The descriptors of one service.
#[derive(Debug, Clone)]
pub struct Source {
    /// Short name, e.g. `culture`; its contract is the package `patto.<name>.v1`.
    pub service: String,
    /// Its descriptors and their imports.
    pub pool: DescriptorPool,
    /// Where they came from.
    pub origin: Origin,
}

impl Source {
    /// The services of this source's theme package.
    fn theme_services(&self) -> impl Iterator<Item = prost_reflect::ServiceDescriptor> + '_ {
        let package = format!("patto.{}.v1", self.service);
        self.pool
            .services()
            .filter(move |s| s.package_name() == package)
    }
}

/// A composed schema.
pub struct Composition {
    /// The executable schema.
    pub schema: Schema,
    /// Each service and where its descriptors came from.
    pub services: Vec<(String, Origin)>,
    /// Compiled plans of the documents seen, valid for this schema only.
    pub(crate) plans: plan::Plans,
}

impl Composition {
    /// The schema's SDL, fields and enum values sorted: what the golden file holds.
    pub fn sdl(&self) -> String {
        self.schema.sdl_with_options(
            async_graphql::SDLExportOptions::new()
                .sorted_fields()
                .sorted_enum_items(),
        )
    }
}

/// Why descriptors cannot be composed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    /// Two proto types want the same GraphQL name.
    #[error(
        "GraphQL type `{name}` is claimed by {first} and by {second}; rename one of the messages"
    )]
    TypeClash {
        /// The GraphQL name.
        name: String,
        /// First claimant (`service: proto type`).
        first: String,
        /// Second claimant.
        second: String,
    },
    /// Two RPCs want the same root field or the same field on a type.
    #[error(
        "field `{type_name}.{field}` is defined by {first} and by {second}; rename one in its `operation`/`extends` option"
    )]
    FieldClash {
        /// The type.
        type_name: String,
        /// The field.
        field: String,
        /// First definer.
        first: String,
        /// Second definer.
        second: String,
    },
    /// A lookup or extends RPC breaks the batch contract.
    #[error("{rpc} breaks the batch contract: {reason}")]
    BatchShape {
        /// The RPC.
        rpc: String,
        /// What is wrong.
        reason: String,
    },
    /// A `ref` points at an entity nobody can look up.
    #[error("{owner}.{field} refers to {entity}, but no service has a `lookup` RPC for it")]
    Reference {
        /// The message holding the ref.
        owner: String,
        /// The ref field.
        field: String,
        /// The entity.
        entity: String,
    },
    /// An `extends` RPC names a type that does not exist.
    #[error("{rpc} extends `{target}`, which is neither Citizen, Municipality nor an entity type")]
    ExtensionTarget {
        /// The RPC.
        rpc: String,
        /// The named type.
        target: String,
    },
    /// async-graphql refused the result.
    #[error("invalid schema: {0}")]
    Schema(String),
}

/// Composes `sources` into one schema whose resolvers call the services through `invoker`.
pub fn compose(sources: &[Source], invoker: Arc<dyn Invoker>) -> Result<Composition, ComposeError> {
    let mut b = Builder::new(invoker.clone());
    for source in sources {
        b.source(source)?;
    }
    b.finish(sources)
}

struct ObjectDef {
    description: Option<String>,
    fields: BTreeMap<String, (Field, String)>,
}

/// The parent value of a connection's fields. The items are moved out of the response, never
/// copied: `nodes`, `edges` and `node` borrow them.
struct Connection {
    edges: Vec<Edge>,
    end_cursor: String,
    has_next: bool,
    has_previous: bool,
    total: i64,
}

/// The parent value of an edge's fields.
struct Edge {
    node: DynamicMessage,
    /// Services page forward from the end of a page: only the last edge carries a cursor.
    cursor: Option<String>,
}

struct LookupPlan {
    service: Arc<str>,
    method: MethodDescriptor,
    entity_field: FieldDescriptor,
    retryable: bool,
}

struct PendingRef {
    owner: String,
    owner_proto: String,
    key_field: FieldDescriptor,
    entity: String,
    field: String,
    source: String,
}

struct PendingExtension {
    target: String,
    field: String,
    method: MethodDescriptor,
    service: Arc<str>,
    description: Option<String>,
}

pub(crate) struct Builder {
    invoker: Arc<dyn Invoker>,
    /// GraphQL name → (claimant, encoded descriptor) for clash detection.
    claims: HashMap<String, (String, Vec<u8>)>,
    objects: BTreeMap<String, ObjectDef>,
    inputs: BTreeMap<String, InputObject>,
    enums: BTreeMap<String, Enum>,
    query: BTreeMap<String, (Field, String)>,
    mutation: BTreeMap<String, (Field, String)>,
    subscription: BTreeMap<String, (SubscriptionField, String)>,
    lookups: HashMap<String, LookupPlan>,
    refs: Vec<PendingRef>,
    extensions: Vec<PendingExtension>,
    comments: Comments,
    /// What compiled plans may use.
    catalog: plan::Catalog,
}

fn encoded(m: &impl Message) -> Vec<u8> {
    m.encode_to_vec()
}

fn request_ctx(ctx: &ResolverContext<'_>) -> Arc<RequestCtx> {
    ctx.data_opt::<Arc<RequestCtx>>()
        .cloned()
        .unwrap_or_else(|| RequestCtx::new(None, Vec::new()))
}

/// Turns a resolver's error into `null` plus an error carrying the field's path, as the GraphQL
/// spec asks for nullable fields (the dynamic schema would drop the field instead), so one failing
/// service nulls only its own fields.
pub(crate) fn recover<'a>(
    ctx: &ResolverContext<'a>,
    result: async_graphql::Result<Option<FieldValue<'a>>>,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    Ok(result.unwrap_or_else(|e| {
        ctx.add_error(ctx.set_error_path(e.into_server_error(ctx.item.pos)));
        None
    }))
}

fn nullable(t: TypeRef) -> TypeRef {
    match t {
        TypeRef::NonNull(inner) => *inner,
        other => other,
    }
}

impl Builder {
    fn new(invoker: Arc<dyn Invoker>) -> Self {
        let mut b = Self {
            invoker,
            claims: HashMap::new(),
            objects: BTreeMap::new(),
            inputs: BTreeMap::new(),
            enums: BTreeMap::new(),
            query: BTreeMap::new(),
            mutation: BTreeMap::new(),
            subscription: BTreeMap::new(),
            lookups: HashMap::new(),
            refs: Vec::new(),
            extensions: Vec::new(),
            comments: Comments::default(),
            catalog: plan::Catalog::default(),
        };
        for reserved in roots::RESERVED_TYPES {
            b.claims.insert(
                (*reserved).to_owned(),
                (format!("gateway: {reserved}"), Vec::new()),
            );
        }
        b
    }

    /// Claims a GraphQL name for a proto type; `Ok(true)` when the same type already holds it.
    fn claim(
        &mut self,
        name: &str,
        claimant: String,
        descriptor: Vec<u8>,
    ) -> Result<bool, ComposeError> {
        match self.claims.get(name) {
            None => {
                self.claims.insert(name.to_owned(), (claimant, descriptor));
                Ok(false)
            }
            Some((first, bytes)) => {
                let same_type = first.split_once(": ").map(|(_, t)| t)
                    == claimant.split_once(": ").map(|(_, t)| t);
                if same_type && *bytes == descriptor {
                    Ok(true)
                } else {
                    Err(ComposeError::TypeClash {
                        name: name.to_owned(),
                        first: first.clone(),
                        second: claimant,
                    })
                }
            }
        }
    }

    fn source(&mut self, source: &Source) -> Result<(), ComposeError> {
        self.comments = Comments::of(&source.pool);
        let service: Arc<str> = source.service.as_str().into();
        // Lookups first, so refs in any message can find them.
        for svc in source.theme_services() {
            for method in svc.methods() {
                if let Some(entity) = options::lookup(&method) {
                    let plan = self.lookup_plan(&service, &method, &entity)?;
                    self.lookups.insert(entity, plan);
                }
            }
        }
        for svc in source.theme_services() {
            for method in svc.methods() {
                if let Some((target, field)) = options::extends(&method) {
                    check_batch_shape(&method, None)?;
                    self.extensions.push(PendingExtension {
                        target,
                        field,
                        description: self.describe(&method.parent_file(), method.path()),
                        method: method.clone(),
                        service: service.clone(),
                    });
                }
                if let Some(op) = options::operation(&method) {
                    self.operation(&service, &method, op)?;
                }
            }
        }
        Ok(())
    }

    fn describe(&self, file: &prost_reflect::FileDescriptor, path: &[i32]) -> Option<String> {
        self.comments.get(file, path).map(str::to_owned)
    }

    fn lookup_plan(
        &self,
        service: &Arc<str>,
        method: &MethodDescriptor,
        entity: &str,
    ) -> Result<LookupPlan, ComposeError> {
        let item = check_batch_shape(method, Some(entity))?;
        let entity_field = item
            .fields()
            .find(|f| {
                f.kind()
                    .as_message()
                    .is_some_and(|m| m.full_name() == entity)
            })
            .ok_or_else(|| ComposeError::BatchShape {
                rpc: method.full_name().to_owned(),
                reason: format!("its items hold no `{entity}` field"),
            })?;
        Ok(LookupPlan {
            service: service.clone(),
            method: method.clone(),
            entity_field,
            retryable: options::no_side_effects(method),
        })
    }

    // -------------------------------------------------------------------------------------
    // Types

    fn named_output(&mut self, kind: &Kind, source: &str) -> Result<String, ComposeError> {
        Ok(match kind {
            Kind::Bool => "Boolean".into(),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 | Kind::Uint32 | Kind::Fixed32 => {
                "Int".into()
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
                scalars::LONG.into()
            }
            Kind::Float | Kind::Double => "Float".into(),
            Kind::String => "String".into(),
            Kind::Bytes => scalars::BASE64.into(),
            Kind::Enum(e) => self.ensure_enum(e, source)?,
            Kind::Message(m) if convert::is_timestamp(m) => scalars::DATETIME.into(),
            Kind::Message(m) if convert::is_wrapper(m) => match m.get_field_by_name("value") {
                Some(inner) => self.named_output(&inner.kind(), source)?,
                None => "String".into(),
            },
            Kind::Message(m) => self.ensure_object(m, source)?,
        })
    }

    fn output_ref(&mut self, f: &FieldDescriptor, source: &str) -> Result<TypeRef, ComposeError> {
        if f.is_map() {
            let entry = f
                .kind()
                .as_message()
                .cloned()
                .ok_or_else(|| ComposeError::Schema("map without entry".into()))?;
            let name = self.ensure_object(&entry, source)?;
            return Ok(TypeRef::named_nn_list_nn(name));
        }
        let name = self.named_output(&f.kind(), source)?;
        if f.is_list() {
            return Ok(TypeRef::named_nn_list_nn(name));
        }
        let always_set = !f.supports_presence()
            && !matches!(f.kind(), Kind::Enum(_) | Kind::Message(_))
            && f.containing_oneof().is_none();
        Ok(if always_set {
            TypeRef::named_nn(name)
        } else {
            TypeRef::named(name)
        })
    }

    fn input_ref(&mut self, f: &FieldDescriptor, source: &str) -> Result<TypeRef, ComposeError> {
        let named = |b: &mut Self, kind: &Kind| -> Result<String, ComposeError> {
            Ok(match kind {
                Kind::Message(m) if !convert::is_timestamp(m) && !convert::is_wrapper(m) => {
                    b.ensure_input(m, source)?
                }
                other => b.named_output(other, source)?,
            })
        };
        if f.is_map() {
            let entry = f
                .kind()
                .as_message()
                .cloned()
                .ok_or_else(|| ComposeError::Schema("map without entry".into()))?;
            return Ok(TypeRef::named_nn_list(self.ensure_input(&entry, source)?));
        }
        let name = named(self, &f.kind())?;
        Ok(if f.is_list() {
            TypeRef::named_nn_list(name)
        } else {
            TypeRef::named(name)
        })
    }

    fn ensure_enum(&mut self, e: &EnumDescriptor, source: &str) -> Result<String, ComposeError> {
        let name = names::enum_type(e);
        if self.claim(
            &name,
            format!("{source}: {}", e.full_name()),
            encoded(e.enum_descriptor_proto()),
        )? {
            return Ok(name);
        }
        let mut en = Enum::new(name.clone());
        if let Some(d) = self.describe(&e.parent_file(), e.path()) {
            en = en.description(d);
        }
        for v in e.values().filter(|v| !names::is_unspecified(v)) {
            let mut item = EnumItem::new(names::enum_value(e, &v));
            if let Some(d) = self.describe(&e.parent_file(), v.path()) {
                item = item.description(d);
            }
            en = en.item(item);
        }
        self.enums.insert(name.clone(), en);
        Ok(name)
    }

    fn ensure_object(
        &mut self,
        m: &MessageDescriptor,
        source: &str,
    ) -> Result<String, ComposeError> {
        let name = names::message_type(m);
        if self.claim(
            &name,
            format!("{source}: {}", m.full_name()),
            encoded(m.descriptor_proto()),
        )? {
            return Ok(name);
        }
        // Registered before its fields, so recursive messages terminate.
        let description = self.describe(&m.parent_file(), m.path());
        self.objects.insert(
            name.clone(),
            ObjectDef {
                description,
                fields: BTreeMap::new(),
            },
        );
        for f in m.fields() {
            let ty = self.output_ref(&f, source)?;
            let output = Arc::new(convert::FieldOutput::new(&f));
            let plan_output = output.clone();
            let resolve = plan::resolver(move |parent| {
                parent
                    .downcast_ref::<DynamicMessage>()
                    .map(|msg| output.output(msg))
            });
            self.catalog.message_field(
                &name,
                &names::camel(f.name()),
                &ty,
                resolve.clone(),
                plan_output,
            );
            let mut field = sync_field(names::camel(f.name()), ty, resolve);
            if let Some(d) = self.describe(&m.parent_file(), f.path()) {
                field = field.description(d);
            }
            self.add_field(&name, names::camel(f.name()), field, source)?;
            if let Some((entity, ref_field)) = options::reference(&f) {
                self.refs.push(PendingRef {
                    owner: name.clone(),
                    owner_proto: m.full_name().to_owned(),
                    key_field: f.clone(),
                    entity,
                    field: ref_field,
                    source: source.to_owned(),
                });
            }
        }
        Ok(name)
    }

    fn add_field(
        &mut self,
        type_name: &str,
        field: String,
        def: Field,
        owner: &str,
    ) -> Result<(), ComposeError> {
        let obj = self
            .objects
            .get_mut(type_name)
            .ok_or_else(|| ComposeError::Schema(format!("no type {type_name}")))?;
        if let Some((_, first)) = obj.fields.get(&field) {
            return Err(ComposeError::FieldClash {
                type_name: type_name.to_owned(),
                field,
                first: first.clone(),
                second: owner.to_owned(),
            });
        }
        obj.fields.insert(field, (def, owner.to_owned()));
        Ok(())
    }

    fn ensure_input(
        &mut self,
        m: &MessageDescriptor,
        source: &str,
    ) -> Result<String, ComposeError> {
        let name = format!("{}Input", names::message_type(m));
        if self.claim(
            &name,
            format!("{source}: {} (input)", m.full_name()),
            encoded(m.descriptor_proto()),
        )? {
            return Ok(name);
        }
        self.inputs
            .insert(name.clone(), InputObject::new(name.clone()));
        let mut input = InputObject::new(name.clone());
        if let Some(d) = self.describe(&m.parent_file(), m.path()) {
            input = input.description(d);
        }
        for f in m.fields() {
            let mut iv = InputValue::new(names::camel(f.name()), self.input_ref(&f, source)?);
            if let Some(d) = self.describe(&m.parent_file(), f.path()) {
                iv = iv.description(d);
            }
            input = input.field(iv);
        }
        self.inputs.insert(name.clone(), input);
        Ok(name)
    }

    // -------------------------------------------------------------------------------------
    // Operations

    fn arguments(
        &mut self,
        request: &MessageDescriptor,
        skip: &[&str],
        source: &str,
    ) -> Result<Vec<InputValue>, ComposeError> {
        let mut args = Vec::new();
        for f in request.fields().filter(|f| !skip.contains(&f.name())) {
            let mut iv = InputValue::new(names::camel(f.name()), self.input_ref(&f, source)?);
            if let Some(d) = self.describe(&request.parent_file(), f.path()) {
                iv = iv.description(d);
            }
            args.push(iv);
        }
        Ok(args)
    }

    fn operation(
        &mut self,
        service: &Arc<str>,
        method: &MethodDescriptor,
        op: options::Operation,
    ) -> Result<(), ComposeError> {
        let owner = format!("{service}: {}", method.full_name());
        let description = self.describe(&method.parent_file(), method.path());
        let retryable = options::no_side_effects(method);
        let input = method.input();

        if op.kind == options::Kind::Subscription {
            let ty = self.ensure_object(&method.output(), service)?;
            let args = self.arguments(&input, &[], service)?;
            let (invoker, service_c, method_c) =
                (self.invoker.clone(), service.clone(), method.clone());
            let mut field =
                SubscriptionField::new(op.name.clone(), TypeRef::named_nn(ty), move |ctx| {
                    let (invoker, service, method) =
                        (invoker.clone(), service_c.clone(), method_c.clone());
                    SubscriptionFieldFuture::new(async move {
                        let rc = request_ctx(&ctx);
                        let request = convert::message_input(
                            &method.input(),
                            ctx.args.iter().map(|(k, v)| (k.as_str(), v.as_value())),
                            &[],
                        )
                        .map_err(|e| errors::from_input(&e))?;
                        rc.count_call(&service);
                        let stream = invoker
                            .server_streaming(rc.call(service, method, request, false))
                            .await
                            .map_err(|e| errors::from_call(&e))?;
                        Ok(stream.map(|item| {
                            item.map(FieldValue::owned_any)
                                .map_err(|e| errors::from_call(&e))
                        }))
                    })
                });
            for a in args {
                field = field.argument(a);
            }
            if let Some(d) = description {
                field = field.description(d);
            }
            if let Some((_, first)) = self.subscription.get(&op.name) {
                return Err(ComposeError::FieldClash {
                    type_name: "Subscription".into(),
                    field: op.name,
                    first: first.clone(),
                    second: owner,
                });
            }
            self.subscription.insert(op.name, (field, owner));
            return Ok(());
        }

        let connection = connection_shape(method);
        let (ty, args) = match &connection {
            Some(shape) => {
                let item = shape
                    .list
                    .kind()
                    .as_message()
                    .cloned()
                    .ok_or_else(|| ComposeError::Schema("connection item".into()))?;
                let item_name = self.ensure_object(&item, service)?;
                let conn = self.ensure_connection(&item_name);
                let mut args = self.arguments(&input, &[shape.page.name()], service)?;
                args.push(
                    InputValue::new("first", TypeRef::named(TypeRef::INT))
                        .description("Items to return, 1 to 100 (default 20)."),
                );
                args.push(
                    InputValue::new("after", TypeRef::named(TypeRef::STRING)).description(
                        "Return items after this cursor: a previous page's `pageInfo.endCursor`.",
                    ),
                );
                (TypeRef::named(conn), args)
            }
            None => (
                TypeRef::named(self.ensure_object(&method.output(), service)?),
                self.arguments(&input, &[], service)?,
            ),
        };
        let is_mutation = matches!(op.kind, options::Kind::Mutation);
        let rpc = Arc::new(RootRpc {
            invoker: self.invoker.clone(),
            service: service.clone(),
            method: method.clone(),
            retryable,
            shape: connection.clone(),
            ty: ty.clone(),
        });
        if matches!(op.kind, options::Kind::Query) {
            self.catalog.root(&op.name, rpc.clone());
        }
        let mut field = Field::new(op.name.clone(), ty, move |ctx| {
            let rpc = rpc.clone();
            FieldFuture::new(async move {
                let result = async {
                    if is_mutation {
                        guard::mutation(&guard::principal(&ctx))?;
                    }
                    let rc = request_ctx(&ctx);
                    let args: Vec<(&str, &async_graphql::Value)> = ctx
                        .args
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_value()))
                        .collect();
                    let prepared = rpc.request(&args)?;
                    let had_after = prepared.had_after;
                    let response = rc
                        .unary(&rpc.invoker, rpc.call(&rc, prepared.request))
                        .await
                        .map_err(|e| errors::from_call(&e))?;
                    Ok(Some(rpc.output(response, had_after)))
                }
                .await;
                recover(&ctx, result)
            })
        });
        for a in args {
            field = field.argument(a);
        }
        if let Some(d) = description {
            field = field.description(d);
        }
        let (root, root_name) = match op.kind {
            options::Kind::Mutation => (&mut self.mutation, "Mutation"),
            _ => (&mut self.query, "Query"),
        };
        if let Some((_, first)) = root.get(&op.name) {
            return Err(ComposeError::FieldClash {
                type_name: root_name.into(),
                field: op.name,
                first: first.clone(),
                second: owner,
            });
        }
        root.insert(op.name, (field, owner));
        Ok(())
    }

    fn ensure_connection(&mut self, item: &str) -> String {
        let conn = format!("{item}Connection");
        let edge = format!("{item}Edge");
        if self.objects.contains_key(&conn) {
            return conn;
        }
        let item_s = item.to_owned();
        let mut edge_fields = BTreeMap::new();
        let mut gateway_field = |fields: &mut BTreeMap<String, (Field, String)>,
                                 owner: &str,
                                 name: &str,
                                 ty: TypeRef,
                                 description: &str,
                                 resolve: plan::Resolve| {
            // What each connection field reads of the RPC's response, for selective decoding.
            let wire = match name {
                "nodes" => plan::Wire::Items,
                "edges" => plan::Wire::Edges,
                "node" => plan::Wire::Node,
                _ => plan::Wire::PageInfo,
            };
            self.catalog.field(owner, name, &ty, resolve.clone(), wire);
            fields.insert(
                name.to_owned(),
                (
                    sync_field(name, ty, resolve).description(description),
                    "gateway".to_owned(),
                ),
            );
        };
        gateway_field(
            &mut edge_fields,
            &edge,
            "node",
            TypeRef::named_nn(item_s.clone()),
            "The item.",
            plan::resolver(|parent| {
                parent
                    .downcast_ref::<Edge>()
                    .map(|e| FieldValue::borrowed_any(&e.node))
            }),
        );
        gateway_field(
            &mut edge_fields,
            &edge,
            "cursor",
            TypeRef::named(TypeRef::STRING),
            "Cursor to pass as `after` to continue after this item; services page forward from the end of a page, so only the last edge of a page carries one.",
            plan::resolver(|parent| {
                parent
                    .downcast_ref::<Edge>()
                    .and_then(|e| e.cursor.clone())
                    .map(|c| FieldValue::value(async_graphql::Value::String(c)))
            }),
        );
        let mut fields = BTreeMap::new();
        gateway_field(
            &mut fields,
            &conn,
            "edges",
            TypeRef::named_nn_list_nn(edge.clone()),
            "The items of this page, with cursors.",
            plan::resolver(|parent| {
                parent
                    .downcast_ref::<Connection>()
                    .map(|c| FieldValue::list(c.edges.iter().map(|e| FieldValue::borrowed_any(e))))
            }),
        );
        gateway_field(
            &mut fields,
            &conn,
            "nodes",
            TypeRef::named_nn_list_nn(item_s),
            "The items of this page.",
            plan::resolver(|parent| {
                parent.downcast_ref::<Connection>().map(|c| {
                    FieldValue::list(c.edges.iter().map(|e| FieldValue::borrowed_any(&e.node)))
                })
            }),
        );
        gateway_field(
            &mut fields,
            &conn,
            "pageInfo",
            TypeRef::named_nn(roots::PAGE_INFO),
            "Where this page sits in the list.",
            plan::resolver(|parent| {
                parent.downcast_ref::<Connection>().map(|c| {
                    FieldValue::value(roots::page_info_value(
                        &c.end_cursor,
                        c.has_next,
                        c.has_previous,
                    ))
                })
            }),
        );
        gateway_field(
            &mut fields,
            &conn,
            "totalCount",
            TypeRef::named_nn(TypeRef::INT),
            "Number of items in the whole list.",
            plan::resolver(|parent| {
                parent.downcast_ref::<Connection>().map(|c| {
                    FieldValue::value(async_graphql::Value::from(
                        c.total.clamp(0, i64::from(i32::MAX)),
                    ))
                })
            }),
        );
        self.objects.insert(
            edge.clone(),
            ObjectDef {
                description: Some(format!("An edge of a `{conn}`.")),
                fields: edge_fields,
            },
        );
        self.objects.insert(
            conn.clone(),
            ObjectDef {
                description: Some(format!("A page of `{item}` items (Relay connection).")),
                fields,
            },
        );
        conn
    }

    // -------------------------------------------------------------------------------------
    // Joins

    fn resolve_refs(&mut self) -> Result<(), ComposeError> {
        for r in std::mem::take(&mut self.refs) {
            // The referenced entity may not be reachable any other way: make sure its type exists.
            if let Some(plan) = self.lookups.get(&r.entity)
                && let Some(entity) = plan.entity_field.kind().as_message().cloned()
            {
                let service = plan.service.to_string();
                self.ensure_object(&entity, &service)?;
            }
            let plan = self
                .lookups
                .get(&r.entity)
                .ok_or_else(|| ComposeError::Reference {
                    owner: r.owner_proto.clone(),
                    field: r.key_field.name().to_owned(),
                    entity: r.entity.clone(),
                })?;
            let entity_type = names::message_type(
                &plan
                    .entity_field
                    .kind()
                    .as_message()
                    .cloned()
                    .ok_or_else(|| ComposeError::Schema("entity".into()))?,
            );
            let spec = BatchSpec::new(
                plan.service.clone(),
                plan.method.clone(),
                DynamicMessage::new(plan.method.input()),
                plan.retryable,
            );
            let (entity_field, key_field, invoker) = (
                plan.entity_field.clone(),
                r.key_field.clone(),
                self.invoker.clone(),
            );
            let list = key_field.is_list();
            let ty = if list {
                TypeRef::named_nn_list(entity_type.clone())
            } else {
                TypeRef::named(entity_type.clone())
            };
            let field = Field::new(r.field.clone(), ty, move |ctx| {
                let (spec, entity_field, key_field, invoker) = (
                    spec.clone(),
                    entity_field.clone(),
                    key_field.clone(),
                    invoker.clone(),
                );
                FieldFuture::new(async move {
                    let result = async {
                        let Some(parent) = ctx.parent_value.downcast_ref::<DynamicMessage>() else {
                            return Ok(None);
                        };
                        let keys: Vec<String> = match parent.get_field(&key_field).as_ref() {
                            prost_reflect::Value::String(s) => vec![s.clone()],
                            prost_reflect::Value::List(l) => l
                                .iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect(),
                            _ => Vec::new(),
                        };
                        let rc = request_ctx(&ctx);
                        let loads = keys.into_iter().filter(|k| !k.is_empty()).map(|k| {
                            let (rc, spec, invoker) = (rc.clone(), spec.clone(), invoker.clone());
                            async move { rc.load(&invoker, &spec, k).await }
                        });
                        let found = futures::future::try_join_all(loads)
                            .await
                            .map_err(|e| errors::from_call(&e))?;
                        let entities: Vec<FieldValue<'static>> = found
                            .into_iter()
                            .flatten()
                            .filter_map(|mut item| {
                                // Moved out of the item (a copy of the batch's), not copied again.
                                let entity = item
                                    .take_field(&entity_field)
                                    .unwrap_or_else(|| entity_field.default_value());
                                match entity {
                                    prost_reflect::Value::Message(m) => {
                                        Some(FieldValue::owned_any(m))
                                    }
                                    _ => None,
                                }
                            })
                            .collect();
                        Ok(if list {
                            Some(FieldValue::list(entities))
                        } else {
                            entities.into_iter().next()
                        })
                    }
                    .await;
                    recover(&ctx, result)
                })
            })
            .description(format!(
                "The `{entity_type}` this `{}` refers to.",
                names::camel(r.key_field.name())
            ));
            self.add_field(&r.owner, r.field.clone(), field, &r.source)?;
        }
        Ok(())
    }

    fn resolve_extensions(&mut self) -> Result<(), ComposeError> {
        for ext in std::mem::take(&mut self.extensions) {
            let rpc = ext.method.full_name().to_owned();
            let key_of: roots::KeyOf = match ext.target.as_str() {
                "Citizen" => roots::KeyOf::Citizen,
                "Municipality" => roots::KeyOf::Municipality,
                other => {
                    let Some((_, plan)) = self
                        .lookups
                        .iter()
                        .find(|(full, _)| full.rsplit('.').next() == Some(other))
                    else {
                        return Err(ComposeError::ExtensionTarget {
                            rpc,
                            target: ext.target.clone(),
                        });
                    };
                    let entity = plan
                        .entity_field
                        .kind()
                        .as_message()
                        .cloned()
                        .ok_or_else(|| ComposeError::Schema("entity".into()))?;
                    self.ensure_object(&entity, &ext.service)?;
                    let key = options::entity_key(&entity).unwrap_or_else(|| "id".into());
                    let key_field =
                        entity
                            .get_field_by_name(&key)
                            .ok_or_else(|| ComposeError::BatchShape {
                                rpc: rpc.clone(),
                                reason: format!(
                                    "entity {} has no key field `{key}`",
                                    entity.full_name()
                                ),
                            })?;
                    roots::KeyOf::Entity(key_field)
                }
            };
            let target_type = ext.target.clone();
            let item = ext
                .method
                .output()
                .get_field_by_name("items")
                .and_then(|f| f.kind().as_message().cloned());
            let item = item.ok_or_else(|| ComposeError::BatchShape {
                rpc: rpc.clone(),
                reason: "no `items`".into(),
            })?;
            let results: Vec<FieldDescriptor> =
                item.fields().filter(|f| f.name() != "key").collect();
            let (ty, result_field) = if results.len() == 1 {
                (
                    nullable(self.output_ref(&results[0], &ext.service)?),
                    Some(results[0].clone()),
                )
            } else {
                (
                    TypeRef::named(self.ensure_object(&item, &ext.service)?),
                    None,
                )
            };
            let args = self.arguments(&ext.method.input(), &["keys"], &ext.service)?;
            let (invoker, method, service) = (
                self.invoker.clone(),
                ext.method.clone(),
                ext.service.clone(),
            );
            let retryable = options::no_side_effects(&method);
            let empty_list = result_field
                .as_ref()
                .is_some_and(|f| f.is_list() || f.is_map());
            let mut field = Field::new(ext.field.clone(), ty, move |ctx| {
                let (invoker, method, service, key_of, result_field) = (
                    invoker.clone(),
                    method.clone(),
                    service.clone(),
                    key_of.clone(),
                    result_field.clone(),
                );
                FieldFuture::new(async move {
                    let result = async {
                        let Some(key) = key_of.key(ctx.parent_value) else {
                            return Ok(None);
                        };
                        let rc = request_ctx(&ctx);
                        let request = convert::message_input(
                            &method.input(),
                            ctx.args.iter().map(|(k, v)| (k.as_str(), v.as_value())),
                            &[],
                        )
                        .map_err(|e| errors::from_input(&e))?;
                        let spec = BatchSpec::new(service, method, request, retryable);
                        let item = rc
                            .load(&invoker, &spec, key)
                            .await
                            .map_err(|e| errors::from_call(&e))?;
                        Ok(match (item, &result_field) {
                            (Some(item), Some(f)) => Some(convert::field_output_owned(item, f)),
                            (Some(item), None) => Some(FieldValue::owned_any(item)),
                            (None, _) if empty_list => {
                                Some(FieldValue::list(Vec::<FieldValue<'static>>::new()))
                            }
                            (None, _) => None,
                        })
                    }
                    .await;
                    recover(&ctx, result)
                })
            });
            for a in args {
                field = field.argument(a);
            }
            if let Some(d) = ext.description {
                field = field.description(d);
            }
            self.add_field(
                &target_type,
                ext.field.clone(),
                field,
                &format!("{}: {rpc}", ext.service),
            )?;
        }
        Ok(())
    }

    fn finish(mut self, sources: &[Source]) -> Result<Composition, ComposeError> {
        roots::add(&mut self, sources)?;
        // Extensions can bring in new object types, and so new refs: resolve refs after them,
        // until no type added on the way has any left.
        self.resolve_extensions()?;
        while !self.refs.is_empty() {
            self.resolve_refs()?;
        }

        let mut query = Object::new("Query").description("Read entry points.");
        for (_, (f, _)) in std::mem::take(&mut self.query) {
            query = query.field(f);
        }
        let has_mutation = !self.mutation.is_empty();
        let has_subscription = !self.subscription.is_empty();
        let mut builder = Schema::build(
            "Query",
            has_mutation.then_some("Mutation"),
            has_subscription.then_some("Subscription"),
        )
        .register(query);
        if has_mutation {
            let mut m = Object::new("Mutation")
                .description("The online procedures and the operators' actions.");
            for (_, (f, _)) in std::mem::take(&mut self.mutation) {
                m = m.field(f);
            }
            builder = builder.register(m);
        }
        if has_subscription {
            let mut s = async_graphql::dynamic::Subscription::new("Subscription");
            for (_, (f, _)) in std::mem::take(&mut self.subscription) {
                s = s.field(f);
            }
            builder = builder.register(s);
        }
        for (name, def) in std::mem::take(&mut self.objects) {
            let mut o = Object::new(name);
            if let Some(d) = def.description {
                o = o.description(d);
            }
            for (_, (f, _)) in def.fields {
                o = o.field(f);
            }
            builder = builder.register(o);
        }
        for (_, i) in std::mem::take(&mut self.inputs) {
            builder = builder.register(i);
        }
        for (_, e) in std::mem::take(&mut self.enums) {
            builder = builder.register(e);
        }
        for s in scalars::all() {
            builder = builder.register(s);
        }
        // Abusive documents are refused at validation, before any backend call.
        let schema = builder
            .limit_depth(MAX_DEPTH)
            .limit_complexity(MAX_COMPLEXITY)
            .limit_directives(MAX_DIRECTIVES)
            .finish()
            .map_err(|e| ComposeError::Schema(e.0))?;
        Ok(Composition {
            schema,
            services: sources
                .iter()
                .map(|s| (s.service.clone(), s.origin))
                .collect(),
            plans: plan::Plans::new(std::mem::take(&mut self.catalog)),
        })
    }
}

/// A Query or Mutation field backed by a unary RPC: how the engine's resolver and compiled plans
/// build its request, call it and shape its response, so both do exactly the same.
pub(crate) struct RootRpc {
    invoker: Arc<dyn Invoker>,
    service: Arc<str>,
    method: MethodDescriptor,
    retryable: bool,
    shape: Option<ConnectionShape>,
    ty: TypeRef,
}

/// A request ready to send.
pub(crate) struct Prepared {
    request: DynamicMessage,
    /// Whether a page was asked for with `after` (a connection's `hasPreviousPage`).
    had_after: bool,
}

impl RootRpc {
    /// The GraphQL type of the field.
    pub(crate) fn ty(&self) -> &TypeRef {
        &self.ty
    }

    /// The object type the field returns.
    pub(crate) fn type_name(&self) -> &str {
        plan::named(&self.ty)
    }

    /// The request for these field arguments; BAD_USER_INPUT naming the argument when one does
    /// not fit the message.
    pub(crate) fn request(
        &self,
        args: &[(&str, &async_graphql::Value)],
    ) -> async_graphql::Result<Prepared> {
        let mut request = convert::message_input(&self.method.input(), args.iter().copied(), &[])
            .map_err(|e| errors::from_input(&e))?;
        let mut had_after = false;
        if let Some(shape) = &self.shape {
            let page = shape.page_request(args)?;
            had_after = page
                .get_field_by_name("after")
                .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
            request.set_field(&shape.page, prost_reflect::Value::Message(page));
        }
        Ok(Prepared { request, had_after })
    }

    fn call(&self, rc: &RequestCtx, request: DynamicMessage) -> crate::transport::Call {
        rc.call(
            self.service.clone(),
            self.method.clone(),
            request,
            self.retryable,
        )
    }

    /// Calls the RPC for a compiled plan; the result stays with its request, so the engine can
    /// take it over.
    pub(crate) async fn fetch(
        &self,
        rc: &Arc<RequestCtx>,
        prepared: Prepared,
        decode: crate::wire::Decode,
    ) -> (crate::request::Fetched, bool) {
        let mut call = self.call(rc, prepared.request.clone());
        call.decode = decode;
        let result = rc.unary(&self.invoker, call).await;
        let fetched = crate::request::Fetched {
            service: self.service.clone(),
            method: self.method.clone(),
            request: prepared.request,
            result,
        };
        (fetched, prepared.had_after)
    }

    /// What of the response a plan's `shape` reads (see [`crate::wire`]): `None` for all of it.
    fn response_filter(&self, shape: &plan::Shape) -> Option<Arc<WireFilter>> {
        let output = self.method.output();
        let Some(conn) = &self.shape else {
            return plan::message_filter(&output, shape);
        };
        let item = conn.list.kind().as_message()?.clone();
        // The page info always: `totalCount`, `pageInfo` and the last edge's cursor read it.
        let mut keep = vec![(conn.info.number(), None)];
        for (wire, selection) in plan::reads(shape) {
            match (wire, selection) {
                (plan::Wire::Items, Some(s)) => {
                    keep.push((conn.list.number(), plan::message_filter(&item, s)));
                }
                (plan::Wire::Edges, Some(s)) => {
                    keep.push((conn.list.number(), plan::edges_filter(&item, s)));
                }
                (plan::Wire::PageInfo, _) => {}
                _ => return None,
            }
        }
        let filter = WireFilter::new(keep);
        (!filter.keeps_all(output.fields().map(|f| f.number()))).then(|| Arc::new(filter))
    }

    /// The field's value for a response: a connection, or the message itself.
    pub(crate) fn output(&self, response: DynamicMessage, had_after: bool) -> FieldValue<'static> {
        match &self.shape {
            Some(shape) => FieldValue::owned_any(shape.connection(response, had_after)),
            None => FieldValue::owned_any(response),
        }
    }
}

/// A field whose resolver is a plain function of its parent, registered for plans too.
fn sync_field(name: impl Into<String>, ty: TypeRef, resolve: plan::Resolve) -> Field {
    Field::new(name, ty, move |ctx| {
        // The engine takes a null *value* for an object (resolving its fields against nothing)
        // and refuses it for enums and custom scalars; only no value at all reads as null. An
        // absent message, timestamp or an enum number this contract does not know is null.
        use crate::convert::NullCheck;
        FieldFuture::Value(resolve(ctx.parent_value).filter(|v| !v.is_null_value()))
    })
}

/// The fields that make an RPC a Relay connection.
#[derive(Clone)]
struct ConnectionShape {
    page: FieldDescriptor,
    list: FieldDescriptor,
    info: FieldDescriptor,
}

impl ConnectionShape {
    fn page_request(
        &self,
        args: &[(&str, &async_graphql::Value)],
    ) -> async_graphql::Result<DynamicMessage> {
        use async_graphql::Value as Gql;
        let arg = |name: &str| {
            args.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
                .filter(|v| !matches!(v, Gql::Null))
        };
        let desc = self.page.kind().as_message().cloned().ok_or("page")?;
        let mut page = DynamicMessage::new(desc);
        if let Some(first) = arg("first") {
            let n = match first {
                Gql::Number(n) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| errors::bad_input("first", "must be a whole number"))?;
            if !(1..=100).contains(&n) {
                return Err(errors::bad_input("first", "must be between 1 and 100"));
            }
            page.set_field_by_name("first", prost_reflect::Value::I32(n as i32));
        }
        if let Some(after) = arg("after") {
            let Gql::String(s) = after else {
                return Err(errors::bad_input("after", "must be a cursor string"));
            };
            page.set_field_by_name("after", prost_reflect::Value::String(s.clone()));
        }
        Ok(page)
    }

    /// The connection of a response, taking its items instead of copying them.
    fn connection(&self, mut response: DynamicMessage, has_previous: bool) -> Connection {
        let items: Vec<DynamicMessage> = match response.take_field(&self.list) {
            Some(prost_reflect::Value::List(items)) => items
                .into_iter()
                .filter_map(|v| match v {
                    prost_reflect::Value::Message(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let info = match response.take_field(&self.info) {
            Some(prost_reflect::Value::Message(m)) => Some(m),
            _ => None,
        };
        let get = |name: &str| info.as_ref().and_then(|i| i.get_field_by_name(name));
        let end_cursor = get("end_cursor")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let has_next = get("has_next_page")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let total = get("total_count").and_then(|v| v.as_i64()).unwrap_or(0);
        let last = items.len().saturating_sub(1);
        let edges = items
            .into_iter()
            .enumerate()
            .map(|(i, node)| Edge {
                node,
                cursor: (i == last && !end_cursor.is_empty()).then(|| end_cursor.clone()),
            })
            .collect();
        Connection {
            edges,
            end_cursor,
            has_next,
            has_previous,
            total,
        }
    }
}

fn connection_shape(method: &MethodDescriptor) -> Option<ConnectionShape> {
    let is = |f: &FieldDescriptor, name: &str| {
        !f.is_list() && f.kind().as_message().is_some_and(|m| m.full_name() == name)
    };
    let page = method
        .input()
        .fields()
        .find(|f| is(f, "patto.common.v1.PageRequest"))?;
    let output = method.output();
    let info = output
        .fields()
        .find(|f| is(f, "patto.common.v1.PageInfo"))?;
    let lists: Vec<FieldDescriptor> = output
        .fields()
        .filter(|f| f.is_list() && f.kind().as_message().is_some())
        .collect();
    // Anything else in the response would be lost in a connection: map it plainly instead.
    if lists.len() != 1 || output.fields().count() != 2 {
        return None;
    }
    Some(ConnectionShape {
        page,
        list: lists[0].clone(),
        info,
    })
}

/// Checks the batch contract of a lookup (`entity` given) or extends RPC; returns the item type.
fn check_batch_shape(
    method: &MethodDescriptor,
    entity: Option<&str>,
) -> Result<MessageDescriptor, ComposeError> {
    let bad = |reason: &str| ComposeError::BatchShape {
        rpc: method.full_name().to_owned(),
        reason: reason.to_owned(),
    };
    let keys = method
        .input()
        .get_field_by_name("keys")
        .ok_or_else(|| bad("its request has no `keys` field"))?;
    if !(keys.is_list() && matches!(keys.kind(), Kind::String)) {
        return Err(bad("`keys` must be `repeated string`"));
    }
    let items = method
        .output()
        .get_field_by_name("items")
        .ok_or_else(|| bad("its response has no `items` field"))?;
    let item = match (items.is_list(), items.kind()) {
        (true, Kind::Message(m)) => m,
        _ => return Err(bad("`items` must be a repeated message")),
    };
    let key = item
        .get_field_by_name("key")
        .ok_or_else(|| bad("its items have no `key` field"))?;
    if key.is_list() || !matches!(key.kind(), Kind::String) {
        return Err(bad("the items' `key` must be a string"));
    }
    if entity.is_some() && item.fields().count() < 2 {
        return Err(bad("its items hold no entity"));
    }
    Ok(item)
}

#[cfg(test)]
pub(crate) mod tests;
