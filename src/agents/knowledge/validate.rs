//! Validation: drop what the record does not support, recover what it shows but the lists
//! omit (labs, imaging, notes), fix mis-coded items, keep counts and status codes consistent.

use super::facts::{body_text, Facts};
use super::mine::mine_record;
use crate::terminology::families::same_family;
use super::text::{assertion, clause, find_all, Assertion};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Evidence, Item, Removal, Role};
use crate::record::{EhrRecord, Section};

/// Finding words → the diagnosis they establish when present (not negated) in the body text.
/// `clause_needs`: the clause must also name one of these (颈动脉 + 斑块).
struct Finding {
    code: &'static str,
    name: &'static str,
    words: &'static [&'static str],
    clause_needs: &'static [&'static str],
    /// Codes (prefixes) whose presence makes this one redundant.
    unless: &'static [&'static str],
}

const FINDINGS: &[Finding] = &[
    Finding { code: "R91.x00x003", name: "肺诊断性影像异常", words: &["肺结节", "肺部结节", "肺内结节", "肺小结节", "肺占位", "磨玻璃"], clause_needs: &[], unless: &["R91"] },
    Finding { code: "I70.806", name: "颈动脉硬化", words: &["斑块", "内中膜增厚", "硬化"], clause_needs: &["颈动脉"], unless: &["I70.8", "I65"] },
    Finding { code: "I70.203", name: "下肢动脉粥样硬化", words: &["斑块", "内中膜增厚", "硬化"], clause_needs: &["下肢动脉", "下肢动静脉"], unless: &["I70.2"] },
    Finding { code: "K76.000", name: "脂肪肝", words: &["脂肪肝"], clause_needs: &[], unless: &["K76.0", "K70", "K75.8"] },
    Finding { code: "K76.807", name: "肝囊肿", words: &["肝囊肿", "肝内囊肿", "肝脏囊肿"], clause_needs: &[], unless: &["K76.8"] },
    Finding { code: "K76.807", name: "肝囊肿", words: &["囊肿"], clause_needs: &["肝"], unless: &["K76.8"] },
    Finding { code: "N28.101", name: "单纯性肾囊肿", words: &["肾囊肿"], clause_needs: &[], unless: &["N28.1", "Q61"] },
    Finding { code: "E04.101", name: "甲状腺结节", words: &["甲状腺结节"], clause_needs: &[], unless: &["E04", "D34", "C73"] },
    Finding { code: "E04.101", name: "甲状腺结节", words: &["结节"], clause_needs: &["甲状腺"], unless: &["E04", "D34", "C73"] },
    Finding { code: "Q24.501", name: "冠状动脉肌桥", words: &["心肌桥", "肌桥"], clause_needs: &[], unless: &["Q24.5"] },
    Finding { code: "I38.x01", name: "心脏瓣膜病", words: &["瓣膜退行性变", "瓣膜钙化", "瓣膜病"], clause_needs: &[], unless: &["I34", "I35", "I36", "I37", "I38", "I05", "I06", "I07", "I08"] },
    Finding { code: "I69.300x002", name: "陈旧性脑梗死", words: &["陈旧性脑梗", "腔隙性脑梗", "软化灶"], clause_needs: &[], unless: &["I69.3", "I63"] },
    Finding { code: "J98.414", name: "肺部感染", words: &["肺部感染"], clause_needs: &[], unless: &["J98.4", "J18", "J15"] },
    Finding { code: "J18.900", name: "肺炎", words: &["肺炎"], clause_needs: &[], unless: &["J18", "J98.4", "J15", "J12"] },
];

/// Rhythm findings on ECG/Holter → codes; any of them also brings the 心律失常 umbrella code
/// that this coding practice records beside the specific one.
/// Occasional (偶发) premature beats are not coded one by one; see [`occasional_beats`].
const RHYTHM: &[(&str, &str, &str)] = &[
    ("频发室性早搏", "I49.300x001", "频发性室性期前收缩"),
    ("频发室性期前收缩", "I49.300x001", "频发性室性期前收缩"),
    ("频发多源室性早搏", "I49.300x001", "频发性室性期前收缩"),
    ("频发房性早搏", "I49.100x002", "频发性房性期前收缩"),
    ("频发室上性早搏", "I49.100x002", "频发性房性期前收缩"),
    ("阵发性心房颤动", "I48.x02", "阵发性心房颤动"),
    ("阵发性房颤", "I48.x02", "阵发性心房颤动"),
    ("心房颤动", "I48.x01", "心房颤动"),
    ("房颤", "I48.x01", "心房颤动"),
];

pub struct ValidateDiagnosesAgent;
pub struct ValidateProceduresAgent;

fn has_prefix(items: &[Item], prefixes: &[&str]) -> bool {
    items.iter().any(|i| i.code.as_deref().is_some_and(|c| prefixes.iter().any(|p| c.starts_with(p))))
}

fn has_code(items: &[Item], code: &str) -> bool {
    items.iter().any(|i| i.code.as_deref() == Some(code))
}

fn recovered(code: &str, name: &str, why: &str, ev: Option<Evidence>, confidence: f32) -> Item {
    Item {
        name: name.into(),
        code: Some(code.into()),
        mention: why.into(),
        evidence: ev.into_iter().collect(),
        confidence,
        origin: "validate".into(),
    }
}

/// First present (not negated, not planned) occurrence of any word in a section.
fn present_in(rec: &EhrRecord, sections: &[Section], words: &[&str], clause_needs: &[&str]) -> Option<Evidence> {
    for &sec in sections {
        let text = rec.text(sec);
        for w in words {
            for (s, e) in find_all(text, w) {
                if !matches!(assertion(text, s, e), Assertion::Present) {
                    continue;
                }
                if !clause_needs.is_empty() {
                    // The organ must be named just before the finding (颈动脉内中膜增厚并斑块),
                    // not anywhere in a long sentence about other vessels.
                    let before: String = text.chars().take(s).collect::<Vec<_>>().into_iter().rev().take(16).collect::<Vec<_>>().into_iter().rev().collect();
                    let Some(organ_at) = clause_needs.iter().filter_map(|n| before.rfind(n).map(|p| p + n.len())).max() else { continue };
                    let between = &before[organ_at..];
                    if between.contains("未见") || between.contains('。') || between.contains('；') || between.contains("无明显") {
                        continue;
                    }
                }
                return Some(Evidence { section: sec, start: s, end: e, text: (*w).into() });
            }
        }
    }
    None
}

const FINDING_SECTIONS: [Section; 7] = [
    Section::ClinicalCourse,
    Section::ImagingFindings,
    Section::UltrasoundFindings,
    Section::UltrasoundImpression,
    Section::ProgressNotes,
    Section::AdmissionStatus,
    Section::OperativeReport,
];
const HISTORY: [Section; 3] = [Section::PastHistory, Section::PresentIllness, Section::AdmissionStatus];

pub fn validate_diagnoses(rec: &EhrRecord, mut items: Vec<Item>, procedures: &[Item]) -> AgentOutput {
    let facts = Facts::read(rec);
    let mut out = AgentOutput::default();

    // 1. Negated or ruled-out in their own evidence.
    items.retain(|it| {
        let negated = it.origin == "standardize"
            && it.evidence.iter().any(|ev| {
                let text = rec.text(ev.section);
                let (cl, _) = clause(text, ev.start, ev.end);
                cl.contains("排除") && !cl.contains("不排除") || cl.starts_with("否认")
            });
        if negated {
            out.removed.push(Removal { item: it.clone(), reason: "ruled out in the record (排除/否认)".into() });
        }
        !negated
    });

    // 2. Fix mis-coded: the course decides the kind of coronary syndrome and heart failure.
    let coronary = has_prefix(&items, &["I20", "I21", "I24", "I25.1"]);
    // A symptom admitted for work-up (胸痛原因待查) resolved by the course: the diagnosis
    // established replaces the symptom as principal.
    let symptom_first = items.first().and_then(|i| i.code.as_deref()).is_none_or(|c| c.starts_with('R'));
    let no_cardiac = !has_prefix(&items, &["I20", "I21", "I22", "I25.1", "I50", "I47", "I48"]);
    if facts.chest_pain && (symptom_first || no_cardiac) {
        let established = if facts.troponin_high && !facts.st_elevation {
            Some(("I21.401", "急性非ST段抬高型心肌梗死", "胸痛待查：肌钙蛋白升高"))
        } else if facts.significant_stenosis || facts.pci_done {
            Some(("I20.000", "不稳定型心绞痛", "胸痛待查：冠脉显著狭窄"))
        } else if facts.coronary_no_significant_stenosis {
            Some(("I20.800x007", "微血管性心绞痛", "胸痛待查：冠脉无明显狭窄"))
        } else {
            None
        };
        if let Some((code, name, why)) = established {
            out.notes.push(format!("work-up resolved: {code} {name}"));
            items.insert(0, recovered(code, name, why, None, 0.6));
        }
    }
    let principal_is = |items: &[Item], ps: &[&str]| items.first().and_then(|i| i.code.as_deref()).is_some_and(|c| ps.iter().any(|p| c.starts_with(p)));
    if facts.troponin_high && coronary && !has_prefix(&items, &["I21", "I22"]) && !facts.st_elevation {
        out.notes.push("troponin raised with coronary disease: NSTEMI".into());
        let nstemi = recovered("I21.401", "急性非ST段抬高型心肌梗死", "肌钙蛋白升高", None, 0.7);
        // An infarction supersedes the angina or coronary disease it was admitted as.
        if principal_is(&items, &["I20", "I24", "I25.1"]) {
            items.insert(0, nstemi);
        } else {
            items.push(nstemi);
        }
    }
    let angina: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.code.as_deref().is_some_and(|c| c == "I20.000" || c.starts_with("I20.9")))
        .map(|(n, _)| n)
        .collect();
    if !angina.is_empty() && facts.coronary_no_significant_stenosis && !facts.significant_stenosis && !facts.pci_done && !has_prefix(&items, &["I21"]) {
        for n in angina.into_iter().rev() {
            let old = items.remove(n);
            out.removed.push(Removal { item: old.clone(), reason: "angiography without significant stenosis: microvascular angina".into() });
            let mut new = recovered("I20.800x007", "微血管性心绞痛", "冠脉无明显狭窄", None, 0.7);
            new.evidence = old.evidence;
            if !has_code(&items, "I20.800x007") {
                items.insert(n, new);
            }
        }
    }
    let chronic_hf = present_in(rec, &[Section::AdmissionDiagnosis, Section::DischargeDiagnosis, Section::PresentIllness, Section::PastHistory], &["慢性心力衰竭", "慢性心功能不全", "慢性心衰"], &[]);
    // Heart failure long known (a NYHA class, a cardiomyopathy, or years of dyspnoea) that
    // brought the patient in now is chronic heart failure acutely worsened.
    let known_hf = has_prefix(&items, &["I50.900x0", "I42", "I50.903", "I50.904", "I50.905"]) || has_prefix(&items, &["I50"]) && facts.long_dyspnea;
    let chronic_hf = chronic_hf.or_else(|| known_hf.then(|| Evidence { section: Section::ChiefComplaint, start: 0, end: 0, text: String::new() }));
    if chronic_hf.is_some() && (facts.hf_exacerbation_words || facts.dyspnea && facts.recent_worsening || facts.bnp_high && facts.dyspnea) && !has_code(&items, "I50.900x018") {
        out.notes.push("chronic heart failure worsening this admission".into());
        let worse = recovered("I50.900x018", "慢性心功能不全急性加重", "慢性心衰加重", chronic_hf, 0.7);
        if principal_is(&items, &["I50"]) {
            items.insert(0, worse);
        } else {
            items.push(worse);
        }
    }

    // 3. Omissions recovered from labs, imaging and notes.
    let mut add = |items: &mut Vec<Item>, code: &str, name: &str, why: &str, ev: Option<Evidence>, conf: f32| {
        if !has_code(items, code) {
            out.notes.push(format!("recovered {code} {name}: {why}"));
            items.push(recovered(code, name, why, ev, conf));
        }
    };
    if !has_prefix(&items, &["E10", "E11", "E12", "E13", "E14"]) {
        let hist = present_in(rec, &HISTORY, &["2型糖尿病", "糖尿病"], &[]);
        if facts.hba1c.is_some_and(|v| v >= 6.5) || facts.ogtt_2h.is_some_and(|v| v >= 11.1) || facts.antidiabetic_drugs || hist.is_some() {
            add(&mut items, "E11.900", "2型糖尿病", "HbA1c/OGTT/降糖药/病史", hist, 0.7);
        }
    }
    if !has_prefix(&items, &["E78"]) {
        if let Some(ev) = present_in(rec, &HISTORY, &["高脂血症", "血脂升高", "高血脂", "血脂异常"], &[]) {
            add(&mut items, "E78.500", "高脂血症", "病史", Some(ev), 0.65);
        }
    }
    for f in FINDINGS {
        if has_prefix(&items, f.unless) {
            continue;
        }
        if let Some(ev) = present_in(rec, &FINDING_SECTIONS, f.words, f.clause_needs) {
            add(&mut items, f.code, f.name, "影像/检查所见", Some(ev), 0.6);
        }
    }
    if facts.potassium.is_some_and(|k| k < 3.5) && !has_prefix(&items, &["E87.6"]) {
        add(&mut items, "E87.600", "低钾血症", "血钾 < 3.5 mmol/L", None, 0.6);
    }
    // Mild elevation (15–30 μmol/L) is common and rarely treated; intermediate and above is.
    if facts.homocysteine.is_some_and(|h| h > 30.0) && !has_prefix(&items, &["E72.1"]) {
        add(&mut items, "E72.101", "高同型半胱氨酸血症", "同型半胱氨酸 > 30 μmol/L", None, 0.6);
    }
    if facts.hemoglobin.is_some_and(|h| h < 110.0) && !has_prefix(&items, &["D5", "D6", "D46", "N18"]) {
        add(&mut items, "D64.900", "贫血", "血红蛋白 < 110 g/L", None, 0.5);
    }
    if facts.uric_acid.is_some_and(|u| u > 420.0) && !has_prefix(&items, &["E79", "M10"]) {
        add(&mut items, "E79.000", "高尿酸血症不伴有感染性关节炎体征和砂砾性病", "尿酸 > 420 μmol/L", None, 0.5);
    }
    for (word, code, name) in RHYTHM {
        // One kind of atrial fibrillation is enough.
        if code.starts_with("I48") && has_prefix(&items, &["I48"]) {
            continue;
        }
        if let Some(ev) = present_in(rec, &FINDING_SECTIONS, &[word], &[]) {
            if !has_prefix(&items, &[&code[..6]]) {
                add(&mut items, code, name, "心电图/Holter", Some(ev), 0.55);
            }
        }
    }
    if !has_prefix(&items, &["I49.4"]) && occasional_beats(rec) {
        add(&mut items, "I49.400x002", "偶发房室性期前收缩", "偶发房性与室性早搏", None, 0.55);
    }
    let arrhythmia = has_prefix(&items, &["I44", "I45", "I47", "I48", "I49"]);
    if arrhythmia && !has_code(&items, "I49.900") {
        add(&mut items, "I49.900", "心律失常", "具体心律失常之上位诊断", None, 0.6);
    }
    if (has_prefix(&items, &["I20", "I21"]) || facts.significant_stenosis || facts.pci_done) && !has_prefix(&items, &["I25.1"]) {
        add(&mut items, "I25.103", "冠状动脉粥样硬化性心脏病", "冠脉病变/心绞痛/心梗", None, 0.65);
    }
    if !has_prefix(&items, &["I25.2"]) {
        if let Some(ev) = present_in(rec, &[Section::PastHistory, Section::AdmissionDiagnosis], &["陈旧性心肌梗死", "陈旧性心梗"], &[]) {
            add(&mut items, "I25.200", "陈旧性心肌梗死", "病史", Some(ev), 0.6);
        }
    }

    // 4. Status codes only for earlier admissions: a stent placed now is a procedure.
    let stent_now = procedures.iter().any(|p| p.code.as_deref().is_some_and(|c| c.starts_with("36.06") || c.starts_with("36.07")));
    let stent_before = present_in(rec, &[Section::PastHistory, Section::AdmissionDiagnosis, Section::PresentIllness], &["支架植入术后", "支架置入术后", "PCI术后", "支架术后"], &[]);
    if stent_before.is_some() && !has_prefix(&items, &["Z95.5"]) {
        add(&mut items, "Z95.501", "冠状动脉支架植入后状态", "既往支架", stent_before.clone(), 0.6);
    }
    if stent_now && stent_before.is_none() {
        items.retain(|i| {
            let drop = i.code.as_deref().is_some_and(|c| c.starts_with("Z95.5"));
            if drop {
                out.removed.push(Removal { item: i.clone(), reason: "stent placed in this admission is a procedure, not a status".into() });
            }
            !drop
        });
    }

    out.items = drop_redundant_bases(items, &mut out.removed);
    out
}

/// A base code beside its own more specific code (00.6600 beside 00.6600x004) is redundant.
fn drop_redundant_bases(mut items: Vec<Item>, removed: &mut Vec<Removal>) -> Vec<Item> {
    let codes: Vec<String> = items.iter().filter_map(|i| i.code.clone()).collect();
    items.retain(|i| {
        let Some(c) = i.code.as_deref() else { return true };
        let redundant = codes.iter().any(|o| o != c && o.starts_with(c) && o.len() > c.len());
        if redundant {
            removed.push(Removal { item: i.clone(), reason: "a more specific code of the same concept is present".into() });
        }
        !redundant
    });
    items
}

/// Occasional atrial (or supraventricular) and ventricular premature beats together.
fn occasional_beats(rec: &EhrRecord) -> bool {
    let atrial = present_in(rec, &FINDING_SECTIONS, &["偶发房性早搏", "偶发室上性早搏", "偶发房性期前收缩"], &[]).is_some();
    let ventricular = present_in(rec, &FINDING_SECTIONS, &["偶发室性早搏", "偶发多源室性早搏", "偶发室性期前收缩"], &[]).is_some();
    atrial && ventricular
}

pub fn validate_procedures(rec: &EhrRecord, items: Vec<Item>) -> AgentOutput {
    let mut out = AgentOutput::default();
    let mined = mine_record(rec);
    let body = body_text(rec);
    let mut kept: Vec<Item> = Vec::new();
    for it in items {
        let code = it.code.clone().unwrap_or_default();
        // Code-also suggestions stand only where the notes show the procedure.
        if it.origin == "code-also" {
            let supported = mined.iter().any(|m| m.code.as_deref().is_some_and(|c| c == code || same_family(c, &code)))
                || (code.starts_with("00.66") && (body.contains("球囊") || body.contains("PTCA")))
                || (code.starts_with("00.44") && body.contains("分叉"));
            if !supported {
                out.removed.push(Removal { item: it, reason: "code-also suggestion not supported by the operative report".into() });
                continue;
            }
        }
        // One count code per family: the one the report supports, else the first.
        if let Some(pos) = kept.iter().position(|k| k.code.as_deref().is_some_and(|c| same_family(c, &code) && c != code)) {
            let report = mined.iter().find(|m| m.code.as_deref().is_some_and(|c| same_family(c, &code))).and_then(|m| m.code.clone());
            if report.as_deref() == Some(code.as_str()) {
                let old = kept.remove(pos);
                out.removed.push(Removal { item: old, reason: format!("count inconsistent with the operative report ({code})") });
            } else {
                out.removed.push(Removal { item: it, reason: "count inconsistent with the operative report".into() });
                continue;
            }
        }
        if kept.iter().any(|k| k.code == it.code) {
            continue;
        }
        kept.push(it);
    }
    out.items = drop_redundant_bases(kept, &mut out.removed);
    out
}

impl Agent for ValidateDiagnosesAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::ValidateDiagnoses, backend: "knowledge".into(), model: "rules+facts".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        Ok(validate_diagnoses(input.record, input.items, input.other_track))
    }
}

impl Agent for ValidateProceduresAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::ValidateProcedures, backend: "knowledge".into(), model: "rules".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        Ok(validate_procedures(input.record, input.items))
    }
}
