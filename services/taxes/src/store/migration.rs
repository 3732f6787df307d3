//! Schema of the taxes database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The taxes service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateTaxes),
        ]
    }
}

struct CreateTaxes;

impl MigrationName for CreateTaxes {
    fn name(&self) -> &str {
        "m20261126_000050_taxes"
    }
}

#[derive(DeriveIden)]
enum ImuRates {
    Table,
    IstatCode,
    Year,
    RatesJson,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TariTariffs {
    Table,
    IstatCode,
    Year,
    TariffsJson,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ImuDeclarations {
    Table,
    Id,
    FiscalCode,
    IstatCode,
    Year,
    CadastralUnitId,
    AssetKind,
    MainResidence,
    MainResidenceUnitId,
    BaseReduction,
    ReductionStartDate,
    ReductionEndDate,
    CanoneConcordato,
    BuildingLandValueCents,
    ExemptionReason,
    StartDate,
    EndDate,
    ProtocolNumber,
    SubmittedAt,
}

#[derive(DeriveIden)]
enum TariRegistrations {
    Table,
    Id,
    IstatCode,
    HolderFiscalCode,
    Kind,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    CadastralUnitId,
    SurfaceSqm,
    HouseholdSize,
    Resident,
    NonDomesticCategory,
    AtecoCode,
    ReductionCodesJson,
    StartDate,
    EndDate,
    DeclarationProtocolNumber,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TaxPositions {
    Table,
    Id,
    FiscalCode,
    IstatCode,
    Tribute,
    Year,
    Status,
    AmountDueCents,
    AmountPaidCents,
    Assessment,
    PartsJson,
    Imported,
    TaxpayerName,
    LastDueDate,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DebtPositions {
    Table,
    Iupd,
    IstatCode,
    CreditorFiscalCode,
    DebtorFiscalCode,
    DebtorName,
    TaxPositionId,
    Tribute,
    Year,
    Description,
    Status,
    ValidityAt,
    PublishedAt,
    PaidAt,
    ExpiresAt,
    InvalidationReason,
    NextDueDate,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DebtPaymentOptions {
    Table,
    Nav,
    Iuv,
    CreditorFiscalCode,
    Iupd,
    AmountCents,
    DueDate,
    Instalment,
    InstalmentNumber,
    Description,
    Status,
    QrPayload,
    TransfersJson,
    ReceiptId,
    PspId,
    PspName,
    ReceiptAmountCents,
    PaymentAt,
    RecordedAt,
}

#[derive(DeriveIden)]
enum PagopaCreditors {
    Table,
    IstatCode,
    FiscalCode,
    Name,
    Iban,
    SegregationCode,
    ImuTaxonomy,
    TariTaxonomy,
}

#[derive(DeriveIden)]
enum TaxesCounters {
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

fn flag(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).boolean().not_null().to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

fn istat(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(6).not_null().to_owned()
}

fn code(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(16).not_null().to_owned()
}

fn day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().not_null().to_owned()
}

fn optional_day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).date().null().to_owned()
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

async fn index(
    m: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
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
impl MigrationTrait for CreateTaxes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ImuRates::Table)
                .col(istat(ImuRates::IstatCode))
                .col(int(ImuRates::Year))
                .col(long_text(ImuRates::RatesJson))
                .col(instant(ImuRates::UpdatedAt))
                .primary_key(Index::create().col(ImuRates::IstatCode).col(ImuRates::Year))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TariTariffs::Table)
                .col(istat(TariTariffs::IstatCode))
                .col(int(TariTariffs::Year))
                .col(long_text(TariTariffs::TariffsJson))
                .col(instant(TariTariffs::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(TariTariffs::IstatCode)
                        .col(TariTariffs::Year),
                )
                .to_owned(),
        )
        .await?;

        use ImuDeclarations as D;
        m.create_table(
            Table::create()
                .table(D::Table)
                .col(id(D::Id))
                .col(code(D::FiscalCode))
                .col(istat(D::IstatCode))
                .col(int(D::Year))
                .col(text(D::CadastralUnitId))
                .col(int(D::AssetKind))
                .col(flag(D::MainResidence))
                .col(text(D::MainResidenceUnitId))
                .col(int(D::BaseReduction))
                .col(optional_day(D::ReductionStartDate))
                .col(optional_day(D::ReductionEndDate))
                .col(flag(D::CanoneConcordato))
                .col(cents(D::BuildingLandValueCents))
                .col(text(D::ExemptionReason))
                .col(day(D::StartDate))
                .col(optional_day(D::EndDate))
                .col(text(D::ProtocolNumber))
                .col(instant(D::SubmittedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_imu_declarations_taxpayer",
            D::Table,
            vec![D::FiscalCode.into_iden(), D::Year.into_iden()],
            false,
        )
        .await?;
        index(
            m,
            "ix_imu_declarations_comune",
            D::Table,
            vec![D::IstatCode.into_iden(), D::Year.into_iden()],
            false,
        )
        .await?;

        use TariRegistrations as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(id(R::Id))
                .col(istat(R::IstatCode))
                .col(code(R::HolderFiscalCode))
                .col(int(R::Kind))
                .col(text(R::Street))
                .col(text(R::HouseNumber))
                .col(text(R::PostalCode))
                .col(text(R::Locality))
                .col(text(R::CadastralUnitId))
                .col(int(R::SurfaceSqm))
                .col(int(R::HouseholdSize))
                .col(flag(R::Resident))
                .col(int(R::NonDomesticCategory))
                .col(text(R::AtecoCode))
                .col(long_text(R::ReductionCodesJson))
                .col(day(R::StartDate))
                .col(optional_day(R::EndDate))
                .col(text(R::DeclarationProtocolNumber))
                .col(instant(R::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_tari_registrations_holder",
            R::Table,
            vec![R::HolderFiscalCode.into_iden()],
            false,
        )
        .await?;
        index(
            m,
            "ix_tari_registrations_comune",
            R::Table,
            vec![R::IstatCode.into_iden(), R::Street.into_iden()],
            false,
        )
        .await?;

        use TaxPositions as T;
        m.create_table(
            Table::create()
                .table(T::Table)
                .col(id(T::Id))
                .col(code(T::FiscalCode))
                .col(istat(T::IstatCode))
                .col(int(T::Tribute))
                .col(int(T::Year))
                .col(int(T::Status))
                .col(cents(T::AmountDueCents))
                .col(cents(T::AmountPaidCents))
                .col(ColumnDef::new(T::Assessment).binary().not_null())
                .col(long_text(T::PartsJson))
                .col(flag(T::Imported))
                .col(text(T::TaxpayerName))
                .col(day(T::LastDueDate))
                .col(instant(T::UpdatedAt))
                .check(Expr::col(T::AmountPaidCents).gte(0))
                .to_owned(),
        )
        .await?;
        // One position per taxpayer, comune, tribute and year: imports and yearly issues match on it.
        index(
            m,
            "ux_tax_positions_key",
            T::Table,
            vec![
                T::FiscalCode.into_iden(),
                T::IstatCode.into_iden(),
                T::Tribute.into_iden(),
                T::Year.into_iden(),
            ],
            true,
        )
        .await?;
        index(
            m,
            "ix_tax_positions_comune",
            T::Table,
            vec![
                T::IstatCode.into_iden(),
                T::Year.into_iden(),
                T::Tribute.into_iden(),
            ],
            false,
        )
        .await?;

        use DebtPositions as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(id(P::Iupd))
                .col(istat(P::IstatCode))
                .col(code(P::CreditorFiscalCode))
                .col(code(P::DebtorFiscalCode))
                .col(text(P::DebtorName))
                .col(ColumnDef::new(P::TaxPositionId).string_len(64).not_null())
                .col(int(P::Tribute))
                .col(int(P::Year))
                .col(text(P::Description))
                .col(int(P::Status))
                .col(instant(P::ValidityAt))
                .col(optional_instant(P::PublishedAt))
                .col(optional_instant(P::PaidAt))
                .col(optional_instant(P::ExpiresAt))
                .col(long_text(P::InvalidationReason))
                .col(day(P::NextDueDate))
                .col(instant(P::CreatedAt))
                .col(instant(P::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(P::Table, P::TaxPositionId)
                        .to(T::Table, T::Id),
                )
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ix_debt_positions_debtor",
            P::Table,
            vec![P::DebtorFiscalCode.into_iden(), P::NextDueDate.into_iden()],
            false,
        )
        .await?;
        index(
            m,
            "ix_debt_positions_tax_position",
            P::Table,
            vec![P::TaxPositionId.into_iden()],
            false,
        )
        .await?;
        index(
            m,
            "ix_debt_positions_comune",
            P::Table,
            vec![P::IstatCode.into_iden(), P::Year.into_iden()],
            false,
        )
        .await?;

        use DebtPaymentOptions as O;
        m.create_table(
            Table::create()
                .table(O::Table)
                .col(
                    ColumnDef::new(O::Nav)
                        .string_len(18)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(O::Iuv).string_len(17).not_null())
                .col(code(O::CreditorFiscalCode))
                .col(ColumnDef::new(O::Iupd).string_len(64).not_null())
                .col(cents(O::AmountCents))
                .col(day(O::DueDate))
                .col(flag(O::Instalment))
                .col(int(O::InstalmentNumber))
                .col(text(O::Description))
                .col(int(O::Status))
                .col(text(O::QrPayload))
                .col(long_text(O::TransfersJson))
                .col(text(O::ReceiptId))
                .col(text(O::PspId))
                .col(text(O::PspName))
                .col(cents(O::ReceiptAmountCents))
                .col(optional_instant(O::PaymentAt))
                .col(optional_instant(O::RecordedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(O::Table, O::Iupd)
                        .to(P::Table, P::Iupd),
                )
                .check(Expr::col(O::AmountCents).gt(0))
                .to_owned(),
        )
        .await?;
        // An IUV is unique per creditor: the key a receipt is recorded by.
        index(
            m,
            "ux_debt_payment_options_iuv",
            O::Table,
            vec![O::CreditorFiscalCode.into_iden(), O::Iuv.into_iden()],
            true,
        )
        .await?;
        index(
            m,
            "ix_debt_payment_options_position",
            O::Table,
            vec![O::Iupd.into_iden()],
            false,
        )
        .await?;

        m.create_table(
            Table::create()
                .table(PagopaCreditors::Table)
                .col(
                    ColumnDef::new(PagopaCreditors::IstatCode)
                        .string_len(6)
                        .not_null()
                        .primary_key(),
                )
                .col(code(PagopaCreditors::FiscalCode))
                .col(text(PagopaCreditors::Name))
                .col(text(PagopaCreditors::Iban))
                .col(int(PagopaCreditors::SegregationCode))
                .col(text(PagopaCreditors::ImuTaxonomy))
                .col(text(PagopaCreditors::TariTaxonomy))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TaxesCounters::Table)
                .col(
                    ColumnDef::new(TaxesCounters::Name)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(
                    ColumnDef::new(TaxesCounters::Value)
                        .big_integer()
                        .not_null(),
                )
                .to_owned(),
        )
        .await?;
        Ok(())
    }
}
