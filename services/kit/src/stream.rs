//! Server-streaming responses fed by a task, as the watch RPCs of every service need them.

use std::future::Future;

use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::Status;
use tonic::codegen::BoxStream;

use crate::host::Draining;

/// A response stream whose items `produce` sends through the given channel.
///
/// The producing task ends as soon as the client goes away (the receiver is dropped and the next
/// `send` fails). When the server starts draining, the stream ends at once with UNAVAILABLE, so
/// the client reconnects to another replica instead of holding the shutdown for the whole grace
/// period.
pub fn spawn_stream<T, F, Fut>(draining: Option<Draining>, produce: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    if let Some(mut draining) = draining {
        let tx = tx.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = draining.wait() => {
                    let _ = tx.send(Err(Status::unavailable("the server is shutting down; reconnect to continue"))).await;
                }
                () = tx.closed() => {}
            }
        });
    }
    tokio::spawn(produce(tx));
    // An error ends the stream: nothing may follow a status.
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).scan(false, |ended, item| {
        let out = if *ended { None } else { Some(item) };
        if matches!(out, Some(Err(_))) {
            *ended = true;
        }
        std::future::ready(out)
    });
    Box::pin(stream)
}
