//! The whole platform in one process, as `make run` starts it (ephemeral ports, a fresh data
//! directory, demo data): one GraphQL query spans several services in one round trip, and the
//! number of backend calls does not grow with the number of comuni asked for.

use std::net::SocketAddr;

use patto::{Options, Platform, TokenArgs};
use serde_json::{Value, json};

/// A token of `citizen`, signed by the dev issuer the platform of `data_dir` trusts.
fn citizen_token(data_dir: &std::path::Path, citizen: &str) -> String {
    let args = TokenArgs {
        citizen: Some(citizen.to_owned()),
        operator: false,
        system: false,
        comune: None,
        subject: None,
        ttl_minutes: 60,
    };
    format!(
        "Bearer {}",
        patto::dev_token(data_dir, &args).expect("a dev token")
    )
}

async fn graphql(gateway: SocketAddr, token: &str, query: &str) -> Value {
    let body = json!({ "query": query }).to_string();
    let headers = [
        ("accept", "application/graphql-response+json"),
        ("x-patto-debug", "calls"),
        ("authorization", token),
    ];
    let (status, answer) =
        patto_service_kit::testing::post_json(gateway, "/graphql", &headers, &body).await;
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).unwrap()
}

fn calls(out: &Value) -> u64 {
    out["extensions"]["backendCalls"]["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_query_spans_the_services() {
    let dir = std::env::temp_dir().join(format!("patto-platform-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let platform = Platform::start(&Options::ephemeral(dir.clone()))
        .await
        .expect("the platform starts");
    let gateway = platform.listening.gateway;
    let citizen = patto_service_kit::demo::citizen(0).fiscal_code;
    // The citizen asks for their own data, signed in as the all-in-one's dev issuer allows.
    let token = citizen_token(&dir, &citizen);

    let out = graphql(
        gateway,
        &token,
        &format!(
            r#"{{ municipality(istatCode: "082053") {{ name
                    events(first: 2) {{ name venue {{ name }} }}
                    benefitSchemes {{ name }} }}
                 citizen(fiscalCode: "{citizen}") {{ fiscalCode
                    eventBookings {{ code event {{ name }} }}
                    benefitApplications {{ protocolNumber status }}
                    properties {{ __typename }}
                    buildingPermits {{ kind status }}
                    taxPositions {{ year tribute amountDue {{ cents }} }} }} }}"#
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
    assert!(
        !c["benefitApplications"].as_array().unwrap().is_empty(),
        "{c}"
    );
    for list in ["properties", "buildingPermits", "taxPositions"] {
        assert!(c[list].is_array(), "{list}: {c}");
    }
    // Four services answered the one query.
    let per_service = &out["extensions"]["backendCalls"]["perService"];
    for service in ["culture", "social", "building", "taxes"] {
        assert!(
            per_service[service].as_u64().unwrap_or(0) >= 1,
            "{service} not called: {per_service}"
        );
    }

    // Issue 5's query: five themes about one comune, one round trip.
    let out = graphql(
        gateway,
        &token,
        r#"{ municipality(istatCode: "082053") {
              jobOffers(first: 3) { __typename } trainingCourses(first: 3) { __typename }
              publicWorks(first: 3) { __typename } airQuality { __typename } events(first: 3) { name } } }"#,
    )
    .await;
    assert!(out["errors"].is_null(), "{out}");
    let m = &out["data"]["municipality"];
    for list in [
        "jobOffers",
        "trainingCourses",
        "publicWorks",
        "airQuality",
        "events",
    ] {
        assert!(
            !m[list].as_array().unwrap_or(&Vec::new()).is_empty(),
            "{list} is empty: {m}"
        );
    }
    let per_service = &out["extensions"]["backendCalls"]["perService"];
    for service in ["employment", "publicworks", "environment", "culture"] {
        assert!(
            per_service[service].as_u64().unwrap_or(0) >= 1,
            "{service} not called: {per_service}"
        );
    }

    // The call count depends on the query's shape, not on how many comuni it covers.
    let shape = "events(first: 1) { name venue { name } } benefitSchemes { name }";
    let one = graphql(
        gateway,
        &token,
        &format!(r#"{{ municipality(istatCode: "082001") {{ {shape} }} }}"#),
    )
    .await;
    let all = graphql(
        gateway,
        &token,
        &format!("{{ municipalities {{ {shape} }} }}"),
    )
    .await;
    assert!(all["errors"].is_null(), "{all}");
    assert_eq!(all["data"]["municipalities"].as_array().unwrap().len(), 82);
    assert_eq!(calls(&one), calls(&all));
    assert_eq!(
        calls(&all),
        3,
        "culture extension, culture lookup, social extension"
    );

    platform.stop().await.expect("clean stop");
    let _ = std::fs::remove_dir_all(&dir);
}
