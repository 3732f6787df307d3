//! Automatic persisted queries (the Apollo APQ protocol) and allow-list mode.
//!
//! A client may send `extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}` (on POST in
//! the body, on GET as the `extensions` URL parameter, JSON-encoded):
//! - hash without `query`: a known hash runs its stored document; an unknown one answers 200 with
//!   the error `PersistedQueryNotFound` (`PERSISTED_QUERY_NOT_FOUND`), and the client sends again
//!   with the text;
//! - hash with `query`: the SHA-256 of the text must be the hash (else 400, `provided sha does not
//!   match query`); the pair is stored and the document runs.
//!
//! The store is Redis when `REDIS_URL` is set (`<prefix>apq:<hash>`, expiring after
//! `PATTO_APQ_TTL_SECS`), shared by every replica, with a bounded in-process cache in front; without
//! Redis the in-process store alone (at most [`MAX_ENTRIES`] documents, oldest evicted first).
//! A hash maps to one text forever (the hash is checked on registration), so the cache can never
//! serve a stale document. When Redis fails, a request with its text still runs (it is
//! stored in process only) and a hash-only request that the cache does not hold gets
//! `PERSISTED_QUERY_NOT_FOUND`, so the client resends the text.
//!
//! Allow-list mode (`PATTO_GRAPHQL_ALLOWLIST=<file>`): the file is a JSON **array of GraphQL
//! documents**, e.g. `["query Events { events(first: 5) { nodes { name } } }"]`. Only documents on
//! it run, whether sent by hash or as full text (compared by SHA-256 of the exact text, so send
//! them byte for byte); anything else is refused before execution with `PERSISTED_QUERY_NOT_ALLOWED`,
//! and registering new hashes is refused.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::RedisLink;
use crate::errors::{BAD_REQUEST, PERSISTED_QUERY_NOT_ALLOWED, PERSISTED_QUERY_NOT_FOUND};
use crate::metrics::{ApqOutcome, Metrics};

/// Most documents the in-process store keeps.
pub const MAX_ENTRIES: usize = 10_000;
/// Most bytes of document text the in-process store keeps (a document may be up to 1 MiB).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// The message Apollo clients recognise to resend the document's text.
pub const NOT_FOUND_MESSAGE: &str = "PersistedQueryNotFound";

/// The lowercase hex SHA-256 of `text`, as APQ hashes documents.
pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The documents allowed to run in allow-list mode, by SHA-256.
#[derive(Debug, Default)]
pub struct Allowlist {
    by_hash: HashMap<String, Arc<str>>,
}

impl Allowlist {
    /// An allow-list of these documents.
    pub fn from_documents<I, S>(documents: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let by_hash = documents
            .into_iter()
            .map(|d| (sha256_hex(d.as_ref()), Arc::from(d.as_ref())))
            .collect();
        Self { by_hash }
    }

    /// Parses the file format: a JSON array of documents (strings), none empty.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let documents: Vec<String> =
            serde_json::from_str(text).map_err(|e| format!("not a JSON array of strings: {e}"))?;
        if let Some(i) = documents.iter().position(|d| d.trim().is_empty()) {
            return Err(format!("entry {i} is empty"));
        }
        Ok(Self::from_documents(documents))
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
        Self::from_json(&text)
    }

    /// The document with this hash, if listed.
    pub fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.by_hash.get(hash).cloned()
    }

    /// How many documents are listed.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the list is empty (then nothing may run).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// Why a request was refused before execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A hash without text that is not stored.
    NotFound,
    /// Allow-list mode, and the document is not listed.
    NotAllowed,
    /// The `persistedQuery` extension is malformed, or its hash does not match the text.
    BadRequest(String),
}

impl Refusal {
    /// The `extensions.code` of the error.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => PERSISTED_QUERY_NOT_FOUND,
            Refusal::NotAllowed => PERSISTED_QUERY_NOT_ALLOWED,
            Refusal::BadRequest(_) => BAD_REQUEST,
        }
    }

    /// The error message.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotFound => NOT_FOUND_MESSAGE.to_owned(),
            Refusal::NotAllowed => {
                "this gateway runs only allow-listed documents, and this one is not on the list"
                    .to_owned()
            }
            Refusal::BadRequest(m) => m.clone(),
        }
    }

    /// The HTTP status: 200 for a miss (the APQ protocol's retry signal), 400 otherwise.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Refusal::NotFound => http::StatusCode::OK,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// The bounded in-process store: oldest documents go first once either bound is reached.
#[derive(Default)]
struct LocalStore {
    map: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
    bytes: usize,
}

impl LocalStore {
    fn get(&self, hash: &str) -> Option<Arc<str>> {
        self.map.get(hash).cloned()
    }

    fn insert(&mut self, hash: String, text: Arc<str>) {
        if self.map.contains_key(&hash) {
            return;
        }
        self.bytes += text.len();
        self.map.insert(hash.clone(), text);
        self.order.push_back(hash);
        while self.map.len() > MAX_ENTRIES || self.bytes > MAX_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(t) = self.map.remove(&oldest) {
                self.bytes -= t.len();
            }
        }
    }
}

/// The persisted-query store and the allow-list check every GraphQL request goes through.
pub struct PersistedQueries {
    allowlist: Option<Arc<Allowlist>>,
    local: Mutex<LocalStore>,
    redis: Option<Arc<RedisLink>>,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PersistedQueries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedQueries")
            .field("allowlist", &self.allowlist.as_ref().map(|a| a.len()))
            .field("redis", &self.redis)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PersistedQueries {
    /// A store over Redis when `redis` is set (entries expire after `ttl`), else in process;
    /// in allow-list mode when `allowlist` is set.
    pub fn new(
        allowlist: Option<Arc<Allowlist>>,
        redis: Option<Arc<RedisLink>>,
        ttl: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            allowlist,
            local: Mutex::new(LocalStore::default()),
            redis,
            ttl,
            metrics,
        }
    }

    /// The document a request runs. `query` is the text sent (`None` or empty when absent),
    /// `persisted` the `extensions.persistedQuery` value if any. `Ok(None)`: run the text as
    /// sent; `Ok(Some(text))`: run the stored text; `Err`: refuse the request.
    pub async fn resolve(
        &self,
        query: Option<&str>,
        persisted: Option<&serde_json::Value>,
    ) -> Result<Option<Arc<str>>, Refusal> {
        let query = query.filter(|q| !q.is_empty());
        let Some(persisted) = persisted.filter(|p| !p.is_null()) else {
            // A plain request: in allow-list mode, its exact text must be listed.
            if let Some(list) = &self.allowlist
                && query.is_none_or(|q| list.get(&sha256_hex(q)).is_none())
            {
                self.metrics.apq(ApqOutcome::Refused);
                return Err(Refusal::NotAllowed);
            }
            return Ok(None);
        };
        let hash = parse_extension(persisted)?;
        if let Some(text) = query
            && sha256_hex(text) != hash
        {
            return Err(Refusal::BadRequest(
                "provided sha does not match query".into(),
            ));
        }
        if let Some(list) = &self.allowlist {
            // The list is the store: nothing is registered, nothing else runs.
            return match list.get(&hash) {
                Some(text) => {
                    if query.is_none() {
                        self.metrics.apq(ApqOutcome::Hit);
                    }
                    Ok(Some(text))
                }
                None => {
                    self.metrics.apq(ApqOutcome::Refused);
                    Err(Refusal::NotAllowed)
                }
            };
        }
        match query {
            Some(text) => {
                self.register(hash, Arc::from(text)).await;
                Ok(None)
            }
            None => match self.lookup(&hash).await {
                Some(text) => {
                    self.metrics.apq(ApqOutcome::Hit);
                    Ok(Some(text))
                }
                None => {
                    self.metrics.apq(ApqOutcome::Miss);
                    Err(Refusal::NotFound)
                }
            },
        }
    }

    async fn lookup(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(text) = lock(&self.local).get(hash) {
            return Some(text);
        }
        let redis = self.redis.as_ref()?;
        let key = redis.key(&format!("apq:{hash}"));
        let found = redis
            .run("persisted queries", |mut c| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await
            .flatten()?;
        // Whatever is in Redis was checked on registration; a foreign writer sharing the prefix
        // must not make us run something else, so check again.
        if sha256_hex(&found) != hash {
            tracing::warn!(
                hash,
                "persisted query in Redis does not match its hash: ignored"
            );
            return None;
        }
        let text: Arc<str> = Arc::from(found);
        lock(&self.local).insert(hash.to_owned(), text.clone());
        Some(text)
    }

    async fn register(&self, hash: String, text: Arc<str>) {
        let known = lock(&self.local).get(&hash).is_some();
        lock(&self.local).insert(hash.clone(), text.clone());
        if let Some(redis) = &self.redis {
            let key = redis.key(&format!("apq:{hash}"));
            let ttl = self.ttl.as_secs().max(1);
            let body = text.to_string();
            // A failure is logged by the link; the document runs anyway.
            let _ = redis
                .run("persisted queries", |mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(body)
                        .arg("EX")
                        .arg(ttl)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await;
        }
        if !known {
            self.metrics.apq(ApqOutcome::Registered);
        }
    }
}

/// The lowercase hash of a `persistedQuery` extension, checking its version.
fn parse_extension(persisted: &serde_json::Value) -> Result<String, Refusal> {
    let bad = |m: &str| Err(Refusal::BadRequest(m.to_owned()));
    let Some(obj) = persisted.as_object() else {
        return bad("extensions.persistedQuery must be an object {version, sha256Hash}");
    };
    if obj.get("version").and_then(serde_json::Value::as_i64) != Some(1) {
        return bad("unsupported persisted query version: send version 1");
    }
    let Some(hash) = obj.get("sha256Hash").and_then(serde_json::Value::as_str) else {
        return bad("extensions.persistedQuery.sha256Hash is missing");
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits");
    }
    Ok(hash.to_ascii_lowercase())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(allowlist: Option<Allowlist>) -> PersistedQueries {
        PersistedQueries::new(
            allowlist.map(Arc::new),
            None,
            Duration::from_secs(60),
            Arc::new(Metrics::default()),
        )
    }

    fn ext(hash: &str) -> serde_json::Value {
        json!({"version": 1, "sha256Hash": hash})
    }

    #[test]
    fn hashes_are_lowercase_hex_sha256() {
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[tokio::test]
    async fn round_trip_in_process() {
        let s = store(None);
        let q = "{ __typename }";
        let h = sha256_hex(q);
        assert_eq!(
            s.resolve(None, Some(&ext(&h))).await,
            Err(Refusal::NotFound)
        );
        assert_eq!(s.resolve(Some(q), Some(&ext(&h))).await, Ok(None));
        assert_eq!(
            s.resolve(None, Some(&ext(&h.to_uppercase()))).await,
            Ok(Some(Arc::from(q)))
        );
        assert_eq!(s.resolve(Some(q), None).await, Ok(None));
        let wrong = s.resolve(Some("{ a }"), Some(&ext(&h))).await.unwrap_err();
        assert_eq!(wrong.message(), "provided sha does not match query");
        assert_eq!(wrong.status(), http::StatusCode::BAD_REQUEST);
        for bad in [
            json!("x"),
            json!({"version": 2, "sha256Hash": h}),
            json!({"version": 1}),
            json!({"version": 1, "sha256Hash": "abc"}),
            json!({"version": 1, "sha256Hash": "z".repeat(64)}),
        ] {
            assert!(
                matches!(
                    s.resolve(None, Some(&bad)).await,
                    Err(Refusal::BadRequest(_))
                ),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn allowlist_mode() {
        let listed = "query Listed { __typename }";
        let s = store(Some(Allowlist::from_documents([listed])));
        let h = sha256_hex(listed);
        assert_eq!(
            s.resolve(None, Some(&ext(&h))).await,
            Ok(Some(Arc::from(listed)))
        );
        assert_eq!(s.resolve(Some(listed), None).await, Ok(None));
        assert_eq!(
            s.resolve(Some(listed), Some(&ext(&h))).await,
            Ok(Some(Arc::from(listed)))
        );
        let other = "{ __typename }";
        assert_eq!(s.resolve(Some(other), None).await, Err(Refusal::NotAllowed));
        assert_eq!(
            s.resolve(Some(other), Some(&ext(&sha256_hex(other)))).await,
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            s.resolve(None, Some(&ext(&sha256_hex(other)))).await,
            Err(Refusal::NotAllowed)
        );
        assert_eq!(s.resolve(None, None).await, Err(Refusal::NotAllowed));
    }

    #[test]
    fn the_local_store_is_bounded() {
        let mut local = LocalStore::default();
        for i in 0..MAX_ENTRIES + 10 {
            local.insert(format!("{i}"), Arc::from("x"));
        }
        assert_eq!(local.map.len(), MAX_ENTRIES);
        assert!(local.get("0").is_none());
        assert!(local.get(&format!("{}", MAX_ENTRIES + 9)).is_some());
        let big: Arc<str> = Arc::from("y".repeat(MAX_BYTES / 2 + 1));
        local.insert("big1".into(), big.clone());
        local.insert("big2".into(), big);
        assert!(local.bytes <= MAX_BYTES);
        assert!(local.get("big1").is_none() && local.get("big2").is_some());
    }

    #[test]
    fn allowlist_files() {
        assert_eq!(Allowlist::from_json(r#"["{ a }"]"#).unwrap().len(), 1);
        assert!(Allowlist::from_json(r#"{"h": "{ a }"}"#).is_err());
        assert!(Allowlist::from_json(r#"["  "]"#).is_err());
        assert!(Allowlist::from_json("nope").is_err());
    }
}
