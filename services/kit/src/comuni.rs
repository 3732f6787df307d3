//! Reference data: the 82 comuni of the Città Metropolitana di Palermo (ISTAT "Elenco comuni",
//! 1 January 2020, CC BY 3.0 IT), embedded so every service validates ISTAT codes the same way.

use std::sync::OnceLock;

/// One comune.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Comune {
    /// ISTAT code, 6 digits (`082053` is Palermo).
    #[serde(rename = "istat")]
    pub istat_code: String,
    /// Official name.
    #[serde(rename = "nome")]
    pub name: String,
    /// Cadastral (Belfiore) code, e.g. `G273`.
    #[serde(rename = "codice_catastale")]
    pub cadastral_code: String,
    /// Postal codes (CAP).
    #[serde(rename = "cap")]
    pub postal_codes: Vec<String>,
    /// Legal population at the 2011 census.
    #[serde(rename = "popolazione_2011")]
    pub population_2011: u32,
}

#[derive(serde::Deserialize)]
struct File {
    comuni: Vec<Comune>,
}

/// The embedded JSON file, as published in the repository.
pub const COMUNI_JSON: &str = include_str!("../data/comuni-palermo.json");

/// All 82 comuni, ordered by ISTAT code.
pub fn all() -> &'static [Comune] {
    static ALL: OnceLock<Vec<Comune>> = OnceLock::new();
    ALL.get_or_init(|| {
        // The file is compiled in and checked by a test, so a parse failure is a build defect.
        let mut file: File =
            serde_json::from_str(COMUNI_JSON).unwrap_or(File { comuni: Vec::new() });
        file.comuni.sort_by(|a, b| a.istat_code.cmp(&b.istat_code));
        file.comuni
    })
}

/// The comune with this ISTAT code, if it is one of the 82.
pub fn by_istat(istat_code: &str) -> Option<&'static Comune> {
    let all = all();
    all.binary_search_by(|c| c.istat_code.as_str().cmp(istat_code))
        .ok()
        .map(|i| &all[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_82_comuni_load() {
        assert_eq!(all().len(), 82);
        let palermo = by_istat("082053").unwrap();
        assert_eq!(
            (palermo.name.as_str(), palermo.cadastral_code.as_str()),
            ("Palermo", "G273")
        );
        assert_eq!(palermo.postal_codes.len(), 31);
        assert!(by_istat("082083").is_none());
        assert!(by_istat("").is_none());
    }
}
