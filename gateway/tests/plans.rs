//! Compiled plans answer exactly as the engine does: the same documents, sent twice, give the
//! same bytes (first by the engine, then by the document's plan); documents plans do not cover
//! stay with the engine; a plan that cannot finish hands over without calling any RPC twice.

mod support;

use serde_json::{Value, json};
use support::{Gateway, config, culture};

const JSON: (&str, &str) = ("content-type", "application/json");
const DEBUG: (&str, &str) = ("x-patto-debug", "calls,plan");

async fn post(gw: &Gateway, body: &Value, debug: bool) -> support::Reply {
    let headers: &[(&str, &str)] = if debug { &[JSON, DEBUG] } else { &[JSON] };
    gw.send("POST", "/graphql", headers, &body.to_string())
        .await
}

fn executor(reply: &support::Reply) -> &str {
    reply.body["extensions"]["executor"].as_str().unwrap_or("")
}

#[tokio::test]
async fn plans_answer_byte_for_byte_as_the_engine() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture)).await;

    let page = post(
        &gw,
        &json!({"query": r#"{ events(istatCode: "082053", first: 2) { pageInfo { endCursor } } }"#}),
        false,
    )
    .await;
    let cursor = page.body["data"]["events"]["pageInfo"]["endCursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let cases = [
        json!({"query": r#"{ events(istatCode: "082053", first: 20) { totalCount nodes { id istatCode name description category startTime endTime venueId organizer status attendanceMode price { cents } capacity seatsAvailable audience url } } }"#}),
        json!({"query": r#"{ events(istatCode: "082053", first: 3) { __typename totalCount edges { cursor node { __typename id name price { cents } startTime } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor __typename } } }"#}),
        json!({"query": r#"{ __typename a: events(istatCode: "082053", first: 2) { nodes { key: id title: name } } b: events(istatCode: "082001", first: 1) { totalCount } venues(istatCode: "082053") { nodes { id name } } }"#}),
        json!({
            "query": r#"query Page($comune: String!, $n: Int, $after: String) { events(istatCode: $comune, first: $n, after: $after) { nodes { id status } pageInfo { hasPreviousPage hasNextPage } } }"#,
            "variables": {"comune": "082053", "n": 2, "after": cursor},
            "operationName": "Page",
        }),
        json!({
            "query": r#"query Omitted($n: Int) { events(istatCode: "082053", first: $n) { totalCount nodes { id } } }"#,
        }),
        json!({"query": r#"{ events { totalCount nodes { id category } } }"#}),
        // Fragments, as client libraries write them, expanded in place.
        json!({"query": r#"query { ...Root } fragment Root on Query { __typename events(istatCode: "082053", first: 2) { ...Page } } fragment Page on EventConnection { totalCount nodes { ...Item __typename } } fragment Item on Event { id name price { ... on Money { cents } } }"#}),
        json!({"query": r#"{ events(istatCode: "082053", first: 2) { ... on EventConnection { totalCount } ... { nodes { id } } } }"#}),
        // Selections that decode a part of each item, or none of it.
        json!({"query": r#"{ events(istatCode: "082053", first: 4) { edges { cursor } totalCount } }"#}),
        json!({"query": r#"{ events(istatCode: "082053", first: 4) { nodes { price { cents } name } edges { node { id } } } }"#}),
    ];
    for case in &cases {
        let engine = post(&gw, case, false).await;
        assert_eq!(engine.status, 200, "{}", engine.text);
        assert!(engine.body.get("errors").is_none(), "{}", engine.text);
        let compiled = post(&gw, case, false).await;
        assert_eq!(compiled.text, engine.text, "same bytes for {case}");
        let shown = post(&gw, case, true).await;
        assert_eq!(executor(&shown), "compiled", "{case}: {}", shown.text);
        // One call per root field backed by an RPC, as in the engine.
        let query = case["query"].as_str().unwrap();
        let roots = ["events", "venues"]
            .iter()
            .map(|f| query.matches(&format!(" {f}")).count())
            .sum::<usize>();
        assert_eq!(
            shown.body["extensions"]["backendCalls"]["total"],
            json!(roots)
        );
    }

    // Every compiled answer is counted for the operators.
    assert_eq!(
        gw.metric("patto_gateway_planned_operations_total").await,
        2 * cases.len() as u64
    );

    // Other variable values run the same plan; values that do not fit go to the engine.
    let other = json!({
        "query": cases[3]["query"],
        "variables": {"comune": "082001", "n": 1},
        "operationName": "Page",
    });
    let reply = post(&gw, &other, true).await;
    assert_eq!(executor(&reply), "compiled", "{}", reply.text);
    assert_eq!(
        reply.body["data"]["events"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let wrong = json!({
        "query": cases[3]["query"],
        "variables": {"comune": "082001", "n": "one"},
        "operationName": "Page",
    });
    let reply = post(&gw, &wrong, true).await;
    assert_eq!(executor(&reply), "engine", "{}", reply.text);
    assert!(
        reply.body["errors"][0]["message"].is_string(),
        "{}",
        reply.text
    );
    assert_eq!(reply.body["extensions"]["backendCalls"]["total"], json!(0));

    // An argument the RPC refuses: no call, the engine's BAD_USER_INPUT.
    let too_many = json!({
        "query": cases[3]["query"],
        "variables": {"comune": "082053", "n": 500},
        "operationName": "Page",
    });
    let reply = post(&gw, &too_many, true).await;
    assert_eq!(executor(&reply), "engine", "{}", reply.text);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(reply.body["extensions"]["backendCalls"]["total"], json!(0));

    gw.stop().await;
    let _ = culture.stop().await;
}

#[tokio::test]
async fn documents_plans_do_not_cover_stay_with_the_engine() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture)).await;
    let documents = [
        // A reference resolved through a lookup.
        r#"{ events(istatCode: "082053", first: 2) { nodes { id venue { name } } } }"#,
        // Directives, also on a fragment.
        r#"{ events(istatCode: "082053", first: 2) { totalCount @include(if: true) } }"#,
        r#"{ events(istatCode: "082053", first: 2) { ... @skip(if: false) { totalCount } } }"#,
        // The same response key twice (merged by the engine), also through a fragment.
        r#"{ events(istatCode: "082053", first: 2) { totalCount totalCount } }"#,
        r#"{ events(istatCode: "082053", first: 2) { totalCount ...Count } } fragment Count on EventConnection { totalCount }"#,
        // Gateway entities.
        r#"{ municipality(istatCode: "082053") { name } }"#,
    ];
    for query in documents {
        let body = json!({ "query": query });
        let first = post(&gw, &body, true).await;
        let second = post(&gw, &body, true).await;
        assert_eq!(executor(&second), "engine", "{query}: {}", second.text);
        assert_eq!(
            first.body["data"], second.body["data"],
            "{query}: {}",
            second.text
        );
    }
    gw.stop().await;
    let _ = culture.stop().await;
}

#[tokio::test]
async fn a_failed_call_is_reported_by_the_engine_without_calling_again() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture)).await;
    let body =
        json!({"query": r#"{ __typename events(istatCode: "082053", first: 2) { totalCount } }"#});
    let ok = post(&gw, &body, false).await;
    assert!(ok.body.get("errors").is_none(), "{}", ok.text);
    assert_eq!(executor(&post(&gw, &body, true).await), "compiled");

    let _ = culture.stop().await;
    let reply = post(&gw, &body, true).await;
    assert_eq!(executor(&reply), "engine", "{}", reply.text);
    assert_eq!(reply.body["data"]["__typename"], "Query", "{}", reply.text);
    assert_eq!(reply.body["data"]["events"], Value::Null, "{}", reply.text);
    assert_eq!(reply.body["errors"][0]["extensions"]["service"], "culture");
    assert_eq!(reply.body["errors"][0]["path"], json!(["events"]));
    // The plan's call is the engine's: one call, not two.
    assert_eq!(reply.body["extensions"]["backendCalls"]["total"], json!(1));
    gw.stop().await;
}

/// A plan writes items from the wire; when another root fails, the engine takes over the plan's
/// results with those items put back, and calls nothing twice.
#[tokio::test]
async fn items_set_aside_are_handed_over_whole() {
    let culture = culture().await;
    let gw = Gateway::start(config(&culture)).await;
    let query = r#"query($a: String!, $b: String!) { a: events(istatCode: $a, first: 2) { nodes { id name price { cents } } } b: events(istatCode: $b, first: 1) { totalCount } }"#;
    let body = |b: &str| json!({"query": query, "variables": {"a": "082053", "b": b}});
    let engine = post(&gw, &body("082053"), false).await;
    assert!(engine.body.get("errors").is_none(), "{}", engine.text);
    let planned = post(&gw, &body("082053"), true).await;
    assert_eq!(executor(&planned), "compiled", "{}", planned.text);
    assert_eq!(planned.body["data"], engine.body["data"]);

    // `b` names no comune of the Città Metropolitana: culture refuses it.
    let reply = post(&gw, &body("999999"), true).await;
    assert_eq!(executor(&reply), "engine", "{}", reply.text);
    assert_eq!(
        reply.body["data"]["a"], engine.body["data"]["a"],
        "{}",
        reply.text
    );
    assert_eq!(reply.body["data"]["b"], Value::Null);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    assert_eq!(reply.body["extensions"]["backendCalls"]["total"], json!(2));
    gw.stop().await;
    let _ = culture.stop().await;
}
