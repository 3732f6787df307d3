//! sea-orm entities of the employment database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract; days are dates, instants are UTC timestamps.

pub(crate) mod job_offer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_offers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub external_ref: String,
        pub title: String,
        pub description: String,
        pub profession_code: String,
        pub ateco_code: String,
        pub employer_name: String,
        pub employer_tax_code: String,
        pub employer_anonymous: bool,
        pub contract_type: i32,
        pub weekly_hours: i32,
        pub duration_months: i32,
        pub positions: i32,
        pub application_deadline: ChronoDate,
        pub requirements: String,
        pub min_eqf_level: i32,
        pub has_work_address: bool,
        pub work_street: String,
        pub work_house_number: String,
        pub work_postal_code: String,
        pub work_locality: String,
        pub pay_min_cents: Option<i64>,
        pub pay_max_cents: Option<i64>,
        pub status: i32,
        pub contact_office: String,
        pub published_at: ChronoDateTimeUtc,
        pub closed_at: Option<ChronoDateTimeUtc>,
        pub closure_note: String,
        pub applications_count: i32,
        pub search_text: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod job_application {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_applications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub job_offer_id: String,
        pub istat_code: String,
        pub fiscal_code: String,
        pub status: i32,
        pub message: String,
        pub cv_file_name: String,
        pub cv_sha256: String,
        pub cv_size_bytes: i64,
        pub cv_media_type: String,
        pub contact_email: String,
        pub contact_phone: String,
        pub consent_to_share: bool,
        pub review_note: String,
        pub online: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod training_course {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "training_courses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub external_ref: String,
        pub title: String,
        pub description: String,
        pub provider_name: String,
        pub provider_tax_code: String,
        pub provider_accreditation: String,
        pub eqf_level: i32,
        pub qualification: String,
        pub hours: i32,
        pub seats: i32,
        pub seats_taken: i32,
        pub waitlist_length: i32,
        pub waitlist_limit: i32,
        pub sequence: i64,
        pub start_date: ChronoDate,
        pub end_date: ChronoDate,
        pub enrolment_deadline: ChronoDate,
        pub cost_cents: i64,
        pub requirements: String,
        pub delivery_mode: i32,
        pub has_address: bool,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub profession_codes: String,
        pub funding_programme: String,
        pub status: i32,
        pub published_at: ChronoDateTimeUtc,
        pub closure_note: String,
        pub search_text: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod enrolment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "enrolments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub training_course_id: String,
        pub istat_code: String,
        pub fiscal_code: String,
        pub status: i32,
        pub waitlist_position: i32,
        pub requirements_declared: bool,
        pub contact_email: String,
        pub contact_phone: String,
        pub created_at: ChronoDateTimeUtc,
        pub enrolled_at: Option<ChronoDateTimeUtc>,
        pub promoted: bool,
        pub ended_at: Option<ChronoDateTimeUtc>,
        /// Place in the course's sequence when it arrived.
        pub arrival_seq: i64,
        /// Place in the course's sequence when it got its seat; 0 while it has none.
        pub seat_seq: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
