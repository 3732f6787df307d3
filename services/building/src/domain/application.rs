//! The content of a permit application as the applicant fills it in online: what a draft may hold,
//! and what it must hold before it can be filed. Documents are kept as metadata (name, SHA-256,
//! size): the files live in the comune's document system, the hash proves which file was filed.

use std::collections::HashMap;

use patto_proto::building::v1 as pb;
use patto_service_kit::error::Violations;
use patto_service_kit::ids;
use serde::{Deserialize, Serialize};

use super::cadastre::MAX_IDENTIFIER_LEN;
use super::{MAX_NAME_LEN, MAX_TEXT_LEN, holder_code, kind_name, person_code, text};

/// Most parcels one application may list.
pub const MAX_PARCELS: usize = 50;
/// Most documents one application (or one integration) may carry.
pub const MAX_ATTACHMENTS: usize = 100;
/// Largest document accepted, in bytes (the SUE portals' usual ceiling is far below).
pub const MAX_ATTACHMENT_BYTES: i64 = 1 << 31;

/// What the store knows of a cadastral unit an application points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFacts {
    /// ISTAT code of its comune.
    pub istat_code: String,
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
}

/// A parcel the works concern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    /// The registered unit, when known.
    pub cadastral_unit_id: String,
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
}

/// Metadata of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// File name.
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// Media type.
    pub media_type: String,
    /// Kind of document.
    pub document_type: String,
}

/// A validated draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDraft {
    /// ISTAT code of the comune.
    pub istat_code: String,
    /// Kind of title.
    pub kind: pb::BuildingPermitKind,
    /// Canonical code of the applicant.
    pub applicant_fiscal_code: String,
    /// Canonical code of the designer, or empty.
    pub designer_fiscal_code: String,
    /// Designer's registration.
    pub designer_registration: String,
    /// Subject.
    pub subject: String,
    /// Description.
    pub description: String,
    /// Intervention category (protobuf number, 0 while unset).
    pub intervention_category: i32,
    /// Street of the works.
    pub street: String,
    /// House number.
    pub house_number: String,
    /// Postal code.
    pub postal_code: String,
    /// Locality.
    pub locality: String,
    /// Parcels.
    pub parcels: Vec<Parcel>,
    /// Vincoli (protobuf numbers, sorted, without duplicates).
    pub constraints: Vec<i32>,
    /// Documents.
    pub attachments: Vec<NewAttachment>,
}

/// Validates documents sent with an application, an integration, observations or the SCA.
pub fn validate_attachments(
    list: &[pb::BuildingPermitAttachment],
    prefix: &str,
    v: &mut Violations,
) -> Vec<NewAttachment> {
    if list.len() > MAX_ATTACHMENTS {
        v.add(
            prefix,
            format!("at most {MAX_ATTACHMENTS} documents per call"),
        );
    }
    list.iter()
        .enumerate()
        .map(|(i, a)| {
            let f = |name: &str| format!("{prefix}[{i}].{name}");
            let name = text(&a.name, &f("name"), MAX_NAME_LEN, true, v);
            let sha256 = a.sha256.trim().to_owned();
            v.check(
                sha256.len() == 64
                    && sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                f("sha256"),
                "must be the SHA-256 of the file: 64 lowercase hex digits",
            );
            v.check(
                (1..=MAX_ATTACHMENT_BYTES).contains(&a.size_bytes),
                f("size_bytes"),
                format!("must be between 1 and {MAX_ATTACHMENT_BYTES} bytes"),
            );
            let media_type = text(&a.media_type, &f("media_type"), MAX_NAME_LEN, false, v);
            v.check(
                media_type.is_empty() || media_type.contains('/'),
                f("media_type"),
                "must be a media type such as application/pdf, or empty",
            );
            NewAttachment {
                name,
                sha256,
                size_bytes: a.size_bytes,
                media_type,
                document_type: text(
                    &a.document_type,
                    &f("document_type"),
                    MAX_NAME_LEN,
                    false,
                    v,
                ),
            }
        })
        .collect()
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

/// Validates a draft as a client sent it; `prefix` is its path in the request (e.g. `draft`) and
/// `units` what the store knows of the cadastral units its parcels name.
pub fn validate_draft(
    d: &pb::BuildingPermitDraft,
    prefix: &str,
    units: &HashMap<String, UnitFacts>,
) -> Result<NewDraft, Violations> {
    let mut v = Violations::new();
    let f = |name: &str| format!("{prefix}.{name}");

    v.check(
        ids::is_known_istat_code(&d.istat_code),
        f("istat_code"),
        "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
    );
    let kind = match pb::BuildingPermitKind::try_from(d.kind) {
        Ok(pb::BuildingPermitKind::Unspecified) | Err(_) => {
            v.add(
                f("kind"),
                "must be CIL, CILA, SCIA, SCIA_ALTERNATIVA or PDC",
            );
            pb::BuildingPermitKind::Unspecified
        }
        Ok(k) => k,
    };
    let applicant = holder_code(&d.applicant_fiscal_code)
        .map_err(|msg| v.add(f("applicant_fiscal_code"), msg))
        .unwrap_or_default();
    let designer = if d.designer_fiscal_code.trim().is_empty() {
        String::new()
    } else {
        person_code(&d.designer_fiscal_code)
            .map_err(|msg| v.add(f("designer_fiscal_code"), msg))
            .unwrap_or_default()
    };
    let designer_registration = text(
        &d.designer_registration,
        &f("designer_registration"),
        MAX_NAME_LEN,
        false,
        &mut v,
    );
    let subject = text(&d.subject, &f("subject"), MAX_NAME_LEN, true, &mut v);
    let description = text(
        &d.description,
        &f("description"),
        MAX_TEXT_LEN,
        false,
        &mut v,
    );
    let intervention_category = match pb::InterventionCategory::try_from(d.intervention_category) {
        Ok(c) => c as i32,
        Err(_) => {
            v.add(
                f("intervention_category"),
                "must be one of the InterventionCategory values",
            );
            0
        }
    };
    let address = d.address.clone().unwrap_or_default();
    v.check(
        address.istat_code.is_empty() || address.istat_code == d.istat_code,
        f("address.istat_code"),
        "must be empty or the application's istat_code",
    );
    let street = text(
        &address.street,
        &f("address.street"),
        MAX_NAME_LEN,
        false,
        &mut v,
    );

    v.check(
        d.parcels.len() <= MAX_PARCELS,
        f("parcels"),
        format!("at most {MAX_PARCELS} parcels"),
    );
    let mut parcels = Vec::with_capacity(d.parcels.len());
    for (i, p) in d.parcels.iter().enumerate() {
        let pf = |name: &str| format!("{prefix}.parcels[{i}].{name}");
        let unit_id = p.cadastral_unit_id.trim().to_owned();
        if !unit_id.is_empty() {
            // A registered unit supplies its own identifiers.
            match units.get(&unit_id) {
                Some(u) if u.istat_code == d.istat_code => parcels.push(Parcel {
                    cadastral_unit_id: unit_id,
                    register: u.register,
                    sezione: u.sezione.clone(),
                    foglio: u.foglio.clone(),
                    particella: u.particella.clone(),
                    subalterno: u.subalterno.clone(),
                }),
                Some(u) => v.add(
                    pf("cadastral_unit_id"),
                    format!("the unit lies in comune {}, not {}", u.istat_code, d.istat_code),
                ),
                None => v.add(
                    pf("cadastral_unit_id"),
                    format!("no cadastral unit has id `{unit_id}`; find it with ListCadastralUnits or leave it empty"),
                ),
            }
            continue;
        }
        let register = match pb::CadastralRegister::try_from(p.register) {
            Ok(pb::CadastralRegister::Unspecified) => pb::CadastralRegister::Fabbricati,
            Ok(r) => r,
            Err(_) => {
                v.add(
                    pf("register"),
                    "must be one of the CadastralRegister values",
                );
                pb::CadastralRegister::Fabbricati
            }
        };
        let subalterno = identifier(&p.subalterno, &pf("subalterno"), false, &mut v);
        v.check(
            register != pb::CadastralRegister::Terreni || subalterno.is_empty(),
            pf("subalterno"),
            "must be empty for a land parcel",
        );
        parcels.push(Parcel {
            cadastral_unit_id: String::new(),
            register: register as i32,
            sezione: identifier(&p.sezione, &pf("sezione"), false, &mut v),
            foglio: identifier(&p.foglio, &pf("foglio"), true, &mut v),
            particella: identifier(&p.particella, &pf("particella"), true, &mut v),
            subalterno,
        });
    }

    let mut constraints = Vec::new();
    for (i, c) in d.constraints.iter().enumerate() {
        match pb::LandConstraint::try_from(*c) {
            Ok(pb::LandConstraint::Unspecified) | Err(_) => v.add(
                format!("{prefix}.constraints[{i}]"),
                "must be IDROGEOLOGICO, AMBIENTALE, PAESAGGISTICO or CULTURALE",
            ),
            Ok(c) => constraints.push(c as i32),
        }
    }
    constraints.sort_unstable();
    constraints.dedup();
    let attachments = validate_attachments(&d.attachments, &f("attachments"), &mut v);

    if !v.is_empty() {
        return Err(v);
    }
    Ok(NewDraft {
        istat_code: d.istat_code.clone(),
        kind,
        applicant_fiscal_code: applicant,
        designer_fiscal_code: designer,
        designer_registration,
        subject,
        description,
        intervention_category,
        street,
        house_number: address.house_number.trim().to_owned(),
        postal_code: address.postal_code.trim().to_owned(),
        locality: address.locality.trim().to_owned(),
        parcels,
        constraints,
        attachments,
    })
}

/// What a stored draft holds, as far as filing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DraftSummary<'a> {
    /// Kind of title.
    pub kind: pb::BuildingPermitKind,
    /// Designer's code (may be empty).
    pub designer_fiscal_code: &'a str,
    /// Intervention category.
    pub intervention_category: i32,
    /// Street of the works.
    pub street: &'a str,
    /// Parcels listed.
    pub parcels: usize,
    /// Documents attached.
    pub attachments: usize,
}

/// What a draft still lacks before it can be filed; empty when it is complete. Every title but the
/// CIL is signed by a designer (asseverazione) and comes with at least the technical report.
pub fn submission_gaps(d: &DraftSummary<'_>) -> Vec<String> {
    let mut gaps = Vec::new();
    let signed = d.kind != pb::BuildingPermitKind::Cil;
    if signed && d.designer_fiscal_code.is_empty() {
        gaps.push(format!(
            "designer_fiscal_code: a {} is signed by a designer (progettista)",
            kind_name(d.kind)
        ));
    }
    if d.intervention_category == 0 {
        gaps.push("intervention_category: say which category of intervention it is".into());
    }
    if d.street.is_empty() {
        gaps.push("address.street: give the address of the works".into());
    }
    if d.parcels == 0 {
        gaps.push("parcels: list at least one cadastral parcel or unit".into());
    }
    if signed && d.attachments == 0 {
        gaps.push("attachments: attach at least the relazione tecnica asseverata".into());
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> pb::BuildingPermitDraft {
        pb::BuildingPermitDraft {
            istat_code: "082053".into(),
            kind: pb::BuildingPermitKind::Pdc as i32,
            applicant_fiscal_code: "RCCMNL83S18D969H".into(),
            designer_fiscal_code: "CNTCHR83T41D969D".into(),
            subject: "Ampliamento di edificio residenziale".into(),
            intervention_category: pb::InterventionCategory::NuovaCostruzione as i32,
            address: Some(patto_proto::common::v1::Address {
                street: "Via Maqueda".into(),
                house_number: "100".into(),
                ..Default::default()
            }),
            parcels: vec![pb::BuildingPermitParcel {
                foglio: "45".into(),
                particella: "1203".into(),
                ..Default::default()
            }],
            constraints: vec![3, 3],
            attachments: vec![pb::BuildingPermitAttachment {
                name: "relazione.pdf".into(),
                sha256: "a".repeat(64),
                size_bytes: 1024,
                media_type: "application/pdf".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_good_draft_passes_and_is_complete() {
        let d = validate_draft(&good(), "draft", &HashMap::new()).unwrap();
        assert_eq!(d.constraints, [3]);
        assert_eq!(
            d.parcels[0].register,
            pb::CadastralRegister::Fabbricati as i32
        );
        let gaps = submission_gaps(&DraftSummary {
            kind: d.kind,
            designer_fiscal_code: &d.designer_fiscal_code,
            intervention_category: d.intervention_category,
            street: &d.street,
            parcels: d.parcels.len(),
            attachments: d.attachments.len(),
        });
        assert!(gaps.is_empty(), "{gaps:?}");
    }

    #[test]
    fn draft_violations_name_their_field() {
        type Edit = fn(&mut pb::BuildingPermitDraft);
        let cases: &[(&str, Edit, &str)] = &[
            ("no comune", |d| d.istat_code.clear(), "draft.istat_code"),
            ("no kind", |d| d.kind = 0, "draft.kind"),
            (
                "bad applicant",
                |d| d.applicant_fiscal_code = "X".into(),
                "draft.applicant_fiscal_code",
            ),
            (
                "company designer",
                |d| d.designer_fiscal_code = "00743110157".into(),
                "draft.designer_fiscal_code",
            ),
            ("no subject", |d| d.subject.clear(), "draft.subject"),
            (
                "bad category",
                |d| d.intervention_category = 77,
                "draft.intervention_category",
            ),
            (
                "no foglio",
                |d| d.parcels[0].foglio.clear(),
                "draft.parcels[0].foglio",
            ),
            (
                "unknown unit",
                |d| d.parcels[0].cadastral_unit_id = "cu-x".into(),
                "draft.parcels[0].cadastral_unit_id",
            ),
            (
                "bad vincolo",
                |d| d.constraints = vec![0],
                "draft.constraints[0]",
            ),
            (
                "bad hash",
                |d| d.attachments[0].sha256 = "ABC".into(),
                "draft.attachments[0].sha256",
            ),
            (
                "empty file",
                |d| d.attachments[0].size_bytes = 0,
                "draft.attachments[0].size_bytes",
            ),
        ];
        for (case, edit, field) in cases {
            let mut d = good();
            edit(&mut d);
            let v = validate_draft(&d, "draft", &HashMap::new()).expect_err(case);
            assert!(
                v.as_slice().iter().any(|x| x.field == *field),
                "{case}: {v}"
            );
        }
    }

    #[test]
    fn registered_units_supply_their_identifiers() {
        let mut d = good();
        d.parcels = vec![pb::BuildingPermitParcel {
            cadastral_unit_id: "cu-1".into(),
            ..Default::default()
        }];
        let units = HashMap::from([(
            "cu-1".to_owned(),
            UnitFacts {
                istat_code: "082053".into(),
                register: 1,
                sezione: String::new(),
                foglio: "12".into(),
                particella: "345".into(),
                subalterno: "6".into(),
            },
        )]);
        let ok = validate_draft(&d, "draft", &units).unwrap();
        assert_eq!(ok.parcels[0].particella, "345");
        d.istat_code = "082001".into();
        let v = validate_draft(&d, "draft", &units).unwrap_err();
        assert_eq!(v.as_slice()[0].field, "draft.parcels[0].cadastral_unit_id");
    }

    #[test]
    fn incomplete_drafts_list_what_is_missing() {
        let empty = DraftSummary {
            kind: pb::BuildingPermitKind::Cila,
            designer_fiscal_code: "",
            intervention_category: 0,
            street: "",
            parcels: 0,
            attachments: 0,
        };
        assert_eq!(submission_gaps(&empty).len(), 5);
        let cil = DraftSummary {
            kind: pb::BuildingPermitKind::Cil,
            intervention_category: 1,
            street: "Via Roma",
            parcels: 1,
            ..empty
        };
        assert!(submission_gaps(&cil).is_empty());
    }
}
