//! Calling the services with dynamic messages: one reused HTTP/2 channel per service, the
//! operation's remaining time budget sent as `grpc-timeout`, retries only for RPCs marked
//! `NO_SIDE_EFFECTS`, and a circuit breaker per service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::breaker::Breaker;
use crate::wire::Decode;

/// One call to a backend.
#[derive(Debug, Clone)]
pub struct Call {
    /// Short name of the service, e.g. `culture`.
    pub service: Arc<str>,
    /// The RPC.
    pub method: MethodDescriptor,
    /// The request.
    pub request: DynamicMessage,
    /// When the GraphQL operation's budget runs out.
    pub deadline: Option<Instant>,
    /// Metadata forwarded to the service (e.g. `authorization`, `traceparent`).
    pub metadata: Vec<(String, String)>,
    /// Whether the call may be retried (the RPC has no side effects).
    pub retryable: bool,
    /// How much of the response to decode (a compiled plan's choice).
    pub decode: Decode,
}

/// A failed call, with the service it failed on.
#[derive(Debug, Clone)]
pub struct CallError {
    /// Short name of the service.
    pub service: Arc<str>,
    /// The gRPC status.
    pub status: Status,
}

/// The result of a unary call.
pub type UnaryResult = Result<DynamicMessage, CallError>;
/// The result of opening a server stream.
pub type StreamResult = Result<BoxStream<'static, UnaryResult>, CallError>;

/// Executes backend calls; the composed schema's resolvers go through this, so composition can
/// be tested without a network.
pub trait Invoker: Send + Sync + 'static {
    /// A unary call.
    fn unary(&self, call: Call) -> BoxFuture<'static, UnaryResult>;
    /// A server-streaming call.
    fn server_streaming(&self, call: Call) -> BoxFuture<'static, StreamResult>;
}

/// Encodes and decodes `DynamicMessage`s for tonic (prost-reflect has no codec of its own),
/// decoding as much of a response as [`Decode`] says.
#[derive(Clone)]
pub struct DynamicCodec(pub MessageDescriptor, pub Decode);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.0.clone(), self.1.clone())
    }
}

/// Encoder half of [`DynamicCodec`].
#[derive(Clone)]
pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn encode(&mut self, item: DynamicMessage, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode: {e}")))
    }
}

/// Decoder half of [`DynamicCodec`].
#[derive(Clone)]
pub struct DynamicDecoder(MessageDescriptor, Decode);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<DynamicMessage>, Status> {
        // Taking the message out of the buffer shares its bytes (no copy), and prost decodes a
        // slice several times faster than it reads through `Buf`'s chunk/advance calls.
        decode_response(&self.0, &src.copy_to_bytes(src.remaining()), &self.1).map(Some)
    }
}

/// Decodes the encoded response `bytes`, of type `desc`, as far as `decode` says.
pub fn decode_response(
    desc: &MessageDescriptor,
    bytes: &Bytes,
    decode: &Decode,
) -> Result<DynamicMessage, Status> {
    // A message the filter or the split cannot read is decoded whole, which reports what is
    // wrong.
    let part = match decode {
        Decode::Whole => None,
        Decode::Filter(filter) => {
            let mut kept = Vec::with_capacity(bytes.len());
            filter.apply(bytes, &mut kept).map(|()| kept)
        }
        Decode::RawList(list) => list.split(bytes),
    };
    DynamicMessage::decode(desc.clone(), part.as_deref().unwrap_or(bytes))
        .map_err(|e| Status::internal(format!("decode: {e}")))
}

/// A backend service: its channel and its circuit breaker.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Short name, e.g. `culture`.
    pub name: Arc<str>,
    /// gRPC endpoint URL.
    pub endpoint: String,
    channel: Channel,
    breaker: Arc<Breaker>,
    calls: Arc<AtomicU64>,
}

/// A backend endpoint that is not a URL.
#[derive(Debug, thiserror::Error)]
#[error(
    "backend {name}: `{endpoint}` is not a valid endpoint URL ({reason}); use e.g. http://culture:50053"
)]
pub struct BackendError {
    name: String,
    endpoint: String,
    reason: String,
}

impl Backend {
    /// A backend whose channel connects on first use and reconnects by itself.
    pub fn new(name: &str, endpoint: &str) -> Result<Self, BackendError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| BackendError {
                name: name.into(),
                endpoint: endpoint.into(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .connect_lazy();
        Ok(Self {
            name: name.into(),
            endpoint: endpoint.to_owned(),
            channel,
            breaker: Arc::new(Breaker::default()),
            calls: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The shared channel.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The circuit breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Calls made to this backend since start.
    pub fn calls_made(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn request(&self, call: &Call) -> Result<tonic::Request<DynamicMessage>, Status> {
        let mut req = tonic::Request::new(call.request.clone());
        if let Some(deadline) = call.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Status::deadline_exceeded(
                    "the operation's time budget is spent",
                ));
            }
            req.set_timeout(left);
        }
        // Continue the operation's trace in the service (W3C traceparent).
        let mut trace = http::HeaderMap::new();
        patto_service_kit::observe::inject_current(&mut trace);
        for (k, v) in trace.iter() {
            if let (Ok(k), Ok(v)) = (
                tonic::metadata::MetadataKey::<tonic::metadata::Ascii>::from_bytes(
                    k.as_str().as_bytes(),
                ),
                tonic::metadata::MetadataValue::<tonic::metadata::Ascii>::try_from(v.as_bytes()),
            ) {
                req.metadata_mut().insert(k, v);
            }
        }
        for (k, v) in &call.metadata {
            if let (Ok(k), Ok(v)) = (
                k.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(),
                v.parse::<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>(),
            ) {
                req.metadata_mut().insert(k, v);
            }
        }
        Ok(req)
    }

    fn path(method: &MethodDescriptor) -> Result<PathAndQuery, Status> {
        PathAndQuery::from_maybe_shared(format!(
            "/{}/{}",
            method.parent_service().full_name(),
            method.name()
        ))
        .map_err(|e| Status::internal(format!("bad method path: {e}")))
    }

    async fn unary_once(&self, call: &Call) -> Result<DynamicMessage, Status> {
        let span = tracing::info_span!(
            "grpc.client",
            otel.name = %format!("{}/{}", call.method.parent_service().full_name(), call.method.name()),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %call.method.parent_service().full_name(),
            rpc.method = %call.method.name(),
            peer.service = %self.name,
        );
        tracing::Instrument::instrument(self.unary_traced(call), span).await
    }

    async fn unary_traced(&self, call: &Call) -> Result<DynamicMessage, Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("{} is unreachable: {e}", self.name)))?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let path = Self::path(&call.method)?;
        let response = grpc
            .unary(
                self.request(call)?,
                path,
                DynamicCodec(call.method.output(), call.decode.clone()),
            )
            .await?;
        Ok(response.into_inner())
    }

    /// A unary call through the breaker, retried once on UNAVAILABLE when it is safe to.
    pub async fn unary(&self, call: Call) -> UnaryResult {
        let fail = |status: Status| CallError {
            service: self.name.clone(),
            status,
        };
        if !self.breaker.allow() {
            return Err(fail(Status::unavailable(format!(
                "{} is failing; calls are paused for a moment",
                self.name
            ))));
        }
        let attempts = if call.retryable { 2 } else { 1 };
        let mut last = Status::unknown("no attempt");
        for attempt in 0..attempts {
            match self.unary_once(&call).await {
                Ok(m) => {
                    self.breaker.success();
                    return Ok(m);
                }
                Err(s) => {
                    let transient = matches!(s.code(), Code::Unavailable);
                    if is_failure(&s) {
                        self.breaker.failure();
                    } else {
                        // The service answered: it is healthy even if the request was bad.
                        self.breaker.success();
                    }
                    last = s;
                    if !transient || attempt + 1 == attempts || !self.breaker.allow() {
                        break;
                    }
                }
            }
        }
        Err(fail(last))
    }

    /// Opens a server stream through the breaker.
    pub async fn server_streaming(&self, call: Call) -> StreamResult {
        let name = self.name.clone();
        let fail = |status: Status| CallError {
            service: name.clone(),
            status,
        };
        if !self.breaker.allow() {
            return Err(fail(Status::unavailable(format!(
                "{} is failing; calls are paused for a moment",
                self.name
            ))));
        }
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.map_err(|e| {
            fail(Status::unavailable(format!(
                "{} is unreachable: {e}",
                self.name
            )))
        })?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let path = Self::path(&call.method).map_err(fail)?;
        // A subscription lives as long as the client wants it: no deadline.
        let call = Call {
            deadline: None,
            ..call
        };
        let request = self.request(&call).map_err(fail)?;
        match grpc
            .server_streaming(
                request,
                path,
                DynamicCodec(call.method.output(), Decode::Whole),
            )
            .await
        {
            Ok(response) => {
                self.breaker.success();
                let service = self.name.clone();
                Ok(response
                    .into_inner()
                    .map(move |item| {
                        item.map_err(|status| CallError {
                            service: service.clone(),
                            status,
                        })
                    })
                    .boxed())
            }
            Err(s) => {
                if is_failure(&s) {
                    self.breaker.failure();
                }
                Err(fail(s))
            }
        }
    }
}

/// Statuses that say the service itself is in trouble (count against the breaker).
fn is_failure(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Internal
    )
}

/// The backends by name: the production [`Invoker`].
#[derive(Debug, Clone, Default)]
pub struct Backends(pub Arc<Vec<Backend>>);

impl Backends {
    /// The backend called `name`.
    pub fn get(&self, name: &str) -> Option<&Backend> {
        self.0.iter().find(|b| &*b.name == name)
    }

    /// Every backend.
    pub fn iter(&self) -> impl Iterator<Item = &Backend> {
        self.0.iter()
    }
}

impl Invoker for Backends {
    fn unary(&self, call: Call) -> BoxFuture<'static, UnaryResult> {
        let backend = self.get(&call.service).cloned();
        Box::pin(async move {
            match backend {
                Some(b) => b.unary(call).await,
                None => Err(CallError {
                    service: call.service.clone(),
                    status: Status::unavailable("unknown service"),
                }),
            }
        })
    }

    fn server_streaming(&self, call: Call) -> BoxFuture<'static, StreamResult> {
        let backend = self.get(&call.service).cloned();
        Box::pin(async move {
            match backend {
                Some(b) => b.server_streaming(call).await,
                None => Err(CallError {
                    service: call.service.clone(),
                    status: Status::unavailable("unknown service"),
                }),
            }
        })
    }
}
