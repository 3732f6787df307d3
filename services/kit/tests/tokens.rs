//! Bearer tokens end to end: RS256 and ES256 signatures, each way a token can be wrong (with its
//! own message), a JWKS served over real HTTP on loopback with key rotation, and the verifier
//! installed on a hosted gRPC app and by `serve_service`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use patto_service_kit::Principal;
use patto_service_kit::auth::Authenticator;
use patto_service_kit::host::GrpcApp;
use patto_service_kit::testing::TestServer;
use patto_service_kit::token::{
    COMUNE_CLAIM, DevIssuer, JwkSet, ROLE_CLAIM, SPID_FISCAL_NUMBER_CLAIM, TokenVerifier,
};
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A 2048-bit RSA key made once with `openssl genpkey -algorithm RSA`, for these tests only
/// (generating one at test time takes seconds in a debug build). Nothing trusts it.
const RSA_TEST_KEY: &str = include_str!("fixtures/rsa-test-key.pem");
const RSA_KID: &str = "rsa-test-1";
const ISSUER: &str = "https://id.test.invalid";
const AUDIENCE: &str = "patto";
const CF: &str = "RCCMNL83S18D969H";
const PALERMO: &str = "082053";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_TEST_KEY.as_bytes()).expect("the RSA test key parses")
}

fn rsa_jwk() -> Jwk {
    let mut jwk = Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).expect("RSA public JWK");
    jwk.common.key_id = Some(RSA_KID.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk
}

fn rsa_sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(RSA_KID.into());
    jsonwebtoken::encode(&header, claims, &rsa_key()).expect("RS256 signing")
}

/// Claims of a valid citizen token of [`ISSUER`], as SPID/CIE brokers send them.
fn citizen_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "spid-opaque-subject",
        "iat": now(),
        "exp": now() + 300,
        SPID_FISCAL_NUMBER_CLAIM: format!("TINIT-{}", CF.to_lowercase()),
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn citizen() -> Principal {
    Principal::Citizen {
        fiscal_code: CF.into(),
    }
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header value"),
    );
    headers
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify() {
    let ec = DevIssuer::generate().unwrap();
    let mut jwks = ec.jwks();
    jwks.keys.push(rsa_jwk());
    let verifier = TokenVerifier::from_jwks(&jwks, ISSUER, AUDIENCE).unwrap();

    let rs = rsa_sign(&citizen_claims());
    assert_eq!(verifier.verify(&rs).await.unwrap(), citizen());

    let operator = json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 300, "nbf": now(),
        "sub": "operatore.42", ROLE_CLAIM: "operator", COMUNE_CLAIM: PALERMO,
    });
    let es = ec.sign(&operator).unwrap();
    assert_eq!(
        verifier.authenticate(&bearer(&es)).await.unwrap(),
        Principal::Operator {
            istat_code: PALERMO.into(),
            subject: "operatore.42".into()
        }
    );
    // An array audience that includes ours is fine.
    let multi = rsa_sign(&with(citizen_claims(), "aud", json!(["other", AUDIENCE])));
    assert_eq!(verifier.verify(&multi).await.unwrap(), citizen());
}

#[tokio::test]
async fn no_header_is_anonymous() {
    let verifier = DevIssuer::generate().unwrap().verifier();
    assert_eq!(
        verifier
            .authenticate(&http::HeaderMap::new())
            .await
            .unwrap(),
        Principal::Anonymous
    );
}

/// Replaces the claims of a signed token, keeping its header and signature.
fn tamper(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test]
async fn each_bad_token_is_unauthenticated_with_its_own_message() {
    let ec = DevIssuer::generate().unwrap();
    let stranger = DevIssuer::generate().unwrap();
    let mut jwks = ec.jwks();
    jwks.keys.push(rsa_jwk());
    let verifier = TokenVerifier::from_jwks(&jwks, ISSUER, AUDIENCE).unwrap();
    let good = rsa_sign(&citizen_claims());
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(citizen_claims().to_string())
    );
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &citizen_claims(),
        &EncodingKey::from_secret(b"guessable"),
    )
    .unwrap();
    let mut es_as_rs = Header::new(Algorithm::ES256);
    es_as_rs.kid = Some(RSA_KID.into());
    // Any EC key: the verifier must refuse before checking the signature.
    let es_under_rsa_kid =
        jsonwebtoken::encode(&es_as_rs, &citizen_claims(), &ec_encoding_key()).unwrap();

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            rsa_sign(&with(
                citizen_claims(),
                "iss",
                json!("https://evil.example"),
            )),
            "token issuer is not trusted",
        ),
        (
            "wrong audience",
            rsa_sign(&with(citizen_claims(), "aud", json!("someone-else"))),
            "token audience is not patto",
        ),
        (
            "expired beyond the leeway",
            rsa_sign(&with(citizen_claims(), "exp", json!(now() - 120))),
            "token expired: sign in again",
        ),
        (
            "not yet valid",
            rsa_sign(&with(citizen_claims(), "nbf", json!(now() + 600))),
            "token is not valid yet",
        ),
        (
            "bad signature (claims altered)",
            tamper(&good, &with(citizen_claims(), "sub", json!("someone"))),
            "token signature does not verify",
        ),
        (
            "unknown kid",
            stranger
                .sign(&with(citizen_claims(), "iss", json!(ISSUER)))
                .unwrap(),
            "unknown kid",
        ),
        (
            "no exp",
            rsa_sign(&{
                let mut c = citizen_claims();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "token has no exp claim",
        ),
        (
            "no aud",
            rsa_sign(&{
                let mut c = citizen_claims();
                c.as_object_mut().unwrap().remove("aud");
                c
            }),
            "token has no aud claim",
        ),
        ("alg none", unsigned, "malformed token"),
        ("HS256", hs256, "only RS256 and ES256 are accepted"),
        (
            "ES256 token naming the RSA key",
            es_under_rsa_kid,
            "does not match its signing key",
        ),
        ("garbage", "not-a-jwt".into(), "malformed token"),
        (
            "unknown comune",
            rsa_sign(&json!({
                "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60,
                "sub": "op", ROLE_CLAIM: "operator", COMUNE_CLAIM: "999999",
            })),
            "patto_comune is not the ISTAT code",
        ),
    ];
    let mut messages = HashSet::new();
    for (name, token, hint) in cases {
        let status = verifier
            .authenticate(&bearer(&token))
            .await
            .expect_err(name);
        assert_eq!(status.code(), Code::Unauthenticated, "{name}: {status:?}");
        assert!(
            status.message().contains(hint),
            "{name}: {}",
            status.message()
        );
        assert!(
            !status.message().contains(&token) || token.is_empty(),
            "{name}: the message must not echo the token"
        );
        messages.insert((hint, status.message().to_owned()));
    }
    // A token that expired within the leeway still passes (clock skew).
    let skewed = rsa_sign(&with(citizen_claims(), "exp", json!(now() - 5)));
    assert_eq!(verifier.verify(&skewed).await.unwrap(), citizen());
    // Distinct failures, distinct messages (the two malformed ones share theirs).
    let distinct: HashSet<&String> = messages.iter().map(|(_, m)| m).collect();
    assert!(distinct.len() >= 12, "{distinct:#?}");
}

/// Some P-256 private key (only its algorithm matters where it is used).
fn ec_encoding_key() -> EncodingKey {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    EncodingKey::from_ec_pem(pem.as_bytes()).unwrap()
}

/// An identity provider's JWKS endpoint on an ephemeral loopback port: serves whatever set
/// `keys` holds, counts requests, answers after `delay`, and HTTP 503 while `down` is set.
struct JwksServer {
    addr: SocketAddr,
    keys: Arc<Mutex<JwkSet>>,
    hits: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(initial: JwkSet, delay: Duration) -> Self {
        let keys = Arc::new(Mutex::new(initial));
        let hits = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let (k, h, d) = (keys.clone(), hits.clone(), down.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (k, h, d) = (k.clone(), h.clone(), d.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    if d.load(Ordering::SeqCst) {
                        return (http::StatusCode::SERVICE_UNAVAILABLE, String::new());
                    }
                    let body = serde_json::to_string(&*k.lock().unwrap()).unwrap();
                    (http::StatusCode::OK, body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            keys,
            hits,
            down,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.addr)
    }

    fn publish(&self, set: JwkSet) {
        *self.keys.lock().unwrap() = set;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn jwks_over_http_follows_key_rotation_without_restart() {
    let server = JwksServer::start(
        JwkSet {
            keys: vec![rsa_jwk()],
        },
        Duration::ZERO,
    )
    .await;
    let refetch_min = Duration::from_millis(800);
    let verifier = TokenVerifier::from_jwks_url(&server.url(), ISSUER, AUDIENCE)
        .unwrap()
        .with_jwks_timing(refetch_min, Duration::from_secs(600));
    assert_eq!(verifier.jwks_fetches(), 0, "keys are fetched on first use");

    // Key 1 (RS256) signs token 1.
    let token1 = rsa_sign(&citizen_claims());
    assert_eq!(verifier.verify(&token1).await.unwrap(), citizen());
    assert_eq!(verifier.verify(&token1).await.unwrap(), citizen());
    assert_eq!((server.hits(), verifier.jwks_fetches()), (1, 1));

    // The identity provider rotates to key 2 (ES256, a new kid).
    let key2 = DevIssuer::generate().unwrap();
    server.publish(key2.jwks());
    let token2 = key2
        .sign(&with(citizen_claims(), "iss", json!(ISSUER)))
        .unwrap();

    // Within the rate limit an unknown kid does not reach the identity provider.
    let early = verifier.verify(&token2).await.unwrap_err();
    assert_eq!(early.code(), Code::Unauthenticated);
    assert!(
        early.message().contains("unknown kid"),
        "{}",
        early.message()
    );
    assert_eq!(server.hits(), 1);

    // After it, the unknown kid triggers one refetch and token 2 verifies: no restart.
    tokio::time::sleep(refetch_min + Duration::from_millis(100)).await;
    assert_eq!(verifier.verify(&token2).await.unwrap(), citizen());
    assert_eq!(verifier.verify(&token2).await.unwrap(), citizen());
    assert_eq!(
        (server.hits(), verifier.jwks_fetches()),
        (2, 2),
        "one refetch"
    );

    // Key 1 was withdrawn: its tokens stop verifying.
    let withdrawn = verifier.verify(&token1).await.unwrap_err();
    assert!(
        withdrawn.message().contains("unknown kid"),
        "{}",
        withdrawn.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_fetch() {
    let issuer = DevIssuer::generate().unwrap();
    // A slow endpoint, so the callers really overlap.
    let server = JwksServer::start(issuer.jwks(), Duration::from_millis(200)).await;
    let verifier = Arc::new(TokenVerifier::from_jwks_url(&server.url(), ISSUER, AUDIENCE).unwrap());
    let token = issuer
        .sign(&with(citizen_claims(), "iss", json!(ISSUER)))
        .unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), citizen());
    }
    assert_eq!((server.hits(), verifier.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn stale_keys_are_refreshed_and_kept_if_the_provider_is_down() {
    let issuer = DevIssuer::generate().unwrap();
    let server = JwksServer::start(issuer.jwks(), Duration::ZERO).await;
    let verifier = TokenVerifier::from_jwks_url(&server.url(), ISSUER, AUDIENCE)
        .unwrap()
        .with_jwks_timing(Duration::ZERO, Duration::from_millis(100));
    let token = issuer
        .sign(&with(citizen_claims(), "iss", json!(ISSUER)))
        .unwrap();
    assert!(verifier.verify(&token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.hits(), 2, "a stale set is read again");

    // The provider fails: the keys already known keep working.
    server.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(server.hits(), 3, "the failed refresh was tried");
}

#[tokio::test]
async fn unreachable_jwks_is_unavailable_not_a_bad_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let verifier =
        TokenVerifier::from_jwks_url(&format!("http://{addr}/jwks.json"), ISSUER, AUDIENCE)
            .unwrap();
    let token = rsa_sign(&citizen_claims());
    let status = verifier.verify(&token).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        !status.message().contains("127.0.0.1"),
        "{}",
        status.message()
    );
}

async fn health(addr: &str, token: Option<&str>) -> Result<i32, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    HealthClient::new(channel)
        .check(request)
        .await
        .map(|r| r.into_inner().status)
}

#[tokio::test]
async fn a_hosted_app_refuses_bad_tokens_over_grpc() {
    let issuer = DevIssuer::generate().unwrap();
    let app = GrpcApp::new().with_authenticator(Arc::new(issuer.verifier()));
    let server = TestServer::start(app).await;
    let url = server.url();

    let expired = issuer
        .sign(&json!({
            "iss": "patto-dev", "aud": "patto", "exp": now() - 3600,
            SPID_FISCAL_NUMBER_CLAIM: format!("TINIT-{CF}"),
        }))
        .unwrap();
    let status = health(&url, Some(&expired)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("token expired"), "{status:?}");

    let status = health(&url, Some("garbage")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let good = issuer.issue(&citizen(), Duration::from_secs(60)).unwrap();
    assert!(health(&url, Some(&good)).await.is_ok());
    assert!(health(&url, None).await.is_ok(), "no token: anonymous");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn serve_service_installs_the_configured_verifier() {
    use patto_service_kit::config::{ServiceConfig, ServiceName};
    use std::collections::HashMap;

    let dir = std::env::temp_dir().join(format!("patto-tokens-{}", uuid::Uuid::new_v4()));
    let key = dir.join("dev-issuer-key.pem");
    let src: HashMap<&'static str, String> = [
        ("PATTO_DEV_ISSUER_KEY", key.to_string_lossy().into_owned()),
        ("DATABASE_URL", "sqlite::memory:".to_owned()),
    ]
    .into_iter()
    .collect();
    let service = ServiceName {
        name: "tokens-test",
        default_port: 0,
    };
    let config = ServiceConfig::from_source(service, &src).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(patto_service_kit::serve_service::<
        patto_service_kit::BaseMigrator,
        _,
        _,
    >(
        service,
        config,
        listener,
        async {
            let _ = stopped.await;
        },
        |_, _| async { Ok(GrpcApp::new()) },
    ));

    // The same key file: what `patto token` signs with.
    let issuer = DevIssuer::load_or_create(&key).unwrap();
    let good = issuer
        .issue(
            &Principal::System {
                istat_code: PALERMO.into(),
                subject: "protocollo".into(),
            },
            Duration::from_secs(60),
        )
        .unwrap();
    let mut status = health(&url, Some(&good)).await;
    // The server may still be migrating: retry briefly on a refused connection.
    for _ in 0..50 {
        if status.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = health(&url, Some(&good)).await;
    }
    assert!(status.is_ok(), "{status:?}");
    let stranger = DevIssuer::generate().unwrap();
    let foreign = stranger.issue(&citizen(), Duration::from_secs(60)).unwrap();
    let refused = health(&url, Some(&foreign)).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
