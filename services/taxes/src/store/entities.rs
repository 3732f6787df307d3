//! sea-orm entities of the taxes database. Enum columns hold the protobuf enum numbers, which are
//! part of the stable contract. Rates and tariffs are JSON text (read whole, never queried inside);
//! a computed assessment is kept as its protobuf encoding, exactly as it was answered.

pub(crate) mod imu_rates {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "imu_rates")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        pub rates_json: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod tari_tariffs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tari_tariffs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub year: i32,
        pub tariffs_json: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod imu_declaration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "imu_declarations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub fiscal_code: String,
        pub istat_code: String,
        pub year: i32,
        pub cadastral_unit_id: String,
        pub asset_kind: i32,
        pub main_residence: bool,
        pub main_residence_unit_id: String,
        pub base_reduction: i32,
        pub reduction_start_date: Option<Date>,
        pub reduction_end_date: Option<Date>,
        pub canone_concordato: bool,
        pub building_land_value_cents: i64,
        pub exemption_reason: String,
        pub start_date: Date,
        pub end_date: Option<Date>,
        pub protocol_number: String,
        pub submitted_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod tari_registration {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tari_registrations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub istat_code: String,
        pub holder_fiscal_code: String,
        pub kind: i32,
        pub street: String,
        pub house_number: String,
        pub postal_code: String,
        pub locality: String,
        pub cadastral_unit_id: String,
        pub surface_sqm: i32,
        pub household_size: i32,
        pub resident: bool,
        pub non_domestic_category: i32,
        pub ateco_code: String,
        pub reduction_codes_json: String,
        pub start_date: Date,
        pub end_date: Option<Date>,
        pub declaration_protocol_number: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod tax_position {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tax_positions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub fiscal_code: String,
        pub istat_code: String,
        pub tribute: i32,
        pub year: i32,
        pub status: i32,
        pub amount_due_cents: i64,
        pub amount_paid_cents: i64,
        /// The protobuf encoding of the ImuAssessment or TariAssessment; empty when imported.
        pub assessment: Vec<u8>,
        /// The instalments as computed: JSON list of (amount, tefa, due day).
        pub parts_json: String,
        pub imported: bool,
        pub taxpayer_name: String,
        pub last_due_date: Date,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod debt_position {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "debt_positions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub iupd: String,
        pub istat_code: String,
        pub creditor_fiscal_code: String,
        pub debtor_fiscal_code: String,
        pub debtor_name: String,
        pub tax_position_id: String,
        pub tribute: i32,
        pub year: i32,
        pub description: String,
        pub status: i32,
        pub validity_at: ChronoDateTimeUtc,
        pub published_at: Option<ChronoDateTimeUtc>,
        pub paid_at: Option<ChronoDateTimeUtc>,
        pub expires_at: Option<ChronoDateTimeUtc>,
        pub invalidation_reason: String,
        /// The earliest due day of the options still open (sorting "soonest due first").
        pub next_due_date: Date,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod payment_option {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "debt_payment_options")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub nav: String,
        pub iuv: String,
        pub creditor_fiscal_code: String,
        pub iupd: String,
        pub amount_cents: i64,
        pub due_date: Date,
        pub instalment: bool,
        pub instalment_number: i32,
        pub description: String,
        pub status: i32,
        pub qr_payload: String,
        pub transfers_json: String,
        pub receipt_id: String,
        pub psp_id: String,
        pub psp_name: String,
        pub receipt_amount_cents: i64,
        pub payment_at: Option<ChronoDateTimeUtc>,
        pub recorded_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod creditor {
    use sea_orm::entity::prelude::*;

    /// A comune (or, for TEFA, the Città Metropolitana, ISTAT 282) as registered with pagoPA.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pagopa_creditors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub istat_code: String,
        pub fiscal_code: String,
        pub name: String,
        pub iban: String,
        pub segregation_code: i32,
        pub imu_taxonomy: String,
        pub tari_taxonomy: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod counter {
    use sea_orm::entity::prelude::*;

    /// Numbering sequences (protocol numbers, IUV bases).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "taxes_counters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
