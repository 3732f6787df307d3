//! The record of who read whose personal data.
//!
//! Every read of a citizen's personal data by anyone but that citizen (an operator, a comune's
//! system, another member of the household) is written to the `personal_data_reads` table of the
//! service that holds the data, before the data leaves the service: a read that cannot be recorded
//! is not served. [`AuditServer`] answers `patto.common.v1.AuditService`, so the comune's operators
//! list the reads of the data their comune holds, and each citizen lists the reads of their own.
//!
//! A handler collects what it is about to return in a [`Reads`], which checks every record with the
//! access rule ([`crate::access`]) and remembers whose data it is, then saves them in one insert.

use std::collections::BTreeSet;

use chrono::Utc;
use patto_proto::common::v1 as pb;
use sea_orm::entity::prelude::*;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryOrder, QuerySelect, Set};
use sea_orm_migration::prelude::{
    ColumnDef, Index, MigrationName, MigrationTrait, SchemaManager, Table,
};
use tonic::{Request, Response, Status};

use crate::access::{self, Record};
use crate::auth::{Principal, principal};
use crate::error::{ServiceError, Violations};
use crate::paging::Page;
use crate::validate;

/// Metadata header in which a reader declares the purpose of the read (the PDND purpose id).
pub const PURPOSE_HEADER: &str = "x-pdnd-purpose-id";

pub(crate) mod read {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "personal_data_reads")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub read_at: ChronoDateTimeUtc,
        pub reader_role: String,
        pub reader_subject: String,
        pub reader_istat_code: String,
        pub fiscal_code: String,
        pub istat_code: String,
        pub what: String,
        pub purpose_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Migration creating the `personal_data_reads` table; every service lists it in its migrator.
pub struct CreatePersonalDataReads;

#[derive(sea_orm::DeriveIden)]
enum PersonalDataReads {
    Table,
    Id,
    ReadAt,
    ReaderRole,
    ReaderSubject,
    ReaderIstatCode,
    FiscalCode,
    IstatCode,
    What,
    PurposeId,
}

impl MigrationName for CreatePersonalDataReads {
    fn name(&self) -> &str {
        "m20261126_000002_kit_personal_data_reads"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreatePersonalDataReads {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use PersonalDataReads as T;
        let text = |c: T| ColumnDef::new(c).string().not_null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(T::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(T::ReadAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(text(T::ReaderRole))
                    .col(text(T::ReaderSubject))
                    .col(text(T::ReaderIstatCode))
                    .col(text(T::FiscalCode))
                    .col(text(T::IstatCode))
                    .col(text(T::What))
                    .col(text(T::PurposeId))
                    .to_owned(),
            )
            .await?;
        // The two ways the log is listed: by citizen, and by comune; both newest first.
        for (name, col) in [
            ("ix_personal_data_reads_citizen", T::FiscalCode),
            ("ix_personal_data_reads_comune", T::IstatCode),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(T::Table)
                        .col(col)
                        .col(T::Id)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Who is reading, and why: the principal the kit attached and the declared purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The authenticated caller.
    pub principal: Principal,
    /// The purpose declared in [`PURPOSE_HEADER`], if any.
    pub purpose: Option<String>,
}

impl Caller {
    /// The caller of `request`.
    pub fn of<T>(request: &Request<T>) -> Self {
        let purpose = request
            .metadata()
            .get(PURPOSE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect::<String>())
            .filter(|v| !v.is_empty());
        Self {
            principal: principal(request),
            purpose,
        }
    }
}

/// The personal data one call is about to return: checked against the access rule, then recorded.
#[derive(Debug)]
pub struct Reads {
    caller: Caller,
    what: &'static str,
    own: Option<String>,
    seen: BTreeSet<(String, String)>,
}

impl Reads {
    /// Starts collecting the reads of `what` (e.g. `social.BenefitApplication`) by `caller`.
    pub fn new(caller: Caller, what: &'static str) -> Self {
        let own = match &caller.principal {
            Principal::Citizen { fiscal_code } => Some(access::canonical(fiscal_code)),
            _ => None,
        };
        Self {
            caller,
            what,
            own,
            seen: BTreeSet::new(),
        }
    }

    /// The caller's principal.
    pub fn principal(&self) -> &Principal {
        &self.caller.principal
    }

    /// Refuses `record` if the caller may not read it; otherwise notes whose data it is.
    pub fn check(&mut self, record: &Record<'_>) -> Result<(), ServiceError> {
        access::authorize_read(&self.caller.principal, record)?;
        self.note(record);
        Ok(())
    }

    /// [`Reads::check`] for each of `records`: the first the caller may not read refuses the
    /// whole answer (a listing shows all its rows or none).
    pub fn check_all<'r>(
        mut self,
        records: impl IntoIterator<Item = Record<'r>>,
    ) -> Result<Self, ServiceError> {
        for record in records {
            self.check(&record)?;
        }
        Ok(self)
    }

    /// Whether the caller may read `record` (for listings, which leave out what the caller may not
    /// see); notes whose data it is when they may.
    pub fn allows(&mut self, record: &Record<'_>) -> bool {
        let allowed = access::may_read(&self.caller.principal, record);
        if allowed {
            self.note(record);
        }
        allowed
    }

    fn note(&mut self, record: &Record<'_>) {
        let Record::Personal { subjects, comuni } = record else {
            return;
        };
        // The comune the data is read from: the reader's own when it holds the record.
        let holder = match self.caller.principal.comune() {
            Some(mine) if comuni.contains(&mine) => mine,
            _ => comuni.first().copied().unwrap_or_default(),
        };
        for subject in subjects {
            if self.own.as_deref() != Some(subject) {
                self.seen.insert(((*subject).to_owned(), holder.to_owned()));
            }
        }
    }

    /// How many citizens' reads are noted (for tests and metrics).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when nothing needs recording.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Writes the noted reads, one row per citizen and comune, in one statement. Call it before
    /// returning the data: a read that is not recorded must not be served.
    pub async fn save(self, conn: &impl ConnectionTrait) -> Result<(), ServiceError> {
        if self.seen.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let p = &self.caller.principal;
        let rows = self
            .seen
            .into_iter()
            .map(|(fiscal_code, istat_code)| read::ActiveModel {
                read_at: Set(now),
                reader_role: Set(p.kind().to_owned()),
                reader_subject: Set(p.subject().unwrap_or_default().to_owned()),
                reader_istat_code: Set(p.comune().unwrap_or_default().to_owned()),
                fiscal_code: Set(fiscal_code),
                istat_code: Set(istat_code),
                what: Set(self.what.to_owned()),
                purpose_id: Set(self.caller.purpose.clone().unwrap_or_default()),
                ..Default::default()
            });
        read::Entity::insert_many(rows).exec(conn).await?;
        Ok(())
    }
}

/// Answers `patto.common.v1.AuditService` over one service's log.
#[derive(Debug, Clone)]
pub struct AuditServer {
    db: DatabaseConnection,
    service: &'static str,
}

impl AuditServer {
    /// The audit service of `service` (e.g. `social`) over its database.
    pub fn new(db: DatabaseConnection, service: &'static str) -> Self {
        Self { db, service }
    }

    /// The tonic service, ready for [`crate::GrpcApp::add_service`].
    pub fn into_service(self) -> pb::audit_service_server::AuditServiceServer<Self> {
        pb::audit_service_server::AuditServiceServer::new(self)
    }

    async fn list(
        &self,
        who: &Principal,
        req: pb::ListPersonalDataReadsRequest,
    ) -> Result<pb::ListPersonalDataReadsResponse, ServiceError> {
        let mut v = Violations::default();
        let fiscal_code = match req.fiscal_code.trim() {
            "" => None,
            code => validate::fiscal_code_key(code)
                .map_err(|e| v.add("fiscal_code", e))
                .ok(),
        };
        let istat_code = match req.istat_code.trim() {
            "" => None,
            code => validate::istat_key(code)
                .map_err(|e| v.add("istat_code", e))
                .ok(),
        };
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let refuse = |why: &str| Err(access::refuse(who, why));
        let (fiscal_code, istat_code) = match who {
            Principal::Anonymous => return refuse("the log of reads of personal data"),
            Principal::Citizen { fiscal_code: me } => {
                let me = access::canonical(me);
                match fiscal_code {
                    Some(asked) if asked != me => {
                        return refuse("a citizen lists the reads of their own data only");
                    }
                    _ => (Some(me), istat_code),
                }
            }
            Principal::Operator {
                istat_code: mine, ..
            }
            | Principal::System {
                istat_code: mine, ..
            } => match istat_code {
                Some(asked) if asked != *mine => {
                    return refuse("an operator lists the reads of their own comune's data only");
                }
                _ => (fiscal_code, Some(mine.clone())),
            },
        };
        let mut query = read::Entity::find();
        if let Some(code) = fiscal_code {
            query = query.filter(read::Column::FiscalCode.eq(code));
        }
        if let Some(code) = istat_code {
            query = query.filter(read::Column::IstatCode.eq(code));
        }
        let total = query.clone().count(&self.db).await?;
        let rows = query
            .order_by_desc(read::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        let page_info = page.info(rows.len(), total);
        Ok(pb::ListPersonalDataReadsResponse {
            items: rows
                .into_iter()
                .map(|r| pb::PersonalDataRead {
                    read_at: Some(crate::time::to_timestamp(r.read_at)),
                    reader_role: r.reader_role,
                    reader_subject: r.reader_subject,
                    reader_istat_code: r.reader_istat_code,
                    fiscal_code: r.fiscal_code,
                    istat_code: r.istat_code,
                    what: r.what,
                    purpose_id: r.purpose_id,
                    service: self.service.to_owned(),
                })
                .collect(),
            page_info: Some(page_info),
        })
    }
}

#[tonic::async_trait]
impl pb::audit_service_server::AuditService for AuditServer {
    async fn list_personal_data_reads(
        &self,
        request: Request<pb::ListPersonalDataReadsRequest>,
    ) -> Result<Response<pb::ListPersonalDataReadsResponse>, Status> {
        let who = principal(&request);
        Ok(Response::new(self.list(&who, request.into_inner()).await?))
    }
}
