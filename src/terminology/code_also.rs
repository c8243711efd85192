//! "Code also" rules: which further procedure codes a procedure code calls for.
//!
//! Two sources: the US ICD-9-CM vol. 3 tabular notes (4-digit codes, joined to Chinese codes by
//! prefix, as the national clinical edition extends the US codes) and the project's own rules
//! written in Chinese codes. Rules say what to *consider*; the pipeline's validation decides
//! what the record supports.

use std::collections::HashMap;
use std::path::Path;

use super::codesystem::CodeSystem;

#[derive(Clone, Debug, serde::Serialize)]
pub struct CodeAlsoRule {
    /// Code prefix that triggers the rule (`36.07`).
    pub trigger: String,
    /// Prefixes of the codes to consider (`00.40`, `00.41`, …; ranges already expanded).
    pub targets: Vec<String>,
    pub note: String,
    /// `us-vol3` or `project`.
    pub source: &'static str,
}

#[derive(Default, Clone)]
pub struct CodeAlsoRules {
    by_trigger: HashMap<String, Vec<CodeAlsoRule>>,
}

pub const EMBEDDED_RULES: &str = include_str!("../../terminology/code_also.tsv");

impl CodeAlsoRules {
    pub fn embedded() -> CodeAlsoRules {
        let mut rules = CodeAlsoRules::default();
        rules.load_project_tsv(EMBEDDED_RULES, "embedded code_also.tsv").expect("embedded rules parse");
        rules
    }

    pub fn load_project_tsv(&mut self, text: &str, source: &str) -> Result<usize, String> {
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 2 {
                return Err(format!("{source} line {}: expected TRIGGER<TAB>TARGETS<TAB>NOTE", i + 1));
            }
            let targets = expand_refs(cols[1]).map_err(|e| format!("{source} line {}: {e}", i + 1))?;
            self.push(CodeAlsoRule {
                trigger: cols[0].trim().to_owned(),
                targets,
                note: cols.get(2).unwrap_or(&"").trim().to_owned(),
                source: "project",
            });
            n += 1;
        }
        Ok(n)
    }

    /// Loads `icd9cm_vol3_tabular_us_notes.csv` (columns code,…,code_also,code_also_refs,…).
    pub fn load_us_notes(&mut self, path: &Path) -> Result<usize, String> {
        let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let headers = rdr.headers().map_err(|e| e.to_string())?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(c_code), Some(c_note), Some(c_refs)) = (col("code"), col("code_also"), col("code_also_refs")) else {
            return Err(format!("{}: missing code/code_also/code_also_refs columns", path.display()));
        };
        let mut n = 0;
        for rec in rdr.records().flatten() {
            let refs = rec.get(c_refs).unwrap_or("").trim();
            if refs.is_empty() {
                continue;
            }
            let Ok(targets) = expand_refs(refs) else { continue };
            self.push(CodeAlsoRule {
                trigger: rec.get(c_code).unwrap_or("").trim().to_owned(),
                targets,
                note: rec.get(c_note).unwrap_or("").trim().to_owned(),
                source: "us-vol3",
            });
            n += 1;
        }
        Ok(n)
    }

    fn push(&mut self, rule: CodeAlsoRule) {
        self.by_trigger.entry(rule.trigger.clone()).or_default().push(rule);
    }

    /// Every rule whose trigger is a prefix of `code` (the code itself, its 4-digit US code,
    /// its 3-digit header), most specific first.
    pub fn rules_for(&self, code: &str) -> Vec<&CodeAlsoRule> {
        let mut out = Vec::new();
        let chars: Vec<char> = code.chars().collect();
        for len in (2..=chars.len()).rev() {
            let prefix: String = chars[..len].iter().collect();
            if let Some(rules) = self.by_trigger.get(&prefix) {
                out.extend(rules.iter());
            }
        }
        out
    }

    /// The Chinese codes of `edition` that the rules for `code` point to.
    pub fn chinese_targets<'a>(&self, code: &str, edition: &'a CodeSystem) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        for rule in self.rules_for(code) {
            for t in &rule.targets {
                for c in edition.codes_with_prefix(t) {
                    if !out.contains(&c.code.as_str()) {
                        out.push(&c.code);
                    }
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_trigger.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_trigger.is_empty()
    }
}

/// `00.45-00.48;36.03;00.66` → [00.45, 00.46, 00.47, 00.48, 36.03, 00.66].
pub fn expand_refs(refs: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in refs.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let (a, b) = (a.trim(), b.trim());
            let (Some((ca, da)), Some((cb, db))) = (a.split_once('.'), b.split_once('.')) else {
                return Err(format!("bad range {part}"));
            };
            if ca != cb || da.len() != db.len() {
                // Ranges across categories are rare; keep both ends rather than guessing.
                out.push(a.to_owned());
                out.push(b.to_owned());
                continue;
            }
            let (lo, hi): (u32, u32) = (
                da.parse().map_err(|_| format!("bad range {part}"))?,
                db.parse().map_err(|_| format!("bad range {part}"))?,
            );
            for v in lo..=hi.min(lo + 99) {
                out.push(format!("{ca}.{v:0width$}", width = da.len()));
            }
        } else {
            out.push(part.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_ranges() {
        assert_eq!(expand_refs("00.45-00.48;36.03").unwrap(), vec!["00.45", "00.46", "00.47", "00.48", "36.03"]);
        assert_eq!(expand_refs("37.70-37.72").unwrap(), vec!["37.70", "37.71", "37.72"]);
    }

    #[test]
    fn project_rules_match_chinese_codes_by_prefix() {
        let rules = CodeAlsoRules::embedded();
        let r = rules.rules_for("36.0700x004");
        assert!(r.iter().any(|r| r.targets.contains(&"00.45".to_string())));
        assert!(rules.rules_for("88.5500").is_empty());
    }
}
