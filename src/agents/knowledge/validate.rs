//! Validation: drop what the record does not support, recover what it shows but the lists
//! omit (labs, imaging, notes), fix mis-coded items, keep counts and status codes consistent.

use std::sync::Arc;

use super::facts::{body_text, Facts};
use crate::terminology::policy::Policy;
use super::course_diagnoses::{ruled_out, COURSE};
use super::mine::{generic_beside_specific, mine_record};
use super::prioritize::decide_principal;
use crate::terminology::families::{in_families, same_family};
use super::text::{assertion, chars_before, clause, find_all, Assertion};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Evidence, Item, Removal, Role};
use crate::record::{EhrRecord, Section};

/// Validation of diagnoses under a coding policy (which findings, umbrella, companion and
/// status codes are coded).
pub struct ValidateDiagnosesAgent {
    pub policy: Arc<Policy>,
}

pub struct ValidateProceduresAgent {
    pub policy: Arc<Policy>,
}

/// Whether any item's code is of the families given.
fn has_prefix<S: AsRef<str>>(items: &[Item], families: &[S]) -> bool {
    items.iter().any(|i| i.code.as_deref().is_some_and(|c| in_families(c, families)))
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

/// A word that goes on as an organism's name (肺炎克雷伯菌, 肺炎链球菌, 肺炎支原体): a culture's
/// result, not the disease.
fn names_organism(text: &str, end: usize) -> bool {
    let after: String = text.chars().skip(end).take(3).collect();
    ["克雷伯", "链球菌", "支原体", "衣原体", "球菌", "杆菌"].iter().any(|o| after.starts_with(o))
}

/// First present (not negated, not planned) occurrence of any word in a section.
fn present_in<W: AsRef<str>>(rec: &EhrRecord, sections: &[Section], words: &[W], clause_needs: &[W]) -> Option<Evidence> {
    for &sec in sections {
        let text = rec.text(sec);
        for w in words {
            let w = w.as_ref();
            for (s, e) in find_all(text, w) {
                if !matches!(assertion(text, s, e), Assertion::Present) || names_organism(text, e) {
                    continue;
                }
                if !clause_needs.is_empty() {
                    // The organ must be named just before the finding (颈动脉内中膜增厚并斑块),
                    // not anywhere in a long sentence about other vessels.
                    let before = chars_before(text, s, 16);
                    let Some(organ_at) = clause_needs.iter().filter_map(|n| before.rfind(n.as_ref()).map(|p| p + n.as_ref().len())).max() else { continue };
                    let between = &before[organ_at..];
                    if between.contains("未见") || between.contains('。') || between.contains('；') || between.contains("无明显") {
                        continue;
                    }
                }
                return Some(Evidence { section: sec, start: s, end: e, text: w.into() });
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
/// Where a treatment given this stay is told.
const TREATMENT_SECTIONS: [Section; 4] = [Section::ClinicalCourse, Section::ProgressNotes, Section::OperativeReport, Section::DischargeOrders];
const HISTORY: [Section; 3] = [Section::PastHistory, Section::PresentIllness, Section::AdmissionStatus];

pub fn validate_diagnoses(rec: &EhrRecord, mut items: Vec<Item>, procedures: &[Item], policy: &Policy) -> AgentOutput {
    let facts = Facts::read(rec);
    let mut out = AgentOutput::default();
    let principal_in = items.first().and_then(|i| i.code.clone());

    // 1. Negated or ruled-out in their own evidence.
    items.retain(|it| {
        let negated = it.origin == "standardize"
            && it.evidence.iter().any(|ev| {
                let text = rec.text(ev.section);
                let (cl, rel) = clause(text, ev.start, ev.end);
                let own = ev.text.trim_start();
                ruled_out_before(&cl, rel) || own.starts_with("排除") || own.starts_with("除外") || cl.starts_with("否认")
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
    // (Prioritization may have put a comorbidity before the 心慌原因待查 the patient came with.)
    let symptom_first = items.first().and_then(|i| i.code.as_deref()).is_none_or(|c| c.starts_with('R'))
        || items.iter().any(|i| i.origin == "standardize" && i.code.as_deref().is_some_and(|c| c.starts_with('R')) && i.mention.contains("待查"));
    let no_cardiac = !has_prefix(&items, &["I20", "I21", "I22", "I25.1", "I50", "I47", "I48"]);
    // A diagnosis other than a symptom or a comorbidity explains the chest pain (反流性食管炎
    // after a negative work-up): the work-up found that, not angina.
    let explained = items.iter().any(|i| {
        i.code.as_deref().is_some_and(|c| !c.starts_with('R') && !c.starts_with('Z') && !["I10", "I11", "I12", "I15", "E1", "E78", "E79", "E66", "E04", "I25.2", "I69", "K76", "N28", "I70"].iter().any(|p| c.starts_with(p)))
    });
    // 排除冠心病: the course found the chest's complaint is not coronary.
    let coronary_ruled_out = ruled_out(rec).iter().any(|r| ["冠心病", "心绞痛", "冠状动脉", "冠脉综合征", "ACS", "心肌梗死", "心梗"].iter().any(|w| r.contains(w)));
    // Troponin also rises with pulmonary embolism, myocarditis and sepsis, and after a
    // ventricular tachycardia, fibrillation or arrest and its shocks: no infarction there.
    // (Found, not asked: a 肺栓塞？ of the admission the course may rule out.)
    let troponin_explained = items
        .iter()
        .filter(|i| !i.mention.contains('?') && !i.mention.contains('？'))
        .any(|i| i.code.as_deref().is_some_and(|c| in_families(c, &["I26", "I40", "I41", "A41", "R57.2", "I47.2", "I49.0", "I46"])));
    if facts.chest_pain && (symptom_first || no_cardiac && !explained) && !coronary_ruled_out {
        let established = if facts.troponin_high && !facts.st_elevation && !troponin_explained {
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
    // The work-up ruled the coronary cause out and found no other (胸痛原因未明确): coded from
    // the course, the chest pain itself is what the admission was for (a symptom is principal
    // when nothing explains it).
    if facts.chest_pain && coronary_ruled_out && !explained && !rec.has(Section::DischargeDiagnosis) && !has_prefix(&items, &["R07", "I20", "I21", "I24"]) {
        out.notes.push("work-up found no cause: R07.400 胸痛".into());
        items.insert(0, recovered("R07.400", "胸痛", "冠心病已排除，胸痛原因未明", None, 0.6));
    }
    let chronic_hf = present_in(rec, &[Section::AdmissionDiagnosis, Section::DischargeDiagnosis, Section::PresentIllness, Section::PastHistory], &["慢性心力衰竭", "慢性心功能不全", "慢性心衰"], &[]);
    // Heart failure with years of dyspnoea that brought the patient in now is chronic heart
    // failure acutely worsened; a NYHA class or a cardiomyopathy alone does not say it is
    // chronic (an infarction's acute failure has a class too).
    let known_hf = has_prefix(&items, &["I50"]) && facts.long_dyspnea;
    let chronic_hf = chronic_hf.or_else(|| known_hf.then(|| Evidence { section: Section::ChiefComplaint, start: 0, end: 0, text: String::new() }));
    // Breathlessness worse lately in an admission for something else (a pneumonia, a COPD
    // exacerbation, a bleed) is that illness's; the heart failure beside it worsened only
    // where the notes say so in words.
    let cardiac_admission = items.first().and_then(|i| i.code.as_deref()).is_some_and(|c| c.starts_with('I'));
    let hf_worse_in_words = || {
        present_in(
            rec,
            &[Section::ChiefComplaint, Section::PresentIllness, Section::ClinicalCourse],
            &["心衰加重", "心力衰竭加重", "心功能不全加重", "心衰急性加重", "心力衰竭急性加重"],
            &[],
        )
        .is_some()
    };
    // An admission for a pacemaker, CRT or ICD is planned for a failing heart that is stable
    // enough for it: its breathlessness of months is the indication, not a decompensation.
    let device_admission = procedures.iter().any(|p| p.code.as_deref().is_some_and(|c| in_families(c, DEVICE_IMPLANTS)));
    let hf_worsening = has_code(&items, "I50.900x018")
        || chronic_hf.is_some()
            && (hf_worse_in_words()
                || cardiac_admission && !device_admission && (facts.hf_exacerbation_words || facts.dyspnea && facts.recent_worsening || facts.bnp_high && facts.dyspnea));
    let principal_is = |items: &[Item], ps: &[&str]| items.first().and_then(|i| i.code.as_deref()).is_some_and(|c| ps.iter().any(|p| c.starts_with(p)));
    // So does a failing heart that decompensates: the worsening of a chronic heart failure is
    // what the rise tells of, unless the doctor calls it an infarction.
    let other_cause = troponin_explained || hf_worsening;
    if facts.troponin_high && coronary && !other_cause && !has_prefix(&items, &["I21", "I22"]) && !facts.st_elevation {
        out.notes.push("troponin raised with coronary disease: NSTEMI".into());
        let nstemi = recovered("I21.401", "急性非ST段抬高型心肌梗死", "肌钙蛋白升高", None, 0.7);
        // An infarction supersedes the angina or coronary disease it was admitted as, and the
        // heart failure a Killip class says is the infarction's. Heart failure otherwise stays
        // principal: troponin leaks when failing hearts decompensate.
        let killip = has_prefix(&items, &["I50.900x014", "I50.900x015", "I50.900x016"]);
        if principal_is(&items, &["I20", "I24", "I25.1"]) || killip && principal_is(&items, &["I50"]) {
            items.insert(0, nstemi);
        } else {
            items.push(nstemi);
        }
        // The angina or acute coronary syndrome it was admitted as is the infarction now.
        items.retain(|i| {
            let superseded = i.code.as_deref().is_some_and(|c| c.starts_with("I20") || c.starts_with("I24.9"));
            if superseded {
                out.removed.push(Removal { item: i.clone(), reason: "the angina admitted is an infarction by its troponin".into() });
            }
            !superseded
        });
    }
    // An infarction of unstated type whose ECG shows ST depression, never elevation, is a
    // non-ST-elevation infarction.
    if facts.st_depression && !facts.st_elevation {
        if let Some(n) = items.iter().position(|i| i.code.as_deref().is_some_and(|c| c.starts_with("I21.9"))) {
            let old = items.remove(n);
            out.removed.push(Removal { item: old.clone(), reason: "ST depression without elevation: NSTEMI".into() });
            if !has_code(&items, "I21.401") {
                let mut nstemi = recovered("I21.401", "急性非ST段抬高型心肌梗死", "心电图ST段压低", None, 0.7);
                nstemi.evidence = old.evidence;
                items.insert(n, nstemi);
            }
        }
    }
    // A coronary intervention (a procedure the policy says treats angina) treats an angina or
    // an infarction: where the lists name only the coronary disease it was done in (冠心病 …
    // 行冠状动脉药物球囊扩张术), the angina it was done for is unstable angina, and it is what
    // the admission treated.
    let pci_now = procedures.iter().any(|p| p.code.as_deref().is_some_and(|c| policy.treated_by(c).any(|d| d == "I20")));
    if pci_now && has_prefix(&items, &["I25.1"]) && !has_prefix(&items, &["I20", "I21", "I22", "I24"]) && !coronary_ruled_out {
        out.notes.push("a coronary intervention with no angina or infarction listed: I20.000".into());
        items.insert(0, recovered("I20.000", "不稳定型心绞痛", "冠脉介入治疗所针对的心绞痛", None, 0.6));
    }
    let angina: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.code.as_deref().is_some_and(|c| c == "I20.000" || c.starts_with("I20.9")))
        .map(|(n, _)| n)
        .collect();
    if !angina.is_empty() && !coronary_ruled_out && facts.coronary_no_significant_stenosis && !facts.significant_stenosis && !facts.pci_done && !has_prefix(&items, &["I21"]) {
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
    if hf_worsening && !has_code(&items, "I50.900x018") {
        out.notes.push("chronic heart failure worsening this admission".into());
        let worse = recovered("I50.900x018", "慢性心功能不全急性加重", "慢性心衰加重", chronic_hf, 0.7);
        // The worsening is what brought the patient in, before the heart failure or the
        // cardiomyopathy that fails (the class codes are not principal, so the cardiomyopathy
        // may have been put first).
        if principal_is(&items, &["I50", "I42", "I25.5"]) {
            items.insert(0, worse);
        } else {
            items.push(worse);
        }
    }

    // 3. Omissions recovered from labs, imaging and notes.
    // The omissions recovered here (labs, findings, umbrella, companion and status codes):
    // secondary diagnoses, never the principal in place of one listed.
    let mut omissions: Vec<String> = Vec::new();
    let mut add = |items: &mut Vec<Item>, code: &str, name: &str, why: &str, ev: Option<Evidence>, conf: f32| {
        if !has_code(items, code) {
            out.notes.push(format!("recovered {code} {name}: {why}"));
            omissions.push(code.to_owned());
            items.push(recovered(code, name, why, ev, conf));
        }
    };
    // Diagnoses established by labs, drugs or the history, where the policy codes them.
    let mut lab_rules: Vec<(&str, bool, &str, Option<Evidence>)> = Vec::new();
    if !has_prefix(&items, &["E10", "E11", "E12", "E13", "E14"]) {
        let hist = present_in(rec, &HISTORY, &["2型糖尿病", "糖尿病"], &[]);
        // A history that denies diabetes leaves the labs to establish it, not the drugs.
        let denied = rec.text(Section::PastHistory).split(['。', '；', ';']).any(|c| c.contains("否认") && c.contains("糖尿病"));
        let seen = facts.hba1c.is_some_and(|v| v >= 6.5) || facts.ogtt_2h.is_some_and(|v| v >= 11.1) || (facts.antidiabetic_drugs && !denied) || hist.is_some();
        lab_rules.push(("diabetes", seen, "HbA1c/OGTT/降糖药/病史", hist));
    }
    if !has_prefix(&items, &["E78"]) {
        let ev = present_in(rec, &HISTORY, &["高脂血症", "血脂升高", "高血脂", "血脂异常"], &[]);
        lab_rules.push(("hyperlipidaemia-history", ev.is_some(), "病史", ev));
        // The raised levels of the Chinese lipid guideline (中国血脂管理指南): TC ≥ 6.2,
        // LDL-C ≥ 4.1, TG ≥ 2.3 mmol/L.
        let raised = facts.total_cholesterol.is_some_and(|v| v >= 6.2) || facts.ldl.is_some_and(|v| v >= 4.1) || facts.triglycerides.is_some_and(|v| v >= 2.3);
        lab_rules.push(("hyperlipidaemia-labs", raised, "TC ≥ 6.2 / LDL-C ≥ 4.1 / TG ≥ 2.3 mmol/L", None));
    }
    let mut not_coded = Vec::new();
    for f in &policy.findings {
        if has_prefix(&items, &f.unless) {
            continue;
        }
        if let Some(ev) = present_in(rec, &FINDING_SECTIONS, &f.words, &f.near) {
            let treated = f.treated.is_empty() || present_in(rec, &TREATMENT_SECTIONS, &f.treated, &[]).is_some();
            if f.coded && treated {
                add(&mut items, &f.code, &f.id, "影像/检查所见", Some(ev), 0.6);
            } else if f.coded {
                not_coded.push(format!("not coded (policy {}, finding {}): {} seen in {}, no treatment told", policy.name, f.id, f.code, ev.section.key()));
            } else {
                not_coded.push(format!("not coded (policy {}, finding {}): {} seen in {}", policy.name, f.id, f.code, ev.section.key()));
            }
        }
    }
    lab_rules.push(("hypokalaemia", facts.potassium.is_some_and(|k| k < 3.5) && !has_prefix(&items, &["E87.6"]), "血钾 < 3.5 mmol/L", None));
    lab_rules.push(("hyperkalaemia", facts.potassium_high.is_some_and(|k| k > 5.5) && !has_prefix(&items, &["E87.5"]), "血钾 > 5.5 mmol/L", None));
    lab_rules.push(("hyponatraemia", facts.sodium.is_some_and(|n| n < 135.0) && !has_prefix(&items, &["E87.1"]), "血钠 < 135 mmol/L", None));
    lab_rules.push(("hypomagnesaemia", facts.magnesium.is_some_and(|m| m < 0.7) && !has_prefix(&items, &["E83.4"]), "血镁 < 0.7 mmol/L", None));
    // Mild elevation (15–30 μmol/L) is common and rarely treated; intermediate and above is.
    lab_rules.push(("hyperhomocysteinaemia", facts.homocysteine.is_some_and(|h| h > 30.0) && !has_prefix(&items, &["E72.1"]), "同型半胱氨酸 > 30 μmol/L", None));
    lab_rules.push(("anaemia", facts.hemoglobin.is_some_and(|h| h < 110.0) && !has_prefix(&items, &["D5", "D6", "D46", "N18"]), "血红蛋白 < 110 g/L", None));
    lab_rules.push(("hyperuricaemia", facts.uric_acid.is_some_and(|u| u > 420.0) && !has_prefix(&items, &["E79", "M10"]), "尿酸 > 420 μmol/L", None));
    // The heart failure of an infarction, where the course treats it (利尿, 呋塞米); the
    // policy's `unless` says which heart-failure codes already tell of it.
    lab_rules.push(("infarction-heart-failure", has_prefix(&items, &["I21", "I22"]), "急性心肌梗死", None));
    lab_rules.push(("occasional-beats", !has_prefix(&items, &["I49.4"]) && occasional_beats(rec), "偶发房性与室性早搏", None));
    for (id, seen, why, ev) in lab_rules {
        if !seen {
            continue;
        }
        match policy.coded_lab(id) {
            Some(lab) if has_prefix(&items, &lab.unless) => not_coded.push(format!("not coded (policy {}, lab rule {id}): {why}, beside one of {}", policy.name, lab.unless.join(" "))),
            Some(lab) if lab.treated.is_empty() => add(&mut items, &lab.code, id, why, ev, 0.6),
            Some(lab) => match present_in(rec, &TREATMENT_SECTIONS, &lab.treated, &[]) {
                Some(treated) => add(&mut items, &lab.code, id, &format!("{why}，予{}", treated.text), Some(ev.unwrap_or(treated)), 0.6),
                None => not_coded.push(format!("not coded (policy {}, lab rule {id}): {why}, no treatment told", policy.name)),
            },
            None => not_coded.push(format!("not coded (policy {}, lab rule {id}): {why}", policy.name)),
        }
    }
    for u in &policy.umbrellas {
        let specific = items.iter().any(|i| i.code.as_deref().is_some_and(|c| c != u.code && in_families(c, &u.specific)));
        if !specific {
            continue;
        }
        if u.coded {
            add(&mut items, &u.code, &u.id, "具体诊断之上位诊断（编码政策）", None, 0.6);
        } else if has_code(&items, &u.code) {
            let at = items.iter().position(|i| i.code.as_deref() == Some(u.code.as_str())).expect("present");
            let old = items.remove(at);
            out.removed.push(Removal { item: old, reason: format!("umbrella code beside a specific one (policy {}, {})", policy.name, u.id) });
        }
    }
    // A base code beside a code of its own subcategory that says more (重症肌无力 G70.000 beside
    // 重症肌无力危象 G70.007, 酒精性肝硬化 K70.300 beside its extension): D2, the one that says
    // more. Codes the policy's umbrellas keep on purpose are theirs to keep.
    let kept_umbrella = |c: &str| policy.umbrellas.iter().any(|u| u.coded && u.code == c);
    let codes_now: Vec<String> = items.iter().filter_map(|i| i.code.clone()).collect();
    let base_beside_own = |c: &str| {
        c.len() == 7 && c.ends_with("00") && !kept_umbrella(c) && codes_now.iter().any(|o| o != c && o.get(..5) == c.get(..5))
    };
    let (bases, rest): (Vec<Item>, Vec<Item>) = std::mem::take(&mut items).into_iter().partition(|i| i.code.as_deref().is_some_and(base_beside_own));
    items = rest;
    out.removed.extend(bases.into_iter().map(|item| Removal { item, reason: "a base code beside a code of its own subcategory that says more (D2)".into() }));
    let holds = |f: &String| match f.as_str() {
        "significant_stenosis" => facts.significant_stenosis,
        "no_significant_stenosis" => facts.coronary_no_significant_stenosis && !facts.significant_stenosis,
        "pci_done" => facts.pci_done,
        "troponin_high" => facts.troponin_high,
        "cag_done" => facts.cag_done,
        _ => false,
    };
    for c in &policy.companions {
        let by_fact = c.facts.iter().any(holds);
        if (has_prefix(&items, &c.with) || by_fact) && !has_prefix(&items, &c.unless) && !c.unless_facts.iter().any(holds) {
            add(&mut items, &c.code, &c.id, "伴随编码（编码政策）", None, 0.65);
        }
    }
    if !has_prefix(&items, &["I25.2"]) {
        if let Some(ev) = present_in(rec, &[Section::PastHistory, Section::AdmissionDiagnosis], &["陈旧性心肌梗死", "陈旧性心梗"], &[]) {
            add(&mut items, "I25.200", "陈旧性心肌梗死", "病史", Some(ev), 0.6);
        }
    }

    // 4. Status codes only for earlier admissions: a device placed now is a procedure.
    for st in &policy.statuses {
        let done_now = procedures.iter().any(|p| p.code.as_deref().is_some_and(|c| in_families(c, &st.unless_done)));
        let family = &st.code[..st.code.len().min(5)];
        // Told in the history, or the listed status dates itself (冠状动脉支架植入术后(LAD，2019年),
        // PCI术后3年).
        let before = present_in(rec, &[Section::PastHistory, Section::AdmissionDiagnosis, Section::PresentIllness], &st.history, &[]).or_else(|| {
            items
                .iter()
                .find(|i| i.code.as_deref().is_some_and(|c| c.starts_with(family)) && names_a_past_time(&i.mention))
                .and_then(|i| i.evidence.first().cloned())
        });
        let replaced = done_now && st.replaced_when_done;
        if st.coded && before.is_some() && !replaced && !has_prefix(&items, &[family]) && !has_prefix(&items, &st.unless) {
            add(&mut items, &st.code, &st.id, "既往植入（状态编码）", before.clone(), 0.6);
        }
        let excluded = has_prefix(&items, &st.unless);
        if (done_now && before.is_none()) || replaced || !st.coded || excluded {
            items.retain(|i| {
                let drop = i.code.as_deref().is_some_and(|c| c.starts_with(family));
                if drop {
                    let why = if !st.coded {
                        "status code not coded under this policy"
                    } else if excluded {
                        "excluded by a diagnosis of this admission (the device adjusted now)"
                    } else if replaced {
                        "the earlier device is replaced, revised or taken out in this admission"
                    } else {
                        "placed in this admission: a procedure, not a status"
                    };
                    out.removed.push(Removal { item: i.clone(), reason: why.into() });
                }
                !drop
            });
        }
    }

    // A listed 术后 state of what this admission did (射频消融术后 after today's ablation, RCA球囊
    // 扩张术后（支架未能通过）): the procedure is coded, not a status beside it. Unless the history
    // tells of an earlier one (a redo ablation keeps the first one's state); the device statuses
    // (Z95) are the policy's above.
    let done = |families: &[&str]| procedures.iter().any(|p| p.code.as_deref().is_some_and(|c| families.iter().any(|f| c.starts_with(f))));
    let earlier = |words: &[&str]| present_in(rec, &[Section::PastHistory, Section::PresentIllness], words, &[]).is_some();
    items.retain(|i| {
        let status = i.code.as_deref().is_some_and(|c| c.starts_with("Z98.8"));
        let now = status && i.mention.contains("术后") && DONE_NOW.iter().any(|(words, families)| super::text::contains_any(&i.mention, words) && done(families) && !earlier(words));
        if now {
            out.removed.push(Removal { item: i.clone(), reason: "placed in this admission: a procedure, not a status".into() });
        }
        !now
    });

    // 5. The policy's preferred code of synonymous pairs, and its combination codes.
    for p in &policy.prefers {
        if let Some(it) = items.iter_mut().find(|i| i.code.as_deref() == Some(p.from.as_str())) {
            out.notes.push(format!("{} → {} (policy {}, {})", p.from, p.to, policy.name, p.id));
            it.code = Some(p.to.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    items.retain(|i| i.code.as_ref().is_none_or(|c| seen.insert(c.clone())));
    for c in &policy.combines {
        let all_there = c.with_all.iter().all(|f| has_prefix(&items, std::slice::from_ref(f)));
        if !all_there {
            continue;
        }
        let at = items.iter().position(|i| i.code.as_deref().is_some_and(|x| in_families(x, &c.drop) || x == c.code));
        let mut evidence = Vec::new();
        items.retain(|i| {
            let drop = i.code.as_deref().is_some_and(|x| x != c.code && in_families(x, &c.drop));
            if drop {
                evidence.extend(i.evidence.iter().cloned());
                out.removed.push(Removal { item: i.clone(), reason: format!("combined into {} (policy {}, {})", c.code, policy.name, c.id) });
            }
            !drop
        });
        if !has_code(&items, &c.code) {
            out.notes.push(format!("combination {} (policy {}, {})", c.code, policy.name, c.id));
            let mut combined = recovered(&c.code, &c.id, "合并编码（编码政策）", None, 0.7);
            combined.evidence = evidence;
            items.insert(at.unwrap_or(items.len()).min(items.len()), combined);
        }
    }

    out.notes.extend(not_coded);
    // Without a discharge diagnosis, the symptom an admission was worked up for (胸痛原因待查)
    // is not coded beside the diagnosis the work-up found, nor the questions it left
    // unconfirmed once the course has found an answer (肺栓塞？ beside the NSTEMI found).
    if !rec.has(Section::DischargeDiagnosis) {
        let is_question = |i: &Item| i.origin == "standardize" && (i.mention.contains('?') || i.mention.contains('？')) && i.evidence.iter().all(|e| !COURSE.contains(&e.section));
        let answered = items.iter().any(|i| !is_question(i) && i.code.as_deref().is_some_and(|c| !c.starts_with('R')) && (i.origin == "validate" || i.evidence.iter().any(|e| COURSE.contains(&e.section))));
        let diagnosed = items.iter().any(|i| i.code.as_deref().is_some_and(|c| !c.starts_with('R') && !c.starts_with('Z')));
        items.retain(|i| {
            let worked_up = diagnosed && i.code.as_deref().is_some_and(|c| c.starts_with('R')) && i.mention.contains("待查");
            let unconfirmed = answered && is_question(i) && i.code.as_deref().is_some_and(|c| !c.starts_with('Z'));
            if worked_up {
                out.removed.push(Removal { item: i.clone(), reason: "the symptom worked up, beside the diagnosis found".into() });
            } else if unconfirmed {
                out.removed.push(Removal { item: i.clone(), reason: "a question of the admission the course answered otherwise".into() });
            }
            !worked_up && !unconfirmed
        });
    }
    let mut items = drop_redundant_bases(items, &mut out.removed);
    // A principal removed here (an umbrella beside its specific code) leaves the choice to the
    // policy's decision list again, not to whatever was listed second; a principal this stage
    // put first itself (NSTEMI, microvascular angina) stands.
    let principal_gone = principal_in.as_ref().is_some_and(|p| !has_code(&items, p));
    if principal_gone && items.first().is_some_and(|i| i.origin != "validate") {
        // Among what the doctor listed, where anything listed is left: a condition this stage
        // recovered from the labs (血钾3.2，予补钾) is not what a hypertension admission was for.
        let listed: Vec<usize> = (0..items.len()).filter(|&i| !items[i].code.as_ref().is_some_and(|c| omissions.contains(c))).collect();
        let pool: Vec<Item> = listed.iter().map(|&i| items[i].clone()).collect();
        let decision = decide_principal(&pool, procedures, policy, rec.text(Section::ChiefComplaint));
        if let Some(&best) = decision.standing.first().map(|b| &listed[*b]).filter(|&&b| b != 0) {
            let principal = items.remove(best);
            out.notes.push(format!("principal {} removed; {} by the decision list ({})", principal_in.as_deref().unwrap_or(""), principal.code.as_deref().unwrap_or(""), decision.steps.join(", ")));
            items.insert(0, principal);
        }
    }
    out.items = items;
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

/// The policy's procedure-fact groups: where the operative report tells of one (a PCI, a
/// device, an ablation, an angiography), its facts decide the codes of that group.
const FACT_GROUPS: &[&[&str]] = &[&["angiography-"], &["stent-", "balloon", "bifurcation"], &["pacemaker-", "crt-", "icd-", "replace-"], &["ablation-", "ep-study", "mapping-3d"]];

/// The code families (`NN.NN`) of one fact group, the count codes with the PCI group.
fn group_families(policy: &Policy, group: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = policy
        .procedure_codes
        .iter()
        .filter(|(k, _)| group.iter().any(|g| k.starts_with(g)))
        .flat_map(|(_, codes)| codes.iter().cloned())
        .collect();
    if group.contains(&"stent-") {
        out.extend(policy.counts.vessels.iter().chain(&policy.counts.stents).cloned());
    }
    let mut families: Vec<String> = out.iter().map(|c| c.chars().take(5).collect()).collect();
    families.sort();
    families.dedup();
    families
}

/// A mention that dates what it tells in the past: a year (2019年), or so long ago (3年前, 术后5年).
fn names_a_past_time(mention: &str) -> bool {
    let chars: Vec<char> = mention.chars().collect();
    let year = chars.windows(5).any(|w| w[..4].iter().all(char::is_ascii_digit) && w[4] == '年');
    let ago = mention.contains("年前") || mention.contains("月前");
    let since = find_all(mention, "术后").into_iter().any(|(_, e)| {
        let rest: String = chars[e..].iter().take_while(|c| c.is_ascii_digit() || matches!(c, '余' | '多')).collect();
        !rest.is_empty() && chars.get(e + rest.chars().count()).is_some_and(|c| matches!(c, '年' | '月'))
    });
    year || ago || since
}

/// Cardiac rhythm devices implanted or replaced (pacemakers, CRT, ICD).
const DEVICE_IMPLANTS: &[&str] = &["37.80", "37.81", "37.82", "37.83", "37.85", "37.86", "37.87", "37.94", "37.96", "37.98", "00.54"];

/// Procedure subcategories split by site or guidance: a procedure has one of their codes.
const ONE_SITE: &[&str] = &["38.93", "34.91", "37.0x"];

pub fn validate_procedures(rec: &EhrRecord, items: Vec<Item>, policy: &Policy) -> AgentOutput {
    let mut out = AgentOutput::default();
    let mined = mine_record(rec, policy).items;
    // The groups the report tells of: their codes from the name stand only where the facts
    // give them too (the name says a stent; the report, a balloon after a failed delivery).
    let told_groups: Vec<Vec<String>> = FACT_GROUPS
        .iter()
        .map(|g| group_families(policy, g))
        .filter(|fams| mined.iter().any(|m| m.code.as_deref().is_some_and(|c| in_families(c, fams))))
        .collect();
    let mined_codes: Vec<&str> = mined.iter().filter_map(|m| m.code.as_deref()).collect();
    let items: Vec<Item> = items
        .into_iter()
        .filter_map(|it| {
            let c = it.code.as_deref().unwrap_or("");
            let contradicted = it.origin != "mine" && !mined_codes.contains(&c) && told_groups.iter().any(|fams| in_families(c, fams));
            // Where the report and notes tell what was done, a name they do not corroborate
            // (same NN.NN family) is not coded: the name is a hint, the report the record.
            // A coronary intervention is always preceded by the angiography the name may list
            // when the report does not tell it in those words.
            let angiography_with_pci = same_family(c, "88.5500") && mined_codes.iter().any(|m| m.starts_with("36.0") || m.starts_with("00.66"));
            let uncorroborated = it.origin == "standardize"
                && !mined.is_empty()
                && !angiography_with_pci
                && !mined_codes.iter().any(|m| m.get(..5) == c.get(..5) || same_family(m, c));
            // A name that says the procedure was only planned (拟行…) or not done.
            let planned = it.origin == "standardize"
                && it.evidence.iter().any(|ev| {
                    let text = rec.text(ev.section);
                    matches!(assertion(text, ev.start, ev.end), Assertion::Planned | Assertion::NotDone | Assertion::Negated)
                        || text.starts_with("拟") || text.starts_with("建议")
                });
            let less_specific = it.origin == "standardize" && generic_beside_specific(c, &mined_codes);
            // The subcategories a procedure takes one code of, by its site or guidance (a
            // central line by vein, a tap with or without ultrasound): the report's says which.
            let other_site = it.origin == "standardize"
                && !mined_codes.contains(&c)
                && ONE_SITE.iter().any(|f| c.starts_with(f) && mined_codes.iter().any(|m| m.starts_with(f)));
            // The report itself says the named procedure was called off (因左心耳血栓，取消当日CTI
            // 射频消融), though it tells of nothing else of its kind.
            let called_off = it.origin == "standardize" && called_off_in_report(rec, &it.mention);
            let reason = if contradicted {
                Some("the operative report's facts give other codes for this procedure")
            } else if other_site {
                Some("the operative report tells another site or guidance for this procedure")
            } else if less_specific {
                Some("the operative report names the procedure more specifically")
            } else if uncorroborated {
                Some("the operative report and notes do not tell of it")
            } else if planned {
                Some("the procedure name says it was planned, not done")
            } else if called_off {
                Some("the operative report says it was called off")
            } else {
                None
            };
            match reason {
                Some(r) => {
                    out.removed.push(Removal { item: it, reason: r.into() });
                    None
                }
                None => Some(it),
            }
        })
        .collect();
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
        AgentInfo {
            role: Role::ValidateDiagnoses,
            backend: "knowledge".into(),
            model: format!("rules+facts, policy {} {}", self.policy.name, self.policy.version),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        Ok(validate_diagnoses(input.record, input.items, input.other_track, &self.policy))
    }
}

impl Agent for ValidateProceduresAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::ValidateProcedures, backend: "knowledge".into(), model: "rules".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        Ok(validate_procedures(input.record, input.items, &self.policy))
    }
}

/// Whether a 排除 (not 不排除) before the mention at `at` of its clause rules it out: one whose
/// list runs up to the mention (排除原发性醛固酮增多症、嗜铬细胞瘤), not one that another
/// statement follows (…及睡眠呼吸暂停，诊断原发性高血压), nor one after it (高血压病2级，排除继发性).
fn ruled_out_before(cl: &str, at: usize) -> bool {
    let before: String = cl.chars().take(at).collect();
    let Some(p) = before.rfind("排除") else { return false };
    let negation_of_negation = before[..p].ends_with('不');
    let between = &before[p + "排除".len()..];
    !negation_of_negation && !["，", ",", "诊断", "考虑", "确诊", "明确"].iter().any(|w| between.contains(w))
}

#[cfg(test)]
mod ruled_out_tests {
    use super::ruled_out_before;

    #[test]
    fn a_rule_out_covers_its_own_list_not_the_statement_after_it_nor_what_came_before() {
        let cl = "综合评估排除原发性醛固酮增多症、嗜铬细胞瘤及睡眠呼吸暂停，诊断原发性高血压（高血压病2级 高危）";
        let at = |w: &str| cl[..cl.find(w).unwrap()].chars().count();
        assert!(ruled_out_before(cl, at("嗜铬细胞瘤")));
        assert!(!ruled_out_before(cl, at("原发性高血压")));
        assert!(!ruled_out_before("高血压病2级，排除继发性高血压", 0));
        assert!(!ruled_out_before("不排除冠心病", 3));
    }
}

/// A 术后 state's words and the procedure families that, done this admission, are what it tells.
const DONE_NOW: &[(&[&str], &[&str])] = &[
    (&["支架", "PCI", "PTCA", "球囊"], &["36.06", "36.07", "00.66"]),
    (&["消融"], &["37.34"]),
    (&["起搏器"], &["37.8"]),
    (&["ICD", "除颤器"], &["37.94", "37.96", "00.54"]),
    (&["CRT"], &["37.8300x002", "00.54"]),
    (&["封堵"], &["37.90", "35.52"]),
];

/// The procedure nouns a name and its report share (射频消融术 and 取消…射频消融).
const PROCEDURE_NOUNS: &[&str] = &["消融", "支架", "起搏器", "除颤器", "电复律", "封堵", "造影", "球囊"];

/// Whether a report clause calls off the procedure a name `mention` names (取消, 放弃, 未行).
fn called_off_in_report(rec: &EhrRecord, mention: &str) -> bool {
    let Some(noun) = PROCEDURE_NOUNS.iter().find(|n| mention.contains(**n)) else { return false };
    let text = rec.text(Section::OperativeReport);
    // The cue in the noun's own comma piece, before it (取消当日CTI射频消融; not 未行球囊预扩，直接
    // 植入支架).
    find_all(text, noun).into_iter().any(|(s, _)| {
        let before = chars_before(text, s, 12);
        let own = before.rsplit(['，', ',', '。', '；', ';', '\n']).next().unwrap_or("");
        ["取消", "放弃", "未行", "未予", "暂缓"].iter().any(|w| own.contains(w))
    })
}
