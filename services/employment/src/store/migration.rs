//! Schema of the employment database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The employment service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateEmployment),
        ]
    }
}

struct CreateEmployment;

impl MigrationName for CreateEmployment {
    fn name(&self) -> &str {
        "m20261201_000010_employment"
    }
}

#[derive(DeriveIden)]
enum JobOffers {
    Table,
    Id,
    IstatCode,
    ExternalRef,
    Title,
    Description,
    ProfessionCode,
    AtecoCode,
    EmployerName,
    EmployerTaxCode,
    EmployerAnonymous,
    ContractType,
    WeeklyHours,
    DurationMonths,
    Positions,
    ApplicationDeadline,
    Requirements,
    MinEqfLevel,
    HasWorkAddress,
    WorkStreet,
    WorkHouseNumber,
    WorkPostalCode,
    WorkLocality,
    PayMinCents,
    PayMaxCents,
    Status,
    ContactOffice,
    PublishedAt,
    ClosedAt,
    ClosureNote,
    ApplicationsCount,
    SearchText,
}

#[derive(DeriveIden)]
enum JobApplications {
    Table,
    Id,
    JobOfferId,
    IstatCode,
    FiscalCode,
    Status,
    Message,
    CvFileName,
    CvSha256,
    CvSizeBytes,
    CvMediaType,
    ContactEmail,
    ContactPhone,
    ConsentToShare,
    ReviewNote,
    Online,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TrainingCourses {
    Table,
    Id,
    IstatCode,
    ExternalRef,
    Title,
    Description,
    ProviderName,
    ProviderTaxCode,
    ProviderAccreditation,
    EqfLevel,
    Qualification,
    Hours,
    Seats,
    SeatsTaken,
    WaitlistLength,
    WaitlistLimit,
    Sequence,
    StartDate,
    EndDate,
    EnrolmentDeadline,
    CostCents,
    Requirements,
    DeliveryMode,
    HasAddress,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    ProfessionCodes,
    FundingProgramme,
    Status,
    PublishedAt,
    ClosureNote,
    SearchText,
}

#[derive(DeriveIden)]
enum Enrolments {
    Table,
    Id,
    TrainingCourseId,
    IstatCode,
    FiscalCode,
    Status,
    WaitlistPosition,
    RequirementsDeclared,
    ContactEmail,
    ContactPhone,
    CreatedAt,
    EnrolledAt,
    Promoted,
    EndedAt,
    ArrivalSeq,
    SeatSeq,
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

fn key(col: impl IntoIden, len: u32) -> ColumnDef {
    ColumnDef::new(col).string_len(len).not_null().to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().default("").to_owned()
}

fn int(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

fn day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().not_null().to_owned()
}

fn instant(col: impl IntoIden, null: bool) -> ColumnDef {
    let mut c = ColumnDef::new(col);
    c.timestamp_with_time_zone();
    if null {
        c.null();
    } else {
        c.not_null();
    }
    c
}

#[async_trait::async_trait]
impl MigrationTrait for CreateEmployment {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(JobOffers::Table)
                .col(id(JobOffers::Id))
                .col(key(JobOffers::IstatCode, 6))
                .col(key(JobOffers::ExternalRef, 100))
                .col(text(JobOffers::Title))
                .col(text(JobOffers::Description))
                .col(key(JobOffers::ProfessionCode, 9))
                .col(key(JobOffers::AtecoCode, 8))
                .col(text(JobOffers::EmployerName))
                .col(key(JobOffers::EmployerTaxCode, 16))
                .col(flag(JobOffers::EmployerAnonymous))
                .col(int(JobOffers::ContractType))
                .col(int(JobOffers::WeeklyHours))
                .col(int(JobOffers::DurationMonths))
                .col(int(JobOffers::Positions))
                .col(day(JobOffers::ApplicationDeadline))
                .col(text(JobOffers::Requirements))
                .col(int(JobOffers::MinEqfLevel))
                .col(flag(JobOffers::HasWorkAddress))
                .col(text(JobOffers::WorkStreet))
                .col(text(JobOffers::WorkHouseNumber))
                .col(text(JobOffers::WorkPostalCode))
                .col(text(JobOffers::WorkLocality))
                .col(ColumnDef::new(JobOffers::PayMinCents).big_integer().null())
                .col(ColumnDef::new(JobOffers::PayMaxCents).big_integer().null())
                .col(int(JobOffers::Status))
                .col(text(JobOffers::ContactOffice))
                .col(instant(JobOffers::PublishedAt, false))
                .col(instant(JobOffers::ClosedAt, true))
                .col(text(JobOffers::ClosureNote))
                .col(int(JobOffers::ApplicationsCount))
                .col(text(JobOffers::SearchText))
                .check(Expr::col(JobOffers::ApplicationsCount).gte(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_offers_comune_published")
                .table(JobOffers::Table)
                .col(JobOffers::IstatCode)
                .col(JobOffers::PublishedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_offers_deadline")
                .table(JobOffers::Table)
                .col(JobOffers::ApplicationDeadline)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(JobApplications::Table)
                .col(id(JobApplications::Id))
                .col(key(JobApplications::JobOfferId, 64))
                .col(key(JobApplications::IstatCode, 6))
                .col(key(JobApplications::FiscalCode, 16))
                .col(int(JobApplications::Status))
                .col(text(JobApplications::Message))
                .col(text(JobApplications::CvFileName))
                .col(text(JobApplications::CvSha256))
                .col(
                    ColumnDef::new(JobApplications::CvSizeBytes)
                        .big_integer()
                        .not_null(),
                )
                .col(text(JobApplications::CvMediaType))
                .col(text(JobApplications::ContactEmail))
                .col(text(JobApplications::ContactPhone))
                .col(flag(JobApplications::ConsentToShare))
                .col(text(JobApplications::ReviewNote))
                .col(flag(JobApplications::Online))
                .col(instant(JobApplications::CreatedAt, false))
                .col(instant(JobApplications::UpdatedAt, false))
                .foreign_key(
                    ForeignKey::create()
                        .from(JobApplications::Table, JobApplications::JobOfferId)
                        .to(JobOffers::Table, JobOffers::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_applications_offer")
                .table(JobApplications::Table)
                .col(JobApplications::JobOfferId)
                .col(JobApplications::CreatedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_applications_comune")
                .table(JobApplications::Table)
                .col(JobApplications::IstatCode)
                .col(JobApplications::CreatedAt)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_applications_citizen")
                .table(JobApplications::Table)
                .col(JobApplications::FiscalCode)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(TrainingCourses::Table)
                .col(id(TrainingCourses::Id))
                .col(key(TrainingCourses::IstatCode, 6))
                .col(key(TrainingCourses::ExternalRef, 100))
                .col(text(TrainingCourses::Title))
                .col(text(TrainingCourses::Description))
                .col(text(TrainingCourses::ProviderName))
                .col(key(TrainingCourses::ProviderTaxCode, 11))
                .col(text(TrainingCourses::ProviderAccreditation))
                .col(int(TrainingCourses::EqfLevel))
                .col(text(TrainingCourses::Qualification))
                .col(int(TrainingCourses::Hours))
                .col(int(TrainingCourses::Seats))
                .col(int(TrainingCourses::SeatsTaken))
                .col(int(TrainingCourses::WaitlistLength))
                .col(int(TrainingCourses::WaitlistLimit))
                .col(
                    ColumnDef::new(TrainingCourses::Sequence)
                        .big_integer()
                        .not_null(),
                )
                .col(day(TrainingCourses::StartDate))
                .col(day(TrainingCourses::EndDate))
                .col(day(TrainingCourses::EnrolmentDeadline))
                .col(
                    ColumnDef::new(TrainingCourses::CostCents)
                        .big_integer()
                        .not_null(),
                )
                .col(text(TrainingCourses::Requirements))
                .col(int(TrainingCourses::DeliveryMode))
                .col(flag(TrainingCourses::HasAddress))
                .col(text(TrainingCourses::Street))
                .col(text(TrainingCourses::HouseNumber))
                .col(text(TrainingCourses::PostalCode))
                .col(text(TrainingCourses::Locality))
                .col(text(TrainingCourses::ProfessionCodes))
                .col(text(TrainingCourses::FundingProgramme))
                .col(int(TrainingCourses::Status))
                .col(instant(TrainingCourses::PublishedAt, false))
                .col(text(TrainingCourses::ClosureNote))
                .col(text(TrainingCourses::SearchText))
                // The database itself refuses more seats taken than offered, whatever the code
                // above it does.
                .check(
                    Expr::col(TrainingCourses::SeatsTaken)
                        .between(0, Expr::col(TrainingCourses::Seats)),
                )
                .check(Expr::col(TrainingCourses::WaitlistLength).gte(0))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_training_courses_comune_start")
                .table(TrainingCourses::Table)
                .col(TrainingCourses::IstatCode)
                .col(TrainingCourses::StartDate)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_training_courses_start")
                .table(TrainingCourses::Table)
                .col(TrainingCourses::StartDate)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Enrolments::Table)
                .col(id(Enrolments::Id))
                .col(key(Enrolments::TrainingCourseId, 64))
                .col(key(Enrolments::IstatCode, 6))
                .col(key(Enrolments::FiscalCode, 16))
                .col(int(Enrolments::Status))
                .col(int(Enrolments::WaitlistPosition))
                .col(flag(Enrolments::RequirementsDeclared))
                .col(text(Enrolments::ContactEmail))
                .col(text(Enrolments::ContactPhone))
                .col(instant(Enrolments::CreatedAt, false))
                .col(instant(Enrolments::EnrolledAt, true))
                .col(flag(Enrolments::Promoted))
                .col(instant(Enrolments::EndedAt, true))
                .col(
                    ColumnDef::new(Enrolments::ArrivalSeq)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(Enrolments::SeatSeq).big_integer().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .from(Enrolments::Table, Enrolments::TrainingCourseId)
                        .to(TrainingCourses::Table, TrainingCourses::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_enrolments_course")
                .table(Enrolments::Table)
                .col(Enrolments::TrainingCourseId)
                .col(Enrolments::Status)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_enrolments_citizen")
                .table(Enrolments::Table)
                .col(Enrolments::FiscalCode)
                .to_owned(),
        )
        .await?;

        // Partial unique indexes, which SQLite and PostgreSQL both support: a comune's references
        // are unique where set; a citizen has one running application per offer and one live
        // enrolment (enrolled or waitlisted) per course, whatever races the code above loses.
        for sql in [
            "CREATE UNIQUE INDEX ux_job_offers_ref ON job_offers (istat_code, external_ref) WHERE external_ref <> ''",
            "CREATE UNIQUE INDEX ux_training_courses_ref ON training_courses (istat_code, external_ref) WHERE external_ref <> ''",
            "CREATE UNIQUE INDEX ux_job_applications_live ON job_applications (job_offer_id, fiscal_code) WHERE status <> 6",
            "CREATE UNIQUE INDEX ux_enrolments_live ON enrolments (training_course_id, fiscal_code) WHERE status IN (1, 2)",
        ] {
            m.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}
