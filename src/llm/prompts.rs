//! The role prompts, versioned in `models/prompts/<role>.toml` and compiled in, so that a
//! running server always has the prompts its Provenance names. Each prompt has a shared part
//! (`context`: instructions and the record) and a per-question part (`question`): prompts of
//! one record share their prefix, which the candle backend computes once.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use super::ChatMessage;
use crate::agents::Role;
use crate::record::{EhrRecord, Section};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePrompt {
    pub role: String,
    pub version: String,
    /// The JSON field the answer is read from (`name`, `principal`, `keep`).
    pub answer: String,
    pub system: String,
    pub context: String,
    pub question: String,
    /// The JSON schema of the answer, as text (sent to servers that take one).
    pub schema: String,
}

const FILES: [(Role, &str); 7] = [
    (Role::StandardizeDiagnosis, include_str!("../../models/prompts/standardize-diagnosis.toml")),
    (Role::StandardizeProcedure, include_str!("../../models/prompts/standardize-procedure.toml")),
    (Role::MineProcedures, include_str!("../../models/prompts/mine-procedures.toml")),
    (Role::PrioritizeDiagnoses, include_str!("../../models/prompts/prioritize-diagnoses.toml")),
    (Role::PrioritizeProcedures, include_str!("../../models/prompts/prioritize-procedures.toml")),
    (Role::ValidateDiagnoses, include_str!("../../models/prompts/validate-diagnoses.toml")),
    (Role::ValidateProcedures, include_str!("../../models/prompts/validate-procedures.toml")),
];

/// The prompt of a role (parsed once; the files are checked by a test).
pub fn prompt(role: Role) -> &'static RolePrompt {
    static ALL: OnceLock<HashMap<Role, RolePrompt>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        FILES.iter().map(|(r, text)| (*r, toml::from_str(text).unwrap_or_else(|e| panic!("models/prompts/{}.toml: {e}", r.as_str())))).collect()
    });
    &all[&role]
}

/// Record text a role reads, section by section, each cut to a budget so that the prompt fits
/// a small model's context.
const SECTION_BUDGET: usize = 600;

fn sections(role: Role) -> &'static [Section] {
    use Section::*;
    match role.track() {
        crate::agents::Track::Disease => &[ChiefComplaint, AdmissionDiagnosis, DischargeDiagnosis, ClinicalCourse, ImagingFindings, UltrasoundImpression],
        crate::agents::Track::Procedure => &[ProcedureName, OperativeReport, ClinicalCourse, DischargeDiagnosis],
    }
}

fn cut(text: &str, budget: usize) -> String {
    let mut out: String = text.chars().take(budget).collect();
    if text.chars().count() > budget {
        out.push('…');
    }
    out
}

pub fn record_text(rec: &EhrRecord, role: Role) -> String {
    let mut s = String::new();
    for sec in sections(role) {
        if rec.has(*sec) {
            s.push_str(&format!("【{}】{}\n", sec.zh()[0], cut(rec.text(*sec).trim(), SECTION_BUDGET)));
        }
    }
    if s.is_empty() {
        s.push_str("（无）\n");
    }
    s
}

fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

impl RolePrompt {
    /// System and user messages: the shared context first, then the question.
    pub fn messages(&self, context: &[(&str, &str)], question: &[(&str, &str)]) -> Vec<ChatMessage> {
        let user = format!("{}\n\n{}", fill(&self.context, context), fill(&self.question, question));
        vec![ChatMessage::system(self.system.clone()), ChatMessage::user(user)]
    }

    /// The answer JSON for a value (`{"name":"…"}`, `{"keep":true}`): the exact strings
    /// constrained decoding allows and fine-tuning data teaches.
    pub fn answer_json(&self, value: serde_json::Value) -> String {
        let mut m = serde_json::Map::new();
        m.insert(self.answer.clone(), value);
        serde_json::Value::Object(m).to_string()
    }
}

/// A numbered list, one per line.
pub fn numbered(items: &[String]) -> String {
    items.iter().enumerate().map(|(i, s)| format!("{}. {s}", i + 1)).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_parsable_prompt_with_a_json_schema() {
        for role in Role::ALL {
            let p = prompt(role);
            assert_eq!(p.role, role.as_str());
            let schema: serde_json::Value = serde_json::from_str(&p.schema).unwrap_or_else(|e| panic!("{}: {e}", p.role));
            assert!(schema["properties"].get(&p.answer).is_some(), "{}: the schema names the answer field", p.role);
            assert!(schema["required"].as_array().unwrap().iter().any(|f| f == p.answer.as_str()));
            assert!(p.system.contains("JSON"), "{}", p.role);
            // Chinese instructions.
            assert!(p.system.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
            let m = p.messages(&[("record", "【主诉】胸痛")], &[("mention", "冠心病")]);
            assert!(m[1].content.starts_with("病历摘录"), "the record comes first, for prefix sharing");
        }
    }
}
