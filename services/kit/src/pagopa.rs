//! pagoPA identifiers, built and checked in one place for every service: the IUV (identificativo
//! univoco di versamento) and the numero avviso (NAV) printed on a notice, with their mod-93 check
//! digits, and the payload of the notice's QR code.
//!
//! Only the form with auxiliary digit `3` is produced or accepted: pagoPA's SACI specification says
//! the values 0, 1 and 2 "must no longer be used". With it:
//! - IUV = segregation code (2 digits) ‖ base (13 digits) ‖ check (2 digits): 17 digits;
//! - NAV = `3` ‖ IUV: 18 digits;
//! - check = (`3` ‖ segregation ‖ base) mod 93, written with two digits.

/// The auxiliary digit of every notice number (the only one pagoPA still admits).
pub const AUX_DIGIT: u8 = 3;
/// Digits of an IUV.
pub const IUV_LEN: usize = 17;
/// Digits of a notice number (NAV).
pub const NAV_LEN: usize = 18;
/// Digits of the IUV base, the part the creditor numbers freely.
pub const BASE_LEN: usize = 13;
/// Largest IUV base (13 digits).
pub const MAX_BASE: u64 = 9_999_999_999_999;

/// Why a pagoPA identifier is not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PagoPaError {
    /// The segregation code is not two digits.
    #[error("the segregation code must be 2 digits, e.g. 01")]
    Segregation,
    /// The base does not fit 13 digits.
    #[error("the IUV base must be at most 13 digits")]
    Base,
    /// Not 17 digits (IUV) or 18 digits (NAV).
    #[error("must be {0} digits")]
    Length(usize),
    /// The NAV does not start with the auxiliary digit 3.
    #[error("a notice number must start with the auxiliary digit 3 (0, 1 and 2 are retired)")]
    AuxDigit,
    /// The check digits do not match.
    #[error("the check digits (last two) should be {0:02}")]
    Check(u8),
}

/// The two check digits of an IUV with this segregation code and base: (`3` ‖ seg ‖ base) mod 93.
pub fn check_digits(segregation: u8, base: u64) -> u8 {
    // 3 ‖ seg(2) ‖ base(13) is 16 digits: below 4·10^15, well inside u64.
    let number = 3 * 10u64.pow(15) + u64::from(segregation) * 10u64.pow(13) + base;
    (number % 93) as u8
}

/// Builds the IUV for a creditor's segregation code and a base number it has not used before.
pub fn iuv(segregation: u8, base: u64) -> Result<String, PagoPaError> {
    if segregation > 99 {
        return Err(PagoPaError::Segregation);
    }
    if base > MAX_BASE {
        return Err(PagoPaError::Base);
    }
    Ok(format!(
        "{segregation:02}{base:013}{:02}",
        check_digits(segregation, base)
    ))
}

/// The notice number (NAV) of an IUV: the auxiliary digit followed by the IUV.
pub fn nav_of_iuv(iuv: &str) -> String {
    format!("{AUX_DIGIT}{iuv}")
}

/// The IUV inside a notice number: the NAV without its auxiliary digit.
pub fn iuv_of_nav(nav: &str) -> Result<String, PagoPaError> {
    validate_nav(nav)?;
    Ok(nav.trim()[1..].to_owned())
}

fn digits(input: &str, len: usize) -> Result<&str, PagoPaError> {
    let s = input.trim();
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s)
    } else {
        Err(PagoPaError::Length(len))
    }
}

/// Checks a 17-digit IUV (segregation code, base, check digits).
pub fn validate_iuv(input: &str) -> Result<(), PagoPaError> {
    let s = digits(input, IUV_LEN)?;
    // The slices are ASCII digits of known length, so the parses cannot fail; map them anyway.
    let segregation: u8 = s[..2].parse().map_err(|_| PagoPaError::Length(IUV_LEN))?;
    let base: u64 = s[2..15].parse().map_err(|_| PagoPaError::Length(IUV_LEN))?;
    let check: u8 = s[15..].parse().map_err(|_| PagoPaError::Length(IUV_LEN))?;
    let expected = check_digits(segregation, base);
    if check == expected {
        Ok(())
    } else {
        Err(PagoPaError::Check(expected))
    }
}

/// Checks an 18-digit notice number: auxiliary digit 3 followed by a valid IUV.
pub fn validate_nav(input: &str) -> Result<(), PagoPaError> {
    let s = digits(input, NAV_LEN)?;
    if !s.starts_with('3') {
        return Err(PagoPaError::AuxDigit);
    }
    validate_iuv(&s[1..])
}

/// The content of a notice's QR code: `PAGOPA|002|<NAV>|<creditor CF>|<amount in cents>`.
pub fn qr_payload(nav: &str, creditor_fiscal_code: &str, amount_cents: i64) -> String {
    format!("PAGOPA|002|{nav}|{creditor_fiscal_code}|{amount_cents}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_table() {
        // (segregation, base, IUV, NAV); the first row is DOMAIN.md's vector, the others were
        // recomputed as int(3 ‖ seg ‖ base) mod 93.
        let cases = [
            (1, 123, "01000000000012373", "301000000000012373"),
            (0, 0, "00000000000000003", "300000000000000003"),
            (
                85,
                1_234_567_890_123,
                "85123456789012328",
                "385123456789012328",
            ),
            (
                45,
                9_999_999_999_999,
                "45999999999999975",
                "345999999999999975",
            ),
            (47, 1, "47000000000000124", "347000000000000124"),
        ];
        for (seg, base, want_iuv, want_nav) in cases {
            let iuv = iuv(seg, base).unwrap();
            assert_eq!(iuv, want_iuv, "seg {seg} base {base}");
            let nav = nav_of_iuv(&iuv);
            assert_eq!(nav, want_nav);
            assert_eq!(validate_iuv(&iuv), Ok(()));
            assert_eq!(validate_nav(&nav), Ok(()));
            assert_eq!(iuv_of_nav(&nav).unwrap(), iuv);
        }
    }

    #[test]
    fn bad_identifiers_say_why() {
        let cases: &[(&str, Result<(), PagoPaError>)] = &[
            ("301000000000012373", Ok(())),
            ("301000000000012374", Err(PagoPaError::Check(73))),
            ("201000000000012373", Err(PagoPaError::AuxDigit)),
            ("30100000000001237", Err(PagoPaError::Length(18))),
            ("30100000000001237X", Err(PagoPaError::Length(18))),
            ("", Err(PagoPaError::Length(18))),
        ];
        for (nav, want) in cases {
            assert_eq!(validate_nav(nav), *want, "{nav}");
        }
        assert_eq!(
            validate_iuv("01000000000012372"),
            Err(PagoPaError::Check(73))
        );
        assert_eq!(
            validate_iuv("0100000000001237"),
            Err(PagoPaError::Length(17))
        );
        assert_eq!(iuv(100, 1), Err(PagoPaError::Segregation));
        assert_eq!(iuv(1, MAX_BASE + 1), Err(PagoPaError::Base));
    }

    #[test]
    fn qr_payload_follows_the_avviso_format() {
        assert_eq!(
            qr_payload("301000000000012373", "80016350821", 12_345),
            "PAGOPA|002|301000000000012373|80016350821|12345"
        );
    }
}
