//! One trace per GraphQL operation: an in-process OTLP collector (a tonic server of the OTLP trace
//! service) receives the gateway's operation span, its client span for the backend call, the
//! service's server span continuing it through W3C `traceparent` metadata, and the service's
//! database spans, all with one trace id and correct parent links.
//!
//! Alone in its test binary: it installs the process-wide tracing subscriber.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use patto_service_kit::telemetry::{Settings, init_with};
use support::{Gateway, culture};

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                spans.extend(ss.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_from_the_gateway_to_the_database() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let telemetry = init_with(
        "patto-test",
        Settings {
            json: false,
            filter: "info".into(),
            otlp_endpoint: Some(format!("http://{collector_addr}")),
        },
    )
    .expect("telemetry");

    let culture = culture().await;
    let gw = Gateway::start(patto_gateway::GatewayConfig {
        reflect_timeout: Duration::from_secs(5),
        introspection: true,
        ..support::config(&culture)
    })
    .await;

    // The caller's own trace, continued by the gateway.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = serde_json::json!({"query": r#"{ events(istatCode: "082053", first: 1) { nodes { name } } }"#}).to_string();
    let (status, out) = patto_service_kit::testing::post_json(
        gw.addr,
        "/graphql",
        &[("traceparent", &traceparent)],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(out["errors"].is_null(), "{out}");

    gw.stop().await;
    culture.stop().await.unwrap();
    telemetry.shutdown();

    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans: Vec<Span> = collector
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect();
        if spans.iter().any(|s| {
            s.name.starts_with("SELECT") || s.attributes.iter().any(|a| a.key == "db.system")
        }) || Instant::now() > deadline
        {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{}[{} <- {}]",
                s.name,
                hex(&s.span_id),
                hex(&s.parent_span_id)
            )
        })
        .collect();
    let find = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` span in {names:?}"))
    };
    let operation = find("graphql");
    assert_eq!(
        hex(&operation.parent_span_id),
        "00f067aa0ba902b7",
        "the operation continues the caller's span"
    );
    let rpc = "patto.culture.v1.CultureService/ListEvents";
    let client = spans
        .iter()
        .find(|s| s.name == rpc && s.parent_span_id == operation.span_id)
        .unwrap_or_else(|| panic!("no client span under the operation in {names:?}"));
    let server = spans
        .iter()
        .find(|s| s.name == rpc && s.parent_span_id == client.span_id)
        .unwrap_or_else(|| panic!("the service did not continue the trace: {names:?}"));
    let db = spans
        .iter()
        .find(|s| s.attributes.iter().any(|a| a.key == "db.system"))
        .unwrap_or_else(|| panic!("no database span in {names:?}"));
    // The database span sits under the server span (directly or through the handler's spans).
    let mut parent = db.parent_span_id.clone();
    let mut hops = 0;
    while parent != server.span_id {
        let up = spans
            .iter()
            .find(|s| s.span_id == parent)
            .unwrap_or_else(|| panic!("broken parent chain in {names:?}"));
        parent = up.parent_span_id.clone();
        hops += 1;
        assert!(
            hops < 10,
            "no path from the database span to the server span"
        );
    }
}
