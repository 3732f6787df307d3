//! Deterministic demo data for the 82 comuni: venues sized to each comune, a programme of events
//! over the eight weeks after the seeding day, and a few bookings by the shared demo citizens.
//! Seeded once, into an empty database, so restarts keep what users did.

use chrono::{DateTime, Duration, Utc};
use patto_proto::culture::v1 as pb;
use patto_service_kit::comuni::{self, Comune};
use patto_service_kit::demo;
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, PaginatorTrait, Set, TransactionTrait};

use crate::domain::{BookingRequest, NewEvent};
use crate::store::{Store, insert_event, venue};

struct VenueSeed {
    name: String,
    kind: pb::VenueKind,
    street: &'static str,
    house_number: &'static str,
    capacity: i32,
    geo: (f64, f64),
    opening_hours: &'static str,
    description: &'static str,
}

fn palermo_venues() -> Vec<VenueSeed> {
    let v = |name: &str, kind, street, house_number, capacity, geo, opening_hours, description| {
        VenueSeed {
            name: name.to_owned(),
            kind,
            street,
            house_number,
            capacity,
            geo,
            opening_hours,
            description,
        }
    };
    vec![
        v(
            "Teatro Massimo",
            pb::VenueKind::Theatre,
            "Piazza Verdi",
            "",
            1350,
            (38.1203, 13.3571),
            "Tu-Su 09:30-18:00",
            "Teatro lirico: opera, balletto e concerti.",
        ),
        v(
            "Teatro Politeama Garibaldi",
            pb::VenueKind::Theatre,
            "Piazza Ruggero Settimo",
            "",
            900,
            (38.1254, 13.3556),
            "Mo-Sa 10:00-18:00",
            "Sede dell'Orchestra Sinfonica Siciliana.",
        ),
        v(
            "Galleria d'Arte Moderna",
            pb::VenueKind::Museum,
            "Via Sant'Anna",
            "21",
            200,
            (38.1152, 13.3655),
            "Tu-Su 09:30-18:30",
            "Arte siciliana e italiana dell'Ottocento e del Novecento.",
        ),
        v(
            "Biblioteca comunale di Casa Professa",
            pb::VenueKind::Library,
            "Piazza Casa Professa",
            "1",
            120,
            (38.1123, 13.3609),
            "Mo-Fr 08:30-18:30; Sa 08:30-13:30",
            "Biblioteca storica del Comune di Palermo.",
        ),
        v(
            "Cantieri Culturali alla Zisa",
            pb::VenueKind::CulturalCentre,
            "Via Paolo Gili",
            "4",
            500,
            (38.1163, 13.3411),
            "Tu-Su 09:00-22:00",
            "Spazi per mostre, cinema, teatro e laboratori.",
        ),
        v(
            "Real Teatro Santa Cecilia",
            pb::VenueKind::Theatre,
            "Piazza Santa Cecilia",
            "",
            300,
            (38.1176, 13.3641),
            "Th-Su 18:00-23:00",
            "Teatro settecentesco dedicato a jazz e musica da camera.",
        ),
    ]
}

fn town_venues(c: &Comune) -> Vec<VenueSeed> {
    let name = &c.name;
    let mut out = vec![VenueSeed {
        name: format!("Biblioteca comunale di {name}"),
        kind: pb::VenueKind::Library,
        street: "Piazza Municipio",
        house_number: "1",
        capacity: 40 + (c.population_2011 / 2000).min(80) as i32,
        geo: (0.0, 0.0),
        opening_hours: "Mo-Fr 09:00-13:00; Tu,Th 15:00-18:00",
        description: "Prestito, sala lettura e attività per ragazzi.",
    }];
    if c.population_2011 >= 10_000 {
        out.push(VenueSeed {
            name: format!("Teatro comunale di {name}"),
            kind: pb::VenueKind::Theatre,
            street: "Corso Umberto I",
            house_number: "10",
            capacity: 250 + (c.population_2011 / 1000).min(250) as i32,
            geo: (0.0, 0.0),
            opening_hours: "Fr-Su 17:00-23:00",
            description: "Stagione di prosa, musica e teatro per le scuole.",
        });
    } else {
        out.push(VenueSeed {
            name: format!("Centro culturale di {name}"),
            kind: pb::VenueKind::CulturalCentre,
            street: "Via Roma",
            house_number: "5",
            capacity: 120,
            geo: (0.0, 0.0),
            opening_hours: "Mo-Sa 16:00-20:00",
            description: "Sala polivalente per incontri, mostre e laboratori.",
        });
    }
    if c.population_2011 >= 5_000 {
        out.push(VenueSeed {
            name: format!("Villa comunale di {name}"),
            kind: pb::VenueKind::OpenAir,
            street: "Viale della Villa",
            house_number: "",
            capacity: 1000,
            geo: (0.0, 0.0),
            opening_hours: "Mo-Su 07:00-21:00",
            description: "Spazio all'aperto per festival e spettacoli estivi.",
        });
    }
    out
}

/// Event templates by venue kind: (name, category, price in cents, audience).
fn programme(
    kind: pb::VenueKind,
) -> &'static [(&'static str, pb::EventCategory, i64, &'static str)] {
    use pb::EventCategory as C;
    match kind {
        pb::VenueKind::Library => &[
            (
                "Presentazione di libro: autori siciliani",
                C::Conference,
                0,
                "adulti",
            ),
            (
                "Nati per leggere: letture ad alta voce",
                C::Family,
                0,
                "famiglie",
            ),
            (
                "Laboratorio di scrittura creativa",
                C::Workshop,
                0,
                "ragazzi",
            ),
        ],
        pb::VenueKind::Theatre => &[
            (
                "Stagione di prosa: Pirandello, Così è (se vi pare)",
                C::Theatre,
                1800,
                "adulti",
            ),
            (
                "Concerto dell'orchestra giovanile",
                C::Concert,
                1000,
                "tutti",
            ),
            (
                "Opera dei pupi: la Chanson de Roland",
                C::Theatre,
                800,
                "famiglie",
            ),
            ("Matinée per le scuole", C::Theatre, 0, "scuole"),
        ],
        pb::VenueKind::Museum => &[
            (
                "Visita guidata alla collezione permanente",
                C::GuidedTour,
                700,
                "tutti",
            ),
            (
                "Mostra: il Novecento in Sicilia",
                C::Exhibition,
                500,
                "tutti",
            ),
        ],
        pb::VenueKind::CulturalCentre => &[
            ("Rassegna di cinema d'autore", C::Film, 400, "adulti"),
            (
                "Incontro pubblico sulla memoria del territorio",
                C::Conference,
                0,
                "tutti",
            ),
            ("Laboratorio di ceramica", C::Workshop, 1500, "adulti"),
        ],
        _ => &[
            (
                "Festa patronale: concerto in piazza",
                C::Festival,
                0,
                "tutti",
            ),
            ("Cinema sotto le stelle", C::Film, 0, "famiglie"),
        ],
    }
}

/// Seeds the demo catalogue unless the database already has venues. `today` anchors the
/// programme (events fall in the eight weeks after it). Returns the number of events created.
pub async fn seed(store: &Store, today: DateTime<Utc>) -> Result<usize, DbErr> {
    let db = store.db();
    if venue::Entity::find().count(db).await? > 0 {
        return Ok(0);
    }
    let txn = db.begin().await?;
    let mut events = 0;
    let mut bookable = Vec::new();
    for (ci, comune) in comuni::all().iter().enumerate() {
        let seeds = if comune.istat_code == "082053" {
            palermo_venues()
        } else {
            town_venues(comune)
        };
        let per_venue = if comune.istat_code == "082053" { 4 } else { 2 };
        for (vi, seed) in seeds.iter().enumerate() {
            let venue_id = format!("ven-{}-{:02}", comune.istat_code, vi + 1);
            venue::ActiveModel {
                id: Set(venue_id.clone()),
                istat_code: Set(comune.istat_code.clone()),
                name: Set(seed.name.clone()),
                kind: Set(seed.kind as i32),
                street: Set(seed.street.into()),
                house_number: Set(seed.house_number.into()),
                postal_code: Set(comune.postal_codes.first().cloned().unwrap_or_default()),
                locality: Set(String::new()),
                latitude: Set(seed.geo.0),
                longitude: Set(seed.geo.1),
                capacity: Set(seed.capacity),
                wheelchair_accessible: Set((ci + vi) % 3 != 0),
                opening_hours: Set(seed.opening_hours.into()),
                description: Set(seed.description.into()),
            }
            .insert(&txn)
            .await?;
            let templates = programme(seed.kind);
            for k in 0..per_venue {
                let (name, category, price, audience) = templates[(ci + k) % templates.len()];
                let day = (ci * 7 + vi * 3 + k * 11) % 56 + 1;
                let hour = if audience == "scuole" {
                    10
                } else if k % 2 == 0 {
                    18
                } else {
                    21
                };
                let start = today + Duration::days(day as i64) + Duration::hours(hour);
                let event_id = format!("evt-{}-{:02}-{}", comune.istat_code, vi + 1, k + 1);
                insert_event(
                    &txn,
                    NewEvent {
                        istat_code: comune.istat_code.clone(),
                        venue_id: venue_id.clone(),
                        name: name.to_owned(),
                        description: format!("{name} — {}.", seed.name),
                        category,
                        start_time: start,
                        end_time: start + Duration::minutes(120),
                        organizer: format!("Comune di {} — Ufficio Cultura", comune.name),
                        attendance_mode: pb::AttendanceMode::Offline,
                        price_cents: price,
                        capacity: seed.capacity.min(if seed.kind == pb::VenueKind::OpenAir {
                            1000
                        } else {
                            seed.capacity
                        }),
                        audience: audience.to_owned(),
                        url: String::new(),
                    },
                    event_id.clone(),
                    today,
                )
                .await?;
                events += 1;
                if k == 0 && vi == 0 {
                    bookable.push(event_id);
                }
            }
        }
    }
    txn.commit().await?;

    // A few bookings by demo citizens, through the same path as a real booking.
    for (n, event_id) in bookable.iter().enumerate().take(40) {
        let citizen = demo::citizen(n);
        let req = BookingRequest {
            event_id: event_id.clone(),
            fiscal_code: citizen.fiscal_code,
            seats: 1 + (n % 3) as i32,
        };
        if let Err(e) = store.book(&req, today).await {
            tracing::warn!(error = %e, "demo booking skipped");
        }
    }
    Ok(events)
}
