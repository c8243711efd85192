//! Prioritization: principal diagnosis by the principal-diagnosis rules (主要诊断选择原则),
//! principal procedure by therapeutic weight.
//!
//! Diagnoses are scored by a linear model over what the rules look at (the condition's kind,
//! what the course shows, what the principal procedure treated), trained as a conditional
//! logit (one principal among each record's candidates) from coded records, with hand-set
//! weights until trained.

use serde::{Deserialize, Serialize};

use super::facts::Facts;
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Item, Role};
use crate::record::EhrRecord;

pub const PRINCIPAL_FEATURES: [&str; 26] = [
    "first_listed",
    "list_position",
    "acute_mi",
    "unstable_angina",
    "other_angina",
    "heart_failure",
    "hf_exacerbation_code",
    "hypertension",
    "arrhythmia",
    "chronic_chd",
    "cerebrovascular",
    "other_circulatory",
    "non_circulatory",
    "status_or_history",
    "recovered_by_validation",
    "mi_x_troponin",
    "coronary_x_pci",
    "angina_x_no_stenosis",
    "hf_x_exacerbation",
    "hf_x_bnp",
    "coronary_x_chest_pain",
    "hf_x_dyspnea",
    "htn_x_no_cardiac_event",
    "coronary_x_significant_stenosis",
    "treated_by_principal_procedure",
    "unspecified_beside_specific",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrincipalModel {
    pub weights: Vec<f64>,
    pub trained_on: String,
}

impl Default for PrincipalModel {
    fn default() -> PrincipalModel {
        let mut w = vec![0.0; PRINCIPAL_FEATURES.len()];
        let set = |w: &mut Vec<f64>, name: &str, v: f64| w[PRINCIPAL_FEATURES.iter().position(|f| *f == name).unwrap()] = v;
        // Hand-set from the rules: acute conditions treated in this stay first, chronic
        // comorbidities and status codes last, the first-listed diagnosis as tie-breaker.
        set(&mut w, "first_listed", 3.0);
        set(&mut w, "list_position", 0.5);
        set(&mut w, "acute_mi", 3.0);
        set(&mut w, "unstable_angina", 2.0);
        set(&mut w, "other_angina", 1.8);
        set(&mut w, "heart_failure", 1.0);
        set(&mut w, "hf_exacerbation_code", 2.5);
        set(&mut w, "hypertension", 0.8);
        set(&mut w, "arrhythmia", 0.8);
        set(&mut w, "chronic_chd", 0.5);
        set(&mut w, "status_or_history", -3.0);
        set(&mut w, "non_circulatory", -1.0);
        set(&mut w, "recovered_by_validation", -0.5);
        set(&mut w, "mi_x_troponin", 2.0);
        set(&mut w, "coronary_x_pci", 1.0);
        set(&mut w, "angina_x_no_stenosis", 1.0);
        set(&mut w, "hf_x_exacerbation", 1.5);
        set(&mut w, "htn_x_no_cardiac_event", 1.5);
        set(&mut w, "treated_by_principal_procedure", 2.5);
        set(&mut w, "unspecified_beside_specific", -1.5);
        PrincipalModel { weights: w, trained_on: "default".into() }
    }
}

fn starts(c: &str, ps: &[&str]) -> bool {
    ps.iter().any(|p| c.starts_with(p))
}

/// Features of one candidate principal diagnosis.
/// What the principal procedure treats: the diagnosis it was done for is the principal one.
fn treated_by(procedure: &str) -> &'static [&'static str] {
    match procedure {
        p if starts(p, &["36.0", "00.66", "17.55"]) => &["I20", "I21", "I22", "I24", "I25.1"],
        p if starts(p, &["37.8", "37.7"]) => &["I44", "I45", "I49.5"],
        p if starts(p, &["37.34", "37.26"]) => &["I47", "I48"],
        p if starts(p, &["37.94", "37.96"]) => &["I47.2", "I49.0"],
        p if starts(p, &["00.50", "00.51"]) => &["I50", "I42"],
        _ => &[],
    }
}

/// The principal procedure's code, if any (procedures come prioritized).
pub fn principal_procedure(procedures: &[Item]) -> Option<&str> {
    procedures.first().and_then(|p| p.code.as_deref())
}

pub fn principal_features(item: &Item, position: usize, n: usize, all: &[Item], facts: &Facts, procedure: Option<&str>) -> Vec<f64> {
    let c = item.code.as_deref().unwrap_or("");
    let b = |x: bool| f64::from(u8::from(x));
    let acute_mi = starts(c, &["I21", "I22"]);
    let ua = c.starts_with("I20.0");
    let other_angina = starts(c, &["I20.1", "I20.8", "I20.9"]);
    let hf = c.starts_with("I50");
    let hfx = c == "I50.900x018";
    let htn = starts(c, &["I10", "I11", "I12", "I13", "I15"]);
    let arr = starts(c, &["I44", "I45", "I47", "I48", "I49"]);
    let chd = c.starts_with("I25.1");
    let cereb = starts(c, &["I6"]);
    let status = c.starts_with('Z') || starts(c, &["I25.2", "I69"]);
    let circ = c.starts_with('I');
    let other_circ = circ && !(acute_mi || ua || other_angina || hf || htn || arr || chd || cereb || status);
    let coronary = acute_mi || ua || other_angina || chd;
    let cardiac_event = all.iter().any(|i| {
        i.code.as_deref().is_some_and(|x| starts(x, &["I20", "I21", "I22", "I50", "I48", "I47", "I44", "I45"]))
    });
    // Every name found in the first listed entry counts as listed first (冠心病 不稳定型心绞痛
    // is one entry with two codes; the rules then pick the acute one).
    let first_entry = position == 0 || all.first().is_some_and(|f| f.origin == "standardize" && item.origin == "standardize" && f.mention == item.mention);
    vec![
        b(first_entry),
        1.0 / (position as f64 + 1.0) - 1.0 / n.max(1) as f64,
        b(acute_mi),
        b(ua),
        b(other_angina),
        b(hf),
        b(hfx),
        b(htn),
        b(arr),
        b(chd),
        b(cereb),
        b(other_circ),
        b(!circ && !status),
        b(status),
        b(item.origin == "validate"),
        b(acute_mi && facts.troponin_high),
        b(coronary && facts.pci_done),
        b((other_angina || ua) && facts.coronary_no_significant_stenosis && !facts.significant_stenosis),
        b(hf && facts.hf_exacerbation_words),
        b(hf && facts.bnp_high),
        b(coronary && facts.chest_pain),
        b(hf && facts.dyspnea),
        b(htn && !cardiac_event),
        b(coronary && facts.significant_stenosis),
        b(procedure.is_some_and(|p| starts(c, treated_by(p)))),
        b(c == "I49.900" && all.iter().any(|i| i.code.as_deref().is_some_and(|x| x != c && starts(x, &["I44", "I45", "I47", "I48", "I49"])))),
    ]
}

impl PrincipalModel {
    pub fn score(&self, f: &[f64]) -> f64 {
        self.weights.iter().zip(f).map(|(w, x)| w * x).sum()
    }

    /// Conditional logit: each group is one record's candidates with the gold principal marked.
    pub fn fit(groups: &[Vec<(Vec<f64>, bool)>], trained_on: &str) -> PrincipalModel {
        let mut model = PrincipalModel::default();
        let dim = model.weights.len();
        let n = groups.len().max(1) as f64;
        for _ in 0..600 {
            let mut grad = vec![0.0; dim];
            for g in groups {
                let scores: Vec<f64> = g.iter().map(|(f, _)| model.score(f)).collect();
                let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = scores.iter().map(|s| (s - m).exp()).sum();
                for ((f, y), s) in g.iter().zip(&scores) {
                    let p = (s - m).exp() / z;
                    let t = if *y { 1.0 } else { 0.0 };
                    for k in 0..dim {
                        grad[k] += (p - t) * f[k];
                    }
                }
            }
            for k in 0..dim {
                // L2 towards the hand-set prior keeps a small training set from overfitting.
                let prior = PrincipalModel::default().weights[k];
                model.weights[k] -= 0.3 * (grad[k] / n + 0.05 * (model.weights[k] - prior));
            }
        }
        model.trained_on = trained_on.to_owned();
        model
    }
}

pub struct PrioritizeDiagnosesAgent {
    pub model: std::sync::Arc<PrincipalModel>,
}

/// Orders diagnoses: the best-scoring principal first, the rest in their listed order.
pub fn prioritize_diagnoses(rec: &EhrRecord, mut items: Vec<Item>, procedures: &[Item], model: &PrincipalModel) -> (Vec<Item>, Option<String>) {
    if items.len() < 2 {
        return (items, None);
    }
    let facts = Facts::read(rec);
    let n = items.len();
    let scores: Vec<f64> = items.iter().enumerate().map(|(i, it)| model.score(&principal_features(it, i, n, &items, &facts, principal_procedure(procedures)))).collect();
    let best = scores.iter().enumerate().fold(0, |b, (i, s)| if *s > scores[b] { i } else { b });
    let principal = items.remove(best);
    let note = format!("principal {} {} (score {:.2})", principal.code.as_deref().unwrap_or(""), principal.name, scores[best]);
    items.insert(0, principal);
    (items, Some(note))
}

impl Agent for PrioritizeDiagnosesAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            role: Role::PrioritizeDiagnoses,
            backend: "knowledge".into(),
            model: format!("principal-logit({})", self.model.trained_on),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let (items, note) = prioritize_diagnoses(input.record, input.items, input.other_track, &self.model);
        Ok(AgentOutput { items, notes: note.into_iter().collect(), ..Default::default() })
    }
}

/// Therapeutic before diagnostic before adjunct codes (vessel/stent counts, imaging).
pub fn procedure_rank(code: &str) -> u8 {
    match code {
        c if starts(c, &["36.06", "36.07", "36.1", "37.3", "37.8", "37.94", "00.50", "00.51", "00.53", "00.54", "35."]) => 0,
        c if starts(c, &["00.66", "17.55", "37.61", "39.95", "96.7", "99.6"]) => 1,
        c if starts(c, &["37.7", "96.04", "38.9", "34."]) => 2,
        c if starts(c, &["88.5", "37.2"]) => 3,
        c if starts(c, &["00.2", "00.59", "38.24"]) => 4,
        c if starts(c, &["00.4"]) => 5,
        _ => 2,
    }
}

pub struct PrioritizeProceduresAgent;

impl Agent for PrioritizeProceduresAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::PrioritizeProcedures, backend: "knowledge".into(), model: "therapeutic-order".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let mut items = input.items;
        items.sort_by_key(|i| procedure_rank(i.code.as_deref().unwrap_or("")));
        let note = items.first().map(|p| format!("principal procedure {} {}", p.code.as_deref().unwrap_or(""), p.name));
        Ok(AgentOutput { items, notes: note.into_iter().collect(), ..Default::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_learns_which_candidate_is_principal() {
        // In every record the candidate with "treated_by_principal_procedure" is the principal,
        // while the first-listed one is not: the fitted model must prefer the former.
        let dim = PRINCIPAL_FEATURES.len();
        let treated = PRINCIPAL_FEATURES.iter().position(|f| *f == "treated_by_principal_procedure").unwrap();
        let first = PRINCIPAL_FEATURES.iter().position(|f| *f == "first_listed").unwrap();
        let mut groups = Vec::new();
        for _ in 0..30 {
            let mut a = vec![0.0; dim];
            a[first] = 1.0;
            let mut b = vec![0.0; dim];
            b[treated] = 1.0;
            groups.push(vec![(a, false), (b, true)]);
        }
        let m = PrincipalModel::fit(&groups, "synthetic");
        assert!(m.weights[treated] > m.weights[first]);
        assert_eq!(m.trained_on, "synthetic");
    }
}
