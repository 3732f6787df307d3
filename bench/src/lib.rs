//! What `make bench` and the profiling harness (`examples/profile.rs`) share: the documents they
//! send, the direct call they compare with, and the HTTP/1.1 client that posts to the gateway, so
//! both measure exactly the same thing.

use std::net::SocketAddr;

use bytes::Bytes;
use patto_proto::culture::v1 as pb;
use patto_proto::culture::v1::culture_service_client::CultureServiceClient;
use tonic::transport::Channel;

/// A connection to the gateway.
pub type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<Bytes>>;

/// Palermo's first 20 events, their count only.
pub const COUNT: &str = r#"{ events(istatCode: "082053", first: 20) { totalCount } }"#;
/// Palermo's first 20 events, two fields of each.
pub const TWO_FIELDS: &str = r#"{ events(istatCode: "082053", first: 20) { nodes { id name } } }"#;
/// Palermo's first 20 events, every field: what `ListEvents` returns.
pub const ALL_FIELDS: &str = r#"{ events(istatCode: "082053", first: 20) { totalCount nodes { id istatCode name description category startTime endTime venueId organizer status attendanceMode price { cents } capacity seatsAvailable audience url } } }"#;
/// A comune, its events, each event's venue (a lookup) and the indicators of every service.
pub const CROSS_SERVICE: &str = r#"{ municipality(istatCode: "082053") { name events(first: 5) { name venue { name } } indicators { completedInteractions distinctCitizens } } }"#;

/// The direct call the gateway is compared with: `ListEvents` for Palermo's first 20 events.
pub async fn list_events(culture: &CultureServiceClient<Channel>) {
    let mut c = culture.clone();
    c.list_events(pb::ListEventsRequest {
        istat_code: "082053".into(),
        page: Some(patto_proto::common::v1::PageRequest {
            first: 20,
            after: String::new(),
        }),
        ..Default::default()
    })
    .await
    .expect("list");
}

/// A kept-alive HTTP/1.1 connection to the gateway at `addr`, without Nagle's delay.
pub async fn connect(addr: SocketAddr) -> std::io::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The JSON body that sends `query`.
pub fn body(query: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "query": query }).to_string())
}

/// Posts `body` to `/graphql` on `sender` and reads the answer whole; panics unless it is a
/// success without errors (`errors_allowed`: the cross-service query, whose absent services are
/// reported as errors).
pub async fn post(sender: &mut Sender, body: Bytes, errors_allowed: bool) {
    sender.ready().await.expect("ready");
    let request = hyper::Request::post("/graphql")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body))
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    assert!(response.status().is_success());
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    // A vectorized search: a byte-by-byte scan of the answer cost more than the gateway's own
    // work for the larger documents, and the clock runs here.
    assert!(
        errors_allowed || memchr::memmem::find(&bytes, b"\"errors\":").is_none(),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}
