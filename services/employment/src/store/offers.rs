//! Job offers and applications in the database.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patto_proto::employment::v1 as pb;
use patto_service_kit::error::ServiceError;
use patto_service_kit::indicators;
use patto_service_kit::paging::Page;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use super::{ApplicationFilter, OfferFilter, Store, job_application, job_offer, unique_violation};
use crate::domain::offer::{
    self, LIVE_APPLICATION, NewApplication, NewJobOffer, application_refusal, offer_status,
};
use crate::domain::{self, italian_day};

fn live_statuses() -> [i32; 3] {
    LIVE_APPLICATION.map(|s| s as i32)
}

/// The condition of offers open for applications on `today`.
fn open_on(today: chrono::NaiveDate) -> Condition {
    Condition::all()
        .add(job_offer::Column::Status.eq(pb::JobOfferStatus::Open as i32))
        .add(job_offer::Column::ApplicationDeadline.gte(today))
}

fn profession_condition(code: &str) -> Condition {
    Condition::any()
        .add(job_offer::Column::ProfessionCode.eq(code))
        .add(job_offer::Column::ProfessionCode.like(format!("{code}.%")))
}

fn offer_search_text(o: &NewJobOffer) -> String {
    domain::search_text(&[
        &o.title,
        &o.description,
        &o.requirements,
        if o.employer_anonymous {
            ""
        } else {
            &o.employer_name
        },
        &offer::profession_name(&o.profession_code),
    ])
}

/// Sets every field a client may send; status, counts and times stay as they are.
fn fill_offer(m: &mut job_offer::ActiveModel, o: NewJobOffer) {
    m.search_text = Set(offer_search_text(&o));
    let place = o.work_address.unwrap_or_default();
    m.has_work_address = Set(!place.street.is_empty());
    m.work_street = Set(place.street);
    m.work_house_number = Set(place.house_number);
    m.work_postal_code = Set(place.postal_code);
    m.work_locality = Set(place.locality);
    m.istat_code = Set(o.istat_code);
    m.external_ref = Set(o.external_ref);
    m.title = Set(o.title);
    m.description = Set(o.description);
    m.profession_code = Set(o.profession_code);
    m.ateco_code = Set(o.ateco_code);
    m.employer_name = Set(o.employer_name);
    m.employer_tax_code = Set(o.employer_tax_code);
    m.employer_anonymous = Set(o.employer_anonymous);
    m.contract_type = Set(o.contract_type as i32);
    m.weekly_hours = Set(o.weekly_hours);
    m.duration_months = Set(o.duration_months);
    m.positions = Set(o.positions);
    m.application_deadline = Set(o.application_deadline);
    m.requirements = Set(o.requirements);
    m.min_eqf_level = Set(o.min_eqf_level);
    m.pay_min_cents = Set(o.pay_min_cents);
    m.pay_max_cents = Set(o.pay_max_cents);
    m.contact_office = Set(o.contact_office);
}

/// Inserts a new open offer with the given id (demo data uses stable ids, clients get UUIDs).
pub(crate) async fn insert_offer(
    c: &impl ConnectionTrait,
    o: NewJobOffer,
    id: String,
    now: DateTime<Utc>,
) -> Result<job_offer::Model, ServiceError> {
    let (istat, reference) = (o.istat_code.clone(), o.external_ref.clone());
    let mut m = job_offer::ActiveModel {
        id: Set(id),
        status: Set(pb::JobOfferStatus::Open as i32),
        published_at: Set(now),
        closed_at: Set(None),
        closure_note: Set(String::new()),
        applications_count: Set(0),
        ..Default::default()
    };
    fill_offer(&mut m, o);
    m.insert(c).await.map_err(|e| {
        if unique_violation(&e) {
            ServiceError::AlreadyExists(format!(
                "comune {istat} already has a job offer with external_ref `{reference}`; import it to update that offer"
            ))
        } else {
            e.into()
        }
    })
}

async fn lock_offer(c: &impl ConnectionTrait, id: &str) -> Result<job_offer::Model, ServiceError> {
    job_offer::Entity::find_by_id(id)
        .lock_exclusive()
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("job offer", id))
}

async fn find_application(
    c: &impl ConnectionTrait,
    id: &str,
) -> Result<job_application::Model, ServiceError> {
    job_application::Entity::find_by_id(id)
        .one(c)
        .await?
        .ok_or_else(|| ServiceError::not_found("job application", id))
}

/// The body of [`Store::apply`] over a connection in a transaction, with the id given (demo data
/// applies many in one transaction, with stable ids).
pub(crate) async fn apply_in(
    conn: &impl ConnectionTrait,
    a: NewApplication,
    online: bool,
    now: DateTime<Utc>,
    id: String,
) -> Result<job_application::Model, ServiceError> {
    let offer = lock_offer(conn, &a.job_offer_id).await?;
    let status = offer_status(offer.status, offer.application_deadline, italian_day(now));
    if let Some(refusal) = application_refusal(&offer.id, status) {
        return Err(refusal);
    }
    let running = job_application::Entity::find()
        .filter(job_application::Column::JobOfferId.eq(offer.id.as_str()))
        .filter(job_application::Column::FiscalCode.eq(a.fiscal_code.as_str()))
        .filter(job_application::Column::Status.ne(pb::JobApplicationStatus::Withdrawn as i32))
        .count(conn)
        .await?;
    if running > 0 {
        return Err(ServiceError::AlreadyExists(format!(
            "this citizen already applied to job offer {}; withdraw that application to apply again",
            offer.id
        )));
    }
    let cv = a.cv.unwrap_or(offer::Cv {
        file_name: String::new(),
        sha256: String::new(),
        size_bytes: 0,
        media_type: String::new(),
    });
    let stored = job_application::ActiveModel {
        id: Set(id),
        job_offer_id: Set(offer.id.clone()),
        istat_code: Set(offer.istat_code.clone()),
        fiscal_code: Set(a.fiscal_code),
        status: Set(pb::JobApplicationStatus::Submitted as i32),
        message: Set(a.message),
        cv_file_name: Set(cv.file_name),
        cv_sha256: Set(cv.sha256),
        cv_size_bytes: Set(cv.size_bytes),
        cv_media_type: Set(cv.media_type),
        contact_email: Set(a.contact_email),
        contact_phone: Set(a.contact_phone),
        consent_to_share: Set(true),
        review_note: Set(String::new()),
        online: Set(online),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    job_offer::Entity::update_many()
        .col_expr(
            job_offer::Column::ApplicationsCount,
            Expr::col(job_offer::Column::ApplicationsCount).add(1),
        )
        .filter(job_offer::Column::Id.eq(offer.id.as_str()))
        .exec(conn)
        .await?;
    Ok(stored)
}

/// The body of [`Store::review_application`] over a connection in a transaction.
pub(crate) async fn review_in(
    conn: &impl ConnectionTrait,
    salt: &str,
    id: &str,
    target: pb::JobApplicationStatus,
    note: &str,
    now: DateTime<Utc>,
) -> Result<job_application::Model, ServiceError> {
    let app = find_application(conn, id).await?;
    let current = pb::JobApplicationStatus::try_from(app.status)
        .unwrap_or(pb::JobApplicationStatus::Unspecified);
    if let Some(refusal) = offer::review_refusal(id, current, target) {
        return Err(refusal);
    }
    let updated = job_application::Entity::update_many()
        .col_expr(job_application::Column::Status, Expr::value(target as i32))
        .col_expr(job_application::Column::ReviewNote, Expr::value(note))
        .col_expr(job_application::Column::UpdatedAt, Expr::value(now))
        .filter(job_application::Column::Id.eq(id))
        .filter(job_application::Column::Status.eq(app.status))
        .exec(conn)
        .await?;
    if updated.rows_affected == 0 {
        return Err(ServiceError::FailedPrecondition(format!(
            "job application {id} changed while it was being reviewed; reload it and retry"
        )));
    }
    if offer::is_outcome(target) && app.online {
        indicators::record(
            conn,
            salt,
            &app.istat_code,
            &domain::JOB_APPLICATION,
            &app.fiscal_code,
            now,
        )
        .await?;
    }
    let reviewed = find_application(conn, id).await?;
    Ok(reviewed)
}

impl Store {
    /// A page of offers matching `f` on `today`, newest first, and the total.
    pub async fn list_offers(
        &self,
        f: &OfferFilter,
        page: Page,
        today: chrono::NaiveDate,
    ) -> Result<(Vec<job_offer::Model>, u64), ServiceError> {
        let mut cond = Condition::all();
        if !f.istat_codes.is_empty() {
            cond = cond.add(job_offer::Column::IstatCode.is_in(f.istat_codes.iter().cloned()));
        }
        for w in &f.words {
            cond = cond.add(job_offer::Column::SearchText.like(format!("% {w}%")));
        }
        if let Some(code) = &f.profession_code {
            cond = cond.add(profession_condition(code));
        }
        if let Some(prefix) = &f.ateco_prefix {
            cond = cond.add(job_offer::Column::AtecoCode.like(format!("{prefix}%")));
        }
        if !f.contract_types.is_empty() {
            cond =
                cond.add(job_offer::Column::ContractType.is_in(f.contract_types.iter().copied()));
        }
        if let Some(h) = f.min_weekly_hours {
            cond = cond.add(job_offer::Column::WeeklyHours.gte(h));
        }
        if let Some(h) = f.max_weekly_hours {
            cond = cond.add(job_offer::Column::WeeklyHours.lte(h));
        }
        if let Some(d) = f.deadline_from {
            cond = cond.add(job_offer::Column::ApplicationDeadline.gte(d));
        }
        if !f.include_closed {
            cond = cond.add(open_on(today));
        }
        let q = job_offer::Entity::find().filter(cond);
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_desc(job_offer::Column::PublishedAt)
            .order_by_desc(job_offer::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The offers with these ids (unknown ids are left out).
    pub async fn offers_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<job_offer::Model>, ServiceError> {
        Ok(job_offer::Entity::find()
            .filter(job_offer::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    /// The offer with this id.
    pub async fn offer(&self, id: &str) -> Result<Option<job_offer::Model>, ServiceError> {
        Ok(job_offer::Entity::find_by_id(id).one(&self.db).await?)
    }

    /// Up to `per_comune` open offers of each comune, newest first.
    pub async fn open_offers_by_comune(
        &self,
        codes: &[String],
        per_comune: u64,
        contract_type: Option<i32>,
        profession_code: Option<&str>,
        today: chrono::NaiveDate,
    ) -> Result<BTreeMap<String, Vec<job_offer::Model>>, ServiceError> {
        let mut out = BTreeMap::new();
        // One bounded query per comune: a comune with hundreds of offers costs `per_comune` rows.
        for code in codes {
            let mut cond = open_on(today).add(job_offer::Column::IstatCode.eq(code.as_str()));
            if let Some(t) = contract_type {
                cond = cond.add(job_offer::Column::ContractType.eq(t));
            }
            if let Some(p) = profession_code {
                cond = cond.add(profession_condition(p));
            }
            let rows = job_offer::Entity::find()
                .filter(cond)
                .order_by_desc(job_offer::Column::PublishedAt)
                .order_by_desc(job_offer::Column::Id)
                .limit(per_comune)
                .all(&self.db)
                .await?;
            if !rows.is_empty() {
                out.insert(code.clone(), rows);
            }
        }
        Ok(out)
    }

    /// Publishes a validated offer.
    pub async fn publish_offer(
        &self,
        o: NewJobOffer,
        now: DateTime<Utc>,
    ) -> Result<job_offer::Model, ServiceError> {
        insert_offer(&self.db, o, uuid::Uuid::new_v4().to_string(), now).await
    }

    /// Closes an open offer early.
    pub async fn close_offer(
        &self,
        id: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<job_offer::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let offer = lock_offer(&txn, id).await?;
        match offer_status(offer.status, offer.application_deadline, italian_day(now)) {
            pb::JobOfferStatus::Open => {}
            pb::JobOfferStatus::Expired => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "job offer {id} has already expired: its deadline {} has passed",
                    offer.application_deadline
                )));
            }
            _ => {
                return Err(ServiceError::FailedPrecondition(format!(
                    "job offer {id} is already closed"
                )));
            }
        }
        let mut m: job_offer::ActiveModel = offer.into();
        m.status = Set(pb::JobOfferStatus::Closed as i32);
        m.closed_at = Set(Some(now));
        m.closure_note = Set(note.to_owned());
        let closed = m.update(&txn).await?;
        txn.commit().await?;
        Ok(closed)
    }

    /// Writes an import in one transaction: a row whose external reference the comune already
    /// used updates that offer, any other creates one. Returns how many rows were written.
    pub async fn import_offers(
        &self,
        rows: Vec<NewJobOffer>,
        now: DateTime<Utc>,
    ) -> Result<usize, ServiceError> {
        let txn = self.db.begin().await?;
        let n = rows.len();
        for o in rows {
            let existing = if o.external_ref.is_empty() {
                None
            } else {
                job_offer::Entity::find()
                    .filter(job_offer::Column::IstatCode.eq(o.istat_code.as_str()))
                    .filter(job_offer::Column::ExternalRef.eq(o.external_ref.as_str()))
                    .lock_exclusive()
                    .one(&txn)
                    .await?
            };
            match existing {
                Some(offer) => {
                    let mut m: job_offer::ActiveModel = offer.into();
                    fill_offer(&mut m, o);
                    m.update(&txn).await?;
                }
                None => {
                    insert_offer(&txn, o, uuid::Uuid::new_v4().to_string(), now).await?;
                }
            }
        }
        txn.commit().await?;
        Ok(n)
    }

    /// A page of applications matching `f`, oldest first, and the total.
    pub async fn list_applications(
        &self,
        f: &ApplicationFilter,
        page: Page,
    ) -> Result<(Vec<job_application::Model>, u64), ServiceError> {
        let mut q = job_application::Entity::find()
            .filter(job_application::Column::IstatCode.eq(f.istat_code.as_str()));
        if let Some(id) = &f.job_offer_id {
            q = q.filter(job_application::Column::JobOfferId.eq(id.as_str()));
        }
        if !f.statuses.is_empty() {
            q = q.filter(job_application::Column::Status.is_in(f.statuses.iter().copied()));
        }
        let total = q.clone().count(&self.db).await?;
        let rows = q
            .order_by_asc(job_application::Column::CreatedAt)
            .order_by_asc(job_application::Column::Id)
            .offset(page.offset)
            .limit(page.limit)
            .all(&self.db)
            .await?;
        Ok((rows, total))
    }

    /// The applications with these ids (unknown ids are left out).
    pub async fn applications_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<job_application::Model>, ServiceError> {
        Ok(job_application::Entity::find()
            .filter(job_application::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?)
    }

    /// The application with this id.
    pub async fn application(
        &self,
        id: &str,
    ) -> Result<Option<job_application::Model>, ServiceError> {
        Ok(job_application::Entity::find_by_id(id)
            .one(&self.db)
            .await?)
    }

    /// Applications of these citizens (canonical fiscal codes), newest first.
    pub async fn applications_by_citizen(
        &self,
        fiscal_codes: &[String],
        statuses: &[i32],
    ) -> Result<Vec<job_application::Model>, ServiceError> {
        let mut q = job_application::Entity::find()
            .filter(job_application::Column::FiscalCode.is_in(fiscal_codes.iter().cloned()));
        if !statuses.is_empty() {
            q = q.filter(job_application::Column::Status.is_in(statuses.iter().copied()));
        }
        Ok(q.order_by_desc(job_application::Column::CreatedAt)
            .order_by_desc(job_application::Column::Id)
            .all(&self.db)
            .await?)
    }

    /// Applies to an offer: under the offer's row lock, checks it is open and the citizen has no
    /// running application to it, stores the application and counts it, in one transaction.
    pub async fn apply(
        &self,
        a: NewApplication,
        online: bool,
        now: DateTime<Utc>,
    ) -> Result<job_application::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let out = apply_in(&txn, a, online, now, uuid::Uuid::new_v4().to_string()).await?;
        txn.commit().await?;
        Ok(out)
    }

    /// Withdraws a running application and uncounts it, under the offer's row lock.
    pub async fn withdraw_application(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<job_application::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let first = find_application(&txn, id).await?;
        let offer = lock_offer(&txn, &first.job_offer_id).await?;
        // Read again under the lock: a concurrent withdrawal may have come first.
        let app = find_application(&txn, id).await?;
        if !live_statuses().contains(&app.status) {
            return Err(ServiceError::FailedPrecondition(format!(
                "job application {id} cannot be withdrawn: it already has a final status"
            )));
        }
        let mut m: job_application::ActiveModel = app.into();
        m.status = Set(pb::JobApplicationStatus::Withdrawn as i32);
        m.updated_at = Set(now);
        let withdrawn = m.update(&txn).await?;
        job_offer::Entity::update_many()
            .col_expr(
                job_offer::Column::ApplicationsCount,
                Expr::col(job_offer::Column::ApplicationsCount).sub(1),
            )
            .filter(job_offer::Column::Id.eq(offer.id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(withdrawn)
    }

    /// Records a review. The update is conditional on the status read, so two operators reviewing
    /// at once cannot both win; an outcome of an online application records the completed
    /// interaction in the same transaction.
    pub async fn review_application(
        &self,
        id: &str,
        target: pb::JobApplicationStatus,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<job_application::Model, ServiceError> {
        let txn = self.db.begin().await?;
        let out = review_in(&txn, &self.salt, id, target, note, now).await?;
        txn.commit().await?;
        Ok(out)
    }
}
