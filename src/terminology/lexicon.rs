//! Abbreviations and synonyms → canonical names, applied as query (and index) expansion.
//!
//! The file format is deliberately plain (`ALIAS<TAB>CANONICAL[<TAB>dx|px|any]`) so that a
//! terminology admin can extend it with a text editor.

use std::collections::{HashMap, HashSet};

use super::normalize::normalize;

/// Which track an entry applies to: `ICD` means a device in a procedure list and nothing in a
/// diagnosis list, so entries are scoped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Dx,
    Px,
    Any,
}

impl Scope {
    fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "" | "any" => Some(Scope::Any),
            "dx" => Some(Scope::Dx),
            "px" => Some(Scope::Px),
            _ => None,
        }
    }

    pub fn admits(self, other: Scope) -> bool {
        self == Scope::Any || other == Scope::Any || self == other
    }
}

#[derive(Clone, Debug)]
struct Target {
    key: String,
    name: String,
    scope: Scope,
}

/// The loaded lexicon: alias keys (normalized) → canonical names.
#[derive(Default, Clone)]
pub struct Lexicon {
    entries: HashMap<String, Vec<Target>>,
    /// Canonical keys: matched as themselves so that an alias inside a longer canonical name
    /// (心功能不全 inside 慢性心功能不全急性加重) is not rewritten.
    canonical: HashSet<String>,
    reverse: HashMap<String, Vec<String>>,
    max_chars: usize,
    /// Group names (PCI) that are never coded by themselves.
    umbrella: HashSet<(String, Scope)>,
}

/// The canonical name that marks an alias as a group name, not a codable one.
pub const UMBRELLA: &str = "(umbrella)";

/// The project's own lexicon, compiled in so that the server runs with no files beside it.
pub const EMBEDDED_LEXICON: &str = include_str!("../../terminology/lexicon.tsv");

impl Lexicon {
    pub fn embedded() -> Lexicon {
        let mut lex = Lexicon::default();
        lex.load_tsv(EMBEDDED_LEXICON, "embedded lexicon").expect("embedded lexicon parses");
        lex
    }

    /// Adds the entries of a TSV text. Errors name the source and line.
    pub fn load_tsv(&mut self, text: &str, source: &str) -> Result<usize, String> {
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 2 || cols[0].trim().is_empty() || cols[1].trim().is_empty() {
                return Err(format!("{source} line {}: expected ALIAS<TAB>CANONICAL[<TAB>dx|px|any]", i + 1));
            }
            let scope = Scope::parse(cols.get(2).copied().unwrap_or(""))
                .ok_or_else(|| format!("{source} line {}: scope must be dx, px or any", i + 1))?;
            let indexed = match cols.get(3).map(|c| c.trim()) {
                None | Some("") => true,
                Some("query") => false,
                Some(other) => return Err(format!("{source} line {}: the fourth column may only be `query`, not {other:?}", i + 1)),
            };
            self.add_entry(cols[0].trim(), cols[1].trim(), scope, indexed);
            n += 1;
        }
        Ok(n)
    }

    /// Adds shared abbreviation lists (`abbr,full_name_en,meaning_zh`) and the small synonym
    /// table (`section,term,synonyms_zh,abbreviations,english`) where they exist. Entries of the
    /// project lexicon win: only aliases not yet known are taken.
    pub fn load_shared_lists(&mut self, dir: &std::path::Path) {
        if let Ok(mut rdr) = csv::Reader::from_path(dir.join("abbreviations_clinical_zh_en.csv")) {
            for rec in rdr.records().flatten() {
                let (abbr, zh) = (rec.get(0).unwrap_or(""), rec.get(2).unwrap_or(""));
                if !abbr.is_empty() && !zh.is_empty() && !self.entries.contains_key(&normalize(abbr)) {
                    self.add(abbr, zh, Scope::Any);
                }
            }
        }
        if let Ok(mut rdr) = csv::Reader::from_path(dir.join("synonyms_common_zh_small.csv")) {
            for rec in rdr.records().flatten() {
                let term = rec.get(1).unwrap_or("").trim();
                if term.is_empty() {
                    continue;
                }
                let syn = rec.get(2).unwrap_or("");
                let abbr = rec.get(3).unwrap_or("");
                for alias in syn.split(['、', ',', '，']).chain(abbr.split([',', '，', '、'])) {
                    let alias = alias.trim();
                    if alias.chars().count() >= 2 && !self.entries.contains_key(&normalize(alias)) {
                        self.add(alias, term, Scope::Any);
                    }
                }
            }
        }
    }

    pub fn add(&mut self, alias: &str, canonical: &str, scope: Scope) {
        self.add_entry(alias, canonical, scope, true)
    }

    /// `indexed = false` (a `query` entry) rewrites the mention only: the concept is not
    /// indexed under the alias, whose words would draw other mentions to it (肺炎克雷伯菌感染
    /// to the sepsis that 克雷伯菌血流感染 is).
    pub fn add_entry(&mut self, alias: &str, canonical: &str, scope: Scope, indexed: bool) {
        if canonical == UMBRELLA {
            self.umbrella.insert((normalize(alias), scope));
            return;
        }
        let akey = normalize(alias);
        let ckey = normalize(canonical);
        if akey.is_empty() || ckey.is_empty() || akey == ckey {
            self.canonical.insert(ckey);
            return;
        }
        self.max_chars = self.max_chars.max(akey.chars().count()).max(ckey.chars().count());
        let targets = self.entries.entry(akey.clone()).or_default();
        if !targets.iter().any(|t| t.key == ckey) {
            targets.push(Target { key: ckey.clone(), name: canonical.to_owned(), scope });
        }
        if indexed {
            self.reverse.entry(ckey.clone()).or_default().push(akey);
        }
        self.canonical.insert(ckey);
    }

    pub fn len(&self) -> usize {
        self.entries.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a mention (normalized key) names a group of procedures or diagnoses rather than
    /// one codable concept.
    pub fn is_umbrella(&self, key: &str, scope: Scope) -> bool {
        self.umbrella.iter().any(|(k, s)| k == key && s.admits(scope))
    }

    /// Whether a normalized key is a known alias.
    pub fn has_alias_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Canonical names for a whole mention that is itself an alias (冠心病 → 冠状动脉粥样硬化性心脏病).
    pub fn canonical_names(&self, text: &str, scope: Scope) -> Vec<String> {
        self.entries
            .get(&normalize(text))
            .map(|ts| ts.iter().filter(|t| t.scope.admits(scope)).map(|t| t.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Normalized variants of `key` (already normalized) with every alias inside it replaced by
    /// its first canonical name: longest match first, ASCII aliases only at word boundaries.
    /// The original key is not included. Empty when nothing applies.
    pub fn rewrite_key(&self, key: &str, scope: Scope) -> Vec<String> {
        let chars: Vec<char> = key.chars().collect();
        let mut out = String::with_capacity(key.len() * 2);
        let mut changed = false;
        let mut whole: Vec<String> = Vec::new();
        if let Some(ts) = self.entries.get(key) {
            whole = ts.iter().filter(|t| t.scope.admits(scope)).map(|t| t.key.clone()).collect();
        }
        let mut i = 0;
        while i < chars.len() {
            let mut matched = None;
            let max = self.max_chars.min(chars.len() - i);
            for len in (2..=max).rev() {
                let cand: String = chars[i..i + len].iter().collect();
                if !ascii_boundary_ok(&chars, i, i + len) {
                    continue;
                }
                if self.canonical.contains(&cand) && !self.entries.contains_key(&cand) {
                    matched = Some((len, None));
                    break;
                }
                if let Some(ts) = self.entries.get(&cand) {
                    if let Some(t) = ts.iter().find(|t| t.scope.admits(scope)) {
                        matched = Some((len, Some(t.key.clone())));
                        break;
                    }
                }
            }
            match matched {
                Some((len, Some(rep))) => {
                    out.push_str(&rep);
                    changed = true;
                    i += len;
                }
                Some((len, None)) => {
                    out.extend(&chars[i..i + len]);
                    i += len;
                }
                None => {
                    out.push(chars[i]);
                    i += 1;
                }
            }
        }
        let mut variants = whole;
        if changed && !variants.contains(&out) {
            variants.push(out);
        }
        variants.retain(|v| v != key);
        variants
    }

    /// Alias keys known for a canonical key (used to index a concept under its abbreviations).
    pub fn aliases_of(&self, canonical_key: &str) -> &[String] {
        self.reverse.get(canonical_key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The mention without what clinicians add and the classification seldom names: the side of a
/// limb (左下肢深静脉血栓形成 is 下肢深静脉血栓形成) and a grade of severity (主动脉瓣重度狭窄
/// is 主动脉瓣狭窄). For exact lookup only when the mention itself has no exact name, so
/// 重度贫血 and 左心衰竭 stay what the table calls them.
pub fn bare_forms(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let unsided = without_side(key);
    for k in unsided.iter().map(String::as_str).chain(std::iter::once(key)) {
        if let Some(plain) = without_severity(k) {
            out.push(plain);
        }
    }
    out.extend(unsided);
    out
}

/// The forms the edition names a disease by where the clinician's name is not one of its
/// names: ICD's default for a disease written without a complication is the code "without
/// complication" (带状疱疹 → 带状疱疹不伴有并发症, 水痘 → 水痘不伴有并发症), and a cancer of a site
/// is that site's malignant neoplasm (乙状结肠癌 → 乙状结肠恶性肿瘤).
pub fn default_forms(key: &str) -> Vec<String> {
    if key.chars().count() < 2 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !key.contains("并发症") {
        out.push(format!("{key}不伴有并发症"));
    }
    if let Some(site) = key.strip_suffix('癌').filter(|s| s.chars().count() >= 1 && !s.ends_with("原位")) {
        out.push(format!("{site}恶性肿瘤"));
    }
    out
}

const SEVERITY: &[&str] = &["极重度", "中重度", "轻中度", "重度", "中度", "轻度"];

fn without_severity(key: &str) -> Option<String> {
    let w = SEVERITY.iter().find(|w| key.contains(*w))?;
    let plain = key.replacen(w, "", 1);
    (plain.chars().count() >= 3).then_some(plain)
}

/// A mention without its leading side (左/右/双, 左侧/右侧/双侧), when what follows is a paired
/// part of the body rather than a side of the heart (左心衰竭, 右心室, 左束支, 左主干 and
/// 右冠状动脉 name the heart's own parts and keep their side).
fn without_side(key: &str) -> Option<String> {
    let rest = ["左侧", "右侧", "双侧", "左", "右", "双"].iter().find_map(|p| key.strip_prefix(p))?;
    let heart = ["心", "室", "房", "束支", "冠", "主干", "主"].iter().any(|h| rest.starts_with(h));
    (rest.chars().count() >= 4 && !heart).then(|| rest.to_owned())
}

/// An ASCII alias must not start or end inside a Latin word or number (AF in "IGAF", UA in "QUAD").
fn ascii_boundary_ok(chars: &[char], start: usize, end: usize) -> bool {
    let first = chars[start];
    let last = chars[end - 1];
    let before_ok = !first.is_ascii_alphanumeric() || start == 0 || !chars[start - 1].is_ascii_alphabetic();
    let after_ok = !last.is_ascii_alphanumeric() || end == chars.len() || !chars[end].is_ascii_alphabetic();
    before_ok && after_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_entry_rewrites_the_mention_without_indexing_the_concept_under_it() {
        let mut lx = Lexicon::default();
        lx.load_tsv("克雷伯菌血流感染\t克雷伯杆菌败血症\tdx\tquery\n冠心病\t冠状动脉粥样硬化性心脏病\tdx\n", "t.tsv").unwrap();
        assert_eq!(lx.rewrite_key(&normalize("肺炎克雷伯菌血流感染"), Scope::Dx), [normalize("肺炎克雷伯杆菌败血症")]);
        assert!(lx.aliases_of(&normalize("克雷伯杆菌败血症")).is_empty(), "not indexed under the alias");
        assert_eq!(lx.aliases_of(&normalize("冠状动脉粥样硬化性心脏病")), [normalize("冠心病")]);
        let e = lx.load_tsv("a\tb\tdx\tsometimes\n", "t.tsv").unwrap_err();
        assert!(e.contains("t.tsv line 1") && e.contains("query"), "{e}");
    }

    #[test]
    fn an_unqualified_disease_defaults_to_its_form_without_complication() {
        assert_eq!(default_forms("带状疱疹"), ["带状疱疹不伴有并发症"]);
        assert!(default_forms("带状疱疹伴并发症").is_empty());
    }

    #[test]
    fn a_cancer_of_a_site_is_its_malignant_neoplasm() {
        assert!(default_forms("乙状结肠癌").contains(&"乙状结肠恶性肿瘤".to_owned()));
        assert!(!default_forms("乙状结肠原位癌").iter().any(|f| f.contains("恶性肿瘤")), "in situ is no malignant neoplasm of the site");
    }

    #[test]
    fn bare_forms_drop_a_limb_side_and_a_severity_but_not_the_heart_side() {
        assert!(bare_forms("左下肢深静脉血栓形成").contains(&"下肢深静脉血栓形成".to_owned()));
        assert!(bare_forms("双侧股静脉血栓形成").contains(&"股静脉血栓形成".to_owned()));
        assert!(bare_forms("左心衰竭").is_empty());
        assert!(bare_forms("右冠状动脉狭窄").is_empty());
        assert_eq!(bare_forms("主动脉瓣重度狭窄"), ["主动脉瓣狭窄"]);
        assert_eq!(bare_forms("左下肢重度水肿"), ["下肢水肿", "左下肢水肿", "下肢重度水肿"]);
    }

    #[test]
    fn rewrites_aliases_inside_mentions() {
        let lex = Lexicon::embedded();
        let v = lex.rewrite_key(&normalize("冠心病不稳定心绞痛"), Scope::Dx);
        assert_eq!(v, vec![normalize("冠状动脉粥样硬化性心脏病不稳定型心绞痛")]);
        assert_eq!(lex.canonical_names("房颤", Scope::Dx), vec!["心房颤动"]);
    }

    #[test]
    fn keeps_longer_canonical_names_whole() {
        let lex = Lexicon::embedded();
        assert!(lex.rewrite_key(&normalize("慢性心功能不全急性加重"), Scope::Dx).is_empty());
        // 高血压 → 高血压病 must not turn 高血压病 into 高血压病病.
        assert!(lex.rewrite_key(&normalize("高血压病3级"), Scope::Dx).iter().all(|v| !v.contains("病病")));
    }

    #[test]
    fn respects_scope_and_word_boundaries() {
        let lex = Lexicon::embedded();
        assert!(lex.canonical_names("PTCA", Scope::Dx).is_empty());
        assert_eq!(lex.canonical_names("PTCA", Scope::Px), vec!["经皮冠状动脉球囊扩张成形术"]);
        assert_eq!(lex.canonical_names("AF", Scope::Dx), vec!["心房颤动"]);
        assert!(lex.rewrite_key("iga肾病", Scope::Dx).is_empty());
    }

    #[test]
    fn umbrella_terms_are_marked_not_rewritten() {
        let lex = Lexicon::embedded();
        assert!(lex.is_umbrella(&normalize("PCI"), Scope::Px));
        assert!(lex.rewrite_key(&normalize("PCI"), Scope::Px).is_empty());
        assert!(!lex.is_umbrella(&normalize("PTCA"), Scope::Px));
    }

    #[test]
    fn bad_lines_name_source_and_line() {
        let mut lex = Lexicon::default();
        let err = lex.load_tsv("# c\nonly-one-column\n", "mine.tsv").unwrap_err();
        assert!(err.contains("mine.tsv line 2"), "{err}");
    }
}
