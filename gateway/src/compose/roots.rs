//! The gateway's own entities and entry points: `Citizen` (key `fiscalCode`), `Municipality` (key
//! `istatCode`, from the comuni list), Relay's `PageInfo`, and the programme indicators.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, InputObject, InputValue, TypeRef};
use async_graphql::{Name, Value};
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::ids;
use patto_service_kit::indicators::Sketch;
use prost_reflect::{DynamicMessage, FieldDescriptor};

use super::{Builder, ComposeError, ObjectDef, Source, recover, request_ctx};
use crate::errors;
use crate::request::BatchSpec;

/// Relay's page info type, owned by the gateway.
pub const PAGE_INFO: &str = "PageInfo";
/// The shared indicators service every thematic service hosts.
pub const INDICATORS_SERVICE: &str = "patto.common.v1.IndicatorsService";

/// Names the gateway owns; a proto type mapping onto one is a composition error.
pub const RESERVED_TYPES: &[&str] = &[
    "Query",
    "Mutation",
    "Subscription",
    "Citizen",
    "Municipality",
    PAGE_INFO,
    "ProgrammeIndicators",
    "ProcedureOffer",
    "IndicatorsPeriodInput",
    super::audit::READ_TYPE,
    super::scalars::LONG,
    super::scalars::DATETIME,
    super::scalars::BASE64,
];

/// The parent value of `Citizen` fields.
#[derive(Debug, Clone)]
pub struct CitizenValue {
    /// Canonical codice fiscale.
    pub fiscal_code: String,
}

/// How an extension field finds its key on the parent.
#[derive(Clone)]
pub(crate) enum KeyOf {
    Citizen,
    Municipality,
    Entity(FieldDescriptor),
}

impl KeyOf {
    pub(crate) fn key(&self, parent: &FieldValue<'_>) -> Option<String> {
        match self {
            Self::Citizen => parent
                .downcast_ref::<CitizenValue>()
                .map(|c| c.fiscal_code.clone()),
            Self::Municipality => parent
                .downcast_ref::<&'static Comune>()
                .map(|c| c.istat_code.clone()),
            Self::Entity(f) => parent
                .downcast_ref::<DynamicMessage>()
                .and_then(|m| m.get_field(f).as_str().map(str::to_owned))
                .filter(|k| !k.is_empty()),
        }
    }
}

/// The value of a `PageInfo` object.
pub(crate) fn page_info_value(end_cursor: &str, has_next: bool, has_previous: bool) -> Value {
    let cursor = if end_cursor.is_empty() {
        Value::Null
    } else {
        Value::String(end_cursor.to_owned())
    };
    Value::Object(
        [
            (Name::new("endCursor"), cursor),
            (Name::new("hasNextPage"), Value::Boolean(has_next)),
            (Name::new("hasPreviousPage"), Value::Boolean(has_previous)),
            (Name::new("startCursor"), Value::Null),
        ]
        .into_iter()
        .collect(),
    )
}

pub(super) fn value_field(name: &str, ty: TypeRef, description: &str) -> (String, (Field, String)) {
    let field = super::sync_field(name, ty, value_resolver(name)).description(description);
    (name.to_owned(), (field, "gateway".to_owned()))
}

/// The resolver of a field read from an object value by name.
fn value_resolver(name: &str) -> super::plan::Resolve {
    let key = name.to_owned();
    super::plan::resolver(move |parent| match parent.as_value() {
        Some(Value::Object(o)) => o.get(key.as_str()).cloned().map(FieldValue::value),
        _ => None,
    })
}

fn comune_field(
    name: &str,
    ty: TypeRef,
    description: &str,
    get: fn(&Comune) -> Value,
) -> (String, (Field, String)) {
    let field = Field::new(name, ty, move |ctx| {
        FieldFuture::from_value(
            ctx.parent_value
                .downcast_ref::<&'static Comune>()
                .map(|c| get(c)),
        )
    })
    .description(description);
    (name.to_owned(), (field, "gateway".to_owned()))
}

/// Adds the gateway's types and entry points to the builder.
pub(crate) fn add(b: &mut Builder, sources: &[Source]) -> Result<(), ComposeError> {
    // Plans read a connection's `pageInfo` through the same resolvers as the schema.
    let page_info = [
        (
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            "Cursor of the last item; pass it as `after` for the next page.",
        ),
        (
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            "True when more items follow.",
        ),
        (
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            "True when this page was asked for with `after`.",
        ),
        (
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            "Always null: services page forward only.",
        ),
    ];
    for (name, ty, _) in &page_info {
        b.catalog.field(
            PAGE_INFO,
            name,
            ty,
            value_resolver(name),
            super::plan::Wire::PageInfo,
        );
    }
    b.objects.insert(
        PAGE_INFO.into(),
        ObjectDef {
            description: Some("Where a page sits in a list (Relay).".into()),
            fields: page_info
                .into_iter()
                .map(|(name, ty, description)| value_field(name, ty, description))
                .collect(),
        },
    );

    b.objects.insert(
        "Citizen".into(),
        ObjectDef {
            description: Some(
                "A citizen, identified by codice fiscale. Each service adds what it holds about them.".into(),
            ),
            fields: [(
                "fiscalCode".to_owned(),
                (
                    Field::new("fiscalCode", TypeRef::named_nn(TypeRef::STRING), |ctx| {
                        FieldFuture::from_value(
                            ctx.parent_value.downcast_ref::<CitizenValue>().map(|c| Value::String(c.fiscal_code.clone())),
                        )
                    })
                    .description("Codice fiscale, canonical form (omocodia resolved)."),
                    "gateway".to_owned(),
                ),
            ), (
                "personalDataReads".to_owned(),
                (super::audit::field(b, sources, super::audit::On::Citizen), "gateway".to_owned()),
            )]
            .into_iter()
            .collect(),
        },
    );

    let mut municipality: BTreeMap<String, (Field, String)> = [
        comune_field(
            "istatCode",
            TypeRef::named_nn(TypeRef::STRING),
            "ISTAT code, 6 digits (`082053` is Palermo).",
            |c| Value::String(c.istat_code.clone()),
        ),
        comune_field(
            "name",
            TypeRef::named_nn(TypeRef::STRING),
            "Official name.",
            |c| Value::String(c.name.clone()),
        ),
        comune_field(
            "cadastralCode",
            TypeRef::named_nn(TypeRef::STRING),
            "Cadastral (Belfiore) code.",
            |c| Value::String(c.cadastral_code.clone()),
        ),
        comune_field(
            "postalCodes",
            TypeRef::named_nn_list_nn(TypeRef::STRING),
            "Postal codes (CAP).",
            |c| Value::List(c.postal_codes.iter().cloned().map(Value::String).collect()),
        ),
        comune_field(
            "population2011",
            TypeRef::named_nn(TypeRef::INT),
            "Legal population at the 2011 census.",
            |c| Value::from(c.population_2011),
        ),
    ]
    .into_iter()
    .collect();
    municipality.insert(
        "indicators".into(),
        (indicators_field(b, sources), "gateway".into()),
    );
    municipality.insert(
        "personalDataReads".into(),
        (
            super::audit::field(b, sources, super::audit::On::Municipality),
            "gateway".into(),
        ),
    );
    super::audit::add_types(b);
    b.objects.insert(
        "Municipality".into(),
        ObjectDef {
            description: Some(
                "A comune of the Città Metropolitana di Palermo. Each service adds what it offers there.".into(),
            ),
            fields: municipality,
        },
    );
    add_indicator_types(b);

    let entries = [
        (
            "citizen",
            Field::new("citizen", TypeRef::named("Citizen"), |ctx| {
                FieldFuture::new(async move {
                    let result = async {
                        let raw = ctx.args.try_get("fiscalCode")?.string()?;
                        let fiscal_code = ids::canonical_fiscal_code(raw).map_err(|e| {
                            errors::bad_input(
                                "fiscalCode",
                                format!("is not a valid codice fiscale: {e}"),
                            )
                        })?;
                        super::guard::citizen_entry(&super::guard::principal(&ctx), &fiscal_code)?;
                        Ok(Some(FieldValue::owned_any(CitizenValue { fiscal_code })))
                    }
                    .await;
                    recover(&ctx, result)
                })
            })
            .argument(
                InputValue::new("fiscalCode", TypeRef::named_nn(TypeRef::STRING))
                    .description("Codice fiscale (16 characters)."),
            )
            .description("A citizen by codice fiscale."),
        ),
        (
            "me",
            Field::new("me", TypeRef::named("Citizen"), |ctx| {
                FieldFuture::new(async move {
                    let result =
                        super::guard::me(&super::guard::principal(&ctx)).map(|fiscal_code| {
                            Some(FieldValue::owned_any(CitizenValue { fiscal_code }))
                        });
                    recover(&ctx, result)
                })
            })
            .description("The signed-in citizen."),
        ),
        (
            "municipality",
            Field::new("municipality", TypeRef::named("Municipality"), |ctx| {
                FieldFuture::new(async move {
                    let code = ctx.args.try_get("istatCode")?.string()?;
                    Ok(comuni::by_istat(code).map(FieldValue::owned_any))
                })
            })
            .argument(
                InputValue::new("istatCode", TypeRef::named_nn(TypeRef::STRING))
                    .description("ISTAT code, 6 digits."),
            )
            .description(
                "A comune by ISTAT code; null when no comune of the Città Metropolitana has it.",
            ),
        ),
        (
            "municipalities",
            Field::new(
                "municipalities",
                TypeRef::named_nn_list_nn("Municipality"),
                |_| {
                    FieldFuture::Value(Some(FieldValue::list(
                        comuni::all().iter().map(FieldValue::owned_any),
                    )))
                },
            )
            .description("The 82 comuni of the Città Metropolitana di Palermo, by ISTAT code."),
        ),
    ];
    for (name, field) in entries {
        if let Some((_, first)) = b.query.get(name) {
            return Err(ComposeError::FieldClash {
                type_name: "Query".into(),
                field: name.into(),
                first: first.clone(),
                second: "gateway".into(),
            });
        }
        b.query.insert(name.into(), (field, "gateway".into()));
    }
    Ok(())
}

fn add_indicator_types(b: &mut Builder) {
    b.inputs.insert(
        "IndicatorsPeriodInput".into(),
        InputObject::new("IndicatorsPeriodInput")
            .description("A span of days, both ends included.")
            .field(
                InputValue::new("startDate", TypeRef::named_nn(TypeRef::STRING))
                    .description("First day, YYYY-MM-DD."),
            )
            .field(
                InputValue::new("endDate", TypeRef::named_nn(TypeRef::STRING))
                    .description("Last day, YYYY-MM-DD."),
            ),
    );
    b.objects.insert(
        "ProcedureOffer".into(),
        ObjectDef {
            description: Some("A procedure a service offers in the comune.".into()),
            fields: [
                value_field(
                    "service",
                    TypeRef::named_nn(TypeRef::STRING),
                    "The service offering it.",
                ),
                value_field(
                    "code",
                    TypeRef::named_nn(TypeRef::STRING),
                    "Stable code of the procedure.",
                ),
                value_field(
                    "name",
                    TypeRef::named_nn(TypeRef::STRING),
                    "Name shown to citizens.",
                ),
                value_field(
                    "fullyOnline",
                    TypeRef::named_nn(TypeRef::BOOLEAN),
                    "Whether it can be started, followed and finished online.",
                ),
            ]
            .into_iter()
            .collect(),
        },
    );
    b.objects.insert(
        "ProgrammeIndicators".into(),
        ObjectDef {
            description: Some("The two indicators of the PON Metro programme for one comune and period.".into()),
            fields: [
                value_field("procedures", TypeRef::named_nn_list_nn("ProcedureOffer"), "Procedures offered, from every service."),
                value_field("fullyOnlineProcedures", TypeRef::named_nn(TypeRef::INT), "First indicator: procedures fully interactive online."),
                value_field("completedInteractions", TypeRef::named_nn(super::scalars::LONG), "Online interactions completed in the period, across services."),
                value_field(
                    "distinctCitizens",
                    TypeRef::named_nn(TypeRef::INT),
                    "Second indicator: distinct citizens who completed an online interaction, across services (HyperLogLog estimate, about 1.6% error; no fiscal code leaves a service).",
                ),
                value_field("unavailableServices", TypeRef::named_nn_list_nn(TypeRef::STRING), "Services that did not answer: the figures leave them out."),
            ]
            .into_iter()
            .collect(),
        },
    );
}

fn indicators_field(b: &Builder, sources: &[Source]) -> Field {
    let plans: Vec<(Arc<str>, prost_reflect::MethodDescriptor)> = sources
        .iter()
        .filter_map(|s| {
            let svc = s.pool.get_service_by_name(INDICATORS_SERVICE)?;
            let m = svc.methods().find(|m| m.name() == "GetIndicators")?;
            Some((Arc::from(s.service.as_str()), m))
        })
        .collect();
    let invoker = b.invoker.clone();
    Field::new("indicators", TypeRef::named_nn("ProgrammeIndicators"), move |ctx| {
        let (plans, invoker) = (plans.clone(), invoker.clone());
        FieldFuture::new(async move {
            let result = async {
            let Some(comune) = ctx.parent_value.downcast_ref::<&'static Comune>() else { return Ok(None) };
            let key = comune.istat_code.clone();
            let period = match ctx.args.get("period") {
                Some(p) if !p.is_null() => {
                    let o = p.object()?;
                    Some((o.try_get("startDate")?.string()?.to_owned(), o.try_get("endDate")?.string()?.to_owned()))
                }
                _ => None,
            };
            let rc = request_ctx(&ctx);
            let loads = plans.iter().map(|(service, method)| {
                let mut request = DynamicMessage::new(method.input());
                if let Some((start, end)) = &period
                    && let Some(pf) =
                        method.input().get_field_by_name("period").and_then(|f| f.kind().as_message().cloned())
                {
                    let mut p = DynamicMessage::new(pf);
                    p.set_field_by_name("start_date", prost_reflect::Value::String(start.clone()));
                    p.set_field_by_name("end_date", prost_reflect::Value::String(end.clone()));
                    request.set_field_by_name("period", prost_reflect::Value::Message(p));
                }
                let spec = BatchSpec::new(service.clone(), method.clone(), request, true)
                    .with_key_fields("istat_codes", "istat_code");
                let (rc, invoker, key, service) = (rc.clone(), invoker.clone(), key.clone(), service.clone());
                async move { (service, rc.load(&invoker, &spec, key).await) }
            });
            let answers = futures::future::join_all(loads).await;
            let mut procedures = Vec::new();
            let mut completed: i64 = 0;
            let mut citizens = Sketch::default();
            let mut unavailable = Vec::new();
            for (service, answer) in answers {
                match answer {
                    Ok(Some(item)) => {
                        for p in item.get_field_by_name("procedures").and_then(|v| v.as_list().map(<[_]>::to_vec)).unwrap_or_default() {
                            if let Some(p) = p.as_message() {
                                let s = |n: &str| p.get_field_by_name(n).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                                let online = p.get_field_by_name("fully_online").and_then(|v| v.as_bool()).unwrap_or(false);
                                procedures.push((service.to_string(), s("code"), s("name"), online));
                            }
                        }
                        completed += item.get_field_by_name("completed_interactions").and_then(|v| v.as_i64()).unwrap_or(0);
                        if let Some(sk) = item.get_field_by_name("citizens").and_then(|v| v.as_message().cloned()) {
                            let wire = patto_proto::common::v1::CitizenSketch {
                                precision: sk.get_field_by_name("precision").and_then(|v| v.as_u32()).unwrap_or(0),
                                registers: sk
                                    .get_field_by_name("registers")
                                    .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
                                    .unwrap_or_default(),
                            };
                            match Sketch::from_proto(&wire).and_then(|s| citizens.merge(&s)) {
                                Ok(()) => {}
                                Err(e) => {
                                    tracing::warn!(%service, error = %e, "unusable citizen sketch");
                                    unavailable.push(service.to_string());
                                }
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(e) if e.status.code() == tonic::Code::InvalidArgument => return Err(errors::from_call(&e)),
                    Err(_) => unavailable.push(service.to_string()),
                }
            }
            let fully_online = procedures.iter().filter(|p| p.3).count();
            let procedures = procedures
                .into_iter()
                .map(|(service, code, name, online)| {
                    Value::Object(
                        [
                            (Name::new("service"), Value::String(service)),
                            (Name::new("code"), Value::String(code)),
                            (Name::new("name"), Value::String(name)),
                            (Name::new("fullyOnline"), Value::Boolean(online)),
                        ]
                        .into_iter()
                        .collect(),
                    )
                })
                .collect();
            Ok(Some(FieldValue::value(Value::Object(
                [
                    (Name::new("procedures"), Value::List(procedures)),
                    (Name::new("fullyOnlineProcedures"), Value::from(fully_online as i32)),
                    (Name::new("completedInteractions"), Value::String(completed.to_string())),
                    (Name::new("distinctCitizens"), Value::from(citizens.estimate().min(i32::MAX as u64) as i32)),
                    (Name::new("unavailableServices"), Value::List(unavailable.into_iter().map(Value::String).collect())),
                ]
                .into_iter()
                .collect(),
            ))))
            }
            .await;
            recover(&ctx, result)
        })
    })
    .argument(
        InputValue::new("period", TypeRef::named("IndicatorsPeriodInput"))
            .description("Days to count interactions in; null means the current calendar year."),
    )
    .description("The programme's indicators for this comune, merged across every service.")
}
