//! The Catasto's rules for a unit: the categorie catastali and their groups, the unit of the
//! consistenza each group uses, which groups carry a rendita, and what a valid unit with its holders
//! looks like (DOMAIN.md §3).

use chrono::NaiveDate;
use patto_proto::building::v1 as pb;
use patto_service_kit::comuni;
use patto_service_kit::error::Violations;

use super::{MAX_AMOUNT_CENTS, MAX_NAME_LEN, holder_code, optional_day, text};

/// Most holders one unit may list (current and past).
pub const MAX_OWNERS: usize = 200;
/// Longest cadastral identifier accepted (sezione, foglio, particella, subalterno).
pub const MAX_IDENTIFIER_LEN: usize = 10;
/// Largest share denominator accepted (millesimi and finer fractions fit).
pub const MAX_SHARE_DENOMINATOR: i32 = 1_000_000;

/// Group of a categoria catastale (the letter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Dwellings and offices (A/1–A/11).
    A,
    /// Collective-use buildings (B/1–B/8).
    B,
    /// Commercial and ancillary units (C/1–C/7).
    C,
    /// Special-purpose units valued by stima diretta (D/1–D/10).
    D,
    /// Units with a particular destination (E/1–E/9).
    E,
    /// Units without rendita (F/1–F/7).
    F,
}

impl Group {
    fn of(letter: u8) -> Option<Self> {
        Some(match letter {
            b'A' => Self::A,
            b'B' => Self::B,
            b'C' => Self::C,
            b'D' => Self::D,
            b'E' => Self::E,
            b'F' => Self::F,
            _ => return None,
        })
    }

    /// Highest categoria number of the group in the "quadro generale delle categorie".
    pub fn max_number(self) -> u8 {
        match self {
            Self::A => 11,
            Self::B => 8,
            Self::C | Self::F => 7,
            Self::D => 10,
            Self::E => 9,
        }
    }

    /// The letter.
    pub fn letter(self) -> char {
        match self {
            Self::A => 'A',
            Self::B => 'B',
            Self::C => 'C',
            Self::D => 'D',
            Self::E => 'E',
            Self::F => 'F',
        }
    }
}

/// A categoria catastale of the Catasto fabbricati, e.g. A/2 or D/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Categoria {
    /// The group (letter).
    pub group: Group,
    /// The number within the group.
    pub number: u8,
}

impl Categoria {
    /// Parses `A/2` (also `A2` and `a/02`); `None` for anything that is not a categoria.
    pub fn parse(input: &str) -> Option<Self> {
        let s = input.trim().to_ascii_uppercase();
        let bytes = s.as_bytes();
        let group = Group::of(*bytes.first()?)?;
        let rest = s.get(1..)?.trim_start_matches('/');
        if rest.is_empty() || rest.len() > 2 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: u8 = rest.parse().ok()?;
        (1..=group.max_number())
            .contains(&number)
            .then_some(Self { group, number })
    }

    /// The canonical code, e.g. `A/2`.
    pub fn code(&self) -> String {
        format!("{}/{}", self.group.letter(), self.number)
    }

    /// The unit the consistenza of this categoria is measured in (DPR 1142/1949): vani for A, m³ for
    /// B, m² for C; D, E and F have none.
    pub fn consistenza_unit(&self) -> pb::ConsistenzaUnit {
        match self.group {
            Group::A => pb::ConsistenzaUnit::Vani,
            Group::B => pb::ConsistenzaUnit::CubicMetres,
            Group::C => pb::ConsistenzaUnit::SquareMetres,
            Group::D | Group::E | Group::F => pb::ConsistenzaUnit::Unspecified,
        }
    }

    /// Whether units of this categoria carry a rendita (group F does not).
    pub fn has_rendita(&self) -> bool {
        self.group != Group::F
    }
}

/// A validated holder of a right on a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOwnership {
    /// Canonical codice fiscale or partita IVA.
    pub fiscal_code: String,
    /// Name as registered.
    pub name: String,
    /// The right (protobuf number).
    pub right: i32,
    /// Share numerator.
    pub share_numerator: i32,
    /// Share denominator.
    pub share_denominator: i32,
    /// First day held.
    pub start_date: NaiveDate,
    /// Last day held, when no longer held.
    pub end_date: Option<NaiveDate>,
}

impl NewOwnership {
    /// Whether the right is held at some time between `from` and `to`, both included.
    pub fn held_between(&self, from: NaiveDate, to: NaiveDate) -> bool {
        self.start_date <= to && self.end_date.is_none_or(|end| end >= from)
    }
}

/// A validated cadastral unit, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUnit {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// Belfiore code of the comune.
    pub belfiore_code: String,
    /// Register (protobuf number).
    pub register: i32,
    /// Sezione.
    pub sezione: String,
    /// Foglio.
    pub foglio: String,
    /// Particella.
    pub particella: String,
    /// Subalterno.
    pub subalterno: String,
    /// Canonical categoria, empty for land.
    pub categoria: String,
    /// Classe.
    pub classe: String,
    /// Consistenza.
    pub consistenza: f64,
    /// Unit of the consistenza (protobuf number).
    pub consistenza_unit: i32,
    /// Rendita in cents.
    pub rendita_cents: i64,
    /// Qualità di coltura (land).
    pub qualita: String,
    /// Reddito dominicale in cents (land).
    pub reddito_dominicale_cents: i64,
    /// Reddito agrario in cents (land).
    pub reddito_agrario_cents: i64,
    /// Superficie catastale totale, m².
    pub surface_sqm: i32,
    /// Superficie excluding uncovered areas, m².
    pub surface_excluding_uncovered_sqm: i32,
    /// Street.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// Postal code.
    pub postal_code: String,
    /// Locality.
    pub locality: String,
    /// Floor.
    pub floor: String,
    /// Internal number.
    pub internal_number: String,
    /// Position, when known.
    pub geo: Option<(f64, f64)>,
    /// Listed cultural heritage.
    pub heritage_listed: bool,
    /// Holders.
    pub owners: Vec<NewOwnership>,
    /// First day with these data.
    pub start_date: Option<NaiveDate>,
    /// Last day with these data.
    pub end_date: Option<NaiveDate>,
}

impl NewUnit {
    /// The natural key of the Catasto: Belfiore code, sezione, foglio, particella, subalterno.
    pub fn natural_key(&self) -> (String, String, String, String, String) {
        (
            self.belfiore_code.clone(),
            self.sezione.clone(),
            self.foglio.clone(),
            self.particella.clone(),
            self.subalterno.clone(),
        )
    }
}

/// A key that sorts cadastral identifiers in their natural order: foglio 9 before foglio 10.
pub fn sort_key(sezione: &str, foglio: &str, particella: &str, subalterno: &str) -> String {
    let pad = |s: &str| format!("{s:0>10}");
    format!(
        "{}|{}|{}|{}",
        pad(sezione),
        pad(foglio),
        pad(particella),
        pad(subalterno)
    )
}

fn identifier(value: &str, field: &str, required: bool, v: &mut Violations) -> String {
    let s = value.trim().to_ascii_uppercase();
    if required && s.is_empty() {
        v.add(field, "must not be empty");
    } else if s.len() > MAX_IDENTIFIER_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        v.add(
            field,
            format!("must be letters and digits only, at most {MAX_IDENTIFIER_LEN} characters"),
        );
    }
    s
}

fn money(m: Option<&patto_proto::common::v1::Money>, field: &str, v: &mut Violations) -> i64 {
    let cents = m.map_or(0, |m| m.cents);
    v.check(
        (0..=MAX_AMOUNT_CENTS).contains(&cents),
        field,
        format!("must be between 0 and {MAX_AMOUNT_CENTS} cents"),
    );
    cents
}

/// Validates a unit as a client sent it; `prefix` is its path in the request (e.g. `unit`).
pub fn validate_unit(unit: &pb::CadastralUnit, prefix: &str) -> Result<NewUnit, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    let comune = comuni::by_istat(&unit.istat_code);
    if comune.is_none() {
        v.add(
            f("istat_code"),
            "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
        );
    }
    let belfiore = unit.belfiore_code.trim().to_ascii_uppercase();
    let belfiore = match comune {
        Some(c) if belfiore.is_empty() || belfiore == c.cadastral_code => c.cadastral_code.clone(),
        Some(c) => {
            v.add(
                f("belfiore_code"),
                format!(
                    "`{belfiore}` is not the Belfiore code of {} ({}); leave it empty or send {}",
                    c.name, c.cadastral_code, c.cadastral_code
                ),
            );
            belfiore
        }
        None => belfiore,
    };
    let register = match pb::CadastralRegister::try_from(unit.register) {
        Ok(pb::CadastralRegister::Unspecified) => pb::CadastralRegister::Fabbricati,
        Ok(r) => r,
        Err(_) => {
            v.add(f("register"), "must be one of the CadastralRegister values");
            pb::CadastralRegister::Fabbricati
        }
    };
    let sezione = identifier(&unit.sezione, &f("sezione"), false, &mut v);
    let foglio = identifier(&unit.foglio, &f("foglio"), true, &mut v);
    let particella = identifier(&unit.particella, &f("particella"), true, &mut v);
    let subalterno = identifier(&unit.subalterno, &f("subalterno"), false, &mut v);

    let rendita_cents = money(unit.rendita.as_ref(), &f("rendita.cents"), &mut v);
    let reddito_dominicale_cents = money(
        unit.reddito_dominicale.as_ref(),
        &f("reddito_dominicale.cents"),
        &mut v,
    );
    let reddito_agrario_cents = money(
        unit.reddito_agrario.as_ref(),
        &f("reddito_agrario.cents"),
        &mut v,
    );
    v.check(
        unit.consistenza.is_finite() && unit.consistenza >= 0.0,
        f("consistenza"),
        "must be a number of at least 0",
    );

    let mut categoria = String::new();
    let mut consistenza_unit = pb::ConsistenzaUnit::Unspecified;
    match register {
        pb::CadastralRegister::Fabbricati => match Categoria::parse(&unit.categoria) {
            None => v.add(
                f("categoria"),
                "must be a categoria catastale such as A/2, C/6 or D/8 (A/1–A/11, B/1–B/8, C/1–C/7, D/1–D/10, E/1–E/9, F/1–F/7)",
            ),
            Some(cat) => {
                categoria = cat.code();
                consistenza_unit = cat.consistenza_unit();
                let sent = unit.consistenza_unit;
                v.check(
                    sent == 0 || sent == consistenza_unit as i32,
                    f("consistenza_unit"),
                    format!(
                        "categoria {categoria} is measured in {}; leave it unspecified or send that",
                        consistenza_unit.as_str_name()
                    ),
                );
                if consistenza_unit == pb::ConsistenzaUnit::Unspecified {
                    v.check(
                        unit.consistenza == 0.0,
                        f("consistenza"),
                        format!("must be 0: group {} has no consistenza", cat.group.letter()),
                    );
                } else {
                    v.check(
                        unit.consistenza > 0.0,
                        f("consistenza"),
                        format!("must be more than 0 for categoria {categoria}"),
                    );
                }
                if cat.has_rendita() {
                    v.check(
                        rendita_cents > 0,
                        f("rendita.cents"),
                        format!("must be more than 0 for categoria {categoria}"),
                    );
                } else {
                    v.check(
                        rendita_cents == 0,
                        f("rendita.cents"),
                        "must be 0: group F units have no rendita",
                    );
                }
            }
        },
        pb::CadastralRegister::Terreni | pb::CadastralRegister::Unspecified => {
            v.check(
                unit.categoria.trim().is_empty(),
                f("categoria"),
                "must be empty for a land parcel (catasto terreni)",
            );
            v.check(
                subalterno.is_empty(),
                f("subalterno"),
                "must be empty for a land parcel (catasto terreni has no subalterni)",
            );
            v.check(
                rendita_cents == 0,
                f("rendita.cents"),
                "must be 0 for a land parcel; send reddito_dominicale and reddito_agrario",
            );
            v.check(
                !unit.qualita.trim().is_empty(),
                f("qualita"),
                "must name the qualità di coltura of a land parcel, e.g. SEMINATIVO",
            );
        }
    }

    v.check(
        unit.surface_sqm >= 0,
        f("surface_sqm"),
        "must not be negative",
    );
    v.check(
        (0..=unit.surface_sqm.max(0)).contains(&unit.surface_excluding_uncovered_sqm),
        f("surface_excluding_uncovered_sqm"),
        "must be between 0 and surface_sqm",
    );
    let address = unit.address.clone().unwrap_or_default();
    v.check(
        address.istat_code.is_empty() || address.istat_code == unit.istat_code,
        f("address.istat_code"),
        "must be empty or the unit's istat_code",
    );
    let street = text(
        &address.street,
        &f("address.street"),
        MAX_NAME_LEN,
        false,
        &mut v,
    );
    let geo = unit.geo.map(|g| {
        v.check(
            (-90.0..=90.0).contains(&g.latitude) && (-180.0..=180.0).contains(&g.longitude),
            f("geo"),
            "latitude must be -90 to 90 and longitude -180 to 180",
        );
        (g.latitude, g.longitude)
    });

    let start_date = optional_day(&unit.start_date, &f("start_date"), &mut v);
    let end_date = optional_day(&unit.end_date, &f("end_date"), &mut v);
    if let (Some(s), Some(e)) = (start_date, end_date) {
        v.check(e >= s, f("end_date"), "must not be before start_date");
    }

    v.check(
        unit.owners.len() <= MAX_OWNERS,
        f("owners"),
        format!("at most {MAX_OWNERS} holders per unit"),
    );
    let mut owners = Vec::with_capacity(unit.owners.len());
    for (i, o) in unit.owners.iter().enumerate() {
        let of = |name: &str| format!("{prefix}.owners[{i}].{name}");
        if let Some(owner) = validate_ownership(o, &of, &mut v) {
            owners.push(owner);
        }
    }
    check_shares(&owners, &f("owners"), &mut v);

    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewUnit {
        istat_code: unit.istat_code.clone(),
        belfiore_code: belfiore,
        register: register as i32,
        sezione,
        foglio,
        particella,
        subalterno,
        categoria,
        classe: unit.classe.trim().to_ascii_uppercase(),
        consistenza: unit.consistenza,
        consistenza_unit: consistenza_unit as i32,
        rendita_cents,
        qualita: unit.qualita.trim().to_ascii_uppercase(),
        reddito_dominicale_cents,
        reddito_agrario_cents,
        surface_sqm: unit.surface_sqm,
        surface_excluding_uncovered_sqm: unit.surface_excluding_uncovered_sqm,
        street,
        house_number: address.house_number.trim().to_owned(),
        postal_code: address.postal_code.trim().to_owned(),
        locality: address.locality.trim().to_owned(),
        floor: unit.floor.trim().to_ascii_uppercase(),
        internal_number: unit.internal_number.trim().to_owned(),
        geo,
        heritage_listed: unit.heritage_listed,
        owners,
        start_date,
        end_date,
    })
}

fn validate_ownership(
    o: &pb::CadastralOwnership,
    f: &dyn Fn(&str) -> String,
    v: &mut Violations,
) -> Option<NewOwnership> {
    let before = v.as_slice().len();
    let fiscal_code = holder_code(&o.fiscal_code)
        .map_err(|msg| v.add(f("fiscal_code"), msg))
        .unwrap_or_default();
    let name = text(&o.name, &f("name"), MAX_NAME_LEN, true, v);
    match pb::OwnershipRight::try_from(o.right) {
        Ok(pb::OwnershipRight::Unspecified) | Err(_) => {
            v.add(f("right"), "must be one of the OwnershipRight values")
        }
        Ok(_) => {}
    }
    v.check(
        o.share_denominator >= 1 && o.share_denominator <= MAX_SHARE_DENOMINATOR,
        f("share_denominator"),
        format!("must be between 1 and {MAX_SHARE_DENOMINATOR}"),
    );
    v.check(
        o.share_numerator >= 1 && o.share_numerator <= o.share_denominator,
        f("share_numerator"),
        "must be between 1 and share_denominator",
    );
    let start = optional_day(&o.start_date, &f("start_date"), v);
    if o.start_date.trim().is_empty() {
        v.add(
            f("start_date"),
            "must be the first day the right is held (YYYY-MM-DD)",
        );
    }
    let end = optional_day(&o.end_date, &f("end_date"), v);
    if let (Some(s), Some(e)) = (start, end) {
        v.check(e >= s, f("end_date"), "must not be before start_date");
    }
    if v.as_slice().len() > before {
        return None;
    }
    Some(NewOwnership {
        fiscal_code,
        name,
        right: o.right,
        share_numerator: o.share_numerator,
        share_denominator: o.share_denominator,
        start_date: start?,
        end_date: end,
    })
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

/// The current holders of one right may not hold more than the whole: Σ shares ≤ 1 per right.
fn check_shares(owners: &[NewOwnership], field: &str, v: &mut Violations) {
    let mut rights: Vec<i32> = owners.iter().map(|o| o.right).collect();
    rights.sort_unstable();
    rights.dedup();
    for right in rights {
        let (mut num, mut den) = (0i128, 1i128);
        for o in owners
            .iter()
            .filter(|o| o.right == right && o.end_date.is_none())
        {
            let (n, d) = (
                i128::from(o.share_numerator),
                i128::from(o.share_denominator),
            );
            num = num * d + n * den;
            den *= d;
            let g = gcd(num, den).max(1);
            num /= g;
            den /= g;
        }
        if num > den {
            let name = pb::OwnershipRight::try_from(right)
                .map(|r| r.as_str_name())
                .unwrap_or("right");
            v.add(
                field,
                format!("the current shares of {name} add up to {num}/{den}, more than the whole"),
            );
        }
    }
}

/// The period a holdings query covers: the calendar `year`, or `today` alone when `year` is 0.
pub fn holding_window(year: i32, today: NaiveDate) -> Option<(NaiveDate, NaiveDate)> {
    if year == 0 {
        return Some((today, today));
    }
    Some((
        NaiveDate::from_ymd_opt(year, 1, 1)?,
        NaiveDate::from_ymd_opt(year, 12, 31)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::Money;

    #[test]
    fn categorie() {
        let cases: &[(&str, Option<&str>, pb::ConsistenzaUnit)] = &[
            ("A/2", Some("A/2"), pb::ConsistenzaUnit::Vani),
            ("a/02", Some("A/2"), pb::ConsistenzaUnit::Vani),
            ("A10", Some("A/10"), pb::ConsistenzaUnit::Vani),
            ("B/5", Some("B/5"), pb::ConsistenzaUnit::CubicMetres),
            ("C/6", Some("C/6"), pb::ConsistenzaUnit::SquareMetres),
            ("D/10", Some("D/10"), pb::ConsistenzaUnit::Unspecified),
            ("F/3", Some("F/3"), pb::ConsistenzaUnit::Unspecified),
            ("A/12", None, pb::ConsistenzaUnit::Unspecified),
            ("C/8", None, pb::ConsistenzaUnit::Unspecified),
            ("G/1", None, pb::ConsistenzaUnit::Unspecified),
            ("A/", None, pb::ConsistenzaUnit::Unspecified),
            ("", None, pb::ConsistenzaUnit::Unspecified),
            ("A/0", None, pb::ConsistenzaUnit::Unspecified),
        ];
        for (input, code, unit) in cases {
            let parsed = Categoria::parse(input);
            assert_eq!(parsed.map(|c| c.code()).as_deref(), *code, "{input}");
            if let Some(c) = parsed {
                assert_eq!(c.consistenza_unit(), *unit, "{input}");
            }
        }
        assert!(!Categoria::parse("F/2").unwrap().has_rendita());
        assert!(Categoria::parse("E/7").unwrap().has_rendita());
    }

    fn good_unit() -> pb::CadastralUnit {
        pb::CadastralUnit {
            istat_code: "082053".into(),
            foglio: "45".into(),
            particella: "1203".into(),
            subalterno: "12".into(),
            categoria: "A/2".into(),
            classe: "3".into(),
            consistenza: 5.5,
            rendita: Some(Money { cents: 71_013 }),
            surface_sqm: 110,
            surface_excluding_uncovered_sqm: 102,
            owners: vec![
                pb::CadastralOwnership {
                    fiscal_code: "RCCMNL83S18D969H".into(),
                    name: "Rocca Emanuele".into(),
                    right: pb::OwnershipRight::Proprieta as i32,
                    share_numerator: 1,
                    share_denominator: 2,
                    start_date: "2010-05-14".into(),
                    end_date: String::new(),
                },
                pb::CadastralOwnership {
                    fiscal_code: "CNTCHR83T41D969D".into(),
                    name: "Conti Chiara".into(),
                    right: pb::OwnershipRight::Proprieta as i32,
                    share_numerator: 500,
                    share_denominator: 1000,
                    start_date: "2010-05-14".into(),
                    end_date: String::new(),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_unit_passes_with_derived_fields() {
        let u = validate_unit(&good_unit(), "unit").unwrap();
        assert_eq!(u.belfiore_code, "G273");
        assert_eq!(u.register, pb::CadastralRegister::Fabbricati as i32);
        assert_eq!(u.consistenza_unit, pb::ConsistenzaUnit::Vani as i32);
        assert_eq!(u.owners.len(), 2);
    }

    #[test]
    fn unit_violations_name_their_field() {
        type Edit = fn(&mut pb::CadastralUnit);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "bad comune",
                |u| u.istat_code = "082999".into(),
                "unit.istat_code",
            ),
            (
                "wrong belfiore",
                |u| u.belfiore_code = "A001".into(),
                "unit.belfiore_code",
            ),
            ("no foglio", |u| u.foglio = " ".into(), "unit.foglio"),
            (
                "bad particella",
                |u| u.particella = "12/3".into(),
                "unit.particella",
            ),
            (
                "bad categoria",
                |u| u.categoria = "A/13".into(),
                "unit.categoria",
            ),
            ("no rendita", |u| u.rendita = None, "unit.rendita.cents"),
            (
                "negative rendita",
                |u| u.rendita = Some(Money { cents: -1 }),
                "unit.rendita.cents",
            ),
            (
                "F with rendita",
                |u| {
                    u.categoria = "F/3".into();
                    u.consistenza = 0.0;
                },
                "unit.rendita.cents",
            ),
            (
                "D with consistenza",
                |u| u.categoria = "D/8".into(),
                "unit.consistenza",
            ),
            (
                "wrong unit",
                |u| u.consistenza_unit = pb::ConsistenzaUnit::SquareMetres as i32,
                "unit.consistenza_unit",
            ),
            (
                "land with categoria",
                |u| u.register = pb::CadastralRegister::Terreni as i32,
                "unit.categoria",
            ),
            (
                "uncovered > total",
                |u| u.surface_excluding_uncovered_sqm = 200,
                "unit.surface_excluding_uncovered_sqm",
            ),
            (
                "bad end",
                |u| {
                    u.start_date = "2020-01-02".into();
                    u.end_date = "2020-01-01".into();
                },
                "unit.end_date",
            ),
            (
                "bad owner code",
                |u| u.owners[0].fiscal_code = "RCCMNL83S18D969A".into(),
                "unit.owners[0].fiscal_code",
            ),
            (
                "no owner right",
                |u| u.owners[1].right = 0,
                "unit.owners[1].right",
            ),
            (
                "share over whole",
                |u| u.owners[0].share_numerator = 3,
                "unit.owners[0].share_numerator",
            ),
            (
                "shares over whole",
                |u| u.owners[0].share_numerator = 2,
                "unit.owners",
            ),
            (
                "no owner start",
                |u| u.owners[0].start_date.clear(),
                "unit.owners[0].start_date",
            ),
            (
                "bad geo",
                |u| {
                    u.geo = Some(patto_proto::common::v1::GeoPoint {
                        latitude: 91.0,
                        longitude: 0.0,
                    })
                },
                "unit.geo",
            ),
        ];
        for (case, edit, field) in cases {
            let mut u = good_unit();
            edit(&mut u);
            let v = validate_unit(&u, "unit").expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    #[test]
    fn ended_holders_do_not_count_towards_the_whole() {
        let mut u = good_unit();
        u.owners[0].end_date = "2015-01-01".into();
        u.owners.push(pb::CadastralOwnership {
            end_date: String::new(),
            start_date: "2015-01-02".into(),
            ..u.owners[0].clone()
        });
        assert!(validate_unit(&u, "unit").is_ok());
    }

    #[test]
    fn land_parcels() {
        let land = pb::CadastralUnit {
            istat_code: "082001".into(),
            register: pb::CadastralRegister::Terreni as i32,
            foglio: "3".into(),
            particella: "77".into(),
            qualita: "uliveto".into(),
            classe: "2".into(),
            reddito_dominicale: Some(Money { cents: 4_512 }),
            reddito_agrario: Some(Money { cents: 2_130 }),
            surface_sqm: 8_450,
            ..Default::default()
        };
        let u = validate_unit(&land, "unit").unwrap();
        assert_eq!((u.qualita.as_str(), u.categoria.as_str()), ("ULIVETO", ""));
    }

    #[test]
    fn natural_order_and_windows() {
        assert!(sort_key("", "9", "1", "") < sort_key("", "10", "1", ""));
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(holding_window(0, today), Some((today, today)));
        let (from, to) = holding_window(2025, today).unwrap();
        assert_eq!(
            (from.to_string(), to.to_string()),
            ("2025-01-01".into(), "2025-12-31".into())
        );
        let o = NewOwnership {
            fiscal_code: "X".into(),
            name: "X".into(),
            right: 1,
            share_numerator: 1,
            share_denominator: 1,
            start_date: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
            end_date: None,
        };
        assert!(o.held_between(from, to));
        assert!(!o.held_between(
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()
        ));
    }
}
