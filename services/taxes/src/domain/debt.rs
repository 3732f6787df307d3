//! pagoPA debt positions (posizioni debitorie, DOMAIN.md §6): how a tax position becomes payment
//! options (a rata unica and the instalments, each with its own IUV and notice number), how their
//! transfers split the money between the comune and, for TEFA, the Città Metropolitana, and how a
//! payment receipt moves the position through its states:
//!
//! ```text
//! DRAFT → PUBLISHED → VALID → PARTIALLY_PAID → PAID (→ REPORTED)
//!                  ↘ INVALID (cancelled)   ↘ EXPIRED (past its due days, unpaid)
//! ```
//!
//! Positions are created with GPD's "switch to expired" behaviour: once the last due day has passed
//! unpaid the notice can no longer be paid, and the comune pursues the tax with an accertamento.

use chrono::{DateTime, NaiveDate, Utc};
use patto_proto::taxes::v1 as pb;
use patto_service_kit::pagopa;

/// Status of a debt position.
pub type Status = pb::DebtPositionStatus;

/// The creditor comune as registered with pagoPA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creditor {
    /// Codice fiscale of the ente creditore (11 digits).
    pub fiscal_code: String,
    /// Name.
    pub name: String,
    /// IBAN the comune's transfers are credited to.
    pub iban: String,
    /// Segregation code assigned to the comune's intermediary (IUV prefix).
    pub segregation_code: u8,
    /// Taxonomy code of IMU collections.
    pub imu_taxonomy: String,
    /// Taxonomy code of TARI collections.
    pub tari_taxonomy: String,
}

/// The beneficiary of TEFA transfers (the Città Metropolitana).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TefaBeneficiary {
    /// Codice fiscale.
    pub fiscal_code: String,
    /// Name.
    pub name: String,
    /// IBAN.
    pub iban: String,
    /// Taxonomy code of TEFA collections.
    pub taxonomy: String,
}

/// One instalment of a tax position: the tribute's amount, TEFA on it, and its due day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    /// Amount due to the comune, cents.
    pub amount: i64,
    /// TEFA due to the Città Metropolitana, cents.
    pub tefa: i64,
    /// Due day.
    pub due: NaiveDate,
}

/// A payment option before its IUV is assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedOption {
    /// Amount, cents.
    pub amount: i64,
    /// Due day.
    pub due: NaiveDate,
    /// Instalment (false for the rata unica).
    pub instalment: bool,
    /// Instalment number, 0 for the rata unica.
    pub number: i32,
    /// Description on the avviso.
    pub description: String,
    /// Transfers; they add up to `amount`.
    pub transfers: Vec<pb::DebtTransfer>,
}

/// The payment options of a tax position: the rata unica (by the first due day) and, unless only a
/// single payment is wanted or there is only one part, each instalment. Due days are never before
/// the validity day. Refuses a plan with nothing to pay.
pub fn plan(
    tribute: pb::Tribute,
    year: i32,
    parts: &[Part],
    single_only: bool,
    validity: NaiveDate,
    creditor: &Creditor,
    tefa: Option<&TefaBeneficiary>,
) -> Result<Vec<PlannedOption>, String> {
    let parts: Vec<Part> = parts
        .iter()
        .copied()
        .filter(|p| p.amount + p.tefa > 0)
        .collect();
    let total: i64 = parts.iter().map(|p| p.amount + p.tefa).sum();
    if total <= 0 {
        return Err("nothing is left to pay".into());
    }
    if parts.iter().any(|p| p.tefa > 0) && tefa.is_none() {
        return Err("no TEFA beneficiary is registered with pagoPA".into());
    }
    let name = super::tribute_name(tribute);
    let taxonomy = match tribute {
        pb::Tribute::Tari => &creditor.tari_taxonomy,
        _ => &creditor.imu_taxonomy,
    };
    let transfers = |amount: i64, tefa_amount: i64, what: &str| -> Vec<pb::DebtTransfer> {
        let mut out = vec![pb::DebtTransfer {
            transfer_id: 1,
            kind: pb::DebtTransferKind::Comune as i32,
            beneficiary_fiscal_code: creditor.fiscal_code.clone(),
            beneficiary_name: creditor.name.clone(),
            amount: Some(patto_proto::common::v1::Money { cents: amount }),
            remittance_information: format!("{name} {year} {what}"),
            taxonomy: taxonomy.clone(),
            iban: creditor.iban.clone(),
        }];
        if let (true, Some(b)) = (tefa_amount > 0, tefa) {
            out.push(pb::DebtTransfer {
                transfer_id: 2,
                kind: pb::DebtTransferKind::Tefa as i32,
                beneficiary_fiscal_code: b.fiscal_code.clone(),
                beneficiary_name: b.name.clone(),
                amount: Some(patto_proto::common::v1::Money { cents: tefa_amount }),
                remittance_information: format!("TEFA {year} {what}"),
                taxonomy: b.taxonomy.clone(),
                iban: b.iban.clone(),
            });
        }
        out.retain(|t| t.amount.as_ref().is_some_and(|m| m.cents > 0));
        out
    };
    let first_due = parts
        .iter()
        .map(|p| p.due)
        .min()
        .unwrap_or(validity)
        .max(validity);
    let mut options = vec![PlannedOption {
        amount: total,
        due: first_due,
        instalment: false,
        number: 0,
        description: format!("{name} {year} rata unica"),
        transfers: transfers(
            parts.iter().map(|p| p.amount).sum(),
            parts.iter().map(|p| p.tefa).sum(),
            "rata unica",
        ),
    }];
    if !single_only && parts.len() > 1 {
        for (i, p) in parts.iter().enumerate() {
            let label = match (tribute, parts.len(), i) {
                (pb::Tribute::Imu, 2, 0) => "acconto".to_owned(),
                (pb::Tribute::Imu, 2, 1) => "saldo".to_owned(),
                _ => format!("rata {}", i + 1),
            };
            options.push(PlannedOption {
                amount: p.amount + p.tefa,
                due: p.due.max(validity),
                instalment: true,
                number: i as i32 + 1,
                description: format!("{name} {year} {label}"),
                transfers: transfers(p.amount, p.tefa, &label),
            });
        }
    }
    Ok(options)
}

/// The IUV, notice number and QR payload of an option numbered `base` by its creditor.
pub fn identifiers(
    creditor: &Creditor,
    base: u64,
    amount: i64,
) -> Result<(String, String, String), String> {
    let iuv = pagopa::iuv(creditor.segregation_code, base).map_err(|e| e.to_string())?;
    let nav = pagopa::nav_of_iuv(&iuv);
    let qr = pagopa::qr_payload(&nav, &creditor.fiscal_code, amount);
    Ok((iuv, nav, qr))
}

/// The status a stored position reads as at `now`: a published position becomes payable at its
/// validity time, and an unpaid one expires once its last due day is over.
pub fn effective_status(
    stored: Status,
    validity: DateTime<Utc>,
    expires: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Status {
    let status = if stored == Status::Published && validity <= now {
        Status::Valid
    } else {
        stored
    };
    match status {
        Status::Published | Status::Valid if expires.is_some_and(|e| e <= now) => Status::Expired,
        s => s,
    }
}

/// When an unpaid position expires: the end of its last due day.
pub fn expiry(options: &[PlannedOption]) -> Option<DateTime<Utc>> {
    options
        .iter()
        .map(|o| o.due)
        .max()
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

/// What the payment rules know of an option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionState {
    /// IUV.
    pub iuv: String,
    /// Instalment or rata unica.
    pub instalment: bool,
    /// Paid already.
    pub paid: bool,
    /// Receipt that paid it.
    pub receipt_id: String,
    /// Amount, cents.
    pub amount: i64,
}

/// Why a receipt cannot be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentRefusal {
    /// The position cannot be paid in its state.
    NotPayable(String),
    /// The IUV was already paid by another receipt.
    AlreadyPaid(String),
    /// The receipt's amount is not the option's.
    WrongAmount(String),
}

/// The effect of a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// The same receipt was recorded before: nothing changes.
    AlreadyRecorded,
    /// Recorded: the position's new status.
    Recorded(Status),
}

/// Applies a receipt for `iuv` (which must be one of `options`) to a position in `status`.
pub fn pay(
    status: Status,
    options: &[OptionState],
    iuv: &str,
    receipt_id: &str,
    amount: i64,
    validity: DateTime<Utc>,
) -> Result<Payment, PaymentRefusal> {
    let Some(option) = options.iter().find(|o| o.iuv == iuv) else {
        return Err(PaymentRefusal::NotPayable(format!(
            "IUV {iuv} is not an option of this position"
        )));
    };
    if option.paid {
        return if option.receipt_id == receipt_id {
            Ok(Payment::AlreadyRecorded)
        } else {
            Err(PaymentRefusal::AlreadyPaid(format!(
                "IUV {iuv} was already paid with receipt {}",
                option.receipt_id
            )))
        };
    }
    let name = status
        .as_str_name()
        .trim_start_matches("DEBT_POSITION_STATUS_");
    match status {
        Status::Valid | Status::PartiallyPaid => {}
        Status::Published => {
            return Err(PaymentRefusal::NotPayable(format!(
                "the position is payable from {}",
                validity.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        Status::Paid | Status::Reported => {
            return Err(PaymentRefusal::NotPayable(
                "the position is already paid (by its rata unica or every instalment)".into(),
            ));
        }
        _ => {
            return Err(PaymentRefusal::NotPayable(format!(
                "a position in status {name} cannot be paid"
            )));
        }
    }
    if !option.instalment && options.iter().any(|o| o.instalment && o.paid) {
        return Err(PaymentRefusal::NotPayable(
            "instalments are already paid: pay the remaining instalments, not the rata unica"
                .into(),
        ));
    }
    if amount != option.amount {
        return Err(PaymentRefusal::WrongAmount(format!(
            "must be the option's amount, {} cents",
            option.amount
        )));
    }
    if !option.instalment {
        return Ok(Payment::Recorded(Status::Paid));
    }
    let all_paid = options
        .iter()
        .filter(|o| o.instalment)
        .all(|o| o.paid || o.iuv == iuv);
    Ok(Payment::Recorded(if all_paid {
        Status::Paid
    } else {
        Status::PartiallyPaid
    }))
}

/// The status of a tax position from its amounts and last due day.
pub fn tax_position_status(
    amount_due: i64,
    amount_paid: i64,
    cancelled: bool,
    last_due: NaiveDate,
    today: NaiveDate,
) -> pb::TaxPositionStatus {
    use pb::TaxPositionStatus as S;
    if cancelled {
        S::Cancelled
    } else if amount_paid >= amount_due {
        S::Paid
    } else if today > last_due {
        S::Overdue
    } else if amount_paid > 0 {
        S::PartiallyPaid
    } else {
        S::Due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, dd).unwrap()
    }

    fn creditor() -> Creditor {
        Creditor {
            fiscal_code: "80016350821".into(),
            name: "Comune di Palermo".into(),
            iban: "IT60X0542811101000000123456".into(),
            segregation_code: 1,
            imu_taxonomy: "9/0101101IM/".into(),
            tari_taxonomy: "9/0201102IM/".into(),
        }
    }

    fn tefa() -> TefaBeneficiary {
        TefaBeneficiary {
            fiscal_code: "80021470820".into(),
            name: "Città Metropolitana di Palermo".into(),
            iban: "IT02L1234512345123456789012".into(),
            taxonomy: "9/0201103IM/".into(),
        }
    }

    #[test]
    fn imu_plans_a_rata_unica_an_acconto_and_a_saldo() {
        let parts = [
            Part {
                amount: 36_120,
                tefa: 0,
                due: d(6, 16),
            },
            Part {
                amount: 36_120,
                tefa: 0,
                due: d(12, 16),
            },
        ];
        let p = plan(
            pb::Tribute::Imu,
            2026,
            &parts,
            false,
            d(1, 10),
            &creditor(),
            None,
        )
        .unwrap();
        let summary: Vec<(i64, String, bool, i32)> = p
            .iter()
            .map(|o| (o.amount, o.due.to_string(), o.instalment, o.number))
            .collect();
        assert_eq!(
            summary,
            [
                (72_240, "2026-06-16".into(), false, 0),
                (36_120, "2026-06-16".into(), true, 1),
                (36_120, "2026-12-16".into(), true, 2),
            ]
        );
        assert_eq!(p[2].description, "IMU 2026 saldo");
        assert_eq!(p[0].transfers.len(), 1);
        let single = plan(
            pb::Tribute::Imu,
            2026,
            &parts,
            true,
            d(1, 10),
            &creditor(),
            None,
        )
        .unwrap();
        assert_eq!(single.len(), 1);
        assert_eq!(
            expiry(&p).unwrap().to_rfc3339(),
            "2026-12-17T00:00:00+00:00"
        );
    }

    #[test]
    fn tari_carries_tefa_as_a_separate_transfer() {
        let parts = [
            Part {
                amount: 15_550,
                tefa: 778,
                due: d(5, 31),
            },
            Part {
                amount: 15_550,
                tefa: 778,
                due: d(7, 31),
            },
            Part {
                amount: 15_550,
                tefa: 777,
                due: d(11, 30),
            },
        ];
        // Issued in June: the first due day already passed, so it moves to the validity day.
        let p = plan(
            pb::Tribute::Tari,
            2026,
            &parts,
            false,
            d(6, 10),
            &creditor(),
            Some(&tefa()),
        )
        .unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            (p[0].amount, p[0].due.to_string()),
            (48_983, "2026-06-10".into())
        );
        for o in &p {
            let sum: i64 = o.transfers.iter().map(|t| t.amount.unwrap().cents).sum();
            assert_eq!(sum, o.amount, "transfers add up to the option");
            assert_eq!(o.transfers[1].kind, pb::DebtTransferKind::Tefa as i32);
        }
        assert_eq!(p[0].transfers[1].amount.unwrap().cents, 2_333);
        assert!(
            plan(
                pb::Tribute::Tari,
                2026,
                &parts,
                false,
                d(1, 1),
                &creditor(),
                None
            )
            .is_err()
        );
        assert!(
            plan(
                pb::Tribute::Imu,
                2026,
                &[],
                false,
                d(1, 1),
                &creditor(),
                None
            )
            .is_err()
        );
    }

    #[test]
    fn identifiers_use_the_kit() {
        let (iuv, nav, qr) = identifiers(&creditor(), 123, 12_345).unwrap();
        assert_eq!(
            (iuv.as_str(), nav.as_str()),
            ("01000000000012373", "301000000000012373")
        );
        assert_eq!(qr, "PAGOPA|002|301000000000012373|80016350821|12345");
    }

    #[test]
    fn states_follow_validity_and_expiry() {
        let t = |m, dd| d(m, dd).and_hms_opt(12, 0, 0).unwrap().and_utc();
        let (validity, expires) = (t(2, 1), Some(t(12, 17)));
        assert_eq!(
            effective_status(Status::Published, validity, expires, t(1, 15)),
            Status::Published
        );
        assert_eq!(
            effective_status(Status::Published, validity, expires, t(2, 2)),
            Status::Valid
        );
        assert_eq!(
            effective_status(Status::Valid, validity, expires, t(12, 18)),
            Status::Expired
        );
        assert_eq!(
            effective_status(Status::PartiallyPaid, validity, expires, t(12, 18)),
            Status::PartiallyPaid
        );
        assert_eq!(
            effective_status(Status::Paid, validity, expires, t(12, 18)),
            Status::Paid
        );
        assert_eq!(
            effective_status(Status::Invalid, validity, expires, t(3, 1)),
            Status::Invalid
        );
    }

    #[test]
    fn payments_are_idempotent_by_iuv_and_follow_the_options() {
        let opt = |iuv: &str, instalment, paid: bool, amount| OptionState {
            iuv: iuv.into(),
            instalment,
            paid,
            receipt_id: if paid { "R1".into() } else { String::new() },
            amount,
        };
        let open = [
            opt("u", false, false, 100),
            opt("a", true, false, 50),
            opt("s", true, false, 50),
        ];
        let v = Utc::now();
        assert_eq!(
            pay(Status::Valid, &open, "u", "R9", 100, v),
            Ok(Payment::Recorded(Status::Paid))
        );
        assert_eq!(
            pay(Status::Valid, &open, "a", "R9", 50, v),
            Ok(Payment::Recorded(Status::PartiallyPaid))
        );
        assert!(matches!(
            pay(Status::Valid, &open, "a", "R9", 49, v),
            Err(PaymentRefusal::WrongAmount(_))
        ));
        let half = [
            opt("u", false, false, 100),
            opt("a", true, true, 50),
            opt("s", true, false, 50),
        ];
        assert_eq!(
            pay(Status::PartiallyPaid, &half, "s", "R2", 50, v),
            Ok(Payment::Recorded(Status::Paid))
        );
        assert_eq!(
            pay(Status::PartiallyPaid, &half, "a", "R1", 50, v),
            Ok(Payment::AlreadyRecorded)
        );
        assert!(matches!(
            pay(Status::PartiallyPaid, &half, "a", "R2", 50, v),
            Err(PaymentRefusal::AlreadyPaid(_))
        ));
        assert!(matches!(
            pay(Status::PartiallyPaid, &half, "u", "R3", 100, v),
            Err(PaymentRefusal::NotPayable(_))
        ));
        for s in [
            Status::Invalid,
            Status::Expired,
            Status::Draft,
            Status::Published,
        ] {
            assert!(
                matches!(
                    pay(s, &open, "u", "R9", 100, v),
                    Err(PaymentRefusal::NotPayable(_))
                ),
                "{s:?}"
            );
        }
    }

    #[test]
    fn tax_position_states() {
        use pb::TaxPositionStatus as S;
        let (due, today) = (d(12, 16), d(11, 26));
        assert_eq!(tax_position_status(100, 0, false, due, today), S::Due);
        assert_eq!(
            tax_position_status(100, 40, false, due, today),
            S::PartiallyPaid
        );
        assert_eq!(tax_position_status(100, 100, false, due, today), S::Paid);
        assert_eq!(
            tax_position_status(100, 40, false, due, d(12, 17)),
            S::Overdue
        );
        assert_eq!(tax_position_status(100, 0, true, due, today), S::Cancelled);
    }
}
