//! The thematic services behind the gateway: one lazily connected, reused HTTP/2 channel each.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// One backend service.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Short name, e.g. `culture`.
    pub name: String,
    /// Its gRPC endpoint, e.g. `http://127.0.0.1:50053`.
    pub endpoint: String,
    channel: Channel,
}

/// Why a backend could not be configured.
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
    pub fn new(name: impl Into<String>, endpoint: impl Into<String>) -> Result<Self, BackendError> {
        let (name, endpoint) = (name.into(), endpoint.into());
        let channel = Endpoint::from_shared(endpoint.clone())
            .map_err(|e| BackendError {
                name: name.clone(),
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .connect_lazy();
        Ok(Self {
            name,
            endpoint,
            channel,
        })
    }

    /// The shared channel to this backend.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }
}

/// A backend's health as the gateway sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    /// Backend name.
    pub name: String,
    /// `SERVING`, `NOT_SERVING`, or `UNREACHABLE` when it does not answer.
    pub status: String,
    /// True when SERVING.
    pub serving: bool,
}

/// All backends.
#[derive(Debug, Clone, Default)]
pub struct Backends(pub Vec<Backend>);

impl Backends {
    /// The health of every backend, asked concurrently with a short deadline.
    pub async fn statuses(&self) -> Vec<BackendStatus> {
        futures::future::join_all(self.0.iter().map(|b| async move {
            let mut client = HealthClient::new(b.channel());
            let mut request = tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            });
            request.set_timeout(Duration::from_secs(2));
            let status = match client.check(request).await {
                Ok(r) => ServingStatus::try_from(r.into_inner().status)
                    .map(|s| s.as_str_name().to_owned())
                    .unwrap_or_else(|_| "UNKNOWN".into()),
                Err(_) => "UNREACHABLE".into(),
            };
            BackendStatus {
                name: b.name.clone(),
                serving: status == "SERVING",
                status,
            }
        }))
        .await
    }
}
