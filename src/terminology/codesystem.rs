//! One edition of a code system (a table of `code,name`) and the hierarchy derived from its codes.

use std::collections::HashMap;
use std::path::Path;

use super::normalize::normalize;
use super::TerminologyError;

/// Whether an edition holds diagnoses (ICD-10) or procedures (ICD-9-CM-3): the hierarchy
/// rules differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    Icd10,
    Icd9cm3,
}

impl CodeKind {
    /// ICD-10 codes start with a letter, ICD-9-CM-3 codes with a digit.
    pub fn guess(code: &str) -> CodeKind {
        if code.starts_with(|c: char| c.is_ascii_digit()) {
            CodeKind::Icd9cm3
        } else {
            CodeKind::Icd10
        }
    }
}

/// Identity of an edition as FHIR sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EditionMeta {
    /// Resource id, e.g. `icd-10-cn-clinical`.
    pub id: String,
    /// Canonical URI, sent as `Coding.system`.
    pub url: String,
    pub version: String,
    pub title: String,
    pub kind: CodeKind,
    /// `clinical` or `insurance`: which side of a crosswalk this edition is on.
    pub role: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Concept {
    pub code: String,
    pub name: String,
    /// The matching key of `name` (see [`normalize`]).
    #[serde(skip)]
    pub key: String,
    /// False for nodes that exist only as hierarchy headers (I25, I25.1).
    pub selectable: bool,
}

/// A loaded edition: concepts in table order, with hash lookups by code and by name key.
pub struct CodeSystem {
    pub meta: EditionMeta,
    pub concepts: Vec<Concept>,
    by_code: HashMap<String, usize>,
    by_key: HashMap<String, Vec<usize>>,
    children: HashMap<String, Vec<usize>>,
    /// Selectable ordinals sorted by code: a prefix is a contiguous range (binary search, not
    /// a scan of 30,000 concepts per code-also rule).
    sorted_selectable: Vec<usize>,
}

/// The parts of a dagger/asterisk pair such as `A01.000x003+G01*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeParts {
    pub main: String,
    pub dagger: bool,
    pub asterisk: Option<String>,
}

/// Splits `A01.000x003+G01*` (or `†`) into the etiology code and its manifestation code.
pub fn parse_code_parts(code: &str) -> CodeParts {
    let code = code.trim();
    if let Some(pos) = code.find(['+', '†']) {
        let main = code[..pos].to_owned();
        let rest = code[pos..].trim_start_matches(['+', '†']);
        let asterisk = rest.trim_end_matches('*');
        CodeParts {
            main,
            dagger: true,
            asterisk: (!asterisk.is_empty()).then(|| asterisk.to_owned()),
        }
    } else {
        CodeParts { main: code.trim_end_matches('*').to_owned(), dagger: false, asterisk: None }
    }
}

/// The chain of ancestors a code implies, nearest first, whether or not the table lists them.
///
/// ICD-10: `I10.x00x032 → I10.x00 → I10`, `I25.103 → I25.100 → I25.1 → I25`.
/// ICD-9-CM-3: `36.0700x004 → 36.0700 → 36.07 → 36.0 → 36`, `36.0701 → 36.0700 → 36.07 …`.
pub fn implied_ancestors(code: &str, kind: CodeKind) -> Vec<String> {
    let main = parse_code_parts(code).main;
    let mut out = Vec::new();
    let mut cur = main.clone();
    // Extension code: the part before the second `x` block.
    if let Some(pos) = extension_pos(&cur) {
        cur = cur[..pos].to_owned();
        out.push(cur.clone());
    }
    match kind {
        CodeKind::Icd10 => {
            // cur is like I25.103, I25.1, I10.x00 or I25
            if let Some((cat, sub)) = cur.split_once('.') {
                if sub.len() >= 3 {
                    let base = format!("{cat}.{}00", &sub[..1]);
                    if base != cur {
                        out.push(base);
                    }
                }
                if sub.len() >= 2 && !sub.starts_with('x') {
                    out.push(format!("{cat}.{}", &sub[..1]));
                }
                out.push(cat.to_owned());
            }
        }
        CodeKind::Icd9cm3 => {
            if let Some((cat, sub)) = cur.split_once('.') {
                if sub.len() == 4 {
                    let base = format!("{cat}.{}00", &sub[..2]);
                    if base != cur {
                        out.push(base);
                    }
                }
                if sub.len() >= 3 {
                    out.push(format!("{cat}.{}", &sub[..2]));
                }
                if sub.len() >= 2 {
                    out.push(format!("{cat}.{}", &sub[..1]));
                }
                out.push(cat.to_owned());
            }
        }
    }
    out.dedup();
    out.retain(|c| *c != main);
    out
}

/// Position of the national extension suffix (`x032` in `I10.x00x032`, `x004` in `36.0700x004`).
fn extension_pos(code: &str) -> Option<usize> {
    let dot = code.find('.')?;
    let after = &code[dot + 1..];
    // The first `x` right after the dot (I10.x00) is a placeholder, not an extension.
    let skip = usize::from(after.starts_with('x'));
    after[skip..].find('x').map(|p| dot + 1 + skip + p)
}

impl CodeSystem {
    /// Builds an edition from `(code, name)` rows. Header rows (categories) from `headers` are
    /// added as non-selectable concepts so that lookups can show a parent's display.
    pub fn from_rows(
        meta: EditionMeta,
        rows: Vec<(String, String)>,
        headers: &HashMap<String, String>,
    ) -> CodeSystem {
        let mut concepts = Vec::with_capacity(rows.len());
        let mut seen = std::collections::HashSet::new();
        for (code, name) in rows {
            let code = code.trim().to_owned();
            let name = name.trim().to_owned();
            if code.is_empty() || name.is_empty() || !seen.insert(code.clone()) {
                continue;
            }
            let key = normalize(&name);
            concepts.push(Concept { code, name, key, selectable: true });
        }
        // Header nodes implied by the codes: present in the hierarchy even where the table
        // has only full-length codes.
        let mut implied = Vec::new();
        for c in &concepts {
            for anc in implied_ancestors(&c.code, meta.kind) {
                if !seen.contains(&anc) {
                    seen.insert(anc.clone());
                    implied.push(anc);
                }
            }
        }
        for code in implied {
            if let Some(name) = headers.get(&code) {
                let key = normalize(name);
                concepts.push(Concept { code, name: name.clone(), key, selectable: false });
            }
        }
        let mut cs = CodeSystem {
            meta,
            concepts,
            by_code: HashMap::new(),
            by_key: HashMap::new(),
            children: HashMap::new(),
            sorted_selectable: Vec::new(),
        };
        cs.reindex();
        cs
    }

    /// Reads a `code,name` CSV (header row optional, extra columns ignored).
    pub fn read_csv(path: &Path) -> Result<Vec<(String, String)>, TerminologyError> {
        let file = std::fs::File::open(path)
            .map_err(|e| TerminologyError::Io(format!("{}: {e}", path.display())))?;
        read_code_name_csv(file).map_err(|e| TerminologyError::Parse(format!("{}: {e}", path.display())))
    }

    fn reindex(&mut self) {
        self.by_code.clear();
        self.by_key.clear();
        self.children.clear();
        let mut sorted: Vec<usize> = (0..self.concepts.len()).filter(|&i| self.concepts[i].selectable).collect();
        sorted.sort_by(|&a, &b| self.concepts[a].code.cmp(&self.concepts[b].code));
        self.sorted_selectable = sorted;
        for (i, c) in self.concepts.iter().enumerate() {
            self.by_code.insert(c.code.clone(), i);
            if c.selectable {
                self.by_key.entry(c.key.clone()).or_default().push(i);
            }
        }
        // One name, two codes (I21.103 and I21.100x002 are both 急性下壁心肌梗死): the code of the
        // national classification comes before the clinical edition's extension ("x") code,
        // which repeats it for compatibility; the order of the tables decides among the rest.
        let concepts = &self.concepts;
        for same_name in self.by_key.values_mut().filter(|v| v.len() > 1) {
            same_name.sort_by_key(|&i| concepts[i].code.contains('x'));
        }
        for (i, c) in self.concepts.iter().enumerate() {
            if let Some(parent) = self.parent_index_of(&c.code) {
                self.children.entry(self.concepts[parent].code.clone()).or_default().push(i);
            }
        }
    }

    fn parent_index_of(&self, code: &str) -> Option<usize> {
        implied_ancestors(code, self.meta.kind).iter().find_map(|a| self.by_code.get(a).copied())
    }

    pub fn len(&self) -> usize {
        self.concepts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.concepts.is_empty()
    }

    /// Hash lookup by code. Dagger/asterisk spellings (`†` or `+`) are accepted for each other.
    pub fn get(&self, code: &str) -> Option<&Concept> {
        let code = code.trim();
        self.by_code
            .get(code)
            .or_else(|| self.by_code.get(&code.replace('†', "+")))
            .map(|&i| &self.concepts[i])
    }

    /// Position of a code in [`CodeSystem::concepts`].
    pub fn ordinal(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }

    /// Concepts whose normalized name equals the normalized `name` (hash lookup).
    pub fn by_name(&self, name: &str) -> Vec<&Concept> {
        self.by_key_exact(&normalize(name))
    }

    pub fn by_key_exact(&self, key: &str) -> Vec<&Concept> {
        self.by_key.get(key).map(|v| v.iter().map(|&i| &self.concepts[i]).collect()).unwrap_or_default()
    }

    /// The nearest ancestor present in this edition.
    pub fn parent(&self, code: &str) -> Option<&Concept> {
        self.parent_index_of(code).map(|i| &self.concepts[i])
    }

    pub fn children(&self, code: &str) -> Vec<&Concept> {
        self.children.get(code).map(|v| v.iter().map(|&i| &self.concepts[i]).collect()).unwrap_or_default()
    }

    pub fn selectable(&self) -> impl Iterator<Item = &Concept> {
        self.concepts.iter().filter(|c| c.selectable)
    }

    /// Every selectable code that starts with `prefix` (a US 4-digit code such as `36.07`
    /// covers `36.0700`, `36.0700x004`, …).
    /// Whether any selectable code starts with `prefix` (one binary search).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        let start = self.sorted_selectable.partition_point(|&i| self.concepts[i].code.as_str() < prefix);
        self.sorted_selectable.get(start).is_some_and(|&i| self.concepts[i].code.starts_with(prefix))
    }

    pub fn codes_with_prefix(&self, prefix: &str) -> Vec<&Concept> {
        let start = self.sorted_selectable.partition_point(|&i| self.concepts[i].code.as_str() < prefix);
        self.sorted_selectable[start..]
            .iter()
            .map(|&i| &self.concepts[i])
            .take_while(|c| c.code.starts_with(prefix))
            .collect()
    }
}

/// Reads `code,name` rows from any reader. A first row whose first cell is `code` (or a Chinese
/// header such as 疾病编码) is skipped.
pub fn read_code_name_csv<R: std::io::Read>(reader: R) -> Result<Vec<(String, String)>, String> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("row {}: {e}", i + 1))?;
        let code = rec.get(0).unwrap_or("").trim().trim_start_matches('\u{feff}');
        let name = rec.get(1).unwrap_or("").trim();
        if i == 0 && (code.eq_ignore_ascii_case("code") || code.contains("编码") || code.contains("代码")) {
            continue;
        }
        if code.is_empty() && name.is_empty() {
            continue;
        }
        if code.is_empty() || name.is_empty() {
            return Err(format!("row {}: a code and a name are both required", i + 1));
        }
        rows.push((code.to_owned(), name.to_owned()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_of_icd10_codes() {
        assert_eq!(implied_ancestors("I25.103", CodeKind::Icd10), vec!["I25.100", "I25.1", "I25"]);
        assert_eq!(implied_ancestors("I10.x00x032", CodeKind::Icd10), vec!["I10.x00", "I10"]);
        assert_eq!(implied_ancestors("I25.100", CodeKind::Icd10), vec!["I25.1", "I25"]);
        assert_eq!(implied_ancestors("I25.1", CodeKind::Icd10), vec!["I25"]);
        assert_eq!(implied_ancestors("A01.000x003+G01*", CodeKind::Icd10), vec!["A01.000", "A01.0", "A01"]);
    }

    #[test]
    fn ancestors_of_procedure_codes() {
        assert_eq!(
            implied_ancestors("36.0700x004", CodeKind::Icd9cm3),
            vec!["36.0700", "36.07", "36.0", "36"]
        );
        assert_eq!(implied_ancestors("36.0701", CodeKind::Icd9cm3), vec!["36.0700", "36.07", "36.0", "36"]);
        assert_eq!(implied_ancestors("00.6600x004", CodeKind::Icd9cm3), vec!["00.6600", "00.66", "00.6", "00"]);
    }

    #[test]
    fn dagger_asterisk_parts() {
        let p = parse_code_parts("A01.000x003+G01*");
        assert_eq!(p, CodeParts { main: "A01.000x003".into(), dagger: true, asterisk: Some("G01".into()) });
        let p = parse_code_parts("A17.000†G01*");
        assert_eq!(p.asterisk.as_deref(), Some("G01"));
        assert!(!parse_code_parts("I25.103").dagger);
    }

    #[test]
    fn hierarchy_links_children_and_headers() {
        let meta = EditionMeta {
            id: "t".into(), url: "u".into(), version: "1".into(), title: "t".into(),
            kind: CodeKind::Icd10, role: "clinical".into(),
        };
        let rows = vec![
            ("I25.100".into(), "动脉硬化性心脏病".into()),
            ("I25.103".into(), "冠状动脉粥样硬化性心脏病".into()),
            ("I10.x00x032".into(), "高血压病3级（极高危）".into()),
            ("I10.x00".into(), "特发性（原发性）高血压".into()),
        ];
        let headers: HashMap<String, String> =
            [("I25".to_string(), "慢性缺血性心脏病".to_string()), ("I25.1".into(), "动脉硬化性心脏病".into())].into();
        let cs = CodeSystem::from_rows(meta, rows, &headers);
        assert_eq!(cs.parent("I25.103").unwrap().code, "I25.100");
        assert_eq!(cs.parent("I25.100").unwrap().code, "I25.1");
        assert_eq!(cs.parent("I10.x00x032").unwrap().code, "I10.x00");
        assert!(!cs.get("I25").unwrap().selectable);
        let kids: Vec<_> = cs.children("I25.100").iter().map(|c| c.code.clone()).collect();
        assert_eq!(kids, vec!["I25.103"]);
        assert_eq!(cs.by_name("冠状动脉粥样硬化性心脏病")[0].code, "I25.103");
        // Prefix ranges: selectable codes only, the header I25 is not one.
        let under = |p: &str| cs.codes_with_prefix(p).iter().map(|c| c.code.clone()).collect::<Vec<_>>();
        assert_eq!(under("I25"), vec!["I25.100", "I25.103"]);
        assert_eq!(under("I10.x00"), vec!["I10.x00", "I10.x00x032"]);
        assert!(under("I26").is_empty());
        assert_eq!(under("").len(), 4);
    }
}
