//! Who is calling: the [`Principal`] every handler can read from its request, and the hook
//! ([`Authenticator`]) that derives it from the request headers.
//!
//! The kit runs the authenticator once per call, in a tower layer in front of every service, and puts
//! the principal into the request extensions. Until tokens are verified (the identity work), the
//! hosted services run with [`Anonymous`], which treats every caller as anonymous.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::Status;

/// The caller of an RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials: may read public data only.
    Anonymous,
    /// A citizen, identified by codice fiscale.
    Citizen {
        /// Codice fiscale of the citizen.
        fiscal_code: String,
    },
    /// An operator working for one comune.
    Operator {
        /// ISTAT code of the comune.
        istat_code: String,
        /// Who the operator is (the token's `sub`): recorded in the audit of personal-data reads.
        subject: String,
    },
    /// A comune's own system (protocollo, ERP) calling gRPC directly.
    System {
        /// ISTAT code of the comune.
        istat_code: String,
        /// Which system it is (the token's `sub`): recorded in the audit of personal-data reads.
        subject: String,
    },
}

impl Principal {
    /// The role, as logs, metrics and the audit name it: `anonymous`, `citizen`, `operator`, `system`.
    pub fn kind(&self) -> &'static str {
        match self {
            Principal::Anonymous => "anonymous",
            Principal::Citizen { .. } => "citizen",
            Principal::Operator { .. } => "operator",
            Principal::System { .. } => "system",
        }
    }

    /// The comune an operator or a system is bound to.
    pub fn comune(&self) -> Option<&str> {
        match self {
            Principal::Operator { istat_code, .. } | Principal::System { istat_code, .. } => {
                Some(istat_code)
            }
            _ => None,
        }
    }

    /// Who the caller is: the citizen's fiscal code, the operator's or system's subject; `None`
    /// for anonymous callers.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Principal::Anonymous => None,
            Principal::Citizen { fiscal_code } => Some(fiscal_code),
            Principal::Operator { subject, .. } | Principal::System { subject, .. } => {
                Some(subject)
            }
        }
    }
}

/// Derives the principal of a call from its HTTP/2 headers. Asynchronous because verifying a
/// token may first have to fetch the issuer's current signing keys.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or UNAUTHENTICATED for credentials that cannot be verified.
    fn authenticate<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, Status>>;
}

/// Treats every caller as [`Principal::Anonymous`]: the default until tokens are verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl Authenticator for Anonymous {
    fn authenticate<'a>(
        &'a self,
        _: &'a http::HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, Status>> {
        Box::pin(std::future::ready(Ok(Principal::Anonymous)))
    }
}

/// The principal the kit attached to a request (anonymous when none was attached).
pub fn principal<T>(request: &tonic::Request<T>) -> Principal {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::Anonymous)
}

/// Tower layer that authenticates every call before it reaches a service.
#[derive(Clone)]
pub struct AuthLayer(pub Arc<dyn Authenticator>);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.0.clone(),
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        // The service that was polled ready serves this call; its clone takes its place for the
        // next one (tower's rule for services called from a future).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.authenticate(req.headers()).await {
                Ok(principal) => {
                    req.extensions_mut().insert(principal);
                    inner.call(req).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}
