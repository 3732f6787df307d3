//! A client that goes away cancels the backend calls made for it: the gateway drops the
//! operation, tonic resets the HTTP/2 stream, and the service stops working on an answer nobody
//! will read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use patto_gateway::GatewayConfig;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

/// Sends on `0` when dropped: tells the test the backend's handler was cancelled.
struct Cancelled(Option<oneshot::Sender<()>>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Clone)]
struct Slow {
    arrived: mpsc::UnboundedSender<()>,
    dropped: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

/// A culture backend whose `ListEvents` never answers (within the test), over real HTTP/2.
async fn slow_backend(slow: Slow) -> String {
    let handler = move || {
        let slow = slow.clone();
        async move {
            let _guard = Cancelled(slow.dropped.lock().unwrap().take());
            let _ = slow.arrived.send(());
            tokio::time::sleep(Duration::from_secs(60)).await;
            "too late"
        }
    };
    let router = axum::Router::new().route(
        "/patto.culture.v1.CultureService/ListEvents",
        axum::routing::post(handler),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic::service::Routes::from(router))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_disconnect_cancels_the_backend_call() {
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = oneshot::channel();
    let culture = slow_backend(Slow {
        arrived: arrived_tx,
        dropped: Arc::new(Mutex::new(Some(dropped_tx))),
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = GatewayConfig::for_backends(addr, vec![("culture".into(), culture)]);
    config.operation_timeout = Duration::from_secs(30);
    let (stop, stopped) = oneshot::channel::<()>();
    let gateway = tokio::spawn(patto_gateway::run(config, listener, async {
        let _ = stopped.await;
    }));

    // A client posts a query and hangs up once the backend is working on it.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"query":"{ events(first: 1) { totalCount } }"}"#;
    let request = format!(
        "POST /graphql HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), arrived.recv())
        .await
        .expect("the backend call arrives")
        .unwrap();
    drop(client);

    // The backend's handler is dropped long before its 60 s would have run out.
    tokio::time::timeout(Duration::from_secs(10), dropped)
        .await
        .expect("the backend call is cancelled when the client goes away")
        .unwrap();

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), gateway).await;
}
