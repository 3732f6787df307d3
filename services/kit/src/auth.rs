//! Who is calling: the [`Principal`] every handler can read from its request, and the hook
//! ([`Authenticator`]) that derives it from the request headers.
//!
//! The kit runs the authenticator once per call, in a tower layer in front of every service, and puts
//! the principal into the request extensions. Until tokens are verified (the identity work), the
//! hosted services run with [`Anonymous`], which treats every caller as anonymous.

use std::sync::Arc;
use std::task::{Context, Poll};

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
    },
    /// A comune's own system (protocollo, ERP) calling gRPC directly.
    System {
        /// ISTAT code of the comune.
        istat_code: String,
    },
}

/// Derives the principal of a call from its HTTP/2 headers.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller, or UNAUTHENTICATED for credentials that cannot be verified.
    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Principal, Status>;
}

/// Treats every caller as [`Principal::Anonymous`]: the default until tokens are verified.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl Authenticator for Anonymous {
    fn authenticate(&self, _: &http::HeaderMap) -> Result<Principal, Status> {
        Ok(Principal::Anonymous)
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
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match self.auth.authenticate(req.headers()) {
            Ok(principal) => {
                req.extensions_mut().insert(principal);
                futures::future::Either::Left(self.inner.call(req))
            }
            Err(status) => {
                futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
