//! Coding policy as data: the conventions the knowledge agents apply (which findings are
//! coded, umbrella and companion codes, status codes, what a procedure treats, the principal
//! decision list, procedure ranks, count codes) read from commented TOML files under
//! `terminology/policy/`, because hospitals differ on them and a terminology admin must be
//! able to change one without a rebuild.
//!
//! The national default is embedded; a hospital file `extends` it and names only what
//! differs. Everything is checked at load, and an error names the file and the line.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::families::in_families;

/// The policies shipped with jointcoder, by name.
pub const SHIPPED: &[(&str, &str)] = &[
    ("national", include_str!("../../terminology/policy/national.toml")),
    ("paper-hospital", include_str!("../../terminology/policy/paper-hospital.toml")),
];

pub const DEFAULT_POLICY: &str = "national";

/// A policy file that cannot be used, with where.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    pub file: String,
    /// 1-based; 0 when the file itself is the problem.
    pub line: usize,
    pub message: String,
}

/// A finding in the notes that establishes a diagnosis the lists may omit.
#[derive(Clone, Debug)]
pub struct Finding {
    pub id: String,
    pub code: String,
    pub words: Vec<String>,
    /// The organ named just before the word (颈动脉 … 斑块); empty: no condition.
    pub near: Vec<String>,
    pub unless: Vec<String>,
    /// Whether the finding is coded, or only reported in the trace.
    pub coded: bool,
    /// Words of a treatment one of which the course or orders must tell of (an imaging
    /// pneumonia is coded where it is treated); empty: the finding alone is coded.
    pub treated: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Umbrella {
    pub id: String,
    pub code: String,
    pub specific: Vec<String>,
    pub coded: bool,
}

#[derive(Clone, Debug)]
pub struct Companion {
    pub id: String,
    pub code: String,
    pub with: Vec<String>,
    pub facts: Vec<String>,
    pub unless: Vec<String>,
    /// Facts of the record that make the companion wrong though its codes are there (an
    /// infarction whose angiogram shows no significant stenosis is not atherosclerotic).
    pub unless_facts: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Status {
    pub id: String,
    pub code: String,
    pub history: Vec<String>,
    pub unless_done: Vec<String>,
    /// Diagnosis families that exclude the status (Z95.0 beside Z45.0, a device adjusted now).
    pub unless: Vec<String>,
    pub coded: bool,
    /// A procedure of `unless_done` now replaces the earlier device, so its status is not
    /// coded even where the history tells of it (a generator changed, a system taken out or
    /// upgraded); a stent placed now stands beside the earlier ones.
    pub replaced_when_done: bool,
}

/// A diagnosis the knowledge backend establishes from labs, drugs or the history, by a rule
/// of its own ([`LAB_RULES`]; the clinical cut-offs stay in the code): whether it is coded, and
/// as what, and whether the record must also tell of its treatment (a potassium value
/// alone is a lab result; hypokalaemia corrected with potassium is a diagnosis of this stay).
#[derive(Clone, Debug)]
pub struct Lab {
    pub id: String,
    pub code: String,
    pub coded: bool,
    /// Words of a treatment (补钾, 别嘌醇), one of which the course or the orders must tell
    /// of; empty: the rule alone establishes it.
    pub treated: Vec<String>,
    /// Not coded when a code of these families is there already (a hospital that codes a
    /// Killip class alone leaves acute heart failure out beside it).
    pub unless: Vec<String>,
}

/// The rules a `[[lab]]` entry may name.
pub const LAB_RULES: &[&str] = &["diabetes", "hyperlipidaemia-history", "hyperlipidaemia-labs", "hypokalaemia", "hyperkalaemia", "hyponatraemia", "hypomagnesaemia", "hyperhomocysteinaemia", "anaemia", "hyperuricaemia", "infarction-heart-failure", "occasional-beats"];

/// Of two codes for the same concept, the one this policy codes (心功能Ⅲ级 I50.904 →
/// the NYHA code I50.900x008).
#[derive(Clone, Debug)]
pub struct Prefer {
    pub id: String,
    pub from: String,
    pub to: String,
}

/// A combination code: when codes of every family of `with_all` are present, `code` is coded
/// and the codes of `drop` go (I11.9 + I50 → I11.000, no separate I10).
#[derive(Clone, Debug)]
pub struct Combine {
    pub id: String,
    pub with_all: Vec<String>,
    pub code: String,
    pub drop: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Treats {
    pub id: String,
    pub procedures: Vec<String>,
    pub diagnoses: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrincipalKind {
    Drop,
    Keep,
    Treated,
}

impl PrincipalRule {
    /// Whether the chief complaint has one of the rule's words (none: every complaint does).
    pub fn complaint_matches(&self, chief_complaint: &str) -> bool {
        self.complaint.is_empty() || self.complaint.iter().any(|w| complaint_has(chief_complaint, w))
    }
}

/// Whether `text` has `word`, a `#` in it matching one or more digits.
fn complaint_has(text: &str, word: &str) -> bool {
    let Some((before, after)) = word.split_once('#') else { return text.contains(word) };
    text.match_indices(before).any(|(at, _)| {
        let rest = &text[at + before.len()..];
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        digits > 0 && rest[digits..].starts_with(after)
    })
}

/// One rule of the principal decision list.
#[derive(Clone, Debug)]
pub struct PrincipalRule {
    pub id: String,
    pub why: String,
    pub kind: PrincipalKind,
    pub codes: Vec<String>,
    pub when: Vec<String>,
    /// Words of the chief complaint of which one must be there for the rule to apply: the
    /// condition that brought the patient in (发热、咳痰 is the pneumonia's, not the heart
    /// disease listed before it). A `#` in a word stands for a number (术后#天: 术后4天, 术后12天,
    /// not CABG术后8年).
    pub complaint: Vec<String>,
    /// Families of which the principal procedure must be one for the rule to apply.
    pub procedures: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ProcedureRank {
    pub default_tier: u8,
    pub tiers: Vec<Vec<String>>,
    /// Treatments the patient came in with and goes on with (maintenance haemodialysis): in a
    /// record whose words say so, their sessions this stay rank after every other procedure.
    pub continuing: Vec<Continuing>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Continuing {
    pub procedures: Vec<String>,
    pub words: Vec<String>,
    /// Only beside one of these (the heart's procedure the admission was for).
    pub beside: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub vessels: Vec<String>,
    pub stents: Vec<String>,
}

/// The operative-report facts a policy must say the codes of.
pub const PROCEDURE_FACTS: &[&str] = &[
    "angiography-1", "angiography-2", "angiography-3", "angiography-unspecified", "ventriculography",
    "stent-des", "stent-bms", "stent-bioresorbable", "stent-covered", "balloon", "balloon-drug-coated", "bifurcation",
    "ffr", "ifr", "ivus", "oct",
    "pacemaker-single-ventricle", "pacemaker-single-atrium", "pacemaker-single-ventricle-rate-responsive", "pacemaker-single-atrium-rate-responsive", "pacemaker-dual", "pacemaker-unspecified", "pacemaker-leadless", "crt-p", "crt-d", "icd-single", "icd-dual",
    "replace-pacemaker-single", "replace-pacemaker-dual", "replace-pacemaker-unspecified", "replace-crt-p", "replace-crt-d", "replace-icd",
    "ablation-pvi", "ablation-radiofrequency", "ablation-cryo", "ep-study", "mapping-3d",
];

/// The facts a companion rule may name (they are read by the knowledge backend).
pub const FACTS: &[&str] = &["significant_stenosis", "no_significant_stenosis", "pci_done", "troponin_high", "cag_done"];

/// The conventions in force. `Default` is an empty policy (no rules), which stands only while
/// the terminology loads the editions it is checked against.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub name: String,
    pub version: String,
    /// Where it came from: a shipped name or the file's path (and what it extends).
    pub source: String,
    pub findings: Vec<Finding>,
    pub umbrellas: Vec<Umbrella>,
    pub companions: Vec<Companion>,
    pub statuses: Vec<Status>,
    pub labs: Vec<Lab>,
    pub prefers: Vec<Prefer>,
    pub combines: Vec<Combine>,
    pub treats: Vec<Treats>,
    /// Procedures that are the principal procedure only where the principal diagnosis is one
    /// of theirs (P2): resuscitation supports through an arrest the illness the admission was
    /// for.
    pub principal_only_for: Vec<Treats>,
    pub principal: Vec<PrincipalRule>,
    pub procedure_rank: ProcedureRank,
    pub counts: Counts,
    /// Operative-report fact → its codes ([`PROCEDURE_FACTS`]).
    pub procedure_codes: std::collections::BTreeMap<String, Vec<String>>,
}

fn no_words() -> Vec<String> {
    Vec::new()
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFinding {
    id: Spanned<String>,
    code: Spanned<String>,
    #[serde(default = "no_words")]
    words: Vec<String>,
    #[serde(default)]
    near: Vec<String>,
    unless: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    coded: bool,
    #[serde(default)]
    treated: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUmbrella {
    id: Spanned<String>,
    code: Spanned<String>,
    specific: Spanned<Vec<String>>,
    #[serde(default)]
    coded: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCompanion {
    id: Spanned<String>,
    code: Spanned<String>,
    with: Option<Spanned<Vec<String>>>,
    facts: Option<Spanned<Vec<String>>>,
    unless: Option<Spanned<Vec<String>>>,
    unless_facts: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatus {
    id: Spanned<String>,
    code: Spanned<String>,
    history: Vec<String>,
    unless_done: Option<Spanned<Vec<String>>>,
    unless: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    coded: bool,
    #[serde(default)]
    replaced_when_done: bool,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    id: Spanned<String>,
    code: Spanned<String>,
    #[serde(default = "yes")]
    coded: bool,
    #[serde(default)]
    treated: Vec<String>,
    unless: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefer {
    id: Spanned<String>,
    from: Spanned<String>,
    to: Spanned<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCombine {
    id: Spanned<String>,
    with_all: Spanned<Vec<String>>,
    code: Spanned<String>,
    drop: Option<Spanned<Vec<String>>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTreats {
    id: Spanned<String>,
    procedures: Spanned<Vec<String>>,
    diagnoses: Spanned<Vec<String>>,
    #[serde(default = "yes")]
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    id: Spanned<String>,
    #[serde(default)]
    why: String,
    kind: PrincipalKind,
    codes: Option<Spanned<Vec<String>>>,
    when: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    complaint: Vec<String>,
    procedures: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRank {
    default_tier: u8,
    tiers: Spanned<Vec<Vec<String>>>,
    continuing: Option<Spanned<Vec<Continuing>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounts {
    vessels: Spanned<Vec<String>>,
    stents: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    version: String,
    extends: Option<Spanned<String>>,
    #[serde(default)]
    finding: Vec<RawFinding>,
    #[serde(default)]
    umbrella: Vec<RawUmbrella>,
    #[serde(default)]
    companion: Vec<RawCompanion>,
    #[serde(default)]
    status: Vec<RawStatus>,
    #[serde(default)]
    lab: Vec<RawLab>,
    #[serde(default)]
    prefer: Vec<RawPrefer>,
    #[serde(default)]
    combine: Vec<RawCombine>,
    #[serde(default)]
    treats: Vec<RawTreats>,
    #[serde(default)]
    principal_only_for: Vec<RawTreats>,
    principal: Option<Vec<RawPrincipal>>,
    procedure_rank: Option<RawRank>,
    counts: Option<RawCounts>,
    #[serde(default)]
    procedure_codes: std::collections::BTreeMap<String, Spanned<Vec<String>>>,
}

/// What a policy's codes are checked against: the loaded editions.
pub trait CodeCheck {
    /// An exact code of an edition.
    fn is_code(&self, code: &str) -> bool;
    /// A family: some code starts with it.
    fn is_family(&self, prefix: &str) -> bool;
}

/// Accepts every code: for tests of the rules alone (the shipped files are checked against
/// the real tables in `tests/policy.rs`).
pub struct Unchecked;

impl CodeCheck for Unchecked {
    fn is_code(&self, _: &str) -> bool {
        true
    }
    fn is_family(&self, _: &str) -> bool {
        true
    }
}

/// One file being read: its name and text, for line numbers.
struct Source<'a> {
    file: String,
    text: &'a str,
}

impl Source<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    fn error<T>(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> Result<T, PolicyError> {
        Err(PolicyError { file: self.file.clone(), line: self.line(span.start), message: message.into() })
    }

    fn code(&self, check: &dyn CodeCheck, code: &Spanned<String>, what: &str) -> Result<String, PolicyError> {
        if check.is_code(code.get_ref()) {
            Ok(code.get_ref().clone())
        } else {
            self.error(code.span(), format!("{what}: {} is not a code of the loaded editions", code.get_ref()))
        }
    }

    fn families(&self, check: &dyn CodeCheck, list: &Spanned<Vec<String>>, what: &str) -> Result<Vec<String>, PolicyError> {
        self.some_families(check, Some(list), what)
    }

    /// An optional list of families (absent: none).
    fn some_families(&self, check: &dyn CodeCheck, list: Option<&Spanned<Vec<String>>>, what: &str) -> Result<Vec<String>, PolicyError> {
        let Some(list) = list else { return Ok(Vec::new()) };
        for p in list.get_ref() {
            if p.is_empty() || !check.is_family(p) {
                return self.error(list.span(), format!("{what}: {p:?} is no code family of the loaded editions"));
            }
        }
        Ok(list.get_ref().clone())
    }

    fn words(&self, id: &Spanned<String>, words: &[String], what: &str) -> Result<(), PolicyError> {
        if words.is_empty() || words.iter().any(|w| w.trim().is_empty()) {
            return self.error(id.span(), format!("{} {what}: needs words, none empty", id.get_ref()));
        }
        Ok(())
    }
}

/// Entries keyed by id: a later one with the same id replaces the earlier; disabled ones go.
fn merge<T: Clone>(base: &mut Vec<(String, T)>, next: Vec<(String, bool, T)>) {
    for (id, enabled, item) in next {
        let at = base.iter().position(|(b, _)| *b == id);
        match (at, enabled) {
            (Some(i), true) => base[i].1 = item,
            (Some(i), false) => {
                base.remove(i);
            }
            (None, true) => base.push((id, item)),
            (None, false) => {}
        }
    }
}

/// Procedure families paired with diagnosis families (`[[treats]]`, `[[principal_only_for]]`),
/// checked against the editions.
fn read_treats(src: &Source<'_>, check: &dyn CodeCheck, raw: Vec<RawTreats>, what: &str) -> Result<Vec<(String, bool, Treats)>, PolicyError> {
    let mut out = Vec::new();
    for t in raw {
        let item = Treats {
            id: t.id.get_ref().clone(),
            procedures: src.families(check, &t.procedures, &format!("{what} procedures"))?,
            diagnoses: src.families(check, &t.diagnoses, &format!("{what} diagnoses"))?,
        };
        out.push((item.id.clone(), t.enabled, item));
    }
    Ok(out)
}

/// Ids must be unique within one file.
fn unique_ids<'a>(src: &Source<'_>, ids: impl Iterator<Item = &'a Spanned<String>>, what: &str) -> Result<(), PolicyError> {
    let mut seen = HashSet::new();
    for id in ids {
        if id.get_ref().trim().is_empty() {
            return src.error(id.span(), format!("{what}: an empty id"));
        }
        if !seen.insert(id.get_ref().clone()) {
            return src.error(id.span(), format!("{what} {} is given twice", id.get_ref()));
        }
    }
    Ok(())
}

/// The policy being assembled, lists keyed by id.
#[derive(Default)]
struct Builder {
    name: String,
    version: String,
    sources: Vec<String>,
    findings: Vec<(String, Finding)>,
    umbrellas: Vec<(String, Umbrella)>,
    companions: Vec<(String, Companion)>,
    statuses: Vec<(String, Status)>,
    labs: Vec<(String, Lab)>,
    prefers: Vec<(String, Prefer)>,
    combines: Vec<(String, Combine)>,
    treats: Vec<(String, Treats)>,
    principal_only_for: Vec<(String, Treats)>,
    principal: Option<Vec<PrincipalRule>>,
    procedure_rank: Option<ProcedureRank>,
    counts: Option<Counts>,
    procedure_codes: std::collections::BTreeMap<String, Vec<String>>,
}

impl Builder {
    /// Reads one file over what is there (its `extends` first).
    fn read(&mut self, src: &Source<'_>, check: &dyn CodeCheck, depth: usize) -> Result<(), PolicyError> {
        let raw: RawPolicy = toml::from_str(src.text).map_err(|e| PolicyError {
            file: src.file.clone(),
            line: e.span().map(|s| src.line(s.start)).unwrap_or(0),
            message: e.message().to_owned(),
        })?;
        if let Some(base) = &raw.extends {
            let Some((name, text)) = SHIPPED.iter().find(|(n, _)| n == base.get_ref()) else {
                let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
                return src.error(base.span(), format!("extends {:?}: no such policy (shipped: {})", base.get_ref(), names.join(", ")));
            };
            if depth > 4 {
                return src.error(base.span(), "extends: too deep (a cycle?)");
            }
            self.read(&Source { file: format!("{name}.toml (shipped)"), text }, check, depth + 1)?;
        }
        unique_ids(src, raw.finding.iter().map(|f| &f.id), "finding")?;
        unique_ids(src, raw.umbrella.iter().map(|f| &f.id), "umbrella")?;
        unique_ids(src, raw.companion.iter().map(|f| &f.id), "companion")?;
        unique_ids(src, raw.status.iter().map(|f| &f.id), "status")?;
        unique_ids(src, raw.treats.iter().map(|f| &f.id), "treats")?;
        unique_ids(src, raw.principal_only_for.iter().map(|f| &f.id), "principal_only_for")?;
        unique_ids(src, raw.prefer.iter().map(|f| &f.id), "prefer")?;
        unique_ids(src, raw.lab.iter().map(|f| &f.id), "lab")?;
        unique_ids(src, raw.combine.iter().map(|f| &f.id), "combine")?;
        if let Some(p) = &raw.principal {
            unique_ids(src, p.iter().map(|f| &f.id), "principal")?;
        }

        let mut findings = Vec::new();
        for f in raw.finding {
            src.words(&f.id, &f.words, "finding")?;
            let item = Finding {
                id: f.id.get_ref().clone(),
                code: src.code(check, &f.code, "finding")?,
                unless: src.some_families(check, f.unless.as_ref(), "finding unless")?,
                words: f.words,
                near: f.near,
                coded: f.coded,
                treated: f.treated,
            };
            findings.push((item.id.clone(), f.enabled, item));
        }
        merge(&mut self.findings, findings);

        let mut umbrellas = Vec::new();
        for u in raw.umbrella {
            let item = Umbrella {
                id: u.id.get_ref().clone(),
                code: src.code(check, &u.code, "umbrella")?,
                specific: src.families(check, &u.specific, "umbrella specific")?,
                coded: u.coded,
            };
            umbrellas.push((item.id.clone(), u.enabled, item));
        }
        merge(&mut self.umbrellas, umbrellas);

        let mut companions = Vec::new();
        for c in raw.companion {
            let facts = c.facts.as_ref().map(|f| f.get_ref().clone()).unwrap_or_default();
            let unless_facts = c.unless_facts.as_ref().map(|f| f.get_ref().clone()).unwrap_or_default();
            for (list, named) in [(&facts, &c.facts), (&unless_facts, &c.unless_facts)] {
                if let Some(f) = list.iter().find(|f| !FACTS.contains(&f.as_str())) {
                    return src.error(named.as_ref().map(|f| f.span()).unwrap_or(c.id.span()), format!("companion {}: unknown fact {f:?} (known: {})", c.id.get_ref(), FACTS.join(", ")));
                }
            }
            let item = Companion {
                id: c.id.get_ref().clone(),
                code: src.code(check, &c.code, "companion")?,
                with: src.some_families(check, c.with.as_ref(), "companion with")?,
                unless: src.some_families(check, c.unless.as_ref(), "companion unless")?,
                facts,
                unless_facts,
            };
            companions.push((item.id.clone(), c.enabled, item));
        }
        merge(&mut self.companions, companions);

        let mut statuses = Vec::new();
        for s in raw.status {
            src.words(&s.id, &s.history, "status history")?;
            let item = Status {
                id: s.id.get_ref().clone(),
                code: src.code(check, &s.code, "status")?,
                unless_done: src.some_families(check, s.unless_done.as_ref(), "status unless_done")?,
                unless: src.some_families(check, s.unless.as_ref(), "status unless")?,
                history: s.history,
                coded: s.coded,
                replaced_when_done: s.replaced_when_done,
            };
            statuses.push((item.id.clone(), s.enabled, item));
        }
        merge(&mut self.statuses, statuses);

        let mut labs = Vec::new();
        for l in raw.lab {
            if !LAB_RULES.contains(&l.id.get_ref().as_str()) {
                return src.error(l.id.span(), format!("lab: unknown rule {:?} (known: {})", l.id.get_ref(), LAB_RULES.join(", ")));
            }
            let item = Lab {
                id: l.id.get_ref().clone(),
                code: src.code(check, &l.code, "lab")?,
                coded: l.coded,
                treated: l.treated,
                unless: src.some_families(check, l.unless.as_ref(), "lab unless")?,
            };
            labs.push((item.id.clone(), true, item));
        }
        merge(&mut self.labs, labs);

        let mut prefers = Vec::new();
        for p in raw.prefer {
            let item = Prefer { id: p.id.get_ref().clone(), from: src.code(check, &p.from, "prefer from")?, to: src.code(check, &p.to, "prefer to")? };
            prefers.push((item.id.clone(), p.enabled, item));
        }
        merge(&mut self.prefers, prefers);

        let mut combines = Vec::new();
        for c in raw.combine {
            let item = Combine {
                id: c.id.get_ref().clone(),
                with_all: src.families(check, &c.with_all, "combine with_all")?,
                code: src.code(check, &c.code, "combine")?,
                drop: src.some_families(check, c.drop.as_ref(), "combine drop")?,
            };
            combines.push((item.id.clone(), c.enabled, item));
        }
        merge(&mut self.combines, combines);

        merge(&mut self.treats, read_treats(src, check, raw.treats, "treats")?);
        merge(&mut self.principal_only_for, read_treats(src, check, raw.principal_only_for, "principal_only_for")?);

        if let Some(rules) = raw.principal {
            let mut out = Vec::new();
            for r in rules {
                let needs_codes = r.kind != PrincipalKind::Treated;
                if needs_codes == r.codes.as_ref().is_none_or(|c| c.get_ref().is_empty()) {
                    let m = if needs_codes { "needs codes" } else { "takes no codes (it reads [[treats]])" };
                    return src.error(r.id.span(), format!("principal {}: kind {:?} {m}", r.id.get_ref(), r.kind));
                }
                out.push(PrincipalRule {
                    id: r.id.get_ref().clone(),
                    codes: src.some_families(check, r.codes.as_ref(), "principal codes")?,
                    when: src.some_families(check, r.when.as_ref(), "principal when")?,
                    complaint: r.complaint,
                    procedures: src.some_families(check, r.procedures.as_ref(), "principal procedures")?,
                    why: r.why,
                    kind: r.kind,
                });
            }
            self.principal = Some(out);
        }
        if let Some(r) = raw.procedure_rank {
            for tier in r.tiers.get_ref() {
                for p in tier {
                    if !check.is_family(p) {
                        return src.error(r.tiers.span(), format!("procedure_rank: {p:?} is no code family of the loaded editions"));
                    }
                }
            }
            let mut continuing = Vec::new();
            if let Some(list) = r.continuing {
                for c in list.get_ref() {
                    if let Some(p) = c.procedures.iter().find(|p| !check.is_family(p)) {
                        return src.error(list.span(), format!("procedure_rank.continuing: {p:?} is no code family of the loaded editions"));
                    }
                    if let Some(p) = c.beside.iter().find(|p| !check.is_family(p)) {
                        return src.error(list.span(), format!("procedure_rank.continuing: beside {p:?} is no code family of the loaded editions"));
                    }
                    if c.words.is_empty() {
                        return src.error(list.span(), "procedure_rank.continuing: an entry needs the words that tell the treatment goes on");
                    }
                }
                continuing = list.into_inner();
            }
            self.procedure_rank = Some(ProcedureRank { default_tier: r.default_tier, tiers: r.tiers.into_inner(), continuing });
        }
        if let Some(c) = raw.counts {
            for list in [&c.vessels, &c.stents] {
                if list.get_ref().len() != 4 {
                    return src.error(list.span(), "counts: four codes (for 1, 2, 3, 4 or more)");
                }
                for code in list.get_ref() {
                    if !check.is_code(code) {
                        return src.error(list.span(), format!("counts: {code} is not a code of the loaded editions"));
                    }
                }
            }
            self.counts = Some(Counts { vessels: c.vessels.into_inner(), stents: c.stents.into_inner() });
        }
        for (fact, codes) in raw.procedure_codes {
            if !PROCEDURE_FACTS.contains(&fact.as_str()) {
                return src.error(codes.span(), format!("procedure_codes: unknown fact {fact:?} (known: {})", PROCEDURE_FACTS.join(", ")));
            }
            for code in codes.get_ref() {
                if !check.is_code(code) {
                    return src.error(codes.span(), format!("procedure_codes {fact}: {code} is not a code of the loaded editions"));
                }
            }
            self.procedure_codes.insert(fact, codes.into_inner());
        }
        self.name = raw.name;
        self.version = raw.version;
        self.sources.push(src.file.clone());
        Ok(())
    }

    fn finish(self, file: &str) -> Result<Policy, PolicyError> {
        let missing = |what: &str| PolicyError { file: file.to_owned(), line: 0, message: format!("no {what} (in the file or what it extends)") };
        if let Some(fact) = PROCEDURE_FACTS.iter().find(|f| !self.procedure_codes.contains_key(**f)) {
            return Err(missing(&format!("procedure_codes.{fact}")));
        }
        Ok(Policy {
            name: self.name,
            version: self.version,
            source: self.sources.join(" + "),
            findings: self.findings.into_iter().map(|(_, f)| f).collect(),
            umbrellas: self.umbrellas.into_iter().map(|(_, f)| f).collect(),
            companions: self.companions.into_iter().map(|(_, f)| f).collect(),
            statuses: self.statuses.into_iter().map(|(_, f)| f).collect(),
            labs: self.labs.into_iter().map(|(_, f)| f).collect(),
            prefers: self.prefers.into_iter().map(|(_, f)| f).collect(),
            combines: self.combines.into_iter().map(|(_, f)| f).collect(),
            treats: self.treats.into_iter().map(|(_, f)| f).collect(),
            principal_only_for: self.principal_only_for.into_iter().map(|(_, f)| f).collect(),
            principal: self.principal.ok_or_else(|| missing("[[principal]] decision list"))?,
            procedure_rank: self.procedure_rank.ok_or_else(|| missing("[procedure_rank]"))?,
            counts: self.counts.ok_or_else(|| missing("[counts]"))?,
            procedure_codes: self.procedure_codes,
        })
    }
}

impl Policy {
    /// Parses one policy text (`file` names it in errors), checked against the editions.
    pub fn parse(file: &str, text: &str, check: &dyn CodeCheck) -> Result<Policy, PolicyError> {
        let mut b = Builder::default();
        b.read(&Source { file: file.to_owned(), text }, check, 0)?;
        b.finish(file)
    }

    /// The policy the `policy` setting names: a shipped name, or a path to a file; the
    /// national default when unset.
    pub fn load(setting: Option<&str>, check: &dyn CodeCheck) -> Result<Policy, PolicyError> {
        let setting = setting.filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT_POLICY);
        if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == setting) {
            return Policy::parse(&format!("{name}.toml (shipped)"), text, check);
        }
        let path = Path::new(setting);
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: path.display().to_string(),
            line: 0,
            message: format!("cannot read the policy file: {e} (or name a shipped policy: {})", SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")),
        })?;
        Policy::parse(&path.display().to_string(), &text, check)
    }

    /// The lab rule's entry where the policy codes it.
    pub fn coded_lab(&self, id: &str) -> Option<&Lab> {
        self.labs.iter().find(|l| l.id == id && l.coded)
    }

    /// The codes of an operative-report fact ([`PROCEDURE_FACTS`]; checked complete at load).
    pub fn codes_of(&self, fact: &str) -> &[String] {
        self.procedure_codes.get(fact).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The principal-procedure tier of a code (lower first).
    /// Whether a procedure continues a treatment the record says the patient was already on,
    /// beside a procedure the admission was for.
    pub fn continues_treatment(&self, code: &str, others: &[String], says: impl Fn(&str) -> bool) -> bool {
        self.procedure_rank.continuing.iter().any(|c| {
            in_families(code, &c.procedures) && others.iter().any(|o| in_families(o, &c.beside)) && c.words.iter().any(|w| says(w))
        })
    }

    pub fn procedure_tier(&self, code: &str) -> u8 {
        self.procedure_rank
            .tiers
            .iter()
            .position(|tier| in_families(code, tier))
            .map(|t| t as u8)
            .unwrap_or(self.procedure_rank.default_tier)
    }

    /// The diagnosis families a procedure treats.
    pub fn treated_by<'a>(&'a self, procedure: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.treats
            .iter()
            .filter(move |t| in_families(procedure, &t.procedures))
            .flat_map(|t| t.diagnoses.iter().map(String::as_str))
    }

    /// Whether `procedure` may be the principal procedure beside `principal_diagnosis`: the
    /// rule of `principal_only_for` it falls under, when the diagnosis is not one of its own.
    pub fn principal_only_for_failing(&self, procedure: &str, principal_diagnosis: &str) -> Option<&str> {
        self.principal_only_for
            .iter()
            .find(|t| in_families(procedure, &t.procedures) && !in_families(principal_diagnosis, &t.diagnoses))
            .map(|t| t.id.as_str())
    }

    /// The count code for `n` (vessels or stents): none for 0, the last for 4 or more.
    pub fn count_code(list: &[String], n: usize) -> Option<&str> {
        if n == 0 {
            None
        } else {
            list.get((n - 1).min(list.len().saturating_sub(1))).map(String::as_str)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_number_in_a_complaint_word_matches_any_digits() {
        assert!(super::complaint_has("起搏器植入术后9天，左胸囊袋肿胀疼痛3天", "术后#天"));
        assert!(super::complaint_has("起搏器术后12天,头晕、黑矇1天", "术后#天"));
        assert!(!super::complaint_has("CABG术后8年，胸痛再发1月", "术后#天"));
        assert!(!super::complaint_has("术后天", "术后#天"));
        assert!(super::complaint_has("发热、咳痰3天", "咳痰"));
    }

    use super::*;

    /// A code table small enough to write here.
    struct Codes(&'static [&'static str]);

    impl CodeCheck for Codes {
        fn is_code(&self, code: &str) -> bool {
            self.0.contains(&code)
        }
        fn is_family(&self, prefix: &str) -> bool {
            self.0.iter().any(|c| c.starts_with(prefix))
        }
    }

    use super::Unchecked as Any;

    #[test]
    fn an_extending_file_replaces_by_id_and_keeps_the_rest() {
        let national = Policy::load(None, &Any).unwrap();
        let umbrella = national.umbrellas.iter().find(|u| u.id == "arrhythmia").unwrap();
        assert!(!umbrella.coded);
        let hospital = Policy::load(Some("paper-hospital"), &Any).unwrap();
        assert!(hospital.umbrellas.iter().find(|u| u.id == "arrhythmia").unwrap().coded);
        assert_eq!(hospital.findings.len(), national.findings.len(), "same ids, replaced in place");
        assert!(hospital.findings.iter().find(|f| f.id == "lung-nodule").unwrap().coded);
        assert_eq!(hospital.principal.len(), 1, "its own decision list replaces the national one whole");
        assert_eq!(hospital.treats.len(), national.treats.len(), "what it does not name is inherited");
        assert_eq!(hospital.procedure_codes, national.procedure_codes);
        assert!(hospital.source.contains("national") && hospital.source.contains("paper-hospital"));

        let text = "name = \"h\"\nversion = \"1\"\nextends = \"national\"\n[[finding]]\nid = \"fatty-liver\"\ncode = \"K76.000\"\nwords = [\"脂肪肝\"]\nenabled = false\n";
        let p = Policy::parse("h.toml", text, &Any).unwrap();
        assert!(p.findings.iter().all(|f| f.id != "fatty-liver"));
        assert_eq!(p.findings.len(), national.findings.len() - 1);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let codes = Codes(&["I49.900", "I48.x01", "I44.200", "00.4000", "00.4100", "00.4200", "00.4300"]);
        let bad_code = "name = \"h\"\nversion = \"1\"\n\n[[umbrella]]\nid = \"a\"\ncode = \"I49.999\"\nspecific = [\"I48\"]\n";
        let e = Policy::parse("h.toml", bad_code, &codes).unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("h.toml", 6), "{e}");
        assert!(e.message.contains("I49.999"), "{e}");

        let bad_family = "name = \"h\"\nversion = \"1\"\n[[umbrella]]\nid = \"a\"\ncode = \"I49.900\"\nspecific = [\"I48\", \"Q99\"]\n";
        let e = Policy::parse("h.toml", bad_family, &codes).unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.contains("Q99"), "{e}");

        let unknown_key = "name = \"h\"\nversion = \"1\"\n[[umbrella]]\nid = \"a\"\ncode = \"I49.900\"\nspecific = [\"I48\"]\ncodedd = true\n";
        let e = Policy::parse("h.toml", unknown_key, &codes).unwrap_err();
        assert_eq!(e.line, 7, "{e}");

        let bad_kind = "name = \"h\"\nversion = \"1\"\nextends = \"national\"\n[[principal]]\nid = \"x\"\nkind = \"prefer\"\ncodes = [\"I48\"]\n";
        let e = Policy::parse("h.toml", bad_kind, &Any).unwrap_err();
        assert_eq!(e.line, 6, "{e}");

        let twice = "name = \"h\"\nversion = \"1\"\nextends = \"national\"\n[[principal]]\nid = \"x\"\nkind = \"treated\"\n[[principal]]\nid = \"x\"\nkind = \"treated\"\n";
        let e = Policy::parse("h.toml", twice, &Any).unwrap_err();
        assert_eq!(e.line, 8, "{e}");

        let bad_lab = "name = \"h\"\nversion = \"1\"\nextends = \"national\"\n[[lab]]\nid = \"gout\"\ncode = \"M10.900\"\n";
        let e = Policy::parse("h.toml", bad_lab, &Any).unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("hypokalaemia"), "names the known rules: {e}");

        let no_words = "name = \"h\"\nversion = \"1\"\nextends = \"national\"\n[procedure_rank]\ndefault_tier = 2\ntiers = [[\"36.07\"]]\ncontinuing = [{ procedures = [\"39.95\"], beside = [\"88.5\"], words = [] }]\n";
        let e = Policy::parse("h.toml", no_words, &Any).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("continuing"), "{e}");

        let no_base = "name = \"h\"\nversion = \"1\"\nextends = \"elsewhere\"\n";
        let e = Policy::parse("h.toml", no_base, &Any).unwrap_err();
        assert_eq!(e.line, 3, "{e}");

        let incomplete = "name = \"h\"\nversion = \"1\"\n";
        assert!(Policy::parse("h.toml", incomplete, &Any).unwrap_err().message.contains("in the file or what it extends"));

        let e = Policy::load(Some("/nowhere/policy.toml"), &Any).unwrap_err();
        assert!(e.file.contains("/nowhere/policy.toml") && e.message.contains("national"), "{e}");
    }

    #[test]
    fn tiers_treats_and_counts_read_from_the_policy() {
        let p = Policy::load(None, &Any).unwrap();
        // Maintenance haemodialysis ranks last beside the heart's procedure, where the record says so.
        let hd = |others: &[&str], words: &str| p.continues_treatment("39.9500", &others.iter().map(|s| s.to_string()).collect::<Vec<_>>(), |w| words.contains(w));
        assert!(hd(&["88.5500", "39.9500"], "慢性肾脏病5期 维持性血液透析"));
        assert!(!hd(&["88.5500", "39.9500"], "急性肾损伤，行血液透析"), "no maintenance told");
        assert!(!hd(&["38.9502", "39.9500"], "维持性血液透析"), "beside a line only");
        assert!(p.procedure_tier("36.0700") < p.procedure_tier("88.5500"));
        assert!(p.procedure_tier("88.5500") < p.procedure_tier("00.4500"));
        assert!(p.treated_by("36.0700").any(|d| d == "I21"));
        assert_eq!(Policy::count_code(&p.counts.stents, 2), Some("00.4600"));
        assert_eq!(Policy::count_code(&p.counts.vessels, 7), Some("00.4300"));
        assert_eq!(Policy::count_code(&p.counts.vessels, 0), None);
    }
}
