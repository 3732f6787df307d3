//! Per-request state: the time budget, forwarded metadata, the backend call count, and the
//! batching of `lookup` and `extends` calls (a per-request DataLoader).
//!
//! Batching without a delay: the execution future runs inside [`Driven`], which counts the
//! passes in which it is polled. A batch's first key waits until the pass it was registered in
//! has ended, so every sibling resolver polled in that pass has added its key; then one call
//! goes out. No timer is involved, so batching costs no latency (async-graphql's DataLoader
//! waits a fixed delay instead, which costs throughput).
//!
//! A pass ends only when the execution is idle: a poll that returns `Pending` after something
//! inside woke it again (a `FuturesUnordered` of list items yielding after a budget of polls,
//! tokio's cooperative budget running out, siblings woken by a batch that just finished) has
//! resolvers still waiting to run, so that poll does not end the pass. Otherwise a wide list
//! (every comune) could split one batch in two.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use prost_reflect::{DynamicMessage, MethodDescriptor, Value};

use crate::transport::{Call, CallError, Invoker, UnaryResult};

/// Counts the passes of an execution and wakes the batches waiting for a pass to end.
#[derive(Debug, Default)]
pub struct Scheduler {
    epoch: AtomicU64,
    driven: AtomicBool,
    waiting: Mutex<Vec<Waker>>,
}

impl Scheduler {
    /// Completes once the pass current at the call has ended (at once when nothing drives passes,
    /// e.g. inside a subscription: then there is simply no batching).
    async fn next_pass(&self) {
        let start = self.epoch.load(Ordering::Acquire);
        std::future::poll_fn(|cx| {
            if !self.driven.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) > start {
                return Poll::Ready(());
            }
            lock(&self.waiting).push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs a GraphQL execution so that batches know when a pass has ended.
pub struct Driven<F> {
    inner: Pin<Box<F>>,
    scheduler: Arc<Scheduler>,
    waker: Arc<Flagging>,
}

/// The waker the execution sees: it notes that it was woken, then wakes the task.
struct Flagging {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl std::task::Wake for Flagging {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        if let Some(w) = lock(&self.task).as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: Future> Driven<F> {
    /// Drives `inner` for the request owning `ctx`.
    pub fn new(ctx: &RequestCtx, inner: F) -> Self {
        ctx.scheduler.driven.store(true, Ordering::Release);
        Self {
            inner: Box::pin(inner),
            scheduler: ctx.scheduler.clone(),
            waker: Arc::new(Flagging {
                woken: AtomicBool::new(false),
                task: Mutex::new(None),
            }),
        }
    }
}

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        {
            let mut task = lock(&self.waker.task);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        self.waker.woken.store(false, Ordering::Release);
        let waker = Waker::from(self.waker.clone());
        let out = self.inner.as_mut().poll(&mut Context::from_waker(&waker));
        // Woken while polled: some resolvers are ready and have not run yet, so the pass goes
        // on (the task is already scheduled to poll again).
        if out.is_pending() && !self.waker.woken.load(Ordering::Acquire) {
            self.scheduler.epoch.fetch_add(1, Ordering::AcqRel);
            let waiting = std::mem::take(&mut *lock(&self.scheduler.waiting));
            for w in waiting {
                w.wake();
            }
        }
        out
    }
}

type BatchOutcome = Result<Arc<HashMap<String, DynamicMessage>>, CallError>;

struct Batch {
    keys: Arc<Mutex<Vec<String>>>,
    outcome: Shared<BoxFuture<'static, BatchOutcome>>,
}

/// A batched call: which RPC, with which extra arguments, on which service.
#[derive(Clone)]
pub struct BatchSpec {
    /// Service name.
    pub service: Arc<str>,
    /// The lookup or extends RPC.
    pub method: MethodDescriptor,
    /// The request without keys (extra arguments of an extension field).
    pub request: DynamicMessage,
    /// Whether the RPC may be retried.
    pub retryable: bool,
    /// Name of the request field carrying the keys (`keys` by the batch contract).
    pub keys_field: &'static str,
    /// Name of the item field holding its key (`key` by the batch contract).
    pub key_field: &'static str,
}

impl BatchSpec {
    /// A batched call of `method` following the batch contract (`keys` in, items with `key` out).
    pub fn new(
        service: Arc<str>,
        method: MethodDescriptor,
        request: DynamicMessage,
        retryable: bool,
    ) -> Self {
        Self {
            service,
            method,
            request,
            retryable,
            keys_field: "keys",
            key_field: "key",
        }
    }

    /// The same call for an RPC whose key fields have other names.
    pub fn with_key_fields(mut self, keys_field: &'static str, key_field: &'static str) -> Self {
        self.keys_field = keys_field;
        self.key_field = key_field;
        self
    }
}

/// State of one GraphQL request.
pub struct RequestCtx {
    /// When the operation's time budget ends.
    pub deadline: Option<Instant>,
    /// Metadata forwarded to every backend call.
    pub metadata: Vec<(String, String)>,
    calls: AtomicUsize,
    per_service: Mutex<BTreeMap<String, usize>>,
    scheduler: Arc<Scheduler>,
    batches: Arc<Mutex<HashMap<String, Batch>>>,
    /// Results a compiled plan fetched before handing the operation to the engine, by call.
    prefetched: Mutex<Vec<(String, UnaryResult)>>,
}

/// A call a compiled plan made, with its result.
pub struct Fetched {
    /// Short name of the service.
    pub service: Arc<str>,
    /// The RPC.
    pub method: MethodDescriptor,
    /// The request sent.
    pub request: DynamicMessage,
    /// What came back.
    pub result: UnaryResult,
}

fn call_key(service: &str, method: &MethodDescriptor, request: &DynamicMessage) -> String {
    format!(
        "{service}|{}|{}",
        method.full_name(),
        request_fingerprint(request)
    )
}

impl RequestCtx {
    /// A request with this budget and metadata.
    pub fn new(deadline: Option<Instant>, metadata: Vec<(String, String)>) -> Arc<Self> {
        Arc::new(Self {
            deadline,
            metadata,
            calls: AtomicUsize::new(0),
            per_service: Mutex::new(BTreeMap::new()),
            scheduler: Arc::new(Scheduler::default()),
            batches: Arc::new(Mutex::new(HashMap::new())),
            prefetched: Mutex::new(Vec::new()),
        })
    }

    /// A unary call for this request, counted; a result a compiled plan already fetched for the
    /// same call is taken instead of calling again.
    pub async fn unary(&self, invoker: &Arc<dyn Invoker>, call: Call) -> UnaryResult {
        let handed_over = {
            let mut prefetched = lock(&self.prefetched);
            if prefetched.is_empty() {
                None
            } else {
                let key = call_key(&call.service, &call.method, &call.request);
                prefetched
                    .iter()
                    .position(|(k, _)| *k == key)
                    .map(|i| prefetched.swap_remove(i).1)
            }
        };
        if let Some(result) = handed_over {
            return result;
        }
        self.count_call(&call.service);
        invoker.unary(call).await
    }

    /// Leaves a compiled plan's results for the engine, which takes over the operation.
    pub fn hand_over(&self, fetched: impl IntoIterator<Item = Fetched>) {
        let mut prefetched = lock(&self.prefetched);
        for f in fetched {
            let key = call_key(&f.service, &f.method, &f.request);
            prefetched.push((key, f.result));
        }
    }

    /// Counts a backend call made for this request.
    pub fn count_call(&self, service: &str) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        *lock(&self.per_service)
            .entry(service.to_owned())
            .or_default() += 1;
    }

    /// Backend calls made so far, in total and per service.
    pub fn calls(&self) -> (usize, BTreeMap<String, usize>) {
        (
            self.calls.load(Ordering::Relaxed),
            lock(&self.per_service).clone(),
        )
    }

    /// A call for this request: its budget and metadata attached.
    pub fn call(
        &self,
        service: Arc<str>,
        method: MethodDescriptor,
        request: DynamicMessage,
        retryable: bool,
    ) -> Call {
        Call {
            service,
            method,
            request,
            deadline: self.deadline,
            metadata: self.metadata.clone(),
            retryable,
            decode: crate::wire::Decode::Whole,
        }
    }

    /// Loads the item for `key` through a batched call: every key asked for the same RPC and
    /// arguments in the same pass goes out in one call, each distinct key once. `None` when the
    /// service has no item for the key.
    pub async fn load(
        self: &Arc<Self>,
        invoker: &Arc<dyn Invoker>,
        spec: &BatchSpec,
        key: String,
    ) -> Result<Option<DynamicMessage>, CallError> {
        let group = format!(
            "{}|{}|{}",
            spec.service,
            spec.method.full_name(),
            request_fingerprint(&spec.request)
        );
        let outcome = {
            let mut batches = lock(&self.batches);
            let batch = batches.entry(group.clone()).or_insert_with(|| {
                let keys = Arc::new(Mutex::new(Vec::new()));
                let fut = dispatch(
                    self.clone(),
                    invoker.clone(),
                    spec.clone(),
                    group.clone(),
                    keys.clone(),
                );
                Batch {
                    keys,
                    outcome: fut.boxed().shared(),
                }
            });
            lock(&batch.keys).push(key.clone());
            batch.outcome.clone()
        };
        let items = outcome.await?;
        Ok(items.get(&key).cloned())
    }
}

fn request_fingerprint(m: &DynamicMessage) -> String {
    use prost::Message;
    m.encode_to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn dispatch(
    ctx: Arc<RequestCtx>,
    invoker: Arc<dyn Invoker>,
    spec: BatchSpec,
    group: String,
    keys: Arc<Mutex<Vec<String>>>,
) -> BatchOutcome {
    ctx.scheduler.next_pass().await;
    // Close the batch: keys asked from now on (a deeper level) start a new one.
    lock(&ctx.batches).remove(&group);
    let mut keys: Vec<String> = std::mem::take(&mut *lock(&keys));
    keys.sort();
    keys.dedup();
    let mut request = spec.request.clone();
    request.set_field_by_name(
        spec.keys_field,
        Value::List(keys.into_iter().map(Value::String).collect()),
    );
    ctx.count_call(&spec.service);
    let mut response = invoker
        .unary(ctx.call(
            spec.service.clone(),
            spec.method.clone(),
            request,
            spec.retryable,
        ))
        .await?;
    let mut items = HashMap::new();
    // The items are moved out of the response, not copied.
    if let Some(Value::List(list)) = response.take_field_by_name("items") {
        for item in list {
            if let Value::Message(m) = item {
                let key = m
                    .get_field_by_name(spec.key_field)
                    .and_then(|k| k.as_str().map(str::to_owned))
                    .unwrap_or_default();
                items.insert(key, m);
            }
        }
    }
    Ok(Arc::new(items))
}

/// Executes a GraphQL request with its per-request state, batching lookups and extensions: by
/// the document's compiled plan when it has one (see `compose::plan`), else by the engine. The
/// HTTP layer has already put the document in the request through [`parse`].
pub async fn execute(
    composition: &crate::compose::Composition,
    mut request: async_graphql::Request,
    ctx: Arc<RequestCtx>,
) -> Executed {
    use crate::compose::plan::Known;
    let plans = &composition.plans;
    let known = plans.lookup(&request);
    if let Known::Plan(plan) = &known
        && let Some(data) = plan.run(&request.variables, &ctx).await
    {
        return Executed::Planned(data);
    }
    // A document not seen before is compiled now and its plan kept once the engine has run it
    // cleanly, which proves it valid against this schema.
    let candidate = match known {
        Known::Unknown => {
            let operation = request.operation_name.clone();
            request
                .parsed_query()
                .ok()
                .map(|doc| plans.compile(doc, operation.as_deref()))
        }
        Known::Plan(_) | Known::Engine => None,
    };
    let keep = candidate.map(|plan| (request.query.clone(), request.operation_name.clone(), plan));
    let request = request.data(ctx.clone());
    let response = Driven::new(&ctx, composition.schema.execute(request)).await;
    if let Some((query, operation, plan)) = keep
        && response.errors.is_empty()
    {
        plans.keep(query, operation, plan);
    }
    Executed::Engine(response)
}

/// What answered an operation.
pub enum Executed {
    /// The engine, with its response.
    Engine(async_graphql::Response),
    /// A compiled plan, with the operation's `data` as JSON (a plan answers only without errors).
    Planned(Vec<u8>),
}

/// Queries longer than this are parsed every time, never kept.
pub const MAX_CACHED_QUERY: usize = 4 * 1024;
/// Parsed documents kept per generation (see [`Documents`]).
pub const DOCUMENTS_PER_GENERATION: usize = 128;

/// Parsed documents by query text. Parsing is the costliest step of a small operation (pest: about
/// 40 µs for the 300-character query of `make bench`, against about 1 µs to copy the parsed
/// document), and clients send the same few documents over and over. Only parsing is skipped:
/// each operation is still validated against the live schema and executed. Parsing does not
/// depend on the schema, so a schema swap leaves these valid. Bounded: two generations of at
/// most [`DOCUMENTS_PER_GENERATION`] documents each; when the young one is full it becomes the old
/// one and the old one is dropped; a document found in the old one moves back to the young one.
#[derive(Default)]
pub struct Documents {
    generations: Mutex<(DocumentMap, DocumentMap)>,
}

type DocumentMap = HashMap<String, Arc<async_graphql::parser::types::ExecutableDocument>>;

impl Documents {
    fn get(&self, query: &str) -> Option<Arc<async_graphql::parser::types::ExecutableDocument>> {
        let mut g = lock(&self.generations);
        if let Some(doc) = g.0.get(query) {
            return Some(doc.clone());
        }
        let doc = g.1.remove(query)?;
        Self::keep(&mut g, query.to_owned(), doc.clone());
        Some(doc)
    }

    fn insert(&self, query: &str, doc: Arc<async_graphql::parser::types::ExecutableDocument>) {
        if query.len() <= MAX_CACHED_QUERY {
            Self::keep(&mut lock(&self.generations), query.to_owned(), doc);
        }
    }

    fn keep(
        g: &mut (DocumentMap, DocumentMap),
        query: String,
        doc: Arc<async_graphql::parser::types::ExecutableDocument>,
    ) {
        if g.0.len() >= DOCUMENTS_PER_GENERATION {
            g.1 = std::mem::take(&mut g.0);
        }
        g.0.insert(query, doc);
    }
}

static DOCUMENTS: std::sync::LazyLock<Documents> = std::sync::LazyLock::new(Documents::default);

/// The parsed document of `query`, parsed at most once per distinct query text while it stays in
/// [`Documents`]; `None` when it does not parse.
pub fn document(query: &str) -> Option<Arc<async_graphql::parser::types::ExecutableDocument>> {
    if let Some(doc) = DOCUMENTS.get(query) {
        return Some(doc);
    }
    let doc = Arc::new(async_graphql::parser::parse_query(query).ok()?);
    DOCUMENTS.insert(query, doc.clone());
    Some(doc)
}

/// The parsed document of `request` ([`document`]), put in the request so execution does not
/// parse it again. `None` when the query does not parse (execution then reports why).
pub fn parse(
    request: &mut async_graphql::Request,
) -> Option<&async_graphql::parser::types::ExecutableDocument> {
    if request.query.is_empty() {
        return None;
    }
    let doc = document(&request.query)?;
    request.set_parsed_query((*doc).clone());
    request.parsed_query().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::StreamResult;
    use futures::stream::{FuturesUnordered, StreamExt};
    use prost_reflect::DescriptorPool;

    /// Answers `LookupVenues` with one item per key asked, and counts the calls.
    #[derive(Default)]
    struct Venues(AtomicUsize);

    impl Invoker for Venues {
        fn unary(&self, call: Call) -> BoxFuture<'static, UnaryResult> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let output = call.method.output();
            let item = output.get_field_by_name("items").unwrap();
            let Some(prost_reflect::Kind::Message(item)) = Some(item.kind()) else {
                unreachable!("items are messages")
            };
            let keys = call.request.get_field_by_name("keys").unwrap().into_owned();
            let items = keys
                .as_list()
                .unwrap()
                .iter()
                .map(|k| {
                    let mut m = DynamicMessage::new(item.clone());
                    m.set_field_by_name("key", k.clone());
                    Value::Message(m)
                })
                .collect();
            let mut response = DynamicMessage::new(output);
            response.set_field_by_name("items", Value::List(items));
            async move { Ok(response) }.boxed()
        }

        fn server_streaming(&self, _: Call) -> BoxFuture<'static, StreamResult> {
            unreachable!("no streams here")
        }
    }

    /// Returns `Pending` `times` times after waking itself, as a future that has spent its
    /// cooperative budget does.
    async fn yield_times(times: usize) {
        let mut left = times;
        std::future::poll_fn(|cx| {
            if left == 0 {
                return Poll::Ready(());
            }
            left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    #[tokio::test]
    async fn a_wide_list_that_yields_still_batches_each_level_in_one_call() {
        let pool = DescriptorPool::decode(patto_proto::FILE_DESCRIPTOR_SET).unwrap();
        let method = pool
            .get_service_by_name("patto.culture.v1.CultureService")
            .unwrap()
            .methods()
            .find(|m| m.name() == "LookupVenues")
            .unwrap();
        let spec = BatchSpec::new(
            "culture".into(),
            method.clone(),
            DynamicMessage::new(method.input()),
            true,
        );
        let venues = Arc::new(Venues::default());
        let invoker: Arc<dyn Invoker> = venues.clone();
        let ctx = RequestCtx::new(None, Vec::new());
        // Items of a list yield a different number of times before asking (and
        // FuturesUnordered gives up its poll after two self-wakes), so some ask in one poll and
        // some in later ones; each asks a key, then a second key one level deeper.
        let items: FuturesUnordered<_> = (0..300)
            .map(|i| {
                let (ctx, invoker, spec) = (ctx.clone(), invoker.clone(), spec.clone());
                async move {
                    yield_times(i % 4).await;
                    let first = ctx.load(&invoker, &spec, format!("v{i}")).await.unwrap();
                    yield_times(i % 3).await;
                    let deeper = ctx.load(&invoker, &spec, format!("w{i}")).await.unwrap();
                    first.is_some() && deeper.is_some()
                }
            })
            .collect();
        let found = Driven::new(&ctx, items.collect::<Vec<bool>>()).await;
        assert!(found.iter().all(|f| *f) && found.len() == 300);
        assert_eq!(venues.0.load(Ordering::SeqCst), 2, "one call per level");
        assert_eq!(ctx.calls().0, 2);
    }

    #[test]
    fn documents_parse_once_and_stay_bounded() {
        let query = "{ events(istatCode: \"082053\") { totalCount } }";
        let fresh = async_graphql::parser::parse_query(query).unwrap();
        for _ in 0..2 {
            let mut request = async_graphql::Request::new(query);
            let doc = parse(&mut request).expect("parses");
            assert_eq!(format!("{doc:?}"), format!("{fresh:?}"));
        }
        assert!(parse(&mut async_graphql::Request::new("{ broken")).is_none());

        let docs = Documents::default();
        let doc = Arc::new(fresh);
        for i in 0..3 * DOCUMENTS_PER_GENERATION {
            docs.insert(&format!("{{ a{i} }}"), doc.clone());
            let g = lock(&docs.generations);
            assert!(g.0.len() + g.1.len() <= 2 * DOCUMENTS_PER_GENERATION);
        }
        // The oldest are gone; one from the old generation moves back to the young one.
        assert!(docs.get("{ a0 }").is_none());
        let old = format!("{{ a{} }}", 2 * DOCUMENTS_PER_GENERATION - 1);
        assert!(docs.get(&old).is_some());
        assert!(lock(&docs.generations).0.contains_key(&old));
        // Long queries are never kept.
        docs.insert(&"x".repeat(MAX_CACHED_QUERY + 1), doc);
        assert!(docs.get(&"x".repeat(MAX_CACHED_QUERY + 1)).is_none());
    }
}
