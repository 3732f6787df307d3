//! Public-procurement identifiers, validated in one place for every service (DOMAIN.md §12): the
//! CIG (ANAC tender code, with its check characters) and the CUP (DIPE project code, format only).
//!
//! The CIG check follows the AgID PEPPOL rule `AGID-PEPPOL-T01-CIG`, recomputed on real CIGs:
//! - ordinary CIG: `NNNNNNN` (7 decimal digits) + `KKK` (3 hex digits), `KKK = hex((N × 211) mod 4091)`;
//! - SmartCIG: `[XYZ]` + `KK` (2 hex digits) + `CCCCCCC` (7 hex digits), `KK = hex((C × 211) mod 251)`.
//!
//! The CUP has no public check-digit algorithm: only its shape `^[A-Z]\d{2}[A-Z]\d{11}$` is checked,
//! and its 5th–6th characters give the year of the investment decision. Whether a CUP exists is
//! for OpenCUP to say, not for us.

/// Multiplier of both CIG check computations.
const CIG_FACTOR: u64 = 211;
/// Modulus of the ordinary CIG check.
const ORDINARY_MODULUS: u64 = 4091;
/// Modulus of the SmartCIG check.
const SMART_MODULUS: u64 = 251;
/// First letters of a SmartCIG.
const SMART_PREFIXES: &[u8] = b"XYZ";

/// The two families of CIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CigKind {
    /// Ordinary CIG: 7 decimal digits and 3 hex check digits, e.g. `8874674CA7`.
    Ordinary,
    /// SmartCIG (simplified CIG for small contracts, no longer issued since 1/1/2024): `X`, `Y` or
    /// `Z`, 2 hex check digits and 7 hex digits, e.g. `Z063947806`.
    Smart,
}

/// A valid CIG in canonical (uppercase) form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cig {
    /// The 10 characters, uppercase.
    pub code: String,
    /// Ordinary or SmartCIG.
    pub kind: CigKind,
}

/// Why a CIG is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CigError {
    /// Not 10 characters.
    #[error("must be 10 characters, e.g. 8874674CA7 or Z063947806")]
    Length,
    /// Neither 7 digits + 3 hex digits nor X/Y/Z + 9 hex digits.
    #[error(
        "must be 7 digits and 3 hexadecimal check characters (ordinary CIG) or X, Y or Z and 9 hexadecimal characters (SmartCIG)"
    )]
    Pattern,
    /// The check characters do not match the rest.
    #[error("the check characters should be {expected}")]
    Check {
        /// The check characters the rest of the code calls for.
        expected: String,
    },
}

/// Validates a CIG and returns its canonical form (trimmed, uppercase).
pub fn parse_cig(input: &str) -> Result<Cig, CigError> {
    let code = input.trim().to_ascii_uppercase();
    let bytes = code.as_bytes();
    if bytes.len() != 10 {
        return Err(CigError::Length);
    }
    let is_hex = |b: &u8| b.is_ascii_digit() || (b'A'..=b'F').contains(b);
    if bytes[..7].iter().all(u8::is_ascii_digit) && bytes[7..].iter().all(is_hex) {
        let n = decimal(&bytes[..7]);
        let expected = ordinary_check(n);
        return if code[7..] == expected {
            Ok(Cig {
                code,
                kind: CigKind::Ordinary,
            })
        } else {
            Err(CigError::Check { expected })
        };
    }
    if SMART_PREFIXES.contains(&bytes[0]) && bytes[1..].iter().all(is_hex) {
        let c = hexadecimal(&bytes[3..]);
        let expected = smart_check(c);
        return if code[1..3] == expected {
            Ok(Cig {
                code,
                kind: CigKind::Smart,
            })
        } else {
            Err(CigError::Check { expected })
        };
    }
    Err(CigError::Pattern)
}

/// The ordinary CIG of progressive number `n` (0 to 9,999,999), check characters included; `None`
/// when `n` has more than 7 digits. For demo data and tests.
pub fn ordinary_cig(n: u32) -> Option<String> {
    (n <= 9_999_999).then(|| format!("{n:07}{}", ordinary_check(u64::from(n))))
}

/// The SmartCIG with first letter `prefix` (`X`, `Y` or `Z`) and number `c` (at most 7 hex digits),
/// check characters included; `None` when either is out of range. For demo data and tests.
pub fn smart_cig(prefix: char, c: u32) -> Option<String> {
    let valid_prefix = u8::try_from(prefix)
        .ok()
        .is_some_and(|p| SMART_PREFIXES.contains(&p.to_ascii_uppercase()));
    (valid_prefix && c <= 0x0FFF_FFFF).then(|| {
        format!(
            "{}{}{c:07X}",
            prefix.to_ascii_uppercase(),
            smart_check(u64::from(c))
        )
    })
}

fn ordinary_check(n: u64) -> String {
    format!("{:03X}", n * CIG_FACTOR % ORDINARY_MODULUS)
}

fn smart_check(c: u64) -> String {
    format!("{:02X}", c * CIG_FACTOR % SMART_MODULUS)
}

/// The value of ASCII decimal digits (already checked).
fn decimal(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0, |acc, d| acc * 10 + u64::from(d - b'0'))
}

/// The value of uppercase ASCII hex digits (already checked).
fn hexadecimal(digits: &[u8]) -> u64 {
    digits.iter().fold(0, |acc, d| {
        let v = if d.is_ascii_digit() {
            d - b'0'
        } else {
            d - b'A' + 10
        };
        acc * 16 + u64::from(v)
    })
}

/// A CUP in canonical (uppercase) form, with the year it encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cup {
    /// The 15 characters, uppercase.
    pub code: String,
    /// Year of the investment decision (characters 5–6, `ANNO_DECISIONE` in OpenCUP), e.g. 2022.
    pub year: i32,
}

/// Why a CUP is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CupError {
    /// Not 15 characters.
    #[error("must be 15 characters, e.g. J87G22000360002")]
    Length,
    /// A character does not fit its position (letter, 2 digits, letter, 11 digits).
    #[error(
        "character {0} does not fit the CUP pattern: a letter, 2 digits, a letter and 11 digits"
    )]
    Pattern(usize),
}

/// Validates the shape of a CUP and returns its canonical form and year.
pub fn parse_cup(input: &str) -> Result<Cup, CupError> {
    let code = input.trim().to_ascii_uppercase();
    let bytes = code.as_bytes();
    if bytes.len() != 15 {
        return Err(CupError::Length);
    }
    for (i, b) in bytes.iter().enumerate() {
        let ok = if i == 0 || i == 3 {
            b.is_ascii_uppercase()
        } else {
            b.is_ascii_digit()
        };
        if !ok {
            return Err(CupError::Pattern(i + 1));
        }
    }
    // CUPs exist since 2003 (L. 3/2003 art. 11): two digits always mean 20YY.
    let year = 2000 + i32::from(bytes[4] - b'0') * 10 + i32::from(bytes[5] - b'0');
    Ok(Cup { code, year })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cig_vectors() {
        let check = |expected: &str| {
            Err(CigError::Check {
                expected: expected.into(),
            })
        };
        let cases: &[(&str, Result<CigKind, CigError>)] = &[
            // DOMAIN.md §12, recomputed on real codes.
            ("8874674CA7", Ok(CigKind::Ordinary)),
            ("Z063947806", Ok(CigKind::Smart)),
            // Canonical form: trimmed and uppercase.
            (" 8874674ca7 ", Ok(CigKind::Ordinary)),
            ("z063947806", Ok(CigKind::Smart)),
            // Smallest and largest ordinary numbers.
            ("0000000000", Ok(CigKind::Ordinary)),
            ("999999943B", Ok(CigKind::Ordinary)),
            // Wrong check characters.
            ("8874674CA8", check("CA7")),
            ("8874675CA7", check("D7A")),
            ("Z073947806", check("06")),
            ("Z063947807", check("D9")),
            // Wrong shapes.
            ("8874674CA", Err(CigError::Length)),
            ("8874674CA71", Err(CigError::Length)),
            ("", Err(CigError::Length)),
            ("887467ACA7", Err(CigError::Pattern)),
            ("8874674CG7", Err(CigError::Pattern)),
            ("W063947806", Err(CigError::Pattern)),
            ("Z06394780G", Err(CigError::Pattern)),
            // An exclusion code (e-invoicing) is not a CIG.
            ("ES01000000", Err(CigError::Pattern)),
            // Multi-byte input of 10 bytes is not a panic.
            ("8874674CÀ", Err(CigError::Pattern)),
        ];
        for (input, expected) in cases {
            let got = parse_cig(input);
            assert_eq!(
                got.as_ref().map(|c| c.kind),
                expected.as_ref().copied(),
                "{input:?}"
            );
            if let Ok(cig) = got {
                assert_eq!(cig.code, input.trim().to_ascii_uppercase());
            }
        }
    }

    #[test]
    fn the_check_vectors_recompute() {
        assert_eq!(8_874_674u64 * 211 % 4091, 0xCA7);
        assert_eq!(0x394_7806u64 * 211 % 251, 0x06);
    }

    #[test]
    fn built_cigs_validate() {
        assert_eq!(ordinary_cig(8_874_674).as_deref(), Some("8874674CA7"));
        assert_eq!(smart_cig('Z', 0x394_7806).as_deref(), Some("Z063947806"));
        assert_eq!(ordinary_cig(10_000_000), None);
        assert_eq!(smart_cig('W', 1), None);
        assert_eq!(smart_cig('Z', 0x1000_0000), None);
        for n in (0..10_000_000).step_by(99_991) {
            let code = ordinary_cig(n).unwrap();
            assert_eq!(parse_cig(&code).unwrap().kind, CigKind::Ordinary, "{code}");
        }
        for (i, c) in (0..0x0FFF_FFFFu32).step_by(0x0F_FFFD).enumerate() {
            let prefix = ['X', 'Y', 'z'][i % 3];
            let code = smart_cig(prefix, c).unwrap();
            assert_eq!(parse_cig(&code).unwrap().kind, CigKind::Smart, "{code}");
        }
    }

    #[test]
    fn cup_vectors() {
        let cases: &[(&str, Result<i32, CupError>)] = &[
            ("J87G22000360002", Ok(2022)),
            ("G17H03000130001", Ok(2003)),
            ("j87g22000360002", Ok(2022)),
            (" D71B19000020006 ", Ok(2019)),
            ("J87G2200036000", Err(CupError::Length)),
            ("J87G220003600021", Err(CupError::Length)),
            ("", Err(CupError::Length)),
            ("187G22000360002", Err(CupError::Pattern(1))),
            ("JA7G22000360002", Err(CupError::Pattern(2))),
            ("J87722000360002", Err(CupError::Pattern(4))),
            ("J87G2X000360002", Err(CupError::Pattern(6))),
            ("J87G22000360 02", Err(CupError::Pattern(13))),
            ("J87G220003600À", Err(CupError::Pattern(14))),
        ];
        for (input, expected) in cases {
            let got = parse_cup(input);
            assert_eq!(
                got.as_ref().map(|c| c.year),
                expected.as_ref().copied(),
                "{input:?}"
            );
            if let Ok(cup) = got {
                assert_eq!(cup.code, input.trim().to_ascii_uppercase());
            }
        }
    }
}
