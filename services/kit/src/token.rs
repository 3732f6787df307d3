//! Verified identity: OIDC bearer tokens (JWT) checked against the issuer's public keys (JWKS) and
//! turned into the [`Principal`] every handler reads; and a local dev issuer for the embedded
//! all-in-one.
//!
//! - Production: `PATTO_JWKS_URL` and `PATTO_JWT_ISSUER` (and `PATTO_JWT_AUDIENCE`, default
//!   `patto`). [`TokenVerifier`] fetches the JWKS, caches its keys by `kid`, fetches again when a
//!   token names a `kid` it does not know (at most once per [`REFETCH_MIN_INTERVAL`]; concurrent
//!   misses share one fetch) and re-reads the set every [`REFRESH_INTERVAL`], so the identity
//!   provider can rotate keys without a restart.
//! - Development: `PATTO_DEV_ISSUER_KEY` names a P-256 key file; [`DevIssuer`] signs ES256 tokens
//!   with it (`patto token`) and the services trust its public key.
//! - Neither: every caller is [`Principal::Anonymous`], as before tokens were verified.
//!
//! Claims: `patto_role` (`citizen`, `operator`, `system`), `patto_comune` (ISTAT code of one of the
//! 82 comuni) for operators and systems, `sub` naming the operator or system, and for citizens the
//! fiscal code as SPID/CIE send it (`https://attributes.eid.gov.it/fiscal_number` =
//! `TINIT-<codice fiscale>`).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};
use tonic::Status;

use crate::auth::{Anonymous, Authenticator, Principal};
use crate::config::{ConfigError, Source};

pub use jsonwebtoken::jwk::JwkSet;

/// Claim naming the caller's role: `citizen`, `operator` or `system`.
pub const ROLE_CLAIM: &str = "patto_role";
/// Claim holding the ISTAT code of the comune an operator or a system works for.
pub const COMUNE_CLAIM: &str = "patto_comune";
/// The SPID/CIE attribute carrying the citizen's fiscal code, as `TINIT-<codice fiscale>`.
pub const SPID_FISCAL_NUMBER_CLAIM: &str = "https://attributes.eid.gov.it/fiscal_number";
/// The short name some identity brokers use for the same attribute.
pub const FISCAL_NUMBER_CLAIM: &str = "fiscal_number";
/// `iss` of the tokens the [`DevIssuer`] signs.
pub const DEV_ISSUER: &str = "patto-dev";
/// The audience (`aud`) Patto's services expect unless `PATTO_JWT_AUDIENCE` says otherwise.
pub const DEFAULT_AUDIENCE: &str = "patto";
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Least time between two JWKS fetches: a flood of tokens with made-up `kid`s cannot turn into a
/// flood of requests to the identity provider.
pub const REFETCH_MIN_INTERVAL: Duration = Duration::from_secs(30);
/// Age after which the cached JWKS is read again even if every `kid` is known (keys removed by
/// the identity provider stop being trusted within this time).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(600);

/// Variable naming the identity provider's JWKS URL (its `jwks_uri`).
pub const JWKS_URL_VAR: &str = "PATTO_JWKS_URL";
/// Variable naming the tokens' expected issuer (`iss`); required with [`JWKS_URL_VAR`].
pub const ISSUER_VAR: &str = "PATTO_JWT_ISSUER";
/// Variable naming the tokens' expected audience (`aud`), default [`DEFAULT_AUDIENCE`].
pub const AUDIENCE_VAR: &str = "PATTO_JWT_AUDIENCE";
/// Variable naming the dev issuer's private key file (created when missing).
pub const DEV_ISSUER_KEY_VAR: &str = "PATTO_DEV_ISSUER_KEY";

/// Longer tokens are refused before any parsing: real access tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// A JWKS is a few KiB; a larger answer is a misconfigured URL, not keys.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Subjects go into the audit of personal-data reads: keep them bounded.
const MAX_SUBJECT_CHARS: usize = 256;
/// Budget of one JWKS fetch: callers wait on it for an unknown `kid`.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a verifier or the dev issuer could not be set up, or a dev token not issued.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The dev issuer's key file cannot be read, parsed or written.
    #[error(
        "dev issuer key {}: {reason}. Delete the file to have a new key generated, or point {DEV_ISSUER_KEY_VAR} at a PKCS#8 PEM P-256 private key.",
        path.display()
    )]
    DevKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A private key that is not a PKCS#8 PEM P-256 key.
    #[error("not a PKCS#8 PEM P-256 private key ({0})")]
    Key(String),
    /// A JWKS with no key usable for RS256 or ES256 signatures.
    #[error("the JWKS has no RS256 or ES256 signing key{0}")]
    Jwks(String),
    /// A JWKS URL that is not http(s).
    #[error("{0:?} is not an http:// or https:// URL")]
    JwksUrl(String),
    /// The HTTP client for the JWKS could not be built.
    #[error("HTTP client for the JWKS: {0}")]
    HttpClient(String),
    /// A dev token asked for an identity that would not verify.
    #[error("cannot issue the token: {0}")]
    Issue(String),
}

/// UNAUTHENTICATED with `message`: what is wrong and how to fix it, never the token itself.
fn unauthenticated(message: impl Into<String>) -> Status {
    Status::unauthenticated(message.into())
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// One public key and the only algorithm it verifies (no algorithm confusion: an RSA key never
/// checks an ES256 token, nor the reverse).
struct VerifyKey {
    alg: Algorithm,
    key: DecodingKey,
}

/// Usable keys of one JWKS.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    all: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    fn from_jwks<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> Self {
        let mut set = KeySet::default();
        for jwk in keys {
            let Some(key) = verify_key(jwk) else { continue };
            let key = Arc::new(key);
            if let Some(kid) = &jwk.common.key_id {
                set.by_kid.insert(kid.clone(), key.clone());
            }
            set.all.push(key);
        }
        set
    }

    /// Reads a JWKS document key by key, so that one key of an unknown type (the set may also
    /// hold encryption keys) does not make the whole set unreadable.
    fn from_json(body: &[u8]) -> Result<Self, String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("no \"keys\" array")?;
        let jwks: Vec<Jwk> = keys
            .iter()
            .filter_map(|k| serde_json::from_value(k.clone()).ok())
            .collect();
        let set = KeySet::from_jwks(&jwks);
        if set.all.is_empty() {
            return Err("no RS256 or ES256 signing key in it".into());
        }
        Ok(set)
    }

    /// The key for a token's `kid`; a token without `kid` is accepted only when the set has a
    /// single key, so there is no guessing.
    fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.all.len() == 1 => self.all.first().cloned(),
            None => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty()
    }
}

/// The verifying key of a JWK, if it is a signature key for RS256 or ES256 (P-256).
fn verify_key(jwk: &Jwk) -> Option<VerifyKey> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256) | None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (Some(KeyAlgorithm::ES256) | None, AlgorithmParameters::EllipticCurve(p))
            if p.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyKey { alg, key })
}

/// Why no key was found for a token.
enum Lookup {
    /// The token names a key the issuer does not (or no longer) publish.
    UnknownKey,
    /// The token has no `kid` and the set holds several keys.
    NoKid,
    /// No key is known at all because the JWKS could not be fetched.
    Unreachable,
}

/// Where a verifier's keys come from.
enum Keys {
    /// A fixed set (the dev issuer, tests).
    Static(KeySet),
    /// The identity provider's JWKS URL.
    Remote(RemoteKeys),
}

impl Keys {
    async fn find(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, Lookup> {
        match self {
            Keys::Static(set) => set.find(kid).ok_or(match kid {
                Some(_) => Lookup::UnknownKey,
                None => Lookup::NoKid,
            }),
            Keys::Remote(remote) => remote.find(kid).await,
        }
    }
}

/// The JWKS cache.
#[derive(Default)]
struct Cache {
    keys: Arc<KeySet>,
    /// When the current set was fetched.
    fetched_at: Option<Instant>,
    /// When a fetch was last started, successful or not (the rate limit).
    attempted_at: Option<Instant>,
}

/// Keys fetched from a JWKS URL, cached by `kid`.
struct RemoteKeys {
    url: reqwest::Url,
    client: reqwest::Client,
    // A plain lock, never held across an await: readers only clone the `Arc`.
    cache: RwLock<Cache>,
    // One fetch at a time: concurrent misses wait for it and then read its result.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
    refetch_min: Duration,
    refresh_every: Duration,
}

impl RemoteKeys {
    /// The cached set and whether it is still fresh.
    fn snapshot(&self) -> (Arc<KeySet>, bool) {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        let fresh = cache
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.refresh_every);
        (cache.keys.clone(), fresh)
    }

    async fn find(&self, kid: Option<&str>) -> Result<Arc<VerifyKey>, Lookup> {
        let (seen, fresh) = self.snapshot();
        let cached = seen.find(kid);
        let _guard = match cached {
            Some(key) if fresh => return Ok(key),
            // Stale set that has the key: one caller refreshes, the others go on with the cached
            // key instead of queueing behind the fetch.
            Some(key) => match self.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(key),
            },
            None => self.fetching.lock().await,
        };
        let (latest, _) = self.snapshot();
        let fetched = if Arc::ptr_eq(&latest, &seen) {
            self.fetch_if_allowed().await
        } else {
            // Another caller fetched while this one waited: its fetch serves this call too.
            true
        };
        let (latest, _) = self.snapshot();
        match latest.find(kid) {
            Some(key) => Ok(key),
            None if latest.is_empty() && !fetched => Err(Lookup::Unreachable),
            None if kid.is_none() => Err(Lookup::NoKid),
            None => Err(Lookup::UnknownKey),
        }
    }

    /// Fetches the JWKS unless a fetch started less than `refetch_min` ago; true when the cache
    /// now holds a freshly fetched set.
    async fn fetch_if_allowed(&self) -> bool {
        {
            let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
            if cache
                .attempted_at
                .is_some_and(|at| at.elapsed() < self.refetch_min)
            {
                return false;
            }
            cache.attempted_at = Some(Instant::now());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch().await {
            Ok(set) => {
                tracing::info!(jwks_url = %self.url, keys = set.all.len(), "JWKS fetched");
                let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
                cache.keys = Arc::new(set);
                cache.fetched_at = Some(Instant::now());
                true
            }
            Err(reason) => {
                // The keys already known stay in use: an identity provider that is briefly down
                // must not log everybody out.
                tracing::warn!(jwks_url = %self.url, %reason, "JWKS fetch failed; keeping the keys already known");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err("answer larger than 1 MiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::from_json(&body)
    }
}

// ---------------------------------------------------------------------------------------------
// Verifier
// ---------------------------------------------------------------------------------------------

/// Verifies `authorization: Bearer <jwt>` on every call: signature (RS256 or ES256) against the
/// issuer's keys, `iss`, `aud`, `exp` and `nbf` (with [`LEEWAY`]); then maps the claims to a
/// [`Principal`] with [`principal_from_claims`]. No header means [`Principal::Anonymous`].
pub struct TokenVerifier {
    issuer: String,
    audience: String,
    keys: Keys,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = match &self.keys {
            Keys::Static(set) => format!("{} static key(s)", set.all.len()),
            Keys::Remote(remote) => format!("JWKS at {}", remote.url),
        };
        f.debug_struct("TokenVerifier")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("keys", &keys)
            .finish()
    }
}

impl TokenVerifier {
    /// A verifier trusting the keys of a fixed JWKS (the dev issuer's, a test's).
    pub fn from_jwks(jwks: &JwkSet, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let set = KeySet::from_jwks(&jwks.keys);
        if set.is_empty() {
            return Err(TokenError::Jwks(String::new()));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: Keys::Static(set),
        })
    }

    /// A verifier trusting the keys published at `url` (the identity provider's `jwks_uri`),
    /// fetched on first use and kept up to date as described in the module documentation.
    pub fn from_jwks_url(url: &str, issuer: &str, audience: &str) -> Result<Self, TokenError> {
        let parsed = parse_jwks_url(url)?;
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent(concat!("patto-service-kit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TokenError::HttpClient(e.to_string()))?;
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys: Keys::Remote(RemoteKeys {
                url: parsed,
                client,
                cache: RwLock::new(Cache::default()),
                fetching: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
                refetch_min: REFETCH_MIN_INTERVAL,
                refresh_every: REFRESH_INTERVAL,
            }),
        })
    }

    /// Changes the JWKS timing (tests; defaults [`REFETCH_MIN_INTERVAL`] and
    /// [`REFRESH_INTERVAL`]). No effect on a verifier over a fixed JWKS.
    pub fn with_jwks_timing(mut self, refetch_min: Duration, refresh_every: Duration) -> Self {
        if let Keys::Remote(remote) = &mut self.keys {
            remote.refetch_min = refetch_min;
            remote.refresh_every = refresh_every;
        }
        self
    }

    /// The `iss` tokens must carry.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` tokens must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// How many JWKS fetches were started (0 for a fixed JWKS): for tests and diagnostics.
    pub fn jwks_fetches(&self) -> u64 {
        match &self.keys {
            Keys::Static(_) => 0,
            Keys::Remote(remote) => remote.fetches.load(Ordering::Relaxed),
        }
    }

    /// Verifies one token (the part after `Bearer `) and returns its principal, or
    /// UNAUTHENTICATED saying what is wrong (UNAVAILABLE when the issuer's keys cannot be
    /// fetched at all).
    pub async fn verify(&self, token: &str) -> Result<Principal, Status> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(unauthenticated(
                "token is longer than 16 KiB: send the access token only",
            ));
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            unauthenticated(
                "malformed token: expected a JWT (three base64url parts separated by dots) signed with RS256 or ES256",
            )
        })?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(unauthenticated(format!(
                "token is signed with {:?}: only RS256 and ES256 are accepted; get a token from {}",
                header.alg, self.issuer
            )));
        }
        let key = self
            .keys
            .find(header.kid.as_deref())
            .await
            .map_err(|why| self.lookup_status(why))?;
        if key.alg != header.alg {
            return Err(unauthenticated(format!(
                "token algorithm {:?} does not match its signing key ({:?}): get a new token from {}",
                header.alg, key.alg, self.issuer
            )));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| self.explain(e.kind()))?;
        principal_from_claims(&data.claims)
    }

    fn lookup_status(&self, why: Lookup) -> Status {
        match why {
            Lookup::UnknownKey => unauthenticated(format!(
                "token is signed with a key {} does not publish (unknown kid): sign in again to get a token signed with a current key",
                self.issuer
            )),
            Lookup::NoKid => unauthenticated(format!(
                "token header has no kid and {} publishes several keys: get a token from {} that names its key",
                self.issuer, self.issuer
            )),
            Lookup::Unreachable => Status::unavailable(
                "cannot verify tokens right now: the identity provider's signing keys could not be fetched; retry shortly",
            ),
        }
    }

    /// A clear message for each way a token fails validation; internal error text never reaches
    /// the caller.
    fn explain(&self, kind: &ErrorKind) -> Status {
        let (issuer, audience) = (&self.issuer, &self.audience);
        unauthenticated(match kind {
            ErrorKind::ExpiredSignature => "token expired: sign in again to get a new one".to_owned(),
            ErrorKind::ImmatureSignature => {
                "token is not valid yet (its nbf is in the future): check the issuer's clock, or retry in a moment".to_owned()
            }
            ErrorKind::InvalidIssuer => format!(
                "token issuer is not trusted: only tokens issued by {issuer} are accepted; sign in through it"
            ),
            ErrorKind::InvalidAudience => format!(
                "token audience is not {audience}: ask the identity provider for a token issued to {audience}"
            ),
            ErrorKind::MissingRequiredClaim(claim) => format!(
                "token has no {} claim: tokens must carry exp, iss and aud; get one from {issuer}",
                known_claim(claim)
            ),
            ErrorKind::InvalidClaimFormat(claim) => format!(
                "token claim {} has the wrong type (a number of seconds since 1970 is expected): get a new token from {issuer}",
                known_claim(claim)
            ),
            ErrorKind::InvalidSignature => format!(
                "token signature does not verify: the token was altered or not signed by {issuer}; sign in again"
            ),
            ErrorKind::InvalidAlgorithm => format!(
                "token algorithm does not match its signing key: get a new token from {issuer}"
            ),
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => {
                "malformed token: expected a JWT (three base64url parts separated by dots) with a JSON object of claims".to_owned()
            }
            _ => format!("token cannot be verified with the keys of {issuer}: sign in again"),
        })
    }
}

fn parse_jwks_url(url: &str) -> Result<reqwest::Url, TokenError> {
    reqwest::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| TokenError::JwksUrl(url.to_owned()))
}

/// The claim names jsonwebtoken reports, echoed only when they are one of the standard ones.
fn known_claim(claim: &str) -> &'static str {
    match claim {
        "exp" => "exp",
        "nbf" => "nbf",
        "iss" => "iss",
        "aud" => "aud",
        "sub" => "sub",
        _ => "required",
    }
}

/// The token of an `authorization: Bearer <token>` header; `None` without the header.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<Option<&str>, Status> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(unauthenticated(
            "more than one authorization header: send exactly one, `authorization: Bearer <token>`",
        ));
    }
    let value = value.to_str().map_err(|_| {
        unauthenticated(
            "authorization header is not plain ASCII: send `authorization: Bearer <token>`",
        )
    })?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthenticated(
            "authorization header must use the Bearer scheme: send `authorization: Bearer <token>`",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(unauthenticated(
            "authorization header has no token after Bearer: send `authorization: Bearer <token>`",
        ));
    }
    Ok(Some(token))
}

impl Authenticator for TokenVerifier {
    fn authenticate<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, Status>> {
        Box::pin(async move {
            let outcome = match bearer_token(headers)? {
                None => Ok(Principal::Anonymous),
                Some(token) => self.verify(token).await,
            };
            if let Err(status) = &outcome {
                tracing::debug!(reason = status.message(), "bearer token rejected");
            }
            outcome
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

/// Maps verified claims to the caller:
/// - `patto_role` = `citizen` (or no `patto_role` but a fiscal number): the fiscal code from
///   [`SPID_FISCAL_NUMBER_CLAIM`] (`TINIT-<CF>`), else [`FISCAL_NUMBER_CLAIM`], else `sub` if it
///   is a codice fiscale; canonical form (uppercase, omocodia resolved).
/// - `operator` / `system`: `patto_comune` must be the ISTAT code of one of the 82 comuni, `sub`
///   names who it is.
///
/// Anything else is UNAUTHENTICATED naming the claim at fault.
pub fn principal_from_claims(claims: &Value) -> Result<Principal, Status> {
    let Some(claims) = claims.as_object() else {
        return Err(unauthenticated(
            "malformed token: its claims are not a JSON object",
        ));
    };
    let role = match claims.get(ROLE_CLAIM) {
        None | Some(Value::Null) => None,
        Some(Value::String(role)) => Some(role.trim().to_ascii_lowercase()),
        Some(_) => return Err(bad_role()),
    };
    match role.as_deref() {
        None => citizen_fiscal_code(claims)?
            .map(|fiscal_code| Principal::Citizen { fiscal_code })
            .ok_or_else(|| {
                unauthenticated(format!(
                    "token has no {ROLE_CLAIM} claim and no fiscal number: operator and system tokens need {ROLE_CLAIM} and {COMUNE_CLAIM}, citizen tokens the SPID/CIE claim {SPID_FISCAL_NUMBER_CLAIM}"
                ))
            }),
        Some("citizen") => citizen_fiscal_code(claims)?
            .map(|fiscal_code| Principal::Citizen { fiscal_code })
            .ok_or_else(|| {
                unauthenticated(format!(
                    "citizen token carries no fiscal code: the identity provider must send {SPID_FISCAL_NUMBER_CLAIM} (TINIT-<codice fiscale>), {FISCAL_NUMBER_CLAIM}, or the codice fiscale as sub"
                ))
            }),
        Some(role @ ("operator" | "system")) => {
            let istat_code = comune(claims, role)?;
            let subject = subject(claims, role)?;
            Ok(if role == "operator" {
                Principal::Operator {
                    istat_code,
                    subject,
                }
            } else {
                Principal::System {
                    istat_code,
                    subject,
                }
            })
        }
        Some(_) => Err(bad_role()),
    }
}

fn bad_role() -> Status {
    unauthenticated(format!(
        "token claim {ROLE_CLAIM} must be citizen, operator or system: ask the identity provider to map the user's role"
    ))
}

/// `TINIT-RSSMRA80A01G273M` → `RSSMRA80A01G273M` (prefix in any case); other values unchanged.
fn strip_tinit(value: &str) -> &str {
    let value = value.trim();
    match (value.get(..6), value.get(6..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case("TINIT-") => rest,
        _ => value,
    }
}

fn citizen_fiscal_code(claims: &Map<String, Value>) -> Result<Option<String>, Status> {
    for name in [SPID_FISCAL_NUMBER_CLAIM, FISCAL_NUMBER_CLAIM] {
        match claims.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(value)) => {
                return crate::ids::canonical_fiscal_code(strip_tinit(value))
                    .map(Some)
                    .map_err(|e| {
                        unauthenticated(format!(
                            "token claim {name} is not a valid codice fiscale ({e}): the identity provider must send TINIT-<codice fiscale>"
                        ))
                    });
            }
            Some(_) => {
                return Err(unauthenticated(format!(
                    "token claim {name} must be a string such as TINIT-RSSMRA80A01G273M"
                )));
            }
        }
    }
    // SPID brokers often put an opaque identifier in `sub`: it counts only if it is a valid
    // codice fiscale.
    Ok(claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|sub| crate::ids::canonical_fiscal_code(strip_tinit(sub)).ok()))
}

fn comune(claims: &Map<String, Value>, role: &str) -> Result<String, Status> {
    match claims.get(COMUNE_CLAIM) {
        None | Some(Value::Null) => Err(unauthenticated(format!(
            "{role} token has no {COMUNE_CLAIM} claim: the identity provider must send the ISTAT code of the {role}'s comune, e.g. 082053"
        ))),
        Some(Value::String(code)) if crate::ids::is_known_istat_code(code.trim()) => {
            Ok(code.trim().to_owned())
        }
        Some(_) => Err(unauthenticated(format!(
            "token claim {COMUNE_CLAIM} is not the ISTAT code of one of the 82 comuni of the Città Metropolitana di Palermo: expected a string of 6 digits such as 082053"
        ))),
    }
}

fn subject(claims: &Map<String, Value>, role: &str) -> Result<String, Status> {
    match claims.get("sub").and_then(Value::as_str).map(str::trim) {
        Some(sub) if !sub.is_empty() && sub.chars().count() <= MAX_SUBJECT_CHARS => {
            Ok(sub.to_owned())
        }
        Some(sub) if !sub.is_empty() => Err(unauthenticated(format!(
            "token claim sub is longer than {MAX_SUBJECT_CHARS} characters: use a shorter identifier for the {role}"
        ))),
        _ => Err(unauthenticated(format!(
            "{role} token has no sub claim: the identity provider must name the {role} in sub (it is recorded in the audit of personal-data reads)"
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Dev issuer
// ---------------------------------------------------------------------------------------------

/// A local ES256 signing key standing in for the identity provider on one machine (the embedded
/// all-in-one, tests): it issues citizen, operator and system tokens with `iss` [`DEV_ISSUER`] and
/// `aud` [`DEFAULT_AUDIENCE`], and publishes its public key as a JWKS. Never for production.
pub struct DevIssuer {
    encoding: EncodingKey,
    public: Jwk,
    kid: String,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("DevIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// An issuer over a fresh key held in memory only (tests).
    pub fn generate() -> Result<Self, TokenError> {
        let pem = new_key_pem()?;
        Self::from_pem(&pem)
    }

    /// An issuer over a PKCS#8 PEM P-256 private key.
    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| TokenError::Key(e.to_string()))?;
        // Fails for keys on other curves: ES256 is P-256 only.
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        // RFC 7638 thumbprint: the same key always gets the same kid, a new key a new one.
        let kid = public
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            encoding,
            public,
            kid,
        })
    }

    /// Reads the key at `path`, or creates one there (owner-only permissions on unix) when the
    /// file does not exist. Two processes starting together end up with the same key.
    pub fn load_or_create(path: &Path) -> Result<Self, TokenError> {
        let fail = |reason: String| TokenError::DevKey {
            path: path.to_owned(),
            reason,
        };
        let read = |path: &Path| -> Result<Self, TokenError> {
            let pem =
                std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
            Self::from_pem(&pem).map_err(|e| fail(e.to_string()))
        };
        match std::fs::metadata(path) {
            Ok(_) => return read(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(format!("cannot read it: {e}"))),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        let pem = new_key_pem()?;
        let issuer = Self::from_pem(&pem)?;
        // Written under a private name and then linked into place, which fails instead of
        // replacing a key another process wrote meanwhile: tokens it signed stay valid.
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
        let tmp = path.with_file_name(tmp_name);
        write_private(&tmp, pem.as_bytes()).map_err(|e| fail(format!("cannot write it: {e}")))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        let created = match linked {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            // A file system without hard links: create the file in place, still never replacing.
            Err(_) => match write_private(path, pem.as_bytes()) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(fail(format!("cannot write it: {e}"))),
            },
        };
        if !created {
            return read(path);
        }
        tracing::info!(path = %path.display(), kid = %issuer.kid, "created the dev issuer's signing key");
        Ok(issuer)
    }

    /// The key id (`kid`) of the tokens it signs.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its public key as a JWKS, as an identity provider would publish it.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public.clone()],
        }
    }

    /// A verifier trusting this issuer (and only it), with `aud` [`DEFAULT_AUDIENCE`].
    pub fn verifier(&self) -> TokenVerifier {
        let mut set = KeySet::default();
        if let Some(key) = verify_key(&self.public) {
            let key = Arc::new(key);
            set.by_kid.insert(self.kid.clone(), key.clone());
            set.all.push(key);
        }
        TokenVerifier {
            issuer: DEV_ISSUER.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            keys: Keys::Static(set),
        }
    }

    /// A token for `who`, valid for `ttl` from now. Citizens get the SPID claim
    /// (`TINIT-<CF>`) and the fiscal code as `sub`; operators and systems `patto_role`,
    /// `patto_comune` and their subject as `sub`. Refuses identities that would not verify
    /// (anonymous, a bad codice fiscale, an unknown comune, an empty subject).
    pub fn issue(&self, who: &Principal, ttl: Duration) -> Result<String, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "iss": DEV_ISSUER,
            "aud": DEFAULT_AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl.as_secs()),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let extra = match who {
            Principal::Anonymous => {
                return Err(TokenError::Issue(
                    "anonymous callers have no token: send no authorization header".into(),
                ));
            }
            Principal::Citizen { fiscal_code } => {
                let cf = crate::ids::canonical_fiscal_code(strip_tinit(fiscal_code))
                    .map_err(|e| TokenError::Issue(format!("codice fiscale: {e}")))?;
                json!({
                    "sub": cf,
                    ROLE_CLAIM: "citizen",
                    SPID_FISCAL_NUMBER_CLAIM: format!("TINIT-{cf}"),
                })
            }
            Principal::Operator {
                istat_code,
                subject,
            }
            | Principal::System {
                istat_code,
                subject,
            } => {
                if !crate::ids::is_known_istat_code(istat_code.trim()) {
                    return Err(TokenError::Issue(format!(
                        "comune {istat_code:?} is not the ISTAT code of one of the 82 comuni (e.g. 082053 for Palermo)"
                    )));
                }
                let subject = subject.trim();
                if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
                    return Err(TokenError::Issue(format!(
                        "the subject must be 1 to {MAX_SUBJECT_CHARS} characters"
                    )));
                }
                json!({
                    "sub": subject,
                    ROLE_CLAIM: who.kind(),
                    COMUNE_CLAIM: istat_code.trim(),
                })
            }
        };
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            claims.extend(extra);
        }
        self.sign(&claims)
    }

    /// Signs arbitrary claims with this issuer's key and `kid` (tests craft expired, foreign or
    /// odd tokens with it).
    pub fn sign(&self, claims: &Value) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| TokenError::Issue(format!("signing failed: {e}")))
    }
}

/// A fresh P-256 private key as PKCS#8 PEM.
fn new_key_pem() -> Result<String, TokenError> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| TokenError::Key(e.to_string()))?;
    Ok(pem.as_str().to_owned())
}

/// Creates `path` (never replacing a file) readable by its owner only, with `bytes`.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The dev issuer a service trusts, from `src`: the key in [`DEV_ISSUER_KEY_VAR`] (created when
/// missing), unless [`JWKS_URL_VAR`] is set (an identity provider then issues every token).
fn dev_issuer_from_source(src: &dyn Source) -> Result<Option<DevIssuer>, ConfigError> {
    if src.get(JWKS_URL_VAR).is_some() {
        return Ok(None);
    }
    let Some(path) = src.get(DEV_ISSUER_KEY_VAR) else {
        return Ok(None);
    };
    DevIssuer::load_or_create(Path::new(&path))
        .map(Some)
        .map_err(|e| ConfigError {
            var: DEV_ISSUER_KEY_VAR.to_owned(),
            value: path.clone(),
            expected: format!(
                "a PKCS#8 PEM P-256 private key file, or a path where one can be created ({e})"
            ),
        })
}

/// The authenticator a service runs with, from `src`:
/// - [`JWKS_URL_VAR`] set: a [`TokenVerifier`] over that JWKS, with [`ISSUER_VAR`] (required) and
///   [`AUDIENCE_VAR`] (default [`DEFAULT_AUDIENCE`]);
/// - else [`DEV_ISSUER_KEY_VAR`] set: a [`TokenVerifier`] trusting the [`DevIssuer`] whose key is in
///   that file (created when missing);
/// - else [`Anonymous`]: every caller is anonymous, as before tokens were verified.
///
/// Logs the mode chosen at info.
pub fn authenticator_from_source(src: &dyn Source) -> Result<Arc<dyn Authenticator>, ConfigError> {
    credentials_from_source(src).map(|(authenticator, _)| authenticator)
}

/// Whom a process trusts, and the dev issuer it may sign its own calls with (dev-issuer mode).
pub type Credentials = (Arc<dyn Authenticator>, Option<Arc<DevIssuer>>);

/// [`authenticator_from_source`], with the [`DevIssuer`] it trusts in dev-issuer mode (which a
/// service also signs its calls to its peers with); the key file is read once.
pub fn credentials_from_source(src: &dyn Source) -> Result<Credentials, ConfigError> {
    let audience = src
        .get(AUDIENCE_VAR)
        .map(|a| a.trim().to_owned())
        .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
    if let Some(url) = src.get(JWKS_URL_VAR) {
        let bad_url = |e: TokenError| ConfigError {
            var: JWKS_URL_VAR.to_owned(),
            value: url.clone(),
            expected: format!(
                "the http:// or https:// URL of the identity provider's JWKS (its jwks_uri): {e}"
            ),
        };
        parse_jwks_url(&url).map_err(bad_url)?;
        let issuer = src
            .get(ISSUER_VAR)
            .map(|i| i.trim().to_owned())
            .filter(|i| !i.is_empty())
            .ok_or_else(|| ConfigError {
                var: ISSUER_VAR.to_owned(),
                value: String::new(),
                expected: format!(
                    "the issuer (iss) of the identity provider's tokens, e.g. https://login.example.it; it must be set when {JWKS_URL_VAR} is set"
                ),
            })?;
        let verifier = TokenVerifier::from_jwks_url(&url, &issuer, &audience).map_err(bad_url)?;
        if src.get(DEV_ISSUER_KEY_VAR).is_some() {
            tracing::warn!("{DEV_ISSUER_KEY_VAR} is ignored because {JWKS_URL_VAR} is set");
        }
        tracing::info!(mode = "jwks", jwks_url = %url, %issuer, %audience, "verifying bearer tokens against the identity provider's JWKS");
        return Ok((Arc::new(verifier), None));
    }
    if let (Some(path), Some(issuer)) = (src.get(DEV_ISSUER_KEY_VAR), dev_issuer_from_source(src)?)
    {
        tracing::info!(mode = "dev-issuer", key = %path, kid = issuer.kid(), "verifying bearer tokens of the local dev issuer (`patto token`); not for production");
        let issuer = Arc::new(issuer);
        return Ok((Arc::new(issuer.verifier()), Some(issuer)));
    }
    tracing::info!(
        mode = "anonymous",
        "neither {JWKS_URL_VAR} nor {DEV_ISSUER_KEY_VAR} is set: every caller is anonymous and bearer tokens are not checked"
    );
    Ok((Arc::new(Anonymous), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    const CF: &str = "RCCMNL83S18D969H";
    const PALERMO: &str = "082053";

    fn issuer() -> &'static DevIssuer {
        static ISSUER: std::sync::OnceLock<DevIssuer> = std::sync::OnceLock::new();
        ISSUER.get_or_init(|| DevIssuer::generate().expect("generate a dev key"))
    }

    #[test]
    fn claims_to_principal() {
        type Case = (&'static str, Value, Result<Principal, &'static str>);
        let citizen = Principal::Citizen {
            fiscal_code: CF.to_owned(),
        };
        let cases: Vec<Case> = vec![
            (
                "citizen via the SPID claim, lowercase prefix and code",
                json!({ SPID_FISCAL_NUMBER_CLAIM: "tinit-rccmnl83s18d969h", "sub": "opaque-id" }),
                Ok(citizen.clone()),
            ),
            (
                "citizen via role and the short claim",
                json!({ ROLE_CLAIM: "citizen", FISCAL_NUMBER_CLAIM: "TINIT-RCCMNL83S18D969H" }),
                Ok(citizen.clone()),
            ),
            (
                "citizen via sub",
                json!({ ROLE_CLAIM: "citizen", "sub": "RCCMNL83S18D969H" }),
                Ok(citizen.clone()),
            ),
            (
                "omocodia resolves to the canonical code",
                json!({ SPID_FISCAL_NUMBER_CLAIM: "TINIT-RCCMNL83S18D96VW" }),
                Ok(citizen.clone()),
            ),
            (
                "operator",
                json!({ ROLE_CLAIM: "operator", COMUNE_CLAIM: PALERMO, "sub": "mario.rossi" }),
                Ok(Principal::Operator {
                    istat_code: PALERMO.into(),
                    subject: "mario.rossi".into(),
                }),
            ),
            (
                "system",
                json!({ ROLE_CLAIM: "System", COMUNE_CLAIM: "082006", "sub": "protocollo" }),
                Ok(Principal::System {
                    istat_code: "082006".into(),
                    subject: "protocollo".into(),
                }),
            ),
            (
                "unknown comune",
                json!({ ROLE_CLAIM: "operator", COMUNE_CLAIM: "015146", "sub": "x" }),
                Err("patto_comune is not the ISTAT code"),
            ),
            (
                "comune as a number",
                json!({ ROLE_CLAIM: "operator", COMUNE_CLAIM: 82053, "sub": "x" }),
                Err("patto_comune is not the ISTAT code"),
            ),
            (
                "operator without comune",
                json!({ ROLE_CLAIM: "operator", "sub": "x" }),
                Err("has no patto_comune claim"),
            ),
            (
                "missing sub",
                json!({ ROLE_CLAIM: "system", COMUNE_CLAIM: PALERMO }),
                Err("system token has no sub claim"),
            ),
            (
                "empty sub",
                json!({ ROLE_CLAIM: "operator", COMUNE_CLAIM: PALERMO, "sub": "  " }),
                Err("operator token has no sub claim"),
            ),
            (
                "bad role",
                json!({ ROLE_CLAIM: "admin", "sub": CF }),
                Err("patto_role must be citizen, operator or system"),
            ),
            (
                "role not a string",
                json!({ ROLE_CLAIM: ["operator"] }),
                Err("patto_role must be citizen, operator or system"),
            ),
            (
                "bad SPID fiscal code",
                json!({ SPID_FISCAL_NUMBER_CLAIM: "TINIT-RCCMNL83S18D969X" }),
                Err("is not a valid codice fiscale (the check character"),
            ),
            (
                "citizen without fiscal code",
                json!({ ROLE_CLAIM: "citizen", "sub": "opaque" }),
                Err("citizen token carries no fiscal code"),
            ),
            (
                "no role, no fiscal number",
                json!({ "sub": "opaque" }),
                Err("no patto_role claim and no fiscal number"),
            ),
        ];
        for (name, claims, expected) in cases {
            let got = principal_from_claims(&claims);
            match (got, expected) {
                (Ok(p), Ok(e)) => assert_eq!(p, e, "{name}"),
                (Err(s), Err(hint)) => {
                    assert_eq!(s.code(), Code::Unauthenticated, "{name}");
                    assert!(s.message().contains(hint), "{name}: {}", s.message());
                }
                (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn bearer_header_forms() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(bearer_token(&headers).unwrap(), None);
        for (value, hint) in [
            ("Basic dXNlcjpwYXNz", "Bearer scheme"),
            ("Bearer", "no token after Bearer"),
            ("Bearer   ", "no token after Bearer"),
            ("token-without-scheme", "Bearer scheme"),
        ] {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
            let err = bearer_token(&headers).unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated);
            assert!(err.message().contains(hint), "{value}: {}", err.message());
        }
        headers.insert(http::header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers).unwrap(), Some("abc"));
        headers.append(http::header::AUTHORIZATION, "Bearer def".parse().unwrap());
        assert!(
            bearer_token(&headers)
                .unwrap_err()
                .message()
                .contains("more than one")
        );
    }

    #[tokio::test]
    async fn dev_issuer_tokens_verify() {
        let issuer = issuer();
        let verifier = issuer.verifier();
        for who in [
            Principal::Citizen {
                fiscal_code: "rccmnl83s18d969h".into(),
            },
            Principal::Operator {
                istat_code: PALERMO.into(),
                subject: "op-1".into(),
            },
            Principal::System {
                istat_code: PALERMO.into(),
                subject: "erp".into(),
            },
        ] {
            let token = issuer.issue(&who, Duration::from_secs(60)).unwrap();
            let got = verifier.verify(&token).await.unwrap();
            let expected = match who {
                Principal::Citizen { .. } => Principal::Citizen {
                    fiscal_code: CF.into(),
                },
                other => other,
            };
            assert_eq!(got, expected);
        }
        assert!(
            issuer
                .issue(&Principal::Anonymous, Duration::from_secs(60))
                .is_err()
        );
        let unknown = Principal::Operator {
            istat_code: "999999".into(),
            subject: "x".into(),
        };
        assert!(issuer.issue(&unknown, Duration::from_secs(60)).is_err());
    }

    #[test]
    fn kid_is_stable_for_a_key() {
        let a = DevIssuer::generate().unwrap();
        let b = DevIssuer::generate().unwrap();
        assert_ne!(a.kid(), b.kid());
        assert_eq!(a.jwks().keys[0].common.key_id.as_deref(), Some(a.kid()));
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("patto-devkey-{}", uuid::Uuid::new_v4()));
        let path = dir.join("nested").join("dev-issuer-key.pem");
        let first = DevIssuer::load_or_create(&path).unwrap();
        let again = DevIssuer::load_or_create(&path).unwrap();
        assert_eq!(first.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key").unwrap();
        let err = DevIssuer::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("Delete the file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn configuration_modes() {
        use std::collections::HashMap;
        let src = |pairs: &[(&'static str, &str)]| -> HashMap<&'static str, String> {
            pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
        };
        assert!(authenticator_from_source(&src(&[])).is_ok());
        let err = authenticator_from_source(&src(&[(JWKS_URL_VAR, "https://id.example/jwks")]))
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("PATTO_JWT_ISSUER="), "{err}");
        assert!(err.contains("must be set when PATTO_JWKS_URL"), "{err}");
        let err = authenticator_from_source(&src(&[
            (JWKS_URL_VAR, "ftp://id.example/jwks"),
            (ISSUER_VAR, "https://id.example"),
        ]))
        .err()
        .unwrap()
        .to_string();
        assert!(err.starts_with("PATTO_JWKS_URL="), "{err}");
        assert!(
            authenticator_from_source(&src(&[
                (JWKS_URL_VAR, "https://id.example/jwks"),
                (ISSUER_VAR, "https://id.example"),
            ]))
            .is_ok()
        );
        let dir = std::env::temp_dir().join(format!("patto-devcfg-{}", uuid::Uuid::new_v4()));
        let key = dir.join("k.pem");
        let key_str = key.to_string_lossy().into_owned();
        assert!(authenticator_from_source(&src(&[(DEV_ISSUER_KEY_VAR, &key_str)])).is_ok());
        assert!(key.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
