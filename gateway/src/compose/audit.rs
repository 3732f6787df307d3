//! `Citizen.personalDataReads` and `Municipality.personalDataReads`: the log of who read a
//! citizen's personal data, gathered from every service's `AuditService` (each service records the
//! reads of the data it holds, next to that data). The services decide who may list what: the
//! citizen their own, operators their comune's; the gateway merges the answers, newest first.

use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputValue, TypeRef};
use async_graphql::{Name, Value};
use patto_service_kit::comuni::Comune;
use prost_reflect::{DynamicMessage, MethodDescriptor};

use super::roots::{CitizenValue, value_field};
use super::{Builder, ObjectDef, Source, recover, request_ctx};
use crate::errors;

/// The shared audit service every thematic service hosts.
pub const AUDIT_SERVICE: &str = "patto.common.v1.AuditService";
/// The GraphQL type of one read.
pub const READ_TYPE: &str = "PersonalDataRead";

const DEFAULT_READS: i64 = 50;
const MAX_READS: i64 = 100;

/// Adds the `PersonalDataRead` type; the fields are added by [`field`].
pub(crate) fn add_types(b: &mut Builder) {
    let f = |name: &str, ty: TypeRef, d: &str| value_field(name, ty, d);
    let s = || TypeRef::named_nn(TypeRef::STRING);
    b.objects.insert(
        READ_TYPE.into(),
        ObjectDef {
            description: Some(
                "A read of a citizen's personal data by someone other than that citizen.".into(),
            ),
            fields: [
                f("readAt", TypeRef::named_nn(super::scalars::DATETIME), "When it was read."),
                f("readerRole", s(), "Role of the reader: `operator`, `system` or `citizen`."),
                f("readerSubject", s(), "Who read: the operator's or system's identifier, or the other citizen's codice fiscale."),
                f("readerIstatCode", s(), "ISTAT code of the comune the reader acts for; empty for citizens."),
                f("fiscalCode", s(), "Codice fiscale of the citizen whose data was read."),
                f("istatCode", s(), "ISTAT code of the comune that holds the data."),
                f("what", s(), "What was read, e.g. `social.BenefitApplication`."),
                f("purposeId", s(), "The purpose the reader declared (PDND purpose id), if any."),
                f("service", s(), "The service that holds the data."),
            ]
            .into_iter()
            .collect(),
        },
    );
}

/// Which entity the field hangs on.
#[derive(Clone, Copy)]
pub(crate) enum On {
    /// `Citizen`: reads of this citizen's data.
    Citizen,
    /// `Municipality`: reads of the data this comune holds.
    Municipality,
}

/// The `personalDataReads` field for `on`.
pub(crate) fn field(b: &Builder, sources: &[Source], on: On) -> Field {
    let plans: Vec<(Arc<str>, MethodDescriptor)> = sources
        .iter()
        .filter_map(|s| {
            let svc = s.pool.get_service_by_name(AUDIT_SERVICE)?;
            let m = svc
                .methods()
                .find(|m| m.name() == "ListPersonalDataReads")?;
            Some((Arc::from(s.service.as_str()), m))
        })
        .collect();
    let invoker = b.invoker.clone();
    let description = match on {
        On::Citizen => {
            "Who read this citizen's personal data, newest first, across every service: visible to the citizen and to the operators of the comuni that hold it."
        }
        On::Municipality => {
            "Reads of the personal data this comune holds, newest first, across every service: visible to the comune's operators."
        }
    };
    Field::new(
        "personalDataReads",
        TypeRef::named_nn_list_nn(READ_TYPE),
        move |ctx| {
            let (plans, invoker) = (plans.clone(), invoker.clone());
            FieldFuture::new(async move {
                let result = async {
                    let (field, key) = match on {
                        On::Citizen => match ctx.parent_value.downcast_ref::<CitizenValue>() {
                            Some(c) => ("fiscal_code", c.fiscal_code.clone()),
                            None => return Ok(None),
                        },
                        On::Municipality => {
                            match ctx.parent_value.downcast_ref::<&'static Comune>() {
                                Some(c) => ("istat_code", c.istat_code.clone()),
                                None => return Ok(None),
                            }
                        }
                    };
                    let first = match ctx.args.get("first") {
                        Some(v) if !v.is_null() => v.i64()?,
                        _ => DEFAULT_READS,
                    };
                    if !(1..=MAX_READS).contains(&first) {
                        return Err(errors::bad_input(
                            "first",
                            format!("must be between 1 and {MAX_READS} (default {DEFAULT_READS})"),
                        ));
                    }
                    let rc = request_ctx(&ctx);
                    let calls = plans.iter().map(|(service, method)| {
                        let mut request = DynamicMessage::new(method.input());
                        request.set_field_by_name(field, prost_reflect::Value::String(key.clone()));
                        if let Some(page) = method
                            .input()
                            .get_field_by_name("page")
                            .and_then(|f| f.kind().as_message().cloned())
                        {
                            let mut p = DynamicMessage::new(page);
                            p.set_field_by_name("first", prost_reflect::Value::I32(first as i32));
                            request.set_field_by_name("page", prost_reflect::Value::Message(p));
                        }
                        rc.count_call(service);
                        let call = rc.call(service.clone(), method.clone(), request, true);
                        let invoker = invoker.clone();
                        async move { invoker.unary(call).await }
                    });
                    let mut reads: Vec<(i64, Value)> = Vec::new();
                    for answer in futures::future::join_all(calls).await {
                        // Any refusal or outage is the caller's to see: a partial log would
                        // look complete.
                        let response = answer.map_err(|e| errors::from_call(&e))?;
                        let items = response
                            .get_field_by_name("items")
                            .and_then(|v| v.as_list().map(<[_]>::to_vec))
                            .unwrap_or_default();
                        reads.extend(items.iter().filter_map(|v| v.as_message()).map(read_value));
                    }
                    reads.sort_by_key(|r| std::cmp::Reverse(r.0));
                    reads.truncate(first as usize);
                    Ok(Some(FieldValue::list(
                        reads.into_iter().map(|(_, v)| FieldValue::value(v)),
                    )))
                }
                .await;
                recover(&ctx, result)
            })
        },
    )
    .argument(
        InputValue::new("first", TypeRef::named(TypeRef::INT))
            .description("Most reads to return, 1 to 100 (default 50)."),
    )
    .description(description)
}

/// One read as a GraphQL value, with its time in nanoseconds for ordering.
fn read_value(m: &DynamicMessage) -> (i64, Value) {
    let s = |n: &str| {
        Value::String(
            m.get_field_by_name(n)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        )
    };
    let (secs, nanos) = m
        .get_field_by_name("read_at")
        .and_then(|v| v.as_message().cloned())
        .map(|t| {
            (
                t.get_field_by_name("seconds")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0),
                t.get_field_by_name("nanos")
                    .and_then(|v| v.as_i32())
                    .unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let at = chrono::DateTime::from_timestamp(secs, nanos.max(0) as u32).unwrap_or_default();
    let value = Value::Object(
        [
            (
                "readAt",
                Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            ),
            ("readerRole", s("reader_role")),
            ("readerSubject", s("reader_subject")),
            ("readerIstatCode", s("reader_istat_code")),
            ("fiscalCode", s("fiscal_code")),
            ("istatCode", s("istat_code")),
            ("what", s("what")),
            ("purposeId", s("purpose_id")),
            ("service", s("service")),
        ]
        .into_iter()
        .map(|(k, v)| (Name::new(k), v))
        .collect(),
    );
    (
        secs.saturating_mul(1_000_000_000)
            .saturating_add(i64::from(nanos)),
        value,
    )
}
