//! Prioritization: principal diagnosis by the principal-diagnosis rules (主要诊断选择原则),
//! principal procedure by therapeutic weight.
//!
//! Diagnoses are scored by a linear model over what the rules look at (the condition's kind,
//! what the course shows, what the principal procedure treated), trained as a conditional
//! logit (one principal among each record's candidates) from coded records, with hand-set
//! weights until trained.

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::facts::Facts;
use crate::terminology::families::in_families;
use crate::terminology::policy::{Policy, PrincipalKind};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Item, Role};
use crate::record::{EhrRecord, Section};

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

/// The principal procedure's code, if any (procedures come prioritized).
pub fn principal_procedure(procedures: &[Item]) -> Option<&str> {
    procedures.first().and_then(|p| p.code.as_deref())
}

/// Features of one candidate principal diagnosis.
pub fn principal_features(item: &Item, position: usize, n: usize, all: &[Item], facts: &Facts, procedure: Option<&str>, policy: &Policy) -> Vec<f64> {
    let c = item.code.as_deref().unwrap_or("");
    let b = |x: bool| f64::from(u8::from(x));
    let acute_mi = in_families(c, &["I21", "I22"]);
    let ua = c.starts_with("I20.0");
    let other_angina = in_families(c, &["I20.1", "I20.8", "I20.9"]);
    let hf = c.starts_with("I50");
    let hfx = c == "I50.900x018";
    let htn = in_families(c, &["I10", "I11", "I12", "I13", "I15"]);
    let arr = in_families(c, &["I44", "I45", "I47", "I48", "I49"]);
    let chd = c.starts_with("I25.1");
    let cereb = in_families(c, &["I6"]);
    let status = c.starts_with('Z') || in_families(c, &["I25.2", "I69"]);
    let circ = c.starts_with('I');
    let other_circ = circ && !(acute_mi || ua || other_angina || hf || htn || arr || chd || cereb || status);
    let coronary = acute_mi || ua || other_angina || chd;
    let cardiac_event = all.iter().any(|i| {
        i.code.as_deref().is_some_and(|x| in_families(x, &["I20", "I21", "I22", "I50", "I48", "I47", "I44", "I45"]))
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
        b(procedure.is_some_and(|p| policy.treated_by(p).any(|d| c.starts_with(d)))),
        b(c == "I49.900" && all.iter().any(|i| i.code.as_deref().is_some_and(|x| x != c && in_families(x, &["I44", "I45", "I47", "I48", "I49"])))),
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
            // The listed order is the rules' last word (the doctor lists the principal first):
            // never learned backwards, whatever one data set's lists do.
            for name in ["first_listed", "list_position"] {
                let k = PRINCIPAL_FEATURES.iter().position(|f| *f == name).expect("a feature");
                model.weights[k] = model.weights[k].max(0.0);
            }
        }
        model.trained_on = trained_on.to_owned();
        model
    }
}

pub struct PrioritizeDiagnosesAgent {
    pub model: Arc<PrincipalModel>,
    pub policy: Arc<Policy>,
}

/// What the policy's decision list made of the candidates.
#[derive(Clone, Debug, PartialEq)]
pub struct PrincipalDecision {
    /// Positions of the candidates still standing, in listed order.
    pub standing: Vec<usize>,
    /// The rule that left one candidate, if one did.
    pub decided_by: Option<String>,
    /// Each rule that narrowed the candidates: `id: before → after`.
    pub steps: Vec<String>,
}

/// Runs the principal decision list (主要诊断选择原则) over the candidates. A rule no candidate
/// meets, or one that would leave none, is passed over; so is one whose complaint words the
/// chief complaint lacks, or whose procedure families the principal procedure is not of.
pub fn decide_principal(items: &[Item], procedures: &[Item], policy: &Policy, chief_complaint: &str) -> PrincipalDecision {
    let code = |i: usize| items[i].code.as_deref().unwrap_or("");
    let mut standing: Vec<usize> = (0..items.len()).filter(|&i| items[i].code.is_some()).collect();
    if standing.is_empty() {
        standing = (0..items.len()).collect();
    }
    let procedure = principal_procedure(procedures);
    let mut steps = Vec::new();
    let mut decided_by = None;
    for rule in &policy.principal {
        if standing.len() <= 1 {
            break;
        }
        if !rule.when.is_empty() && !standing.iter().any(|&i| in_families(code(i), &rule.when)) {
            continue;
        }
        if !rule.complaint_matches(chief_complaint) {
            continue;
        }
        if !rule.procedures.is_empty() && !procedure.is_some_and(|p| in_families(p, &rule.procedures)) {
            continue;
        }
        let meets = |i: usize| match rule.kind {
            PrincipalKind::Drop | PrincipalKind::Keep => in_families(code(i), &rule.codes),
            PrincipalKind::Treated => procedure.is_some_and(|p| policy.treated_by(p).any(|d| code(i).starts_with(d))),
        };
        let next: Vec<usize> = match rule.kind {
            PrincipalKind::Drop => standing.iter().copied().filter(|&i| !meets(i)).collect(),
            PrincipalKind::Keep | PrincipalKind::Treated => standing.iter().copied().filter(|&i| meets(i)).collect(),
        };
        if next.is_empty() || next.len() == standing.len() {
            continue;
        }
        steps.push(format!("{}: {} → {}", rule.id, standing.len(), next.len()));
        standing = next;
        if standing.len() == 1 {
            decided_by = Some(rule.id.clone());
        }
    }
    PrincipalDecision { standing, decided_by, steps }
}

/// Orders diagnoses: the principal first (by the decision list, then the learned tie-break
/// among what it leaves), the rest in their listed order.
pub fn prioritize_diagnoses(rec: &EhrRecord, mut items: Vec<Item>, procedures: &[Item], model: &PrincipalModel, policy: &Policy) -> (Vec<Item>, Vec<String>) {
    if items.len() < 2 {
        return (items, Vec::new());
    }
    let decision = decide_principal(&items, procedures, policy, rec.text(Section::ChiefComplaint));
    let mut notes = decision.steps.iter().map(|s| format!("rule {s}")).collect::<Vec<_>>();
    let (best, how) = if let (Some(rule), [only]) = (&decision.decided_by, decision.standing.as_slice()) {
        let why = policy.principal.iter().find(|r| &r.id == rule).map(|r| r.why.as_str()).unwrap_or("");
        (*only, format!("by rule {rule} ({why})"))
    } else {
        let facts = Facts::read(rec);
        let n = items.len();
        let procedure = principal_procedure(procedures);
        let score = |i: usize| model.score(&principal_features(&items[i], i, n, &items, &facts, procedure, policy));
        let best = decision.standing.iter().copied().fold(decision.standing[0], |b, i| if score(i) > score(b) { i } else { b });
        (best, format!("by the learned tie-break among {} (score {:.2})", decision.standing.len(), score(best)))
    };
    let principal = items.remove(best);
    notes.push(format!("principal {} {} {how}", principal.code.as_deref().unwrap_or(""), principal.name));
    items.insert(0, principal);
    (items, notes)
}

impl Agent for PrioritizeDiagnosesAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            role: Role::PrioritizeDiagnoses,
            backend: "knowledge".into(),
            model: format!("decision-list({} {}) + principal-logit({})", self.policy.name, self.policy.version, self.model.trained_on),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let (items, notes) = prioritize_diagnoses(input.record, input.items, input.other_track, &self.model, &self.policy);
        Ok(AgentOutput { items, notes, ..Default::default() })
    }
}

/// Principal procedure by the policy's tiers: therapeutic before diagnostic before adjunct.
pub struct PrioritizeProceduresAgent {
    pub policy: Arc<Policy>,
    /// The diagnoses' tie-break, for the rules that ask what the principal diagnosis is.
    pub model: Arc<PrincipalModel>,
}

impl Agent for PrioritizeProceduresAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            role: Role::PrioritizeProcedures,
            backend: "knowledge".into(),
            model: format!("therapeutic-order({} {})", self.policy.name, self.policy.version),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let mut items = input.items;
        let code = |i: &Item| i.code.clone().unwrap_or_default();
        let says = |w: &str| Section::ALL.iter().any(|&s| input.record.text(s).contains(w));
        let all: Vec<String> = items.iter().map(code).collect();
        items.sort_by_key(|i| if self.policy.continues_treatment(&code(i), &all, says) { u8::MAX } else { self.policy.procedure_tier(&code(i)) });
        let mut notes: Vec<String> = items
            .first()
            .map(|p| {
                let tier = self.policy.procedure_tier(&code(p));
                format!("principal procedure {} {} (tier {tier} of policy {})", code(p), p.name, self.policy.name)
            })
            .into_iter()
            .collect();
        // A procedure principal only beside a diagnosis of its own (resuscitation in an
        // admission for pneumonia): the principal diagnosis the list would choose decides, and
        // the next therapeutic procedure that may be principal takes its place.
        let first = items.first().map(code).unwrap_or_default();
        if items.len() > 1 && !input.other_track.is_empty() && self.policy.principal_only_for.iter().any(|t| in_families(&first, &t.procedures)) {
            let (dx, _) = prioritize_diagnoses(input.record, input.other_track.to_vec(), &items, &self.model, &self.policy);
            let principal_dx = dx.first().and_then(|d| d.code.clone()).unwrap_or_default();
            if let Some(rule) = self.policy.principal_only_for_failing(&first, &principal_dx) {
                let reach = self.policy.procedure_tier(&first).saturating_add(1).min(self.policy.procedure_rank.default_tier.saturating_sub(1));
                let next = items.iter().position(|i| self.policy.principal_only_for_failing(&code(i), &principal_dx).is_none() && self.policy.procedure_tier(&code(i)) <= reach);
                if let Some(j) = next {
                    let chosen = items.remove(j);
                    notes.push(format!(
                        "principal procedure {} {}: {first} is principal only beside a diagnosis of its own (policy rule {rule}), and the principal diagnosis is {principal_dx}",
                        code(&chosen),
                        chosen.name
                    ));
                    items.insert(0, chosen);
                }
            }
        }
        Ok(AgentOutput { items, notes, ..Default::default() })
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
        // Even data that always picks the last-listed candidate does not make the order count backwards.
        let position = PRINCIPAL_FEATURES.iter().position(|f| *f == "list_position").unwrap();
        let backwards: Vec<_> = (0..30)
            .map(|_| {
                let mut a = vec![0.0; dim];
                a[position] = 0.5;
                let mut b = vec![0.0; dim];
                b[position] = -0.5;
                vec![(a, false), (b, true)]
            })
            .collect();
        assert!(PrincipalModel::fit(&backwards, "synthetic").weights[position] >= 0.0);
    }
}
