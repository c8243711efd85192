//! Clinical edition → insurance edition (医保版) crosswalks.
//!
//! The published tables list only codes whose insurance code differs; a code absent from the
//! table maps to itself when the insurance edition has it, and to nothing otherwise.

use std::collections::HashMap;
use std::path::Path;

use super::TerminologyError;

#[derive(Default, Clone)]
pub struct Crosswalk {
    map: HashMap<String, String>,
}

/// How a clinical code reached its insurance code: for the ConceptMap `equivalence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// Listed in the crosswalk.
    Mapped(String),
    /// Not listed, and the insurance edition has the same code.
    Identical(String),
}

impl Translation {
    pub fn code(&self) -> &str {
        match self {
            Translation::Mapped(c) | Translation::Identical(c) => c,
        }
    }
}

impl Crosswalk {
    pub fn load(path: &Path) -> Result<Crosswalk, TerminologyError> {
        let mut rdr = csv::Reader::from_path(path)
            .map_err(|e| TerminologyError::Io(format!("{}: {e}", path.display())))?;
        let mut map = HashMap::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| TerminologyError::Parse(format!("{} row {}: {e}", path.display(), i + 2)))?;
            let (from, to) = (rec.get(0).unwrap_or("").trim(), rec.get(1).unwrap_or("").trim());
            if !from.is_empty() && !to.is_empty() {
                map.insert(from.to_owned(), to.to_owned());
            }
        }
        Ok(Crosswalk { map })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `target_has` says whether the insurance edition holds a code.
    pub fn translate(&self, code: &str, target_has: impl Fn(&str) -> bool) -> Option<Translation> {
        if let Some(to) = self.map.get(code) {
            return Some(Translation::Mapped(to.clone()));
        }
        target_has(code).then(|| Translation::Identical(code.to_owned()))
    }
}
