//! Helpers for integration tests: a hosted service on `127.0.0.1:0`, fresh SQLite and PostgreSQL
//! databases; test callers ([`Who`]), the audit log of personal-data reads as tests read it, and the
//! cells of an access matrix ([`Outcome`]).
//!
//! PostgreSQL tests take the server from `PATTO_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`, set by `make test` when the server answers) and
//! run each in a database of its own, dropped afterwards. Without the variable they are skipped,
//! unless `PATTO_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use std::net::SocketAddr;
use std::time::Duration;

use patto_proto::common::v1::audit_service_client::AuditServiceClient;
use patto_proto::common::v1::{ListPersonalDataReadsRequest, PersonalDataRead};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::host::{GrpcApp, HostError, serve};

/// A service hosted on an ephemeral port for the length of a test.
pub struct TestServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), HostError>>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and serves `app`. The listener is bound before this returns, so the
    /// server is ready for connections without any sleep.
    pub async fn start(app: GrpcApp) -> Self {
        Self::start_with_grace(app, Duration::from_secs(5)).await
    }

    /// As [`TestServer::start`], with the drain time allowed after [`TestServer::stop`].
    pub async fn start_with_grace(app: GrpcApp, grace: Duration) -> Self {
        Self::start_at(app, SocketAddr::from(([127, 0, 0, 1], 0)), grace).await
    }

    /// Serves `app` on `addr`: a port of a stopped server, to play a restart.
    pub async fn start_at(app: GrpcApp, addr: SocketAddr, grace: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the test server");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            app,
            listener,
            async {
                let _ = stopped.await;
            },
            grace,
        ));
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:<port>`, for tonic clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A connected channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url())
            .expect("endpoint")
            .connect()
            .await
            .expect("connect to test server")
    }

    /// Signals shutdown and waits until the server has drained and stopped.
    pub async fn stop(mut self) -> Result<(), HostError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fresh in-memory SQLite database with `M`'s migrations applied.
pub async fn sqlite<M: MigratorTrait>() -> DatabaseConnection {
    crate::db::connect_and_migrate::<M>("sqlite::memory:")
        .await
        .expect("in-memory SQLite")
}

/// A PostgreSQL database created for one test and dropped when this value is dropped.
pub struct TestPostgres {
    /// URL of the test database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestPostgres {
    /// Creates a database with a unique name on the server of `PATTO_TEST_POSTGRES_URL`; `None`
    /// (test skipped) when the variable is unset, a panic when `PATTO_REQUIRE_POSTGRES=1`.
    pub async fn create() -> Option<Self> {
        let Some(admin_url) = std::env::var("PATTO_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("PATTO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PATTO_REQUIRE_POSTGRES=1 but PATTO_TEST_POSTGRES_URL is unset: start PostgreSQL and run `make test`"
            );
            eprintln!("PATTO_TEST_POSTGRES_URL unset: skipping a PostgreSQL test");
            return None;
        };
        let name = format!("patto_test_{}", uuid::Uuid::new_v4().simple());
        let admin = crate::db::connect(&admin_url)
            .await
            .expect("connect to PATTO_TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, db)) if !server.ends_with('/') && !db.contains('@') => {
                let query = db
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                format!("{server}/{name}{query}")
            }
            _ => format!("{}/{name}", admin_url.trim_end_matches('/')),
        };
        Some(Self {
            url,
            name,
            admin_url,
        })
    }

    /// Connects to the test database and applies `M`'s migrations.
    pub async fn migrated<M: MigratorTrait>(&self) -> Result<DatabaseConnection, DbErr> {
        crate::db::connect_and_migrate::<M>(&self.url).await
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Drop runs outside async context: use a short-lived runtime on its own thread.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(admin) = crate::db::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// POSTs a JSON body over a plain HTTP/1.1 connection (closed after the answer) and returns the
/// status and the body: enough for end-to-end tests of the gateway without an HTTP client crate.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    http1(addr, "POST", path, &all, body).await
}

/// GETs `path` over a plain HTTP/1.1 connection and returns the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http1(addr, "GET", path, &[], "").await
}

async fn http1(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// Header [`HeaderPrincipal`] reads the caller from.
pub const PRINCIPAL_HEADER: &str = "x-test-principal";

/// Test authenticator: turns `x-test-principal: citizen:<CF> | operator:<ISTAT> | system:<ISTAT>`
/// into the principal, as the identity work will turn a verified token into one. No header means
/// anonymous; anything else is UNAUTHENTICATED.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderPrincipal;

impl crate::auth::Authenticator for HeaderPrincipal {
    fn authenticate<'a>(
        &'a self,
        headers: &'a http::HeaderMap,
    ) -> futures::future::BoxFuture<'a, Result<crate::Principal, tonic::Status>> {
        Box::pin(std::future::ready(principal_from_header(headers)))
    }
}

fn principal_from_header(headers: &http::HeaderMap) -> Result<crate::Principal, tonic::Status> {
    {
        use crate::Principal;
        let Some(value) = headers.get(PRINCIPAL_HEADER) else {
            return Ok(Principal::Anonymous);
        };
        let value = value
            .to_str()
            .map_err(|_| tonic::Status::unauthenticated("bad principal"))?;
        match value.split_once(':') {
            Some(("citizen", cf)) => Ok(Principal::Citizen {
                fiscal_code: cf.into(),
            }),
            Some(("operator", c)) => Ok(Principal::Operator {
                istat_code: c.into(),
                subject: format!("operator@{c}"),
            }),
            Some(("system", c)) => Ok(Principal::System {
                istat_code: c.into(),
                subject: format!("system@{c}"),
            }),
            _ => Err(tonic::Status::unauthenticated("bad principal")),
        }
    }
}

/// A test caller, sent as the [`PRINCIPAL_HEADER`] that [`HeaderPrincipal`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// No credentials.
    Anonymous,
    /// A citizen (codice fiscale).
    Citizen(String),
    /// An operator of a comune (ISTAT code).
    Operator(String),
    /// A comune's system (ISTAT code).
    System(String),
}

impl Who {
    /// A citizen caller.
    pub fn citizen(fiscal_code: &str) -> Self {
        Who::Citizen(fiscal_code.to_owned())
    }

    /// An operator of comune `istat_code`.
    pub fn operator(istat_code: &str) -> Self {
        Who::Operator(istat_code.to_owned())
    }

    /// The system of comune `istat_code`.
    pub fn system(istat_code: &str) -> Self {
        Who::System(istat_code.to_owned())
    }

    /// The header value, or `None` for anonymous callers.
    pub fn header(&self) -> Option<String> {
        match self {
            Who::Anonymous => None,
            Who::Citizen(cf) => Some(format!("citizen:{cf}")),
            Who::Operator(c) => Some(format!("operator:{c}")),
            Who::System(c) => Some(format!("system:{c}")),
        }
    }

    /// `message` as a request from this caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(value) = self.header().and_then(|h| h.parse().ok()) {
            request.metadata_mut().insert(PRINCIPAL_HEADER, value);
        }
        request
    }

    /// `message` as a request from this caller declaring the PDND purpose `purpose` in
    /// [`crate::audit::PURPOSE_HEADER`], as the audit records it with each read.
    pub fn request_with_purpose<T>(&self, message: T, purpose: &str) -> tonic::Request<T> {
        let mut request = self.request(message);
        request.metadata_mut().insert(
            crate::audit::PURPOSE_HEADER,
            purpose.parse().expect("a purpose id is a header value"),
        );
        request
    }
}

/// `who` lists the reads of personal data in the audit log of the service on `channel`
/// (`patto.common.v1.AuditService`), filtered by citizen and comune where these are not empty:
/// the first page (of the server's default size), newest first.
pub async fn personal_data_reads(
    channel: &tonic::transport::Channel,
    who: &Who,
    fiscal_code: &str,
    istat_code: &str,
) -> Result<Vec<PersonalDataRead>, tonic::Status> {
    AuditServiceClient::new(channel.clone())
        .list_personal_data_reads(who.request(ListPersonalDataReadsRequest {
            fiscal_code: fiscal_code.into(),
            istat_code: istat_code.into(),
            page: None,
        }))
        .await
        .map(|answer| answer.into_inner().items)
}

/// A read of the audit log as one row to compare whole: `[reader_role, reader_subject,
/// reader_istat_code, fiscal_code, istat_code, what, purpose_id, service]` (all but `read_at`).
pub fn read_row(read: &PersonalDataRead) -> [&str; 8] {
    [
        &read.reader_role,
        &read.reader_subject,
        &read.reader_istat_code,
        &read.fiscal_code,
        &read.istat_code,
        &read.what,
        &read.purpose_id,
        &read.service,
    ]
}

/// What one cell of an access matrix expects of a call: an answer with or without the citizen's
/// data, a change done, or a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, with the citizen's data.
    Sees,
    /// Answered, without it (an operator of another comune gets its own comune's rows only).
    Nothing,
    /// Done.
    Done,
    /// Refused: signed in, not allowed.
    Denied,
    /// Refused: sign in first.
    SignIn,
}

impl Outcome {
    /// The code of the refusal this cell expects: `PERMISSION_DENIED` for [`Outcome::Denied`],
    /// `UNAUTHENTICATED` for [`Outcome::SignIn`], `None` for an answer.
    pub fn refusal(self) -> Option<tonic::Code> {
        match self {
            Outcome::Denied => Some(tonic::Code::PermissionDenied),
            Outcome::SignIn => Some(tonic::Code::Unauthenticated),
            Outcome::Sees | Outcome::Nothing | Outcome::Done => None,
        }
    }

    /// Asserts that `answer` is the refusal this cell expects (see [`assert_refused`]); panics,
    /// naming `cell`, if the cell expects an answer.
    pub fn assert_refused<T: std::fmt::Debug>(self, answer: Result<T, tonic::Status>, cell: &str) {
        let code = self
            .refusal()
            .unwrap_or_else(|| panic!("{cell}: {self:?} is no refusal"));
        assert_refused(answer, code, cell);
    }
}

/// The gRPC code of a refused call, `None` for an answer: what access-matrix cells compare.
pub fn code_of<T>(result: &Result<T, tonic::Status>) -> Option<tonic::Code> {
    result.as_ref().err().map(tonic::Status::code)
}

/// Asserts that `answer` was refused with `code`, naming `context` if not, and returns the status
/// for further checks.
pub fn assert_refused<T: std::fmt::Debug>(
    answer: Result<T, tonic::Status>,
    code: tonic::Code,
    context: &str,
) -> tonic::Status {
    let status = answer.expect_err(context);
    assert_eq!(status.code(), code, "{context}: {status:?}");
    status
}
