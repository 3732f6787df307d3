//! Composition tests, from descriptor sets alone: each mapping rule, the joins and their batching,
//! and the composition errors. A fake invoker stands in for the services.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor, Value};
use serde_json::json;
use tonic::Status;

use super::*;
use crate::request::{Executed, RequestCtx, execute};
use crate::transport::{Call, CallError, StreamResult, UnaryResult, decode_response};
use crate::wire::Decode;
use patto_service_kit::Principal;

type Handler = Arc<dyn Fn(&Call) -> Result<DynamicMessage, Status> + Send + Sync>;

/// Answers calls from handlers by RPC name and logs every call.
#[derive(Clone, Default)]
struct Fake {
    handlers: Arc<Mutex<HashMap<String, Handler>>>,
    log: Arc<Mutex<Vec<(String, DynamicMessage)>>>,
    /// How much of each response the caller asked to decode.
    decodes: Arc<Mutex<Vec<&'static str>>>,
}

impl Fake {
    fn on(
        &self,
        rpc: &str,
        h: impl Fn(&Call) -> Result<DynamicMessage, Status> + Send + Sync + 'static,
    ) {
        self.handlers
            .lock()
            .unwrap()
            .insert(rpc.to_owned(), Arc::new(h));
    }
    fn calls(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(m, _)| m.clone())
            .collect()
    }
}

impl Invoker for Fake {
    fn unary(&self, call: Call) -> BoxFuture<'static, UnaryResult> {
        let name = call.method.name().to_owned();
        self.log
            .lock()
            .unwrap()
            .push((name.clone(), call.request.clone()));
        self.decodes.lock().unwrap().push(match call.decode {
            Decode::Whole => "whole",
            Decode::Filter(_) => "filter",
            Decode::RawList(_) => "raw",
        });
        let h = self.handlers.lock().unwrap().get(&name).cloned();
        // The response travels encoded and is decoded as the transport does, as far as the
        // caller asked.
        let out = match h {
            Some(h) => h(&call)
                .and_then(|m| {
                    let bytes = bytes::Bytes::from(prost::Message::encode_to_vec(&m));
                    decode_response(&call.method.output(), &bytes, &call.decode)
                })
                .map_err(|status| CallError {
                    service: call.service.clone(),
                    status,
                }),
            None => Err(CallError {
                service: call.service.clone(),
                status: Status::unimplemented(name),
            }),
        };
        Box::pin(async move { out })
    }
    fn server_streaming(&self, call: Call) -> BoxFuture<'static, StreamResult> {
        let out = self.unary(call);
        Box::pin(async move {
            let first = out.await?;
            Ok(futures::stream::iter(vec![Ok(first)]).boxed())
        })
    }
}

const DEMO: &str = r#"
syntax = "proto3";
// A demo theme for the composition tests.
package patto.demo.v1;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "patto/common/v1/common.proto";
import "patto/graphql/v1/options.proto";

// Things, the demo's records.
service DemoService {
  // Gets one thing.
  rpc GetThing(GetThingRequest) returns (GetThingResponse) {
    option (patto.graphql.v1.operation) = {kind: OPERATION_KIND_QUERY};
  }
  // Lists things.
  rpc ListThings(ListThingsRequest) returns (ListThingsResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
    option (patto.graphql.v1.operation) = {kind: OPERATION_KIND_QUERY, name: "things"};
  }
  // Saves a thing.
  rpc SaveThing(SaveThingRequest) returns (SaveThingResponse) {
    option (patto.graphql.v1.operation) = {kind: OPERATION_KIND_MUTATION};
  }
  // Follows a thing.
  rpc WatchThing(WatchThingRequest) returns (stream WatchThingResponse) {
    option (patto.graphql.v1.operation) = {kind: OPERATION_KIND_SUBSCRIPTION, name: "thingUpdates"};
  }
  // Resolves things by id.
  rpc LookupThings(LookupThingsRequest) returns (LookupThingsResponse) {
    option idempotency_level = NO_SIDE_EFFECTS;
    option (patto.graphql.v1.lookup) = {entity: "patto.demo.v1.Thing"};
  }
  // Things of each comune.
  rpc ListMunicipalityThings(ListMunicipalityThingsRequest) returns (ListMunicipalityThingsResponse) {
    option (patto.graphql.v1.extends) = {type: "Municipality", field: "things"};
  }
  // Things of each citizen.
  rpc ListCitizenThings(ListCitizenThingsRequest) returns (ListCitizenThingsResponse) {
    option (patto.graphql.v1.extends) = {type: "Citizen", field: "things"};
  }
  // Not in GraphQL.
  rpc PurgeThings(PurgeThingsRequest) returns (PurgeThingsResponse);
}

// Colours.
enum Color {
  // Not set.
  COLOR_UNSPECIFIED = 0;
  // Red.
  COLOR_RED = 1;
  // Dark blue.
  COLOR_DARK_BLUE = 2;
}

// A thing, with one field of each mapping rule.
message Thing {
  option (patto.graphql.v1.entity) = {key: "id"};
  // Identifier.
  string id = 1;
  // A big number.
  int64 big_number = 2;
  // An unsigned big number.
  uint64 unsigned_big = 3;
  // Raw bytes.
  bytes blob = 4;
  // An instant.
  google.protobuf.Timestamp seen_at = 5;
  // A wrapped string.
  google.protobuf.StringValue note = 6;
  // An optional number.
  optional int32 maybe = 7;
  // Tags.
  repeated string tags = 8;
  // Counters.
  map<string, int32> counts = 9;
  // Colour.
  Color color = 10;
  // One of two.
  oneof choice {
    // As text.
    string text = 11;
    // As a number.
    int32 number = 12;
  }
  // A part.
  Part part = 13;
  // The parent thing.
  string parent_id = 14 [(patto.graphql.v1.ref) = {entity: "patto.demo.v1.Thing", field: "parent"}];
  // A nested part.
  message Part {
    // Label.
    string label = 1;
  }
}

// Which thing.
message GetThingRequest {
  // Id.
  string id = 1;
}
// The thing.
message GetThingResponse {
  // The thing.
  Thing thing = 1;
}
// Which things.
message ListThingsRequest {
  // Only this colour.
  Color color = 1;
  // Paging.
  patto.common.v1.PageRequest page = 2;
}
// A page of things.
message ListThingsResponse {
  // Things.
  repeated Thing things = 1;
  // Page.
  patto.common.v1.PageInfo page_info = 2;
}
// A thing to save.
message SaveThingRequest {
  // The thing.
  Thing thing = 1;
}
// The saved thing.
message SaveThingResponse {
  // The thing.
  Thing thing = 1;
}
// Which thing to watch.
message WatchThingRequest {
  // Id.
  string id = 1;
}
// A change.
message WatchThingResponse {
  // The thing.
  Thing thing = 1;
}
// Ids.
message LookupThingsRequest {
  // Ids.
  repeated string keys = 1;
}
// Found things.
message LookupThingsResponse {
  // Items.
  repeated LookupThingsItem items = 1;
}
// A found thing.
message LookupThingsItem {
  // Id.
  string key = 1;
  // Thing.
  Thing thing = 2;
}
// Comuni.
message ListMunicipalityThingsRequest {
  // ISTAT codes.
  repeated string keys = 1;
  // Only this colour.
  Color color = 2;
}
// Things per comune.
message ListMunicipalityThingsResponse {
  // Items.
  repeated ListMunicipalityThingsItem items = 1;
}
// Things of a comune.
message ListMunicipalityThingsItem {
  // ISTAT code.
  string key = 1;
  // Things.
  repeated Thing things = 2;
}
// Citizens.
message ListCitizenThingsRequest {
  // Fiscal codes.
  repeated string keys = 1;
}
// Things per citizen.
message ListCitizenThingsResponse {
  // Items.
  repeated ListCitizenThingsItem items = 1;
}
// Things of a citizen.
message ListCitizenThingsItem {
  // Fiscal code.
  string key = 1;
  // Things.
  repeated Thing things = 2;
}
// Nothing.
message PurgeThingsRequest {
  // Nothing.
  bool all = 1;
}
// Nothing.
message PurgeThingsResponse {
  // Purged.
  int32 purged = 1;
}
"#;

/// Compiles in-memory `.proto` files against the repository's shared contracts.
pub(crate) fn pool_of(files: &[(&str, &str)]) -> DescriptorPool {
    struct Mem(HashMap<String, String>);
    impl protox::file::FileResolver for Mem {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            match self.0.get(name) {
                Some(src) => protox::file::File::from_source(name, src),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut chain = protox::file::ChainFileResolver::new();
    chain.add(Mem(files
        .iter()
        .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
        .collect()));
    chain.add(protox::file::IncludeFileResolver::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../proto").into(),
    ));
    chain.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files(files.iter().map(|(n, _)| *n))
        .expect("test protos compile");
    DescriptorPool::decode(compiler.encode_file_descriptor_set().as_slice()).expect("pool")
}

fn demo_source() -> Source {
    Source {
        service: "demo".into(),
        pool: pool_of(&[("patto/demo/v1/demo.proto", DEMO)]),
        origin: Origin::Embedded,
    }
}

fn method(pool: &DescriptorPool, name: &str) -> MethodDescriptor {
    pool.get_service_by_name("patto.demo.v1.DemoService")
        .unwrap()
        .methods()
        .find(|m| m.name() == name)
        .unwrap()
}

fn thing(pool: &DescriptorPool, id: &str, parent: &str) -> DynamicMessage {
    let mut t = DynamicMessage::new(pool.get_message_by_name("patto.demo.v1.Thing").unwrap());
    t.set_field_by_name("id", Value::String(id.into()));
    t.set_field_by_name("parent_id", Value::String(parent.into()));
    t.set_field_by_name("big_number", Value::I64(9_007_199_254_740_993));
    t.set_field_by_name("color", Value::EnumNumber(2));
    t
}

/// Runs `query` as a comune's system: these tests are about the mapping, which the access rule
/// (tested below with other callers) lets a system through.
async fn run(schema: &Composition, query: &str) -> (serde_json::Value, usize) {
    let system = Principal::System {
        istat_code: "082053".into(),
        subject: "test".into(),
    };
    run_as(schema, query, system).await
}

async fn run_as(
    schema: &Composition,
    query: &str,
    principal: Principal,
) -> (serde_json::Value, usize) {
    let ctx = RequestCtx::new(None, Vec::new());
    let request = async_graphql::Request::new(query).data(principal);
    let out = match execute(schema, request, ctx.clone()).await {
        Executed::Engine(response) => serde_json::to_value(&response).unwrap(),
        Executed::Planned(data) => {
            serde_json::json!({ "data": serde_json::from_slice::<serde_json::Value>(&data).unwrap() })
        }
    };
    (out, ctx.calls().0)
}

fn sdl_of(sources: &[Source]) -> String {
    compose(sources, Arc::new(Fake::default()))
        .expect("composes")
        .sdl()
}

#[test]
fn the_seven_contracts_compose() {
    let pool = DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap();
    let sources: Vec<Source> = [
        "social",
        "building",
        "culture",
        "employment",
        "taxes",
        "environment",
        "publicworks",
    ]
    .iter()
    .map(|s| Source {
        service: (*s).into(),
        pool: pool.clone(),
        origin: Origin::Embedded,
    })
    .collect();
    let sdl = sdl_of(&sources);
    for expected in [
        "type Municipality",
        "type Citizen",
        "events(",
        "bookEvent(",
        "eventAvailability(",
    ] {
        assert!(sdl.contains(expected), "missing {expected}");
    }
}

#[test]
fn fields_types_and_scalars_follow_the_rules() {
    let sdl = sdl_of(&[demo_source()]);
    let expect = [
        "bigNumber: Long!",
        "unsignedBig: Long!",
        "blob: Base64!",
        "seenAt: DateTime",
        "note: String",
        "maybe: Int",
        "tags: [String!]!",
        "counts: [ThingCountsEntry!]!",
        "color: Color",
        "text: String",
        "number: Int",
        "part: ThingPart",
        "parent: Thing",
        "input ThingInput",
        "input ThingPartInput",
        "scalar Long",
        "scalar DateTime",
    ];
    for e in expect {
        assert!(sdl.contains(e), "SDL lacks `{e}`:\n{sdl}");
    }
}

#[test]
fn enums_drop_prefix_and_hide_unspecified() {
    let sdl = sdl_of(&[demo_source()]);
    let start = sdl.find("enum Color").unwrap();
    let body = &sdl[start..start + sdl[start..].find('}').unwrap()];
    assert!(body.contains("DARK_BLUE") && body.contains("RED"), "{body}");
    assert!(
        !body.contains("UNSPECIFIED") && !body.contains("COLOR_"),
        "{body}"
    );
}

#[test]
fn comments_become_descriptions() {
    let sdl = sdl_of(&[demo_source()]);
    assert!(sdl.contains("A thing, with one field of each mapping rule."));
    assert!(sdl.contains("An optional number."));
    assert!(sdl.contains("Dark blue."));
    assert!(sdl.contains("Lists things."));
}

#[test]
fn operations_land_on_their_root_types() {
    let sdl = sdl_of(&[demo_source()]);
    let section = |t: &str| {
        let s = sdl
            .find(&format!("type {t} {{"))
            .unwrap_or_else(|| panic!("no {t}"));
        sdl[s..s + sdl[s..].find("\n}").unwrap()].to_owned()
    };
    assert!(section("Query").contains("getThing(") && section("Query").contains("things("));
    assert!(section("Mutation").contains("saveThing("));
    assert!(section("Subscription").contains("thingUpdates("));
    assert!(
        !sdl.contains("purgeThings"),
        "RPCs without `operation` stay gRPC-only"
    );
    assert!(!section("Query").contains("lookupThings"));
}

/// The SDL without descriptions, whitespace collapsed: signatures on one line.
fn compact(sdl: &str) -> String {
    let without: String = sdl.split("\"\"\"").step_by(2).collect();
    without
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
}

#[test]
fn list_rpcs_with_page_info_are_relay_connections() {
    let sdl = compact(&sdl_of(&[demo_source()]));
    assert!(
        sdl.contains("things(color: Color, first: Int, after: String): ThingConnection"),
        "{sdl}"
    );
    for e in [
        "type ThingConnection",
        "edges: [ThingEdge!]!",
        "nodes: [Thing!]!",
        "pageInfo: PageInfo!",
        "totalCount: Int!",
    ] {
        assert!(sdl.contains(e), "SDL lacks `{e}`");
    }
}

#[tokio::test]
async fn connections_page_and_values_convert() {
    let src = demo_source();
    let pool = src.pool.clone();
    let fake = Fake::default();
    let p = pool.clone();
    fake.on("ListThings", move |call| {
        let page = call
            .request
            .get_field_by_name("page")
            .unwrap()
            .as_message()
            .unwrap()
            .clone();
        assert_eq!(page.get_field_by_name("first").unwrap().as_i32(), Some(2));
        assert_eq!(
            page.get_field_by_name("after").unwrap().as_str(),
            Some("c1")
        );
        let mut resp = DynamicMessage::new(method(&p, "ListThings").output());
        resp.set_field_by_name(
            "things",
            Value::List(vec![
                Value::Message(thing(&p, "a", "")),
                Value::Message(thing(&p, "b", "")),
            ]),
        );
        let mut info =
            DynamicMessage::new(p.get_message_by_name("patto.common.v1.PageInfo").unwrap());
        info.set_field_by_name("end_cursor", Value::String("c2".into()));
        info.set_field_by_name("has_next_page", Value::Bool(true));
        info.set_field_by_name("total_count", Value::I64(5));
        resp.set_field_by_name("page_info", Value::Message(info));
        Ok(resp)
    });
    let schema = compose(&[src], Arc::new(fake)).unwrap();
    let (out, _) = run(
        &schema,
        r#"{ things(first: 2, after: "c1") { totalCount pageInfo { endCursor hasNextPage hasPreviousPage }
             edges { cursor node { id bigNumber color } } } }"#,
    )
    .await;
    assert_eq!(
        out["data"]["things"],
        json!({"totalCount": 5, "pageInfo": {"endCursor": "c2", "hasNextPage": true, "hasPreviousPage": true},
               "edges": [{"cursor": null, "node": {"id": "a", "bigNumber": "9007199254740993", "color": "DARK_BLUE"}},
                         {"cursor": "c2", "node": {"id": "b", "bigNumber": "9007199254740993", "color": "DARK_BLUE"}}]})
    );
    let (bad, calls) = run(&schema, "{ things(first: 500) { totalCount } }").await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(calls, 0, "refused before any backend call");
}

/// A plan writes a connection's items straight from the wire, the same JSON the engine gives from
/// decoded messages, for every kind of value a field can hold.
#[tokio::test]
async fn plans_write_items_from_the_wire_as_the_engine_does() {
    let src = demo_source();
    let pool = src.pool.clone();
    let fake = Fake::default();
    let p = pool.clone();
    fake.on("ListThings", move |call| {
        let full = {
            let mut t = thing(&p, "a\"quoted\"\n", "");
            t.set_field_by_name("big_number", Value::I64(-9_007_199_254_740_993));
            t.set_field_by_name("unsigned_big", Value::U64(u64::MAX));
            t.set_field_by_name("blob", Value::Bytes(vec![0, 1, 254, 255].into()));
            let mut seen =
                DynamicMessage::new(p.get_message_by_name("google.protobuf.Timestamp").unwrap());
            seen.set_field_by_name("seconds", Value::I64(1_700_000_000));
            seen.set_field_by_name("nanos", Value::I32(120_000_000));
            t.set_field_by_name("seen_at", Value::Message(seen));
            // Present and zero: not the same as absent.
            t.set_field_by_name("maybe", Value::I32(0));
            let mut part =
                DynamicMessage::new(p.get_message_by_name("patto.demo.v1.Thing.Part").unwrap());
            part.set_field_by_name("label", Value::String("è già \u{1}".into()));
            t.set_field_by_name("part", Value::Message(part));
            t
        };
        let mut empty = DynamicMessage::new(p.get_message_by_name("patto.demo.v1.Thing").unwrap());
        // A colour this gateway's contract does not know yet.
        empty.set_field_by_name("color", Value::EnumNumber(7));
        let mut resp = DynamicMessage::new(method(&p, "ListThings").output());
        let first = call
            .request
            .get_field_by_name("page")
            .and_then(|p| p.as_message()?.get_field_by_name("first")?.as_i32());
        let items = match first {
            // An empty page.
            Some(1) => vec![],
            _ => vec![Value::Message(full), Value::Message(empty)],
        };
        resp.set_field_by_name("things", Value::List(items));
        let mut info =
            DynamicMessage::new(p.get_message_by_name("patto.common.v1.PageInfo").unwrap());
        info.set_field_by_name("total_count", Value::I64(2));
        info.set_field_by_name("end_cursor", Value::String("c2".into()));
        resp.set_field_by_name("page_info", Value::Message(info));
        Ok(resp)
    });
    let schema = compose(&[src], Arc::new(fake.clone())).unwrap();
    let cases = [
        (
            r#"{ things(first: 2) { totalCount pageInfo { endCursor hasNextPage } __typename
                 nodes { __typename id bigNumber unsignedBig blob seenAt maybe color
                         part { label __typename } } } }"#,
            "raw",
        ),
        (r#"{ things(first: 1) { nodes { id } totalCount } }"#, "raw"),
        (
            r#"{ a: things { nodes { id } } b: things { nodes { color part { label } } } }"#,
            "raw",
        ),
        // Wrappers and oneof members are read from decoded messages.
        (r#"{ things { nodes { id note } } }"#, "filter"),
        (r#"{ things { nodes { text number } } }"#, "filter"),
        (r#"{ things { edges { node { id } } } }"#, "filter"),
    ];
    for (query, decode) in cases {
        let (engine, _) = run(&schema, query).await;
        assert!(engine["errors"].is_null(), "{engine}");
        fake.decodes.lock().unwrap().clear();
        let (planned, _) = run(&schema, query).await;
        assert_eq!(planned, engine, "{query}");
        assert!(
            fake.decodes.lock().unwrap().iter().all(|d| *d == decode),
            "{query}: {:?}",
            fake.decodes.lock().unwrap()
        );
    }
    let (out, _) = run(&schema, cases[0].0).await;
    let nodes = &out["data"]["things"]["nodes"];
    assert_eq!(nodes[0]["maybe"], 0);
    assert_eq!(nodes[1]["maybe"], serde_json::Value::Null);
    assert_eq!(nodes[0]["unsignedBig"], "18446744073709551615");
    assert_eq!(
        nodes[1]["color"],
        serde_json::Value::Null,
        "an unknown number"
    );
    assert_eq!(nodes[1]["part"], serde_json::Value::Null);
    assert_eq!(nodes[1]["bigNumber"], "0");
}

#[tokio::test]
async fn oneof_inputs_refuse_two_members() {
    let fake = Fake::default();
    let schema = compose(&[demo_source()], Arc::new(fake.clone())).unwrap();
    let (out, calls) = run(
        &schema,
        r#"mutation { saveThing(thing: {id: "x", text: "a", number: 1}) { thing { id } } }"#,
    )
    .await;
    let err = &out["errors"][0];
    assert_eq!(err["extensions"]["code"], "BAD_USER_INPUT", "{out}");
    assert_eq!(
        err["extensions"]["violations"][0]["argumentPath"],
        json!(["thing", "number"])
    );
    assert_eq!(calls, 0);
    assert!(fake.calls().is_empty());
}

/// Extensions and refs are batched per request: one call per RPC per level, whatever the count.
#[tokio::test]
async fn joins_batch_one_call_per_level() {
    let src = demo_source();
    let p = src.pool.clone();
    let fake = Fake::default();
    let p1 = p.clone();
    fake.on("ListMunicipalityThings", move |call| {
        let keys = call
            .request
            .get_field_by_name("keys")
            .unwrap()
            .as_list()
            .unwrap()
            .to_vec();
        let items = keys
            .iter()
            .map(|k| {
                let k = k.as_str().unwrap();
                let mut item = DynamicMessage::new(
                    p1.get_message_by_name("patto.demo.v1.ListMunicipalityThingsItem")
                        .unwrap(),
                );
                item.set_field_by_name("key", Value::String(k.into()));
                item.set_field_by_name(
                    "things",
                    Value::List(vec![Value::Message(thing(
                        &p1,
                        &format!("t{k}"),
                        &format!("p{k}"),
                    ))]),
                );
                Value::Message(item)
            })
            .collect();
        let mut resp = DynamicMessage::new(method(&p1, "ListMunicipalityThings").output());
        resp.set_field_by_name("items", Value::List(items));
        Ok(resp)
    });
    let p2 = p.clone();
    fake.on("LookupThings", move |call| {
        let keys = call
            .request
            .get_field_by_name("keys")
            .unwrap()
            .as_list()
            .unwrap()
            .to_vec();
        let items = keys
            .iter()
            .map(|k| {
                let mut item = DynamicMessage::new(
                    p2.get_message_by_name("patto.demo.v1.LookupThingsItem")
                        .unwrap(),
                );
                item.set_field_by_name("key", k.clone());
                item.set_field_by_name(
                    "thing",
                    Value::Message(thing(&p2, k.as_str().unwrap(), "")),
                );
                Value::Message(item)
            })
            .collect();
        let mut resp = DynamicMessage::new(method(&p2, "LookupThings").output());
        resp.set_field_by_name("items", Value::List(items));
        Ok(resp)
    });
    let schema = compose(&[src], Arc::new(fake.clone())).unwrap();

    let (one, calls_one) = run(
        &schema,
        r#"{ municipality(istatCode: "082053") { things { id parent { id } } } }"#,
    )
    .await;
    assert_eq!(
        one["data"]["municipality"]["things"],
        json!([{"id": "t082053", "parent": {"id": "p082053"}}])
    );
    let (all, calls_all) = run(
        &schema,
        "{ municipalities { istatCode things(color: RED) { id parent { id } } } }",
    )
    .await;
    assert!(all["errors"].is_null(), "{all}");
    assert_eq!(all["data"]["municipalities"].as_array().unwrap().len(), 82);
    assert_eq!(
        all["data"]["municipalities"][81]["things"][0]["parent"]["id"],
        "p082082"
    );
    assert_eq!(
        (calls_one, calls_all),
        (2, 2),
        "one extension call and one lookup call, for 1 or 82 comuni"
    );

    // The extension's own argument reached the service; each key was sent once.
    let log = fake.log.lock().unwrap().clone();
    let (_, last_ext) = log
        .iter()
        .rev()
        .find(|(m, _)| m == "ListMunicipalityThings")
        .unwrap();
    assert_eq!(
        last_ext
            .get_field_by_name("color")
            .unwrap()
            .as_enum_number(),
        Some(1)
    );
    assert_eq!(
        last_ext
            .get_field_by_name("keys")
            .unwrap()
            .as_list()
            .unwrap()
            .len(),
        82
    );
}

#[tokio::test]
async fn errors_map_to_codes_and_spare_other_fields() {
    use tonic_types::{ErrorDetails, StatusExt};
    let src = demo_source();
    let p = src.pool.clone();
    let fake = Fake::default();
    fake.on("GetThing", |_| {
        let mut d = ErrorDetails::new();
        d.add_bad_request_violation("id", "must not be empty");
        Err(Status::with_error_details(
            tonic::Code::InvalidArgument,
            "invalid request",
            d,
        ))
    });
    fake.on("ListMunicipalityThings", |_| {
        Err(Status::unavailable("connection refused"))
    });
    let schema = compose(&[src], Arc::new(fake)).unwrap();
    let (out, _) = run(&schema, r#"{ getThing(id: "") { thing { id } } }"#).await;
    let ext = &out["errors"][0]["extensions"];
    assert_eq!(ext["code"], "BAD_USER_INPUT");
    assert_eq!(ext["service"], "demo");
    assert_eq!(
        ext["violations"][0],
        json!({"field": "id", "description": "must not be empty", "argumentPath": ["id"]})
    );

    let (out, _) = run(
        &schema,
        r#"{ municipality(istatCode: "082053") { name things { id } } }"#,
    )
    .await;
    assert_eq!(
        out["data"]["municipality"],
        json!({"name": "Palermo", "things": null}),
        "{out}"
    );
    assert_eq!(
        out["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert_eq!(out["errors"][0]["extensions"]["service"], "demo");
    assert_eq!(out["errors"][0]["path"], json!(["municipality", "things"]));
    let _ = p;
}

#[tokio::test]
async fn citizen_entry_validates_the_fiscal_code() {
    let schema = compose(&[demo_source()], Arc::new(Fake::default())).unwrap();
    let (out, calls) = run(
        &schema,
        r#"{ citizen(fiscalCode: "RSSMRA80A01G273A") { fiscalCode } }"#,
    )
    .await;
    assert_eq!(out["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(calls, 0);
    let (out, _) = run(
        &schema,
        r#"{ citizen(fiscalCode: "rccmnl83s18d96vw") { fiscalCode } }"#,
    )
    .await;
    assert_eq!(out["data"]["citizen"]["fiscalCode"], "RCCMNL83S18D969H");
}

#[tokio::test]
async fn the_gateway_refuses_what_the_principal_alone_rules_out() {
    let fake = Fake::default();
    let schema = compose(&[demo_source()], Arc::new(fake.clone())).unwrap();
    let me = "RCCMNL83S18D969H";
    let citizen = |cf: &str| Principal::Citizen {
        fiscal_code: cf.into(),
    };
    let entry = format!(r#"{{ citizen(fiscalCode: "{me}") {{ fiscalCode }} }}"#);
    let mutation = r#"mutation { saveThing(thing: {id: "x", text: "a"}) { thing { id } } }"#;
    let cases: Vec<(&str, &str, Principal, Option<&str>)> = vec![
        (
            "citizen entry",
            &entry,
            Principal::Anonymous,
            Some("UNAUTHENTICATED"),
        ),
        (
            "citizen entry",
            &entry,
            citizen("VRDLGU75B12G273D"),
            Some("FORBIDDEN"),
        ),
        (
            "citizen entry",
            &entry,
            citizen(&me.to_ascii_lowercase()),
            None,
        ),
        (
            "me",
            "{ me { fiscalCode } }",
            Principal::Anonymous,
            Some("UNAUTHENTICATED"),
        ),
        ("me", "{ me { fiscalCode } }", citizen(me), None),
        (
            "me",
            "{ me { fiscalCode } }",
            Principal::Operator {
                istat_code: "082053".into(),
                subject: "op".into(),
            },
            Some("FORBIDDEN"),
        ),
        (
            "mutation",
            mutation,
            Principal::Anonymous,
            Some("UNAUTHENTICATED"),
        ),
    ];
    for (what, query, principal, code) in cases {
        let (out, calls) = run_as(&schema, query, principal.clone()).await;
        assert_eq!(
            out["errors"][0]["extensions"]["code"].as_str(),
            code,
            "{what} as {principal:?}: {out}"
        );
        if code.is_some() {
            assert_eq!(
                calls, 0,
                "{what} as {principal:?}: refused before any backend call"
            );
        }
    }
    assert!(fake.calls().is_empty());
}

#[test]
fn a_type_name_claimed_twice_names_both_sources() {
    let other = DEMO
        .replace("package patto.demo.v1;", "package patto.other.v1;")
        .replace("patto.demo.v1.", "patto.other.v1.");
    let other = other.replace("service DemoService", "service OtherService");
    let second = Source {
        service: "other".into(),
        pool: pool_of(&[("patto/other/v1/other.proto", &other)]),
        origin: Origin::Embedded,
    };
    let err = compose(&[demo_source(), second], Arc::new(Fake::default()))
        .err()
        .expect("a clash");
    let msg = err.to_string();
    assert!(
        msg.contains("demo: patto.demo.v1.") && msg.contains("other: patto.other.v1."),
        "{msg}"
    );
}

#[test]
fn a_root_field_defined_twice_names_both_rpcs() {
    let other = DEMO
        .replace("package patto.demo.v1;", "package patto.other.v1;")
        .replace("patto.demo.v1.", "patto.other.v1.")
        .replace("service DemoService", "service OtherService");
    // Rename every type so only the root field clashes.
    let renamed = ["Thing", "Color", "COLOR_"]
        .iter()
        .fold(other, |s, t| s.replace(t, &format!("Z{t}")));
    let second = Source {
        service: "other".into(),
        pool: pool_of(&[("patto/other/v1/other.proto", &renamed)]),
        origin: Origin::Embedded,
    };
    let err = compose(&[demo_source(), second], Arc::new(Fake::default()))
        .err()
        .expect("a clash");
    assert!(matches!(err, ComposeError::FieldClash { .. }), "{err}");
}

#[test]
fn batch_contract_and_refs_are_checked() {
    let broken = DEMO.replace(
        "repeated string keys = 1;\n}\n// Found things.",
        "repeated int32 keys = 1;\n}\n// Found things.",
    );
    let src = Source {
        service: "demo".into(),
        pool: pool_of(&[("patto/demo/v1/demo.proto", &broken)]),
        origin: Origin::Embedded,
    };
    let err = compose(&[src], Arc::new(Fake::default()))
        .err()
        .expect("bad shape");
    assert!(
        matches!(err, ComposeError::BatchShape { .. }) && err.to_string().contains("LookupThings"),
        "{err}"
    );

    let orphan = DEMO.replace(
        "option (patto.graphql.v1.lookup) = {entity: \"patto.demo.v1.Thing\"};",
        "",
    );
    let src = Source {
        service: "demo".into(),
        pool: pool_of(&[("patto/demo/v1/demo.proto", &orphan)]),
        origin: Origin::Embedded,
    };
    let err = compose(&[src], Arc::new(Fake::default()))
        .err()
        .expect("orphan ref");
    assert!(matches!(err, ComposeError::Reference { .. }), "{err}");
}
