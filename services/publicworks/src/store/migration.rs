//! Schema of the public-works database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

use crate::domain::sal::{DEFAULT_CERTIFICATE_DAYS, DEFAULT_PAYMENT_DAYS};

/// The public-works service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateWorks),
        ]
    }
}

struct CreateWorks;

impl MigrationName for CreateWorks {
    fn name(&self) -> &str {
        "m20261201_000010_publicworks_works"
    }
}

#[derive(DeriveIden)]
enum Projects {
    Table,
    Id,
    IstatCode,
    Cup,
    Title,
    Description,
    Category,
    State,
    Incompiuta,
    IncompiutaNote,
    ProgrammeFirstYear,
    ProgrammeLastYear,
    InAnnualList,
    Cui,
    DesignLevel,
    BudgetCents,
    ContractorName,
    ContractorVat,
    ContractAmountCents,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    Latitude,
    Longitude,
    RupName,
    PlannedEndDate,
    ExternalRef,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProjectCigs {
    Table,
    ProjectId,
    Cig,
    Position,
}

#[derive(DeriveIden)]
enum ProjectFunding {
    Table,
    ProjectId,
    Position,
    Source,
    AmountCents,
    Reference,
}

#[derive(DeriveIden)]
enum SalEntries {
    Table,
    ProjectId,
    Number,
    Date,
    ProgressBasisPoints,
    AmountCents,
    CertificateDueDate,
    CertificateIssuedDate,
    CertificateAmountCents,
    PaymentDueDate,
    PaidDate,
    PaidAmountCents,
}

#[derive(DeriveIden)]
enum ProjectStateChanges {
    Table,
    ProjectId,
    Seq,
    State,
    Date,
    Note,
    RecordedAt,
}

#[derive(DeriveIden)]
enum SalTerms {
    Table,
    IstatCode,
    CertificateDays,
    PaymentDays,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string()
        .not_null()
        .default("")
        .to_owned()
}

fn int(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

fn cents(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn optional_cents(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

fn day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().not_null().to_owned()
}

fn optional_day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().null().to_owned()
}

fn project_id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(64).not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWorks {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Projects::Table)
                .col(
                    ColumnDef::new(Projects::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Projects::IstatCode).string_len(6).not_null())
                .col(text(Projects::Cup))
                .col(text(Projects::Title))
                .col(text(Projects::Description))
                .col(int(Projects::Category))
                .col(int(Projects::State))
                .col(ColumnDef::new(Projects::Incompiuta).boolean().not_null())
                .col(text(Projects::IncompiutaNote))
                .col(int(Projects::ProgrammeFirstYear))
                .col(int(Projects::ProgrammeLastYear))
                .col(ColumnDef::new(Projects::InAnnualList).boolean().not_null())
                .col(text(Projects::Cui))
                .col(int(Projects::DesignLevel))
                .col(cents(Projects::BudgetCents))
                .col(text(Projects::ContractorName))
                .col(text(Projects::ContractorVat))
                .col(optional_cents(Projects::ContractAmountCents))
                .col(text(Projects::Street))
                .col(text(Projects::HouseNumber))
                .col(text(Projects::PostalCode))
                .col(text(Projects::Locality))
                .col(ColumnDef::new(Projects::Latitude).double().null())
                .col(ColumnDef::new(Projects::Longitude).double().null())
                .col(text(Projects::RupName))
                .col(optional_day(Projects::PlannedEndDate))
                .col(text(Projects::ExternalRef))
                .col(int(Projects::Revision))
                .col(
                    ColumnDef::new(Projects::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Projects::UpdatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                // The database itself refuses money that the code should never produce.
                .check(Expr::col(Projects::BudgetCents).gt(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_projects_comune_updated")
                .table(Projects::Table)
                .col(Projects::IstatCode)
                .col(Projects::UpdatedAt)
                .to_owned(),
        )
        .await?;
        // A CUP names one project (L. 3/2003 art. 11); a comune's own reference names one of its
        // works. Partial indexes, which SQLite and PostgreSQL both support, leave out works that
        // have neither yet.
        let conn = m.get_connection();
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX ux_projects_cup ON projects (cup) WHERE cup <> ''",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE UNIQUE INDEX ux_projects_external_ref ON projects (istat_code, external_ref) WHERE external_ref <> ''",
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProjectCigs::Table)
                .col(project_id(ProjectCigs::ProjectId))
                .col(ColumnDef::new(ProjectCigs::Cig).string_len(10).not_null())
                .col(int(ProjectCigs::Position))
                .primary_key(
                    Index::create()
                        .col(ProjectCigs::ProjectId)
                        .col(ProjectCigs::Cig),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectCigs::Table, ProjectCigs::ProjectId)
                        .to(Projects::Table, Projects::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_project_cigs_cig")
                .table(ProjectCigs::Table)
                .col(ProjectCigs::Cig)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProjectFunding::Table)
                .col(project_id(ProjectFunding::ProjectId))
                .col(int(ProjectFunding::Position))
                .col(int(ProjectFunding::Source))
                .col(cents(ProjectFunding::AmountCents))
                .col(text(ProjectFunding::Reference))
                .primary_key(
                    Index::create()
                        .col(ProjectFunding::ProjectId)
                        .col(ProjectFunding::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectFunding::Table, ProjectFunding::ProjectId)
                        .to(Projects::Table, Projects::Id),
                )
                .check(Expr::col(ProjectFunding::AmountCents).gt(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_project_funding_source")
                .table(ProjectFunding::Table)
                .col(ProjectFunding::Source)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(SalEntries::Table)
                .col(project_id(SalEntries::ProjectId))
                .col(int(SalEntries::Number))
                .col(day(SalEntries::Date))
                .col(int(SalEntries::ProgressBasisPoints))
                .col(cents(SalEntries::AmountCents))
                .col(day(SalEntries::CertificateDueDate))
                .col(optional_day(SalEntries::CertificateIssuedDate))
                .col(optional_cents(SalEntries::CertificateAmountCents))
                .col(optional_day(SalEntries::PaymentDueDate))
                .col(optional_day(SalEntries::PaidDate))
                .col(optional_cents(SalEntries::PaidAmountCents))
                // Two SAL with one number for one work would be one too many: the key refuses the
                // second of two concurrent recordings.
                .primary_key(
                    Index::create()
                        .col(SalEntries::ProjectId)
                        .col(SalEntries::Number),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SalEntries::Table, SalEntries::ProjectId)
                        .to(Projects::Table, Projects::Id),
                )
                .check(Expr::col(SalEntries::ProgressBasisPoints).between(0, 10_000))
                .check(Expr::col(SalEntries::AmountCents).gt(0))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ProjectStateChanges::Table)
                .col(project_id(ProjectStateChanges::ProjectId))
                .col(int(ProjectStateChanges::Seq))
                .col(int(ProjectStateChanges::State))
                .col(day(ProjectStateChanges::Date))
                .col(text(ProjectStateChanges::Note))
                .col(
                    ColumnDef::new(ProjectStateChanges::RecordedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(ProjectStateChanges::ProjectId)
                        .col(ProjectStateChanges::Seq),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ProjectStateChanges::Table, ProjectStateChanges::ProjectId)
                        .to(Projects::Table, Projects::Id),
                )
                .to_owned(),
        )
        .await?;

        // Per-comune SAL terms: data, not code, with the legal defaults as column defaults so a
        // row that names only one term keeps the other's default.
        m.create_table(
            Table::create()
                .table(SalTerms::Table)
                .col(
                    ColumnDef::new(SalTerms::IstatCode)
                        .string_len(6)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(SalTerms::CertificateDays)
                        .integer()
                        .not_null()
                        .default(DEFAULT_CERTIFICATE_DAYS),
                )
                .col(
                    ColumnDef::new(SalTerms::PaymentDays)
                        .integer()
                        .not_null()
                        .default(DEFAULT_PAYMENT_DAYS),
                )
                .to_owned(),
        )
        .await?;
        // Every comune starts with the legal terms; a comune's different terms are an update of
        // its row.
        let mut terms = Query::insert()
            .into_table(SalTerms::Table)
            .columns([SalTerms::IstatCode])
            .to_owned();
        for comune in patto_service_kit::comuni::all() {
            terms
                .values([comune.istat_code.clone().into()])
                .map_err(|e| DbErr::Custom(format!("SAL terms of {}: {e}", comune.istat_code)))?;
        }
        m.exec_stmt(terms).await?;
        Ok(())
    }
}
