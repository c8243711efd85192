//! The seven agent roles of the JointCoder workflow behind one trait, so that any role can be
//! served by any backend: the knowledge backend (`knowledge`), or a language model on candle or
//! an OpenAI-compatible server (`crate::llm`), chosen per role. Nothing here names a backend's
//! types.

pub mod knowledge;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::{EhrRecord, Section};
use crate::terminology::{CodeKind, Scope};

/// The national clinical editions the workflow codes with unless pinned to others.
pub const DISEASE_EDITION: &str = "icd-10-cn-clinical";
pub const PROCEDURE_EDITION: &str = "icd-9-cm-3-cn-clinical";

/// The workflow's two tracks. The one place that says what each codes: its kind of code,
/// its lexicon scope, its national edition, and (through [`Role::track`]) its roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Track {
    Disease,
    Procedure,
}

impl Track {
    pub const ALL: [Track; 2] = [Track::Disease, Track::Procedure];

    /// ICD-10 diagnoses or ICD-9-CM-3 procedures.
    pub fn kind(self) -> CodeKind {
        match self {
            Track::Disease => CodeKind::Icd10,
            Track::Procedure => CodeKind::Icd9cm3,
        }
    }

    /// The lexicon entries that apply (diagnosis or procedure aliases).
    pub fn scope(self) -> Scope {
        match self {
            Track::Disease => Scope::Dx,
            Track::Procedure => Scope::Px,
        }
    }

    /// The national clinical edition coded with by default.
    pub fn national_edition(self) -> &'static str {
        match self {
            Track::Disease => DISEASE_EDITION,
            Track::Procedure => PROCEDURE_EDITION,
        }
    }

    /// "diagnoses" or "procedures", for messages.
    pub fn codes(self) -> &'static str {
        match self {
            Track::Disease => "diagnoses",
            Track::Procedure => "procedures",
        }
    }

    /// The roles of this track, in workflow order.
    pub fn roles(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| r.track() == self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    StandardizeDiagnosis,
    StandardizeProcedure,
    MineProcedures,
    PrioritizeDiagnoses,
    PrioritizeProcedures,
    ValidateDiagnoses,
    ValidateProcedures,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::StandardizeDiagnosis,
        Role::StandardizeProcedure,
        Role::MineProcedures,
        Role::PrioritizeDiagnoses,
        Role::PrioritizeProcedures,
        Role::ValidateDiagnoses,
        Role::ValidateProcedures,
    ];

    /// The track the role works on.
    pub fn track(self) -> Track {
        match self {
            Role::StandardizeDiagnosis | Role::PrioritizeDiagnoses | Role::ValidateDiagnoses => Track::Disease,
            Role::StandardizeProcedure | Role::MineProcedures | Role::PrioritizeProcedures | Role::ValidateProcedures => Track::Procedure,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::StandardizeDiagnosis => "standardize-diagnosis",
            Role::StandardizeProcedure => "standardize-procedure",
            Role::MineProcedures => "mine-procedures",
            Role::PrioritizeDiagnoses => "prioritize-diagnoses",
            Role::PrioritizeProcedures => "prioritize-procedures",
            Role::ValidateDiagnoses => "validate-diagnoses",
            Role::ValidateProcedures => "validate-procedures",
        }
    }
}

/// One agent per role; the configuration picks each one's backend.
#[derive(Clone)]
pub struct Agents {
    pub standardize_diagnosis: Arc<dyn Agent>,
    pub standardize_procedure: Arc<dyn Agent>,
    pub mine_procedures: Arc<dyn Agent>,
    pub prioritize_diagnoses: Arc<dyn Agent>,
    pub prioritize_procedures: Arc<dyn Agent>,
    pub validate_diagnoses: Arc<dyn Agent>,
    pub validate_procedures: Arc<dyn Agent>,
}

impl Agents {
    pub fn get(&self, role: Role) -> &Arc<dyn Agent> {
        match role {
            Role::StandardizeDiagnosis => &self.standardize_diagnosis,
            Role::StandardizeProcedure => &self.standardize_procedure,
            Role::MineProcedures => &self.mine_procedures,
            Role::PrioritizeDiagnoses => &self.prioritize_diagnoses,
            Role::PrioritizeProcedures => &self.prioritize_procedures,
            Role::ValidateDiagnoses => &self.validate_diagnoses,
            Role::ValidateProcedures => &self.validate_procedures,
        }
    }

    pub fn get_mut(&mut self, role: Role) -> &mut Arc<dyn Agent> {
        match role {
            Role::StandardizeDiagnosis => &mut self.standardize_diagnosis,
            Role::StandardizeProcedure => &mut self.standardize_procedure,
            Role::MineProcedures => &mut self.mine_procedures,
            Role::PrioritizeDiagnoses => &mut self.prioritize_diagnoses,
            Role::PrioritizeProcedures => &mut self.prioritize_procedures,
            Role::ValidateDiagnoses => &mut self.validate_diagnoses,
            Role::ValidateProcedures => &mut self.validate_procedures,
        }
    }
}

/// Where in the record an item was found: section and character span (char offsets, end
/// exclusive) into that section's text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub section: Section,
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// A diagnosis or procedure as it moves through the stages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Canonical name once standardized; the mention as written before.
    pub name: String,
    /// Code in the target edition, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The text the item came from.
    pub mention: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub evidence: Vec<Evidence>,
    /// 0–1.
    pub confidence: f32,
    /// The stage that introduced the item.
    pub origin: String,
}

impl Item {
    pub fn key(&self) -> &str {
        self.code.as_deref().unwrap_or(&self.name)
    }
}

/// What an agent sees: the whole record, the items so far, and what the other track knows
/// (the "joint" in JointCoder).
pub struct AgentInput<'a> {
    pub record: &'a EhrRecord,
    pub items: Vec<Item>,
    pub other_track: &'a [Item],
}

/// An item dropped by a stage, and why (kept in the trace).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Removal {
    pub item: Item,
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct AgentOutput {
    pub items: Vec<Item>,
    pub removed: Vec<Removal>,
    /// Why items were added or changed, one line each.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{role}: {message}")]
    Failed { role: &'static str, message: String },
}

/// Who produced a result: shown in traces and, later, in Provenance devices.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AgentInfo {
    pub role: Role,
    pub backend: String,
    pub model: String,
    pub version: String,
}

pub trait Agent: Send + Sync {
    fn info(&self) -> AgentInfo;
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError>;
}

#[cfg(test)]
mod track_tests {
    use super::*;

    #[test]
    fn each_track_names_its_kind_scope_edition_and_roles() {
        assert_eq!(Track::Disease.roles().collect::<Vec<_>>(), vec![Role::StandardizeDiagnosis, Role::PrioritizeDiagnoses, Role::ValidateDiagnoses]);
        assert_eq!(Track::Procedure.roles().count(), 4);
        for role in Role::ALL {
            let word = if role.track() == Track::Disease { "diagnos" } else { "procedure" };
            assert!(role.as_str().contains(word), "{}", role.as_str());
        }
        assert_eq!((Track::Disease.kind(), Track::Disease.scope()), (CodeKind::Icd10, Scope::Dx));
        assert_eq!((Track::Procedure.kind(), Track::Procedure.scope()), (CodeKind::Icd9cm3, Scope::Px));
        assert_eq!(Track::Procedure.national_edition(), PROCEDURE_EDITION);
    }
}
