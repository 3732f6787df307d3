//! The whole platform in one process, as `make run` starts it (ephemeral ports, a fresh data
//! directory, demo data): one GraphQL query spans several services in one round trip, and the
//! number of backend calls does not grow with the number of comuni asked for.

use std::net::SocketAddr;
use std::time::Duration;

use patto::{Options, Platform};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn options(data_dir: std::path::PathBuf) -> Options {
    Options {
        bind: "127.0.0.1".parse().unwrap(),
        data_dir,
        demo_data: true,
        http_port: 0,
        social_port: 0,
        building_port: 0,
        culture_port: 0,
        employment_port: 0,
        taxes_port: 0,
        environment_port: 0,
        publicworks_port: 0,
        shutdown_grace_secs: 5,
        print_schema: false,
    }
}

/// POSTs a GraphQL query over a plain HTTP/1.1 connection and returns the JSON answer.
async fn graphql(gateway: SocketAddr, query: &str) -> Value {
    let body = json!({ "query": query }).to_string();
    let mut stream = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\naccept: application/graphql-response+json\r\nx-patto-debug: calls\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw)).await.expect("answer in time").unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn calls(out: &Value) -> u64 {
    out["extensions"]["backendCalls"]["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_query_spans_the_services() {
    let dir = std::env::temp_dir().join(format!("patto-platform-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let platform = Platform::start(&options(dir.clone())).await.expect("the platform starts");
    let gateway = platform.listening.gateway;
    let citizen = patto_service_kit::demo::citizen(0).fiscal_code;

    let out = graphql(
        gateway,
        &format!(
            r#"{{ municipality(istatCode: "082053") {{ name
                    events(first: 2) {{ name venue {{ name }} }}
                    benefitSchemes {{ name }} }}
                 citizen(fiscalCode: "{citizen}") {{ fiscalCode
                    eventBookings {{ code event {{ name }} }}
                    benefitApplications {{ protocolNumber status }} }} }}"#
        ),
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    let m = &out["data"]["municipality"];
    assert_eq!(m["name"], "Palermo");
    assert_eq!(m["events"].as_array().unwrap().len(), 2);
    assert!(m["events"][0]["venue"]["name"].is_string());
    assert!(!m["benefitSchemes"].as_array().unwrap().is_empty());
    let c = &out["data"]["citizen"];
    assert!(c["eventBookings"][0]["event"]["name"].is_string(), "{c}");
    assert!(!c["benefitApplications"].as_array().unwrap().is_empty(), "{c}");
    let per_service = &out["extensions"]["backendCalls"]["perService"];
    assert!(per_service["culture"].as_u64().unwrap() >= 1 && per_service["social"].as_u64().unwrap() >= 1);

    // The call count depends on the query's shape, not on how many comuni it covers.
    let shape = "events(first: 1) { name venue { name } } benefitSchemes { name }";
    let one = graphql(gateway, &format!(r#"{{ municipality(istatCode: "082001") {{ {shape} }} }}"#)).await;
    let all = graphql(gateway, &format!("{{ municipalities {{ {shape} }} }}")).await;
    assert!(all["errors"].is_null(), "{all}");
    assert_eq!(all["data"]["municipalities"].as_array().unwrap().len(), 82);
    assert_eq!(calls(&one), calls(&all));
    assert_eq!(calls(&all), 3, "culture extension, culture lookup, social extension");

    platform.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
