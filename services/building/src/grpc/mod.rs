//! The gRPC face of the building service: request validation, access checks, conversions, and the
//! status feed behind the watch RPC (an in-process broadcast, plus a timer per watched permit so a
//! deadline-driven change such as silenzio-assenso is streamed when it happens).
//!
//! Every read of cadastral units or permits is checked against the shared access rule and, when the
//! reader is not the citizen concerned, recorded ([`patto_service_kit::audit`]) before it is
//! answered; every change is authorized before anything is written. How the records and moves map
//! onto the rule is in `access`.

mod access;
pub mod convert;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use patto_proto::building::v1 as pb;
use patto_proto::building::v1::building_service_server::BuildingService;
use patto_service_kit::access::{self as rule, Act, signed_in};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::comuni;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::{Principal, time};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::application::{UnitFacts, validate_attachments, validate_draft};
use crate::domain::cadastre::{Categoria, holding_window, validate_unit};
use crate::domain::permit as workflow;
use crate::domain::terms::PermitTerms;
use crate::domain::{
    self, MAX_NAME_LEN, MAX_TEXT_LEN, holder_code, optional_day, person_code, text,
};
use crate::store::{Edit, PermitFilter, PermitRecord, Store, UnitFilter};
use access::{PERMIT, UNIT, permit_record, unit_record};
use convert::{ownership_to_pb, permit_to_pb, transition_to_pb, unit_to_pb};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, istat_check, istat_key, optional_enum,
};

/// Most rows one import stream may carry; larger extracts go in several imports.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Longest protocol number accepted from a comune's protocollo.
const MAX_PROTOCOL_LEN: usize = 64;

/// The `patto.building.v1.BuildingService` implementation.
#[derive(Clone)]
pub struct BuildingApi {
    store: Store,
    updates: broadcast::Sender<pb::WatchBuildingPermitResponse>,
}

type Answer<T> = Result<Response<T>, Status>;

fn required_id(value: &str, field: &str, v: &mut Violations) -> String {
    any_id(value)
        .map_err(|msg| v.add(field, msg))
        .unwrap_or_default()
}

fn optional_time(
    t: Option<&prost_types::Timestamp>,
    field: &str,
    v: &mut Violations,
) -> Option<DateTime<Utc>> {
    let t = t?;
    let parsed = time::from_timestamp(t);
    v.check(parsed.is_some(), field, "is not a valid timestamp");
    parsed
}

/// Which side of the procedure a workflow RPC belongs to.
enum Side {
    Applicant,
    Operator,
}

impl BuildingApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self { store, updates }
    }

    fn publish(&self, record: &PermitRecord, changes: usize) {
        let permit = permit_to_pb(record);
        let skip = record.history.len().saturating_sub(changes);
        for t in record.history.iter().skip(skip) {
            // No subscriber is not an error: nobody is watching.
            let _ = self.updates.send(pb::WatchBuildingPermitResponse {
                permit_id: record.permit.id.clone(),
                status: t.to_status,
                transition: Some(transition_to_pb(t)),
                permit: Some(permit.clone()),
            });
        }
    }

    /// Lets the clock make the moves it owes before a read, and tells the watchers.
    async fn settle(&self) -> Result<(), ServiceError> {
        for moved in self.store.settle_due(Utc::now()).await? {
            self.publish(&moved, 1);
        }
        Ok(())
    }

    /// Loads a permit for a workflow RPC, checks who may move it, applies the change, publishes it.
    async fn act(
        &self,
        principal: &Principal,
        id: &str,
        side: Side,
        edit: Edit,
    ) -> Result<pb::BuildingPermit, ServiceError> {
        signed_in(
            principal,
            "permits are moved by their applicants and the comune's operators",
        )?;
        let current = self
            .store
            .permit(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("building permit", id))?;
        let p = &current.permit;
        let actor = match side {
            Side::Applicant => {
                access::as_applicant(principal, &p.applicant_fiscal_code, &p.istat_code)?
            }
            Side::Operator => access::as_operator(principal, &p.istat_code)?,
        };
        let (record, changes) = self.store.act(id, edit, &actor, Utc::now()).await?;
        self.publish(&record, changes);
        Ok(permit_to_pb(&record))
    }

    async fn unit_facts(
        &self,
        draft: &pb::BuildingPermitDraft,
    ) -> Result<HashMap<String, UnitFacts>, ServiceError> {
        let ids: Vec<String> = draft
            .parcels
            .iter()
            .map(|p| p.cadastral_unit_id.trim().to_owned())
            .filter(|id| !id.is_empty() && id.len() <= 64)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store
            .units_by_id(&ids)
            .await?
            .into_iter()
            .map(|r| {
                let u = r.unit;
                (
                    u.id,
                    UnitFacts {
                        istat_code: u.istat_code,
                        register: u.register,
                        sezione: u.sezione,
                        foglio: u.foglio,
                        particella: u.particella,
                        subalterno: u.subalterno,
                    },
                )
            })
            .collect())
    }
}

fn permit_answer<T>(
    wrap: impl FnOnce(Option<pb::BuildingPermit>) -> T,
    p: pb::BuildingPermit,
) -> Answer<T> {
    Ok(Response::new(wrap(Some(p))))
}

#[tonic::async_trait]
impl BuildingService for BuildingApi {
    async fn list_cadastral_units(
        &self,
        request: Request<pb::ListCadastralUnitsRequest>,
    ) -> Answer<pb::ListCadastralUnitsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "cadastral units name their holders")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        let register = optional_enum::<pb::CadastralRegister>(req.register, "register", &mut v);
        let upper = |s: &str| Some(s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty());
        let (sezione, foglio, particella, subalterno) = (
            upper(&req.sezione),
            upper(&req.foglio),
            upper(&req.particella),
            upper(&req.subalterno),
        );
        v.check(
            particella.is_none() || foglio.is_some(),
            "particella",
            "needs foglio: a particella is numbered within its foglio",
        );
        v.check(
            subalterno.is_none() || particella.is_some(),
            "subalterno",
            "needs particella: a subalterno is numbered within its particella",
        );
        let categoria = match req.categoria.trim().to_ascii_uppercase() {
            c if c.is_empty() => None,
            c if c.len() == 1 && "ABCDEF".contains(c.as_str()) => Some(c),
            c => match Categoria::parse(&c) {
                Some(cat) => Some(cat.code()),
                None => {
                    v.add(
                        "categoria",
                        "must be a categoria such as A/2 or a group letter A–F",
                    );
                    None
                }
            },
        };
        let owner = if req.owner_fiscal_code.trim().is_empty() {
            None
        } else {
            holder_code(&req.owner_fiscal_code)
                .map_err(|msg| v.add("owner_fiscal_code", msg))
                .ok()
        };
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        // A citizen searches among their own units, an operator or system its comune's.
        let (_, owner) = rule::narrow(
            &caller.principal,
            Some(req.istat_code.clone()),
            owner,
            "cadastral units name their holders",
        )?;
        let filter = UnitFilter {
            istat_code: req.istat_code.clone(),
            register,
            sezione,
            foglio,
            particella,
            subalterno,
            categoria,
            owner,
            street: Some(req.street.trim().to_owned()).filter(|s| !s.is_empty()),
            include_ended: req.include_ended,
            today: Utc::now().date_naive(),
        };
        let (rows, total) = self
            .store
            .list_units(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, UNIT)
            .check_all(rows.iter().map(unit_record))?
            .save(self.store.db())
            .await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListCadastralUnitsResponse {
            units: rows.iter().map(unit_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_cadastral_units(
        &self,
        request: Request<pb::LookupCadastralUnitsRequest>,
    ) -> Answer<pb::LookupCadastralUnitsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "cadastral units name their holders")?;
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows = self
            .store
            .units_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        // Units the caller may not read are left out, as unknown ones are.
        let mut reads = Reads::new(caller, UNIT);
        let items: Vec<_> = rows
            .iter()
            .filter(|r| reads.allows(&unit_record(r)))
            .map(|r| pb::LookupCadastralUnitsItem {
                key: r.unit.id.clone(),
                unit: Some(unit_to_pb(r)),
            })
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupCadastralUnitsResponse { items }))
    }

    async fn list_citizen_properties(
        &self,
        request: Request<pb::ListCitizenPropertiesRequest>,
    ) -> Answer<pb::ListCitizenPropertiesResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "properties are personal data")?;
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, holder_code)?;
        for code in &canonical {
            rule::authorize_citizen_listing(&caller.principal, code)?;
        }
        let mut v = Violations::new();
        v.check(
            req.year == 0 || (1900..=2200).contains(&req.year),
            "year",
            "must be a calendar year (1900–2200), or 0 for rights held today",
        );
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        v.into_result()?;
        let today = Utc::now().date_naive();
        let Some((from, to)) = holding_window(req.year, today) else {
            return Err(ServiceError::invalid("year", "is not a calendar year").into());
        };
        // Operators and systems get their comune's units only.
        let (istat, _) = rule::narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            None,
            "an operator reads the properties in their own comune only",
        )?;
        let rows = self
            .store
            .holdings(&canonical, from, to, istat.as_deref())
            .await
            .map_err(ServiceError::from)?;
        let mut reads = Reads::new(caller, UNIT);
        let mut items = Vec::new();
        for (key, cf) in asked_keys(&req.keys, holder_code) {
            let mut holdings = Vec::new();
            for (o, unit) in rows.iter().filter(|(o, _)| o.fiscal_code == cf) {
                if reads.allows(&unit_record(unit)) {
                    holdings.push(pb::PropertyHolding {
                        unit: Some(unit_to_pb(unit)),
                        ownership: Some(ownership_to_pb(o)),
                    });
                }
            }
            if !holdings.is_empty() {
                items.push(pb::ListCitizenPropertiesItem { key, holdings });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenPropertiesResponse { items }))
    }

    async fn import_cadastral_units(
        &self,
        request: Request<Streaming<pb::ImportCadastralUnitsRequest>>,
    ) -> Answer<pb::ImportCadastralUnitsResponse> {
        // Importing is the work of a comune, for its own Catasto: refused before a row is read.
        let who = principal(&request);
        let comune = who.comune().unwrap_or_default().to_owned();
        rule::authorize_write(&who, &Act::for_comune(&comune))?;
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            rows.push(row?);
            if rows.len() > MAX_IMPORT_ROWS {
                return Err(ServiceError::invalid(
                    "unit",
                    format!("an import carries at most {MAX_IMPORT_ROWS} rows; split the extract"),
                )
                .into());
            }
        }
        // Every row must lie in the caller's comune.
        let mut valid = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        let mut seen: HashMap<(String, String, String, String, String), usize> = HashMap::new();
        let err = |row: usize, field: &str, description: String| pb::CadastralImportError {
            row: row as i32,
            field: field.into(),
            description,
        };
        for (i, row) in rows.iter().enumerate() {
            let number = i + 1;
            let Some(unit) = &row.unit else {
                errors.push(err(number, "unit", "must be set".into()));
                continue;
            };
            match validate_unit(unit, "unit") {
                Ok(u) => {
                    if comune != u.istat_code {
                        errors.push(err(
                            number,
                            "unit.istat_code",
                            format!("every row of an import must lie in comune {comune}"),
                        ));
                    } else if let Some(first) = seen.insert(u.natural_key(), number) {
                        errors.push(err(
                            number,
                            "unit",
                            format!("the same unit (Belfiore, sezione, foglio, particella, subalterno) as row {first}"),
                        ));
                    } else {
                        valid.push(u);
                    }
                }
                Err(violations) => errors.extend(
                    violations
                        .as_slice()
                        .iter()
                        .map(|f| err(number, &f.field, f.description.clone())),
                ),
            }
        }
        if !errors.is_empty() {
            return Ok(Response::new(pb::ImportCadastralUnitsResponse {
                imported: 0,
                created: 0,
                updated: 0,
                errors,
            }));
        }
        let imported = valid.len() as i32;
        let (created, updated) = self
            .store
            .import_units(valid, Utc::now())
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::ImportCadastralUnitsResponse {
            imported,
            created: created as i32,
            updated: updated as i32,
            errors: Vec::new(),
        }))
    }

    async fn list_building_permits(
        &self,
        request: Request<pb::ListBuildingPermitsRequest>,
    ) -> Answer<pb::ListBuildingPermitsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "permits are personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        let kind = optional_enum::<pb::BuildingPermitKind>(req.kind, "kind", &mut v);
        let status = optional_enum::<pb::BuildingPermitStatus>(req.status, "status", &mut v);
        let applicant = if req.applicant_fiscal_code.trim().is_empty() {
            None
        } else {
            holder_code(&req.applicant_fiscal_code)
                .map_err(|msg| v.add("applicant_fiscal_code", msg))
                .ok()
        };
        let submitted_after =
            optional_time(req.submitted_after.as_ref(), "submitted_after", &mut v);
        let submitted_before =
            optional_time(req.submitted_before.as_ref(), "submitted_before", &mut v);
        let deadline_before =
            optional_time(req.deadline_before.as_ref(), "deadline_before", &mut v);
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        // A citizen sees their own applications, an operator or system its comune's.
        let (istat_code, applicant) = rule::narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            applicant,
            "permits are personal data",
        )?;
        self.settle().await?;
        let filter = PermitFilter {
            istat_code,
            kind,
            status,
            applicant,
            submitted_after,
            submitted_before,
            deadline_before,
        };
        let (rows, total) = self
            .store
            .list_permits(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, PERMIT)
            .check_all(rows.iter().map(|r| permit_record(&r.permit)))?
            .save(self.store.db())
            .await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListBuildingPermitsResponse {
            permits: rows.iter().map(permit_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_building_permits(
        &self,
        request: Request<pb::LookupBuildingPermitsRequest>,
    ) -> Answer<pb::LookupBuildingPermitsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "permits are personal data")?;
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        self.settle().await?;
        let rows = self
            .store
            .permits_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        // Permits the caller may not read are left out, as unknown ones are.
        let mut reads = Reads::new(caller, PERMIT);
        let items: Vec<_> = rows
            .iter()
            .filter(|r| reads.allows(&permit_record(&r.permit)))
            .map(|r| pb::LookupBuildingPermitsItem {
                key: r.permit.id.clone(),
                permit: Some(permit_to_pb(r)),
            })
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupBuildingPermitsResponse { items }))
    }

    async fn list_citizen_building_permits(
        &self,
        request: Request<pb::ListCitizenBuildingPermitsRequest>,
    ) -> Answer<pb::ListCitizenBuildingPermitsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "permits are personal data")?;
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, holder_code)?;
        for code in &canonical {
            rule::authorize_citizen_listing(&caller.principal, code)?;
        }
        let mut v = Violations::new();
        let status = optional_enum::<pb::BuildingPermitStatus>(req.status, "status", &mut v);
        v.into_result()?;
        self.settle().await?;
        let rows = self
            .store
            .permits_by_applicant(&canonical, status)
            .await
            .map_err(ServiceError::from)?;
        // Operators and systems get their comune's permits only.
        let mut reads = Reads::new(caller, PERMIT);
        let mut items = Vec::new();
        for (key, cf) in asked_keys(&req.keys, holder_code) {
            let permits: Vec<pb::BuildingPermit> = rows
                .iter()
                .filter(|r| r.permit.applicant_fiscal_code == cf)
                .filter(|r| reads.allows(&permit_record(&r.permit)))
                .map(permit_to_pb)
                .collect();
            if !permits.is_empty() {
                items.push(pb::ListCitizenBuildingPermitsItem { key, permits });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenBuildingPermitsResponse {
            items,
        }))
    }

    async fn list_municipality_building_permits(
        &self,
        request: Request<pb::ListMunicipalityBuildingPermitsRequest>,
    ) -> Answer<pb::ListMunicipalityBuildingPermitsResponse> {
        let caller = Caller::of(&request);
        signed_in(
            &caller.principal,
            "a comune's register of permits names its applicants",
        )?;
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        v.check(
            (0..=100).contains(&req.first),
            "first",
            "must be between 1 and 100 (0 means 10)",
        );
        let status = optional_enum::<pb::BuildingPermitStatus>(req.status, "status", &mut v);
        let kind = optional_enum::<pb::BuildingPermitKind>(req.kind, "kind", &mut v);
        v.into_result()?;
        // The register is the comune's: its operators and systems read their own comune's only.
        let Some(own) = caller.principal.comune() else {
            return Err(ServiceError::PermissionDenied(
                "a comune's register of permits is for its operators; citizens list their own permits".into(),
            )
            .into());
        };
        let keys: Vec<String> = keys.into_iter().filter(|k| k == own).collect();
        let per_comune = if req.first == 0 { 10 } else { req.first as u64 };
        self.settle().await?;
        let rows = self
            .store
            .latest_by_comune(&keys, per_comune, status, kind)
            .await
            .map_err(ServiceError::from)?;
        let mut reads = Reads::new(caller, PERMIT);
        let mut items = Vec::new();
        for (key, permits) in rows {
            let mut answered = Vec::with_capacity(permits.len());
            for r in &permits {
                reads.check(&permit_record(&r.permit))?;
                answered.push(permit_to_pb(r));
            }
            items.push(pb::ListMunicipalityBuildingPermitsItem {
                key,
                permits: answered,
            });
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListMunicipalityBuildingPermitsResponse {
            items,
        }))
    }

    async fn get_building_permit_terms(
        &self,
        request: Request<pb::GetBuildingPermitTermsRequest>,
    ) -> Answer<pb::GetBuildingPermitTermsResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        v.into_result()?;
        let (terms, updated) = self.store.terms(&req.istat_code).await?;
        Ok(Response::new(pb::GetBuildingPermitTermsResponse {
            terms: Some(terms.to_pb(&req.istat_code, updated.map(time::to_timestamp))),
        }))
    }

    async fn set_building_permit_terms(
        &self,
        request: Request<pb::SetBuildingPermitTermsRequest>,
    ) -> Answer<pb::SetBuildingPermitTermsResponse> {
        let who = principal(&request);
        signed_in(&who, "terms are set by the comune's operators")?;
        let Some(t) = request.into_inner().terms else {
            return Err(ServiceError::invalid("terms", "must be set").into());
        };
        let Some(comune) = comuni::by_istat(&t.istat_code) else {
            return Err(ServiceError::invalid(
                "terms.istat_code",
                "must be the ISTAT code of a comune of the Città Metropolitana di Palermo, e.g. 082053",
            )
            .into());
        };
        let terms =
            PermitTerms::from_pb(&t, comune, "terms").map_err(ServiceError::InvalidArgument)?;
        access::as_operator(&who, &t.istat_code)?;
        let now = Utc::now();
        self.store.set_terms(&t.istat_code, &terms, now).await?;
        Ok(Response::new(pb::SetBuildingPermitTermsResponse {
            terms: Some(terms.to_pb(&t.istat_code, Some(time::to_timestamp(now)))),
        }))
    }

    async fn create_building_permit_draft(
        &self,
        request: Request<pb::CreateBuildingPermitDraftRequest>,
    ) -> Answer<pb::CreateBuildingPermitDraftResponse> {
        let who = principal(&request);
        signed_in(&who, "an application is filed by its applicant")?;
        let Some(draft) = request.into_inner().draft else {
            return Err(ServiceError::invalid("draft", "must be set").into());
        };
        let units = self.unit_facts(&draft).await?;
        let d = validate_draft(&draft, "draft", &units).map_err(ServiceError::InvalidArgument)?;
        let actor = access::as_applicant(&who, &d.applicant_fiscal_code, &d.istat_code)?;
        let record = self.store.create_draft(d, &actor, Utc::now()).await?;
        permit_answer(
            |permit| pb::CreateBuildingPermitDraftResponse { permit },
            permit_to_pb(&record),
        )
    }

    async fn update_building_permit_draft(
        &self,
        request: Request<pb::UpdateBuildingPermitDraftRequest>,
    ) -> Answer<pb::UpdateBuildingPermitDraftResponse> {
        let who = principal(&request);
        signed_in(&who, "an application is edited by its applicant")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        if req.draft.is_none() {
            v.add("draft", "must be set");
        }
        v.into_result()?;
        let draft = req.draft.unwrap_or_default();
        let current = self
            .store
            .permit(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("building permit", &id))?;
        access::as_applicant(
            &who,
            &current.permit.applicant_fiscal_code,
            &current.permit.istat_code,
        )?;
        let units = self.unit_facts(&draft).await?;
        let d = validate_draft(&draft, "draft", &units).map_err(ServiceError::InvalidArgument)?;
        let mut v = Violations::new();
        v.check(
            d.applicant_fiscal_code == current.permit.applicant_fiscal_code,
            "draft.applicant_fiscal_code",
            format!(
                "must stay {}: start a new draft for another applicant",
                current.permit.applicant_fiscal_code
            ),
        );
        v.check(
            d.istat_code == current.permit.istat_code,
            "draft.istat_code",
            format!(
                "must stay {}: start a new draft for another comune",
                current.permit.istat_code
            ),
        );
        v.into_result()?;
        let record = self.store.update_draft(&id, d, Utc::now()).await?;
        permit_answer(
            |permit| pb::UpdateBuildingPermitDraftResponse { permit },
            permit_to_pb(&record),
        )
    }

    async fn submit_building_permit(
        &self,
        request: Request<pb::SubmitBuildingPermitRequest>,
    ) -> Answer<pb::SubmitBuildingPermitResponse> {
        let who = principal(&request);
        let mut v = Violations::new();
        let id = required_id(&request.into_inner().permit_id, "permit_id", &mut v);
        v.into_result()?;
        let p = self.act(&who, &id, Side::Applicant, Edit::Submit).await?;
        permit_answer(|permit| pb::SubmitBuildingPermitResponse { permit }, p)
    }

    async fn withdraw_building_permit(
        &self,
        request: Request<pb::WithdrawBuildingPermitRequest>,
    ) -> Answer<pb::WithdrawBuildingPermitResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let reason = text(&req.reason, "reason", MAX_TEXT_LEN, false, &mut v);
        v.into_result()?;
        let p = self
            .act(&who, &id, Side::Applicant, Edit::Withdraw { reason })
            .await?;
        permit_answer(|permit| pb::WithdrawBuildingPermitResponse { permit }, p)
    }

    async fn assign_building_permit(
        &self,
        request: Request<pb::AssignBuildingPermitRequest>,
    ) -> Answer<pb::AssignBuildingPermitResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let officer = text(
            &req.responsible_officer,
            "responsible_officer",
            MAX_NAME_LEN,
            true,
            &mut v,
        );
        v.into_result()?;
        let p = self
            .act(&who, &id, Side::Operator, Edit::Assign { officer })
            .await?;
        permit_answer(|permit| pb::AssignBuildingPermitResponse { permit }, p)
    }

    async fn request_building_permit_integration(
        &self,
        request: Request<pb::RequestBuildingPermitIntegrationRequest>,
    ) -> Answer<pb::RequestBuildingPermitIntegrationResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let note = text(&req.note, "note", MAX_TEXT_LEN, true, &mut v);
        v.into_result()?;
        let p = self
            .act(&who, &id, Side::Operator, Edit::RequestIntegration { note })
            .await?;
        permit_answer(
            |permit| pb::RequestBuildingPermitIntegrationResponse { permit },
            p,
        )
    }

    async fn submit_building_permit_integration(
        &self,
        request: Request<pb::SubmitBuildingPermitIntegrationRequest>,
    ) -> Answer<pb::SubmitBuildingPermitIntegrationResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let note = text(&req.note, "note", MAX_TEXT_LEN, false, &mut v);
        v.check(
            !req.attachments.is_empty(),
            "attachments",
            "must carry the documents requested",
        );
        let attachments = validate_attachments(&req.attachments, "attachments", &mut v);
        v.into_result()?;
        let p = self
            .act(
                &who,
                &id,
                Side::Applicant,
                Edit::SubmitIntegration { attachments, note },
            )
            .await?;
        permit_answer(
            |permit| pb::SubmitBuildingPermitIntegrationResponse { permit },
            p,
        )
    }

    async fn convene_building_permit_conference(
        &self,
        request: Request<pb::ConveneBuildingPermitConferenceRequest>,
    ) -> Answer<pb::ConveneBuildingPermitConferenceResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let note = text(&req.note, "note", MAX_TEXT_LEN, true, &mut v);
        v.into_result()?;
        let p = self
            .act(&who, &id, Side::Operator, Edit::Convene { note })
            .await?;
        permit_answer(
            |permit| pb::ConveneBuildingPermitConferenceResponse { permit },
            p,
        )
    }

    async fn propose_building_permit_decision(
        &self,
        request: Request<pb::ProposeBuildingPermitDecisionRequest>,
    ) -> Answer<pb::ProposeBuildingPermitDecisionResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let outcome = match pb::PermitProposalOutcome::try_from(req.outcome) {
            Ok(pb::PermitProposalOutcome::Unspecified) | Err(_) => {
                v.add("outcome", "must be FAVOURABLE or UNFAVOURABLE");
                pb::PermitProposalOutcome::Unspecified
            }
            Ok(o) => o,
        };
        let motivation = text(&req.motivation, "motivation", MAX_TEXT_LEN, true, &mut v);
        let contribution_cents = req.construction_contribution.map_or(0, |m| m.cents);
        v.check(
            (0..=domain::MAX_AMOUNT_CENTS).contains(&contribution_cents),
            "construction_contribution.cents",
            "must not be negative (0 when none is due) nor above € 10 billion",
        );
        v.into_result()?;
        let p = self
            .act(
                &who,
                &id,
                Side::Operator,
                Edit::Propose {
                    outcome,
                    motivation,
                    contribution_cents,
                },
            )
            .await?;
        permit_answer(
            |permit| pb::ProposeBuildingPermitDecisionResponse { permit },
            p,
        )
    }

    async fn decide_building_permit(
        &self,
        request: Request<pb::DecideBuildingPermitRequest>,
    ) -> Answer<pb::DecideBuildingPermitResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let outcome = match pb::PermitDecisionOutcome::try_from(req.outcome) {
            Ok(pb::PermitDecisionOutcome::Unspecified) | Err(_) => {
                v.add("outcome", "must be GRANT, PREAVVISO_DINIEGO or DENY");
                pb::PermitDecisionOutcome::Unspecified
            }
            Ok(o) => o,
        };
        let reasoned = matches!(
            outcome,
            pb::PermitDecisionOutcome::PreavvisoDiniego | pb::PermitDecisionOutcome::Deny
        );
        let motivation = text(
            &req.motivation,
            "motivation",
            MAX_TEXT_LEN,
            reasoned,
            &mut v,
        );
        let protocol_number = text(
            &req.protocol_number,
            "protocol_number",
            MAX_PROTOCOL_LEN,
            false,
            &mut v,
        );
        v.into_result()?;
        let p = self
            .act(
                &who,
                &id,
                Side::Operator,
                Edit::Decide {
                    outcome,
                    motivation,
                    protocol_number,
                },
            )
            .await?;
        permit_answer(|permit| pb::DecideBuildingPermitResponse { permit }, p)
    }

    async fn submit_building_permit_observations(
        &self,
        request: Request<pb::SubmitBuildingPermitObservationsRequest>,
    ) -> Answer<pb::SubmitBuildingPermitObservationsResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let observations = text(
            &req.observations,
            "observations",
            MAX_TEXT_LEN,
            true,
            &mut v,
        );
        let attachments = validate_attachments(&req.attachments, "attachments", &mut v);
        v.into_result()?;
        let p = self
            .act(
                &who,
                &id,
                Side::Applicant,
                Edit::Observations {
                    text: observations,
                    attachments,
                },
            )
            .await?;
        permit_answer(
            |permit| pb::SubmitBuildingPermitObservationsResponse { permit },
            p,
        )
    }

    async fn attest_silenzio_assenso(
        &self,
        request: Request<pb::AttestSilenzioAssensoRequest>,
    ) -> Answer<pb::AttestSilenzioAssensoResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let protocol_number = text(
            &req.protocol_number,
            "protocol_number",
            MAX_PROTOCOL_LEN,
            false,
            &mut v,
        );
        v.into_result()?;
        let p = self
            .act(&who, &id, Side::Operator, Edit::Attest { protocol_number })
            .await?;
        permit_answer(|permit| pb::AttestSilenzioAssensoResponse { permit }, p)
    }

    async fn start_building_works(
        &self,
        request: Request<pb::StartBuildingWorksRequest>,
    ) -> Answer<pb::StartBuildingWorksResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let date = optional_day(&req.start_date, "start_date", &mut v);
        if req.start_date.trim().is_empty() {
            v.add("start_date", "must be the day works start (YYYY-MM-DD)");
        }
        let contractor = holder_code(&req.contractor_fiscal_code)
            .map_err(|msg| v.add("contractor_fiscal_code", msg))
            .unwrap_or_default();
        let director = if req.works_director_fiscal_code.trim().is_empty() {
            String::new()
        } else {
            person_code(&req.works_director_fiscal_code)
                .map_err(|msg| v.add("works_director_fiscal_code", msg))
                .unwrap_or_default()
        };
        v.into_result()?;
        let Some(date) = date else {
            return Err(ServiceError::invalid("start_date", "must be set").into());
        };
        let p = self
            .act(
                &who,
                &id,
                Side::Applicant,
                Edit::StartWorks {
                    date,
                    contractor,
                    director,
                },
            )
            .await?;
        permit_answer(|permit| pb::StartBuildingWorksResponse { permit }, p)
    }

    async fn end_building_works(
        &self,
        request: Request<pb::EndBuildingWorksRequest>,
    ) -> Answer<pb::EndBuildingWorksResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        let date = optional_day(&req.end_date, "end_date", &mut v);
        if req.end_date.trim().is_empty() {
            v.add("end_date", "must be the day works ended (YYYY-MM-DD)");
        }
        v.into_result()?;
        let Some(date) = date else {
            return Err(ServiceError::invalid("end_date", "must be set").into());
        };
        let p = self
            .act(&who, &id, Side::Applicant, Edit::EndWorks { date })
            .await?;
        permit_answer(|permit| pb::EndBuildingWorksResponse { permit }, p)
    }

    async fn file_agibility_certification(
        &self,
        request: Request<pb::FileAgibilityCertificationRequest>,
    ) -> Answer<pb::FileAgibilityCertificationResponse> {
        let who = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = required_id(&req.permit_id, "permit_id", &mut v);
        v.check(
            !req.attachments.is_empty(),
            "attachments",
            "must carry the SCA documents (director's declaration, conformity certificates, cadastral update)",
        );
        let attachments = validate_attachments(&req.attachments, "attachments", &mut v);
        v.into_result()?;
        let p = self
            .act(
                &who,
                &id,
                Side::Applicant,
                Edit::FileAgibility { attachments },
            )
            .await?;
        permit_answer(
            |permit| pb::FileAgibilityCertificationResponse { permit },
            p,
        )
    }

    async fn watch_building_permit(
        &self,
        request: Request<pb::WatchBuildingPermitRequest>,
    ) -> Answer<BoxStream<pb::WatchBuildingPermitResponse>> {
        let draining = Draining::of(&request);
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "permits are personal data")?;
        let mut v = Violations::new();
        let id = required_id(&request.into_inner().permit_id, "permit_id", &mut v);
        v.into_result()?;
        // Subscribe before reading the current state, so no change falls between the two.
        let mut updates = self.updates.subscribe();
        if let Some(moved) = self.store.settle_one(&id, Utc::now()).await? {
            self.publish(&moved, 1);
        }
        let current = self
            .store
            .permit(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("building permit", &id))?;
        // Followed by its applicant and the comune's operators; recorded once, when the watch
        // starts.
        let mut reads = Reads::new(caller, PERMIT);
        reads.check(&permit_record(&current.permit))?;
        reads.save(self.store.db()).await?;
        let api = self.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            let first = pb::WatchBuildingPermitResponse {
                permit_id: id.clone(),
                status: current.permit.status,
                transition: None,
                permit: Some(permit_to_pb(&current)),
            };
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            let mut next_move = workflow::pending_automatic(&crate::store::facts(&current.permit))
                .map(|(_, at)| at);
            loop {
                let sleep = next_move.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
                tokio::select! {
                    update = updates.recv() => {
                        let message = match update {
                            Ok(m) if m.permit_id == id => m,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => {
                                // Fell behind: what matters is the latest state, so read it afresh.
                                match api.store.permit(&id).await {
                                    Ok(Some(r)) => pb::WatchBuildingPermitResponse {
                                        permit_id: id.clone(),
                                        status: r.permit.status,
                                        transition: r.history.last().map(transition_to_pb),
                                        permit: Some(permit_to_pb(&r)),
                                    },
                                    _ => continue,
                                }
                            }
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        if let Ok(Some(r)) = api.store.permit(&id).await {
                            next_move = workflow::pending_automatic(&crate::store::facts(&r.permit))
                                .map(|(_, at)| at);
                        }
                        if tx.send(Ok(message)).await.is_err() {
                            return;
                        }
                    }
                    () = async {
                        match sleep {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending::<()>().await,
                        }
                    } => {
                        // A deadline passed: let the clock move the permit; the change comes back
                        // through the broadcast like any other.
                        match api.store.settle_one(&id, Utc::now()).await {
                            Ok(Some(moved)) => api.publish(&moved, 1),
                            Ok(None) => next_move = None,
                            Err(e) => {
                                tracing::warn!(error = %e, permit = %id, "settling a watched permit failed");
                                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            }
                        }
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }
}
