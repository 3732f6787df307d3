//! sea-orm entities of the social database. Enum columns hold the protobuf enum numbers, which
//! are part of the stable contract; amounts are integer cents; days are dates.

pub(crate) mod scheme {
    //! Benefit schemes, one row each, with their rules as columns.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "benefit_schemes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub code: String,
        pub name: String,
        pub description: String,
        pub kind: i32,
        pub legal_basis: String,
        pub status: i32,
        pub period_start: ChronoDate,
        pub period_end: ChronoDate,
        pub isee_threshold_cents: i64,
        /// JSON array of `IseeKind` numbers.
        pub accepted_isee_kinds: String,
        pub min_household_size: i32,
        pub max_household_size: i32,
        pub requires_minor: bool,
        pub requires_disabled_member: bool,
        pub requires_member_aged: i32,
        pub requires_residence: bool,
        pub min_residence_months: i32,
        pub amount_cents: i64,
        pub frequency: i32,
        pub payment_count: i32,
        pub budget_cents: i64,
        pub ranking_criterion: i32,
        /// JSON array of document names.
        pub required_documents: String,
        pub payer: String,
        pub fully_online: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod isee_declaration {
    //! ISEE declarations, keyed by id and unique by DSU protocol.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "isee_declarations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub fiscal_code: String,
        pub dsu_protocol: String,
        pub kind: i32,
        pub isee_cents: i64,
        pub ise_cents: i64,
        pub isr_cents: i64,
        pub isp_cents: i64,
        pub scale_thousandths: i32,
        pub household_size: i32,
        pub dsu_date: ChronoDate,
        pub valid_from: ChronoDate,
        pub valid_until: ChronoDate,
        pub discrepancies: bool,
        pub source: i32,
        pub verified: bool,
        /// ISTAT code of the comune whose operator registered or imported it; empty when the
        /// citizen registered it.
        pub holder_istat_code: String,
        pub registered_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod isee_member {
    //! Household members of an ISEE declaration, by position.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "isee_household_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub declaration_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        pub fiscal_code: String,
        pub birth_date: Option<ChronoDate>,
        pub disability: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod application {
    //! Benefit applications with their procedure state and the rules kept at submission.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "benefit_applications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub scheme_id: String,
        pub status: i32,
        pub applicant_fiscal_code: String,
        /// Empty when the applicant benefits.
        pub beneficiary_fiscal_code: String,
        /// Empty when none is relied on yet.
        pub isee_declaration_id: String,
        /// ISEE at submission.
        pub isee_cents: Option<i64>,
        pub iban: String,
        pub contact: String,
        pub statement: String,
        pub protocol_number: Option<String>,
        pub submitted_at: Option<ChronoDateTimeUtc>,
        pub caseworker: String,
        pub integration_request_note: String,
        /// JSON array of the eligibility checks.
        pub checks: String,
        pub score: i32,
        pub rank: i32,
        pub funded: bool,
        pub decision_motivation: String,
        pub decision_act: String,
        pub decided_at: Option<ChronoDateTimeUtc>,
        pub granted_amount_cents: i64,
        /// JSON of the scheme's rules at submission; empty for a draft.
        pub rules: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod attachment {
    //! Metadata of the documents attached to applications.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "application_attachments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub application_id: String,
        pub name: String,
        pub sha256: String,
        pub size_bytes: i64,
        pub media_type: String,
        pub document_type: String,
        pub uploaded_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod transition {
    //! The append-only history of application status changes.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "application_transitions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub application_id: String,
        pub from_status: i32,
        pub to_status: i32,
        pub at: ChronoDateTimeUtc,
        pub actor_role: i32,
        pub actor: String,
        pub note: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod payment {
    //! Instalments of granted benefits, by application and number.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "benefit_payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub application_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub number: i32,
        pub due_date: ChronoDate,
        pub amount_cents: i64,
        pub status: i32,
        pub paid_date: Option<ChronoDate>,
        pub payment_reference: String,
        pub note: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod ranking {
    //! One ranking (graduatoria) per scheme.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "benefit_rankings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scheme_id: String,
        pub status: i32,
        pub criterion: i32,
        pub budget_cents: i64,
        pub funded_cents: i64,
        pub computed_at: ChronoDateTimeUtc,
        pub approval_act: String,
        pub approved_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod ranking_entry {
    //! The places of a ranking, by scheme and position.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "benefit_ranking_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub scheme_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i32,
        pub application_id: String,
        pub protocol_number: String,
        pub score: i32,
        pub isee_cents: Option<i64>,
        pub funded: bool,
        pub amount_cents: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod protocol_counter {
    //! The last protocol number given per comune and year.

    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "protocol_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        pub last_number: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
