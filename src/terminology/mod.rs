//! Code systems, lexicon, code-also rules, crosswalks and retrieval: everything a coder or a
//! terminology admin asks of the national tables. Knows nothing of FHIR or HTTP.

pub mod code_also;
pub mod codesystem;
pub mod crosswalk;
pub mod families;
pub mod index;
pub mod lexicon;
pub mod normalize;
pub mod policy;
pub mod uploads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use code_also::{CodeAlsoRule, CodeAlsoRules};
pub use codesystem::{CodeKind, CodeSystem, Concept, EditionMeta};
pub use crosswalk::{Crosswalk, Translation};
pub use index::{Candidate, TermIndex};
pub use lexicon::{Lexicon, Scope};

use index::embedded::EmbeddedIndex;

#[derive(Debug, thiserror::Error)]
pub enum TerminologyError {
    #[error("unknown code system or edition: {0}")]
    UnknownEdition(String),
    #[error("code system {system} has no version {version}")]
    UnknownVersion { system: String, version: String },
    #[error("code {code} is not in {system}")]
    UnknownCode { system: String, code: String },
    #[error("no crosswalk from {0}")]
    NoCrosswalk(String),
    #[error("terminology file: {0}")]
    Io(String),
    #[error("terminology data: {0}")]
    Parse(String),
    #[error("index: {0}")]
    Index(String),
    #[error("coding policy: {0}")]
    Policy(#[from] policy::PolicyError),
}

pub const EMBEDDED_MANIFEST: &str = include_str!("../../terminology/editions.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(default, rename = "edition")]
    pub editions: Vec<EditionSpec>,
    #[serde(default, rename = "crosswalk")]
    pub crosswalks: Vec<CrosswalkSpec>,
}

/// An edition to load: the built-in ones from the manifest, or an admin's own `code,name` CSV.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct EditionSpec {
    pub id: String,
    /// Relative to the terminology directory, or absolute.
    pub file: PathBuf,
    pub version: String,
    #[serde(default)]
    pub title: Option<String>,
    /// Canonical URI; defaults to `{canonical_base}/CodeSystem/{id}`.
    #[serde(default)]
    pub url: Option<String>,
    /// `icd10` or `icd9cm3`; guessed from the first code when absent.
    #[serde(default)]
    pub kind: Option<CodeKind>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub headers: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CrosswalkSpec {
    pub id: String,
    pub from: String,
    pub to: String,
    pub file: PathBuf,
}

/// What [`Terminology::load`] needs; filled from the server configuration.
#[derive(Debug, Clone)]
pub struct TerminologyOptions {
    pub dir: PathBuf,
    pub canonical_base: String,
    /// Where built indexes are cached; `None` keeps them in memory.
    pub cache_dir: Option<PathBuf>,
    pub extra_editions: Vec<EditionSpec>,
    pub extra_lexicons: Vec<PathBuf>,
    /// Learned aliases (`jointcoder train`), a TSV in the lexicon format, if present.
    pub learned_lexicon: Option<PathBuf>,
    /// Load only these edition ids from the manifest (all when empty).
    pub only: Vec<String>,
    /// The coding policy: a shipped name or a file; `None` is the national default.
    pub policy: Option<String>,
}

impl TerminologyOptions {
    pub fn new(dir: impl Into<PathBuf>) -> TerminologyOptions {
        TerminologyOptions {
            dir: dir.into(),
            canonical_base: DEFAULT_CANONICAL_BASE.to_owned(),
            cache_dir: None,
            extra_editions: Vec::new(),
            extra_lexicons: Vec::new(),
            learned_lexicon: None,
            only: Vec::new(),
            policy: None,
        }
    }
}

pub const DEFAULT_CANONICAL_BASE: &str = "https://jointcoder.org/fhir";

/// The loaded terminology: every edition and version, the lexicon, rules, crosswalks and index.
/// Cloning is cheap (editions and their indexes are shared): an admin's new version is built
/// on a clone and swapped in whole.
#[derive(Clone)]
pub struct Terminology {
    /// id → versions in load order; the last is current unless `current` names another.
    editions: HashMap<String, Vec<Arc<CodeSystem>>>,
    /// id → the current version, where an admin installed later versions without making
    /// them current (a new version is served beside the current one, not instead of it).
    current: HashMap<String, String>,
    order: Vec<String>,
    crosswalks: HashMap<String, (CrosswalkSpec, Crosswalk)>,
    pub lexicon: Arc<Lexicon>,
    pub code_also: CodeAlsoRules,
    index: EmbeddedIndex,
    pub canonical_base: String,
    /// The coding conventions in force, checked against these editions at load.
    pub policy: Arc<policy::Policy>,
    /// The manifest's editions, which a policy's codes are checked against.
    national_ids: Vec<String>,
}

/// A policy's codes are checked against the national clinical editions of the manifest
/// (current versions), the ones coding uses; where none of a kind is loaded (a training run over other
/// tables), codes of that kind cannot be checked.
struct NationalCheck<'a> {
    terminology: &'a Terminology,
    ids: Vec<String>,
}

impl Terminology {
    /// Reads and checks a policy (a shipped name or a file) against these editions.
    pub fn load_policy(&self, setting: Option<&str>) -> Result<policy::Policy, policy::PolicyError> {
        policy::Policy::load(setting, &NationalCheck { terminology: self, ids: self.national_ids.clone() })
    }
}

impl NationalCheck<'_> {
    fn check(&self, code: &str, found: impl Fn(&CodeSystem) -> bool) -> bool {
        let kind = CodeKind::guess(code);
        let mut of_kind = self
            .ids
            .iter()
            .filter_map(|id| self.terminology.editions.get(id).and_then(|v| v.last()))
            .filter(|cs| cs.meta.kind == kind)
            .peekable();
        of_kind.peek().is_none() || of_kind.any(|cs| found(cs))
    }
}

impl policy::CodeCheck for NationalCheck<'_> {
    fn is_code(&self, code: &str) -> bool {
        self.check(code, |cs| cs.get(code).is_some())
    }
    fn is_family(&self, prefix: &str) -> bool {
        self.check(prefix, |cs| cs.has_prefix(prefix))
    }
}

/// Short names users type for the two clinical editions.
fn alias_system(system: &str) -> &str {
    match system {
        "icd10" | "icd-10" | "ICD10" | "ICD-10" => "icd-10-cn-clinical",
        "icd9cm3" | "icd9" | "icd-9-cm-3" | "ICD9CM3" => "icd-9-cm-3-cn-clinical",
        "icd10-insurance" => "icd-10-cn-insurance",
        "icd9cm3-insurance" => "icd-9-cm-3-cn-insurance",
        other => other,
    }
}

fn resolve_path(dir: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_owned() } else { dir.join(p) }
}

/// Reads the category rows of a headers table into code → name.
fn read_headers(path: &Path) -> HashMap<String, String> {
    match CodeSystem::read_csv(path) {
        Ok(rows) => rows.into_iter().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "header table unreadable; parents will have no display");
            HashMap::new()
        }
    }
}

impl Terminology {
    /// Whether `dir` holds the national tables named in the manifest.
    pub fn dir_has_tables(dir: &Path) -> bool {
        let manifest: Manifest = toml::from_str(EMBEDDED_MANIFEST).expect("embedded manifest parses");
        manifest.editions.iter().take(2).all(|e| dir.join(&e.file).is_file())
    }

    pub fn load(opts: &TerminologyOptions) -> Result<Terminology, TerminologyError> {
        let manifest_path = opts.dir.join("editions.toml");
        let manifest: Manifest = if manifest_path.is_file() {
            let text = std::fs::read_to_string(&manifest_path).map_err(|e| TerminologyError::Io(e.to_string()))?;
            toml::from_str(&text).map_err(|e| TerminologyError::Parse(format!("{}: {e}", manifest_path.display())))?
        } else {
            toml::from_str(EMBEDDED_MANIFEST).expect("embedded manifest parses")
        };

        let mut lexicon = Lexicon::embedded();
        lexicon.load_shared_lists(&opts.dir);
        for p in opts.extra_lexicons.iter().chain(opts.learned_lexicon.iter()) {
            let text = std::fs::read_to_string(p).map_err(|e| TerminologyError::Io(format!("{}: {e}", p.display())))?;
            lexicon.load_tsv(&text, &p.display().to_string()).map_err(TerminologyError::Parse)?;
        }
        let lexicon = Arc::new(lexicon);

        let mut code_also = CodeAlsoRules::embedded();
        let us_notes = opts.dir.join("icd9cm_vol3_tabular_us_notes.csv");
        if us_notes.is_file() {
            code_also.load_us_notes(&us_notes).map_err(TerminologyError::Parse)?;
        }

        let specs: Vec<EditionSpec> = manifest
            .editions
            .iter()
            .filter(|e| opts.only.is_empty() || opts.only.contains(&e.id))
            .cloned()
            .chain(opts.extra_editions.iter().cloned())
            .collect();
        // Editions are independent: load them on all cores.
        let loaded: Vec<Result<CodeSystem, TerminologyError>> = std::thread::scope(|s| {
            let handles: Vec<_> = specs
                .iter()
                .map(|spec| s.spawn(|| load_edition(spec, &opts.dir, &opts.canonical_base)))
                .collect();
            handles.into_iter().map(|h| h.join().expect("edition loader panicked")).collect()
        });

        let mut t = Terminology {
            editions: HashMap::new(),
            current: HashMap::new(),
            order: Vec::new(),
            crosswalks: HashMap::new(),
            lexicon: lexicon.clone(),
            code_also,
            index: EmbeddedIndex::new(lexicon),
            canonical_base: opts.canonical_base.clone(),
            // Loaded below, once the editions it is checked against are here.
            policy: Arc::default(),
            // Coding uses the clinical editions; the insurance editions have codes they lack.
            national_ids: manifest.editions.iter().filter(|e| e.role.as_deref().is_none_or(|r| r == "clinical")).map(|e| e.id.clone()).collect(),
        };
        let cache = opts.cache_dir.as_ref().map(|d| d.join("index"));
        if let Some(c) = &cache {
            let _ = std::fs::create_dir_all(c);
        }
        for cs in loaded {
            t.add_edition(cs?, cache.as_deref())?;
        }
        for spec in manifest.crosswalks {
            if !t.editions.contains_key(&spec.from) {
                continue;
            }
            let path = resolve_path(&opts.dir, &spec.file);
            if path.is_file() {
                let cw = Crosswalk::load(&path)?;
                t.crosswalks.insert(spec.from.clone(), (spec, cw));
            }
        }
        t.policy = Arc::new(t.load_policy(opts.policy.as_deref())?);
        Ok(t)
    }

    /// Adds an edition (a new one, or a new version beside the old, which becomes current).
    pub fn add_edition(&mut self, cs: CodeSystem, cache: Option<&Path>) -> Result<(), TerminologyError> {
        let cs = Arc::new(cs);
        self.index.add_edition(cs.clone(), cache)?;
        let id = cs.meta.id.clone();
        if !self.order.contains(&id) {
            self.order.push(id.clone());
        }
        let versions = self.editions.entry(id).or_default();
        versions.retain(|v| v.meta.version != cs.meta.version);
        versions.push(cs);
        Ok(())
    }

    /// A copy with one more edition version (or a version replaced), its index built in memory.
    /// It becomes the version answered when none is named (and the one `$code` codes with)
    /// only with `make_current`, or when the edition is new.
    pub fn with_edition(&self, cs: CodeSystem, make_current: bool) -> Result<Terminology, TerminologyError> {
        let mut next = self.clone();
        next.install_edition(cs, make_current)?;
        Ok(next)
    }

    /// Adds a version as [`Terminology::with_edition`] does, in place.
    pub fn install_edition(&mut self, cs: CodeSystem, make_current: bool) -> Result<(), TerminologyError> {
        let id = cs.meta.id.clone();
        let previous = self.editions.get(&id).map(|versions| self.current_of(&id, versions).meta.version.clone());
        self.add_edition(cs, None)?;
        match previous {
            Some(p) if !make_current => {
                self.current.insert(id, p);
            }
            _ => {
                self.current.remove(&id);
            }
        }
        Ok(())
    }

    /// The current version of a stored edition: the one `current` names, else the last.
    fn current_of<'a>(&self, id: &str, versions: &'a [Arc<CodeSystem>]) -> &'a Arc<CodeSystem> {
        self.current
            .get(id)
            .and_then(|v| versions.iter().find(|cs| &cs.meta.version == v))
            .unwrap_or_else(|| versions.last().expect("an edition has a version"))
    }

    /// Resolves a system (resource id, canonical URL or short alias) and optional version.
    pub fn edition(&self, system: &str, version: Option<&str>) -> Result<&Arc<CodeSystem>, TerminologyError> {
        let id = self.resolve_id(system)?;
        let versions = &self.editions[id];
        match version.filter(|v| !v.is_empty()) {
            None => Ok(self.current_of(id, versions)),
            Some(v) => versions.iter().find(|cs| cs.meta.version == v).ok_or_else(|| {
                TerminologyError::UnknownVersion { system: system.to_owned(), version: v.to_owned() }
            }),
        }
    }

    fn resolve_id<'a>(&'a self, system: &'a str) -> Result<&'a str, TerminologyError> {
        let s = alias_system(system);
        if self.editions.contains_key(s) {
            return Ok(s);
        }
        self.order
            .iter()
            .find(|id| self.editions[*id].iter().any(|cs| cs.meta.url == system))
            .map(String::as_str)
            .ok_or_else(|| TerminologyError::UnknownEdition(system.to_owned()))
    }

    /// Current versions, in load order.
    pub fn editions(&self) -> Vec<&Arc<CodeSystem>> {
        self.order.iter().map(|id| self.current_of(id, &self.editions[id])).collect()
    }

    /// Every version of every edition.
    pub fn all_versions(&self) -> Vec<&Arc<CodeSystem>> {
        self.order.iter().flat_map(|id| self.editions[id].iter()).collect()
    }

    pub fn search(
        &self,
        text: &str,
        system: &str,
        version: Option<&str>,
        k: usize,
    ) -> Result<Vec<Candidate>, TerminologyError> {
        let cs = self.edition(system, version)?;
        self.index.search(text, &index_key(&cs.meta), k)
    }

    pub fn index_backend(&self) -> &'static str {
        self.index.backend()
    }

    /// The insurance-edition code for a clinical code.
    pub fn translate(&self, system: &str, code: &str) -> Result<(Arc<CodeSystem>, Option<Translation>), TerminologyError> {
        let from = self.edition(system, None)?;
        if from.get(code).is_none() {
            return Err(TerminologyError::UnknownCode { system: system.to_owned(), code: code.to_owned() });
        }
        let (spec, cw) = self
            .crosswalks
            .get(&from.meta.id)
            .ok_or_else(|| TerminologyError::NoCrosswalk(from.meta.id.clone()))?;
        let target = self.edition(&spec.to, None)?.clone();
        let tr = cw.translate(code, |c| target.get(c).is_some());
        Ok((target, tr))
    }

    pub fn crosswalks(&self) -> impl Iterator<Item = &CrosswalkSpec> {
        self.crosswalks.values().map(|(s, _)| s)
    }
}

/// The index holds every version under `id|version`.
fn index_key(meta: &EditionMeta) -> String {
    format!("{}|{}", meta.id, meta.version)
}

/// Loads one edition's table into a [`CodeSystem`].
pub fn load_edition(spec: &EditionSpec, dir: &Path, canonical_base: &str) -> Result<CodeSystem, TerminologyError> {
    let path = resolve_path(dir, &spec.file);
    let rows = CodeSystem::read_csv(&path)?;
    let headers = spec.headers.as_ref().map(|h| read_headers(&resolve_path(dir, h))).unwrap_or_default();
    Ok(edition_from_rows(spec, rows, &headers, canonical_base))
}

pub fn edition_from_rows(
    spec: &EditionSpec,
    rows: Vec<(String, String)>,
    headers: &HashMap<String, String>,
    canonical_base: &str,
) -> CodeSystem {
    let kind = spec.kind.unwrap_or_else(|| rows.first().map(|r| CodeKind::guess(&r.0)).unwrap_or(CodeKind::Icd10));
    let meta = EditionMeta {
        id: spec.id.clone(),
        url: spec.url.clone().unwrap_or_else(|| format!("{}/CodeSystem/{}", canonical_base.trim_end_matches('/'), spec.id)),
        version: spec.version.clone(),
        title: spec.title.clone().unwrap_or_else(|| spec.id.clone()),
        kind,
        role: spec.role.clone().unwrap_or_else(|| "clinical".to_owned()),
    };
    CodeSystem::from_rows(meta, rows, headers)
}
