//! The coders' workflow as stages: two tracks, one after the other on the calling thread,
//! exchanging what they know (procedures settle first; diagnoses then use them).
//!
//! disease:   Standardize → Prioritize → Validate → Map
//! procedure: Standardize → Mine → Prioritize → CodeAlso → Validate → Map
//!
//! Pure domain: no HTTP, no FHIR. Every stage leaves a [`StageTrace`].

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::terminology::families::same_family;
use crate::agents::{AgentInfo, AgentInput, AgentOutput, Item, Removal, Role};
use crate::record::{EhrRecord, Section};
use crate::terminology::{CodeSystem, Terminology};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Standardize,
    Mine,
    Prioritize,
    CodeAlso,
    Validate,
    Map,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Standardize => "standardize",
            Stage::Mine => "mine",
            Stage::Prioritize => "prioritize",
            Stage::CodeAlso => "code-also",
            Stage::Validate => "validate",
            Stage::Map => "map",
        }
    }

    /// The stages an ablation may switch off (Map is what produces codes at all).
    pub const ABLATABLE: [Stage; 5] = [Stage::Standardize, Stage::Mine, Stage::Prioritize, Stage::CodeAlso, Stage::Validate];

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ABLATABLE.into_iter().chain([Stage::Map]).find(|st| st.as_str() == s)
    }
}

pub use crate::agents::{Agents, Track, DISEASE_EDITION, PROCEDURE_EDITION};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StageTrace {
    pub stage: Stage,
    pub track: Track,
    /// The agent that ran the stage; `None` for retrieval stages (Code Also, Map).
    pub agent: Option<AgentInfo>,
    pub input: Vec<Item>,
    pub output: Vec<Item>,
    /// Keys (codes, or names before mapping) the stage added.
    pub added: Vec<String>,
    pub removed: Vec<Removal>,
    pub notes: Vec<String>,
    pub elapsed_us: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Coding {
    pub record_id: String,
    /// Principal first.
    pub diseases: Vec<Item>,
    /// Principal first.
    pub procedures: Vec<Item>,
    pub trace: Vec<StageTrace>,
    pub disease_edition: EditionRef,
    pub procedure_edition: EditionRef,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EditionRef {
    pub id: String,
    pub url: String,
    pub version: String,
}

impl Coding {
    pub fn disease_codes(&self) -> Vec<String> {
        self.diseases.iter().filter_map(|i| i.code.clone()).collect()
    }
    pub fn procedure_codes(&self) -> Vec<String> {
        self.procedures.iter().filter_map(|i| i.code.clone()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("record {record}: {message}")]
    Agent { record: String, message: String },
    #[error("record {record}: {message}")]
    Terminology { record: String, message: String },
    /// The caller's time budget ran out between two stages.
    #[error("record {record}: coding took longer than its budget of {budget_ms} ms")]
    OverBudget { record: String, budget_ms: u64 },
}

/// Why an edition pin was refused.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("{0}")]
    Unknown(crate::terminology::TerminologyError),
    #[error("{system} does not code {}", .track.codes())]
    WrongKind { system: String, track: Track },
}

#[derive(Clone)]
pub struct Pipeline {
    pub terminology: Arc<Terminology>,
    pub agents: Agents,
    pub disease_edition: String,
    pub procedure_edition: String,
    /// A pinned version of each edition; `None` codes against the current one.
    pub disease_version: Option<String>,
    pub procedure_version: Option<String>,
    pub without: HashSet<Stage>,
}

impl StageTrace {
    /// The one way a stage is recorded: what went in and came out (the keys it added follow
    /// from them), what it removed and why, its notes, and the time since it `started`.
    #[allow(clippy::too_many_arguments)]
    pub fn record(stage: Stage, track: Track, agent: Option<AgentInfo>, input: Vec<Item>, output: &[Item], removed: Vec<Removal>, notes: Vec<String>, started: Instant) -> StageTrace {
        StageTrace { stage, track, agent, added: diff_added(&input, output), input, output: output.to_vec(), removed, notes, elapsed_us: started.elapsed().as_micros() as u64 }
    }
}

fn keys(items: &[Item]) -> Vec<String> {
    items.iter().map(|i| i.key().to_owned()).collect()
}

fn diff_added(before: &[Item], after: &[Item]) -> Vec<String> {
    let b: HashSet<String> = keys(before).into_iter().collect();
    keys(after).into_iter().filter(|k| !b.contains(k)).collect()
}

impl Pipeline {
    /// Codes with `agents` (one per role, any backend) against the national clinical
    /// editions of `terminology`, every stage on.
    pub fn new(terminology: Arc<Terminology>, agents: Agents) -> Pipeline {
        Pipeline {
            terminology,
            agents,
            disease_edition: DISEASE_EDITION.into(),
            procedure_edition: PROCEDURE_EDITION.into(),
            disease_version: None,
            procedure_version: None,
            without: Default::default(),
        }
    }

    pub fn without(mut self, stages: impl IntoIterator<Item = Stage>) -> Pipeline {
        self.without.extend(stages);
        self
    }

    fn enabled(&self, s: Stage) -> bool {
        !self.without.contains(&s)
    }

    fn edition(&self, id: &str, version: Option<&str>, record: &str) -> Result<&Arc<CodeSystem>, PipelineError> {
        self.terminology
            .edition(id, version)
            .map_err(|e| PipelineError::Terminology { record: record.into(), message: e.to_string() })
    }

    /// The same pipeline coding one track against another edition or a pinned version of it
    /// (`system`: id, canonical URL or alias). The edition must code that track's kind.
    pub fn pinned(mut self, track: Track, system: Option<&str>, version: Option<&str>) -> Result<Pipeline, PinError> {
        let want = track.kind();
        let current = match track {
            Track::Disease => &self.disease_edition,
            Track::Procedure => &self.procedure_edition,
        };
        let system = system.unwrap_or(current).to_owned();
        let cs = self.terminology.edition(&system, version).map_err(PinError::Unknown)?;
        if cs.meta.kind != want {
            return Err(PinError::WrongKind { system, track });
        }
        let (id, v) = (cs.meta.id.clone(), version.map(str::to_owned));
        match track {
            Track::Disease => (self.disease_edition, self.disease_version) = (id, v),
            Track::Procedure => (self.procedure_edition, self.procedure_version) = (id, v),
        }
        Ok(self)
    }

    /// Runs an agent stage and records its trace.
    fn agent_stage(
        &self,
        stage: Stage,
        track: Track,
        role: Role,
        rec: &EhrRecord,
        items: Vec<Item>,
        other: &[Item],
        trace: &mut Vec<StageTrace>,
    ) -> Result<Vec<Item>, PipelineError> {
        let agent = self.agents.get(role);
        let start = Instant::now();
        let input = items.clone();
        let AgentOutput { items: out, removed, notes } = agent
            .run(AgentInput { record: rec, items, other_track: other })
            .map_err(|e| PipelineError::Agent { record: rec.record_id.clone(), message: e.to_string() })?;
        trace.push(StageTrace::record(stage, track, Some(agent.info()), input, &out, removed, notes, start));
        Ok(out)
    }

    /// Without standardization, the raw list items go straight to mapping (the paper's
    /// ablation): one item per listed piece, uncoded.
    fn raw_items(rec: &EhrRecord, track: Track) -> Vec<Item> {
        let section = match track {
            Track::Procedure => Section::ProcedureName,
            Track::Disease if rec.has(Section::DischargeDiagnosis) => Section::DischargeDiagnosis,
            Track::Disease => Section::AdmissionDiagnosis,
        };
        crate::record::lists::split_items(rec.text(section))
            .into_iter()
            .map(|p| Item {
                name: p.text.clone(),
                code: None,
                mention: p.text.clone(),
                evidence: vec![crate::agents::Evidence { section, start: p.start, end: p.end, text: p.text }],
                confidence: 0.5,
                origin: "record".into(),
            })
            .collect()
    }

    fn first_stage(&self, rec: &EhrRecord, track: Track, trace: &mut Vec<StageTrace>) -> Result<Vec<Item>, PipelineError> {
        let role = match track {
            Track::Disease => Role::StandardizeDiagnosis,
            Track::Procedure => Role::StandardizeProcedure,
        };
        let mut items = if self.enabled(Stage::Standardize) {
            self.agent_stage(Stage::Standardize, track, role, rec, Vec::new(), &[], trace)?
        } else {
            Pipeline::raw_items(rec, track)
        };
        if track == Track::Procedure && self.enabled(Stage::Mine) {
            items = self.agent_stage(Stage::Mine, track, Role::MineProcedures, rec, items, &[], trace)?;
        }
        Ok(items)
    }

    pub fn code(&self, rec: &EhrRecord) -> Result<Coding, PipelineError> {
        self.code_within(rec, None)
    }

    /// As [`Pipeline::code`], stopping between stages once `budget` has passed (a server
    /// must not let one record hold a core for as long as it likes).
    pub fn code_within(&self, rec: &EhrRecord, budget: Option<std::time::Duration>) -> Result<Coding, PipelineError> {
        crate::agents::knowledge::mine::within_one_coding(|| self.code_stages(rec, budget))
    }

    fn code_stages(&self, rec: &EhrRecord, budget: Option<std::time::Duration>) -> Result<Coding, PipelineError> {
        let started = Instant::now();
        let stopped = crate::record::stops::with_full_width_stops(rec);
        let rec = stopped.as_ref().unwrap_or(rec);
        let in_time = || match budget {
            Some(b) if started.elapsed() > b => Err(PipelineError::OverBudget { record: rec.record_id.clone(), budget_ms: b.as_millis() as u64 }),
            _ => Ok(()),
        };
        let dx_cs = self.edition(&self.disease_edition, self.disease_version.as_deref(), &rec.record_id)?.clone();
        let px_cs = self.edition(&self.procedure_edition, self.procedure_version.as_deref(), &rec.record_id)?.clone();
        let mut dx_trace = Vec::new();
        let mut px_trace = Vec::new();
        // Phase 1: the tracks read their own sections. One after the other: a thread per
        // record cost more than it saved once the server codes several records at a time (a
        // thread start, a cold stack and a fresh allocator heap per request).
        let mut px = self.first_stage(rec, Track::Procedure, &mut px_trace)?;
        in_time()?;
        let mut dx = self.first_stage(rec, Track::Disease, &mut dx_trace)?;
        in_time()?;

        // Phase 2: procedures settle first; diagnoses then use them (what the principal
        // procedure treated, a stent placed now is not a status code).
        if self.enabled(Stage::Prioritize) {
            px = self.agent_stage(Stage::Prioritize, Track::Procedure, Role::PrioritizeProcedures, rec, px, &dx, &mut px_trace)?;
        }
        if self.enabled(Stage::CodeAlso) {
            px = self.code_also(px, &px_cs, &mut px_trace);
        }
        in_time()?;
        if self.enabled(Stage::Validate) {
            px = self.agent_stage(Stage::Validate, Track::Procedure, Role::ValidateProcedures, rec, px, &dx, &mut px_trace)?;
        }
        px = self.map(px, &px_cs, Track::Procedure, &mut px_trace);
        in_time()?;

        if self.enabled(Stage::Prioritize) {
            dx = self.agent_stage(Stage::Prioritize, Track::Disease, Role::PrioritizeDiagnoses, rec, dx, &px, &mut dx_trace)?;
        }
        in_time()?;
        if self.enabled(Stage::Validate) {
            dx = self.agent_stage(Stage::Validate, Track::Disease, Role::ValidateDiagnoses, rec, dx, &px, &mut dx_trace)?;
        }
        dx = self.map(dx, &dx_cs, Track::Disease, &mut dx_trace);
        in_time()?;

        let mut trace = dx_trace;
        trace.extend(px_trace);
        let eref = |cs: &CodeSystem| EditionRef { id: cs.meta.id.clone(), url: cs.meta.url.clone(), version: cs.meta.version.clone() };
        Ok(Coding {
            record_id: rec.record_id.clone(),
            diseases: dx,
            procedures: px,
            trace,
            disease_edition: eref(&dx_cs),
            procedure_edition: eref(&px_cs),
        })
    }

    /// Code Also: the principal procedure's rules suggest further codes (the first code of each
    /// suggested family not yet present); validation keeps those the record supports.
    fn code_also(&self, items: Vec<Item>, cs: &CodeSystem, trace: &mut Vec<StageTrace>) -> Vec<Item> {
        let start = Instant::now();
        let input = items.clone();
        let mut out = items;
        let mut notes = Vec::new();
        if let Some(principal) = out.first().and_then(|p| p.code.clone()) {
            let evidence = out[0].evidence.clone();
            for target in self.terminology.code_also.chinese_targets(&principal, cs) {
                let is_base = !target.contains('x') && target.ends_with("00");
                let family = &target[..target.len().min(5)];
                let covered = out.iter().any(|i| i.code.as_deref().is_some_and(|c| c.starts_with(family) || same_family(c, target)));
                if !is_base || covered {
                    continue;
                }
                let concept = cs.get(target).expect("target from the edition");
                notes.push(format!("{principal} → code also {target} {}", concept.name));
                out.push(Item {
                    name: concept.name.clone(),
                    code: Some(target.to_owned()),
                    mention: format!("code also ({principal})"),
                    evidence: evidence.clone(),
                    confidence: 0.4,
                    origin: "code-also".into(),
                });
            }
        }
        trace.push(StageTrace::record(Stage::CodeAlso, Track::Procedure, None, input, &out, Vec::new(), notes, start));
        out
    }

    /// Map: every item to a codable concept of the edition, with its display. Uncoded items
    /// go through retrieval (top candidate); header codes go to their first codable child.
    fn map(&self, items: Vec<Item>, cs: &CodeSystem, track: Track, trace: &mut Vec<StageTrace>) -> Vec<Item> {
        let start = Instant::now();
        let input = items.clone();
        let mut out: Vec<Item> = Vec::with_capacity(items.len());
        let mut removed = Vec::new();
        for mut it in items {
            let concept = match it.code.as_deref().and_then(|c| cs.get(c)) {
                Some(c) if c.selectable => Some(c.clone()),
                Some(c) => cs.children(&c.code).into_iter().find(|k| k.selectable).cloned(),
                None => self
                    .terminology
                    .search(&it.name, &cs.meta.id, Some(&cs.meta.version), 1)
                    .ok()
                    .and_then(|h| h.into_iter().next())
                    .and_then(|h| cs.get(&h.code).cloned()),
            };
            match concept {
                Some(c) => {
                    it.code = Some(c.code.clone());
                    it.name = c.name.clone();
                    if !out.iter().any(|o| o.code == it.code) {
                        out.push(it);
                    }
                }
                None => removed.push(Removal { item: it, reason: format!("no code in {} {}", cs.meta.id, cs.meta.version) }),
            }
        }
        trace.push(StageTrace::record(Stage::Map, track, None, input, &out, removed, Vec::new(), start));
        out
    }
}
