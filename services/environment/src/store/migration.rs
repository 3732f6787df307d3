//! Schema of the environment database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The environment service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateReports),
            Box::new(CreateWaste),
            Box::new(CreateAirQuality),
        ]
    }
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string()
        .not_null()
        .default("")
        .to_owned()
}

fn long_text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().default("").to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(64)
        .not_null()
        .primary_key()
        .to_owned()
}

fn serial(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn istat(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(6).not_null().to_owned()
}

fn day(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .string_len(10)
        .not_null()
        .default("")
        .to_owned()
}

fn int(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().to_owned()
}

fn instant(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn index<C: IntoIden + Copy>(name: &str, table: C, cols: &[C]) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(name).table(table);
    for c in cols {
        i.col(*c);
    }
    i.to_owned()
}

struct CreateReports;

impl MigrationName for CreateReports {
    fn name(&self) -> &str {
        "m20261201_000010_environment_reports"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum EnvironmentReports {
    Table,
    Id,
    IstatCode,
    Category,
    Description,
    Latitude,
    Longitude,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    LocationNote,
    Photos,
    Status,
    FiscalCode,
    LinkedTo,
    SupportersCount,
    AssignedTo,
    ExpectedResolutionDate,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EnvironmentReportUpdates {
    Table,
    Id,
    ReportId,
    Time,
    Status,
    Note,
    Author,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateReports {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use EnvironmentReports as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(id(R::Id))
                .col(istat(R::IstatCode))
                .col(int(R::Category))
                .col(long_text(R::Description))
                .col(ColumnDef::new(R::Latitude).double().null())
                .col(ColumnDef::new(R::Longitude).double().null())
                .col(text(R::Street))
                .col(text(R::HouseNumber))
                .col(text(R::PostalCode))
                .col(text(R::Locality))
                .col(text(R::LocationNote))
                .col(long_text(R::Photos))
                .col(int(R::Status))
                .col(text(R::FiscalCode))
                .col(ColumnDef::new(R::LinkedTo).string_len(64).null())
                .col(int(R::SupportersCount))
                .col(text(R::AssignedTo))
                .col(day(R::ExpectedResolutionDate))
                .col(instant(R::CreatedAt))
                .col(instant(R::UpdatedAt))
                .col(
                    ColumnDef::new(R::ClosedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(R::Table, R::LinkedTo)
                        .to(R::Table, R::Id),
                )
                .to_owned(),
        )
        .await?;
        // Listing a comune's reports newest first, and finding the open reports a new one may
        // duplicate (same comune, category and recent).
        m.create_index(index(
            "ix_environment_reports_comune_time",
            R::Table,
            &[R::IstatCode, R::CreatedAt],
        ))
        .await?;
        m.create_index(index(
            "ix_environment_reports_duplicates",
            R::Table,
            &[R::IstatCode, R::Category, R::Status, R::CreatedAt],
        ))
        .await?;
        m.create_index(index(
            "ix_environment_reports_citizen",
            R::Table,
            &[R::FiscalCode],
        ))
        .await?;
        m.create_index(index(
            "ix_environment_reports_linked",
            R::Table,
            &[R::LinkedTo],
        ))
        .await?;

        use EnvironmentReportUpdates as U;
        m.create_table(
            Table::create()
                .table(U::Table)
                .col(serial(U::Id))
                .col(ColumnDef::new(U::ReportId).string_len(64).not_null())
                .col(instant(U::Time))
                .col(int(U::Status))
                .col(long_text(U::Note))
                .col(text(U::Author))
                .foreign_key(
                    ForeignKey::create()
                        .from(U::Table, U::ReportId)
                        .to(R::Table, R::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_environment_report_updates_report",
            U::Table,
            &[U::ReportId, U::Id],
        ))
        .await
    }
}

struct CreateWaste;

impl MigrationName for CreateWaste {
    fn name(&self) -> &str {
        "m20261201_000020_environment_waste"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum WasteZones {
    Table,
    Id,
    IstatCode,
    Name,
    Description,
}

#[derive(DeriveIden, Clone, Copy)]
enum WasteZoneStreets {
    Table,
    Id,
    ZoneId,
    IstatCode,
    Position,
    Street,
    StreetKey,
    FromNumber,
    ToNumber,
    Side,
}

#[derive(DeriveIden, Clone, Copy)]
enum WasteSchedules {
    Table,
    Id,
    IstatCode,
    ZoneId,
    UserType,
    Fraction,
    EerCodes,
    Weekdays,
    EveryWeeks,
    AnchorDate,
    SetOutFrom,
    SetOutUntil,
    SetOutEveningBefore,
    Container,
    ValidFrom,
    ValidTo,
    Notes,
}

#[derive(DeriveIden, Clone, Copy)]
enum WasteCalendarChanges {
    Table,
    Id,
    IstatCode,
    Date,
    ZoneId,
    UserType,
    Fraction,
    MovedToDate,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WasteCollectionCentres {
    Table,
    Id,
    IstatCode,
    Name,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    Latitude,
    Longitude,
    OpeningHours,
    Fractions,
    EerCodes,
    UserTypes,
    Notes,
}

#[derive(DeriveIden, Clone, Copy)]
enum BulkyWastePickups {
    Table,
    Id,
    IstatCode,
    FiscalCode,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    ZoneId,
    Items,
    PickupDate,
    Status,
    Code,
    ContactPhone,
    Notes,
    OutcomeNote,
    CreatedAt,
    ClosedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateWaste {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use WasteZones as Z;
        m.create_table(
            Table::create()
                .table(Z::Table)
                .col(id(Z::Id))
                .col(istat(Z::IstatCode))
                .col(text(Z::Name))
                .col(long_text(Z::Description))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_waste_zones_comune",
            Z::Table,
            &[Z::IstatCode, Z::Name],
        ))
        .await?;

        use WasteZoneStreets as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(serial(S::Id))
                .col(ColumnDef::new(S::ZoneId).string_len(64).not_null())
                .col(istat(S::IstatCode))
                .col(int(S::Position))
                .col(text(S::Street))
                .col(text(S::StreetKey))
                .col(int(S::FromNumber))
                .col(int(S::ToNumber))
                .col(int(S::Side))
                .foreign_key(
                    ForeignKey::create()
                        .from(S::Table, S::ZoneId)
                        .to(Z::Table, Z::Id),
                )
                .to_owned(),
        )
        .await?;
        // Address → zone: the comune's stretches of one street.
        m.create_index(index(
            "ix_waste_zone_streets_street",
            S::Table,
            &[S::IstatCode, S::StreetKey],
        ))
        .await?;
        m.create_index(index("ix_waste_zone_streets_zone", S::Table, &[S::ZoneId]))
            .await?;

        use WasteSchedules as W;
        m.create_table(
            Table::create()
                .table(W::Table)
                .col(id(W::Id))
                .col(istat(W::IstatCode))
                .col(ColumnDef::new(W::ZoneId).string_len(64).not_null())
                .col(int(W::UserType))
                .col(int(W::Fraction))
                .col(text(W::EerCodes))
                .col(text(W::Weekdays))
                .col(int(W::EveryWeeks))
                .col(day(W::AnchorDate))
                .col(text(W::SetOutFrom))
                .col(text(W::SetOutUntil))
                .col(ColumnDef::new(W::SetOutEveningBefore).boolean().not_null())
                .col(text(W::Container))
                .col(day(W::ValidFrom))
                .col(day(W::ValidTo))
                .col(long_text(W::Notes))
                .foreign_key(
                    ForeignKey::create()
                        .from(W::Table, W::ZoneId)
                        .to(Z::Table, Z::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_waste_schedules_zone",
            W::Table,
            &[W::IstatCode, W::ZoneId],
        ))
        .await?;

        use WasteCalendarChanges as C;
        m.create_table(
            Table::create()
                .table(C::Table)
                .col(id(C::Id))
                .col(istat(C::IstatCode))
                .col(day(C::Date))
                .col(text(C::ZoneId))
                .col(int(C::UserType))
                .col(int(C::Fraction))
                .col(day(C::MovedToDate))
                .col(text(C::Reason))
                .col(instant(C::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_waste_changes_date",
            C::Table,
            &[C::IstatCode, C::Date],
        ))
        .await?;
        m.create_index(index(
            "ix_waste_changes_moved_to",
            C::Table,
            &[C::IstatCode, C::MovedToDate],
        ))
        .await?;

        use WasteCollectionCentres as K;
        m.create_table(
            Table::create()
                .table(K::Table)
                .col(id(K::Id))
                .col(istat(K::IstatCode))
                .col(text(K::Name))
                .col(text(K::Street))
                .col(text(K::HouseNumber))
                .col(text(K::PostalCode))
                .col(text(K::Locality))
                .col(ColumnDef::new(K::Latitude).double().null())
                .col(ColumnDef::new(K::Longitude).double().null())
                .col(text(K::OpeningHours))
                .col(text(K::Fractions))
                .col(long_text(K::EerCodes))
                .col(text(K::UserTypes))
                .col(long_text(K::Notes))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_waste_centres_comune",
            K::Table,
            &[K::IstatCode, K::Name],
        ))
        .await?;

        use BulkyWastePickups as P;
        m.create_table(
            Table::create()
                .table(P::Table)
                .col(id(P::Id))
                .col(istat(P::IstatCode))
                .col(ColumnDef::new(P::FiscalCode).string_len(16).not_null())
                .col(text(P::Street))
                .col(text(P::HouseNumber))
                .col(text(P::PostalCode))
                .col(text(P::Locality))
                .col(text(P::ZoneId))
                .col(long_text(P::Items))
                .col(day(P::PickupDate))
                .col(int(P::Status))
                .col(text(P::Code))
                .col(text(P::ContactPhone))
                .col(long_text(P::Notes))
                .col(long_text(P::OutcomeNote))
                .col(instant(P::CreatedAt))
                .col(
                    ColumnDef::new(P::ClosedAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .to_owned(),
        )
        .await?;
        // Capacity per day is counted over this index, inside the booking transaction.
        m.create_index(index(
            "ix_bulky_pickups_day",
            P::Table,
            &[P::IstatCode, P::PickupDate],
        ))
        .await?;
        m.create_index(index(
            "ix_bulky_pickups_citizen",
            P::Table,
            &[P::FiscalCode],
        ))
        .await
    }
}

struct CreateAirQuality;

impl MigrationName for CreateAirQuality {
    fn name(&self) -> &str {
        "m20261201_000030_environment_air_quality"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum AirQualityStations {
    Table,
    Id,
    EoiCode,
    Name,
    IstatCode,
    Network,
    StationType,
    AreaType,
    Latitude,
    Longitude,
    AltitudeMeters,
    Pollutants,
    Active,
}

#[derive(DeriveIden, Clone, Copy)]
enum AirQualityReadings {
    Table,
    Id,
    StationId,
    Pollutant,
    Averaging,
    StartTime,
    Concentration,
    Validity,
    Verified,
}

#[derive(DeriveIden, Clone, Copy)]
enum AirQualityDaily {
    Table,
    Id,
    StationId,
    Pollutant,
    Date,
    Mean,
    MaxHourly,
    MaxEightHourMean,
    ValidHours,
    Complete,
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAirQuality {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use AirQualityStations as S;
        m.create_table(
            Table::create()
                .table(S::Table)
                .col(id(S::Id))
                .col(text(S::EoiCode))
                .col(text(S::Name))
                .col(istat(S::IstatCode))
                .col(text(S::Network))
                .col(int(S::StationType))
                .col(int(S::AreaType))
                .col(ColumnDef::new(S::Latitude).double().not_null())
                .col(ColumnDef::new(S::Longitude).double().not_null())
                .col(int(S::AltitudeMeters))
                .col(text(S::Pollutants))
                .col(ColumnDef::new(S::Active).boolean().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ix_air_stations_comune",
            S::Table,
            &[S::IstatCode, S::Name],
        ))
        .await?;

        use AirQualityReadings as R;
        m.create_table(
            Table::create()
                .table(R::Table)
                .col(serial(R::Id))
                .col(ColumnDef::new(R::StationId).string_len(64).not_null())
                .col(int(R::Pollutant))
                .col(int(R::Averaging))
                .col(instant(R::StartTime))
                .col(ColumnDef::new(R::Concentration).double().not_null())
                .col(int(R::Validity))
                .col(ColumnDef::new(R::Verified).boolean().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .from(R::Table, R::StationId)
                        .to(S::Table, S::Id),
                )
                .to_owned(),
        )
        .await?;
        // One value per station, pollutant, averaging and start: a correction replaces it (upsert).
        m.create_index(
            index(
                "ux_air_readings_key",
                R::Table,
                &[R::StationId, R::Pollutant, R::Averaging, R::StartTime],
            )
            .unique()
            .to_owned(),
        )
        .await?;

        use AirQualityDaily as D;
        m.create_table(
            Table::create()
                .table(D::Table)
                .col(serial(D::Id))
                .col(ColumnDef::new(D::StationId).string_len(64).not_null())
                .col(int(D::Pollutant))
                .col(day(D::Date))
                .col(ColumnDef::new(D::Mean).double().not_null())
                .col(ColumnDef::new(D::MaxHourly).double().null())
                .col(ColumnDef::new(D::MaxEightHourMean).double().null())
                .col(int(D::ValidHours))
                .col(ColumnDef::new(D::Complete).boolean().not_null())
                .foreign_key(
                    ForeignKey::create()
                        .from(D::Table, D::StationId)
                        .to(S::Table, S::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            index(
                "ux_air_daily_key",
                D::Table,
                &[D::StationId, D::Pollutant, D::Date],
            )
            .unique()
            .to_owned(),
        )
        .await
    }
}
