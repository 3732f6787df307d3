//! The gateway's own part of the schema: the `Municipality` root entity and backend health.

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use patto_service_kit::comuni::{self, Comune};

use crate::backends::Backends;

/// The GraphQL schema served at `/graphql`.
pub type GatewaySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// Builds the schema over `backends`.
pub fn build(backends: Arc<Backends>) -> GatewaySchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(backends)
        .finish()
}

/// The schema's SDL with fields and enum values sorted, for review and snapshots.
pub fn sdl() -> String {
    build(Arc::new(Backends::default())).sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .sorted_fields()
            .sorted_enum_items(),
    )
}

/// A comune of the Città Metropolitana di Palermo.
#[derive(SimpleObject)]
pub struct Municipality {
    /// ISTAT code, 6 digits (`082053` is Palermo).
    istat_code: String,
    /// Official name.
    name: String,
    /// Cadastral (Belfiore) code.
    cadastral_code: String,
    /// Postal codes (CAP).
    postal_codes: Vec<String>,
    /// Legal population at the 2011 census.
    population_2011: u32,
}

impl From<&Comune> for Municipality {
    fn from(c: &Comune) -> Self {
        Self {
            istat_code: c.istat_code.clone(),
            name: c.name.clone(),
            cadastral_code: c.cadastral_code.clone(),
            postal_codes: c.postal_codes.clone(),
            population_2011: c.population_2011,
        }
    }
}

/// Health of one backend service.
#[derive(SimpleObject)]
pub struct ServiceHealth {
    /// Service name, e.g. `culture`.
    name: String,
    /// `SERVING`, `NOT_SERVING` or `UNREACHABLE`.
    status: String,
}

/// Read entry points.
pub struct Query;

#[Object]
impl Query {
    /// The 82 comuni of the Città Metropolitana di Palermo, by ISTAT code.
    async fn municipalities(&self) -> Vec<Municipality> {
        comuni::all().iter().map(Municipality::from).collect()
    }

    /// One comune by ISTAT code; null when no comune has it.
    async fn municipality(&self, istat_code: String) -> Option<Municipality> {
        comuni::by_istat(&istat_code).map(Municipality::from)
    }

    /// Health of every backend service.
    async fn services(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> async_graphql::Result<Vec<ServiceHealth>> {
        let backends = ctx.data::<Arc<Backends>>()?;
        Ok(backends
            .statuses()
            .await
            .into_iter()
            .map(|s| ServiceHealth {
                name: s.name,
                status: s.status,
            })
            .collect())
    }
}
