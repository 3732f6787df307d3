//! Server-streaming responses fed by a task, as the watch RPCs of every service need them.

use std::future::Future;

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
    tokio::spawn(produce(tx));
    // The stream ends when the producer does, after an error (nothing may follow a status), or
    // with UNAVAILABLE when the server drains. No task holds a sender, so the end is prompt.
    let stream = futures::stream::unfold(
        (rx, draining, false),
        |(mut rx, mut draining, ended)| async move {
            if ended {
                return None;
            }
            let drained = async {
                match draining.as_mut() {
                    Some(d) => d.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                item = rx.recv() => item.map(|item| {
                    let last = item.is_err();
                    (item, (rx, draining, last))
                }),
                () = drained => Some((
                    Err(Status::unavailable("the server is shutting down; reconnect to continue")),
                    (rx, draining, true),
                )),
            }
        },
    );
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_finite_stream_ends_when_its_producer_does() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let draining = crate::host::Draining::from_receiver(rx);
        let items: Vec<_> = spawn_stream(Some(draining), |tx| async move {
            for i in 0..3 {
                let _ = tx.send(Ok(i)).await;
            }
        })
        .collect()
        .await;
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), 3);
        assert_eq!(items.len(), 3);
        drop(tx);
    }

    #[tokio::test]
    async fn draining_ends_an_endless_stream_with_unavailable() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut stream = spawn_stream(
            Some(crate::host::Draining::from_receiver(rx)),
            |tx| async move {
                let _ = tx.send(Ok(1)).await;
                std::future::pending::<()>().await;
            },
        );
        assert_eq!(stream.next().await.unwrap().unwrap(), 1);
        let _ = tx.send(true);
        assert_eq!(
            stream.next().await.unwrap().unwrap_err().code(),
            tonic::Code::Unavailable
        );
        assert!(stream.next().await.is_none());
    }
}
