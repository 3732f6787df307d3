//! The open-data export of a comune's public works, as its transparency page (Amministrazione
//! Trasparente) publishes it: DCAT-AP_IT-style metadata, then one CSV record (RFC 4180) or one JSON
//! object per work, over the same columns.
//!
//! Amounts are euro with two decimals (`1234.50`), written as text in JSON too so that no consumer
//! rounds them through binary floating point; dates are ISO days; lists are `|`-separated in CSV and
//! arrays in JSON.

use chrono::{DateTime, Utc};
use patto_proto::publicworks::v1 as pb;
use patto_service_kit::time;

use super::{euro_decimal, funding_source_name, state_name_of};

/// Licence of the dataset: CC BY 4.0, the licence AgID's guidelines recommend for open data.
pub const LICENCE_NAME: &str = "Creative Commons Attribuzione 4.0 Internazionale (CC BY 4.0)";
/// URI of [`LICENCE_NAME`].
pub const LICENCE_URL: &str = "https://creativecommons.org/licenses/by/4.0/";
/// EU data theme of the dataset: government and public sector.
pub const THEME: &str = "GOVE";
/// Language of the dataset (EU authority code).
pub const LANGUAGE: &str = "ITA";

/// The columns, in order: the CSV header and the JSON keys.
pub const COLUMNS: [&str; 34] = [
    "id",
    "external_ref",
    "istat_code",
    "comune",
    "cup",
    "cigs",
    "title",
    "description",
    "category",
    "state",
    "incompiuta",
    "incompiuta_note",
    "programme_first_year",
    "programme_last_year",
    "in_annual_list",
    "cui",
    "design_level",
    "budget",
    "funded_amount",
    "funding_sources",
    "funding_amounts",
    "contractor_name",
    "contractor_vat_number",
    "contract_amount",
    "sal_count",
    "progress_percent",
    "paid_amount",
    "late",
    "rup_name",
    "planned_end_date",
    "address",
    "latitude",
    "longitude",
    "modified",
];

/// One value of a row, rendered per format.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    List(Vec<String>),
    Bool(bool),
    Int(Option<i64>),
    Amount(Option<i64>),
    Coordinate(Option<f64>),
}

fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

fn category_name(value: i32) -> String {
    pb::ProjectCategory::try_from(value).map_or_else(
        |_| String::new(),
        |c| enum_name(c.as_str_name(), "PROJECT_CATEGORY_"),
    )
}

fn design_level_name(value: i32) -> String {
    match pb::ProjectDesignLevel::try_from(value) {
        Ok(pb::ProjectDesignLevel::Unspecified) | Err(_) => String::new(),
        Ok(l) => enum_name(l.as_str_name(), "PROJECT_DESIGN_LEVEL_"),
    }
}

fn funding_name(value: i32) -> String {
    pb::ProjectFundingSource::try_from(value)
        .map_or_else(|_| String::new(), |s| funding_source_name(s).to_owned())
}

fn cents(m: Option<&patto_proto::common::v1::Money>) -> Option<i64> {
    m.map(|m| m.cents)
}

/// The values of `p`, in [`COLUMNS`] order; `comune` is its comune's name.
fn cells(p: &pb::Project, comune: &str) -> Vec<Cell> {
    let programme = p.programme.clone().unwrap_or_default();
    let in_programme = programme.first_year != 0;
    let funded = p.funding.iter().fold(0i64, |acc, f| {
        acc.saturating_add(cents(f.amount.as_ref()).unwrap_or(0))
    });
    let late = p
        .sal_entries
        .iter()
        .any(|s| s.certificate_late || s.payment_late);
    let address = p
        .address
        .as_ref()
        .map(|a| {
            let mut street = a.street.clone();
            if !a.house_number.is_empty() {
                street = format!("{street} {}", a.house_number);
            }
            [street, a.postal_code.clone(), a.locality.clone()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let contractor = p.contractor.clone().unwrap_or_default();
    let modified = p
        .updated_time
        .as_ref()
        .and_then(time::from_timestamp)
        .map(|t| super::iso_day(super::italian_day(t)))
        .unwrap_or_default();
    vec![
        Cell::Text(p.id.clone()),
        Cell::Text(p.external_ref.clone()),
        Cell::Text(p.istat_code.clone()),
        Cell::Text(comune.to_owned()),
        Cell::Text(p.cup.clone()),
        Cell::List(p.cigs.clone()),
        Cell::Text(p.title.clone()),
        Cell::Text(p.description.clone()),
        Cell::Text(category_name(p.category)),
        Cell::Text(state_name_of(p.state).to_owned()),
        Cell::Bool(p.incompiuta),
        Cell::Text(p.incompiuta_note.clone()),
        Cell::Int(in_programme.then_some(i64::from(programme.first_year))),
        Cell::Int(in_programme.then_some(i64::from(programme.last_year))),
        Cell::Bool(programme.in_annual_list),
        Cell::Text(programme.cui),
        Cell::Text(design_level_name(p.design_level)),
        Cell::Amount(cents(p.budget.as_ref())),
        Cell::Amount(Some(funded)),
        Cell::List(p.funding.iter().map(|f| funding_name(f.source)).collect()),
        Cell::List(
            p.funding
                .iter()
                .map(|f| euro_decimal(cents(f.amount.as_ref()).unwrap_or(0)))
                .collect(),
        ),
        Cell::Text(contractor.name),
        Cell::Text(contractor.vat_number),
        Cell::Amount(cents(p.contract_amount.as_ref())),
        Cell::Int(Some(p.sal_entries.len() as i64)),
        Cell::Text(format!(
            "{}.{:02}",
            p.progress_basis_points / 100,
            p.progress_basis_points % 100
        )),
        Cell::Amount(cents(p.paid_amount.as_ref())),
        Cell::Bool(late),
        Cell::Text(p.rup_name.clone()),
        Cell::Text(p.planned_end_date.clone()),
        Cell::Text(address),
        Cell::Coordinate(p.geo.as_ref().map(|g| g.latitude)),
        Cell::Coordinate(p.geo.as_ref().map(|g| g.longitude)),
        Cell::Text(modified),
    ]
}

/// One CSV field, quoted when it holds a comma, a quote, a line break or edge spaces (RFC 4180:
/// quotes inside are doubled). Quoting edge spaces keeps spreadsheet tools from trimming them.
pub fn csv_field(value: &str) -> String {
    let needs_quotes =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn csv_line(fields: impl IntoIterator<Item = String>) -> String {
    fields
        .into_iter()
        .map(|f| csv_field(&f))
        .collect::<Vec<_>>()
        .join(",")
}

/// The CSV header record.
pub fn csv_header() -> String {
    csv_line(COLUMNS.iter().map(|c| (*c).to_owned()))
}

/// The CSV record of `p` (no line terminator); `comune` is its comune's name.
pub fn csv_record(p: &pb::Project, comune: &str) -> String {
    csv_line(cells(p, comune).into_iter().map(|c| match c {
        Cell::Text(s) => s,
        Cell::List(items) => items.join("|"),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(n) => n.map(|n| n.to_string()).unwrap_or_default(),
        Cell::Amount(a) => a.map(euro_decimal).unwrap_or_default(),
        Cell::Coordinate(c) => c.map(|c| format!("{c:.6}")).unwrap_or_default(),
    }))
}

/// The JSON Lines object of `p` (one line, keys in [`COLUMNS`] order); `comune` is its comune's name.
pub fn json_line(p: &pb::Project, comune: &str) -> String {
    use serde_json::Value;
    let object: serde_json::Map<String, Value> = COLUMNS
        .iter()
        .zip(cells(p, comune))
        .map(|(name, cell)| {
            let value = match cell {
                Cell::Text(s) => Value::String(s),
                Cell::List(items) => Value::Array(items.into_iter().map(Value::String).collect()),
                Cell::Bool(b) => Value::Bool(b),
                Cell::Int(n) => n.map_or(Value::Null, Value::from),
                Cell::Amount(a) => a.map_or(Value::Null, |a| Value::String(euro_decimal(a))),
                Cell::Coordinate(c) => c
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number),
            };
            ((*name).to_owned(), value)
        })
        .collect();
    // A map of strings, arrays and numbers always serialises; the fallback only keeps this total.
    serde_json::to_string(&Value::Object(object)).unwrap_or_else(|_| "{}".to_owned())
}

/// What the metadata says about one export.
#[derive(Debug, Clone)]
pub struct DatasetFacts<'a> {
    /// ISTAT code of the comune.
    pub istat_code: &'a str,
    /// Name of the comune.
    pub comune: &'a str,
    /// Format.
    pub format: pb::ProjectExportFormat,
    /// Works exported.
    pub row_count: usize,
    /// Latest update among them, ISO day; the generation day when there is none (dct:modified
    /// is mandatory in DCAT-AP_IT).
    pub modified: String,
    /// Funding sources present among them, for the keywords.
    pub sources: Vec<pb::ProjectFundingSource>,
    /// When the export was generated.
    pub generated: DateTime<Utc>,
}

/// The DCAT-AP_IT-style metadata of an export.
pub fn metadata(f: &DatasetFacts<'_>) -> pb::ProjectExportMetadata {
    let mut keywords: Vec<String> = [
        "opere pubbliche",
        "lavori pubblici",
        "programma triennale",
        "CUP",
        "CIG",
        "SAL",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    for source in &f.sources {
        let keyword = match source {
            pb::ProjectFundingSource::PonMetro => "PON Metro",
            pb::ProjectFundingSource::PnMetroPlus => "PN Metro Plus",
            pb::ProjectFundingSource::Pnrr => "PNRR",
            pb::ProjectFundingSource::EuOther => "fondi europei",
            _ => continue,
        };
        if !keywords.iter().any(|k| k == keyword) {
            keywords.push(keyword.to_owned());
        }
    }
    pb::ProjectExportMetadata {
        title: format!("Opere pubbliche del Comune di {}", f.comune),
        description: format!(
            "Lavori pubblici del Comune di {}: programma triennale ed elenco annuale, CUP e CIG, \
             quadro economico e fonti di finanziamento, affidamento, stati di avanzamento lavori \
             (SAL), certificati di pagamento e pagamenti, opere incompiute.",
            f.comune
        ),
        identifier: format!("{}-opere-pubbliche", f.istat_code),
        publisher_name: format!("Comune di {}", f.comune),
        publisher_istat_code: f.istat_code.to_owned(),
        licence_name: LICENCE_NAME.to_owned(),
        licence_url: LICENCE_URL.to_owned(),
        modified: f.modified.clone(),
        theme: THEME.to_owned(),
        keywords,
        language: LANGUAGE.to_owned(),
        media_type: match f.format {
            pb::ProjectExportFormat::Json => "application/x-ndjson",
            _ => "text/csv",
        }
        .to_owned(),
        columns: COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
        row_count: f.row_count as i64,
        generated_time: Some(time::to_timestamp(f.generated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patto_proto::common::v1::{Address, GeoPoint, Money};

    fn project() -> pb::Project {
        pb::Project {
            id: "opera-1".into(),
            istat_code: "082053".into(),
            cup: "J87G22000360002".into(),
            cigs: vec!["8874674CA7".into(), "Z063947806".into()],
            title: "Scuola \"Garibaldi\", lotto 1".into(),
            description: "Prima riga\nseconda riga".into(),
            category: pb::ProjectCategory::Schools as i32,
            state: pb::ProjectState::InEsecuzione as i32,
            budget: Some(Money { cents: 12_345_050 }),
            funding: vec![pb::ProjectFunding {
                source: pb::ProjectFundingSource::PonMetro as i32,
                amount: Some(Money { cents: 10_000_000 }),
                reference: String::new(),
            }],
            progress_basis_points: 4525,
            address: Some(Address {
                street: "Via Roma".into(),
                house_number: "1".into(),
                postal_code: "90133".into(),
                ..Default::default()
            }),
            geo: Some(GeoPoint {
                latitude: 38.1157,
                longitude: 13.3615,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn csv_quoting() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
            (" edge", "\" edge\""),
            ("città", "città"),
        ];
        for (raw, quoted) in cases {
            assert_eq!(csv_field(raw), quoted, "{raw:?}");
        }
    }

    #[test]
    fn rows_follow_the_columns() {
        let header = csv_header();
        assert_eq!(header.split(',').count(), COLUMNS.len());
        let record = csv_record(&project(), "Palermo");
        assert!(record.starts_with("opera-1,,082053,Palermo,J87G22000360002,8874674CA7|Z063947806,\"Scuola \"\"Garibaldi\"\", lotto 1\",\"Prima riga\nseconda riga\",SCHOOLS,IN_ESECUZIONE,false,"), "{record}");
        assert!(
            record.contains(",123450.50,100000.00,PON_METRO,100000.00,"),
            "{record}"
        );
        assert!(record.contains(",45.25,"), "{record}");
        assert!(
            record.contains(",\"Via Roma 1, 90133\",38.115700,13.361500,"),
            "{record}"
        );

        let json: serde_json::Value =
            serde_json::from_str(&json_line(&project(), "Palermo")).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(obj.keys().count(), COLUMNS.len());
        assert_eq!(
            json["cigs"],
            serde_json::json!(["8874674CA7", "Z063947806"])
        );
        assert_eq!(json["budget"], "123450.50");
        assert_eq!(json["contract_amount"], serde_json::Value::Null);
        assert_eq!(json["programme_first_year"], serde_json::Value::Null);
        assert_eq!(json["incompiuta"], false);
        assert_eq!(json["latitude"], 38.1157);
        assert!(!json_line(&project(), "Palermo").contains('\n'));
    }

    #[test]
    fn metadata_names_the_comune_and_licence() {
        let m = metadata(&DatasetFacts {
            istat_code: "082053",
            comune: "Palermo",
            format: pb::ProjectExportFormat::Csv,
            row_count: 3,
            modified: "2025-06-01".into(),
            sources: vec![
                pb::ProjectFundingSource::PonMetro,
                pb::ProjectFundingSource::Municipality,
                pb::ProjectFundingSource::PonMetro,
            ],
            generated: Utc::now(),
        });
        assert_eq!(m.title, "Opere pubbliche del Comune di Palermo");
        assert_eq!(m.publisher_name, "Comune di Palermo");
        assert_eq!(m.identifier, "082053-opere-pubbliche");
        assert_eq!(m.media_type, "text/csv");
        assert_eq!(m.licence_url, LICENCE_URL);
        assert_eq!(m.columns.len(), COLUMNS.len());
        assert_eq!(m.keywords.iter().filter(|k| *k == "PON Metro").count(), 1);
    }
}
