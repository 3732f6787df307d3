//! Schema of the social database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The social service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateSocial),
        ]
    }
}

struct CreateSocial;

impl MigrationName for CreateSocial {
    fn name(&self) -> &str {
        "m20261201_000010_social"
    }
}

#[derive(DeriveIden)]
enum BenefitSchemes {
    Table,
    Id,
    IstatCode,
    Code,
    Name,
    Description,
    Kind,
    LegalBasis,
    Status,
    PeriodStart,
    PeriodEnd,
    IseeThresholdCents,
    AcceptedIseeKinds,
    MinHouseholdSize,
    MaxHouseholdSize,
    RequiresMinor,
    RequiresDisabledMember,
    RequiresMemberAged,
    RequiresResidence,
    MinResidenceMonths,
    AmountCents,
    Frequency,
    PaymentCount,
    BudgetCents,
    RankingCriterion,
    RequiredDocuments,
    Payer,
    FullyOnline,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum IseeDeclarations {
    Table,
    Id,
    FiscalCode,
    DsuProtocol,
    Kind,
    IseeCents,
    IseCents,
    IsrCents,
    IspCents,
    ScaleThousandths,
    HouseholdSize,
    DsuDate,
    ValidFrom,
    ValidUntil,
    Discrepancies,
    Source,
    Verified,
    HolderIstatCode,
    RegisteredAt,
}

#[derive(DeriveIden)]
enum IseeHouseholdMembers {
    Table,
    DeclarationId,
    Position,
    FiscalCode,
    BirthDate,
    Disability,
}

#[derive(DeriveIden)]
enum BenefitApplications {
    Table,
    Id,
    IstatCode,
    SchemeId,
    Status,
    ApplicantFiscalCode,
    BeneficiaryFiscalCode,
    IseeDeclarationId,
    IseeCents,
    Iban,
    Contact,
    Statement,
    ProtocolNumber,
    SubmittedAt,
    Caseworker,
    IntegrationRequestNote,
    Checks,
    Score,
    Rank,
    Funded,
    DecisionMotivation,
    DecisionAct,
    DecidedAt,
    GrantedAmountCents,
    Rules,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApplicationAttachments {
    Table,
    Id,
    ApplicationId,
    Name,
    Sha256,
    SizeBytes,
    MediaType,
    DocumentType,
    UploadedAt,
}

#[derive(DeriveIden)]
enum ApplicationTransitions {
    Table,
    Id,
    ApplicationId,
    FromStatus,
    ToStatus,
    At,
    ActorRole,
    Actor,
    Note,
}

#[derive(DeriveIden)]
enum BenefitPayments {
    Table,
    ApplicationId,
    Number,
    DueDate,
    AmountCents,
    Status,
    PaidDate,
    PaymentReference,
    Note,
}

#[derive(DeriveIden)]
enum BenefitRankings {
    Table,
    SchemeId,
    Status,
    Criterion,
    BudgetCents,
    FundedCents,
    ComputedAt,
    ApprovalAct,
    ApprovedAt,
}

#[derive(DeriveIden)]
enum BenefitRankingEntries {
    Table,
    SchemeId,
    Position,
    ApplicationId,
    ProtocolNumber,
    Score,
    IseeCents,
    Funded,
    AmountCents,
}

#[derive(DeriveIden)]
enum ProtocolCounters {
    Table,
    IstatCode,
    Year,
    LastNumber,
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

fn key(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(64).not_null().to_owned()
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().default("").to_owned()
}

fn int(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

fn cents(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

fn day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().not_null().to_owned()
}

fn instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn istat(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(6).not_null().to_owned()
}

fn fiscal_code(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(16)
        .not_null()
        .default("")
        .to_owned()
}

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden + 'static,
    cols: Vec<impl IntoIden>,
    unique: bool,
) -> Result<(), DbErr> {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(c);
    }
    if unique {
        i.unique();
    }
    m.create_index(i.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSocial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use BenefitSchemes as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(id(S::Id))
                .col(istat(S::IstatCode))
                .col(ColumnDef::new(S::Code).string_len(40).not_null())
                .col(text(S::Name))
                .col(text(S::Description))
                .col(int(S::Kind))
                .col(text(S::LegalBasis))
                .col(int(S::Status))
                .col(day(S::PeriodStart))
                .col(day(S::PeriodEnd))
                .col(cents(S::IseeThresholdCents))
                .col(text(S::AcceptedIseeKinds))
                .col(int(S::MinHouseholdSize))
                .col(int(S::MaxHouseholdSize))
                .col(flag(S::RequiresMinor))
                .col(flag(S::RequiresDisabledMember))
                .col(int(S::RequiresMemberAged))
                .col(flag(S::RequiresResidence))
                .col(int(S::MinResidenceMonths))
                .col(cents(S::AmountCents))
                .col(int(S::Frequency))
                .col(int(S::PaymentCount))
                .col(cents(S::BudgetCents))
                .col(int(S::RankingCriterion))
                .col(text(S::RequiredDocuments))
                .col(text(S::Payer))
                .col(flag(S::FullyOnline))
                .col(instant(S::CreatedAt))
                .col(instant(S::UpdatedAt))
                // Money never goes negative, whatever the code above it does.
                .check(Expr::col(S::IseeThresholdCents).gte(0))
                .check(Expr::col(S::AmountCents).gte(0))
                .check(Expr::col(S::BudgetCents).gte(0))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ux_schemes_comune_code",
            S::Table,
            vec![S::IstatCode, S::Code],
            true,
        )
        .await?;

        use IseeDeclarations as D;
        m.create_table(
            Table::create()
                .table(D::Table)
                .col(id(D::Id))
                .col(fiscal_code(D::FiscalCode))
                .col(ColumnDef::new(D::DsuProtocol).string_len(40).not_null())
                .col(int(D::Kind))
                .col(cents(D::IseeCents))
                .col(cents(D::IseCents))
                .col(cents(D::IsrCents))
                .col(cents(D::IspCents))
                .col(int(D::ScaleThousandths))
                .col(int(D::HouseholdSize))
                .col(day(D::DsuDate))
                .col(day(D::ValidFrom))
                .col(day(D::ValidUntil))
                .col(flag(D::Discrepancies))
                .col(int(D::Source))
                .col(flag(D::Verified))
                .col(
                    ColumnDef::new(D::HolderIstatCode)
                        .string_len(6)
                        .not_null()
                        .default(""),
                )
                .col(instant(D::RegisteredAt))
                .check(Expr::col(D::IseeCents).gte(0))
                .to_owned(),
        )
        .await?;
        // One declaration per DSU: imports replace by protocol.
        index(m, "ux_isee_protocol", D::Table, vec![D::DsuProtocol], true).await?;
        index(m, "ix_isee_citizen", D::Table, vec![D::FiscalCode], false).await?;

        use IseeHouseholdMembers as M;
        m.create_table(
            Table::create()
                .table(M::Table)
                .col(key(M::DeclarationId))
                .col(int(M::Position))
                .col(fiscal_code(M::FiscalCode))
                .col(ColumnDef::new(M::BirthDate).date().null())
                .col(int(M::Disability))
                .primary_key(Index::create().col(M::DeclarationId).col(M::Position))
                .foreign_key(
                    ForeignKey::create()
                        .from(M::Table, M::DeclarationId)
                        .to(D::Table, D::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_isee_members_citizen",
            M::Table,
            vec![M::FiscalCode],
            false,
        )
        .await?;

        use BenefitApplications as A;
        m.create_table(
            Table::create()
                .table(A::Table)
                .col(id(A::Id))
                .col(istat(A::IstatCode))
                .col(key(A::SchemeId))
                .col(int(A::Status))
                .col(fiscal_code(A::ApplicantFiscalCode))
                .col(fiscal_code(A::BeneficiaryFiscalCode))
                .col(
                    ColumnDef::new(A::IseeDeclarationId)
                        .string_len(64)
                        .not_null()
                        .default(""),
                )
                .col(ColumnDef::new(A::IseeCents).big_integer().null())
                .col(text(A::Iban))
                .col(text(A::Contact))
                .col(text(A::Statement))
                .col(ColumnDef::new(A::ProtocolNumber).string_len(40).null())
                .col(
                    ColumnDef::new(A::SubmittedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(fiscal_code(A::Caseworker))
                .col(text(A::IntegrationRequestNote))
                .col(text(A::Checks))
                .col(int(A::Score))
                .col(int(A::Rank))
                .col(flag(A::Funded))
                .col(text(A::DecisionMotivation))
                .col(text(A::DecisionAct))
                .col(
                    ColumnDef::new(A::DecidedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(cents(A::GrantedAmountCents))
                .col(text(A::Rules))
                .col(instant(A::CreatedAt))
                .col(instant(A::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(A::Table, A::SchemeId)
                        .to(S::Table, S::Id),
                )
                .check(Expr::col(A::GrantedAmountCents).gte(0))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ux_applications_protocol",
            A::Table,
            vec![A::ProtocolNumber],
            true,
        )
        .await?;
        index(
            m,
            "ix_applications_comune",
            A::Table,
            vec![A::IstatCode, A::Status],
            false,
        )
        .await?;
        index(
            m,
            "ix_applications_scheme",
            A::Table,
            vec![A::SchemeId, A::Status],
            false,
        )
        .await?;
        index(
            m,
            "ix_applications_applicant",
            A::Table,
            vec![A::ApplicantFiscalCode],
            false,
        )
        .await?;
        index(
            m,
            "ix_applications_beneficiary",
            A::Table,
            vec![A::BeneficiaryFiscalCode],
            false,
        )
        .await?;
        index(
            m,
            "ix_applications_isee",
            A::Table,
            vec![A::IseeDeclarationId],
            false,
        )
        .await?;
        // One live application per applicant, beneficiary and scheme: a partial index (SQLite and
        // PostgreSQL both have them) leaves out denied, revoked and withdrawn ones, after which
        // the citizen may apply again.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_applications_live ON benefit_applications \
                 (scheme_id, applicant_fiscal_code, beneficiary_fiscal_code) \
                 WHERE status NOT IN (8, 10, 11)",
            )
            .await?;

        use ApplicationAttachments as F;
        m.create_table(
            Table::create()
                .table(F::Table)
                .col(id(F::Id))
                .col(key(F::ApplicationId))
                .col(text(F::Name))
                .col(ColumnDef::new(F::Sha256).string_len(64).not_null())
                .col(cents(F::SizeBytes))
                .col(text(F::MediaType))
                .col(text(F::DocumentType))
                .col(instant(F::UploadedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(F::Table, F::ApplicationId)
                        .to(A::Table, A::Id),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_attachments_application",
            F::Table,
            vec![F::ApplicationId],
            false,
        )
        .await?;

        use ApplicationTransitions as T;
        m.create_table(
            Table::create()
                .table(T::Table)
                .col(
                    ColumnDef::new(T::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(key(T::ApplicationId))
                .col(int(T::FromStatus))
                .col(int(T::ToStatus))
                .col(instant(T::At))
                .col(int(T::ActorRole))
                .col(fiscal_code(T::Actor))
                .col(text(T::Note))
                .foreign_key(
                    ForeignKey::create()
                        .from(T::Table, T::ApplicationId)
                        .to(A::Table, A::Id),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_transitions_application",
            T::Table,
            vec![T::ApplicationId],
            false,
        )
        .await?;

        use BenefitPayments as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(key(P::ApplicationId))
                .col(int(P::Number))
                .col(day(P::DueDate))
                .col(cents(P::AmountCents))
                .col(int(P::Status))
                .col(ColumnDef::new(P::PaidDate).date().null())
                .col(text(P::PaymentReference))
                .col(text(P::Note))
                .primary_key(Index::create().col(P::ApplicationId).col(P::Number))
                .foreign_key(
                    ForeignKey::create()
                        .from(P::Table, P::ApplicationId)
                        .to(A::Table, A::Id),
                )
                .check(Expr::col(P::AmountCents).gt(0))
                .to_owned(),
        )
        .await?;

        use BenefitRankings as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(id(R::SchemeId))
                .col(int(R::Status))
                .col(int(R::Criterion))
                .col(cents(R::BudgetCents))
                .col(cents(R::FundedCents))
                .col(instant(R::ComputedAt))
                .col(text(R::ApprovalAct))
                .col(
                    ColumnDef::new(R::ApprovedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(R::Table, R::SchemeId)
                        .to(S::Table, S::Id),
                )
                .to_owned(),
        )
        .await?;

        use BenefitRankingEntries as E;
        m.create_table(
            Table::create()
                .table(E::Table)
                .col(key(E::SchemeId))
                .col(int(E::Position))
                .col(key(E::ApplicationId))
                .col(text(E::ProtocolNumber))
                .col(int(E::Score))
                .col(ColumnDef::new(E::IseeCents).big_integer().null())
                .col(flag(E::Funded))
                .col(cents(E::AmountCents))
                .primary_key(Index::create().col(E::SchemeId).col(E::Position))
                .foreign_key(
                    ForeignKey::create()
                        .from(E::Table, E::SchemeId)
                        .to(R::Table, R::SchemeId),
                )
                .to_owned(),
        )
        .await?;

        use ProtocolCounters as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(istat(C::IstatCode))
                .col(int(C::Year))
                .col(cents(C::LastNumber))
                .primary_key(Index::create().col(C::IstatCode).col(C::Year))
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
