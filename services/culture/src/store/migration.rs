//! Schema of the culture database, applied at start-up.

use sea_orm::DeriveIden;
use sea_orm_migration::prelude::*;

/// The culture service's migrations, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(patto_service_kit::indicators::CreateOnlineInteractions),
            Box::new(patto_service_kit::audit::CreatePersonalDataReads),
            Box::new(CreateCatalog),
        ]
    }
}

struct CreateCatalog;

impl MigrationName for CreateCatalog {
    fn name(&self) -> &str {
        "m20261126_000010_culture_catalog"
    }
}

#[derive(DeriveIden)]
enum Venues {
    Table,
    Id,
    IstatCode,
    Name,
    Kind,
    Street,
    HouseNumber,
    PostalCode,
    Locality,
    Latitude,
    Longitude,
    Capacity,
    WheelchairAccessible,
    OpeningHours,
    Description,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    IstatCode,
    VenueId,
    Name,
    Description,
    Category,
    StartTime,
    EndTime,
    Organizer,
    Status,
    AttendanceMode,
    PriceCents,
    Capacity,
    SeatsBooked,
    Audience,
    Url,
    CancelReason,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Bookings {
    Table,
    Id,
    EventId,
    FiscalCode,
    Seats,
    Status,
    Code,
    CreatedAt,
    CancelledAt,
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

#[async_trait::async_trait]
impl MigrationTrait for CreateCatalog {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Venues::Table)
                .col(
                    ColumnDef::new(Venues::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Venues::IstatCode).string_len(6).not_null())
                .col(text(Venues::Name))
                .col(int(Venues::Kind))
                .col(text(Venues::Street))
                .col(text(Venues::HouseNumber))
                .col(text(Venues::PostalCode))
                .col(text(Venues::Locality))
                .col(ColumnDef::new(Venues::Latitude).double().not_null())
                .col(ColumnDef::new(Venues::Longitude).double().not_null())
                .col(int(Venues::Capacity))
                .col(
                    ColumnDef::new(Venues::WheelchairAccessible)
                        .boolean()
                        .not_null(),
                )
                .col(text(Venues::OpeningHours))
                .col(text(Venues::Description))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_venues_comune")
                .table(Venues::Table)
                .col(Venues::IstatCode)
                .col(Venues::Name)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(
                    ColumnDef::new(Events::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Events::IstatCode).string_len(6).not_null())
                .col(ColumnDef::new(Events::VenueId).string_len(64).not_null())
                .col(text(Events::Name))
                .col(text(Events::Description))
                .col(int(Events::Category))
                .col(
                    ColumnDef::new(Events::StartTime)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Events::EndTime)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(text(Events::Organizer))
                .col(int(Events::Status))
                .col(int(Events::AttendanceMode))
                .col(ColumnDef::new(Events::PriceCents).big_integer().not_null())
                .col(int(Events::Capacity))
                .col(int(Events::SeatsBooked))
                .col(text(Events::Audience))
                .col(text(Events::Url))
                .col(text(Events::CancelReason))
                .col(
                    ColumnDef::new(Events::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Events::Table, Events::VenueId)
                        .to(Venues::Table, Venues::Id),
                )
                // The database itself refuses overbooking, whatever the code above it does.
                .check(Expr::col(Events::SeatsBooked).between(0, Expr::col(Events::Capacity)))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_events_comune_start")
                .table(Events::Table)
                .col(Events::IstatCode)
                .col(Events::StartTime)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_events_venue")
                .table(Events::Table)
                .col(Events::VenueId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Bookings::Table)
                .col(
                    ColumnDef::new(Bookings::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new(Bookings::EventId).string_len(64).not_null())
                .col(
                    ColumnDef::new(Bookings::FiscalCode)
                        .string_len(16)
                        .not_null(),
                )
                .col(int(Bookings::Seats))
                .col(int(Bookings::Status))
                .col(text(Bookings::Code))
                .col(
                    ColumnDef::new(Bookings::CreatedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(Bookings::CancelledAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Bookings::Table, Bookings::EventId)
                        .to(Events::Table, Events::Id),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_bookings_citizen")
                .table(Bookings::Table)
                .col(Bookings::FiscalCode)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_bookings_event")
                .table(Bookings::Table)
                .col(Bookings::EventId)
                .to_owned(),
        )
        .await?;
        // One confirmed booking per citizen and event; a partial index, which both SQLite and
        // PostgreSQL support, leaves cancelled bookings out of it.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_bookings_confirmed ON bookings (event_id, fiscal_code) WHERE status = 1",
            )
            .await?;
        Ok(())
    }
}
