//! SAL (stati di avanzamento lavori), their certificates and payments (D.Lgs 36/2023 art. 125 and
//! all. II.14): the deadlines, the late flags, and what makes a new SAL, certificate or payment
//! acceptable after the ones already recorded.
//!
//! The terms (certificate within 7 days of the SAL, payment within 30 days of the certificate) are
//! per-comune data with these defaults, because a contract may agree different terms within the
//! law. Due days are fixed when the SAL or the certificate is recorded, with the terms in force
//! then; the late flags are computed from the dates whenever a SAL is read.

use chrono::{Duration, NaiveDate};
use patto_service_kit::error::{ServiceError, Violations};

use super::{MAX_AMOUNT_CENTS, euro_decimal, iso_day};

/// Days from a SAL to its certificato di pagamento, unless the comune says otherwise.
pub const DEFAULT_CERTIFICATE_DAYS: i32 = 7;
/// Days from a certificate to the payment, unless the comune says otherwise.
pub const DEFAULT_PAYMENT_DAYS: i32 = 30;
/// Longest term a comune may set, in days (D.Lgs 231/2002 art. 4 allows at most 60 for public
/// bodies; twice that leaves room without letting a typo through).
pub const MAX_TERM_DAYS: i32 = 120;
/// Full progress, in basis points.
pub const FULL_PROGRESS: i32 = 10_000;

/// A comune's SAL terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SalTerms {
    /// Days from the SAL to the certificate.
    pub certificate_days: i32,
    /// Days from the certificate to the payment.
    pub payment_days: i32,
}

impl Default for SalTerms {
    fn default() -> Self {
        Self {
            certificate_days: DEFAULT_CERTIFICATE_DAYS,
            payment_days: DEFAULT_PAYMENT_DAYS,
        }
    }
}

impl SalTerms {
    /// Checks terms a comune sets.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let mut v = Violations::new();
        for (field, days) in [
            ("certificate_days", self.certificate_days),
            ("payment_days", self.payment_days),
        ] {
            v.check(
                (1..=MAX_TERM_DAYS).contains(&days),
                field,
                format!("must be from 1 to {MAX_TERM_DAYS} days"),
            );
        }
        v.into_result()
    }

    /// The day the certificate of a SAL adopted on `sal_date` is due.
    pub fn certificate_due(&self, sal_date: NaiveDate) -> NaiveDate {
        add_days(sal_date, self.certificate_days)
    }

    /// The day a certificate issued on `issued` is to be paid.
    pub fn payment_due(&self, issued: NaiveDate) -> NaiveDate {
        add_days(issued, self.payment_days)
    }
}

fn add_days(day: NaiveDate, days: i32) -> NaiveDate {
    day.checked_add_signed(Duration::days(i64::from(days)))
        .unwrap_or(NaiveDate::MAX)
}

/// A SAL with its certificate and payment, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sal {
    /// Number, from 1.
    pub number: i32,
    /// Day adopted.
    pub date: NaiveDate,
    /// Cumulative progress in basis points.
    pub progress_basis_points: i32,
    /// Amount of the works accounted, in cents.
    pub amount_cents: i64,
    /// Day the certificate is due.
    pub certificate_due: NaiveDate,
    /// The certificate, once issued: day and amount.
    pub certificate: Option<(NaiveDate, i64)>,
    /// Day payment is due, once the certificate is issued.
    pub payment_due: Option<NaiveDate>,
    /// The payment, once made: day and amount.
    pub payment: Option<(NaiveDate, i64)>,
}

/// Whether a SAL's certificate and payment are late.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lateness {
    /// The certificate was issued after its due day, or is still missing after it.
    pub certificate_late: bool,
    /// The payment came after its due day, or is still missing after it.
    pub payment_late: bool,
}

impl Lateness {
    /// Either is late.
    pub fn any(&self) -> bool {
        self.certificate_late || self.payment_late
    }
}

/// Late flags of `sal` on `today`. A payment cannot be late before its certificate exists: until
/// then it has no due day, and the lateness is the certificate's.
pub fn lateness(sal: &Sal, today: NaiveDate) -> Lateness {
    let late = |due: NaiveDate, done: Option<NaiveDate>| match done {
        Some(day) => day > due,
        None => today > due,
    };
    Lateness {
        certificate_late: late(sal.certificate_due, sal.certificate.map(|c| c.0)),
        payment_late: sal
            .payment_due
            .is_some_and(|due| late(due, sal.payment.map(|p| p.0))),
    }
}

/// A new SAL as asked for, its fields already parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSal {
    /// Day adopted.
    pub date: NaiveDate,
    /// Cumulative progress in basis points.
    pub progress_basis_points: i32,
    /// Amount in cents.
    pub amount_cents: i64,
}

/// Checks a new SAL against the work: `previous` is the last SAL recorded, `works_started` the day
/// the works entered IN_ESECUZIONE, `accounted_cents` the sum of the SAL so far and
/// `budget_cents` the work's budget. Field-level problems are INVALID_ARGUMENT naming `date`,
/// `progress_basis_points` or `amount`.
pub fn check_new_sal(
    new: &NewSal,
    previous: Option<&Sal>,
    works_started: Option<NaiveDate>,
    accounted_cents: i64,
    budget_cents: i64,
    today: NaiveDate,
) -> Result<(), ServiceError> {
    let mut v = Violations::new();
    v.check(new.date <= today, "date", "must not be in the future");
    if let Some(start) = works_started {
        v.check(
            new.date >= start,
            "date",
            format!("must not be before the works started ({})", iso_day(start)),
        );
    }
    if let Some(prev) = previous {
        v.check(
            new.date >= prev.date,
            "date",
            format!(
                "must not be before SAL {} ({})",
                prev.number,
                iso_day(prev.date)
            ),
        );
        v.check(
            new.progress_basis_points >= prev.progress_basis_points,
            "progress_basis_points",
            format!(
                "progress is cumulative: not below SAL {}'s {}",
                prev.number, prev.progress_basis_points
            ),
        );
    }
    v.check(
        (0..=FULL_PROGRESS).contains(&new.progress_basis_points),
        "progress_basis_points",
        format!("must be from 0 to {FULL_PROGRESS} (100 %)"),
    );
    v.check(
        (1..=MAX_AMOUNT_CENTS).contains(&new.amount_cents),
        "amount.cents",
        "must be more than zero",
    );
    let total = accounted_cents.saturating_add(new.amount_cents);
    v.check(
        total <= budget_cents,
        "amount.cents",
        format!(
            "the SAL would account € {} in all, more than the budget of € {}",
            euro_decimal(total),
            euro_decimal(budget_cents)
        ),
    );
    v.into_result()
}

/// Checks the certificate of `sal` issued on `issued` for `amount_cents`.
pub fn check_certificate(
    sal: &Sal,
    issued: NaiveDate,
    amount_cents: i64,
    today: NaiveDate,
) -> Result<(), ServiceError> {
    if let Some((day, _)) = sal.certificate {
        return Err(ServiceError::FailedPrecondition(format!(
            "the certificate of SAL {} was already issued on {}",
            sal.number,
            iso_day(day)
        )));
    }
    let mut v = Violations::new();
    v.check(issued <= today, "issued_date", "must not be in the future");
    v.check(
        issued >= sal.date,
        "issued_date",
        format!(
            "must not be before SAL {} ({})",
            sal.number,
            iso_day(sal.date)
        ),
    );
    v.check(
        amount_cents > 0 && amount_cents <= sal.amount_cents,
        "amount.cents",
        format!(
            "must be more than zero and at most the SAL's € {}",
            euro_decimal(sal.amount_cents)
        ),
    );
    v.into_result()
}

/// Checks the payment of `sal`'s certificate on `paid` for `amount_cents`.
pub fn check_payment(
    sal: &Sal,
    paid: NaiveDate,
    amount_cents: i64,
    today: NaiveDate,
) -> Result<(), ServiceError> {
    let Some((issued, certified)) = sal.certificate else {
        return Err(ServiceError::FailedPrecondition(format!(
            "SAL {} has no certificate yet: issue it with IssueSalCertificate before paying",
            sal.number
        )));
    };
    if let Some((day, _)) = sal.payment {
        return Err(ServiceError::FailedPrecondition(format!(
            "the certificate of SAL {} was already paid on {}",
            sal.number,
            iso_day(day)
        )));
    }
    let mut v = Violations::new();
    v.check(paid <= today, "paid_date", "must not be in the future");
    v.check(
        paid >= issued,
        "paid_date",
        format!("must not be before the certificate ({})", iso_day(issued)),
    );
    v.check(
        amount_cents > 0 && amount_cents <= certified,
        "amount.cents",
        format!(
            "must be more than zero and at most the certificate's € {}",
            euro_decimal(certified)
        ),
    );
    v.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn sal(date: &str) -> Sal {
        let terms = SalTerms::default();
        Sal {
            number: 1,
            date: d(date),
            progress_basis_points: 2500,
            amount_cents: 10_000_000,
            certificate_due: terms.certificate_due(d(date)),
            certificate: None,
            payment_due: None,
            payment: None,
        }
    }

    fn certified(mut s: Sal, issued: &str) -> Sal {
        s.certificate = Some((d(issued), s.amount_cents));
        s.payment_due = Some(SalTerms::default().payment_due(d(issued)));
        s
    }

    fn paid(mut s: Sal, day: &str) -> Sal {
        s.payment = Some((d(day), s.amount_cents));
        s
    }

    #[test]
    fn default_terms_are_7_and_30_days() {
        let t = SalTerms::default();
        assert_eq!(t.certificate_due(d("2025-03-01")), d("2025-03-08"));
        assert_eq!(t.payment_due(d("2025-03-08")), d("2025-04-07"));
        let custom = SalTerms {
            certificate_days: 15,
            payment_days: 60,
        };
        assert_eq!(custom.certificate_due(d("2025-03-01")), d("2025-03-16"));
        assert!(custom.validate().is_ok());
        assert!(
            SalTerms {
                certificate_days: 0,
                payment_days: 30
            }
            .validate()
            .is_err()
        );
        assert!(
            SalTerms {
                certificate_days: 7,
                payment_days: 121
            }
            .validate()
            .is_err()
        );
        assert_eq!(
            SalTerms::default().certificate_due(NaiveDate::MAX),
            NaiveDate::MAX,
            "no overflow at the end of the calendar"
        );
    }

    /// Late flags from dates: (SAL, today, certificate late, payment late).
    #[test]
    fn late_flags() {
        let s = "2025-03-01"; // certificate due 2025-03-08
        let cases: Vec<(&str, Sal, &str, bool, bool)> = vec![
            (
                "no certificate, on the due day",
                sal(s),
                "2025-03-08",
                false,
                false,
            ),
            (
                "no certificate, a day after",
                sal(s),
                "2025-03-09",
                true,
                false,
            ),
            (
                "certificate on the due day",
                certified(sal(s), "2025-03-08"),
                "2025-05-01",
                false,
                true,
            ),
            (
                "certificate a day late",
                certified(sal(s), "2025-03-09"),
                "2025-03-10",
                true,
                false,
            ),
            // Certificate on 03-05: payment due 04-04.
            (
                "unpaid, within the term",
                certified(sal(s), "2025-03-05"),
                "2025-04-04",
                false,
                false,
            ),
            (
                "unpaid, after the term",
                certified(sal(s), "2025-03-05"),
                "2025-04-05",
                false,
                true,
            ),
            (
                "paid on the due day",
                paid(certified(sal(s), "2025-03-05"), "2025-04-04"),
                "2026-01-01",
                false,
                false,
            ),
            (
                "paid a day late",
                paid(certified(sal(s), "2025-03-05"), "2025-04-05"),
                "2025-04-05",
                false,
                true,
            ),
            (
                "both late",
                paid(certified(sal(s), "2025-03-20"), "2025-05-30"),
                "2025-06-01",
                true,
                true,
            ),
        ];
        for (case, sal, today, cert, pay) in cases {
            let l = lateness(&sal, d(today));
            assert_eq!((l.certificate_late, l.payment_late), (cert, pay), "{case}");
            assert_eq!(l.any(), cert || pay, "{case}");
        }
    }

    #[test]
    fn new_sal_rules() {
        let today = d("2025-06-30");
        let prev = sal("2025-03-01");
        let ok = NewSal {
            date: d("2025-05-01"),
            progress_basis_points: 5000,
            amount_cents: 10_000_000,
        };
        let budget = 100_000_000;
        assert!(
            check_new_sal(
                &ok,
                Some(&prev),
                Some(d("2025-01-10")),
                10_000_000,
                budget,
                today
            )
            .is_ok()
        );
        assert!(check_new_sal(&ok, None, None, 0, budget, today).is_ok());
        let cases: Vec<(&str, NewSal, i64, &str)> = vec![
            (
                "future",
                NewSal {
                    date: d("2025-07-01"),
                    ..ok
                },
                0,
                "date",
            ),
            (
                "before previous",
                NewSal {
                    date: d("2025-02-28"),
                    ..ok
                },
                0,
                "date",
            ),
            (
                "progress back",
                NewSal {
                    progress_basis_points: 2499,
                    ..ok
                },
                0,
                "progress_basis_points",
            ),
            (
                "progress over 100 %",
                NewSal {
                    progress_basis_points: 10_001,
                    ..ok
                },
                0,
                "progress_basis_points",
            ),
            (
                "zero amount",
                NewSal {
                    amount_cents: 0,
                    ..ok
                },
                0,
                "amount.cents",
            ),
            ("over budget", ok, 95_000_000, "amount.cents"),
            (
                "overflow",
                NewSal {
                    amount_cents: i64::MAX,
                    ..ok
                },
                i64::MAX,
                "amount.cents",
            ),
        ];
        for (case, new, accounted, field) in cases {
            match check_new_sal(&new, Some(&prev), None, accounted, budget, today) {
                Err(ServiceError::InvalidArgument(v)) => {
                    assert!(v.as_slice().iter().any(|x| x.field == field), "{case}: {v}")
                }
                other => panic!("{case}: {other:?}"),
            }
        }
        let early = NewSal {
            date: d("2025-01-09"),
            ..ok
        };
        assert!(check_new_sal(&early, None, Some(d("2025-01-10")), 0, budget, today).is_err());
    }

    #[test]
    fn certificate_and_payment_rules() {
        let today = d("2025-06-30");
        let s = sal("2025-03-01");
        assert!(check_certificate(&s, d("2025-03-05"), s.amount_cents, today).is_ok());
        let field = |r: Result<(), ServiceError>| match r {
            Err(ServiceError::InvalidArgument(v)) => v.as_slice()[0].field.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(
            field(check_certificate(&s, d("2025-02-28"), 1, today)),
            "issued_date"
        );
        assert_eq!(
            field(check_certificate(&s, d("2025-07-01"), 1, today)),
            "issued_date"
        );
        assert_eq!(
            field(check_certificate(
                &s,
                d("2025-03-05"),
                s.amount_cents + 1,
                today
            )),
            "amount.cents"
        );
        assert_eq!(
            field(check_certificate(&s, d("2025-03-05"), 0, today)),
            "amount.cents"
        );

        let unpaid = check_payment(&s, d("2025-04-01"), 1, today).unwrap_err();
        assert_eq!(unpaid.code(), Code::FailedPrecondition);
        assert!(unpaid.to_string().contains("no certificate"), "{unpaid}");

        let c = certified(s, "2025-03-05");
        let again = check_certificate(&c, d("2025-03-06"), 1, today).unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition);
        assert!(check_payment(&c, d("2025-03-05"), c.amount_cents, today).is_ok());
        assert_eq!(
            field(check_payment(&c, d("2025-03-04"), 1, today)),
            "paid_date"
        );
        assert_eq!(
            field(check_payment(
                &c,
                d("2025-04-01"),
                c.amount_cents + 1,
                today
            )),
            "amount.cents"
        );
        let p = paid(c, "2025-04-01");
        assert_eq!(
            check_payment(&p, d("2025-04-02"), 1, today)
                .unwrap_err()
                .code(),
            Code::FailedPrecondition
        );
    }
}
