//! The taxes service's client of the building service, which holds the Catasto: the cadastral units
//! each taxpayer holds, with the right, share and period, which IMU is computed from. One request
//! of ours makes one batched call (`ListCitizenProperties` with every taxpayer as a key), never one
//! call per unit; the yearly issue pages through a comune's units instead.

use std::collections::HashMap;
use std::time::Duration;

use patto_proto::building::v1 as bpb;
use patto_proto::building::v1::building_service_client::BuildingServiceClient;
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use crate::domain::imu::Holding;

/// Units per page when a comune's whole Catasto is read (the building service's maximum).
const PAGE: i32 = 100;

/// A lazily connected client: the service starts even while building is still starting or down,
/// and the first call that needs it connects (or answers UNAVAILABLE).
#[derive(Clone)]
pub struct BuildingClient {
    client: BuildingServiceClient<Channel>,
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
        })
    }

    /// The holdings of these taxpayers (canonical codes) at some time in `year`, optionally in one
    /// comune, by taxpayer: one call for all of them.
    pub async fn holdings(
        &self,
        codes: &[String],
        year: i32,
        istat_code: Option<&str>,
    ) -> Result<HashMap<String, Vec<bpb::PropertyHolding>>, Status> {
        if codes.is_empty() {
            return Ok(HashMap::new());
        }
        let answer = self
            .client
            .clone()
            .list_citizen_properties(bpb::ListCitizenPropertiesRequest {
                keys: codes.to_vec(),
                year,
                istat_code: istat_code.unwrap_or_default().to_owned(),
            })
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
    ) -> Result<Vec<bpb::CadastralUnit>, Status> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let page = self
                .client
                .clone()
                .list_cadastral_units(bpb::ListCadastralUnitsRequest {
                    istat_code: istat_code.to_owned(),
                    include_ended: true,
                    page: Some(patto_proto::common::v1::PageRequest {
                        first: PAGE,
                        after: after.clone(),
                    }),
                    ..Default::default()
                })
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

    /// The units with these ids (unknown ones are left out).
    pub async fn units(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, bpb::CadastralUnit>, Status> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let answer = self
            .client
            .clone()
            .lookup_cadastral_units(bpb::LookupCadastralUnitsRequest { keys: ids.to_vec() })
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
