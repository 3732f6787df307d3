//! The taxes service's client of the building service, which holds the Catasto: the cadastral units
//! each taxpayer holds, with the right, share and period, which IMU is computed from. One request
//! of ours makes one batched call (`ListCitizenProperties` with every taxpayer as a key), never one
//! call per unit; the yearly issue pages through a comune's units instead.
//!
//! Cadastral units are personal data, and the building service applies the access rule to every
//! call: a call made for a request carries the caller's credentials, forwarded as the gateway
//! forwards them ([`BuildingClient::forwarded`]), so building answers the same principal what it
//! may read and records the read, with the declared purpose, in its own audit. The service's own
//! work (seeding the demo roll) calls as the system of each comune, with credentials the host
//! provides ([`BuildingClient::with_system_credentials`]); without them those calls are anonymous,
//! and refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use patto_proto::building::v1 as bpb;
use patto_proto::building::v1::building_service_client::BuildingServiceClient;
use patto_service_kit::Principal;
use patto_service_kit::audit::PURPOSE_HEADER;
use patto_service_kit::token::DevIssuer;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::domain::imu::Holding;

/// Units per page when a comune's whole Catasto is read (the building service's maximum).
const PAGE: i32 = 100;

/// Metadata forwarded from a request to the building calls made for it, as the gateway forwards it
/// to the services: the bearer token, the declared purpose of the read, the request id.
pub const FORWARDED: [&str; 3] = ["authorization", PURPOSE_HEADER, "x-request-id"];

/// The metadata a building call carries to say who is calling.
#[derive(Debug, Clone, Default)]
pub struct Credentials(Vec<(&'static str, AsciiMetadataValue)>);

impl Credentials {
    /// No credentials: the call is anonymous.
    pub fn none() -> Self {
        Self::default()
    }

    /// One metadata entry, e.g. `authorization: Bearer …`; `None` when `value` is not valid
    /// metadata.
    pub fn header(key: &'static str, value: &str) -> Option<Self> {
        value.parse().ok().map(|v| Self(vec![(key, v)]))
    }

    /// A bearer token in `authorization`.
    pub fn bearer(token: &str) -> Option<Self> {
        Self::header("authorization", &format!("Bearer {token}"))
    }

    fn from_metadata(metadata: &MetadataMap, keys: &[&'static str]) -> Self {
        Self(
            keys.iter()
                .filter_map(|k| metadata.get(*k).map(|v| (*k, v.clone())))
                .collect(),
        )
    }

    fn on<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        for (key, value) in &self.0 {
            request.metadata_mut().insert(*key, value.clone());
        }
        request
    }
}

/// The credentials of the service's own calls as the system of a comune (by ISTAT code).
pub type SystemCredentials = Arc<dyn Fn(&str) -> Credentials + Send + Sync>;

/// How long a system token of [`dev_system_credentials`] is valid: one call, with room for retries.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(300);

/// System credentials signed by the local dev issuer (the embedded all-in-one, tests): for each
/// call, a short-lived token of the comune's system with subject `patto-taxes`. Never for
/// production, where the identity provider issues the service its own tokens.
pub fn dev_system_credentials(
    issuer: Arc<DevIssuer>,
) -> impl Fn(&str) -> Credentials + Send + Sync + 'static {
    move |istat_code| {
        let system = Principal::System {
            istat_code: istat_code.to_owned(),
            subject: "patto-taxes".into(),
        };
        match issuer.issue(&system, DEV_TOKEN_TTL) {
            Ok(token) => Credentials::bearer(&token).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, istat_code, "no dev system token for this comune");
                Credentials::none()
            }
        }
    }
}

/// A lazily connected client: the service starts even while building is still starting or down,
/// and the first call that needs it connects (or answers UNAVAILABLE).
#[derive(Clone)]
pub struct BuildingClient {
    client: BuildingServiceClient<Channel>,
    forwarded: Vec<&'static str>,
    system: Option<SystemCredentials>,
}

impl BuildingClient {
    /// A client of the building service at `url` (e.g. `config.peer("building")`), connected on
    /// first use.
    pub fn connect_lazy(url: &str) -> Result<Self, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        Ok(Self {
            client: BuildingServiceClient::new(endpoint.connect_lazy()),
            forwarded: FORWARDED.to_vec(),
            system: None,
        })
    }

    /// Forwards metadata `key` too (tests forward the kit's test principal header this way).
    pub fn forwarding(mut self, key: &'static str) -> Self {
        if !self.forwarded.contains(&key) {
            self.forwarded.push(key);
        }
        self
    }

    /// Calls made as the system of a comune carry `credentials(istat_code)`.
    pub fn with_system_credentials(
        mut self,
        credentials: impl Fn(&str) -> Credentials + Send + Sync + 'static,
    ) -> Self {
        self.system = Some(Arc::new(credentials));
        self
    }

    /// The credentials of `request`'s caller, for the building calls made to answer it.
    pub fn forwarded<T>(&self, request: &Request<T>) -> Credentials {
        Credentials::from_metadata(request.metadata(), &self.forwarded)
    }

    /// The credentials of the service acting as the system of comune `istat_code`; none (an
    /// anonymous call, which building refuses) when the host provided none.
    pub fn as_system(&self, istat_code: &str) -> Credentials {
        self.system
            .as_ref()
            .map_or_else(Credentials::none, |f| f(istat_code))
    }

    /// The holdings of these taxpayers (canonical codes) at some time in `year`, optionally in one
    /// comune, by taxpayer: one call for all of them.
    pub async fn holdings(
        &self,
        codes: &[String],
        year: i32,
        istat_code: Option<&str>,
        credentials: &Credentials,
    ) -> Result<HashMap<String, Vec<bpb::PropertyHolding>>, Status> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let answer = self
            .client
            .clone()
            .list_citizen_properties(credentials.on(bpb::ListCitizenPropertiesRequest {
                keys: codes.to_vec(),
                year,
                istat_code: istat_code.unwrap_or_default().to_owned(),
            }))
            .await?
            .into_inner();
        Ok(answer
            .items
            .into_iter()
            .map(|i| (i.key, i.holdings))
            .collect())
    }

    /// Every unit of a comune, current and past, with its holders (pages of 100).
    pub async fn units_of_comune(
        &self,
        istat_code: &str,
        credentials: &Credentials,
    ) -> Result<Vec<bpb::CadastralUnit>, Status> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .client
                .clone()
                .list_cadastral_units(credentials.on(bpb::ListCadastralUnitsRequest {
                    istat_code: istat_code.to_owned(),
                    include_ended: true,
                    page: Some(patto_proto::common::v1::PageRequest {
                        first: PAGE,
                        after: after.clone(),
                    }),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            out.extend(page.units);
            match page.page_info {
                Some(info) if info.has_next_page && !info.end_cursor.is_empty() => {
                    after = info.end_cursor;
                }
                _ => return Ok(out),
            }
        }
    }

    /// The units with these ids (unknown ones, and those the caller may not read, are left out).
    pub async fn units(
        &self,
        ids: &[String],
        credentials: &Credentials,
    ) -> Result<HashMap<String, bpb::CadastralUnit>, Status> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let answer = self
            .client
            .clone()
            .lookup_cadastral_units(
                credentials.on(bpb::LookupCadastralUnitsRequest { keys: ids.to_vec() }),
            )
            .await?
            .into_inner();
        Ok(answer
            .items
            .into_iter()
            .filter_map(|i| i.unit.map(|u| (i.key, u)))
            .collect())
    }
}

/// The IMU view of one holder's right on a unit; `None` when the building service sent a date it
/// could not have validated (nothing is guessed).
pub fn holding(unit: &bpb::CadastralUnit, o: &bpb::CadastralOwnership) -> Option<Holding> {
    let day = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let cents = |m: &Option<patto_proto::common::v1::Money>| m.as_ref().map_or(0, |m| m.cents);
    Some(Holding {
        unit_id: unit.id.clone(),
        land: unit.register == bpb::CadastralRegister::Terreni as i32,
        categoria: unit.categoria.clone(),
        rendita_cents: cents(&unit.rendita),
        reddito_dominicale_cents: cents(&unit.reddito_dominicale),
        heritage_listed: unit.heritage_listed,
        // The nudo proprietario is not the IMU taxpayer (c. 743).
        liable: !matches!(
            bpb::OwnershipRight::try_from(o.right),
            Ok(bpb::OwnershipRight::NudaProprieta | bpb::OwnershipRight::Unspecified) | Err(_)
        ),
        share: (o.share_numerator, o.share_denominator.max(1)),
        start: day(&o.start_date)?,
        end: if o.end_date.is_empty() {
            None
        } else {
            Some(day(&o.end_date)?)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_forward_the_callers_metadata() {
        let client = BuildingClient::connect_lazy("http://127.0.0.1:1")
            .unwrap()
            .forwarding("x-test-principal");
        let mut request = Request::new(());
        for (k, v) in [
            ("authorization", "Bearer abc"),
            (PURPOSE_HEADER, "pdnd-1"),
            ("x-test-principal", "citizen:RSSMRA80A01G273Z"),
            ("cookie", "not forwarded"),
        ] {
            request.metadata_mut().insert(k, v.parse().unwrap());
        }
        let forwarded = client.forwarded(&request).on(());
        let m = forwarded.metadata();
        assert_eq!(m.get("authorization").unwrap(), "Bearer abc");
        assert_eq!(m.get(PURPOSE_HEADER).unwrap(), "pdnd-1");
        assert!(m.get("x-test-principal").is_some());
        assert!(m.get("cookie").is_none());
        assert!(client.as_system("082053").0.is_empty(), "none configured");
        let client = client.with_system_credentials(|istat| {
            Credentials::header("x-test-principal", &format!("system:{istat}")).unwrap()
        });
        let as_system = client.as_system("082053").on(());
        assert_eq!(
            as_system.metadata().get("x-test-principal").unwrap(),
            "system:082053"
        );
    }

    #[tokio::test]
    async fn dev_system_credentials_verify_as_the_comunes_system() {
        use patto_service_kit::auth::Authenticator;
        let issuer = Arc::new(DevIssuer::generate().unwrap());
        let verifier = issuer.verifier();
        let credentials = dev_system_credentials(issuer)("082053");
        let request = credentials.on(());
        let headers = request.metadata().clone().into_headers();
        let principal = verifier.authenticate(&headers).await.unwrap();
        assert_eq!(
            principal,
            Principal::System {
                istat_code: "082053".into(),
                subject: "patto-taxes".into(),
            }
        );
    }

    #[test]
    fn holdings_read_the_right_and_its_period() {
        let unit = bpb::CadastralUnit {
            id: "cu-1".into(),
            categoria: "A/2".into(),
            rendita: Some(patto_proto::common::v1::Money { cents: 50_000 }),
            ..Default::default()
        };
        let mut o = bpb::CadastralOwnership {
            right: bpb::OwnershipRight::Proprieta as i32,
            share_numerator: 1,
            share_denominator: 2,
            start_date: "2020-05-01".into(),
            ..Default::default()
        };
        let h = holding(&unit, &o).unwrap();
        assert!(h.liable && h.end.is_none() && h.share == (1, 2));
        o.right = bpb::OwnershipRight::NudaProprieta as i32;
        assert!(!holding(&unit, &o).unwrap().liable);
        o.start_date = "yesterday".into();
        assert!(holding(&unit, &o).is_none());
    }
}
