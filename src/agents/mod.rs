//! The seven agent roles of the JointCoder workflow behind one trait, so that any role can be
//! served by any backend: the knowledge backend (`knowledge`), or a language model on candle or
//! an OpenAI-compatible server (`crate::llm`), chosen per role. Nothing here names a backend's
//! types.

pub mod knowledge;

use serde::{Deserialize, Serialize};

use crate::record::{EhrRecord, Section};

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
