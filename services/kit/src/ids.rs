//! National identifiers, validated in one place for every service: codice fiscale (check character
//! and omocodia), partita IVA, ISTAT comune code.

/// Why a codice fiscale is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FiscalCodeError {
    /// Not 16 characters.
    #[error("must be 16 characters, e.g. RSSMRA80A01G273M")]
    Length,
    /// A character does not fit its position (letters, digits or their omocodia letters).
    #[error("character {0} does not fit the codice fiscale pattern")]
    Pattern(usize),
    /// The month letter is not one of ABCDEHLMPRST.
    #[error("the month letter (9th character) must be one of ABCDEHLMPRST")]
    Month,
    /// Day of birth outside 1–31 (men) or 41–71 (women).
    #[error("the day of birth (10th–11th characters) must be 01–31, or 41–71 for women")]
    Day,
    /// The check character does not match.
    #[error("the check character (16th) should be {0}")]
    Check(char),
}

const ODD: [u8; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];
const MONTHS: &[u8] = b"ABCDEHLMPRST";
const OMOCODIA: &[u8] = b"LMNPQRSTUV";
/// Positions (0-based) that hold digits, possibly replaced by omocodia letters.
const DIGIT_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// The check character of the first 15 characters of a codice fiscale (uppercase ASCII expected).
pub fn fiscal_code_check_char(first15: &[u8]) -> char {
    let sum: u32 = first15
        .iter()
        .take(15)
        .enumerate()
        .map(|(i, &c)| {
            let v = if c.is_ascii_digit() {
                c - b'0'
            } else {
                c.wrapping_sub(b'A')
            };
            // Positions 1, 3, … (1-based) are odd: index 0, 2, … here.
            if i % 2 == 0 {
                let idx = if c.is_ascii_digit() {
                    (c - b'0') as usize
                } else {
                    v as usize
                };
                u32::from(ODD.get(idx).copied().unwrap_or(0))
            } else {
                u32::from(v)
            }
        })
        .sum();
    char::from(b'A' + (sum % 26) as u8)
}

/// Validates a codice fiscale and returns its canonical form: uppercase, omocodia letters turned
/// back into digits, check character recomputed. Omocodic variants of one person share the form.
pub fn canonical_fiscal_code(input: &str) -> Result<String, FiscalCodeError> {
    let code: Vec<u8> = input
        .trim()
        .bytes()
        .map(|b| b.to_ascii_uppercase())
        .collect();
    if code.len() != 16 {
        return Err(FiscalCodeError::Length);
    }
    for (i, &c) in code.iter().enumerate() {
        let ok = if DIGIT_POSITIONS.contains(&i) {
            c.is_ascii_digit() || OMOCODIA.contains(&c)
        } else {
            c.is_ascii_uppercase()
        };
        if !ok {
            return Err(FiscalCodeError::Pattern(i + 1));
        }
    }
    if !MONTHS.contains(&code[8]) {
        return Err(FiscalCodeError::Month);
    }
    let expected = fiscal_code_check_char(&code[..15]);
    if char::from(code[15]) != expected {
        return Err(FiscalCodeError::Check(expected));
    }
    let mut canonical = code.clone();
    for &i in &DIGIT_POSITIONS {
        if let Some(p) = OMOCODIA.iter().position(|&l| l == canonical[i]) {
            canonical[i] = b'0' + p as u8;
        }
    }
    let day = (canonical[9] - b'0') * 10 + (canonical[10] - b'0');
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
        return Err(FiscalCodeError::Day);
    }
    canonical[15] = fiscal_code_check_char(&canonical[..15]) as u8;
    Ok(String::from_utf8_lossy(&canonical).into_owned())
}

/// Builds a valid codice fiscale from its 15 leading characters (demo data, tests).
pub fn fiscal_code_with_check(first15: &str) -> String {
    let upper = first15.to_ascii_uppercase();
    let check = fiscal_code_check_char(upper.as_bytes());
    format!("{upper}{check}")
}

fn letters(s: &str) -> (Vec<u8>, Vec<u8>) {
    let up: Vec<u8> = s
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let vowels: Vec<u8> = up
        .iter()
        .copied()
        .filter(|b| b"AEIOU".contains(b))
        .collect();
    let consonants: Vec<u8> = up.into_iter().filter(|b| !b"AEIOU".contains(b)).collect();
    (consonants, vowels)
}

fn three(mut chars: Vec<u8>) -> String {
    chars.extend_from_slice(b"XXX");
    String::from_utf8_lossy(&chars[..3]).into_owned()
}

/// Builds the codice fiscale of a person born in Italy (the comune's Belfiore code) or abroad
/// (`Z` + 3 digits), by the rules of DM 12/3/1974: surname and name letters, date, sex, place, check.
pub fn build_fiscal_code(
    family_name: &str,
    given_name: &str,
    birth: chrono::NaiveDate,
    female: bool,
    belfiore: &str,
) -> String {
    use chrono::Datelike;
    let (sc, sv) = letters(family_name);
    let surname = three([sc, sv].concat());
    let (nc, nv) = letters(given_name);
    let name = if nc.len() >= 4 {
        three(vec![nc[0], nc[2], nc[3]])
    } else {
        three([nc, nv].concat())
    };
    let month = char::from(MONTHS[birth.month0() as usize]);
    let day = birth.day() + if female { 40 } else { 0 };
    fiscal_code_with_check(&format!(
        "{surname}{name}{:02}{month}{day:02}{}",
        birth.year() % 100,
        belfiore.to_ascii_uppercase()
    ))
}

/// Why a partita IVA is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PartitaIvaError {
    /// Not 11 digits.
    #[error("must be 11 digits")]
    Format,
    /// The check digit does not match.
    #[error("the check digit (11th) should be {0}")]
    Check(u8),
}

/// Validates an 11-digit partita IVA (also the codice fiscale of companies and public bodies).
pub fn validate_partita_iva(input: &str) -> Result<(), PartitaIvaError> {
    let digits: Vec<u8> = input.trim().bytes().collect();
    if digits.len() != 11 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(PartitaIvaError::Format);
    }
    let sum: u32 = digits[..10]
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let d = u32::from(c - b'0');
            if i % 2 == 0 {
                d
            } else if d * 2 > 9 {
                d * 2 - 9
            } else {
                d * 2
            }
        })
        .sum();
    let check = ((10 - sum % 10) % 10) as u8;
    if digits[10] - b'0' == check {
        Ok(())
    } else {
        Err(PartitaIvaError::Check(check))
    }
}

/// True when `code` is the ISTAT code of one of the 82 comuni.
pub fn is_known_istat_code(code: &str) -> bool {
    crate::comuni::by_istat(code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fiscal_codes() {
        let cases: &[(&str, Result<&str, FiscalCodeError>)] = &[
            ("RCCMNL83S18D969H", Ok("RCCMNL83S18D969H")),
            ("CNTCHR83T41D969D", Ok("CNTCHR83T41D969D")),
            ("rccmnl83s18d969h", Ok("RCCMNL83S18D969H")),
            // Omocodia: the variant maps back to the canonical code.
            ("RCCMNL83S18D96VW", Ok("RCCMNL83S18D969H")),
            ("RCCMNL83S18D969A", Err(FiscalCodeError::Check('H'))),
            ("RCCMNL83S18D969", Err(FiscalCodeError::Length)),
            ("RCCMNL83Z18D969H", Err(FiscalCodeError::Month)),
            ("RCCMN183S18D969H", Err(FiscalCodeError::Pattern(6))),
            ("RCCMNL83S1AD969H", Err(FiscalCodeError::Pattern(11))),
        ];
        for (input, expected) in cases {
            assert_eq!(
                canonical_fiscal_code(input).as_deref(),
                expected.as_deref(),
                "{input}"
            );
        }
    }

    #[test]
    fn bad_days_are_refused() {
        let code = fiscal_code_with_check("RSSMRA80A35G273");
        assert_eq!(canonical_fiscal_code(&code), Err(FiscalCodeError::Day));
    }

    #[test]
    fn built_codes_validate() {
        let code = fiscal_code_with_check("RSSMRA80A01G273");
        assert_eq!(canonical_fiscal_code(&code).unwrap(), code);
    }

    #[test]
    fn codes_are_built_by_the_rules() {
        let d = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        // Surname consonants then vowels; a name with 4+ consonants takes the 1st, 3rd and 4th.
        assert_eq!(
            &build_fiscal_code("Rossi", "Mario", d(1980, 1, 1), false, "G273")[..15],
            "RSSMRA80A01G273"
        );
        assert_eq!(
            &build_fiscal_code("Fo", "Gianfranco", d(1983, 11, 18), false, "D969")[..15],
            "FOXGFR83S18D969"
        );
        assert_eq!(
            &build_fiscal_code("Conti", "Chiara", d(1983, 12, 1), true, "D969")[..15],
            "CNTCHR83T41D969"
        );
        let cf = build_fiscal_code("Conti", "Chiara", d(1983, 12, 1), true, "D969");
        assert_eq!(cf, "CNTCHR83T41D969D");
    }

    #[test]
    fn partite_iva() {
        assert_eq!(validate_partita_iva("00743110157"), Ok(()));
        assert_eq!(
            validate_partita_iva("00743110158"),
            Err(PartitaIvaError::Check(7))
        );
        assert_eq!(
            validate_partita_iva("0074311015"),
            Err(PartitaIvaError::Format)
        );
        assert_eq!(
            validate_partita_iva("0074311015A"),
            Err(PartitaIvaError::Format)
        );
    }

    #[test]
    fn istat_codes() {
        assert!(is_known_istat_code("082053"));
        assert!(!is_known_istat_code("082000"));
        assert!(!is_known_istat_code("82053"));
    }
}
