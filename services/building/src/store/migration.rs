//! Schema of the building database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The building service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateCadastre),
            Box::new(CreatePermits),
        ]
    }
}

struct CreateCadastre;

impl MigrationName for CreateCadastre {
    fn name(&self) -> &str {
        "m20261126_000020_building_cadastre"
    }
}

struct CreatePermits;

impl MigrationName for CreatePermits {
    fn name(&self) -> &str {
        "m20261126_000021_building_permits"
    }
}

#[derive(DeriveIden)]
enum CadastralUnits {
    Table,
    Id,
    IstatCode,
    BelfioreCode,
    Register,
    Sezione,
    Foglio,
    Particella,
    Subalterno,
    SortKey,
    Categoria,
    Classe,
    Consistenza,
    ConsistenzaUnit,
    RenditaCents,
    Qualita,
    RedditoDominicaleCents,
    RedditoAgrarioCents,
    SurfaceSqm,
    SurfaceExcludingUncoveredSqm,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    Floor,
    InternalNumber,
    Latitude,
    Longitude,
    HeritageListed,
    StartDate,
    EndDate,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CadastralOwnerships {
    Table,
    Id,
    UnitId,
    Position,
    FiscalCode,
    Name,
    RightKind,
    ShareNumerator,
    ShareDenominator,
    StartDate,
    EndDate,
}

#[derive(DeriveIden)]
enum BuildingPermits {
    Table,
    Id,
    IstatCode,
    Kind,
    Status,
    ApplicantFiscalCode,
    DesignerFiscalCode,
    DesignerRegistration,
    Subject,
    Description,
    InterventionCategory,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    ParcelsJson,
    ConstraintsJson,
    ProtocolNumber,
    SubmittedAt,
    TermsDoubled,
    TermsJson,
    DeadlinesJson,
    ResponsibleOfficer,
    IntegrationRequests,
    IntegrationRequestNote,
    ProposalOutcome,
    ProposalMotivation,
    Observations,
    DecisionMotivation,
    DecisionProtocolNumber,
    DecisionAt,
    SilenzioAssensoAttestation,
    ConstructionContributionCents,
    SecretariatFeesCents,
    WorksStartDate,
    WorksEndDate,
    ContractorFiscalCode,
    WorksDirectorFiscalCode,
    AgibilityProtocolNumber,
    AutomaticAt,
    OperatorDueAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BuildingPermitAttachments {
    Table,
    Id,
    PermitId,
    Name,
    Sha256,
    SizeBytes,
    MediaType,
    DocumentType,
    IntegrationRound,
    UploadedAt,
}

#[derive(DeriveIden)]
enum BuildingPermitTransitions {
    Table,
    Id,
    PermitId,
    FromStatus,
    ToStatus,
    At,
    ActorRole,
    Actor,
    ProtocolNumber,
    Note,
}

#[derive(DeriveIden)]
enum BuildingPermitTerms {
    Table,
    IstatCode,
    TermsJson,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BuildingCounters {
    Table,
    Name,
    Value,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string()
        .not_null()
        .default("")
        .to_owned()
}

fn long_text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}

fn int(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .integer()
        .not_null()
        .default(0)
        .to_owned()
}

fn cents(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

fn instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn optional_instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateCadastre {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(CadastralUnits::Table)
                .col(id(CadastralUnits::Id))
                .col(
                    ColumnDef::new(CadastralUnits::IstatCode)
                        .string_len(6)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(CadastralUnits::BelfioreCode)
                        .string_len(4)
                        .not_null(),
                )
                .col(int(CadastralUnits::Register))
                .col(text(CadastralUnits::Sezione))
                .col(text(CadastralUnits::Foglio))
                .col(text(CadastralUnits::Particella))
                .col(text(CadastralUnits::Subalterno))
                .col(text(CadastralUnits::SortKey))
                .col(text(CadastralUnits::Categoria))
                .col(text(CadastralUnits::Classe))
                .col(
                    ColumnDef::new(CadastralUnits::Consistenza)
                        .double()
                        .not_null(),
                )
                .col(int(CadastralUnits::ConsistenzaUnit))
                .col(cents(CadastralUnits::RenditaCents))
                .col(text(CadastralUnits::Qualita))
                .col(cents(CadastralUnits::RedditoDominicaleCents))
                .col(cents(CadastralUnits::RedditoAgrarioCents))
                .col(int(CadastralUnits::SurfaceSqm))
                .col(int(CadastralUnits::SurfaceExcludingUncoveredSqm))
                .col(text(CadastralUnits::Street))
                .col(text(CadastralUnits::HouseNumber))
                .col(text(CadastralUnits::PostalCode))
                .col(text(CadastralUnits::Locality))
                .col(text(CadastralUnits::Floor))
                .col(text(CadastralUnits::InternalNumber))
                .col(ColumnDef::new(CadastralUnits::Latitude).double().null())
                .col(ColumnDef::new(CadastralUnits::Longitude).double().null())
                .col(
                    ColumnDef::new(CadastralUnits::HeritageListed)
                        .boolean()
                        .not_null(),
                )
                .col(ColumnDef::new(CadastralUnits::StartDate).date().null())
                .col(ColumnDef::new(CadastralUnits::EndDate).date().null())
                .col(instant(CadastralUnits::UpdatedAt))
                .check(Expr::col(CadastralUnits::RenditaCents).gte(0))
                .to_owned(),
        )
        .await?;
        // The Catasto's natural key identifies a unit: an import matches rows by it.
        m.create_index(
            Index::create()
                .name("ux_cadastral_units_natural_key")
                .table(CadastralUnits::Table)
                .col(CadastralUnits::BelfioreCode)
                .col(CadastralUnits::Sezione)
                .col(CadastralUnits::Foglio)
                .col(CadastralUnits::Particella)
                .col(CadastralUnits::Subalterno)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_cadastral_units_comune_order")
                .table(CadastralUnits::Table)
                .col(CadastralUnits::IstatCode)
                .col(CadastralUnits::SortKey)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(CadastralOwnerships::Table)
                .col(
                    ColumnDef::new(CadastralOwnerships::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(CadastralOwnerships::UnitId)
                        .string_len(64)
                        .not_null(),
                )
                .col(int(CadastralOwnerships::Position))
                .col(
                    ColumnDef::new(CadastralOwnerships::FiscalCode)
                        .string_len(16)
                        .not_null(),
                )
                .col(text(CadastralOwnerships::Name))
                .col(int(CadastralOwnerships::RightKind))
                .col(int(CadastralOwnerships::ShareNumerator))
                .col(int(CadastralOwnerships::ShareDenominator))
                .col(
                    ColumnDef::new(CadastralOwnerships::StartDate)
                        .date()
                        .not_null(),
                )
                .col(ColumnDef::new(CadastralOwnerships::EndDate).date().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(CadastralOwnerships::Table, CadastralOwnerships::UnitId)
                        .to(CadastralUnits::Table, CadastralUnits::Id),
                )
                .check(
                    Expr::col(CadastralOwnerships::ShareNumerator)
                        .between(1, Expr::col(CadastralOwnerships::ShareDenominator)),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_cadastral_ownerships_holder")
                .table(CadastralOwnerships::Table)
                .col(CadastralOwnerships::FiscalCode)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_cadastral_ownerships_unit")
                .table(CadastralOwnerships::Table)
                .col(CadastralOwnerships::UnitId)
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePermits {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use BuildingPermits as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(id(P::Id))
                .col(ColumnDef::new(P::IstatCode).string_len(6).not_null())
                .col(int(P::Kind))
                .col(int(P::Status))
                .col(
                    ColumnDef::new(P::ApplicantFiscalCode)
                        .string_len(16)
                        .not_null(),
                )
                .col(text(P::DesignerFiscalCode))
                .col(text(P::DesignerRegistration))
                .col(text(P::Subject))
                .col(long_text(P::Description))
                .col(int(P::InterventionCategory))
                .col(text(P::Street))
                .col(text(P::HouseNumber))
                .col(text(P::PostalCode))
                .col(text(P::Locality))
                .col(long_text(P::ParcelsJson))
                .col(long_text(P::ConstraintsJson))
                .col(text(P::ProtocolNumber))
                .col(optional_instant(P::SubmittedAt))
                .col(ColumnDef::new(P::TermsDoubled).boolean().not_null())
                .col(long_text(P::TermsJson))
                .col(long_text(P::DeadlinesJson))
                .col(text(P::ResponsibleOfficer))
                .col(int(P::IntegrationRequests))
                .col(long_text(P::IntegrationRequestNote))
                .col(int(P::ProposalOutcome))
                .col(long_text(P::ProposalMotivation))
                .col(long_text(P::Observations))
                .col(long_text(P::DecisionMotivation))
                .col(text(P::DecisionProtocolNumber))
                .col(optional_instant(P::DecisionAt))
                .col(text(P::SilenzioAssensoAttestation))
                .col(cents(P::ConstructionContributionCents))
                .col(cents(P::SecretariatFeesCents))
                .col(ColumnDef::new(P::WorksStartDate).date().null())
                .col(ColumnDef::new(P::WorksEndDate).date().null())
                .col(text(P::ContractorFiscalCode))
                .col(text(P::WorksDirectorFiscalCode))
                .col(text(P::AgibilityProtocolNumber))
                .col(optional_instant(P::AutomaticAt))
                .col(optional_instant(P::OperatorDueAt))
                .col(instant(P::CreatedAt))
                .col(instant(P::UpdatedAt))
                .to_owned(),
        )
        .await?;
        for (name, cols) in [
            (
                "ix_building_permits_comune",
                vec![P::IstatCode, P::CreatedAt],
            ),
            (
                "ix_building_permits_applicant",
                vec![P::ApplicantFiscalCode],
            ),
            ("ix_building_permits_automatic", vec![P::AutomaticAt]),
            ("ix_building_permits_operator_due", vec![P::OperatorDueAt]),
        ] {
            let mut i = Index::create();
            i.name(name).table(P::Table);
            for c in cols {
                i.col(c);
            }
            m.create_index(i.to_owned()).await?;
        }
        // Protocol numbers are unique; drafts have none (empty), hence the partial index.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_building_permits_protocol ON building_permits (protocol_number) WHERE protocol_number <> ''",
            )
            .await?;

        m.create_table(
            Table::create()
                .table(BuildingPermitAttachments::Table)
                .col(id(BuildingPermitAttachments::Id))
                .col(
                    ColumnDef::new(BuildingPermitAttachments::PermitId)
                        .string_len(64)
                        .not_null(),
                )
                .col(text(BuildingPermitAttachments::Name))
                .col(
                    ColumnDef::new(BuildingPermitAttachments::Sha256)
                        .string_len(64)
                        .not_null(),
                )
                .col(cents(BuildingPermitAttachments::SizeBytes))
                .col(text(BuildingPermitAttachments::MediaType))
                .col(text(BuildingPermitAttachments::DocumentType))
                .col(int(BuildingPermitAttachments::IntegrationRound))
                .col(instant(BuildingPermitAttachments::UploadedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            BuildingPermitAttachments::Table,
                            BuildingPermitAttachments::PermitId,
                        )
                        .to(P::Table, P::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_building_permit_attachments_permit")
                .table(BuildingPermitAttachments::Table)
                .col(BuildingPermitAttachments::PermitId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BuildingPermitTransitions::Table)
                .col(
                    ColumnDef::new(BuildingPermitTransitions::Id)
                        .big_integer()
                        .not_null()
                        .auto_increment()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(BuildingPermitTransitions::PermitId)
                        .string_len(64)
                        .not_null(),
                )
                .col(int(BuildingPermitTransitions::FromStatus))
                .col(int(BuildingPermitTransitions::ToStatus))
                .col(instant(BuildingPermitTransitions::At))
                .col(int(BuildingPermitTransitions::ActorRole))
                .col(text(BuildingPermitTransitions::Actor))
                .col(text(BuildingPermitTransitions::ProtocolNumber))
                .col(long_text(BuildingPermitTransitions::Note))
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            BuildingPermitTransitions::Table,
                            BuildingPermitTransitions::PermitId,
                        )
                        .to(P::Table, P::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_building_permit_transitions_permit")
                .table(BuildingPermitTransitions::Table)
                .col(BuildingPermitTransitions::PermitId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BuildingPermitTerms::Table)
                .col(
                    ColumnDef::new(BuildingPermitTerms::IstatCode)
                        .string_len(6)
                        .not_null()
                        .primary_key(),
                )
                .col(long_text(BuildingPermitTerms::TermsJson))
                .col(instant(BuildingPermitTerms::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(BuildingCounters::Table)
                .col(
                    ColumnDef::new(BuildingCounters::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(BuildingCounters::Value)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
