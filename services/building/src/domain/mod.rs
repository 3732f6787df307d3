//! Building and cadastre rules, free of I/O: what a valid cadastral unit is ([`cadastre`]), the
//! procedural terms a comune applies ([`terms`]), and the permit workflow with its legal deadlines
//! ([`permit`]). The store applies these rules inside its transactions; this module explains them and
//! is tested on its own.

pub mod application;
pub mod cadastre;
pub mod permit;
pub mod terms;

use patto_proto::building::v1 as pb;
use patto_service_kit::error::Violations;
use patto_service_kit::ids;
use patto_service_kit::indicators::Procedure;
pub use patto_service_kit::validate::{holder_code, optional_day};

/// Longest short text accepted (names, subjects, file names).
pub const MAX_NAME_LEN: usize = 200;
/// Longest free text accepted (descriptions, notes, motivations).
pub const MAX_TEXT_LEN: usize = 4000;
/// Largest amount accepted, in cents (€ 10 billion): far above any rendita or contribution, and low
/// enough that the exact arithmetic downstream (IMU in i128) cannot overflow.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;

/// Filing a CIL online.
pub const CIL_FILING: Procedure = Procedure {
    code: "building.cil",
    name: "Comunicazione di inizio lavori (CIL)",
    fully_online: true,
};
/// Filing a CILA online.
pub const CILA_FILING: Procedure = Procedure {
    code: "building.cila",
    name: "Comunicazione di inizio lavori asseverata (CILA)",
    fully_online: true,
};
/// Filing a SCIA online.
pub const SCIA_FILING: Procedure = Procedure {
    code: "building.scia",
    name: "Segnalazione certificata di inizio attività (SCIA)",
    fully_online: true,
};
/// Filing a SCIA alternativa al permesso di costruire online.
pub const SCIA_ALTERNATIVA_FILING: Procedure = Procedure {
    code: "building.scia-alternativa",
    name: "SCIA alternativa al permesso di costruire",
    fully_online: true,
};
/// Applying for a permesso di costruire online, following it and receiving the decision online.
pub const PDC_APPLICATION: Procedure = Procedure {
    code: "building.pdc",
    name: "Richiesta di permesso di costruire",
    fully_online: true,
};
/// Filing the segnalazione certificata di agibilità online.
pub const AGIBILITY_FILING: Procedure = Procedure {
    code: "building.agibilita",
    name: "Segnalazione certificata di agibilità (SCA)",
    fully_online: true,
};

/// Every procedure of the building service, as the indicators list them.
pub const PROCEDURES: &[Procedure] = &[
    CIL_FILING,
    CILA_FILING,
    SCIA_FILING,
    SCIA_ALTERNATIVA_FILING,
    PDC_APPLICATION,
    AGIBILITY_FILING,
];

/// The online procedure completed by filing a permit of `kind`.
pub fn filing_procedure(kind: pb::BuildingPermitKind) -> &'static Procedure {
    match kind {
        pb::BuildingPermitKind::Cil => &CIL_FILING,
        pb::BuildingPermitKind::Cila => &CILA_FILING,
        pb::BuildingPermitKind::Scia => &SCIA_FILING,
        pb::BuildingPermitKind::SciaAlternativa => &SCIA_ALTERNATIVA_FILING,
        pb::BuildingPermitKind::Pdc | pb::BuildingPermitKind::Unspecified => &PDC_APPLICATION,
    }
}

/// Validates a person's codice fiscale and returns its canonical form.
pub fn person_code(input: &str) -> Result<String, String> {
    ids::canonical_fiscal_code(input).map_err(|e| format!("is not a valid codice fiscale: {e}"))
}

/// Checks a bounded text field and returns it trimmed.
pub fn text(value: &str, field: &str, max: usize, required: bool, v: &mut Violations) -> String {
    let t = value.trim();
    if required && t.is_empty() {
        v.add(field, "must not be empty");
    }
    if t.chars().count() > max {
        v.add(field, format!("must be at most {max} characters"));
    }
    t.to_owned()
}

/// The name of a permit status without its enum prefix, e.g. `PROTOCOLLATA`.
pub fn status_name(status: pb::BuildingPermitStatus) -> &'static str {
    status
        .as_str_name()
        .trim_start_matches("BUILDING_PERMIT_STATUS_")
}

/// The name of a permit kind without its enum prefix, e.g. `SCIA_ALTERNATIVA`.
pub fn kind_name(kind: pb::BuildingPermitKind) -> &'static str {
    kind.as_str_name()
        .trim_start_matches("BUILDING_PERMIT_KIND_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn holder_codes_accept_people_and_bodies() {
        assert_eq!(
            holder_code("rccmnl83s18d96vw").as_deref(),
            Ok("RCCMNL83S18D969H")
        );
        assert_eq!(holder_code("00743110157").as_deref(), Ok("00743110157"));
        assert!(
            holder_code("00743110158")
                .unwrap_err()
                .contains("partita IVA")
        );
        assert!(holder_code("XYZ").is_err());
        assert!(person_code("00743110157").is_err());
    }

    #[test]
    fn days_and_texts() {
        let mut v = Violations::new();
        assert_eq!(optional_day("", "d", &mut v), None);
        assert_eq!(
            optional_day("2026-02-28", "d", &mut v),
            NaiveDate::from_ymd_opt(2026, 2, 28)
        );
        assert!(v.is_empty());
        assert_eq!(optional_day("2026-02-30", "d", &mut v), None);
        assert_eq!(text("  x ", "t", 1, true, &mut v), "x");
        text(" ", "t", 1, true, &mut v);
        text("xy", "t", 1, false, &mut v);
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["d", "t", "t"]);
    }

    #[test]
    fn every_kind_has_a_procedure() {
        for kind in [
            pb::BuildingPermitKind::Cil,
            pb::BuildingPermitKind::Cila,
            pb::BuildingPermitKind::Scia,
            pb::BuildingPermitKind::SciaAlternativa,
            pb::BuildingPermitKind::Pdc,
        ] {
            assert!(PROCEDURES.contains(filing_procedure(kind)));
        }
        assert_eq!(status_name(pb::BuildingPermitStatus::Bozza), "BOZZA");
        assert_eq!(
            kind_name(pb::BuildingPermitKind::SciaAlternativa),
            "SCIA_ALTERNATIVA"
        );
    }
}
