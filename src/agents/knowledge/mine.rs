//! Candidate mining: procedures the 手术名称 field omits, found in the operative report, the
//! progress notes and the clinical course (63.8% of records omit some).
//!
//! Each rule names its trigger words, the context its clause must have, and the code it
//! yields; counted procedures (vessels, stents, ventilation hours, catheters) are read from the
//! text. Mentions that are planned, refused, failed or negated are not procedures done.

use std::collections::BTreeSet;

use super::text::{assertion, clause, find_all, small_count, Assertion};
use crate::terminology::families::same_family;
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Evidence, Item, Role};
use crate::record::{EhrRecord, Section};

const SOURCES: [Section; 3] = [Section::OperativeReport, Section::ProgressNotes, Section::ClinicalCourse];

const CORONARY: &[&str] = &["冠脉", "冠状动脉", "前降支", "回旋支", "右冠", "左主干", "对角支", "钝缘支", "LAD", "LCX", "RCA", "后降支", "中间支", "PCI", "PTCA"];

/// Vessel names → a canonical vessel, for counting vessels treated.
const VESSELS: &[(&str, &str)] = &[
    ("前降支", "LAD"), ("LAD", "LAD"), ("回旋支", "LCX"), ("LCX", "LCX"), ("右冠", "RCA"), ("RCA", "RCA"),
    ("左主干", "LM"), ("LM", "LM"), ("对角支", "D"), ("钝缘支", "OM"), ("OM", "OM"), ("后降支", "PDA"),
    ("PDA", "PDA"), ("左室后支", "PL"), ("后侧支", "PL"), ("中间支", "RI"),
];

struct Rule {
    code: &'static str,
    name: &'static str,
    triggers: &'static [&'static str],
    /// The clause must contain one of these (empty: no condition).
    needs: &'static [&'static str],
    /// The clause must contain none of these.
    excludes: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule { code: "00.6600x008", name: "经皮冠状动脉药物球囊扩张成形术", triggers: &["药物球囊", "药物涂层球囊", "DCB"], needs: CORONARY, excludes: &[] },
    Rule { code: "00.6600x004", name: "经皮冠状动脉球囊扩张成形术", triggers: &["球囊扩张", "PTCA", "预扩张", "后扩张", "球囊预扩", "球囊后扩"], needs: CORONARY, excludes: &["药物球囊", "药物涂层球囊", "DCB"] },
    Rule { code: "00.2400x001", name: "冠状动脉血管内超声(IVUS)", triggers: &["IVUS", "血管内超声"], needs: &[], excludes: &[] },
    Rule { code: "00.5902", name: "冠状动脉血流储备分数检查", triggers: &["FFR", "血流储备分数"], needs: &[], excludes: &[] },
    Rule { code: "38.2400", name: "经光学相干断层扫描的冠状血管血管内影像[OCT]", triggers: &["OCT", "光学相干断层"], needs: CORONARY, excludes: &[] },
    Rule { code: "00.4400", name: "分支血管操作", triggers: &["分叉病变", "分叉处", "双支架术", "Crush", "Culotte", "对吻"], needs: &["支架", "球囊", "PCI", "PTCA"], excludes: &[] },
    Rule { code: "17.5501", name: "经皮冠状动脉旋磨术", triggers: &["旋磨"], needs: &[], excludes: &[] },
    Rule { code: "17.5500x003", name: "经皮冠状动脉血栓抽吸术", triggers: &["血栓抽吸"], needs: &[], excludes: &[] },
    Rule { code: "37.6101", name: "主动脉球囊反搏置入术", triggers: &["IABP", "主动脉内球囊反搏", "主动脉球囊反搏"], needs: &[], excludes: &["撤除", "拔除"] },
    Rule { code: "37.7800", name: "暂时性经静脉起搏器系统的置入", triggers: &["临时起搏"], needs: &[], excludes: &["拔除", "撤除"] },
    Rule { code: "37.3400x001", name: "经皮环肺静脉电隔离术", triggers: &["肺静脉隔离", "肺静脉电隔离"], needs: &[], excludes: &[] },
    Rule { code: "37.3403", name: "经导管心脏冷冻消融术", triggers: &["冷冻消融", "冷冻球囊消融"], needs: &[], excludes: &[] },
    Rule { code: "37.3401", name: "经导管心脏射频消融术", triggers: &["射频消融", "导管消融", "RFCA"], needs: &[], excludes: &["肾动脉", "甲状腺", "肝", "肺病损"] },
    Rule { code: "37.2600", name: "侵入性电生理测定导管术", triggers: &["心内电生理检查", "电生理检查"], needs: &[], excludes: &[] },
    Rule { code: "96.0400", name: "气管内插管", triggers: &["气管插管", "气管内插管"], needs: &[], excludes: &["拔除", "拔管"] },
    Rule { code: "39.9500x007", name: "连续性肾脏替代治疗[CRRT]", triggers: &["CRRT", "连续性肾脏替代", "床旁血滤", "连续性血液净化"], needs: &[], excludes: &[] },
    Rule { code: "99.6000", name: "心肺复苏", triggers: &["心肺复苏", "胸外按压"], needs: &[], excludes: &[] },
    Rule { code: "99.6200x001", name: "电除颤", triggers: &["电除颤", "非同步电复律"], needs: &[], excludes: &[] },
    Rule { code: "34.0401", name: "胸腔闭式引流术", triggers: &["胸腔闭式引流", "胸腔引流"], needs: &[], excludes: &[] },
    Rule { code: "34.9101", name: "胸腔穿刺抽液术", triggers: &["胸腔穿刺"], needs: &[], excludes: &[] },
];

pub struct MineAgent;

/// One mined procedure before it becomes an [`Item`].
struct Found {
    code: String,
    name: String,
    evidence: Evidence,
    confidence: f32,
}

fn done(text: &str, s: usize, e: usize) -> bool {
    matches!(assertion(text, s, e), Assertion::Present | Assertion::Uncertain)
}

fn contains_any(hay: &str, words: &[&str]) -> bool {
    words.iter().any(|w| hay.contains(w))
}

fn ev(section: Section, text: &str, s: usize, e: usize) -> Evidence {
    Evidence { section, start: s, end: e, text: text.chars().skip(s).take(e - s).collect() }
}

/// Rules from the table.
fn mine_rules(section: Section, text: &str, out: &mut Vec<Found>) {
    for rule in RULES {
        for trig in rule.triggers {
            for (s, e) in find_all(text, trig) {
                let (cl, _) = clause(text, s, e);
                if (!rule.needs.is_empty() && !contains_any(&cl, rule.needs)) || contains_any(&cl, rule.excludes) || !done(text, s, e) {
                    continue;
                }
                out.push(Found { code: rule.code.into(), name: rule.name.into(), evidence: ev(section, text, s, e), confidence: 0.85 });
            }
        }
    }
}

/// Coronary angiography, coded by the number of catheters.
fn mine_angiography(section: Section, text: &str, out: &mut Vec<Found>) {
    for trig in ["冠脉造影", "冠状动脉造影", "CAG"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if cl.contains("CT") || cl.contains("CTA") || !done(text, s, e) {
                continue;
            }
            let (code, name) = if contains_any(&cl, &["单根导管", "TIG", "Tiger", "共用导管"]) {
                ("88.5500", "单根导管的冠状动脉造影术")
            } else if contains_any(&cl, &["两根导管", "JL", "JR", "Judkins", "左右冠状动脉分别"]) {
                ("88.5600", "用两根导管的冠状动脉造影术")
            } else if contains_any(&cl, &["多根导管", "三根导管"]) {
                ("88.5701", "多根导管冠状动脉造影")
            } else {
                ("88.5700", "其他和未特指的冠状动脉造影术")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.9 });
        }
    }
}

/// Coronary stents: kind from the clause, placements counted for 00.45–00.48 and vessels
/// treated (stent or balloon) for 00.40–00.43.
fn mine_pci(section: Section, text: &str, out: &mut Vec<Found>, vessels: &mut BTreeSet<&'static str>, stents: &mut u32) {
    let mut seen_clauses: BTreeSet<usize> = BTreeSet::new();
    for trig in ["支架"] {
        for (s, e) in find_all(text, trig) {
            let (cl, rel) = clause(text, s, e);
            let clause_start = s - rel;
            let after: String = text.chars().skip(e).take(4).collect();
            let placed = contains_any(&cl, &["置入", "植入", "释放", "DES"]);
            let history = after.starts_with("术后") || after.starts_with("植入术后") || after.starts_with("置入术后") || cl.contains("支架植入术后") || cl.contains("支架置入术后") || cl.contains("支架术后");
            if !placed || history || !contains_any(&cl, CORONARY) || !done(text, s, e) {
                continue;
            }
            if !seen_clauses.insert(clause_start) {
                continue;
            }
            let (code, name) = if contains_any(&cl, &["裸金属", "BMS"]) {
                ("36.0600", "非-药物洗脱冠状动脉支架置入")
            } else if cl.contains("覆膜支架") {
                ("36.0700x004", "经皮冠状动脉覆膜支架置入术")
            } else {
                ("36.0700", "药物洗脱冠状动脉支架置入")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.9 });
            *stents += count_stents(&cl);
            for (w, v) in VESSELS {
                if cl.contains(w) {
                    vessels.insert(v);
                }
            }
        }
    }
    for trig in ["球囊扩张", "PTCA", "预扩张", "药物球囊"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if contains_any(&cl, CORONARY) && done(text, s, e) {
                for (w, v) in VESSELS {
                    if cl.contains(w) {
                        vessels.insert(v);
                    }
                }
            }
        }
    }
}

/// Stents placed in one clause: "支架2枚", "2枚支架", "两枚…支架"; one when no number is given.
fn count_stents(cl: &str) -> u32 {
    let chars: Vec<char> = cl.chars().collect();
    let mut total = 0;
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '枚' | '个' | '只') && i > 0 {
            let prev: String = chars[i - 1].to_string();
            if let Some(n) = small_count(&prev) {
                total += n;
            }
        }
    }
    total.max(1)
}

/// Permanent pacemakers and ICDs with their leads.
fn mine_devices(section: Section, text: &str, out: &mut Vec<Found>) {
    for trig in ["永久起搏器", "永久心脏起搏器", "起搏器"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if !contains_any(&cl, &["置入", "植入"]) || cl.contains("临时") || cl.contains("术后") || !done(text, s, e) {
                continue;
            }
            let (code, name, lead) = if contains_any(&cl, &["三腔", "CRT"]) {
                ("37.8300x002", "三腔永久起搏器置入术", ("37.7200", "首次经静脉入心房和心室置入导线[电极]"))
            } else if cl.contains("双腔") {
                ("37.8301", "双腔永久起搏器置入术", ("37.7200", "首次经静脉入心房和心室置入导线[电极]"))
            } else if cl.contains("单腔") {
                ("37.8101", "单腔永久起搏器置入术", ("37.7100", "首次经静脉入心室置入导线[电极]"))
            } else {
                ("37.8000x001", "永久起搏器置入术", ("37.7100", "首次经静脉入心室置入导线[电极]"))
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.85 });
            out.push(Found { code: lead.0.into(), name: lead.1.into(), evidence: ev(section, text, s, e), confidence: 0.75 });
            break;
        }
    }
    for trig in ["除颤器", "ICD"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if !contains_any(&cl, &["置入", "植入"]) || cl.contains("术后") || !done(text, s, e) {
                continue;
            }
            let (code, name) = if cl.contains("双腔") {
                ("37.9400x002", "双腔植入型心律转复除颤器置入术")
            } else if cl.contains("单腔") {
                ("37.9400x001", "单腔植入型心律转复除颤器置入术")
            } else {
                ("37.9401", "心脏除颤器置入术")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.85 });
        }
    }
}

/// Central venous catheters by site, and invasive ventilation by duration.
fn mine_critical_care(section: Section, text: &str, out: &mut Vec<Found>) {
    for trig in ["深静脉置管", "中心静脉置管", "中心静脉导管", "PICC"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if cl.contains("拔除") || !done(text, s, e) {
                continue;
            }
            let (code, name) = if cl.contains("PICC") || cl.contains("外周") {
                ("38.9301", "经外周静脉穿刺中心静脉置管术")
            } else if cl.contains("股静脉") {
                ("38.9304", "股静脉穿刺置管术")
            } else if cl.contains("锁骨下") {
                ("38.9303", "锁骨下静脉穿刺中心静脉置管术")
            } else {
                ("38.9302", "颈内静脉穿刺中心静脉置管术")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.8 });
        }
    }
    for trig in ["有创呼吸机", "呼吸机辅助通气", "机械通气", "有创通气", "呼吸机辅助呼吸"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            if cl.contains("无创") || !done(text, s, e) {
                continue;
            }
            let hours = ventilation_hours(&cl);
            let (code, name) = if hours.is_some_and(|h| h >= 96.0) {
                ("96.7200", "等于或大于96小时连续的持续性侵入性机械性通气")
            } else {
                ("96.7100", "少于96小时连续的持续性侵入性机械性通气")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), confidence: 0.8 });
        }
    }
}

/// "机械通气5天" → 120 h; "通气72小时" → 72 h.
fn ventilation_hours(cl: &str) -> Option<f64> {
    let chars: Vec<char> = cl.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()) {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let n: f64 = chars[i..j].iter().collect::<String>().parse().ok()?;
            let unit: String = chars[j..(j + 2).min(chars.len())].iter().collect();
            if unit.starts_with('天') || unit.starts_with('日') {
                return Some(n * 24.0);
            }
            if unit.starts_with("小时") || unit.starts_with('h') {
                return Some(n);
            }
        }
    }
    None
}

pub fn vessel_count_code(n: usize) -> Option<(&'static str, &'static str)> {
    match n {
        0 => None,
        1 => Some(("00.4000", "单根血管操作")),
        2 => Some(("00.4100", "两根血管操作")),
        3 => Some(("00.4200", "三根血管操作")),
        _ => Some(("00.4300", "四根或更多根血管操作")),
    }
}

pub fn stent_count_code(n: u32) -> Option<(&'static str, &'static str)> {
    match n {
        0 => None,
        1 => Some(("00.4500", "置入一根血管的支架")),
        2 => Some(("00.4600", "置入两根血管的支架")),
        3 => Some(("00.4700", "置入三根血管的支架")),
        _ => Some(("00.4800", "置入四根或更多根血管的支架")),
    }
}

/// Everything the notes say was done, in record order.
pub fn mine_record(rec: &EhrRecord) -> Vec<Item> {
    let mut found = Vec::new();
    let mut vessels = BTreeSet::new();
    let mut stents = 0u32;
    for section in SOURCES {
        let text = rec.text(section);
        if text.is_empty() {
            continue;
        }
        // The same procedure is often told twice (operative report and course): the first
        // section that tells of stents counts them.
        let mut local_vessels = BTreeSet::new();
        let mut local_stents = 0;
        mine_angiography(section, text, &mut found);
        mine_pci(section, text, &mut found, &mut local_vessels, &mut local_stents);
        mine_rules(section, text, &mut found);
        mine_devices(section, text, &mut found);
        mine_critical_care(section, text, &mut found);
        if stents == 0 && local_stents > 0 {
            stents = local_stents;
        }
        if vessels.is_empty() {
            vessels = local_vessels;
        }
    }
    let stent_ev = found.iter().find(|f| f.code.starts_with("36.06") || f.code.starts_with("36.07")).map(|f| f.evidence.clone());
    if let Some(ev) = stent_ev {
        if let Some((c, n)) = stent_count_code(stents) {
            found.push(Found { code: c.into(), name: n.into(), evidence: ev.clone(), confidence: 0.75 });
        }
        if let Some((c, n)) = vessel_count_code(vessels.len().max(1)) {
            found.push(Found { code: c.into(), name: n.into(), evidence: ev, confidence: 0.7 });
        }
    }
    let mut items: Vec<Item> = Vec::new();
    for f in found {
        if let Some(existing) = items.iter_mut().find(|i| i.code.as_deref() == Some(&f.code)) {
            if existing.evidence.len() < 3 {
                existing.evidence.push(f.evidence);
            }
            continue;
        }
        items.push(Item {
            name: f.name.clone(),
            code: Some(f.code),
            mention: f.evidence.text.clone(),
            evidence: vec![f.evidence],
            confidence: f.confidence,
            origin: "mine".into(),
        });
    }
    items
}


impl Agent for MineAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::MineProcedures, backend: "knowledge".into(), model: "rules".into(), version: env!("CARGO_PKG_VERSION").into() }
    }

    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let mut out = AgentOutput { items: input.items, ..Default::default() };
        for m in mine_record(input.record) {
            let code = m.code.clone().unwrap_or_default();
            if out.items.iter().any(|i| i.code.as_deref().is_some_and(|c| c == code || same_family(c, &code))) {
                continue;
            }
            out.notes.push(format!("mined {code} {} from {}", m.name, m.evidence[0].section.key()));
            out.items.push(m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(rec: &EhrRecord) -> Vec<String> {
        mine_record(rec).into_iter().filter_map(|i| i.code).collect()
    }

    #[test]
    fn pci_report_yields_stent_balloon_angiography_and_counts() {
        let rec = EhrRecord::new("t").with(
            Section::OperativeReport,
            "经右桡动脉穿刺，以TIG导管行冠脉造影示前降支近段狭窄90%，回旋支中段狭窄80%。于前降支行球囊预扩张后置入药物洗脱支架1枚；于回旋支置入支架1枚，手术顺利。",
        );
        let c = codes(&rec);
        for want in ["88.5500", "36.0700", "00.6600x004", "00.4600", "00.4100"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    #[test]
    fn planned_refused_and_history_are_not_procedures() {
        let rec = EhrRecord::new("t")
            .with(Section::ClinicalCourse, "建议行冠脉造影，患者拒绝行PCI。既往冠状动脉支架植入术后。")
            .with(Section::ProgressNotes, "未行IABP。");
        assert!(codes(&rec).is_empty(), "{:?}", codes(&rec));
    }

    #[test]
    fn ventilation_duration_and_pacemaker_leads() {
        let rec = EhrRecord::new("t")
            .with(Section::ClinicalCourse, "行气管插管，有创呼吸机辅助通气5天。")
            .with(Section::OperativeReport, "行双腔永久起搏器植入术，过程顺利。");
        let c = codes(&rec);
        for want in ["96.0400", "96.7200", "37.8301", "37.7200"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }
}
