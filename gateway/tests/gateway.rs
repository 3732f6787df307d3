//! The gateway end to end: a real culture service on an ephemeral port, the gateway on another,
//! plain HTTP/1.1 and WebSocket clients. Covers GraphQL over HTTP, joins through lookups and
//! extensions with their batching, errors, a service going down and coming back, a contract
//! change picked up by re-reflection, and subscriptions.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use patto_gateway::GatewayConfig;
use patto_service_kit::Principal;
use patto_service_kit::demo::citizen;
use patto_service_kit::testing::{self, TestServer};
use patto_service_kit::token::DevIssuer;
use serde_json::{Value, json};
use support::{Gateway, next_json, send_json};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// One dev issuer trusted by the gateway and by culture, as in the all-in-one.
fn issuer() -> &'static DevIssuer {
    static ISSUER: OnceLock<DevIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| DevIssuer::generate().expect("a dev key"))
}

/// A bearer token for `who`.
fn bearer(who: &Principal) -> String {
    let token = issuer()
        .issue(who, Duration::from_secs(600))
        .expect("a token");
    format!("Bearer {token}")
}

/// Palermo's own system: the caller of these tests unless one says otherwise.
fn palermo_system() -> String {
    bearer(&Principal::System {
        istat_code: "082053".into(),
        subject: "protocollo".into(),
    })
}

/// The gateway in front of `culture` and of a social service that is not running (its contract
/// embedded), trusting the dev issuer, re-reflecting every `reflect_interval`.
fn config(culture: &TestServer, reflect_interval: Duration) -> GatewayConfig {
    GatewayConfig {
        backends: vec![
            ("culture".into(), culture.url()),
            // Nothing listens there: the gateway must fall back to the embedded contract.
            ("social".into(), "http://127.0.0.1:9".into()),
        ],
        reflect_interval,
        reflect_timeout: Duration::from_secs(5),
        introspection: true,
        authenticator: Arc::new(issuer().verifier()),
        ..support::config(culture)
    }
}

impl Gateway {
    /// [`Gateway::graphql_with`] without variables or extra headers.
    async fn graphql(&self, query: &str) -> Value {
        self.graphql_with(query, json!({}), &[]).await
    }

    /// POSTs `query` as Palermo's system, unless `extra` names another `authorization`.
    async fn graphql_with(&self, query: &str, variables: Value, extra: &[(&str, &str)]) -> Value {
        let system = palermo_system();
        let mut headers = vec![
            ("content-type", "application/json"),
            ("accept", GRAPHQL_RESPONSE),
        ];
        if !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            headers.push(("authorization", &system));
        }
        headers.extend_from_slice(extra);
        let body = json!({"query": query, "variables": variables}).to_string();
        let reply = self.send("POST", "/graphql", &headers, &body).await;
        serde_json::from_str(&reply.text).unwrap()
    }
}

/// The culture service, trusting the dev issuer.
async fn culture_app() -> patto_service_kit::GrpcApp {
    support::culture_app()
        .await
        .with_authenticator(Arc::new(issuer().verifier()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graphql_over_http_follows_the_spec() {
    let culture = TestServer::start(culture_app().await).await;
    let gw = Gateway::start(config(&culture, Duration::from_secs(60))).await;
    let q = r#"{"query":"{ municipality(istatCode: \"082053\") { name } }"}"#;
    let json = [("content-type", "application/json")];

    let reply = gw
        .send(
            "POST",
            "/graphql",
            &[json[0], ("accept", GRAPHQL_RESPONSE)],
            q,
        )
        .await;
    assert_eq!((reply.status, reply.media()), (200, GRAPHQL_RESPONSE));
    assert_eq!(
        serde_json::from_str::<Value>(&reply.text).unwrap()["data"]["municipality"]["name"],
        "Palermo"
    );

    let reply = gw
        .send(
            "POST",
            "/graphql",
            &[json[0], ("accept", "application/json")],
            q,
        )
        .await;
    assert_eq!((reply.status, reply.media()), (200, "application/json"));

    let bad = r#"{"query":"{ municipality(istatCode: \"082053\") { nope } }"}"#;
    let reply = gw
        .send(
            "POST",
            "/graphql",
            &[json[0], ("accept", GRAPHQL_RESPONSE)],
            bad,
        )
        .await;
    assert_eq!(
        reply.status, 400,
        "a request that cannot run is a 400 with graphql-response+json: {}",
        reply.text
    );
    let reply = gw
        .send(
            "POST",
            "/graphql",
            &[json[0], ("accept", "application/json")],
            bad,
        )
        .await;
    assert_eq!(reply.status, 200, "legacy application/json keeps 200");

    let reply = gw
        .send("POST", "/graphql", &[("content-type", "text/plain")], q)
        .await;
    assert_eq!(reply.status, 415);
    let reply = gw.send("POST", "/graphql", &[json[0]], "{not json").await;
    assert_eq!(reply.status, 400);
    let reply = gw
        .send("POST", "/graphql", &[json[0], ("accept", "text/html")], q)
        .await;
    assert_eq!(reply.status, 406);

    let reply = gw
        .send("GET", "/graphql?query=%7B%20__typename%20%7D", &[], "")
        .await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (200, r#"{"data":{"__typename":"Query"}}"#)
    );
    let reply = gw.send("GET", "/graphql?query=mutation%20%7B%20cancelBooking(bookingId%3A%22x%22)%20%7B%20booking%20%7B%20id%20%7D%20%7D%20%7D", &[], "").await;
    assert_eq!(reply.status, 405, "no mutation over GET");
    let reply = gw.send("GET", "/graphql", &[], "").await;
    assert_eq!(reply.status, 400);

    // Abusive documents are refused before any backend call; oversized bodies with 413.
    let accept = [json[0], ("accept", GRAPHQL_RESPONSE)];
    let depth_50 = format!(
        "{{ {}__typename{} }}",
        "__schema { types { fields { type { ofType { ".repeat(10),
        " } } } } }".repeat(10)
    );
    let reply = gw
        .send(
            "POST",
            "/graphql",
            &accept,
            &json!({ "query": depth_50 }).to_string(),
        )
        .await;
    let body = reply.text;
    assert_eq!(reply.status, 400, "{body}");
    assert!(body.contains("depth"), "{body}");
    // Just past the gateway's own depth limit (the parser refuses depth 50 even earlier).
    let depth_18 = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(14),
        " }".repeat(14)
    );
    let reply = gw
        .send(
            "POST",
            "/graphql",
            &accept,
            &json!({ "query": depth_18 }).to_string(),
        )
        .await;
    let body = reply.text;
    assert_eq!(reply.status, 400, "{body}");
    assert!(body.contains("nested too deep"), "{body}");
    let aliases: String = (0..10_000).map(|i| format!("a{i}: __typename ")).collect();
    let query = json!({ "query": format!("{{ {aliases} }}") }).to_string();
    let reply = gw.send("POST", "/graphql", &accept, &query).await;
    let body = reply.text;
    assert_eq!(reply.status, 400);
    assert!(
        body.contains("ALIAS_LIMIT") && body.contains("10000 aliases"),
        "{body}"
    );
    // A 5 MB body: the gateway answers 413 from the declared length, without reading it all.
    let status = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{{\"query\":\"",
            5 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 64];
        let n = stream.read(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer[..n])
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(status, "413");

    let sdl = gw.send("GET", "/schema.graphql", &[], "").await;
    assert_eq!(sdl.status, 200);
    assert!(sdl.text.contains("type Event") && sdl.text.contains("bookEvent("));
    let page = gw.send("GET", "/", &[], "").await;
    assert!(page.status == 200 && page.text.contains("graphiql"));
    let ready = gw.send("GET", "/health/ready", &[], "").await;
    assert_eq!(ready.status, 200);
    let ready: Value = serde_json::from_str(&ready.text).unwrap();
    assert_eq!(
        ready["contracts"],
        json!({"culture": "reflection", "social": "embedded"})
    );
    let reply = gw.send("GET", "/metrics", &[], "").await;
    let metrics = reply.text;
    assert!(
        reply.status == 200 && metrics.contains("patto_gateway_operations_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("patto_gateway_backend_calls_total{service=\"culture\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("patto_gateway_circuit_open{service=\"culture\"} 0"),
        "{metrics}"
    );
    // The service answers Prometheus on its gRPC port, over HTTP/1.1.
    let (status, metrics) = testing::get(culture.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("patto_grpc_requests_total{rpc=\"grpc.reflection.v1.ServerReflection/ServerReflectionInfo\",code=\"OK\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("patto_grpc_request_seconds_bucket"),
        "{metrics}"
    );
    gw.stop().await;
    culture.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joins_errors_and_batching_over_real_services() {
    let culture = TestServer::start(culture_app().await).await;
    let gw = Gateway::start(config(&culture, Duration::from_secs(60))).await;

    // Root query with a ref resolved through LookupVenues, and a connection.
    let out = gw
        .graphql(r#"{ events(istatCode: "082053", first: 3) { totalCount pageInfo { hasNextPage endCursor }
                     nodes { id name startTime status price { cents } venue { name kind } } } }"#)
        .await;
    assert!(out["errors"].is_null(), "{out}");
    let events = &out["data"]["events"];
    assert!(events["totalCount"].as_i64().unwrap() >= 24);
    assert_eq!(events["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(events["nodes"][0]["status"], "SCHEDULED");
    assert!(events["nodes"][0]["venue"]["name"].is_string());
    assert!(
        events["nodes"][0]["price"]["cents"].is_string(),
        "Long travels as a string"
    );

    // A booking through a mutation, then read back through Citizen.eventBookings → Booking.event.
    let event_id = events["nodes"][0]["id"].as_str().unwrap().to_owned();
    let cf = citizen(7).fiscal_code;
    let booked = gw
        .graphql_with(
            "mutation($e: String!, $cf: String!) { bookEvent(eventId: $e, fiscalCode: $cf, seats: 2) { booking { code status } } }",
            json!({"e": event_id, "cf": cf}),
            &[],
        )
        .await;
    assert_eq!(
        booked["data"]["bookEvent"]["booking"]["status"], "CONFIRMED",
        "{booked}"
    );
    let mine = gw
        .graphql_with(
            "query($cf: String!) { citizen(fiscalCode: $cf) { fiscalCode eventBookings { seats event { id name } } } }",
            json!({"cf": cf}),
            &[],
        )
        .await;
    assert_eq!(
        mine["data"]["citizen"]["eventBookings"][0]["event"]["id"],
        event_id.as_str(),
        "{mine}"
    );

    // The programme indicators, merged across services; an unreachable service is named.
    let today = Utc::now().date_naive();
    let ind = gw
        .graphql_with(
            "query($s: String!, $e: String!) { municipality(istatCode: \"082053\") { indicators(period: {startDate: $s, endDate: $e}) {
               fullyOnlineProcedures completedInteractions distinctCitizens unavailableServices procedures { service code fullyOnline } } } }",
            json!({"s": (today - chrono::Duration::days(1)).to_string(), "e": (today + chrono::Duration::days(1)).to_string()}),
            &[],
        )
        .await;
    let ind = &ind["data"]["municipality"]["indicators"];
    assert_eq!(
        ind["procedures"],
        json!([{"service": "culture", "code": "culture.event-booking", "fullyOnline": true}]),
        "{ind}"
    );
    assert_eq!(ind["fullyOnlineProcedures"], 1);
    assert!(
        ind["completedInteractions"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            >= 1
    );
    assert!(ind["distinctCitizens"].as_i64().unwrap() >= 1);
    assert_eq!(ind["unavailableServices"], json!(["social"]));

    // Bad input: the service's BadRequest violations arrive with the GraphQL argument path.
    let bad = gw
        .graphql_with(
            "mutation($e: String!) { bookEvent(eventId: $e, fiscalCode: \"XYZ\", seats: 0) { booking { id } } }",
            json!({"e": event_id}),
            &[],
        )
        .await;
    let ext = &bad["errors"][0]["extensions"];
    assert_eq!(ext["code"], "BAD_USER_INPUT", "{bad}");
    assert_eq!(ext["service"], "culture");
    let paths: Vec<&Value> = ext["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["argumentPath"])
        .collect();
    assert_eq!(paths, [&json!(["fiscalCode"]), &json!(["seats"])]);
    let sold_out = gw
        .graphql_with("mutation { bookEvent(eventId: \"nope\", fiscalCode: \"RCCMNL83S18D969H\", seats: 1) { booking { id } } }", json!({}), &[])
        .await;
    assert_eq!(sold_out["errors"][0]["extensions"]["code"], "NOT_FOUND");

    // The backend call count does not grow with the number of comuni asked for.
    let debug = [("x-patto-debug", "calls")];
    let count = |out: &Value| out["extensions"]["backendCalls"]["total"].as_u64().unwrap();
    let one = gw
        .graphql_with(
            r#"{ municipality(istatCode: "082001") { events(first: 2) { name venue { name } } } }"#,
            json!({}),
            &debug,
        )
        .await;
    let ten_query = format!(
        "{{ {} }}",
        (1..=10).map(|i| format!("m{i}: municipality(istatCode: \"0820{i:02}\") {{ events(first: 2) {{ name venue {{ name }} }} }}")).collect::<String>()
    );
    let ten = gw.graphql_with(&ten_query, json!({}), &debug).await;
    let all = gw
        .graphql_with(
            "{ municipalities { events(first: 2) { name venue { name } } } }",
            json!({}),
            &debug,
        )
        .await;
    assert!(all["errors"].is_null(), "{all}");
    assert_eq!(
        (count(&one), count(&ten), count(&all)),
        (2, 2, 2),
        "one extension call and one lookup call at any size"
    );
    gw.stop().await;
    culture.stop().await.unwrap();
}

/// A service that stops nulls only its own fields; back on the same address, it answers again
/// without the gateway restarting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_service_spoils_only_its_fields() {
    let culture = TestServer::start(culture_app().await).await;
    let addr = culture.addr;
    let gw = Gateway::start(config(&culture, Duration::from_secs(60))).await;
    let q = r#"{ municipality(istatCode: "082053") { name events(first: 1) { name } } }"#;
    let before = gw.graphql(q).await;
    assert!(before["data"]["municipality"]["events"][0]["name"].is_string());

    culture.stop().await.unwrap();
    let down = gw.graphql(q).await;
    assert_eq!(down["data"]["municipality"]["name"], "Palermo", "{down}");
    assert!(down["data"]["municipality"]["events"].is_null());
    assert_eq!(
        down["errors"][0]["extensions"]["code"],
        "SERVICE_UNAVAILABLE"
    );
    assert_eq!(down["errors"][0]["extensions"]["service"], "culture");

    let back = TestServer::start_at(culture_app().await, addr, Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let again = gw.graphql(q).await;
        if again["errors"].is_null() {
            assert!(again["data"]["municipality"]["events"][0]["name"].is_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "culture did not come back: {again}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.stop().await;
    back.stop().await.unwrap();
}

/// The culture proto with one more field on Event, compiled here as a newer build would ship it.
fn newer_culture_descriptors() -> &'static [u8] {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    let original =
        std::fs::read_to_string(format!("{root}/patto/culture/v1/culture.proto")).unwrap();
    let newer = original.replacen(
        "  // Page with more information (`url`).\n  string url = 16;\n",
        "  // Page with more information (`url`).\n  string url = 16;\n  // Notes on access for people with disabilities.\n  string accessibility_notes = 17;\n",
        1,
    );
    assert_ne!(original, newer, "the test must change the contract");
    struct Mem(String);
    impl protox::file::FileResolver for Mem {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == "patto/culture/v1/culture.proto" {
                protox::file::File::from_source(name, &self.0)
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let mut chain = protox::file::ChainFileResolver::new();
    chain.add(Mem(newer));
    chain.add(protox::file::IncludeFileResolver::new(root.into()));
    chain.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true).include_source_info(true);
    compiler
        .open_files([
            "patto/culture/v1/culture.proto",
            "patto/common/v1/common.proto",
            "patto/common/v1/audit.proto",
        ])
        .unwrap();
    Box::leak(compiler.encode_file_descriptor_set().into_boxed_slice())
}

/// A service redeployed with a new field: the field appears in GraphQL after re-reflection, the
/// gateway untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_field_appears_after_re_reflection() {
    let culture = TestServer::start(culture_app().await).await;
    let addr = culture.addr;
    let gw = Gateway::start(config(&culture, Duration::from_secs(1))).await;
    let sdl = gw.send("GET", "/schema.graphql", &[], "").await.text;
    assert!(!sdl.contains("accessibilityNotes"));

    culture.stop().await.unwrap();
    let newer = TestServer::start_at(
        culture_app()
            .await
            .with_descriptors(newer_culture_descriptors()),
        addr,
        Duration::from_secs(5),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sdl = gw.send("GET", "/schema.graphql", &[], "").await.text;
        if sdl.contains("accessibilityNotes") {
            break;
        }
        assert!(Instant::now() < deadline, "the new field never appeared");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = gw
        .graphql(
            r#"{ events(istatCode: "082053", first: 1) { nodes { name accessibilityNotes } } }"#,
        )
        .await;
    assert!(out["errors"].is_null(), "{out}");
    assert_eq!(out["data"]["events"]["nodes"][0]["accessibilityNotes"], "");
    gw.stop().await;
    newer.stop().await.unwrap();
}

/// Subscriptions over WebSocket (graphql-transport-ws), fed by the server-streaming RPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriptions_follow_a_server_stream() {
    let culture = TestServer::start(culture_app().await).await;
    let gw = Gateway::start(config(&culture, Duration::from_secs(60))).await;
    let mut ws = gw.websocket(&[]).await.unwrap();
    send_json(&mut ws, json!({"type": "connection_init"})).await;
    let ack = next_json(&mut ws).await.expect("a message");
    assert_eq!(ack["type"], "connection_ack");
    send_json(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { eventAvailability(eventId: \"evt-082053-01-1\") { eventId seatsAvailable status } }"}}),
    )
    .await;
    let first = next_json(&mut ws).await.expect("a message");
    assert_eq!(first["type"], "next", "{first}");
    let seats = first["payload"]["data"]["eventAvailability"]["seatsAvailable"]
        .as_i64()
        .unwrap();

    let booked = gw
        .graphql_with(
            "mutation($cf: String!) { bookEvent(eventId: \"evt-082053-01-1\", fiscalCode: $cf, seats: 3) { booking { id } } }",
            json!({"cf": citizen(300).fiscal_code}),
            &[],
        )
        .await;
    assert!(booked["errors"].is_null(), "{booked}");
    let update = next_json(&mut ws).await.expect("a message");
    assert_eq!(
        update["payload"]["data"]["eventAvailability"]["seatsAvailable"]
            .as_i64()
            .unwrap(),
        seats - 3
    );
    ws.close(None).await.ok();
    gw.stop().await;
    culture.stop().await.unwrap();
}
