//! Server-streaming responses fed by a task, as the watch RPCs of every service need them.

use std::future::Future;

use tokio::sync::mpsc;
use tonic::Status;
use tonic::codegen::BoxStream;

/// A response stream whose items `produce` sends through the given channel. The producing task
/// ends as soon as the client goes away: the receiver is dropped, and the next `send` fails.
pub fn spawn_stream<T, F, Fut>(produce: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
