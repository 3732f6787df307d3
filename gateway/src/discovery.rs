//! Where the schema comes from: each service's descriptors, read through gRPC server reflection,
//! with the descriptor set compiled into the gateway as the fallback for a service unreachable at
//! the time. Re-read on an interval and on SIGHUP; a changed set is composed, validated and
//! swapped in atomically, and a composition that fails keeps the last good schema.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use prost::Message;
use prost_reflect::DescriptorPool;
use prost_types::FileDescriptorProto;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::compose::{self, Composition, Origin, Source};
use crate::transport::{Backend, Backends, Invoker};

/// Why a service's descriptors could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The reflection call failed.
    #[error("reflection call to {service} failed: {status}")]
    Reflection {
        /// The service.
        service: String,
        /// The gRPC status.
        status: tonic::Status,
    },
    /// The service did not answer in time.
    #[error("{0} did not answer reflection in time")]
    Timeout(String),
    /// The descriptors do not form a valid set.
    #[error("descriptors of {service} are invalid: {reason}")]
    Invalid {
        /// The service.
        service: String,
        /// Why.
        reason: String,
    },
}

/// Reads every file a service announces for its theme and the indicators, with their imports.
/// Returns the encoded `FileDescriptorSet`: files are kept as the bytes the service sent, because
/// decoding them into `prost_types` would drop the custom options the mapping depends on.
pub async fn reflect(backend: &Backend, timeout: Duration) -> Result<Vec<u8>, DiscoveryError> {
    let service = backend.name.to_string();
    tokio::time::timeout(timeout, reflect_inner(backend))
        .await
        .map_err(|_| DiscoveryError::Timeout(service.clone()))?
}

async fn reflect_inner(backend: &Backend) -> Result<Vec<u8>, DiscoveryError> {
    let service = backend.name.to_string();
    let fail = |status: tonic::Status| DiscoveryError::Reflection {
        service: service.clone(),
        status,
    };
    let client = ServerReflectionClient::new(backend.channel());
    let ask = |req: MessageRequest| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(req),
    };

    // One exchange per request keeps the logic plain; reflection runs rarely.
    let call = |req: MessageRequest| {
        let mut client = client.clone();
        let request = ask(req);
        async move {
            let mut stream = client
                .server_reflection_info(futures::stream::iter([request]))
                .await?
                .into_inner();
            stream
                .next()
                .await
                .unwrap_or_else(|| Err(tonic::Status::unavailable("empty reflection stream")))
        }
    };

    let listed = call(MessageRequest::ListServices(String::new()))
        .await
        .map_err(fail)?;
    let services: Vec<String> = match listed.message_response {
        Some(MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        _ => Vec::new(),
    };
    let wanted: Vec<String> = services
        .into_iter()
        .filter(|s| {
            s.starts_with(&format!("patto.{}.", backend.name))
                || s == compose::INDICATORS_SERVICE
                || s == compose::AUDIT_SERVICE
        })
        .collect();
    if wanted.is_empty() {
        return Err(DiscoveryError::Invalid {
            service: service.clone(),
            reason: "it announces no patto service".into(),
        });
    }

    let mut files: BTreeMap<String, (FileDescriptorProto, Vec<u8>)> = BTreeMap::new();
    for symbol in &wanted {
        let resp = call(MessageRequest::FileContainingSymbol(symbol.clone()))
            .await
            .map_err(fail)?;
        absorb(&service, &mut files, resp)?;
    }
    // Fetch any import the server did not send along.
    loop {
        let missing: BTreeSet<String> = files
            .values()
            .flat_map(|(f, _)| f.dependency.iter().cloned())
            .filter(|d| !files.contains_key(d))
            .collect();
        if missing.is_empty() {
            break;
        }
        for name in missing {
            let resp = call(MessageRequest::FileByFilename(name.clone()))
                .await
                .map_err(fail)?;
            let before = files.len();
            absorb(&service, &mut files, resp)?;
            if files.len() == before {
                return Err(DiscoveryError::Invalid {
                    service: service.clone(),
                    reason: format!("import {name} is missing"),
                });
            }
        }
    }
    // A FileDescriptorSet is `repeated FileDescriptorProto file = 1`: each file, length-delimited.
    let mut set = Vec::new();
    for (_, bytes) in files.into_values() {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut set);
        prost::encoding::encode_varint(bytes.len() as u64, &mut set);
        set.extend_from_slice(&bytes);
    }
    Ok(set)
}

fn absorb(
    service: &str,
    files: &mut BTreeMap<String, (FileDescriptorProto, Vec<u8>)>,
    resp: tonic_reflection::pb::v1::ServerReflectionResponse,
) -> Result<(), DiscoveryError> {
    match resp.message_response {
        Some(MessageResponse::FileDescriptorResponse(f)) => {
            for bytes in f.file_descriptor_proto {
                let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                    DiscoveryError::Invalid {
                        service: service.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
                files.insert(file.name().to_owned(), (file, bytes));
            }
            Ok(())
        }
        Some(MessageResponse::ErrorResponse(e)) => Err(DiscoveryError::Invalid {
            service: service.to_owned(),
            reason: e.error_message,
        }),
        _ => Ok(()),
    }
}

/// The descriptor set compiled into the gateway.
pub fn embedded_pool() -> DescriptorPool {
    // The set is generated at build time from the same protos; failing to decode it is a build defect.
    DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap_or_default()
}

/// Sources for every backend: reflected where reachable, embedded otherwise.
pub async fn sources(backends: &Backends, timeout: Duration) -> Vec<(Source, Vec<u8>)> {
    let fetched = futures::future::join_all(
        backends
            .iter()
            .map(|b| async move { (b, reflect(b, timeout).await) }),
    )
    .await;
    let mut out = Vec::new();
    for (backend, result) in fetched {
        let name = backend.name.to_string();
        let reflected = result.and_then(|set| {
            DescriptorPool::decode(set.as_slice())
                .map(|pool| (pool, set))
                .map_err(|e| DiscoveryError::Invalid {
                    service: name.clone(),
                    reason: e.to_string(),
                })
        });
        match reflected {
            Ok((pool, fingerprint)) => out.push((
                Source {
                    service: name,
                    pool,
                    origin: Origin::Reflection,
                },
                fingerprint,
            )),
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "using the embedded contract until the service answers");
                out.push((
                    Source {
                        service: name,
                        pool: embedded_pool(),
                        origin: Origin::Embedded,
                    },
                    b"embedded".to_vec(),
                ));
            }
        }
    }
    out
}

/// A composition with the descriptor fingerprints it was made from.
type Live = (Arc<Composition>, Vec<Vec<u8>>);

/// The live composition, swapped atomically.
#[derive(Default)]
pub struct SchemaHandle {
    live: RwLock<Option<Live>>,
}

impl SchemaHandle {
    /// The live composition, once there is one.
    pub fn get(&self) -> Option<Arc<Composition>> {
        self.live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(c, _)| c.clone())
    }

    /// Re-reads the descriptors and, when they changed, composes and swaps in the new schema.
    /// Returns whether the schema changed; on a composition error the live schema stays.
    pub async fn refresh(
        &self,
        backends: &Backends,
        invoker: Arc<dyn Invoker>,
        timeout: Duration,
    ) -> Result<bool, compose::ComposeError> {
        let found = sources(backends, timeout).await;
        let fingerprints: Vec<Vec<u8>> = found.iter().map(|(_, f)| f.clone()).collect();
        let unchanged = self
            .live
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(_, f)| *f == fingerprints);
        if unchanged {
            return Ok(false);
        }
        let sources: Vec<Source> = found.into_iter().map(|(s, _)| s).collect();
        match compose::compose(&sources, invoker) {
            Ok(c) => {
                let origins: Vec<String> = c
                    .services
                    .iter()
                    .map(|(s, o)| format!("{s}:{o:?}"))
                    .collect();
                *self
                    .live
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) =
                    Some((Arc::new(c), fingerprints));
                tracing::info!(services = ?origins, "GraphQL schema composed");
                Ok(true)
            }
            Err(e) => {
                tracing::error!(error = %e, "composition failed; keeping the last good schema");
                Err(e)
            }
        }
    }
}

/// Re-reads the descriptors every `interval` and on SIGHUP, until `stop` completes.
pub async fn keep_fresh(
    handle: Arc<SchemaHandle>,
    backends: Backends,
    interval: Duration,
    timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    tokio::pin!(stop);
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
            () = hangup => tracing::info!("SIGHUP: re-reading the services' contracts"),
        }
        let invoker: Arc<dyn Invoker> = Arc::new(backends.clone());
        let _ = handle.refresh(&backends, invoker, timeout).await;
    }
}
