//! What a valid IMU declaration, TARI registration or imported tax position is. The same checks
//! serve a citizen's online declaration and every row of a comune's tax roll import, so a row fails
//! an import for exactly the reason a declaration would be refused.

use chrono::NaiveDate;
use patto_proto::taxes::v1 as pb;
use patto_service_kit::error::Violations;
use patto_service_kit::ids;

use super::{MAX_NAME_LEN, check_year, holder_code, optional_day, required_day, text};

/// Longest protocol number accepted from a comune's own system.
pub const MAX_PROTOCOL_LEN: usize = 64;
/// Largest taxable surface accepted, m².
pub const MAX_SURFACE_SQM: i32 = 1_000_000;

/// A validated IMU declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImuDeclaration {
    /// Taxpayer.
    pub fiscal_code: String,
    /// Comune.
    pub istat_code: String,
    /// Tax year.
    pub year: i32,
    /// Cadastral unit, empty for an unregistered area.
    pub cadastral_unit_id: String,
    /// Asset kind (protobuf number, 0 = as registered).
    pub asset_kind: i32,
    /// Main residence.
    pub main_residence: bool,
    /// Main residence served, for a pertinenza.
    pub main_residence_unit_id: String,
    /// Base reduction (protobuf number).
    pub base_reduction: i32,
    /// Reduction from.
    pub reduction_start: Option<NaiveDate>,
    /// Reduction to.
    pub reduction_end: Option<NaiveDate>,
    /// Canone concordato.
    pub canone_concordato: bool,
    /// Valore venale, cents.
    pub building_land_value_cents: i64,
    /// Exemption claimed.
    pub exemption_reason: String,
    /// From.
    pub start_date: NaiveDate,
    /// To.
    pub end_date: Option<NaiveDate>,
    /// Protocol number given by the comune's system (imports), or empty.
    pub protocol_number: String,
}

impl NewImuDeclaration {
    /// What identifies a declaration in a roll: the same taxpayer, year, unit and start.
    pub fn key(&self) -> (String, i32, String, NaiveDate) {
        (
            self.fiscal_code.clone(),
            self.year,
            self.cadastral_unit_id.clone(),
            self.start_date,
        )
    }
}

fn unit_id(value: &str, field: &str, v: &mut Violations) -> String {
    let s = value.trim();
    v.check(
        s.len() <= 64,
        field,
        "must be an id of at most 64 characters",
    );
    s.to_owned()
}

fn year_bounds(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::from_ymd_opt(year, 1, 1)?,
        NaiveDate::from_ymd_opt(year, 12, 31)?,
    ))
}

/// Validates an IMU declaration; `prefix` is its path in the request.
pub fn validate_imu_declaration(
    d: &pb::ImuDeclaration,
    prefix: &str,
) -> Result<NewImuDeclaration, Violations> {
    let mut v = Violations::new();
    let f = |n: &str| format!("{prefix}.{n}");
    let fiscal_code = holder_code(&d.fiscal_code)
        .map_err(|m| v.add(f("fiscal_code"), m))
        .unwrap_or_default();
    v.check(
        ids::is_known_istat_code(&d.istat_code),
        f("istat_code"),
        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    check_year(d.year, &f("year"), &mut v);
    let cadastral_unit_id = unit_id(&d.cadastral_unit_id, &f("cadastral_unit_id"), &mut v);
    let asset_kind = match pb::ImuAssetKind::try_from(d.asset_kind) {
        Ok(k) => k,
        Err(_) => {
            v.add(f("asset_kind"), "must be one of the ImuAssetKind values");
            pb::ImuAssetKind::Unspecified
        }
    };
    let area = asset_kind == pb::ImuAssetKind::AreaFabbricabile;
    v.check(
        area || !cadastral_unit_id.is_empty(),
        f("cadastral_unit_id"),
        "must name the cadastral unit declared (only an area fabbricabile may have none)",
    );
    let main_residence_unit_id = unit_id(
        &d.main_residence_unit_id,
        &f("main_residence_unit_id"),
        &mut v,
    );
    v.check(
        !d.main_residence || main_residence_unit_id.is_empty(),
        f("main_residence_unit_id"),
        "must be empty for the main residence itself: it names the residence a pertinenza serves",
    );
    v.check(
        main_residence_unit_id.is_empty() || main_residence_unit_id != cadastral_unit_id,
        f("main_residence_unit_id"),
        "a unit cannot be its own pertinenza",
    );
    v.check(
        !(d.main_residence && area),
        f("main_residence"),
        "an area fabbricabile cannot be a main residence",
    );
    let base_reduction = match pb::ImuBaseReduction::try_from(d.base_reduction) {
        Ok(r) => r as i32,
        Err(_) => {
            v.add(
                f("base_reduction"),
                "must be one of the ImuBaseReduction values",
            );
            0
        }
    };
    let reduction_start = optional_day(&d.reduction_start_date, &f("reduction_start_date"), &mut v);
    let reduction_end = optional_day(&d.reduction_end_date, &f("reduction_end_date"), &mut v);
    v.check(
        base_reduction != 0 || (reduction_start.is_none() && reduction_end.is_none()),
        f("base_reduction"),
        "must be set when a reduction period is given",
    );
    if let (Some(s), Some(e)) = (reduction_start, reduction_end) {
        v.check(
            e >= s,
            f("reduction_end_date"),
            "must not be before reduction_start_date",
        );
    }
    let value = d.building_land_value.as_ref().map_or(0, |m| m.cents);
    if area {
        v.check(
            value > 0,
            f("building_land_value.cents"),
            "must be the valore venale at 1 January of the area, more than 0",
        );
    } else {
        v.check(
            value == 0,
            f("building_land_value.cents"),
            "applies to an area fabbricabile only",
        );
    }
    let exemption_reason = text(
        &d.exemption_reason,
        &f("exemption_reason"),
        MAX_NAME_LEN,
        false,
        &mut v,
    );
    let start = required_day(
        &d.start_date,
        &f("start_date"),
        "the first day the declared situation holds",
        &mut v,
    );
    let end = optional_day(&d.end_date, &f("end_date"), &mut v);
    if let (Some(s), Some(e)) = (start, end) {
        v.check(e >= s, f("end_date"), "must not be before start_date");
    }
    if let (Some(s), Some((first, last))) = (start, year_bounds(d.year)) {
        v.check(
            s <= last && end.is_none_or(|e| e >= first),
            f("start_date"),
            format!("the declared period must overlap the tax year {}", d.year),
        );
    }
    let protocol_number = text(
        &d.protocol_number,
        &f("protocol_number"),
        MAX_PROTOCOL_LEN,
        false,
        &mut v,
    );
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewImuDeclaration {
        fiscal_code,
        istat_code: d.istat_code.clone(),
        year: d.year,
        cadastral_unit_id,
        asset_kind: asset_kind as i32,
        main_residence: d.main_residence,
        main_residence_unit_id,
        base_reduction,
        reduction_start,
        reduction_end,
        canone_concordato: d.canone_concordato,
        building_land_value_cents: value,
        exemption_reason,
        start_date: start.unwrap_or_default(),
        end_date: end,
        protocol_number,
    })
}

/// A validated TARI registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTariRegistration {
    /// Comune.
    pub istat_code: String,
    /// Holder.
    pub holder_fiscal_code: String,
    /// Kind (protobuf number).
    pub kind: i32,
    /// Street.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// Postal code.
    pub postal_code: String,
    /// Locality.
    pub locality: String,
    /// Cadastral unit, when known.
    pub cadastral_unit_id: String,
    /// Taxable surface, m².
    pub surface_sqm: i32,
    /// Household members.
    pub household_size: i32,
    /// Resident household.
    pub resident: bool,
    /// Non-domestic category.
    pub non_domestic_category: i32,
    /// ATECO code.
    pub ateco_code: String,
    /// Reductions.
    pub reduction_codes: Vec<String>,
    /// First day of occupation.
    pub start_date: NaiveDate,
    /// Last day.
    pub end_date: Option<NaiveDate>,
    /// Protocol number of the last declaration, when given.
    pub protocol_number: String,
}

impl NewTariRegistration {
    /// What identifies a registration in a roll: holder, address and start of occupation.
    pub fn key(&self) -> (String, String, NaiveDate) {
        (
            self.holder_fiscal_code.clone(),
            format!("{} {}", self.street, self.house_number).to_lowercase(),
            self.start_date,
        )
    }
}

fn ateco(code: &str) -> bool {
    // ATECO 2025: AA.BB, AA.BB.C or AA.BB.CC.
    let parts: Vec<&str> = code.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().enumerate().all(|(i, p)| {
            let len_ok = if i < 2 {
                p.len() == 2
            } else {
                (1..=2).contains(&p.len())
            };
            len_ok && p.bytes().all(|b| b.is_ascii_digit())
        })
}

/// Validates a TARI registration; `prefix` is its path in the request.
pub fn validate_tari_registration(
    r: &pb::TariRegistration,
    prefix: &str,
) -> Result<NewTariRegistration, Violations> {
    let mut v = Violations::new();
    let f = |n: &str| format!("{prefix}.{n}");
    v.check(
        ids::is_known_istat_code(&r.istat_code),
        f("istat_code"),
        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let holder = holder_code(&r.holder_fiscal_code)
        .map_err(|m| v.add(f("holder_fiscal_code"), m))
        .unwrap_or_default();
    let kind = match pb::TariUseKind::try_from(r.kind) {
        Ok(pb::TariUseKind::Unspecified) | Err(_) => {
            v.add(f("kind"), "must be DOMESTIC or NON_DOMESTIC");
            pb::TariUseKind::Unspecified
        }
        Ok(k) => k,
    };
    let address = r.address.clone().unwrap_or_default();
    v.check(
        address.istat_code.is_empty() || address.istat_code == r.istat_code,
        f("address.istat_code"),
        "must be empty or the registration's istat_code",
    );
    let street = text(
        &address.street,
        &f("address.street"),
        MAX_NAME_LEN,
        true,
        &mut v,
    );
    v.check(
        (1..=MAX_SURFACE_SQM).contains(&r.surface_sqm),
        f("surface_sqm"),
        format!("must be the taxable surface in m², 1 to {MAX_SURFACE_SQM}"),
    );
    match kind {
        pb::TariUseKind::Domestic => {
            v.check(
                (0..=30).contains(&r.household_size) && (r.household_size > 0 || !r.resident),
                f("household_size"),
                "must be the household members (1 to 30) for a resident household; 0 only for non-residents",
            );
            v.check(
                r.non_domestic_category == 0,
                f("non_domestic_category"),
                "must be 0 for a dwelling",
            );
        }
        pb::TariUseKind::NonDomestic => {
            v.check(
                (1..=super::tariffs::MAX_CATEGORY).contains(&r.non_domestic_category),
                f("non_domestic_category"),
                "must be the DPR 158/1999 category, 1 to 30",
            );
            v.check(
                r.household_size == 0,
                f("household_size"),
                "must be 0 for business premises",
            );
        }
        pb::TariUseKind::Unspecified => {}
    }
    let ateco_code = r.ateco_code.trim().to_owned();
    v.check(
        ateco_code.is_empty() || ateco(&ateco_code),
        f("ateco_code"),
        "must be an ATECO 2025 code such as 47.11.10",
    );
    let mut reduction_codes = Vec::with_capacity(r.reduction_codes.len());
    for (i, c) in r.reduction_codes.iter().enumerate() {
        let code = c.trim().to_ascii_uppercase();
        v.check(
            !code.is_empty() && code.len() <= 32,
            format!("{prefix}.reduction_codes[{i}]"),
            "must be a reduction code of the comune's regolamento",
        );
        if !reduction_codes.contains(&code) {
            reduction_codes.push(code);
        }
    }
    let start = required_day(
        &r.start_date,
        &f("start_date"),
        "the first day of occupation",
        &mut v,
    );
    let end = optional_day(&r.end_date, &f("end_date"), &mut v);
    if let (Some(s), Some(e)) = (start, end) {
        v.check(e >= s, f("end_date"), "must not be before start_date");
    }
    let protocol_number = text(
        &r.declaration_protocol_number,
        &f("declaration_protocol_number"),
        MAX_PROTOCOL_LEN,
        false,
        &mut v,
    );
    let unit = unit_id(&r.cadastral_unit_id, &f("cadastral_unit_id"), &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewTariRegistration {
        istat_code: r.istat_code.clone(),
        holder_fiscal_code: holder,
        kind: kind as i32,
        street,
        house_number: address.house_number.trim().to_owned(),
        postal_code: address.postal_code.trim().to_owned(),
        locality: address.locality.trim().to_owned(),
        cadastral_unit_id: unit,
        surface_sqm: r.surface_sqm,
        household_size: r.household_size,
        resident: r.resident,
        non_domestic_category: r.non_domestic_category,
        ateco_code,
        reduction_codes,
        start_date: start.unwrap_or_default(),
        end_date: end,
        protocol_number,
    })
}

/// A validated tax position computed elsewhere (e.g. arrears of past years).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTaxPosition {
    /// Taxpayer.
    pub fiscal_code: String,
    /// Comune.
    pub istat_code: String,
    /// Tribute (protobuf number).
    pub tribute: i32,
    /// Year.
    pub year: i32,
    /// Amount due, cents.
    pub amount_due: i64,
    /// Amount paid, cents.
    pub amount_paid: i64,
    /// Cancelled (sgravio).
    pub cancelled: bool,
}

impl NewTaxPosition {
    /// What identifies a position: taxpayer, tribute and year (in the comune).
    pub fn key(&self) -> (String, i32, i32) {
        (self.fiscal_code.clone(), self.tribute, self.year)
    }
}

/// Validates a tax position given as computed elsewhere; `prefix` is its path in the request.
pub fn validate_tax_position(
    p: &pb::TaxPosition,
    prefix: &str,
) -> Result<NewTaxPosition, Violations> {
    let mut v = Violations::new();
    let f = |n: &str| format!("{prefix}.{n}");
    let fiscal_code = holder_code(&p.fiscal_code)
        .map_err(|m| v.add(f("fiscal_code"), m))
        .unwrap_or_default();
    v.check(
        ids::is_known_istat_code(&p.istat_code),
        f("istat_code"),
        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    match pb::Tribute::try_from(p.tribute) {
        Ok(pb::Tribute::Unspecified) | Err(_) => v.add(f("tribute"), "must be IMU or TARI"),
        Ok(_) => {}
    }
    check_year(p.year, &f("year"), &mut v);
    let due = p.amount_due.as_ref().map_or(0, |m| m.cents);
    let paid = p.amount_paid.as_ref().map_or(0, |m| m.cents);
    v.check(due > 0, f("amount_due.cents"), "must be more than 0");
    v.check(
        (0..=due.max(0)).contains(&paid),
        f("amount_paid.cents"),
        "must be between 0 and amount_due",
    );
    let cancelled = match pb::TaxPositionStatus::try_from(p.status) {
        Ok(s) => s == pb::TaxPositionStatus::Cancelled,
        Err(_) => {
            v.add(
                f("status"),
                "must be one of the TaxPositionStatus values (or unspecified)",
            );
            false
        }
    };
    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewTaxPosition {
        fiscal_code,
        istat_code: p.istat_code.clone(),
        tribute: p.tribute,
        year: p.year,
        amount_due: due,
        amount_paid: paid,
        cancelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::{Address, Money};

    fn decl() -> pb::ImuDeclaration {
        pb::ImuDeclaration {
            fiscal_code: "RCCMNL83S18D969H".into(),
            istat_code: "082053".into(),
            year: 2026,
            cadastral_unit_id: "cu-1".into(),
            main_residence: true,
            start_date: "2020-01-01".into(),
            ..Default::default()
        }
    }

    fn reg() -> pb::TariRegistration {
        pb::TariRegistration {
            istat_code: "082053".into(),
            holder_fiscal_code: "RCCMNL83S18D969H".into(),
            kind: pb::TariUseKind::Domestic as i32,
            address: Some(Address {
                street: "Via Maqueda".into(),
                house_number: "12".into(),
                ..Default::default()
            }),
            surface_sqm: 95,
            household_size: 3,
            resident: true,
            reduction_codes: vec!["compostaggio".into(), "COMPOSTAGGIO".into()],
            start_date: "2019-04-01".into(),
            ..Default::default()
        }
    }

    #[test]
    fn good_rows_pass() {
        let d = validate_imu_declaration(&decl(), "imu_declaration").unwrap();
        assert_eq!(d.key().2, "cu-1");
        let r = validate_tari_registration(&reg(), "tari_registration").unwrap();
        assert_eq!(r.reduction_codes, ["COMPOSTAGGIO"]);
        let area = pb::ImuDeclaration {
            cadastral_unit_id: String::new(),
            main_residence: false,
            asset_kind: pb::ImuAssetKind::AreaFabbricabile as i32,
            building_land_value: Some(Money { cents: 9_000_000 }),
            ..decl()
        };
        assert!(validate_imu_declaration(&area, "d").is_ok());
    }

    #[test]
    fn declaration_violations_name_their_field() {
        type Edit = fn(&mut pb::ImuDeclaration);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad taxpayer",
                |d| d.fiscal_code = "X".into(),
                "d.fiscal_code",
            ),
            ("bad year", |d| d.year = 1999, "d.year"),
            (
                "no unit",
                |d| d.cadastral_unit_id.clear(),
                "d.cadastral_unit_id",
            ),
            (
                "own pertinenza",
                |d| {
                    d.main_residence = false;
                    d.main_residence_unit_id = "cu-1".into();
                },
                "d.main_residence_unit_id",
            ),
            (
                "value on a building",
                |d| d.building_land_value = Some(Money { cents: 1 }),
                "d.building_land_value.cents",
            ),
            ("no start", |d| d.start_date.clear(), "d.start_date"),
            (
                "outside the year",
                |d| d.end_date = "2021-01-01".into(),
                "d.start_date",
            ),
            (
                "reduction without kind",
                |d| d.reduction_start_date = "2026-01-01".into(),
                "d.base_reduction",
            ),
            ("bad kind", |d| d.asset_kind = 9, "d.asset_kind"),
        ];
        for (case, edit, field) in cases {
            let mut d = decl();
            edit(&mut d);
            let v = validate_imu_declaration(&d, "d").expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    #[test]
    fn registration_violations_name_their_field() {
        type Edit = fn(&mut pb::TariRegistration);
        let cases: &[(&str, Edit, &str)] = &[
            ("no kind", |r| r.kind = 0, "r.kind"),
            (
                "bad holder",
                |r| r.holder_fiscal_code = "123".into(),
                "r.holder_fiscal_code",
            ),
            ("no street", |r| r.address = None, "r.address.street"),
            ("no surface", |r| r.surface_sqm = 0, "r.surface_sqm"),
            ("no household", |r| r.household_size = 0, "r.household_size"),
            (
                "category on a home",
                |r| r.non_domestic_category = 3,
                "r.non_domestic_category",
            ),
            (
                "business without category",
                |r| {
                    r.kind = pb::TariUseKind::NonDomestic as i32;
                    r.household_size = 0;
                },
                "r.non_domestic_category",
            ),
            (
                "bad ateco",
                |r| r.ateco_code = "4711".into(),
                "r.ateco_code",
            ),
            (
                "end before start",
                |r| r.end_date = "2019-01-01".into(),
                "r.end_date",
            ),
            (
                "bad date",
                |r| r.start_date = "01/04/2019".into(),
                "r.start_date",
            ),
        ];
        for (case, edit, field) in cases {
            let mut r = reg();
            edit(&mut r);
            let v = validate_tari_registration(&r, "r").expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
        assert!(ateco("47.11.10") && ateco("47.11") && ateco("47.11.1") && !ateco("47.1"));
    }

    #[test]
    fn positions() {
        let p = pb::TaxPosition {
            fiscal_code: "RCCMNL83S18D969H".into(),
            istat_code: "082053".into(),
            tribute: pb::Tribute::Imu as i32,
            year: 2022,
            amount_due: Some(Money { cents: 50_000 }),
            amount_paid: Some(Money { cents: 10_000 }),
            ..Default::default()
        };
        assert_eq!(validate_tax_position(&p, "p").unwrap().amount_paid, 10_000);
        let bad = pb::TaxPosition {
            tribute: 0,
            amount_paid: Some(Money { cents: 60_000 }),
            ..p
        };
        let v = validate_tax_position(&bad, "p").unwrap_err();
        let fields: Vec<_> = v.as_slice().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["p.tribute", "p.amount_paid.cents"]);
    }
}
