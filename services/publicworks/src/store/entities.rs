//! sea-orm entities of the public-works database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract; amounts are integer cents; days are SQL dates.

pub(crate) mod project {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "projects")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub cup: String,
        pub title: String,
        pub description: String,
        pub category: i32,
        pub state: i32,
        pub incompiuta: bool,
        pub incompiuta_note: String,
        pub programme_first_year: i32,
        pub programme_last_year: i32,
        pub in_annual_list: bool,
        pub cui: String,
        pub design_level: i32,
        pub budget_cents: i64,
        pub contractor_name: String,
        pub contractor_vat: String,
        pub contract_amount_cents: Option<i64>,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub rup_name: String,
        pub planned_end_date: Option<ChronoDate>,
        pub external_ref: String,
        /// Bumped by every write: writes are conditional on the revision they read, so two
        /// concurrent changes of one work cannot both win.
        pub revision: i32,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod cig {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "project_cigs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub cig: String,
        pub position: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod funding {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "project_funding")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        pub source: i32,
        pub amount_cents: i64,
        pub reference: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod sal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sal_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: i32,
        pub date: ChronoDate,
        pub progress_basis_points: i32,
        pub amount_cents: i64,
        pub certificate_due_date: ChronoDate,
        pub certificate_issued_date: Option<ChronoDate>,
        pub certificate_amount_cents: Option<i64>,
        pub payment_due_date: Option<ChronoDate>,
        pub paid_date: Option<ChronoDate>,
        pub paid_amount_cents: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod state_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "project_state_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub project_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i32,
        pub state: i32,
        pub date: ChronoDate,
        pub note: String,
        pub recorded_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod sal_terms {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sal_terms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        pub certificate_days: i32,
        pub payment_days: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
