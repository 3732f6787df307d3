//! Payment schedules of granted benefits (erogazione): the default schedule a grant starts with,
//! the checks on a schedule an operator sets, and what may happen to one instalment.

use chrono::{Days, Months, NaiveDate};
use patto_proto::social::v1 as pb;
use patto_proto::social::v1::BenefitPaymentStatus as PaymentStatus;
use patto_service_kit::error::{ServiceError, Violations};

use super::scheme::{MAX_PAYMENTS, parse_day};
use super::{MAX_REF_LEN, euro, fits};

/// Days between the decision and the first instalment of the default schedule: the time the
/// ragioneria needs to issue the mandato di pagamento. Operators move the dates with
/// ScheduleBenefitPayments when their comune works differently.
pub const FIRST_PAYMENT_AFTER_DAYS: u64 = 30;

/// One instalment to schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instalment {
    /// Number, from 1.
    pub number: i32,
    /// Day it falls due.
    pub due_date: NaiveDate,
    /// Amount in cents.
    pub amount_cents: i64,
}

fn months_between(frequency: pb::BenefitFrequency) -> u32 {
    match frequency {
        pb::BenefitFrequency::Quarterly => 3,
        pb::BenefitFrequency::Yearly => 12,
        _ => 1,
    }
}

/// The schedule a grant starts with: `total_cents` split into `count` instalments (the remainder
/// of the division on the first, so the sum is exact), the first due
/// [`FIRST_PAYMENT_AFTER_DAYS`] after `decided_on`, then one every period of `frequency`.
pub fn default_schedule(
    total_cents: i64,
    count: i32,
    frequency: pb::BenefitFrequency,
    decided_on: NaiveDate,
) -> Vec<Instalment> {
    if total_cents <= 0 {
        return Vec::new();
    }
    let count = if frequency == pb::BenefitFrequency::OneOff {
        1
    } else {
        count.clamp(1, MAX_PAYMENTS)
    };
    let n = i64::from(count);
    let (each, remainder) = (total_cents / n, total_cents % n);
    let first = decided_on
        .checked_add_days(Days::new(FIRST_PAYMENT_AFTER_DAYS))
        .unwrap_or(decided_on);
    let step = months_between(frequency);
    (0..count)
        .map(|i| Instalment {
            number: i + 1,
            due_date: first
                .checked_add_months(Months::new(step * i as u32))
                .unwrap_or(first),
            amount_cents: if i == 0 { each + remainder } else { each },
        })
        .collect()
}

/// Validates the instalments an operator schedules. `paid` are the instalments already paid
/// (number, cents), which stay; the new ones must not reuse their numbers, and paid plus new must not
/// exceed `granted_cents`.
pub fn validate_schedule(
    payments: &[pb::BenefitPayment],
    paid: &[(i32, i64)],
    granted_cents: i64,
) -> Result<Vec<Instalment>, Violations> {
    let mut v = Violations::new();
    v.check(
        !payments.is_empty(),
        "payments",
        "must list at least one instalment",
    );
    v.check(
        payments.len() <= MAX_PAYMENTS as usize,
        "payments",
        format!("at most {MAX_PAYMENTS} instalments"),
    );
    let mut out: Vec<Instalment> = Vec::with_capacity(payments.len());
    let mut total: i64 = paid.iter().map(|(_, c)| *c).fold(0, i64::saturating_add);
    for (i, p) in payments.iter().enumerate() {
        let f = |name: &str| format!("payments[{i}].{name}");
        if !(1..=MAX_PAYMENTS * 10).contains(&p.number) {
            v.add(f("number"), "must be a positive instalment number");
        } else if paid.iter().any(|(n, _)| *n == p.number) {
            v.add(
                f("number"),
                format!("instalment {} is already paid", p.number),
            );
        } else if out.iter().any(|x| x.number == p.number) {
            v.add(
                f("number"),
                format!("instalment {} is listed twice", p.number),
            );
        }
        let due = parse_day(&p.due_date, &f("due_date"), &mut v);
        let cents = p.amount.as_ref().map_or(0, |m| m.cents);
        v.check(
            cents > 0,
            f("amount.cents"),
            "must be a positive amount in cents",
        );
        total = total.saturating_add(cents.max(0));
        if let Some(due_date) = due {
            out.push(Instalment {
                number: p.number,
                due_date,
                amount_cents: cents,
            });
        }
    }
    if total > granted_cents {
        v.add(
            "payments",
            format!(
                "paid and scheduled instalments add up to {}, more than the {} granted",
                euro(total),
                euro(granted_cents)
            ),
        );
    }
    if !v.is_empty() {
        return Err(v);
    }
    out.sort_by_key(|p| p.number);
    Ok(out)
}

/// Short name of a payment status: `PAID`.
pub fn payment_status_name(s: PaymentStatus) -> &'static str {
    s.as_str_name()
        .strip_prefix("BENEFIT_PAYMENT_STATUS_")
        .unwrap_or("UNSPECIFIED")
}

/// Whether instalment `number` may go from `from` to `to`. Paid and cancelled instalments are
/// settled for good; a suspended one may still be paid or cancelled.
pub fn payment_change(
    number: i32,
    from: PaymentStatus,
    to: PaymentStatus,
) -> Result<(), ServiceError> {
    use PaymentStatus as P;
    let ok = matches!(
        (from, to),
        (P::Scheduled, P::Paid | P::Suspended | P::Cancelled)
            | (P::Suspended, P::Paid | P::Cancelled)
    );
    if ok {
        Ok(())
    } else {
        Err(ServiceError::FailedPrecondition(format!(
            "instalment {number} cannot go from {} to {}",
            payment_status_name(from),
            payment_status_name(to)
        )))
    }
}

/// An operator's record of one instalment, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    /// New status: PAID, SUSPENDED or CANCELLED.
    pub status: PaymentStatus,
    /// Day paid (PAID only).
    pub paid_date: Option<NaiveDate>,
    /// Payment reference (PAID only).
    pub payment_reference: String,
    /// Note.
    pub note: String,
}

/// Validates a RecordBenefitPayment request's outcome fields; a payment cannot be dated after `today`.
pub fn validate_outcome(
    req: &pb::RecordBenefitPaymentRequest,
    today: NaiveDate,
    v: &mut Violations,
) -> Option<PaymentOutcome> {
    v.check(
        req.number >= 1,
        "number",
        "must be the number of an instalment, from 1",
    );
    let status = match PaymentStatus::try_from(req.status) {
        Ok(s @ (PaymentStatus::Paid | PaymentStatus::Suspended | PaymentStatus::Cancelled)) => {
            Some(s)
        }
        _ => {
            v.add("status", "must be PAID, SUSPENDED or CANCELLED");
            None
        }
    };
    let mut paid_date = None;
    if status == Some(PaymentStatus::Paid) {
        paid_date = parse_day(&req.paid_date, "paid_date", v);
        if let Some(d) = paid_date {
            v.check(d <= today, "paid_date", "must not be in the future");
        }
        v.check(
            !req.payment_reference.trim().is_empty() && fits(&req.payment_reference, MAX_REF_LEN),
            "payment_reference",
            format!("must name the payment order or transfer (1 to {MAX_REF_LEN} characters)"),
        );
    }
    v.check(
        fits(&req.note, MAX_REF_LEN * 4),
        "note",
        "must be at most 1200 characters",
    );
    Some(PaymentOutcome {
        status: status?,
        paid_date,
        payment_reference: req.payment_reference.trim().to_owned(),
        note: req.note.trim().to_owned(),
    })
}

/// True when a schedule is non-empty and every instalment is paid or cancelled: the erogazione is
/// complete.
pub fn all_settled(statuses: &[PaymentStatus]) -> bool {
    !statuses.is_empty()
        && statuses
            .iter()
            .all(|s| matches!(s, PaymentStatus::Paid | PaymentStatus::Cancelled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::isee::tests::day;
    use patto_proto::common::v1::Money;

    #[test]
    fn default_schedules() {
        type Case = (
            i64,
            i32,
            pb::BenefitFrequency,
            &'static [(&'static str, i64)],
        );
        let cases: [Case; 5] = [
            (
                50_000,
                1,
                pb::BenefitFrequency::OneOff,
                &[("2025-04-30", 50_000)],
            ),
            // Assegno di maternità: € 407,40 × 5 months.
            (
                203_700,
                5,
                pb::BenefitFrequency::Monthly,
                &[
                    ("2025-04-30", 40_740),
                    ("2025-05-30", 40_740),
                    ("2025-06-30", 40_740),
                    ("2025-07-30", 40_740),
                    ("2025-08-30", 40_740),
                ],
            ),
            (
                100_001,
                3,
                pb::BenefitFrequency::Quarterly,
                &[
                    ("2025-04-30", 33_335),
                    ("2025-07-30", 33_333),
                    ("2025-10-30", 33_333),
                ],
            ),
            (
                240_000,
                2,
                pb::BenefitFrequency::Yearly,
                &[("2025-04-30", 120_000), ("2026-04-30", 120_000)],
            ),
            (0, 3, pb::BenefitFrequency::Monthly, &[]),
        ];
        for (total, count, frequency, expected) in cases {
            let got = default_schedule(total, count, frequency, day("2025-03-31"));
            let got: Vec<(String, i64)> = got
                .iter()
                .map(|i| (i.due_date.to_string(), i.amount_cents))
                .collect();
            let want: Vec<(String, i64)> = expected
                .iter()
                .map(|(d, c)| ((*d).to_owned(), *c))
                .collect();
            assert_eq!(got, want, "{total} {count} {frequency:?}");
            assert_eq!(got.iter().map(|(_, c)| c).sum::<i64>(), total);
        }
    }

    fn p(number: i32, due: &str, cents: i64) -> pb::BenefitPayment {
        pb::BenefitPayment {
            number,
            due_date: due.into(),
            amount: Some(Money { cents }),
            ..Default::default()
        }
    }

    #[test]
    fn schedules_set_by_operators() {
        let ok = validate_schedule(
            &[p(3, "2025-06-01", 100), p(2, "2025-05-01", 100)],
            &[(1, 100)],
            300,
        )
        .unwrap();
        assert_eq!(ok.iter().map(|i| i.number).collect::<Vec<_>>(), [2, 3]);

        let fields =
            |payments: &[pb::BenefitPayment], paid: &[(i32, i64)], granted| -> Vec<String> {
                validate_schedule(payments, paid, granted)
                    .unwrap_err()
                    .as_slice()
                    .iter()
                    .map(|v| v.field.clone())
                    .collect()
            };
        assert_eq!(fields(&[], &[], 100), ["payments"]);
        assert_eq!(
            fields(&[p(1, "2025-05-01", 100)], &[(1, 100)], 300),
            ["payments[0].number"]
        );
        assert_eq!(
            fields(
                &[p(2, "2025-05-01", 100), p(2, "2025-06-01", 100)],
                &[],
                300
            ),
            ["payments[1].number"]
        );
        assert_eq!(
            fields(&[p(0, "maggio", 0)], &[], 300),
            [
                "payments[0].number",
                "payments[0].due_date",
                "payments[0].amount.cents"
            ]
        );
        assert_eq!(
            fields(&[p(2, "2025-05-01", 201)], &[(1, 100)], 300),
            ["payments"]
        );
    }

    #[test]
    fn instalment_changes() {
        use PaymentStatus as P;
        let cases = [
            (P::Scheduled, P::Paid, true),
            (P::Scheduled, P::Suspended, true),
            (P::Scheduled, P::Cancelled, true),
            (P::Suspended, P::Paid, true),
            (P::Suspended, P::Cancelled, true),
            (P::Suspended, P::Suspended, false),
            (P::Paid, P::Cancelled, false),
            (P::Paid, P::Paid, false),
            (P::Cancelled, P::Paid, false),
        ];
        for (from, to, ok) in cases {
            let got = payment_change(4, from, to);
            assert_eq!(got.is_ok(), ok, "{from:?} → {to:?}");
            if let Err(e) = got {
                assert!(e.to_string().contains(&format!(
                    "from {} to {}",
                    payment_status_name(from),
                    payment_status_name(to)
                )));
            }
        }
        assert!(all_settled(&[P::Paid, P::Cancelled]));
        assert!(!all_settled(&[P::Paid, P::Suspended]));
        assert!(!all_settled(&[]));
    }

    #[test]
    fn outcomes() {
        let today = day("2025-06-01");
        let mut v = Violations::new();
        let req = pb::RecordBenefitPaymentRequest {
            application_id: "a".into(),
            number: 1,
            status: PaymentStatus::Paid as i32,
            paid_date: "2025-05-31".into(),
            payment_reference: "mandato n. 1234/2025".into(),
            note: String::new(),
        };
        let o = validate_outcome(&req, today, &mut v).unwrap();
        assert!(v.is_empty());
        assert_eq!(o.paid_date, Some(day("2025-05-31")));

        let mut v = Violations::new();
        let bad = pb::RecordBenefitPaymentRequest {
            paid_date: "2025-06-02".into(),
            payment_reference: " ".into(),
            number: 0,
            ..req.clone()
        };
        validate_outcome(&bad, today, &mut v);
        let fields: Vec<&str> = v.as_slice().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["number", "paid_date", "payment_reference"]);

        let mut v = Violations::new();
        assert!(
            validate_outcome(&pb::RecordBenefitPaymentRequest::default(), today, &mut v).is_none()
        );
        let fields: Vec<&str> = v.as_slice().iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, ["number", "status"]);
    }
}
