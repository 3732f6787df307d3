//! The taxes service's side of the shared access rule ([`patto_service_kit::access`]): how its
//! records look to the rule.
//!
//! Tax positions, TARI registrations, IMU declarations, debt positions and the IMU and TARI
//! assessments computed from them are personal data of their taxpayer, held by the comune they are
//! owed to. A comune's rates and tariffs are public (they are deliberated and published). Its
//! collection figures (`ListMunicipalityTaxSummaries`) are internal to it: they are aggregates, but
//! over groups as small as one taxpayer (a year and tribute with a handful of positions gives away
//! what each owes and whether they paid), with no minimum cell size. Filing a declaration or asking
//! for a notice is done by the taxpayer or, for them, by the comune's operators; rates, tariffs,
//! the yearly notices, cancelling notices, imports and receipts are the comune's work.

use patto_service_kit::Principal;
use patto_service_kit::access::Record;

use crate::store::{DebtRecord, PositionRecord, imu_declaration, tari_registration};

/// What the audit of personal-data reads calls each record.
pub mod what {
    /// A tax position.
    pub const POSITION: &str = "taxes.TaxPosition";
    /// A TARI registration.
    pub const REGISTRATION: &str = "taxes.TariRegistration";
    /// An IMU declaration.
    pub const DECLARATION: &str = "taxes.ImuDeclaration";
    /// A pagoPA debt position.
    pub const DEBT: &str = "taxes.DebtPosition";
    /// A computed IMU assessment.
    pub const IMU: &str = "taxes.ImuAssessment";
    /// A computed TARI assessment.
    pub const TARI: &str = "taxes.TariAssessment";
}

/// A tax position as the rule sees it.
pub fn position(r: &PositionRecord) -> Record<'_> {
    Record::personal(&r.position.fiscal_code, &r.position.istat_code)
}

/// A TARI registration as the rule sees it.
pub fn registration(r: &tari_registration::Model) -> Record<'_> {
    Record::personal(&r.holder_fiscal_code, &r.istat_code)
}

/// An IMU declaration as the rule sees it.
pub fn declaration(d: &imu_declaration::Model) -> Record<'_> {
    Record::personal(&d.fiscal_code, &d.istat_code)
}

/// A debt position as the rule sees it.
pub fn debt(r: &DebtRecord) -> Record<'_> {
    Record::personal(&r.position.debtor_fiscal_code, &r.position.istat_code)
}

/// Whether the caller is the taxpayer filing online: their filing is a completed online interaction.
pub fn online(principal: &Principal) -> bool {
    matches!(principal, Principal::Citizen { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "RSSMRA80A01G273Z";
    const PALERMO: &str = "082053";

    #[test]
    fn filings_by_citizens_count_online() {
        let me = Principal::Citizen {
            fiscal_code: ME.to_ascii_lowercase(),
        };
        let operator = Principal::Operator {
            istat_code: PALERMO.into(),
            subject: "op".into(),
        };
        assert!(online(&me));
        assert!(!online(&operator) && !online(&Principal::Anonymous));
    }
}
