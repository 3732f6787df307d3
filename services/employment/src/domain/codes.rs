//! The national classifications offers and courses are coded with (DOMAIN.md §10):
//!
//! - **ISTAT CP2021** professions: five levels, `grande gruppo.gruppo.classe.categoria.unità`, one
//!   digit each, e.g. `2.1.1.4.1`. Grandi gruppi run 1–9; the unit digit is 0 when a category has a
//!   single unit. Offers name a full unit; courses and searches may name any level, which covers
//!   everything below it.
//! - **ATECO 2025** activities (the Italian NACE Rev. 2.1): `AA.BB.CC`, whose two-digit division
//!   places it in one of the sections A–V. NACE Rev. 2.1 dropped division 45 (motor trade went to
//!   46–47, repairs to 95) and opened section K (61–63), so ATECO 2007 codes of division 45 are
//!   refused with that reason.
//! - **EQF** levels 1–8 (0 where no levelled qualification applies).
//!
//! Formats are checked exactly. Names: the service embeds the CP2021 units the comuni publish most
//! (hospitality, retail, care, building, agriculture, offices, ICT) and the nine grandi gruppi; a
//! well-formed unit outside that table is accepted and named after its grande gruppo, until the full
//! ISTAT table (813 units) is loaded as reference data.

/// Highest EQF level.
pub const MAX_EQF_LEVEL: i32 = 8;

/// The nine CP2021 grandi gruppi.
const GRANDI_GRUPPI: [&str; 9] = [
    "Legislatori, imprenditori e alta dirigenza",
    "Professioni intellettuali, scientifiche e di elevata specializzazione",
    "Professioni tecniche",
    "Professioni esecutive nel lavoro d'ufficio",
    "Professioni qualificate nelle attività commerciali e nei servizi",
    "Artigiani, operai specializzati e agricoltori",
    "Conduttori di impianti, operai di macchinari fissi e mobili e conducenti di veicoli",
    "Professioni non qualificate",
    "Forze armate",
];

/// CP2021 units the service names, by code.
pub const PROFESSIONS: &[(&str, &str)] = &[
    ("2.1.1.4.1", "Geologi"),
    ("2.2.1.6.1", "Ingegneri edili e ambientali"),
    ("2.2.2.1.1", "Architetti"),
    ("2.4.1.1.0", "Medici generici"),
    ("2.5.1.3.1", "Specialisti in risorse umane"),
    ("2.5.1.4.1", "Specialisti in contabilità"),
    ("2.6.4.1.0", "Docenti di scuola primaria"),
    (
        "2.6.5.3.1",
        "Docenti della formazione e dell'aggiornamento professionale",
    ),
    ("2.7.1.1.1", "Analisti e progettisti di software"),
    ("2.7.2.1.3", "Amministratori di sistemi"),
    ("3.1.2.1.0", "Tecnici programmatori"),
    ("3.1.2.3.0", "Tecnici web"),
    (
        "3.1.3.5.0",
        "Tecnici delle costruzioni civili e professioni assimilate",
    ),
    ("3.1.5.2.0", "Tecnici della gestione di cantieri edili"),
    ("3.1.8.2.0", "Tecnici della sicurezza sul lavoro"),
    ("3.2.1.1.1", "Professioni sanitarie infermieristiche"),
    ("3.2.1.2.2", "Fisioterapisti e assimilati"),
    ("3.2.1.2.7", "Educatori professionali"),
    ("3.2.2.1.1", "Tecnici agronomi"),
    ("3.3.1.2.1", "Contabili"),
    (
        "3.3.3.2.0",
        "Responsabili di magazzino e della distribuzione interna",
    ),
    ("3.3.3.5.0", "Tecnici del marketing"),
    (
        "3.4.1.1.0",
        "Tecnici delle attività ricettive e professioni assimilate",
    ),
    ("3.4.1.3.0", "Animatori turistici e professioni assimilate"),
    ("3.4.1.5.2", "Guide turistiche"),
    (
        "3.4.2.4.0",
        "Istruttori di discipline sportive non agonistiche",
    ),
    ("3.4.4.1.1", "Grafici"),
    ("3.4.5.1.0", "Assistenti sociali"),
    ("3.4.5.3.0", "Tecnici dei servizi per l'impiego"),
    ("4.1.1.1.0", "Addetti a funzioni di segreteria"),
    ("4.1.1.2.0", "Addetti agli affari generali"),
    (
        "4.2.2.1.0",
        "Addetti all'accoglienza e all'informazione nelle imprese e negli enti pubblici",
    ),
    (
        "4.2.2.2.0",
        "Addetti all'accoglienza nei servizi di alloggio e ristorazione",
    ),
    (
        "4.3.1.2.0",
        "Addetti alla gestione dei magazzini e professioni assimilate",
    ),
    ("4.3.2.1.0", "Addetti alla contabilità"),
    ("5.1.2.2.0", "Commessi delle vendite al minuto"),
    ("5.1.2.4.0", "Cassieri di esercizi commerciali"),
    ("5.2.2.1.0", "Cuochi in alberghi e ristoranti"),
    ("5.2.2.3.1", "Camerieri di albergo"),
    ("5.2.2.3.2", "Camerieri di ristorante"),
    ("5.2.2.4.0", "Baristi e professioni assimilate"),
    (
        "5.3.1.1.0",
        "Professioni qualificate nei servizi sanitari e sociali",
    ),
    ("5.5.1.1.0", "Acconciatori"),
    ("5.5.1.2.0", "Estetisti e truccatori"),
    (
        "5.5.2.2.0",
        "Addetti alla sorveglianza di bambini e professioni assimilate",
    ),
    ("5.5.2.3.0", "Addetti all'assistenza personale"),
    ("5.6.1.6.0", "Guardie private di sicurezza"),
    ("5.6.1.7.0", "Bagnini e professioni assimilate"),
    ("6.1.2.1.0", "Muratori in pietra e mattoni"),
    ("6.1.2.3.0", "Carpentieri e falegnami edili"),
    ("6.1.3.6.1", "Idraulici nelle costruzioni civili"),
    (
        "6.1.3.7.0",
        "Elettricisti ed installatori di impianti elettrici nelle costruzioni civili",
    ),
    ("6.1.4.1.1", "Pittori edili"),
    ("6.2.1.2.0", "Saldatori e tagliatori a fiamma"),
    (
        "6.2.3.1.1",
        "Meccanici motoristi e riparatori di veicoli a motore",
    ),
    (
        "6.4.1.2.0",
        "Agricoltori e operai agricoli specializzati di coltivazioni legnose agrarie",
    ),
    (
        "6.4.5.2.0",
        "Pescatori della pesca costiera e in acque interne",
    ),
    ("6.5.1.2.1", "Panettieri"),
    ("6.5.1.3.1", "Pasticcieri e cioccolatai"),
    ("6.5.2.2.2", "Falegnami"),
    ("6.5.3.3.4", "Sarti"),
    ("7.4.2.2.0", "Conduttori di autobus, di tram e di filobus"),
    ("7.4.2.3.0", "Conduttori di mezzi pesanti e camion"),
    ("7.4.4.4.0", "Conduttori di carrelli elevatori"),
    (
        "8.1.3.1.0",
        "Facchini, addetti allo spostamento merci ed assimilati",
    ),
    (
        "8.1.4.3.0",
        "Personale non qualificato addetto ai servizi di pulizia di uffici ed esercizi commerciali",
    ),
    (
        "8.1.4.5.0",
        "Operatori ecologici e altri raccoglitori e separatori di rifiuti",
    ),
    (
        "8.2.2.1.0",
        "Collaboratori domestici e professioni assimilate",
    ),
    ("8.3.1.1.0", "Braccianti agricoli"),
];

/// Checks a CP2021 code at any level (`2`, `2.1`, … `2.1.1.4.1`) and returns its number of levels.
pub fn cp2021_levels(code: &str) -> Result<usize, String> {
    let parts: Vec<&str> = code.split('.').collect();
    if parts.len() > 5 {
        return Err(format!(
            "`{code}` has {} levels; CP2021 has 5, e.g. 2.1.1.4.1",
            parts.len()
        ));
    }
    for (i, part) in parts.iter().enumerate() {
        let ok = match part.as_bytes() {
            [d] if i == 0 => (b'1'..=b'9').contains(d),
            [d] if i == 4 => d.is_ascii_digit(),
            [d] => (b'1'..=b'9').contains(d),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "`{code}` is not a CP2021 code: one digit per level separated by dots, levels 1–4 \
                 from 1 to 9 and the unit from 0 to 9, e.g. 2.1.1.4.1"
            ));
        }
    }
    Ok(parts.len())
}

/// Checks a full CP2021 unit code (five levels), as a job offer names it.
pub fn validate_cp2021_unit(code: &str) -> Result<(), String> {
    match cp2021_levels(code)? {
        5 => Ok(()),
        n => Err(format!(
            "`{code}` is a CP2021 code of level {n}; an offer names the profession unit, all 5 \
             levels, e.g. 5.2.2.1.0"
        )),
    }
}

/// True when `code` is `prefix` or lies below it in CP2021 (`2.1` covers `2.1.1.4.1`).
pub fn cp2021_covers(prefix: &str, code: &str) -> bool {
    code == prefix
        || code
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The name of a CP2021 unit: its own when the service knows it, else its grande gruppo's.
pub fn profession_name(code: &str) -> String {
    if let Ok(i) = PROFESSIONS.binary_search_by(|(c, _)| (*c).cmp(code)) {
        return PROFESSIONS[i].1.to_owned();
    }
    let group = code
        .as_bytes()
        .first()
        .and_then(|d| d.checked_sub(b'1'))
        .and_then(|i| GRANDI_GRUPPI.get(usize::from(i)));
    match group {
        Some(name) => format!("{name} (unità {code})"),
        None => String::new(),
    }
}

/// The NACE Rev. 2.1 / ATECO 2025 section of a two-digit division, if the division exists.
pub fn ateco_section(division: u8) -> Option<char> {
    let section = match division {
        1..=3 => 'A',
        5..=9 => 'B',
        10..=33 => 'C',
        35 => 'D',
        36..=39 => 'E',
        41..=43 => 'F',
        46 | 47 => 'G',
        49..=53 => 'H',
        55 | 56 => 'I',
        58..=60 => 'J',
        61..=63 => 'K',
        64..=66 => 'L',
        68 => 'M',
        69..=75 => 'N',
        77..=82 => 'O',
        84 => 'P',
        85 => 'Q',
        86..=88 => 'R',
        90..=93 => 'S',
        94..=96 => 'T',
        97 | 98 => 'U',
        99 => 'V',
        _ => return None,
    };
    Some(section)
}

const ATECO_TEMPLATE: &[u8] = b"dd.dd.dd";

fn ateco_shape(code: &str) -> bool {
    code.len() <= ATECO_TEMPLATE.len()
        && code.bytes().zip(ATECO_TEMPLATE).all(|(c, t)| {
            if *t == b'd' {
                c.is_ascii_digit()
            } else {
                c == b'.'
            }
        })
}

fn ateco_division(code: &str) -> Result<char, String> {
    let division: u8 = code
        .get(..2)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| format!("`{code}` does not start with a two-digit division"))?;
    match ateco_section(division) {
        Some(section) => Ok(section),
        None if division == 45 => Err(format!(
            "`{code}`: division 45 does not exist in ATECO 2025 (NACE Rev. 2.1); the motor trade is \
             now in 46-47 and repairs in 95"
        )),
        None => Err(format!(
            "`{code}`: division {division:02} does not exist in ATECO 2025"
        )),
    }
}

/// Checks a full ATECO 2025 code `AA.BB.CC` and returns its section letter.
pub fn validate_ateco(code: &str) -> Result<char, String> {
    if code.len() != ATECO_TEMPLATE.len() || !ateco_shape(code) {
        return Err(format!(
            "`{code}` is not an ATECO 2025 code: AA.BB.CC, e.g. 62.10.00"
        ));
    }
    ateco_division(code)
}

/// Checks an ATECO 2025 prefix for searches: `56`, `56.1`, `56.10`, `56.10.1` or a full code.
pub fn validate_ateco_prefix(code: &str) -> Result<(), String> {
    if code.len() < 2 || code.ends_with('.') || !ateco_shape(code) {
        return Err(format!(
            "`{code}` is not an ATECO 2025 code or prefix, e.g. 56 or 56.10"
        ));
    }
    ateco_division(code).map(|_| ())
}

/// Checks an EQF level; `allow_none` admits 0 (no levelled qualification).
pub fn validate_eqf(level: i32, allow_none: bool) -> Result<(), String> {
    let low = if allow_none { 0 } else { 1 };
    if (low..=MAX_EQF_LEVEL).contains(&level) {
        Ok(())
    } else if allow_none {
        Err(format!(
            "must be an EQF level from 1 to {MAX_EQF_LEVEL}, or 0 for none"
        ))
    } else {
        Err(format!("must be an EQF level from 1 to {MAX_EQF_LEVEL}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp2021_codes() {
        let cases: &[(&str, Option<usize>)] = &[
            ("2", Some(1)),
            ("2.1", Some(2)),
            ("2.1.1", Some(3)),
            ("5.2.2.1", Some(4)),
            ("2.1.1.4.1", Some(5)),
            ("5.2.2.1.0", Some(5)),
            ("9.3.1.1.0", Some(5)),
            ("", None),
            ("0.1.1.1.1", None),
            ("2.0.1.1.1", None),
            ("2.1.1.4.1.1", None),
            ("2.1.1.4.", None),
            ("2..1", None),
            ("21.1.1.4.1", None),
            ("2.1.1.4.a", None),
            ("2-1-1-4-1", None),
            (" 2.1", None),
        ];
        for (code, levels) in cases {
            assert_eq!(cp2021_levels(code).ok(), *levels, "{code:?}");
        }
        assert!(validate_cp2021_unit("2.1.1.4.1").is_ok());
        let partial = validate_cp2021_unit("5.2.2").unwrap_err();
        assert!(partial.contains("level 3"), "{partial}");
    }

    #[test]
    fn cp2021_hierarchy() {
        let cases = [
            ("2.1", "2.1.1.4.1", true),
            ("2.1.1.4.1", "2.1.1.4.1", true),
            ("2", "2.1.1.4.1", true),
            ("2.1", "2.2.1.6.1", false),
            ("2.1", "2.11", false),
            ("5.2.2.1.0", "5.2.2", false),
        ];
        for (prefix, code, covered) in cases {
            assert_eq!(cp2021_covers(prefix, code), covered, "{prefix} ⊇ {code}");
        }
    }

    #[test]
    fn profession_names() {
        assert_eq!(profession_name("2.1.1.4.1"), "Geologi");
        assert_eq!(
            profession_name("5.2.2.1.0"),
            "Cuochi in alberghi e ristoranti"
        );
        assert_eq!(
            profession_name("3.1.1.2.0"),
            "Professioni tecniche (unità 3.1.1.2.0)"
        );
        assert_eq!(profession_name(""), "");
        // The table is sorted (binary search) and every entry is a valid unit.
        for pair in PROFESSIONS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, name) in PROFESSIONS {
            assert!(validate_cp2021_unit(code).is_ok(), "{code}");
            assert!(!name.is_empty());
        }
    }

    #[test]
    fn ateco_codes() {
        let cases: &[(&str, Option<char>)] = &[
            ("62.10.00", Some('K')),
            ("56.11.10", Some('I')),
            ("01.23.00", Some('A')),
            ("47.11.20", Some('G')),
            ("85.59.20", Some('Q')),
            ("99.00.00", Some('V')),
            ("45.20.00", None),
            ("04.00.00", None),
            ("62.10", None),
            ("62.10.0", None),
            ("62.10.000", None),
            ("6210.00", None),
            ("62-10-00", None),
            ("AB.10.00", None),
            ("", None),
        ];
        for (code, section) in cases {
            assert_eq!(validate_ateco(code).ok(), *section, "{code:?}");
        }
        assert!(validate_ateco("45.20.00").unwrap_err().contains("95"));
    }

    #[test]
    fn ateco_prefixes() {
        for ok in ["56", "56.1", "56.10", "56.10.1", "56.10.11"] {
            assert!(validate_ateco_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "5", "56.", "561", "56.10.", "45", "56.10.111", "x6"] {
            assert!(validate_ateco_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ateco_sections_cover_nace_2_1() {
        let divisions = (0..=99u8).filter(|d| ateco_section(*d).is_some()).count();
        // 87 divisions in NACE Rev. 2.1 (88 in Rev. 2, less 45).
        assert_eq!(divisions, 87);
        let sections: std::collections::BTreeSet<char> =
            (0..=99u8).filter_map(ateco_section).collect();
        assert_eq!(sections.len(), 22, "sections A to V");
    }

    #[test]
    fn eqf_levels() {
        let cases = [
            (0, true, true),
            (0, false, false),
            (1, false, true),
            (8, true, true),
            (9, true, false),
            (-1, true, false),
        ];
        for (level, none, ok) in cases {
            assert_eq!(validate_eqf(level, none).is_ok(), ok, "{level} {none}");
        }
    }
}
