//! sea-orm entities of the building database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract; small value lists that are never queried by their content
//! (a permit's parcels and vincoli, its deadlines and the terms it was filed under) are JSON text.

pub(crate) mod unit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "cadastral_units")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub belfiore_code: String,
        pub register: i32,
        pub sezione: String,
        pub foglio: String,
        pub particella: String,
        pub subalterno: String,
        pub sort_key: String,
        pub categoria: String,
        pub classe: String,
        pub consistenza: f64,
        pub consistenza_unit: i32,
        pub rendita_cents: i64,
        pub qualita: String,
        pub reddito_dominicale_cents: i64,
        pub reddito_agrario_cents: i64,
        pub surface_sqm: i32,
        pub surface_excluding_uncovered_sqm: i32,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub floor: String,
        pub internal_number: String,
        pub latitude: Option<f64>,
        pub longitude: Option<f64>,
        pub heritage_listed: bool,
        pub start_date: Option<Date>,
        pub end_date: Option<Date>,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod ownership {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cadastral_ownerships")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub unit_id: String,
        pub position: i32,
        pub fiscal_code: String,
        pub name: String,
        pub right_kind: i32,
        pub share_numerator: i32,
        pub share_denominator: i32,
        pub start_date: Date,
        pub end_date: Option<Date>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod permit {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "building_permits")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub kind: i32,
        pub status: i32,
        pub applicant_fiscal_code: String,
        pub designer_fiscal_code: String,
        pub designer_registration: String,
        pub subject: String,
        pub description: String,
        pub intervention_category: i32,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub parcels_json: String,
        pub constraints_json: String,
        pub protocol_number: String,
        pub submitted_at: Option<ChronoDateTimeUtc>,
        pub terms_doubled: bool,
        pub terms_json: String,
        pub deadlines_json: String,
        pub responsible_officer: String,
        pub integration_requests: i32,
        pub integration_request_note: String,
        pub proposal_outcome: i32,
        pub proposal_motivation: String,
        pub observations: String,
        pub decision_motivation: String,
        pub decision_protocol_number: String,
        pub decision_at: Option<ChronoDateTimeUtc>,
        pub silenzio_assenso_attestation: String,
        pub construction_contribution_cents: i64,
        pub secretariat_fees_cents: i64,
        pub works_start_date: Option<Date>,
        pub works_end_date: Option<Date>,
        pub contractor_fiscal_code: String,
        pub works_director_fiscal_code: String,
        pub agibility_protocol_number: String,
        /// When the clock will next move the permit by itself (silenzio-assenso, archiving).
        pub automatic_at: Option<ChronoDateTimeUtc>,
        /// The operators' next deadline in the current status.
        pub operator_due_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod attachment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "building_permit_attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub permit_id: String,
        pub name: String,
        pub sha256: String,
        pub size_bytes: i64,
        pub media_type: String,
        pub document_type: String,
        pub integration_round: i32,
        pub uploaded_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod transition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "building_permit_transitions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub permit_id: String,
        pub from_status: i32,
        pub to_status: i32,
        pub at: ChronoDateTimeUtc,
        pub actor_role: i32,
        pub actor: String,
        pub protocol_number: String,
        pub note: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod terms {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "building_permit_terms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        pub terms_json: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod counter {
    use sea_orm::entity::prelude::*;

    /// Numbering sequences (protocol numbers per comune and year).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "building_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
