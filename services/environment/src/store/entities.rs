//! sea-orm entities of the environment database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract; days the contract gives as ISO `YYYY-MM-DD` are stored as such
//! (they sort as text on both backends); lists of numbers are stored as `,1,5,` so one `LIKE
//! '%,5,%'` finds a member.

pub(crate) mod report {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "environment_reports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub category: i32,
        pub description: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub location_note: String,
        pub photos: String,
        pub status: i32,
        pub fiscal_code: String,
        pub linked_to: Option<String>,
        pub supporters_count: i32,
        pub assigned_to: String,
        pub expected_resolution_date: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub closed_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod report_update {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "environment_report_updates")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub report_id: String,
        pub time: ChronoDateTimeUtc,
        pub status: i32,
        pub note: String,
        pub author: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod zone {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waste_zones")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub name: String,
        pub description: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod zone_street {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waste_zone_streets")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub zone_id: String,
        pub istat_code: String,
        pub position: i32,
        pub street: String,
        pub street_key: String,
        pub from_number: i32,
        pub to_number: i32,
        pub side: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod schedule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waste_schedules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub zone_id: String,
        pub user_type: i32,
        pub fraction: i32,
        pub eer_codes: String,
        pub weekdays: String,
        pub every_weeks: i32,
        pub anchor_date: String,
        pub set_out_from: String,
        pub set_out_until: String,
        pub set_out_evening_before: bool,
        pub container: String,
        pub valid_from: String,
        pub valid_to: String,
        pub notes: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod calendar_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "waste_calendar_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub date: String,
        pub zone_id: String,
        pub user_type: i32,
        pub fraction: i32,
        pub moved_to_date: String,
        pub reason: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod centre {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "waste_collection_centres")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub name: String,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub opening_hours: String,
        pub fractions: String,
        pub eer_codes: String,
        pub user_types: String,
        pub notes: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod pickup {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bulky_waste_pickups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub fiscal_code: String,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub zone_id: String,
        pub items: String,
        pub pickup_date: String,
        pub status: i32,
        pub code: String,
        pub contact_phone: String,
        pub notes: String,
        pub outcome_note: String,
        pub created_at: ChronoDateTimeUtc,
        pub closed_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod station {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "air_quality_stations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub eoi_code: String,
        pub name: String,
        pub istat_code: String,
        pub network: String,
        pub station_type: i32,
        pub area_type: i32,
        pub latitude: f64,
        pub longitude: f64,
        pub altitude_meters: i32,
        pub pollutants: String,
        pub active: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod reading {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "air_quality_readings")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub station_id: String,
        pub pollutant: i32,
        pub averaging: i32,
        pub start_time: ChronoDateTimeUtc,
        pub concentration: f64,
        pub validity: i32,
        pub verified: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod daily {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "air_quality_daily")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub station_id: String,
        pub pollutant: i32,
        pub date: String,
        pub mean: f64,
        pub max_hourly: Option<f64>,
        pub max_eight_hour_mean: Option<f64>,
        pub valid_hours: i32,
        pub complete: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
