//! The gRPC face of the taxes service: request validation, access checks, conversions, and the
//! status feed behind the debt position watch (an in-process broadcast, plus a timer per watched
//! position for the changes the clock makes: payable from its validity, expired past its due days).
//!
//! Every read of a taxpayer's data is checked against the shared access rule and, when the reader is
//! not the taxpayer, recorded ([`patto_service_kit::audit`]) before it is answered; every change is
//! authorized before anything is written. What is public, personal or internal to a comune is
//! decided in `access`.

mod access;
pub mod convert;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures::StreamExt;
use patto_proto::taxes::v1 as pb;
use patto_proto::taxes::v1::taxes_service_server::TaxesService;
use patto_service_kit::access::{self as rule, Act, Record, narrow, signed_in};
use patto_service_kit::audit::{Caller, Reads};
use patto_service_kit::auth::principal;
use patto_service_kit::error::{ServiceError, Violations};
use patto_service_kit::host::Draining;
use patto_service_kit::paging::Page;
use patto_service_kit::stream::spawn_stream;
use patto_service_kit::{ids, pagopa, time};
use tokio::sync::broadcast;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::building::BuildingClient;
use crate::compute;
use crate::domain::rates::ImuRates;
use crate::domain::roll::{
    validate_imu_declaration, validate_tari_registration, validate_tax_position,
};
use crate::domain::tariffs::Tariffs;
use crate::domain::{MAX_TEXT_LEN, check_year, holder_code, required_day, text};
use crate::error::TaxesError;
use crate::store::{
    DebtFilter, DebtRecord, PositionFilter, Receipt, RollRow, Store, TariDeclaration,
};
use access::what;
use convert::{debt_status, debt_to_pb, declaration_to_pb, position_to_pb, registration_to_pb};
use patto_service_kit::validate::{
    any_id, asked_keys, batch_keys, istat_check, istat_key, optional_enum,
};

/// Most rows one tax roll stream may carry; larger rolls go in several imports.
pub const MAX_IMPORT_ROWS: usize = 100_000;

/// The `patto.taxes.v1.TaxesService` implementation.
#[derive(Clone)]
pub struct TaxesApi {
    store: Store,
    building: BuildingClient,
    updates: broadcast::Sender<pb::WatchDebtPositionResponse>,
}

type Answer<T> = Result<Response<T>, Status>;

fn taxpayer(code: &str, field: &str, v: &mut Violations) -> String {
    holder_code(code)
        .map_err(|m| v.add(field, m))
        .unwrap_or_default()
}

fn optional_taxpayer(code: &str, field: &str, v: &mut Violations) -> Option<String> {
    if code.trim().is_empty() {
        None
    } else {
        holder_code(code).map_err(|m| v.add(field, m)).ok()
    }
}

fn required_enum<E: TryFrom<i32>>(value: i32, field: &str, what: &str, v: &mut Violations) -> i32 {
    if value == 0 || E::try_from(value).is_err() {
        v.add(field, format!("must be {what}"));
    }
    value
}

impl TaxesApi {
    /// The API over `store`, reading cadastral units through `building`.
    pub fn new(store: Store, building: BuildingClient) -> Self {
        let (updates, _) = broadcast::channel(1024);
        Self {
            store,
            building,
            updates,
        }
    }

    fn publish(&self, r: &DebtRecord) {
        let now = Utc::now();
        // No subscriber is not an error: nobody is watching.
        let _ = self.updates.send(pb::WatchDebtPositionResponse {
            iupd: r.position.iupd.clone(),
            status: debt_status(r, now) as i32,
            debt_position: Some(debt_to_pb(r, now)),
        });
    }

    /// Lets the clock move positions before a read, and tells the watchers.
    async fn settle(&self) -> Result<(), TaxesError> {
        let changed = self.store.settle(Utc::now()).await?;
        if !changed.is_empty() && self.updates.receiver_count() > 0 {
            for r in self.store.debts_by_iupd(&changed).await? {
                self.publish(&r);
            }
        }
        Ok(())
    }

    /// The last due day of an imported position: the saldo for IMU, the last rata for TARI.
    async fn imported_due(
        &self,
        istat: &str,
        tribute: i32,
        year: i32,
    ) -> Result<NaiveDate, TaxesError> {
        let end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default();
        if tribute == pb::Tribute::Tari as i32 {
            Ok(self
                .store
                .tari_tariffs(istat, year)
                .await?
                .and_then(|(t, _)| t.instalment_due_dates.last().copied())
                .unwrap_or(end))
        } else {
            Ok(self.store.imu_rates(istat, year).await?.0.saldo_due)
        }
    }
}

#[tonic::async_trait]
impl TaxesService for TaxesApi {
    async fn compute_imu(
        &self,
        request: Request<pb::ComputeImuRequest>,
    ) -> Answer<pb::ComputeImuResponse> {
        // Not a calculator over its inputs: it reads the taxpayer's holdings from the Catasto and
        // their declarations, and answers what they owe where. Personal data.
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "a taxpayer's IMU is personal data")?;
        let credentials = self.building.forwarded(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        let cf = taxpayer(&req.fiscal_code, "fiscal_code", &mut v);
        check_year(req.year, "year", &mut v);
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        v.into_result()?;
        // A citizen computes their own; an operator or system, in its own comune.
        let (istat, _) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            Some(cf.clone()),
            "a taxpayer's IMU is personal data",
        )?;
        let assessments = compute::imu_assessments(
            &self.store,
            &self.building,
            &credentials,
            &cf,
            req.year,
            istat.as_deref(),
            Utc::now(),
        )
        .await?;
        Reads::new(caller, what::IMU)
            .check_all(
                assessments
                    .iter()
                    .map(|a| Record::personal(&a.fiscal_code, &a.istat_code)),
            )?
            .save(self.store.db())
            .await?;
        Ok(Response::new(pb::ComputeImuResponse { assessments }))
    }

    async fn compute_tari(
        &self,
        request: Request<pb::ComputeTariRequest>,
    ) -> Answer<pb::ComputeTariResponse> {
        // Computed from the holder's stored registrations: personal data, as for IMU.
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "a taxpayer's TARI is personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let cf = taxpayer(&req.fiscal_code, "fiscal_code", &mut v);
        check_year(req.year, "year", &mut v);
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        v.into_result()?;
        let (istat, _) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            Some(cf.clone()),
            "a taxpayer's TARI is personal data",
        )?;
        let assessments =
            compute::tari_assessments(&self.store, &cf, req.year, istat.as_deref(), Utc::now())
                .await?;
        Reads::new(caller, what::TARI)
            .check_all(
                assessments
                    .iter()
                    .map(|a| Record::personal(&a.fiscal_code, &a.istat_code)),
            )?
            .save(self.store.db())
            .await?;
        Ok(Response::new(pb::ComputeTariResponse { assessments }))
    }

    async fn get_imu_rates(
        &self,
        request: Request<pb::GetImuRatesRequest>,
    ) -> Answer<pb::GetImuRatesResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        check_year(req.year, "year", &mut v);
        v.into_result()?;
        let (rates, updated) = self
            .store
            .imu_rates(&req.istat_code, req.year)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::GetImuRatesResponse {
            rates: Some(rates.to_pb(&req.istat_code, req.year, updated.map(time::to_timestamp))),
        }))
    }

    async fn set_imu_rates(
        &self,
        request: Request<pb::SetImuRatesRequest>,
    ) -> Answer<pb::SetImuRatesResponse> {
        let who = principal(&request);
        signed_in(&who, "rates are set by the comune's operators")?;
        let Some(r) = request.into_inner().rates else {
            return Err(ServiceError::invalid("rates", "must be set").into());
        };
        let mut v = Violations::new();
        istat_check(&r.istat_code, "rates.istat_code", true, &mut v);
        check_year(r.year, "rates.year", &mut v);
        let rates = ImuRates::from_pb(&r, r.year, "rates");
        if let Err(more) = &rates {
            for f in more.as_slice() {
                v.add(f.field.clone(), f.description.clone());
            }
        }
        v.into_result()?;
        let rates = rates.map_err(ServiceError::InvalidArgument)?;
        rule::authorize_write(&who, &Act::for_comune(&r.istat_code))?;
        let now = Utc::now();
        self.store
            .set_imu_rates(&r.istat_code, r.year, &rates, now)
            .await?;
        Ok(Response::new(pb::SetImuRatesResponse {
            rates: Some(rates.to_pb(&r.istat_code, r.year, Some(time::to_timestamp(now)))),
        }))
    }

    async fn get_tari_tariffs(
        &self,
        request: Request<pb::GetTariTariffsRequest>,
    ) -> Answer<pb::GetTariTariffsResponse> {
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        check_year(req.year, "year", &mut v);
        v.into_result()?;
        let Some((t, updated)) = self
            .store
            .tari_tariffs(&req.istat_code, req.year)
            .await
            .map_err(ServiceError::from)?
        else {
            return Err(ServiceError::not_found(
                "TARI tariffs",
                format!(
                    "of comune {} for {} (the comune approved none yet)",
                    req.istat_code, req.year
                ),
            )
            .into());
        };
        Ok(Response::new(pb::GetTariTariffsResponse {
            tariffs: Some(t.to_pb(&req.istat_code, req.year, Some(time::to_timestamp(updated)))),
        }))
    }

    async fn set_tari_tariffs(
        &self,
        request: Request<pb::SetTariTariffsRequest>,
    ) -> Answer<pb::SetTariTariffsResponse> {
        let who = principal(&request);
        signed_in(&who, "tariffs are set by the comune's operators")?;
        let Some(t) = request.into_inner().tariffs else {
            return Err(ServiceError::invalid("tariffs", "must be set").into());
        };
        let mut v = Violations::new();
        istat_check(&t.istat_code, "tariffs.istat_code", true, &mut v);
        check_year(t.year, "tariffs.year", &mut v);
        let tariffs = Tariffs::from_pb(&t, t.year, "tariffs");
        if let Err(more) = &tariffs {
            for f in more.as_slice() {
                v.add(f.field.clone(), f.description.clone());
            }
        }
        v.into_result()?;
        let tariffs = tariffs.map_err(ServiceError::InvalidArgument)?;
        rule::authorize_write(&who, &Act::for_comune(&t.istat_code))?;
        let now = Utc::now();
        self.store
            .set_tari_tariffs(&t.istat_code, t.year, &tariffs, now)
            .await?;
        Ok(Response::new(pb::SetTariTariffsResponse {
            tariffs: Some(tariffs.to_pb(&t.istat_code, t.year, Some(time::to_timestamp(now)))),
        }))
    }

    async fn list_tax_positions(
        &self,
        request: Request<pb::ListTaxPositionsRequest>,
    ) -> Answer<pb::ListTaxPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "tax positions are personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        let fiscal_code = optional_taxpayer(&req.fiscal_code, "fiscal_code", &mut v);
        let tribute = optional_enum::<pb::Tribute>(req.tribute, "tribute", &mut v);
        if req.year != 0 {
            check_year(req.year, "year", &mut v);
        }
        let status = optional_enum::<pb::TaxPositionStatus>(req.status, "status", &mut v);
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let (istat_code, fiscal_code) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            fiscal_code,
            "tax positions are personal data",
        )?;
        self.settle().await?;
        let filter = PositionFilter {
            istat_code,
            fiscal_code,
            tribute,
            year: Some(req.year).filter(|y| *y != 0),
            status,
        };
        let (rows, total) = self
            .store
            .list_positions(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, what::POSITION)
            .check_all(rows.iter().map(access::position))?
            .save(self.store.db())
            .await?;
        let now = Utc::now();
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListTaxPositionsResponse {
            positions: rows.iter().map(|r| position_to_pb(r, now)).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_tax_positions(
        &self,
        request: Request<pb::LookupTaxPositionsRequest>,
    ) -> Answer<pb::LookupTaxPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "tax positions are personal data")?;
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        self.settle().await?;
        let rows = self
            .store
            .positions_by_id(&keys)
            .await
            .map_err(ServiceError::from)?;
        let now = Utc::now();
        // Positions the caller may not read are left out, as unknown ones are.
        let mut reads = Reads::new(caller, what::POSITION);
        let items: Vec<_> = rows
            .iter()
            .filter(|r| reads.allows(&access::position(r)))
            .map(|r| pb::LookupTaxPositionsItem {
                key: r.position.id.clone(),
                position: Some(position_to_pb(r, now)),
            })
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupTaxPositionsResponse { items }))
    }

    async fn list_citizen_tax_positions(
        &self,
        request: Request<pb::ListCitizenTaxPositionsRequest>,
    ) -> Answer<pb::ListCitizenTaxPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "tax positions are personal data")?;
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, holder_code)?;
        for code in &canonical {
            rule::authorize_citizen_listing(&caller.principal, code)?;
        }
        let mut v = Violations::new();
        if req.year != 0 {
            check_year(req.year, "year", &mut v);
        }
        let tribute = optional_enum::<pb::Tribute>(req.tribute, "tribute", &mut v);
        let status = optional_enum::<pb::TaxPositionStatus>(req.status, "status", &mut v);
        v.into_result()?;
        self.settle().await?;
        let filter = PositionFilter {
            year: Some(req.year).filter(|y| *y != 0),
            tribute,
            status,
            ..Default::default()
        };
        let rows = self
            .store
            .positions_of(&canonical, &filter)
            .await
            .map_err(ServiceError::from)?;
        let now = Utc::now();
        // Operators and systems get their comune's positions only.
        let mut reads = Reads::new(caller, what::POSITION);
        let mut items = Vec::new();
        for (key, cf) in asked_keys(&req.keys, holder_code) {
            let positions: Vec<pb::TaxPosition> = rows
                .iter()
                .filter(|r| r.position.fiscal_code == cf)
                .filter(|r| reads.allows(&access::position(r)))
                .map(|r| position_to_pb(r, now))
                .collect();
            if !positions.is_empty() {
                items.push(pb::ListCitizenTaxPositionsItem { key, positions });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenTaxPositionsResponse { items }))
    }

    async fn list_citizen_tari_registrations(
        &self,
        request: Request<pb::ListCitizenTariRegistrationsRequest>,
    ) -> Answer<pb::ListCitizenTariRegistrationsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "TARI registrations are personal data")?;
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, holder_code)?;
        for code in &canonical {
            rule::authorize_citizen_listing(&caller.principal, code)?;
        }
        let rows = self
            .store
            .registrations_of(&canonical, req.include_ended, Utc::now().date_naive())
            .await
            .map_err(ServiceError::from)?;
        let mut reads = Reads::new(caller, what::REGISTRATION);
        let mut items = Vec::new();
        for (key, cf) in asked_keys(&req.keys, holder_code) {
            let registrations: Vec<pb::TariRegistration> = rows
                .iter()
                .filter(|r| r.holder_fiscal_code == cf)
                .filter(|r| reads.allows(&access::registration(r)))
                .map(registration_to_pb)
                .collect();
            if !registrations.is_empty() {
                items.push(pb::ListCitizenTariRegistrationsItem { key, registrations });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenTariRegistrationsResponse {
            items,
        }))
    }

    async fn list_citizen_debt_positions(
        &self,
        request: Request<pb::ListCitizenDebtPositionsRequest>,
    ) -> Answer<pb::ListCitizenDebtPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "debt positions are personal data")?;
        let req = request.into_inner();
        let canonical = batch_keys(&req.keys, holder_code)?;
        for code in &canonical {
            rule::authorize_citizen_listing(&caller.principal, code)?;
        }
        let mut v = Violations::new();
        let status = optional_enum::<pb::DebtPositionStatus>(req.status, "status", &mut v);
        let tribute = optional_enum::<pb::Tribute>(req.tribute, "tribute", &mut v);
        v.into_result()?;
        self.settle().await?;
        use pb::DebtPositionStatus as S;
        let filter = DebtFilter {
            status,
            // Drafts are not notices yet: by default every other status.
            statuses: status.is_none().then(|| {
                [
                    S::Published,
                    S::Valid,
                    S::PartiallyPaid,
                    S::Paid,
                    S::Reported,
                    S::Invalid,
                    S::Expired,
                ]
                .iter()
                .map(|s| *s as i32)
                .collect()
            }),
            tribute,
            ..Default::default()
        };
        let rows = self
            .store
            .debts_of(&canonical, &filter)
            .await
            .map_err(ServiceError::from)?;
        let now = Utc::now();
        let mut reads = Reads::new(caller, what::DEBT);
        let mut items = Vec::new();
        for (key, cf) in asked_keys(&req.keys, holder_code) {
            let debt_positions: Vec<pb::DebtPosition> = rows
                .iter()
                .filter(|r| r.position.debtor_fiscal_code == cf)
                .filter(|r| reads.allows(&access::debt(r)))
                .map(|r| debt_to_pb(r, now))
                .collect();
            if !debt_positions.is_empty() {
                items.push(pb::ListCitizenDebtPositionsItem {
                    key,
                    debt_positions,
                });
            }
        }
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::ListCitizenDebtPositionsResponse {
            items,
        }))
    }

    async fn list_municipality_tax_summaries(
        &self,
        request: Request<pb::ListMunicipalityTaxSummariesRequest>,
    ) -> Answer<pb::ListMunicipalityTaxSummariesResponse> {
        let who = principal(&request);
        signed_in(&who, "collection figures are internal to the comune")?;
        let req = request.into_inner();
        let keys = batch_keys(&req.keys, istat_key)?;
        let mut v = Violations::new();
        if req.year != 0 {
            check_year(req.year, "year", &mut v);
        }
        v.into_result()?;
        // Internal to each comune (see `access`): its operators and systems read their own comune's.
        if who.comune().is_none() {
            return Err(ServiceError::PermissionDenied(
                "collection figures are internal to the comune: for its operators and systems"
                    .into(),
            )
            .into());
        }
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| rule::may_read(&who, &Record::Comune { istat_code: k }))
            .collect();
        let year = if req.year == 0 {
            Utc::now().year()
        } else {
            req.year
        };
        self.settle().await?;
        let sums = self
            .store
            .summaries(&keys, year)
            .await
            .map_err(ServiceError::from)?;
        use pb::DebtPositionStatus as S;
        let items = sums
            .into_iter()
            .map(|(key, tributes)| pb::ListMunicipalityTaxSummariesItem {
                key,
                summaries: tributes
                    .into_iter()
                    .map(|(tribute, (positions, due, paid, debts))| {
                        let count = |list: &[S]| {
                            list.iter()
                                .map(|s| debts.get(&(*s as i32)).copied().unwrap_or(0))
                                .sum()
                        };
                        pb::TaxCollectionSummary {
                            tribute,
                            year,
                            positions,
                            amount_due: Some(patto_proto::common::v1::Money { cents: due }),
                            amount_paid: Some(patto_proto::common::v1::Money { cents: paid }),
                            open_debt_positions: count(&[S::Published, S::Valid, S::PartiallyPaid]),
                            paid_debt_positions: count(&[S::Paid, S::Reported]),
                            expired_debt_positions: count(&[S::Expired]),
                        }
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::ListMunicipalityTaxSummariesResponse {
            items,
        }))
    }

    async fn list_tari_registrations(
        &self,
        request: Request<pb::ListTariRegistrationsRequest>,
    ) -> Answer<pb::ListTariRegistrationsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "TARI registrations are personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        let holder = optional_taxpayer(&req.holder_fiscal_code, "holder_fiscal_code", &mut v);
        let kind = optional_enum::<pb::TariUseKind>(req.kind, "kind", &mut v);
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let (_, holder) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()),
            holder,
            "TARI registrations are personal data",
        )?;
        let (rows, total) = self
            .store
            .list_registrations(
                &req.istat_code,
                holder.as_deref(),
                kind,
                req.include_ended,
                Utc::now().date_naive(),
                page,
            )
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, what::REGISTRATION)
            .check_all(rows.iter().map(access::registration))?
            .save(self.store.db())
            .await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListTariRegistrationsResponse {
            registrations: rows.iter().map(registration_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn submit_tari_declaration(
        &self,
        request: Request<pb::SubmitTariDeclarationRequest>,
    ) -> Answer<pb::SubmitTariDeclarationResponse> {
        let who = principal(&request);
        signed_in(&who, "a declaration is filed by the taxpayer")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let kind = pb::TariDeclarationKind::try_from(req.kind)
            .unwrap_or(pb::TariDeclarationKind::Unspecified);
        if kind == pb::TariDeclarationKind::Unspecified {
            v.add("kind", "must be START, CHANGE or END");
        }
        let event = required_day(
            &req.event_date,
            "event_date",
            "the day the occupation started, changed or ended",
            &mut v,
        );
        text(&req.note, "note", MAX_TEXT_LEN, false, &mut v);
        let needs_id = matches!(
            kind,
            pb::TariDeclarationKind::Change | pb::TariDeclarationKind::End
        );
        let id = req.registration_id.trim().to_owned();
        if needs_id {
            v.check(
                !id.is_empty() && id.len() <= 64,
                "registration_id",
                "must name the registration changed or ended",
            );
        }
        let needs_content = matches!(
            kind,
            pb::TariDeclarationKind::Start | pb::TariDeclarationKind::Change
        );
        let content = if needs_content {
            match &req.registration {
                None => {
                    v.add("registration", "must be set");
                    None
                }
                Some(r) => {
                    let mut r = r.clone();
                    if r.start_date.trim().is_empty() {
                        r.start_date = req.event_date.clone();
                    }
                    match validate_tari_registration(&r, "registration") {
                        Ok(x) => Some(x),
                        Err(more) => {
                            for f in more.as_slice() {
                                v.add(f.field.clone(), f.description.clone());
                            }
                            None
                        }
                    }
                }
            }
        } else {
            None
        };
        v.into_result()?;
        let Some(event) = event else {
            return Err(ServiceError::invalid("event_date", "must be set").into());
        };
        let declaration = match (kind, content) {
            (pb::TariDeclarationKind::Start, Some(r)) => {
                rule::authorize_write(
                    &who,
                    &Act::for_citizen(&r.holder_fiscal_code, &r.istat_code),
                )?;
                TariDeclaration::Start(r)
            }
            (pb::TariDeclarationKind::Change, Some(r)) => {
                let old = self
                    .store
                    .registration(&id)
                    .await
                    .map_err(ServiceError::from)?
                    .ok_or_else(|| ServiceError::not_found("TARI registration", &id))?;
                rule::authorize_write(
                    &who,
                    &Act::for_citizen(&old.holder_fiscal_code, &old.istat_code),
                )?;
                let mut v = Violations::new();
                v.check(
                    r.holder_fiscal_code == old.holder_fiscal_code,
                    "registration.holder_fiscal_code",
                    format!(
                        "must stay {}: a new holder declares a start of occupation",
                        old.holder_fiscal_code
                    ),
                );
                v.check(
                    r.istat_code == old.istat_code,
                    "registration.istat_code",
                    format!("must stay {}", old.istat_code),
                );
                v.into_result()?;
                TariDeclaration::Change {
                    id,
                    registration: r,
                }
            }
            _ => {
                let old = self
                    .store
                    .registration(&id)
                    .await
                    .map_err(ServiceError::from)?
                    .ok_or_else(|| ServiceError::not_found("TARI registration", &id))?;
                rule::authorize_write(
                    &who,
                    &Act::for_citizen(&old.holder_fiscal_code, &old.istat_code),
                )?;
                TariDeclaration::End { id }
            }
        };
        let (row, protocol_number, late) = self
            .store
            .submit_tari_declaration(declaration, event, access::online(&who), Utc::now())
            .await?;
        Ok(Response::new(pb::SubmitTariDeclarationResponse {
            registration: Some(registration_to_pb(&row)),
            protocol_number,
            late,
        }))
    }

    async fn list_imu_declarations(
        &self,
        request: Request<pb::ListImuDeclarationsRequest>,
    ) -> Answer<pb::ListImuDeclarationsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "IMU declarations are personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        let fiscal_code = optional_taxpayer(&req.fiscal_code, "fiscal_code", &mut v);
        if req.year != 0 {
            check_year(req.year, "year", &mut v);
        }
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let (istat_code, fiscal_code) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            fiscal_code,
            "IMU declarations are personal data",
        )?;
        let (rows, total) = self
            .store
            .list_declarations(
                istat_code.as_deref(),
                fiscal_code.as_deref(),
                Some(req.year).filter(|y| *y != 0),
                page,
            )
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, what::DECLARATION)
            .check_all(rows.iter().map(access::declaration))?
            .save(self.store.db())
            .await?;
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListImuDeclarationsResponse {
            declarations: rows.iter().map(declaration_to_pb).collect(),
            page_info: Some(info),
        }))
    }

    async fn submit_imu_declaration(
        &self,
        request: Request<pb::SubmitImuDeclarationRequest>,
    ) -> Answer<pb::SubmitImuDeclarationResponse> {
        let who = principal(&request);
        signed_in(&who, "a declaration is filed by the taxpayer")?;
        let credentials = self.building.forwarded(&request);
        let Some(d) = request.into_inner().declaration else {
            return Err(ServiceError::invalid("declaration", "must be set").into());
        };
        let mut d = d;
        // Filed online, the number comes from the comune's protocollo, not from the filer.
        d.protocol_number.clear();
        let new =
            validate_imu_declaration(&d, "declaration").map_err(ServiceError::InvalidArgument)?;
        rule::authorize_write(&who, &Act::for_citizen(&new.fiscal_code, &new.istat_code))?;
        // The units declared must exist in the Catasto, in the comune declared: one call.
        let ids: Vec<String> = [&new.cadastral_unit_id, &new.main_residence_unit_id]
            .into_iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let units = self
            .building
            .units(&ids, &credentials)
            .await
            .map_err(TaxesError::Building)?;
        let mut v = Violations::new();
        for (field, id) in [
            ("declaration.cadastral_unit_id", &new.cadastral_unit_id),
            (
                "declaration.main_residence_unit_id",
                &new.main_residence_unit_id,
            ),
        ] {
            if id.is_empty() {
                continue;
            }
            match units.get(id) {
                None => v.add(
                    field,
                    format!(
                        "no cadastral unit has id `{id}`; find it among the taxpayer's properties"
                    ),
                ),
                Some(u) if u.istat_code != new.istat_code => v.add(
                    field,
                    format!(
                        "the unit lies in comune {}, not {}",
                        u.istat_code, new.istat_code
                    ),
                ),
                Some(_) => {}
            }
        }
        v.into_result()?;
        let row = self
            .store
            .submit_imu_declaration(new, access::online(&who), Utc::now())
            .await?;
        Ok(Response::new(pb::SubmitImuDeclarationResponse {
            declaration: Some(declaration_to_pb(&row)),
        }))
    }

    async fn list_debt_positions(
        &self,
        request: Request<pb::ListDebtPositionsRequest>,
    ) -> Answer<pb::ListDebtPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "debt positions are personal data")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", false, &mut v);
        let debtor = optional_taxpayer(&req.debtor_fiscal_code, "debtor_fiscal_code", &mut v);
        let status = optional_enum::<pb::DebtPositionStatus>(req.status, "status", &mut v);
        let tribute = optional_enum::<pb::Tribute>(req.tribute, "tribute", &mut v);
        if req.year != 0 {
            check_year(req.year, "year", &mut v);
        }
        let iuv = Some(req.iuv.trim().to_owned()).filter(|s| !s.is_empty());
        if let Some(iuv) = &iuv {
            pagopa::validate_iuv(iuv)
                .map_err(|e| v.add("iuv", format!("is not a valid IUV: {e}")))
                .ok();
        }
        let nav = Some(req.nav.trim().to_owned()).filter(|s| !s.is_empty());
        if let Some(nav) = &nav {
            pagopa::validate_nav(nav)
                .map_err(|e| v.add("nav", format!("is not a valid notice number: {e}")))
                .ok();
        }
        let page = Page::from_request(req.page.as_ref(), "page");
        v.into_result()?;
        let page = page?;
        let (istat_code, debtor) = narrow(
            &caller.principal,
            Some(req.istat_code.clone()).filter(|s| !s.is_empty()),
            debtor,
            "debt positions are personal data",
        )?;
        self.settle().await?;
        let filter = DebtFilter {
            istat_code,
            debtor,
            status,
            statuses: None,
            tribute,
            year: Some(req.year).filter(|y| *y != 0),
            iuv,
            nav,
        };
        let (rows, total) = self
            .store
            .list_debts(&filter, page)
            .await
            .map_err(ServiceError::from)?;
        Reads::new(caller, what::DEBT)
            .check_all(rows.iter().map(access::debt))?
            .save(self.store.db())
            .await?;
        let now = Utc::now();
        let info = page.info(rows.len(), total);
        Ok(Response::new(pb::ListDebtPositionsResponse {
            debt_positions: rows.iter().map(|r| debt_to_pb(r, now)).collect(),
            page_info: Some(info),
        }))
    }

    async fn lookup_debt_positions(
        &self,
        request: Request<pb::LookupDebtPositionsRequest>,
    ) -> Answer<pb::LookupDebtPositionsResponse> {
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "debt positions are personal data")?;
        let keys = batch_keys(&request.into_inner().keys, any_id)?;
        self.settle().await?;
        let rows = self
            .store
            .debts_by_iupd(&keys)
            .await
            .map_err(ServiceError::from)?;
        let now = Utc::now();
        // Positions the caller may not read are left out, as unknown ones are.
        let mut reads = Reads::new(caller, what::DEBT);
        let items: Vec<_> = rows
            .iter()
            .filter(|r| reads.allows(&access::debt(r)))
            .map(|r| pb::LookupDebtPositionsItem {
                key: r.position.iupd.clone(),
                debt_position: Some(debt_to_pb(r, now)),
            })
            .collect();
        reads.save(self.store.db()).await?;
        Ok(Response::new(pb::LookupDebtPositionsResponse { items }))
    }

    async fn issue_debt_position(
        &self,
        request: Request<pb::IssueDebtPositionRequest>,
    ) -> Answer<pb::IssueDebtPositionResponse> {
        let who = principal(&request);
        signed_in(&who, "a notice is asked for by the taxpayer")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let id = any_id(&req.tax_position_id)
            .map_err(|m| v.add("tax_position_id", m))
            .unwrap_or_default();
        let now = Utc::now();
        let validity = match &req.validity_time {
            None => Some(now),
            Some(t) => time::from_timestamp(t),
        };
        v.check(
            validity.is_some(),
            "validity_time",
            "is not a valid timestamp",
        );
        v.into_result()?;
        let validity: DateTime<Utc> = validity.unwrap_or(now).max(now);
        let position = self
            .store
            .positions_by_id(std::slice::from_ref(&id))
            .await
            .map_err(ServiceError::from)?
            .pop()
            .ok_or_else(|| ServiceError::not_found("tax position", &id))?;
        rule::authorize_write(
            &who,
            &Act::for_citizen(
                &position.position.fiscal_code,
                &position.position.istat_code,
            ),
        )?;
        let record = self
            .store
            .issue_debt_position(&id, req.single_payment_only, validity, now)
            .await?;
        self.publish(&record);
        Ok(Response::new(pb::IssueDebtPositionResponse {
            debt_position: Some(debt_to_pb(&record, now)),
        }))
    }

    async fn invalidate_debt_position(
        &self,
        request: Request<pb::InvalidateDebtPositionRequest>,
    ) -> Answer<pb::InvalidateDebtPositionResponse> {
        let who = principal(&request);
        signed_in(&who, "notices are cancelled by the comune's operators")?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let iupd = any_id(&req.iupd)
            .map_err(|m| v.add("iupd", m))
            .unwrap_or_default();
        let reason = text(&req.reason, "reason", MAX_TEXT_LEN, true, &mut v);
        v.into_result()?;
        let current = self
            .store
            .debt(&iupd)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("debt position", &iupd))?;
        rule::authorize_write(&who, &Act::for_comune(&current.position.istat_code))?;
        let record = self.store.invalidate(&iupd, &reason, Utc::now()).await?;
        self.publish(&record);
        Ok(Response::new(pb::InvalidateDebtPositionResponse {
            debt_position: Some(debt_to_pb(&record, Utc::now())),
        }))
    }

    async fn generate_tax_notices(
        &self,
        request: Request<pb::GenerateTaxNoticesRequest>,
    ) -> Answer<pb::GenerateTaxNoticesResponse> {
        let who = principal(&request);
        signed_in(&who, "the yearly notices are the comune's work")?;
        let credentials = self.building.forwarded(&request);
        let req = request.into_inner();
        let mut v = Violations::new();
        istat_check(&req.istat_code, "istat_code", true, &mut v);
        let tribute = required_enum::<pb::Tribute>(req.tribute, "tribute", "IMU or TARI", &mut v);
        check_year(req.year, "year", &mut v);
        v.into_result()?;
        rule::authorize_write(&who, &Act::for_comune(&req.istat_code))?;
        let now = Utc::now();
        let tribute = pb::Tribute::try_from(tribute).unwrap_or(pb::Tribute::Imu);
        let computed = match tribute {
            pb::Tribute::Tari => {
                compute::tari_for_comune(&self.store, &req.istat_code, req.year, now).await?
            }
            _ => {
                compute::imu_for_comune(
                    &self.store,
                    &self.building,
                    &credentials,
                    &req.istat_code,
                    req.year,
                    now,
                )
                .await?
            }
        };
        let out = self
            .store
            .generate(
                &req.istat_code,
                tribute,
                req.year,
                computed,
                req.dry_run,
                now,
            )
            .await?;
        Ok(Response::new(pb::GenerateTaxNoticesResponse {
            positions: out.positions,
            debt_positions: out.debt_positions,
            below_minimum: out.below_minimum,
            total_amount: Some(patto_proto::common::v1::Money {
                cents: out.total_amount,
            }),
        }))
    }

    async fn record_debt_payment(
        &self,
        request: Request<pb::RecordDebtPaymentRequest>,
    ) -> Answer<pb::RecordDebtPaymentResponse> {
        // Receipts come from a comune's pagoPA connector: its operators and systems only.
        let who = principal(&request);
        rule::authorize_write(&who, &Act::for_comune(who.comune().unwrap_or_default()))?;
        let req = request.into_inner();
        let mut v = Violations::new();
        let creditor = req.creditor_fiscal_code.trim().to_owned();
        ids::validate_partita_iva(&creditor)
            .map_err(|e| {
                v.add(
                    "creditor_fiscal_code",
                    format!("must be the creditor body's 11-digit codice fiscale: {e}"),
                )
            })
            .ok();
        let iuv = req.iuv.trim().to_owned();
        pagopa::validate_iuv(&iuv)
            .map_err(|e| v.add("iuv", format!("is not a valid IUV: {e}")))
            .ok();
        let receipt = match &req.receipt {
            None => {
                v.add("receipt", "must be set");
                None
            }
            Some(r) => {
                let id = text(&r.receipt_id, "receipt.receipt_id", 64, true, &mut v);
                let psp_id = text(&r.psp_id, "receipt.psp_id", 64, false, &mut v);
                let psp_name = text(&r.psp_name, "receipt.psp_name", 200, false, &mut v);
                let amount = r.amount.as_ref().map_or(0, |m| m.cents);
                v.check(
                    (1..=crate::domain::MAX_AMOUNT_CENTS).contains(&amount),
                    "receipt.amount.cents",
                    "must be the amount paid, more than 0",
                );
                let payment_time = match &r.payment_time {
                    None => Some(Utc::now()),
                    Some(t) => time::from_timestamp(t),
                };
                v.check(
                    payment_time.is_some(),
                    "receipt.payment_time",
                    "is not a valid timestamp",
                );
                Some(Receipt {
                    receipt_id: id,
                    psp_id,
                    psp_name,
                    amount,
                    payment_time: payment_time.unwrap_or_else(Utc::now),
                })
            }
        };
        v.into_result()?;
        let Some(receipt) = receipt else {
            return Err(ServiceError::invalid("receipt", "must be set").into());
        };
        // The notice must be the caller's comune's: checked on the position found, before the
        // receipt is written.
        let (record, already) = self
            .store
            .record_payment(&creditor, &iuv, &receipt, Utc::now(), |position| {
                rule::authorize_write(&who, &Act::for_comune(&position.istat_code))
            })
            .await?;
        if !already {
            self.publish(&record);
        }
        Ok(Response::new(pb::RecordDebtPaymentResponse {
            debt_position: Some(debt_to_pb(&record, Utc::now())),
            already_recorded: already,
        }))
    }

    async fn watch_debt_position(
        &self,
        request: Request<pb::WatchDebtPositionRequest>,
    ) -> Answer<BoxStream<pb::WatchDebtPositionResponse>> {
        let draining = Draining::of(&request);
        let caller = Caller::of(&request);
        signed_in(&caller.principal, "debt positions are personal data")?;
        let iupd =
            any_id(&request.into_inner().iupd).map_err(|m| ServiceError::invalid("iupd", m))?;
        // Subscribe before reading the current state, so no change falls between the two.
        let mut updates = self.updates.subscribe();
        self.settle().await?;
        let current = self
            .store
            .debt(&iupd)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("debt position", &iupd))?;
        // Followed by the debtor and the comune's operators; recorded once, when the watch starts.
        let mut reads = Reads::new(caller, what::DEBT);
        reads.check(&access::debt(&current))?;
        reads.save(self.store.db()).await?;
        let api = self.clone();
        let stream = spawn_stream(draining, move |tx| async move {
            let message = |r: &DebtRecord| {
                let now = Utc::now();
                pb::WatchDebtPositionResponse {
                    iupd: r.position.iupd.clone(),
                    status: debt_status(r, now) as i32,
                    debt_position: Some(debt_to_pb(r, now)),
                }
            };
            // The next moment the clock changes this position: payable from its validity, or
            // expired past its last due day.
            let next_change = |r: &DebtRecord| -> Option<DateTime<Utc>> {
                let now = Utc::now();
                match debt_status(r, now) {
                    pb::DebtPositionStatus::Published => Some(r.position.validity_at),
                    pb::DebtPositionStatus::Valid => r.position.expires_at,
                    _ => None,
                }
            };
            if tx.send(Ok(message(&current))).await.is_err() {
                return;
            }
            let mut next = next_change(&current);
            loop {
                let sleep = next.map(|at| (at - Utc::now()).to_std().unwrap_or_default());
                tokio::select! {
                    update = updates.recv() => {
                        let m = match update {
                            Ok(m) if m.iupd == iupd => m,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => match api.store.debt(&iupd).await {
                                Ok(Some(r)) => message(&r),
                                _ => continue,
                            },
                            Err(broadcast::error::RecvError::Closed) => return,
                        };
                        if let Ok(Some(r)) = api.store.debt(&iupd).await {
                            next = next_change(&r);
                        }
                        if tx.send(Ok(m)).await.is_err() {
                            return;
                        }
                    }
                    () = async {
                        match sleep {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending::<()>().await,
                        }
                    } => {
                        // The clock moved it: store the new status and tell every watcher.
                        // The change comes back through the broadcast, like any other.
                        match api.settle().await {
                            Ok(()) => {
                                next = match api.store.debt(&iupd).await {
                                    Ok(Some(r)) => next_change(&r),
                                    _ => None,
                                };
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, iupd = %iupd, "settling a watched notice failed");
                                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                            }
                        }
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn import_tax_roll(
        &self,
        request: Request<Streaming<pb::ImportTaxRollRequest>>,
    ) -> Answer<pb::ImportTaxRollResponse> {
        use pb::import_tax_roll_request::Row;
        // Importing is the work of a comune, for its own roll: refused before a row is read.
        let who = principal(&request);
        let comune = who.comune().unwrap_or_default().to_owned();
        rule::authorize_write(&who, &Act::for_comune(&comune))?;
        let mut stream = request.into_inner();
        let mut rows = Vec::new();
        while let Some(row) = stream.next().await {
            rows.push(row?);
            if rows.len() > MAX_IMPORT_ROWS {
                return Err(ServiceError::invalid(
                    "row",
                    format!("a roll import carries at most {MAX_IMPORT_ROWS} rows; split the roll"),
                )
                .into());
            }
        }
        // Every row must concern the caller's comune.
        let mut errors = Vec::new();
        let err = |row: usize, field: &str, description: String| pb::TaxRollRowError {
            row: row as i32,
            field: field.to_owned(),
            description,
        };
        let mut valid: Vec<(usize, RollRow)> = Vec::with_capacity(rows.len());
        let mut seen_imu: HashMap<(String, i32, String, NaiveDate), usize> = HashMap::new();
        let mut seen_tari: HashMap<(String, String, NaiveDate), usize> = HashMap::new();
        let mut seen_pos: HashMap<(String, i32, i32), usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let n = i + 1;
            let (prefix, result) = match &r.row {
                None => {
                    errors.push(err(
                        n,
                        "row",
                        "must hold an imu_declaration, a tari_registration or a tax_position"
                            .into(),
                    ));
                    continue;
                }
                Some(Row::ImuDeclaration(d)) => (
                    "imu_declaration",
                    validate_imu_declaration(d, "imu_declaration").map(RollRow::Imu),
                ),
                Some(Row::TariRegistration(t)) => (
                    "tari_registration",
                    validate_tari_registration(t, "tari_registration").map(RollRow::Tari),
                ),
                Some(Row::TaxPosition(p)) => (
                    "tax_position",
                    validate_tax_position(p, "tax_position")
                        .map(|p| RollRow::Position(p, NaiveDate::default())),
                ),
            };
            match result {
                Err(violations) => errors.extend(
                    violations
                        .as_slice()
                        .iter()
                        .map(|f| err(n, &f.field, f.description.clone())),
                ),
                Ok(row) => {
                    let istat = match &row {
                        RollRow::Imu(d) => &d.istat_code,
                        RollRow::Tari(t) => &t.istat_code,
                        RollRow::Position(p, _) => &p.istat_code,
                    };
                    if *istat != comune {
                        errors.push(err(
                            n,
                            &format!("{prefix}.istat_code"),
                            format!("every row of a roll must concern comune {comune}"),
                        ));
                        continue;
                    }
                    let first = match &row {
                        RollRow::Imu(d) => seen_imu.insert(d.key(), n),
                        RollRow::Tari(t) => seen_tari.insert(t.key(), n),
                        RollRow::Position(p, _) => seen_pos.insert(p.key(), n),
                    };
                    if let Some(first) = first {
                        errors.push(err(
                            n,
                            prefix,
                            format!("repeats row {first} (same taxpayer, object and period)"),
                        ));
                        continue;
                    }
                    valid.push((n, row));
                }
            }
        }
        if !errors.is_empty() {
            return Ok(Response::new(pb::ImportTaxRollResponse {
                imported: 0,
                imu_declarations: 0,
                tari_registrations: 0,
                tax_positions: 0,
                errors,
            }));
        }
        // Positions computed elsewhere fall due on the comune's last due day of their year.
        let mut dues: HashMap<(i32, i32), NaiveDate> = HashMap::new();
        let mut out = Vec::with_capacity(valid.len());
        for (_, row) in valid {
            out.push(match row {
                RollRow::Position(p, _) => {
                    let key = (p.tribute, p.year);
                    let due = match dues.get(&key) {
                        Some(d) => *d,
                        None => {
                            let d = self.imported_due(&comune, p.tribute, p.year).await?;
                            dues.insert(key, d);
                            d
                        }
                    };
                    RollRow::Position(p, due)
                }
                other => other,
            });
        }
        let imported = self.store.import_roll(&comune, out, Utc::now()).await?;
        Ok(Response::new(pb::ImportTaxRollResponse {
            imported: imported.imu_declarations
                + imported.tari_registrations
                + imported.tax_positions,
            imu_declarations: imported.imu_declarations,
            tari_registrations: imported.tari_registrations,
            tax_positions: imported.tax_positions,
            errors: Vec::new(),
        }))
    }
}
