//! The gRPC face of the social service: request validation, the kit's access rule applied to every
//! read and change with the caller's principal, the audit of personal-data reads, and the feed of
//! status changes behind the watch RPC.
//!
//! ISEE declarations, applications, payments and named rankings are special-category personal data
//! (economic hardship, health, disability). The rule (DESIGN.md, "Identity and tenancy", decided once
//! in [`patto_service_kit::access`]):
//! - a **citizen** reads the records that concern them (as applicant, beneficiary, declarant or
//!   household member);
//! - an **operator** or a comune's **system** reads the records its comune holds;
//! - **anonymous** callers read public things only: published benefit schemes and rankings that
//!   name applicants by protocol number alone.
//!
//! Every read of a citizen's record by anyone but that citizen is recorded
//! ([`patto_service_kit::audit`]) before the answer leaves.

mod convert;

use chrono::Utc;
use futures::StreamExt;
use patto_proto::social::v1 as pb;
use patto_proto::social::v1::social_service_server::SocialService;
use patto_service_kit::access::{self, Act, Record, Scope};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::{Principal, ids};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::domain::application::{validate_attachments, validate_draft};
use crate::domain::isee::validate_declaration;
use crate::domain::payments::validate_outcome;
use crate::domain::scheme::validate_scheme;
use crate::domain::{MAX_REF_LEN, MAX_TEXT_LEN, fits, italian_day};
use crate::store::{
    Actor, ApplicationFilter, ApplicationView, ImportRow, SchemeFilter, Store, application_record,
    scheme,
};
pub use convert::{application_to_pb, isee_to_pb, ranking_to_pb, scheme_to_pb};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, fiscal_code_key, istat_key, optional_enum,
};

/// Most rows one import stream may carry; larger extracts go in several imports.
pub const MAX_IMPORT_ROWS: usize = 50_000;

/// The `patto.social.v1.SocialService` implementation.
#[derive(Clone)]
pub struct SocialApi {
    store: Store,
    updates: broadcast::Sender<ApplicationView>,
}

impl SocialApi {
    /// The API over `store`.
    pub fn new(store: Store) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self { store, updates }
    }

    fn publish(&self, view: &ApplicationView) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.updates.send(view.clone());
    }
}

/// What a watcher receives: the application now, and the change that led there (none on the
/// first message).
fn watch_message(view: ApplicationView, first: bool) -> pb::WatchBenefitApplicationResponse {
    let transition = if first {
        None
    } else {
        view.history.last().map(convert::transition_to_pb)
    };
    pb::WatchBenefitApplicationResponse {
        application_id: view.app.id.clone(),
        status: view.app.status,
        transition,
        application: Some(application_to_pb(view)),
    }
}

/// The scheme as the access rule sees it: public once published, internal while a draft.
fn scheme_record(s: &scheme::Model) -> Record<'_> {
    if s.status == pb::BenefitSchemeStatus::Draft as i32 {
        Record::Comune {
            istat_code: &s.istat_code,
        }
    } else {
        Record::Public
    }
}

/// What the audit names a read of an application.
const APPLICATION: &str = "social.BenefitApplication";
/// What the audit names a read of an ISEE declaration.
const ISEE: &str = "social.IseeDeclaration";
/// What the audit names a read of a ranking with its applicants' ISEE values.
const RANKING: &str = "social.BenefitRanking";

/// Who acts when the applicant's side acts: the citizen signed in, or an operator on their behalf.
/// An anonymous caller (refused by the rule before any change) would be recorded as the citizen role
/// with no id, which the store fills with the application's applicant.
fn applicant_actor(p: &Principal) -> Actor {
    match p {
        Principal::Citizen { fiscal_code } => Actor {
            role: pb::BenefitActorRole::Citizen,
            id: fiscal_code.clone(),
        },
        Principal::Operator { .. } | Principal::System { .. } => operator_actor(p),
        Principal::Anonymous => Actor {
            role: pb::BenefitActorRole::Citizen,
            id: String::new(),
        },
    }
}

/// Who acts when the comune acts. Operator principals carry their comune but no personal
/// identity yet, so the actor stays unnamed.
fn operator_actor(p: &Principal) -> Actor {
    match p {
        Principal::Citizen { fiscal_code } => Actor {
            role: pb::BenefitActorRole::Citizen,
            id: fiscal_code.clone(),
        },
        _ => Actor {
            role: pb::BenefitActorRole::Operator,
            id: String::new(),
        },
    }
}

/// True when the change is the citizen's own online interaction (not an operator's work).
fn online(p: &Principal) -> bool {
    matches!(p, Principal::Citizen { .. })
}

fn id_field(value: &str, field: &str, v: &mut Violations) -> String {
    match any_id(value) {
        Ok(id) => id,
        Err(msg) => {
            v.add(field, msg);
            String::new()
        }
    }
}

fn text_field(value: &str, field: &str, required: bool, max: usize, v: &mut Violations) -> String {
    let t = value.trim();
    if required && t.is_empty() {
        v.add(field, "must not be empty");
    } else if !fits(t, max) {
        v.add(field, format!("must be at most {max} characters"));
    }
    t.to_owned()
}

type Answer<T> = Result<Response<T>, Status>;

impl SocialApi {
    /// The guard of a change the applicant's side makes to an application.
    fn for_applicant<'a>(
        &'a self,
        p: &'a Principal,
    ) -> impl FnOnce(&crate::store::application::Model) -> Result<(), ServiceError> + 'a {
        move |a| {
            access::authorize_write(
                p,
                &Act::for_citizen(&a.applicant_fiscal_code, &a.istat_code),
            )
        }
    }

    /// The guard of a change the comune makes to an application.
    fn for_comune<'a>(
        &'a self,
        p: &'a Principal,
    ) -> impl FnOnce(&crate::store::application::Model) -> Result<(), ServiceError> + 'a {
        move |a| access::authorize_write(p, &Act::for_comune(&a.istat_code))
    }

    /// The guard of a change the comune makes to a scheme or its ranking.
    fn for_scheme_comune<'a>(
        &'a self,
        p: &'a Principal,
    ) -> impl FnOnce(&scheme::Model) -> Result<(), ServiceError> + 'a {
        move |s| access::authorize_write(p, &Act::for_comune(&s.istat_code))
    }

    /// The applications of `rows` the caller may read, noted for the audit; the others are left
    /// out.
    fn readable_applications(
        &self,
        reads: &mut Reads,
        rows: Vec<ApplicationView>,
    ) -> Vec<ApplicationView> {
        rows.into_iter()
            .filter(|v| reads.allows(&v.record()))
            .collect()
    }

    fn answer(&self, view: ApplicationView) -> pb::BenefitApplication {
        self.publish(&view);
        application_to_pb(view)
    }
}

#[tonic::async_trait]
impl SocialService for SocialApi {
    async fn list_benefit_schemes(
        &self,
        request: Request<pb::ListBenefitSchemesRequest>,
    ) -> Answer<pb::ListBenefitSchemesResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        v.check(
            req.istat_code.is_empty() || ids::is_known_istat_code(&req.istat_code),
            "istat_code",
            "must be empty (every comune) or the ISTAT code of a comune of the Città Metropolitana di Palermo",
        );
        let kind = optional_enum::<pb::BenefitKind>(req.kind, "kind", &mut v);
        let status = optional_enum::<pb::BenefitSchemeStatus>(req.status, "status", &mut v);
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let mut istat_code = Some(req.istat_code).filter(|s| !s.is_empty());
        if status == Some(pb::BenefitSchemeStatus::Draft as i32) {
            // Drafts are internal to a comune: narrow to the caller's, and check the comune asked.
            if istat_code.is_none()
                && let Some(Scope::Comune(c)) = access::scope(&p)
            {
                istat_code = Some(c);
            }
            access::authorize_read(
                &p,
                &Record::Comune {
                    istat_code: istat_code.as_deref().unwrap_or_default(),
                },
            )?;
        }
        let filter = SchemeFilter {
            istat_code,
            kind,
            status,
            drafts_of: p.comune().map(str::to_owned),
        };
        let (rows, total) = self
            .store
            .list_schemes(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListBenefitSchemesResponse {
            schemes: rows
                .into_iter()
                .filter(|s| access::may_read(&p, &scheme_record(s)))
                .map(scheme_to_pb)
                .collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_benefit_schemes(
        &self,
        request: Request<pb::LookupBenefitSchemesRequest>,
    ) -> Answer<pb::LookupBenefitSchemesResponse> {
        let p = principal(&request);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows = self
            .store
            .schemes_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::LookupBenefitSchemesResponse {
            items: rows
                .into_iter()
                .filter(|s| access::may_read(&p, &scheme_record(s)))
                .map(|s| pb::LookupBenefitSchemesItem {
                    key: s.id.clone(),
                    scheme: Some(scheme_to_pb(s)),
                })
                .collect(),
        }))
    }

    async fn list_municipality_benefit_schemes(
        &self,
        request: Request<pb::ListMunicipalityBenefitSchemesRequest>,
    ) -> Answer<pb::ListMunicipalityBenefitSchemesResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let open_on = req.open_only.then(|| italian_day(Utc::now()));
        let rows = self
            .store
            .schemes_by_comune(&keys, open_on)
            .await
            .map_err(ServiceError::from)?;
        let draft = pb::BenefitSchemeStatus::Draft as i32;
        let items = rows
            .into_iter()
            .filter_map(|(key, schemes)| {
                let schemes: Vec<pb::BenefitScheme> = schemes
                    .into_iter()
                    // Drafts show to the comune's own operators only, as in ListBenefitSchemes.
                    .filter(|s| s.status != draft || p.comune() == Some(s.istat_code.as_str()))
                    .filter(|s| access::may_read(&p, &scheme_record(s)))
                    .map(scheme_to_pb)
                    .collect();
                (!schemes.is_empty())
                    .then_some(pb::ListMunicipalityBenefitSchemesItem { key, schemes })
            })
            .collect();
        Ok(Response::new(pb::ListMunicipalityBenefitSchemesResponse {
            items,
        }))
    }

    async fn create_benefit_scheme(
        &self,
        request: Request<pb::CreateBenefitSchemeRequest>,
    ) -> Answer<pb::CreateBenefitSchemeResponse> {
        let p = principal(&request);
        let Some(scheme) = request.into_inner().scheme else {
            return Err(ServiceError::invalid("scheme", "must be set").into());
        };
        let new =
            validate_scheme(&scheme, "scheme", true).map_err(ServiceError::InvalidArgument)?;
        access::authorize_write(&p, &Act::for_comune(&new.istat_code))?;
        let stored = self.store.create_scheme(new, Utc::now()).await?;
        Ok(Response::new(pb::CreateBenefitSchemeResponse {
            scheme: Some(scheme_to_pb(stored)),
        }))
    }

    async fn update_benefit_scheme(
        &self,
        request: Request<pb::UpdateBenefitSchemeRequest>,
    ) -> Answer<pb::UpdateBenefitSchemeResponse> {
        let p = principal(&request);
        let Some(scheme) = request.into_inner().scheme else {
            return Err(ServiceError::invalid("scheme", "must be set").into());
        };
        let mut v = Violations::new();
        let id = id_field(&scheme.id, "scheme.id", &mut v);
        let new = validate_scheme(&scheme, "scheme", false);
        if let Err(more) = &new {
            for x in more.as_slice() {
                v.add(x.field.clone(), x.description.clone());
            }
        }
        v.into_result()?;
        let new = new.map_err(ServiceError::InvalidArgument)?;
        let stored = self
            .store
            .update_scheme(&id, new, Utc::now(), self.for_scheme_comune(&p))
            .await?;
        Ok(Response::new(pb::UpdateBenefitSchemeResponse {
            scheme: Some(scheme_to_pb(stored)),
        }))
    }

    async fn lookup_isee_declarations(
        &self,
        request: Request<pb::LookupIseeDeclarationsRequest>,
    ) -> Answer<pb::LookupIseeDeclarationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), ISEE);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        // Not readable is left out, as unknown is: a lookup does not tell which ids exist.
        let rows: Vec<_> = self
            .store
            .isee_by_id(&keys)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .filter(|d| reads.allows(&d.record()))
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupIseeDeclarationsResponse {
            items: rows
                .into_iter()
                .map(|d| pb::LookupIseeDeclarationsItem {
                    key: d.decl.id.clone(),
                    declaration: Some(isee_to_pb(d)),
                })
                .collect(),
        }))
    }

    async fn list_citizen_isee_declarations(
        &self,
        request: Request<pb::ListCitizenIseeDeclarationsRequest>,
    ) -> Answer<pb::ListCitizenIseeDeclarationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), ISEE);
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, fiscal_code_key)?;
        let valid_on = req.valid_only.then(|| italian_day(Utc::now()));
        access::authorize_citizen_keys(reads.principal(), &canonical)?;
        // Operators and systems see the declarations their comune holds only.
        let rows: Vec<_> = self
            .store
            .isee_by_citizen(&canonical, valid_on)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .filter(|d| reads.allows(&d.record()))
            .collect();
        reads.save(self.store.db()).await?;
        let items = asked_keys(&req.keys, fiscal_code_key)
            .into_iter()
            .filter_map(|(key, cf)| {
                let declarations: Vec<pb::IseeDeclaration> = rows
                    .iter()
                    .filter(|d| {
                        d.decl.fiscal_code == cf || d.members.iter().any(|m| m.fiscal_code == cf)
                    })
                    .cloned()
                    .map(isee_to_pb)
                    .collect();
                (!declarations.is_empty())
                    .then_some(pb::ListCitizenIseeDeclarationsItem { key, declarations })
            })
            .collect();
        Ok(Response::new(pb::ListCitizenIseeDeclarationsResponse {
            items,
        }))
    }

    async fn register_isee_declaration(
        &self,
        request: Request<pb::RegisterIseeDeclarationRequest>,
    ) -> Answer<pb::RegisterIseeDeclarationResponse> {
        let p = principal(&request);
        let Some(declaration) = request.into_inner().declaration else {
            return Err(ServiceError::invalid("declaration", "must be set").into());
        };
        let now = Utc::now();
        let d = validate_declaration(&declaration, "declaration", italian_day(now))
            .map_err(ServiceError::InvalidArgument)?;
        access::authorize_write(
            &p,
            &Act::ForCitizen {
                fiscal_code: &d.fiscal_code,
                istat_code: None,
            },
        )?;
        // No INPS e-service is connected: the declaration is stored as declared, unverified.
        let (source, holder) = match p.comune() {
            Some(c) => (pb::IseeSource::Operator, c),
            None => (pb::IseeSource::Citizen, ""),
        };
        let stored = self.store.register_isee(d, source, holder, now).await?;
        Ok(Response::new(pb::RegisterIseeDeclarationResponse {
            declaration: Some(isee_to_pb(stored)),
        }))
    }

    async fn list_benefit_applications(
        &self,
        request: Request<pb::ListBenefitApplicationsRequest>,
    ) -> Answer<pb::ListBenefitApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let p = reads.principal().clone();
        let req = request.into_inner();
        let mut v = Violations::new();
        v.check(
            req.istat_code.is_empty() || ids::is_known_istat_code(&req.istat_code),
            "istat_code",
            "must be empty (every comune the caller may see) or the ISTAT code of a comune of the Città Metropolitana di Palermo",
        );
        v.check(
            req.scheme_id.len() <= 64,
            "scheme_id",
            "must be a scheme id or empty",
        );
        let status = optional_enum::<pb::BenefitApplicationStatus>(req.status, "status", &mut v);
        let mut cf = |value: &str, field: &str| -> Option<String> {
            if value.trim().is_empty() {
                return None;
            }
            match ids::canonical_fiscal_code(value) {
                Ok(cf) => Some(cf),
                Err(e) => {
                    v.add(field, format!("is not a valid codice fiscale: {e}"));
                    None
                }
            }
        };
        let applicant = cf(&req.applicant_fiscal_code, "applicant_fiscal_code");
        let caseworker = cf(&req.caseworker, "caseworker");
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let mut filter = ApplicationFilter {
            istat_code: Some(req.istat_code).filter(|s| !s.is_empty()),
            scheme_id: Some(req.scheme_id).filter(|s| !s.is_empty()),
            status,
            applicant,
            caseworker,
        };
        // "Every comune the caller may see": a citizen's own applications, an operator's comune.
        match access::scope(&p) {
            Some(Scope::Citizen(me)) if filter.applicant.is_none() => {
                filter.applicant = Some(me);
            }
            Some(Scope::Comune(c)) if filter.istat_code.is_none() => {
                filter.istat_code = Some(c);
            }
            _ => {}
        }
        // The filter as a record: the caller must be the applicant named or work for the comune.
        access::authorize_read(
            &p,
            &Record::Personal {
                subjects: filter.applicant.as_deref().into_iter().collect(),
                comuni: filter.istat_code.as_deref().into_iter().collect(),
            },
        )?;
        let (rows, total) = self
            .store
            .list_applications(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        let info = page.info(rows.len(), total);
        let rows = self.readable_applications(&mut reads, rows);
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListBenefitApplicationsResponse {
            applications: rows.into_iter().map(application_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_benefit_applications(
        &self,
        request: Request<pb::LookupBenefitApplicationsRequest>,
    ) -> Answer<pb::LookupBenefitApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        let rows = self
            .store
            .applications_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        // Not readable is left out, as unknown is: a lookup does not tell which ids exist.
        let rows = self.readable_applications(&mut reads, rows);
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupBenefitApplicationsResponse {
            items: rows
                .into_iter()
                .map(|a| pb::LookupBenefitApplicationsItem {
                    key: a.app.id.clone(),
                    application: Some(application_to_pb(a)),
                })
                .collect(),
        }))
    }

    async fn list_citizen_benefit_applications(
        &self,
        request: Request<pb::ListCitizenBenefitApplicationsRequest>,
    ) -> Answer<pb::ListCitizenBenefitApplicationsResponse> {
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, fiscal_code_key)?;
        let mut v = Violations::new();
        let status = optional_enum::<pb::BenefitApplicationStatus>(req.status, "status", &mut v);
        v.into_result()?;
        access::authorize_citizen_keys(reads.principal(), &canonical)?;
        let rows = self
            .store
            .applications_by_citizen(&canonical, status)
            .await
            .map_err(ServiceError::from)?;
        // Operators and systems see their own comune's applications only.
        let rows = self.readable_applications(&mut reads, rows);
        reads.save(self.store.db()).await?;
        let items = asked_keys(&req.keys, fiscal_code_key)
            .into_iter()
            .filter_map(|(key, cf)| {
                let applications: Vec<pb::BenefitApplication> = rows
                    .iter()
                    .filter(|a| {
                        a.app.applicant_fiscal_code == cf || a.app.beneficiary_fiscal_code == cf
                    })
                    .cloned()
                    .map(application_to_pb)
                    .collect();
                (!applications.is_empty())
                    .then_some(pb::ListCitizenBenefitApplicationsItem { key, applications })
            })
            .collect();
        Ok(Response::new(pb::ListCitizenBenefitApplicationsResponse {
            items,
        }))
    }

    async fn create_benefit_application_draft(
        &self,
        request: Request<pb::CreateBenefitApplicationDraftRequest>,
    ) -> Answer<pb::CreateBenefitApplicationDraftResponse> {
        let p = principal(&request);
        let Some(draft) = request.into_inner().draft else {
            return Err(ServiceError::invalid("draft", "must be set").into());
        };
        let content = validate_draft(&draft, "draft").map_err(ServiceError::InvalidArgument)?;
        let actor = applicant_actor(&p);
        let applicant = content.applicant.clone();
        let view = self
            .store
            .create_draft(content, &actor, Utc::now(), |s| {
                access::authorize_write(&p, &Act::for_citizen(&applicant, &s.istat_code))
            })
            .await?;
        Ok(Response::new(pb::CreateBenefitApplicationDraftResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn update_benefit_application_draft(
        &self,
        request: Request<pb::UpdateBenefitApplicationDraftRequest>,
    ) -> Answer<pb::UpdateBenefitApplicationDraftResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let content = match &req.draft {
            None => {
                v.add("draft", "must be set");
                None
            }
            Some(d) => match validate_draft(d, "draft") {
                Ok(c) => Some(c),
                Err(more) => {
                    for x in more.as_slice() {
                        v.add(x.field.clone(), x.description.clone());
                    }
                    None
                }
            },
        };
        v.into_result()?;
        let Some(content) = content else {
            return Err(ServiceError::invalid("draft", "must be set").into());
        };
        let view = self
            .store
            .update_draft(&id, content, Utc::now(), self.for_applicant(&p))
            .await?;
        Ok(Response::new(pb::UpdateBenefitApplicationDraftResponse {
            application: Some(application_to_pb(view)),
        }))
    }

    async fn submit_benefit_application(
        &self,
        request: Request<pb::SubmitBenefitApplicationRequest>,
    ) -> Answer<pb::SubmitBenefitApplicationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        v.into_result()?;
        let actor = applicant_actor(&p);
        let view = self
            .store
            .submit(&id, &actor, online(&p), Utc::now(), self.for_applicant(&p))
            .await?;
        Ok(Response::new(pb::SubmitBenefitApplicationResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn withdraw_benefit_application(
        &self,
        request: Request<pb::WithdrawBenefitApplicationRequest>,
    ) -> Answer<pb::WithdrawBenefitApplicationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let reason = text_field(&req.reason, "reason", false, MAX_TEXT_LEN, &mut v);
        v.into_result()?;
        let view = self
            .store
            .withdraw(
                &id,
                &reason,
                &applicant_actor(&p),
                Utc::now(),
                self.for_applicant(&p),
            )
            .await?;
        Ok(Response::new(pb::WithdrawBenefitApplicationResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn assign_benefit_application(
        &self,
        request: Request<pb::AssignBenefitApplicationRequest>,
    ) -> Answer<pb::AssignBenefitApplicationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let caseworker = if req.caseworker.trim().is_empty() {
            v.add(
                "caseworker",
                "must be the caseworker's codice fiscale: the caller's credentials do not carry one yet",
            );
            String::new()
        } else {
            match ids::canonical_fiscal_code(&req.caseworker) {
                Ok(cf) => cf,
                Err(e) => {
                    v.add("caseworker", format!("is not a valid codice fiscale: {e}"));
                    String::new()
                }
            }
        };
        v.into_result()?;
        let view = self
            .store
            .assign(
                &id,
                &caseworker,
                &operator_actor(&p),
                Utc::now(),
                self.for_comune(&p),
            )
            .await?;
        Ok(Response::new(pb::AssignBenefitApplicationResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn request_benefit_application_integration(
        &self,
        request: Request<pb::RequestBenefitApplicationIntegrationRequest>,
    ) -> Answer<pb::RequestBenefitApplicationIntegrationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let note = text_field(&req.note, "note", true, MAX_TEXT_LEN, &mut v);
        v.into_result()?;
        let view = self
            .store
            .request_integration(
                &id,
                &note,
                &operator_actor(&p),
                Utc::now(),
                self.for_comune(&p),
            )
            .await?;
        Ok(Response::new(
            pb::RequestBenefitApplicationIntegrationResponse {
                application: Some(self.answer(view)),
            },
        ))
    }

    async fn submit_benefit_application_integration(
        &self,
        request: Request<pb::SubmitBenefitApplicationIntegrationRequest>,
    ) -> Answer<pb::SubmitBenefitApplicationIntegrationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let attachments = validate_attachments(&req.attachments, "attachments", &mut v);
        let isee_id = req.isee_declaration_id.trim();
        v.check(
            isee_id.len() <= 64,
            "isee_declaration_id",
            "must be an ISEE declaration id or empty",
        );
        let note = text_field(&req.note, "note", false, MAX_TEXT_LEN, &mut v);
        v.check(
            !req.attachments.is_empty() || !isee_id.is_empty() || !note.is_empty(),
            "attachments",
            "an integration sends documents, a newer ISEE declaration or at least a note",
        );
        v.into_result()?;
        let view = self
            .store
            .submit_integration(
                &id,
                attachments,
                Some(isee_id).filter(|s| !s.is_empty()),
                &note,
                &applicant_actor(&p),
                online(&p),
                Utc::now(),
                self.for_applicant(&p),
            )
            .await?;
        Ok(Response::new(
            pb::SubmitBenefitApplicationIntegrationResponse {
                application: Some(self.answer(view)),
            },
        ))
    }

    async fn evaluate_benefit_application(
        &self,
        request: Request<pb::EvaluateBenefitApplicationRequest>,
    ) -> Answer<pb::EvaluateBenefitApplicationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let note = text_field(&req.note, "note", false, MAX_TEXT_LEN, &mut v);
        v.into_result()?;
        let view = self
            .store
            .evaluate(
                &id,
                &req.checks,
                req.score,
                &note,
                &operator_actor(&p),
                Utc::now(),
                self.for_comune(&p),
            )
            .await?;
        Ok(Response::new(pb::EvaluateBenefitApplicationResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn decide_benefit_application(
        &self,
        request: Request<pb::DecideBenefitApplicationRequest>,
    ) -> Answer<pb::DecideBenefitApplicationResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let grant = match pb::BenefitDecisionOutcome::try_from(req.outcome) {
            Ok(pb::BenefitDecisionOutcome::Grant) => true,
            Ok(pb::BenefitDecisionOutcome::Deny) => false,
            _ => {
                v.add("outcome", "must be GRANT or DENY");
                false
            }
        };
        let motivation = text_field(&req.motivation, "motivation", true, MAX_TEXT_LEN, &mut v);
        let act = text_field(
            &req.decision_act,
            "decision_act",
            false,
            MAX_REF_LEN,
            &mut v,
        );
        let requested = req.granted_amount.as_ref().map_or(0, |m| m.cents);
        v.check(
            requested >= 0,
            "granted_amount.cents",
            "must not be negative (0 means the scheme's amount)",
        );
        v.into_result()?;
        let view = self
            .store
            .decide(
                &id,
                grant,
                &motivation,
                &act,
                if grant { requested } else { 0 },
                &operator_actor(&p),
                Utc::now(),
                self.for_comune(&p),
            )
            .await?;
        Ok(Response::new(pb::DecideBenefitApplicationResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn revoke_benefit(
        &self,
        request: Request<pb::RevokeBenefitRequest>,
    ) -> Answer<pb::RevokeBenefitResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let motivation = text_field(&req.motivation, "motivation", true, MAX_TEXT_LEN, &mut v);
        let act = text_field(
            &req.decision_act,
            "decision_act",
            false,
            MAX_REF_LEN,
            &mut v,
        );
        v.into_result()?;
        let view = self
            .store
            .revoke(
                &id,
                &motivation,
                &act,
                &operator_actor(&p),
                Utc::now(),
                self.for_comune(&p),
            )
            .await?;
        Ok(Response::new(pb::RevokeBenefitResponse {
            application: Some(self.answer(view)),
        }))
    }

    async fn get_benefit_ranking(
        &self,
        request: Request<pb::GetBenefitRankingRequest>,
    ) -> Answer<pb::GetBenefitRankingResponse> {
        let mut reads = Reads::new(Caller::of(&request), RANKING);
        let mut v = Violations::new();
        let id = id_field(&request.into_inner().scheme_id, "scheme_id", &mut v);
        v.into_result()?;
        let view = self.store.ranking(&id).await?;
        let p = reads.principal();
        access::authorize_read(p, &scheme_record(&view.scheme))?;
        // Names and ISEE values go to the comune's operators; everyone else sees protocol numbers.
        let named = access::may_read(
            p,
            &Record::Comune {
                istat_code: &view.scheme.istat_code,
            },
        );
        if named {
            // Each named place shows an applicant's ISEE: a read of their data, recorded.
            let ids: Vec<String> = view
                .entries
                .iter()
                .map(|e| e.application_id.clone())
                .collect();
            for app in self
                .store
                .application_rows(&ids)
                .await
                .map_err(ServiceError::from)?
            {
                reads.check(&application_record(&app))?;
            }
            reads.save(self.store.db()).await?;
        }
        Ok(Response::new(pb::GetBenefitRankingResponse {
            ranking: Some(ranking_to_pb(view, named)),
        }))
    }

    async fn compute_benefit_ranking(
        &self,
        request: Request<pb::ComputeBenefitRankingRequest>,
    ) -> Answer<pb::ComputeBenefitRankingResponse> {
        let p = principal(&request);
        let mut v = Violations::new();
        let id = id_field(&request.into_inner().scheme_id, "scheme_id", &mut v);
        v.into_result()?;
        let view = self
            .store
            .compute_ranking(&id, Utc::now(), self.for_scheme_comune(&p))
            .await?;
        Ok(Response::new(pb::ComputeBenefitRankingResponse {
            ranking: Some(ranking_to_pb(view, true)),
        }))
    }

    async fn approve_benefit_ranking(
        &self,
        request: Request<pb::ApproveBenefitRankingRequest>,
    ) -> Answer<pb::ApproveBenefitRankingResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.scheme_id, "scheme_id", &mut v);
        let act = text_field(&req.approval_act, "approval_act", true, MAX_REF_LEN, &mut v);
        v.into_result()?;
        let view = self
            .store
            .approve_ranking(&id, &act, Utc::now(), self.for_scheme_comune(&p))
            .await?;
        Ok(Response::new(pb::ApproveBenefitRankingResponse {
            ranking: Some(ranking_to_pb(view, true)),
        }))
    }

    async fn schedule_benefit_payments(
        &self,
        request: Request<pb::ScheduleBenefitPaymentsRequest>,
    ) -> Answer<pb::ScheduleBenefitPaymentsResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        v.check(
            !req.payments.is_empty(),
            "payments",
            "must list at least one instalment",
        );
        v.into_result()?;
        let view = self
            .store
            .schedule_payments(&id, &req.payments, Utc::now(), self.for_comune(&p))
            .await?;
        Ok(Response::new(pb::ScheduleBenefitPaymentsResponse {
            application: Some(application_to_pb(view)),
        }))
    }

    async fn record_benefit_payment(
        &self,
        request: Request<pb::RecordBenefitPaymentRequest>,
    ) -> Answer<pb::RecordBenefitPaymentResponse> {
        let p = principal(&request);
        let req = request.into_inner();
        let now = Utc::now();
        let mut v = Violations::new();
        let id = id_field(&req.application_id, "application_id", &mut v);
        let outcome = validate_outcome(&req, italian_day(now), &mut v);
        v.into_result()?;
        let Some(outcome) = outcome else {
            return Err(
                ServiceError::invalid("status", "must be PAID, SUSPENDED or CANCELLED").into(),
            );
        };
        let (view, completed) = self
            .store
            .record_payment(&id, req.number, outcome, now, self.for_comune(&p))
            .await?;
        let application = if completed {
            self.answer(view)
        } else {
            application_to_pb(view)
        };
        Ok(Response::new(pb::RecordBenefitPaymentResponse {
            application: Some(application),
        }))
    }

    async fn watch_benefit_application(
        &self,
        request: Request<pb::WatchBenefitApplicationRequest>,
    ) -> Answer<BoxStream<pb::WatchBenefitApplicationResponse>> {
        let draining = Draining::of(&request);
        let mut reads = Reads::new(Caller::of(&request), APPLICATION);
        let p = reads.principal().clone();
        let mut v = Violations::new();
        let id = id_field(
            &request.into_inner().application_id,
            "application_id",
            &mut v,
        );
        v.into_result()?;
        // Subscribe before reading the current state, so no change falls between the two.
        let mut updates = self.updates.subscribe();
        let current = self
            .store
            .application(&id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("benefit application", &id))?;
        reads.check(&current.record())?;
        // The watch follows one application for one reader: recorded once, when it opens.
        reads.save(self.store.db()).await?;
        let store = self.store.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            if tx.send(Ok(watch_message(current, true))).await.is_err() {
                return;
            }
            loop {
                let next = match updates.recv().await {
                    Ok(view) if view.app.id == id => view,
                    Ok(_) => continue,
                    // Fell behind: what matters is the latest state, so read it afresh.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match store.application(&id).await {
                            Ok(Some(view)) => view,
                            _ => continue,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // Every message is a read: it passes the rule like any other.
                if let Err(e) = access::authorize_read(&p, &next.record()) {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                if tx.send(Ok(watch_message(next, false))).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn import_isee_declarations(
        &self,
        request: Request<Streaming<pb::ImportIseeDeclarationsRequest>>,
    ) -> Answer<pb::ImportIseeDeclarationsResponse> {
        let p = principal(&request);
        // The import is the comune's act: the rows belong to the caller's comune.
        let holder = p.comune().unwrap_or_default().to_owned();
        access::authorize_write(&p, &Act::for_comune(&holder))?;
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            rows.push(row?);
            if rows.len() > MAX_IMPORT_ROWS {
                return Err(ServiceError::invalid(
                    "declaration",
                    format!("an import carries at most {MAX_IMPORT_ROWS} rows; split the extract"),
                )
                .into());
            }
        }
        let now = Utc::now();
        let today = italian_day(now);
        let mut valid = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        let mut seen: std::collections::HashMap<String, i32> = std::collections::HashMap::new();
        for (i, row) in rows.iter().enumerate() {
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let Some(declaration) = &row.declaration else {
                errors.push(pb::SocialImportError {
                    row: number,
                    field: "declaration".into(),
                    description: "must be set".into(),
                });
                continue;
            };
            match validate_declaration(declaration, "declaration", today) {
                Ok(d) => {
                    if let Some(first) = seen.get(&d.dsu_protocol) {
                        errors.push(pb::SocialImportError {
                            row: number,
                            field: "declaration.dsu_protocol".into(),
                            description: format!("repeats the DSU protocol of row {first}"),
                        });
                        continue;
                    }
                    seen.insert(d.dsu_protocol.clone(), number);
                    let source = if declaration.source == pb::IseeSource::Inps as i32 {
                        pb::IseeSource::Inps
                    } else {
                        pb::IseeSource::Import
                    };
                    valid.push(ImportRow {
                        row: number,
                        declaration: d,
                        source,
                    });
                }
                Err(v) => errors.extend(v.as_slice().iter().map(|f| pb::SocialImportError {
                    row: number,
                    field: f.field.clone(),
                    description: f.description.clone(),
                })),
            }
        }
        if !errors.is_empty() {
            return Ok(Response::new(pb::ImportIseeDeclarationsResponse {
                imported: 0,
                errors,
            }));
        }
        match self.store.import_isee(valid, &holder, now).await? {
            Ok(count) => Ok(Response::new(pb::ImportIseeDeclarationsResponse {
                imported: i32::try_from(count).unwrap_or(i32::MAX),
                errors: Vec::new(),
            })),
            Err(conflicts) => Ok(Response::new(pb::ImportIseeDeclarationsResponse {
                imported: 0,
                errors: conflicts
                    .into_iter()
                    .map(|c| pb::SocialImportError {
                        row: c.row,
                        field: c.field,
                        description: c.description,
                    })
                    .collect(),
            })),
        }
    }
}
