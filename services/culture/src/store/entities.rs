//! sea-orm entities of the culture database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract.

pub(crate) mod venue {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "venues")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub name: String,
        pub kind: i32,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub latitude: f64,
        pub longitude: f64,
        pub capacity: i32,
        pub wheelchair_accessible: bool,
        pub opening_hours: String,
        pub description: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub venue_id: String,
        pub name: String,
        pub description: String,
        pub category: i32,
        pub start_time: ChronoDateTimeUtc,
        pub end_time: ChronoDateTimeUtc,
        pub organizer: String,
        pub status: i32,
        pub attendance_mode: i32,
        pub price_cents: i64,
        pub capacity: i32,
        pub seats_booked: i32,
        pub audience: String,
        pub url: String,
        pub cancel_reason: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod booking {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bookings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub event_id: String,
        pub fiscal_code: String,
        pub seats: i32,
        pub status: i32,
        pub code: String,
        pub created_at: ChronoDateTimeUtc,
        pub cancelled_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
