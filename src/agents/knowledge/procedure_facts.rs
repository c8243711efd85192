//! The operative report (and the course notes) read as structured procedure facts: the
//! catheters and their roles, each vessel's balloons, stents and measurements, cardiac
//! devices with their chambers and leads, ablation by energy and target, and whether each was
//! done, failed or only planned, each with its text span. Coding rules
//! ([`super::procedure_rules`]) turn the facts into codes, and every code cites its facts.
//!
//! Why facts first: the 手术名称 field is often vague (冠脉介入治疗), empty or wrong (a stent
//! named that could not be delivered), while the report tells what was done.

use super::text::contains_any as any;
use super::text::find_all;
use crate::record::{EhrRecord, Section};

/// Where procedures are told, in the order a coder reads them.
pub const SOURCES: [Section; 3] = [Section::OperativeReport, Section::ProgressNotes, Section::ClinicalCourse];

/// A char span of one section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub section: Section,
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Tried and not achieved (支架无法通过病变).
    Failed,
    /// Planned, recommended, staged for later, or refused.
    NotNow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatheterRole {
    /// Counts for the angiography code (88.55–88.57).
    Diagnostic,
    /// Carries the PCI; does not count.
    Guiding,
    /// A pigtail: ventriculography, not a coronary catheter.
    Ventricular,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StentKind {
    DrugEluting,
    BareMetal,
    Bioresorbable,
    Covered,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measurement {
    Ffr,
    Ifr,
    Ivus,
    Oct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// `rate_responsive`: programmed VVIR/AAIR, 频率应答 on (37.82, not 37.81).
    PacemakerSingle { atrial: bool, rate_responsive: bool },
    PacemakerDual,
    CrtP,
    CrtD,
    IcdSingle,
    IcdDual,
    /// 起搏器 with no kind stated.
    Pacemaker,
    /// A leadless pacemaker (Micra, Aveir): in the ventricle, the device its own lead.
    Leadless,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Energy {
    Radiofrequency,
    Cryo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AblationTarget {
    PulmonaryVeins,
    Other,
}

/// One thing the report says about a procedure.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    Catheter { name: String, role: CatheterRole },
    /// Invasive coronary angiography.
    Angiography,
    Ventriculography,
    /// `total`: a summary of the stents told one by one (共植入支架3枚).
    Stent { vessels: Vec<&'static str>, kind: StentKind, count: u32, size: Option<String>, total: bool },
    Balloon { vessels: Vec<&'static str>, drug_coated: bool },
    Measure { kind: Measurement, vessels: Vec<&'static str> },
    Bifurcation,
    Device { kind: DeviceKind, replacement: bool },
    Ablation { energy: Energy, target: AblationTarget },
    EpStudy,
    Mapping3d,
}

/// A fact with its outcome and where it is told.
#[derive(Clone, Debug, PartialEq)]
pub struct Told {
    pub fact: Fact,
    pub outcome: Outcome,
    pub span: Span,
}

impl Told {
    /// One line for the stage trace and the Provenance.
    pub fn describe(&self) -> String {
        let what = match &self.fact {
            Fact::Catheter { name, role } => format!("catheter {name} ({role:?})"),
            Fact::Angiography => "coronary angiography".into(),
            Fact::Ventriculography => "left ventriculography".into(),
            Fact::Stent { vessels, kind, count, size, total } => {
                let total = if *total { " (total)" } else { "" };
                format!("stent {kind:?} ×{count}{total} in {}{}", vessels_text(vessels), size.as_deref().map(|s| format!(" {s}")).unwrap_or_default())
            }
            Fact::Balloon { vessels, drug_coated } => format!("{} in {}", if *drug_coated { "drug-coated balloon" } else { "balloon" }, vessels_text(vessels)),
            Fact::Measure { kind, vessels } => format!("{kind:?} of {}", vessels_text(vessels)),
            Fact::Bifurcation => "bifurcation technique".into(),
            Fact::Device { kind, replacement } => format!("{kind:?}{}", if *replacement { " (replacement)" } else { "" }),
            Fact::Ablation { energy, target } => format!("ablation {energy:?} of {target:?}"),
            Fact::EpStudy => "electrophysiology study".into(),
            Fact::Mapping3d => "3-D mapping".into(),
        };
        format!("{what}, {:?} [{} {}..{}]", self.outcome, self.span.section.key(), self.span.start, self.span.end)
    }
}

fn vessels_text(v: &[&str]) -> String {
    if v.is_empty() {
        "(vessel not named)".into()
    } else {
        v.join("+")
    }
}

/// Vessel names → the vessel, longest names first so that 右冠状动脉 is read once.
const VESSELS: &[(&str, &str)] = &[
    ("左前降支", "LAD"), ("前降支", "LAD"), ("LAD", "LAD"),
    ("左回旋支", "LCX"), ("回旋支", "LCX"), ("LCX", "LCX"), ("LCx", "LCX"),
    ("右冠状动脉", "RCA"), ("右冠脉", "RCA"), ("右冠", "RCA"), ("RCA", "RCA"),
    ("左主干", "LM"), ("LM", "LM"),
    ("第一对角支", "D1"), ("第二对角支", "D2"), ("D1", "D1"), ("D2", "D2"), ("对角支", "D"),
    ("第一钝缘支", "OM1"), ("第二钝缘支", "OM2"), ("OM1", "OM1"), ("OM2", "OM2"), ("钝缘支", "OM"), ("OM", "OM"),
    ("后降支", "PDA"), ("PDA", "PDA"), ("左室后支", "PL"), ("后侧支", "PL"), ("PLA", "PL"), ("中间支", "RI"),
    ("静脉桥", "graft"), ("桥血管", "graft"), ("SVG", "graft"),
];

/// The coronary tree a vessel belongs to: its branches are worked through it.
fn tree_of(v: &str) -> &'static str {
    match v {
        "LAD" | "D1" | "D2" | "D" => "LAD",
        "LCX" | "OM1" | "OM2" | "OM" => "LCX",
        "RCA" | "PDA" | "PL" => "RCA",
        "LM" => "LM",
        "RI" => "RI",
        _ => "graft",
    }
}

/// The vessels a clause names, in order, each once.
fn vessels_in(cl: &str) -> Vec<&'static str> {
    let mut found: Vec<(usize, &'static str)> = Vec::new();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for (name, v) in VESSELS {
        let mut from = 0;
        while let Some(i) = cl[from..].find(name) {
            let at = from + i;
            let end = at + name.len();
            from = end;
            // A shorter name inside a longer one already read (右冠 in 右冠状动脉).
            if taken.iter().any(|(s, e)| at >= *s && end <= *e) {
                continue;
            }
            // Latin abbreviations only as words (OM is not in "ROMA").
            if name.is_ascii() {
                let before = cl[..at].chars().next_back();
                let after = cl[end..].chars().next();
                if before.is_some_and(|c| c.is_ascii_alphabetic()) || after.is_some_and(|c| c.is_ascii_alphabetic()) {
                    continue;
                }
            }
            taken.push((at, end));
            found.push((at, v));
        }
    }
    found.sort();
    let mut out: Vec<&'static str> = Vec::new();
    for (_, v) in found {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}


/// Sentences (。；; line breaks) split into comma clauses, as char ranges of the text.
fn clauses(chars: &[char]) -> Vec<Vec<(usize, usize)>> {
    let mut sentences = Vec::new();
    let mut sentence = Vec::new();
    let mut start = 0;
    for (i, c) in chars.iter().enumerate() {
        let stop = matches!(c, '。' | '；' | ';' | '\n');
        if stop || matches!(c, '，' | ',' | '：' | ':') {
            if i > start {
                sentence.push((start, i));
            }
            start = i + 1;
            if stop && !sentence.is_empty() {
                sentences.push(std::mem::take(&mut sentence));
            }
        }
    }
    if chars.len() > start {
        sentence.push((start, chars.len()));
    }
    if !sentence.is_empty() {
        sentences.push(sentence);
    }
    sentences
}

const PLANNED: &[&str] = &["未放电", "未消融", "不消融", "风险高", "取消", "择期", "二期", "分期", "拟行", "拟于", "建议", "下次", "必要时", "计划", "待病情", "拒绝", "不同意", "暂不", "未行", "未予", "原定", "暂缓", "再入院", "拟", "再次评估", "月后再", "后再次", "备用", "未启用", "植入指征", "置入指征", "转上级医院", "转外院", "转院行"];
const NEGATED: &[&str] = &["未见", "无需", "不需", "未置入", "未植入", "无明显", "未使用", "未用", "未行", "取消", "放弃", "暂无", "暂未", "未发现", "未找到", "未能找到"];
const STENT_FAILED: &[&str] = &[
    "支架无法", "支架未能", "支架不能", "支架送入失败", "支架输送失败", "支架通过困难未成功", "未能置入支架", "无法置入支架", "放弃置入支架",
    "放弃支架", "未置入支架", "未植入支架", "不能置入支架", "支架未通过",
];
/// A stent told in other words than 支架.
const STENT_WORDS: &[&str] = &["支架", "DES", "BMS", "药物洗脱", "BVS"];
/// Stents told by their brand alone (植入Firebird2 3.0×29mm、Resolute Onyx 2.5×30mm): operators
/// write the device they used, and many reports never say 支架. Matched as written (case
/// matters: "Excel" the stent, not a word of a sentence).
const STENT_BRANDS: &[&str] = &[
    "Firebird", "Firehawk", "火鸟", "火鹰", "Excel", "EXCEL", "Resolute", "Onyx", "Xience", "XIENCE", "Promus", "PROMUS", "Synergy", "SYNERGY",
    "Partner", "BuMA", "Tivoli", "GuReater", "Orsiro", "Cypher", "Endeavor", "BioMatrix", "Biomatrix", "Ultimaster", "Yukon", "HT Supreme", "Helios",
    "Nano plus", "NeoVas", "Firesorb", "Xinsorb", "Absorb",
];
/// Brands of bioresorbable scaffolds.
const SCAFFOLD_BRANDS: &[&str] = &["NeoVas", "Firesorb", "Xinsorb", "Absorb"];
/// Balloons told by their brand (Sprinter 2.0×15mm, NC Trek 3.5×12mm): their sizes are not stents.
const BALLOON_BRANDS: &[&str] = &["球囊", "Sprinter", "Trek", "TREK", "Emerge", "Euphora", "Maverick", "Tazuna", "Ryujin", "Empira", "Quantum", "Hiryu", "Wolverine", "Scoreflex", "Lacrosse", "SeQuent", "Bingo", "Vesselin"];

/// A stent is named: by the word, an abbreviation or a brand.
fn names_stent(cl: &str) -> bool {
    any(cl, STENT_WORDS) || any(cl, STENT_BRANDS)
}

/// The stent was taken out again, or not placed.
const STENT_NOT_PLACED: &[&str] = &["未植入", "未置入", "未再植入", "未再置入", "撤出支架", "退出支架", "支架撤出", "未释放"];
const HISTORY: &[&str] = &["术后", "原支架", "支架内再狭窄", "支架内狭窄", "支架内血栓", "既往", "支架通畅", "支架内未见", "支架内轻度", "年前", "月前"];
/// Words of [`HISTORY`] that say where, not when: a stent placed now inside the old one (原支架内
/// 近段再植入DES 1枚) is placed now.
const OLD_STENT_AS_PLACE: &[&str] = &["原支架", "支架内再狭窄", "支架内狭窄", "支架内血栓"];

/// The clause tells of an earlier procedure, not of one done now: a history word, unless every
/// one it has names the old stent as the place where a stent is placed now.
fn tells_history(cl: &str) -> bool {
    let Some(placed_at) = ["再植入", "再置入", "植入", "置入", "释放"].iter().filter_map(|w| cl.find(w)).min() else { return any(cl, HISTORY) };
    HISTORY.iter().any(|h| match cl.find(h) {
        None => false,
        Some(at) => !OLD_STENT_AS_PLACE.contains(h) || at > placed_at,
    })
}

/// A templated report's stent field (【支架】LCX中段 Firehawk 3.0×23mm 1枚): the field lists
/// the stents placed, with no verb.
fn stent_field(cl: &str) -> bool {
    let lead = cl.trim_start();
    ["【支架", "[支架", "【植入支架", "【置入支架"].iter().any(|h| lead.starts_with(h))
}

/// The outcome of what a clause tells, from its own cues.
fn outcome_of(cl: &str) -> Outcome {
    if any(cl, PLANNED) {
        Outcome::NotNow
    } else {
        Outcome::Done
    }
}

const GUIDING: &[&str] = &["指引导管", "指引", "引导导管", "Guide", "guide", "GC", "EBU", "XB", "BL3", "BL4", "SAL", "Ikari", "AL0.75"];
/// Diagnostic coronary catheters by name; TIG-type catheters do both coronaries.
const DIAGNOSTIC: &[(&str, &str)] = &[
    ("TIG", "TIG"), ("Tiger", "TIG"), ("TIGER", "TIG"), ("共用导管", "TIG"), ("多功能导管", "MPA"), ("MPA", "MPA"),
    ("JL3.5", "JL"), ("JL4", "JL"), ("JL5", "JL"), ("JL", "JL"), ("左冠造影导管", "JL"), ("Judkins左", "JL"),
    ("JR3.5", "JR"), ("JR4", "JR"), ("JR5", "JR"), ("JR", "JR"), ("右冠造影导管", "JR"), ("Judkins右", "JR"),
    ("AL1", "AL"), ("AL2", "AL"), ("AR1", "AR"), ("AR2", "AR"), ("Amplatz", "AL"),
];

/// Reads one section's text into facts.
pub fn read_section(section: Section, text: &str, out: &mut Vec<Told>) {
    let chars: Vec<char> = text.chars().collect();
    // Vessels named anywhere (lesions described), and the vessel being treated (named with a
    // guide, wire, balloon or stent). A clause that names none works on the vessel named last
    // in its sentence, else on the one being treated, else on the next one an intervention
    // names, else on the last one named.
    let mut last_vessels: Vec<&'static str> = Vec::new();
    // The vessel named last with a lesion: a stent told without a vessel after 前降支近段100%闭塞，
    // 回旋支、右冠无明显狭窄 went into the occlusion, not into the arteries said to be normal.
    let mut last_lesion: Vec<&'static str> = Vec::new();
    let mut target: Vec<&'static str> = Vec::new();
    let whole_device_kind = device_kind(text);
    // The mode is programmed in a sentence of its own (程控VVIR 60-120次/分): the section says it.
    let section_rate_responsive = rate_responsive(text);
    let sentences = clauses(&chars);
    let section_angio = any(text, &["造影", "冠造", "显影", "CAG"]);
    // The stent's delivery balloon is not a stent placed again.
    let clause_text = |s: usize, e: usize| -> String { chars[s..e].iter().collect::<String>().replace("支架输送球囊", "输送球囊").replace("支架球囊", "输送球囊") };
    // Every clause in order: (its text, vessels named, an intervention told, a stent named).
    let flat: Vec<(String, Vec<&'static str>, bool, bool)> = sentences
        .iter()
        .flatten()
        .map(|&(s, e)| {
            let cl = clause_text(s, e);
            let stent = names_stent(&cl);
            let intervention = (stent || any(&cl, &["指引", "导丝", "球囊", "支架", "DES", "处理", "PCI", "PTCA", "介入", "开通", "扩张", "GC"])) && !tells_history(&cl);
            let vessels = vessels_in(&cl);
            (cl, vessels, intervention, stent)
        })
        .collect();
    let mut at = 0;
    let section_first = out.len();
    // Facts of the report's own summary line (术式：…), kept apart so that they do not add to
    // what the steps tell.
    let mut summary_facts: Vec<usize> = Vec::new();
    let (mut summary, mut inventory) = (false, false);
    for sentence in &sentences {
        let sent_text: String = sentence.iter().map(|&(s, e)| chars[s..e].iter().collect::<String>()).collect::<Vec<_>>().join("，");
        let sentence_outcome = outcome_of(&sent_text);
        let first_fact = out.len();
        // A summary or inventory line runs to the line's end, over its ；.
        let starts_line = sentence.first().is_none_or(|&(s, _)| chars[..s].iter().rev().find(|c| !matches!(c, ' ' | '\t')).is_none_or(|c| !matches!(c, '；' | ';')));
        if starts_line {
            let lead = sent_text.trim_start();
            (summary, inventory) = (any_prefix(lead, SUMMARY_HEADINGS), any_prefix(lead, INVENTORY_HEADINGS));
        }
        let mut in_sentence: Vec<&'static str> = Vec::new();
        for (nth, &(s, e)) in sentence.iter().enumerate() {
            let me = at;
            at += 1;
            let cl = flat[me].0.as_str();
            let span = Span { section, start: s, end: e, text: chars[s..e].iter().collect() };
            let here = flat[me].1.clone();
            let (intervention, named_stent) = (flat[me].2, flat[me].3);
            // A step headed by its vessel (①LAD：导丝通过…, OM1：预扩后植入…) treats that vessel
            // until another is named.
            let vessel_heading = !here.is_empty()
                && chars.get(e).is_some_and(|c| matches!(c, '：' | ':'))
                && is_label(cl)
                && flat[me + 1..me + sentence.len() - nth].iter().any(|(_, _, i, _)| *i);
            if vessel_heading && sentence_outcome == Outcome::Done {
                target = here.clone();
            }
            let vessels = if !here.is_empty() {
                here.clone()
            } else if !in_sentence.is_empty() {
                in_sentence.clone()
            } else if !target.is_empty() {
                target.clone()
            } else if let Some((_, next, _, _)) = flat[me + 1..].iter().find(|(_, v, i, _)| !v.is_empty() && *i) {
                next.clone()
            } else if !last_lesion.is_empty() {
                last_lesion.clone()
            } else {
                last_vessels.clone()
            };
            // A clause's own cue, or the sentence's when it is about the whole plan (择期处理前降支).
            let outcome = match outcome_of(&cl) {
                Outcome::Done if sentence_outcome == Outcome::NotNow && sent_text.starts_with(['拟', '建', '择']) => Outcome::NotNow,
                // Proposed and refused in one sentence (与家属沟通急诊冠脉造影，家属…拒绝).
                Outcome::Done if any(&sent_text, &["拒绝", "不同意"]) => Outcome::NotNow,
                o => o,
            };
            let mut found: Vec<Told> = Vec::new();
            let mut tell = |fact: Fact, outcome: Outcome| found.push(Told { fact, outcome, span: span.clone() });

            // Catheters and angiography.
            let coronary_context = any(&cl, &["冠", "左主干", "前降支", "回旋支", "造影"]) || !here.is_empty();
            // A catheter named by its curve in a report that tells an angiography counts in a
            // clause of its own too (先用5F TIG：…; JR4反复尝试无法到位, 换AL1…).
            let names_catheter = section_angio && DIAGNOSTIC.iter().any(|(w, f)| (w.chars().any(|c| c.is_ascii_digit()) || *f == "TIG") && cl.contains(w));
            if (any(&cl, &["造影", "导管", "冠造", "CAG"]) || names_catheter) && !any(&cl, &["CT", "CTA", "肺动脉", "肾动脉", "下肢", "颈动脉", "脑血管", "主动脉造影"]) {
                let guiding = any(&cl, GUIDING);
                // By designation where it has a curve size (JL4, then JL3.5 after an exchange:
                // two catheters), else by kind; a bare JL beside JL4 is the same one.
                let mut named: Vec<(&str, &str)> = Vec::new();
                for (w, family) in DIAGNOSTIC {
                    let sized = w.chars().any(|c| c.is_ascii_digit());
                    let name = if sized { *w } else { *family };
                    if cl.contains(w) && !named.iter().any(|(n, f)| *n == name || (!sized && f == family) || n.starts_with(w)) {
                        named.push((name, family));
                    }
                }
                let named: Vec<&str> = named.into_iter().map(|(n, _)| n).collect();
                // "JL3.5指引导管" guides; "5F JL4、JR4造影导管" are diagnostic.
                let role = if guiding && !cl.contains("造影导管") { CatheterRole::Guiding } else { CatheterRole::Diagnostic };
                for name in named {
                    tell(Fact::Catheter { name: name.into(), role }, outcome);
                }
                if any(&cl, &["猪尾", "pigtail", "Pigtail"]) {
                    tell(Fact::Catheter { name: "pigtail".into(), role: CatheterRole::Ventricular }, outcome);
                }
                let coronary_angio = any(&cl, &["冠脉造影", "冠状动脉造影", "CAG", "左右冠脉", "左、右冠", "冠状动脉选择性造影", "选择性冠脉", "冠脉显影", "左冠造影", "右冠造影", "冠造", "左冠显影", "右冠显影"])
                    || (cl.contains("造影") && any(&cl, &["TIG", "JL", "JR", "造影导管"]));
                if coronary_angio {
                    tell(Fact::Angiography, outcome);
                }
                if any(&cl, &["左室造影", "左心室造影", "左心室显影"]) {
                    tell(Fact::Ventriculography, outcome);
                }
            }

            // Stents.
            if named_stent && !tells_history(&cl) && (coronary_context || !last_vessels.is_empty()) {
                let placed = any(&cl, &["置入", "植入", "释放", "串联", "送入", "定位"]) || (cl.contains("DES") && !cl.contains("支架")) || stent_field(&cl);
                let failed = any(&cl, STENT_FAILED)
                    || any(&cl, STENT_NOT_PLACED)
                    || (named_stent && any(&cl, &["未能通过", "无法通过", "不能通过", "无法到位", "未能到位"]) && !any(&cl, &["球囊无法", "球囊未能", "球囊不能"]));
                if placed || failed {
                    let stent_outcome = if failed { Outcome::Failed } else { outcome };
                    let kind = if any(&cl, &["裸金属", "裸支架", "BMS"]) {
                        StentKind::BareMetal
                    } else if any(&cl, &["生物可吸收", "可降解", "BRS", "生物可降解"]) || any(&cl, SCAFFOLD_BRANDS) {
                        StentKind::Bioresorbable
                    } else if cl.contains("覆膜") {
                        StentKind::Covered
                    } else {
                        StentKind::DrugEluting
                    };
                    let size = sizes(&cl).into_iter().next();
                    let count = stent_count(&cl, vessels.len());
                    let total = any(&cl, &["共植入", "共置入", "共计", "合计", "总共", "共释放"]) || cl.contains('共') && cl.contains('枚');
                    tell(Fact::Stent { vessels: vessels.clone(), kind, count, size, total }, stent_outcome);
                }
            }

            // "反复尝试不能通过迂曲段": the stent tried in this sentence failed.
            if !named_stent && any(&cl, &["不能通过", "无法通过", "未能通过", "仍失败", "无法到位", "未能到位"]) && out[first_fact..].iter().any(|t| matches!(t.fact, Fact::Stent { .. })) {
                let vessels = vessels.clone();
                out.push(Told { fact: Fact::Stent { vessels, kind: StentKind::DrugEluting, count: 0, size: None, total: false }, outcome: Outcome::Failed, span: span.clone() });
            }

            // Balloons: dilation with a balloon; a drug-coated balloon is its own fact.
            let dcb = any(&cl, &["药物球囊", "药物涂层球囊", "药涂球囊", "DCB"]);
            // "以2.0×15mm球囊12atm扩张(POBA)": a balloon and a dilation, written apart.
            // A balloon told by its brand dilates too (Sprinter 2.0×15mm扩张OM1中段); a wall that
            // bulges like one (心尖部呈球囊样扩张) is no balloon.
            let written_apart = any(&cl, BALLOON_BRANDS) && cl.contains("扩张") && !cl.contains("输送球囊") && !cl.contains("球囊样");
            // 未预扩，直接置入 (direct stenting) and 未后扩 tell of no balloon.
            let dilated = ["预扩张", "后扩张", "预扩", "后扩", "球囊扩张", "PTCA", "POBA", "扩张球囊", "切割球囊", "棘突球囊", "高压球囊", "非顺应性球囊", "NC球囊", "半顺应性球囊", "球囊对吻"]
                .iter()
                .any(|w| find_all(&cl, w).into_iter().any(|(s, _)| s == 0 || !matches!(cl.chars().nth(s - 1), Some('未' | '不' | '无'))));
            let plain = (dilated || written_apart)
                && !any(&cl, &["药物球囊扩张", "药物涂层球囊扩张"]);
            let balloon_failed = any(&cl, &["球囊无法通过", "球囊未能通过", "球囊不能通过"]);
            // A valve or septum dilated (20mm球囊预扩张主动脉瓣, 180bpm起搏下预扩) is a structural
            // procedure's step, not a coronary angioplasty (a coronary dilated under temporary
            // pacing is one).
            let structural = any(&cl, &["主动脉瓣", "二尖瓣", "肺动脉瓣", "三尖瓣", "瓣膜", "瓣口", "房间隔", "快速起搏", "bpm"]);
            if (dcb || plain) && (coronary_context || !last_vessels.is_empty()) && !structural && !tells_history(&cl) && !any(&cl, NEGATED) {
                let o = if balloon_failed { Outcome::Failed } else { outcome };
                if dcb {
                    tell(Fact::Balloon { vessels: vessels.clone(), drug_coated: true }, o);
                }
                if plain {
                    tell(Fact::Balloon { vessels: vessels.clone(), drug_coated: false }, o);
                }
            }
            if any(&cl, &["对吻", "Kissing", "kissing", "Crush", "crush", "Culotte", "culotte", "T支架", "TAP技术", "双支架术", "分叉病变处理", "DK-crush"]) {
                tell(Fact::Bifurcation, outcome);
            }

            // Measurements of a vessel (not a treatment of it).
            for (words, kind) in [
                (&["FFR", "血流储备分数"][..], Measurement::Ffr),
                (&["iFR", "瞬时无波形"][..], Measurement::Ifr),
                (&["IVUS", "血管内超声"][..], Measurement::Ivus),
                (&["OCT", "光学相干"][..], Measurement::Oct),
            ] {
                if any(&cl, words) && !any(&cl, NEGATED) && !cl.contains("建议") {
                    tell(Fact::Measure { kind, vessels: vessels.clone() }, outcome);
                }
            }

            // Devices.
            let device_words = any(&cl, &["起搏器", "除颤器", "ICD", "CRT", "脉冲发生器", "起搏系统", "无导线起搏"]) || any(&cl, DEVICE_MODELS);
            // The same generator put back after a lead or pocket revision (原脉冲发生器连接后放回囊袋)
            // is neither an implant nor a replacement.
            let put_back = any(&cl, &["放回", "回纳", "重新放入"]) && !any(&cl, &["更换", "新"]);
            // A leadless pacemaker is delivered and released (送入Micra，释放于右室间隔).
            let kind_here = device_kind(&cl);
            let leadless_delivered = matches!(kind_here, Some(DeviceKind::Leadless)) && any(&cl, &["送入", "释放"]);
            if device_words && !put_back && (leadless_delivered || any(&cl, &["置入", "植入", "更换", "置换", "埋置", "埋入", "连接", "放入囊袋", "置于囊袋"])) && !any(&cl, &["临时", "术后", "既往", "程控"]) && !any(&cl, NEGATED) {
                let kind = match kind_here.or(whole_device_kind).unwrap_or(DeviceKind::Pacemaker) {
                    DeviceKind::PacemakerSingle { atrial, .. } => DeviceKind::PacemakerSingle { atrial, rate_responsive: section_rate_responsive },
                    k => k,
                };
                // An upgrade (双腔起搏器升级为CRT-D) implants a new system of another kind: a
                // first implant of that kind, not a generator replacement.
                // A CRT or ICD whose new lead the old system lacked (a left-ventricular lead
                // through the coronary sinus, a defibrillation lead) is such an upgrade too.
                let new_lead = |words: &[&str]| flat.iter().any(|(c, _, _, _)| any(c, words) && any(c, &["送入", "植入", "置入"]) && !c.contains("原"));
                let upgrade = any(text, &["升级"])
                    || matches!(kind, DeviceKind::CrtD | DeviceKind::CrtP) && new_lead(&["左室电极", "左心室电极", "冠状窦电极", "LV电极", "LV lead", "LV导线", "左室导线", "CS lead"])
                    || matches!(kind, DeviceKind::CrtD | DeviceKind::IcdSingle | DeviceKind::IcdDual) && new_lead(&["除颤电极", "除颤导线", "ICD lead", "DF-4", "DF4"]);
                let replacement = !upgrade && (any(&cl, &["更换", "置换", "电池耗竭", "电池耗尽"]) || any(text, &["电池耗竭", "电池耗尽", "择期更换指征", "ERI", "取出原", "原脉冲发生器", "原起搏器", "旧脉冲发生器", "旧起搏器", "原CRT", "原ICD", "原双腔", "原单腔", "保留原电极"]));
                tell(Fact::Device { kind, replacement }, outcome);
            }

            // Ablation, EP study, mapping.
            // Energy at a target (放电8秒δ波消失, 30W放电): an ablation even where the word is not
            // written; a device's shock (ICD放电, 除颤) is none.
            let energy_delivered = cl.contains("放电") && any(&cl, &["W", "℃", "瓦", "秒", "消失"]) && !any(&cl, &["除颤", "ICD", "电击", "未放电"]);
            // 慢径改良 (slow-pathway modification) is the AVNRT's ablation by another name.
            if (any(&cl, &["消融", "隔离", "RFCA", "PVI", "WACA", "CPVI", "慢径改良", "改良慢径"]) || energy_delivered) && !any(&cl, &["肾动脉", "甲状腺", "肝", "肺病损", "酒精"]) && !any(&cl, NEGATED) {
                let energy = if any(&cl, &["冷冻", "冷冻球囊"]) || any(text, &["冷冻球囊"]) { Energy::Cryo } else { Energy::Radiofrequency };
                let target = if any(&cl, &["肺静脉", "PVI", "WACA", "CPVI", "环肺", "LSPV", "LIPV", "RSPV", "RIPV", "支PV", "PV均", "PV电隔离", "PV隔离"]) { AblationTarget::PulmonaryVeins } else { AblationTarget::Other };
                tell(Fact::Ablation { energy, target }, outcome);
            }
            // The study told by what it measured (AH/HV intervals, S1S2 stimulation).
            let measured = any(&cl, &["AH", "HV"]) && cl.contains("ms") || any(&cl, &["S1S1", "S1S2", "心房刺激", "心室刺激", "心房程序", "心室程序", "拖带", "腔内图", "腔内电图"]);
            if any(&cl, &["电生理检查", "心内电生理", "EPS", "程序刺激", "电生理检测"]) || measured {
                tell(Fact::EpStudy, outcome);
            }
            if any(&cl, &["CARTO", "Carto", "EnSite", "Ensite", "ENSITE", "三维标测", "三维电解剖", "三维建模", "Rhythmia"]) && !any(&cl, NEGATED) {
                tell(Fact::Mapping3d, outcome);
            }
            // The device list (器械：…支架3枚) is an inventory: what was placed is told in the steps.
            if inventory {
                found.retain(|t| !matches!(t.fact, Fact::Stent { .. } | Fact::Balloon { .. } | Fact::Bifurcation));
            }
            if summary {
                summary_facts.extend(out.len()..out.len() + found.len());
            }
            out.extend(found);
            // A wire passed on to a distal branch does not move the lesion being treated.
            // A wire to another coronary tree (after a guide change: 更换JR4指引导管，导丝至RCA) is
            // the next vessel treated; one to a branch of the vessel treated, or to protect it, is
            // not.
            let other_tree = !target.is_empty() && here.iter().all(|v| target.iter().all(|t| tree_of(v) != tree_of(t)));
            let wire_only = cl.contains("导丝") && !any(&cl, &["球囊", "支架", "DES"]) && !named_stent && !target.is_empty() && (!other_tree || cl.contains("保护"));
            // A guiding catheter seated at a vessel (EBU3.75指引导管至LM) tells where it sits, not
            // what is treated.
            let guide_only = any(&cl, GUIDING) && !any(&cl, &["导丝", "球囊", "支架", "DES", "扩张", "植入", "置入"]) && !named_stent;
            // Except a guide changed over to the right coronary after the left was treated
            // (更换6F JR4指引导管至RCA): the right system has one vessel, the next one treated.
            let guide_to_the_right = guide_only && !here.is_empty() && here.iter().all(|v| tree_of(v) == "RCA") && !target.is_empty() && target.iter().all(|t| tree_of(t) != "RCA");
            let treats_nothing = wire_only || guide_only && !guide_to_the_right;
            if !here.is_empty() && (intervention || guide_to_the_right) && !treats_nothing && outcome == Outcome::Done {
                target = here.clone();
            }
            if !here.is_empty() && !treats_nothing {
                in_sentence = here.clone();
            }
            if !here.is_empty() && has_lesion(cl) {
                last_lesion = here.clone();
            }
            if !here.is_empty() {
                last_vessels = here;
            }
        }
        // A stent that could not be delivered, told in a later clause of its sentence (尝试送入
        // DES，不能通过迂曲段，撤出支架), did not go in.
        let stent_failed_here = out[first_fact..].iter().any(|t| matches!(t.fact, Fact::Stent { .. }) && t.outcome == Outcome::Failed);
        if stent_failed_here {
            let failed_vessels: Vec<Vec<&'static str>> = out[first_fact..]
                .iter()
                .filter(|t| t.outcome == Outcome::Failed)
                .filter_map(|t| if let Fact::Stent { vessels, .. } = &t.fact { Some(vessels.clone()) } else { None })
                .collect();
            for t in &mut out[first_fact..] {
                if let Fact::Stent { vessels, .. } = &t.fact {
                    if t.outcome == Outcome::Done && failed_vessels.contains(vessels) {
                        t.outcome = Outcome::Failed;
                    }
                }
            }
        }
    }
    // The summary line's stents are the steps' stents told again: where the steps tell any, the
    // summary's count nothing (they still cite the line).
    let steps_tell_stents = (section_first..out.len()).any(|i| !summary_facts.contains(&i) && matches!(out[i].fact, Fact::Stent { .. }));
    if steps_tell_stents {
        for &i in &summary_facts {
            if let Fact::Stent { count, .. } = &mut out[i].fact {
                *count = 0;
            }
        }
    }
}

/// The report's summary line: what the operation was, before the steps tell it.
const SUMMARY_HEADINGS: &[&str] = &["术式", "手术方式", "手术名称", "操作名称", "拟行术式", "实施术式"];
/// The list of devices and consumables used.
const INVENTORY_HEADINGS: &[&str] = &["器械", "耗材", "使用器械", "术中器械", "材料", "器材", "植入物"];

fn any_prefix(text: &str, heads: &[&str]) -> bool {
    heads.iter().any(|h| text.starts_with(h))
}

/// A clause that is only a label: a step number and a vessel (①LAD, 2）OM1, 对角支).
fn is_label(cl: &str) -> bool {
    let rest: String = cl.chars().filter(|c| !c.is_whitespace() && !"①②③④⑤⑥⑦⑧⑨⑩()（）0123456789.、".contains(*c)).collect();
    !rest.is_empty() && rest.chars().count() <= 6
}

/// A single-chamber pacemaker programmed to respond to the rate (VVIR, AAIR, 频率应答开启),
/// not one whose sensor is off.
fn rate_responsive(text: &str) -> bool {
    any(text, &["VVIR", "AAIR", "频率应答开启", "频率应答功能开启", "开启频率应答", "频率适应性起搏", "频率应答起搏"])
}

fn device_kind(text: &str) -> Option<DeviceKind> {
    if any(text, &["Micra", "MICRA", "Aveir", "AVEIR", "无导线起搏器", "无导线心脏起搏器", "无导线起搏"]) {
        Some(DeviceKind::Leadless)
    } else if any(text, &["CRT-D", "CRTD", "三腔除颤", "三腔ICD", "心脏再同步治疗除颤器"]) {
        Some(DeviceKind::CrtD)
    } else if any(text, &["CRT-P", "CRTP", "三腔起搏", "三腔永久起搏", "CRT", "心脏再同步"]) {
        Some(DeviceKind::CrtP)
    } else if any(text, &["双腔ICD", "双腔除颤", "双腔植入型心律转复除颤器"]) {
        Some(DeviceKind::IcdDual)
    } else if any(text, &["单腔ICD", "单腔除颤", "ICD", "除颤器", "植入型心律转复除颤器"]) {
        Some(DeviceKind::IcdSingle)
    } else if any(text, &["双腔", "DDD"]) || any(text, DUAL_MODELS) {
        Some(DeviceKind::PacemakerDual)
    } else if any(text, &["AAI"]) {
        Some(DeviceKind::PacemakerSingle { atrial: true, rate_responsive: rate_responsive(text) })
    } else if any(text, &["单腔", "VVI"]) {
        Some(DeviceKind::PacemakerSingle { atrial: false, rate_responsive: rate_responsive(text) })
    } else {
        None
    }
}

/// A generator named by its model (连接 Medtronic Azure XT DR MRI, Biotronik Enitra 8 DR-T): the
/// report of a device service need not write 起搏器.
const DEVICE_MODELS: &[&str] = &[
    "Azure", "Adapta", "Advisa", "Attesta", "Ensura", "Sphera", "Percepta", "Claria", "Evera", "Visia", "Cobalt", "Crome", "Amplia", "Compia",
    "Enitra", "Edora", "Evity", "Amvia", "Enticos", "Evia", "Itrevia", "Rivacor", "Acticor", "Assurity", "Endurity", "Zenus", "Zenex", "Accolade",
    "Proponent", "Essentio", "Vitalio", "Valitude", "Visionist", "Momentum", "Resonate", "Dynagen", "Inogen", "Vitatron", "Eterna", "Kora", "Reply", "Alizea", "Borea", "Micra", "Aveir",
];
/// A model's dual-chamber suffix.
const DUAL_MODELS: &[&str] = &[" DR", "DR-T", "DR MRI", "DR(", "DR（"];

/// Sizes written as 3.0×29mm, 2.5*15, 3.5x18 mm.
fn sizes(cl: &str) -> Vec<String> {
    let chars: Vec<char> = cl.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || !(chars[i - 1].is_ascii_digit() || chars[i - 1] == '.')) {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let sep = chars.get(j).copied();
            if matches!(sep, Some('×' | 'x' | 'X' | '*' | '✕' | '＊')) && chars.get(j + 1).is_some_and(|c| c.is_ascii_digit()) {
                let mut k = j + 1;
                while k < chars.len() && (chars[k].is_ascii_digit() || chars[k] == '.') {
                    k += 1;
                }
                out.push(chars[i..k].iter().collect());
                i = k;
                continue;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether a clause describes a lesion of the vessels it names, not their being normal.
fn has_lesion(cl: &str) -> bool {
    any(cl, &["闭塞", "狭窄", "病变", "血栓", "夹层", "罪犯"]) && !any(cl, &["无明显狭窄", "未见明显狭窄", "未见狭窄", "无狭窄", "未见异常", "正常", "通畅", "无明显异常", "未见有意义狭窄"])
}

/// Stents in one clause: "支架2枚", "2枚支架", "两枚", "各1枚" (times the vessels), or the
/// stent sizes given; one when nothing says more.
fn stent_count(cl: &str, vessels: usize) -> u32 {
    let chars: Vec<char> = cl.chars().collect();
    let mut explicit = 0;
    let mut each = false;
    for (i, c) in chars.iter().enumerate() {
        if matches!(c, '枚' | '个' | '只' | '根') && i > 0 {
            // The number may be two digits (10枚 is rare; 1枚 common).
            let prev = chars[i - 1].to_string();
            if let Some(n) = super::text::small_count(&prev) {
                explicit += n;
            }
        }
    }
    // DES 2.75×24mm×1: a count after the size.
    for marker in ["mm×", "mm*", "mm x", "mmx", "mm X"] {
        let mut rest = cl;
        while let Some(at) = rest.find(marker) {
            let after = &rest[at + marker.len()..];
            let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            // "×1枚" is counted with the 枚 above.
            let counted_above = after[digits.len()..].starts_with(['枚', '个', '只', '根']);
            if let (Ok(n), false) = (digits.parse::<u32>(), counted_above) {
                explicit += n;
            }
            rest = after;
        }
    }
    // 各1枚: one for each vessel named.
    each |= cl.contains('各');
    let explicit = if each { explicit * vessels.max(1) as u32 } else { explicit };
    // Sizes of stents only: a size belongs to the next device named after it (2.5×15mm球囊,
    // 3.0×29mm、2.75×18mm药物洗脱支架).
    let stent_sizes = {
        let mut n = 0u32;
        let mut rest = cl;
        while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
            let tail = &rest[at..];
            let len = tail.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '×' | 'x' | 'X' | '*' | 'm' | 'M'))).unwrap_or(tail.len());
            let token = &tail[..len];
            let after = &tail[len..];
            if token.contains(['×', 'x', 'X', '*']) {
                // A balloon by its dilation too, or misspelt (2.5×15球襄预扩后植入DES).
                let device = ["支架", "DES", "球", "预扩", "后扩"].iter().filter_map(|w| after.find(w).map(|p| (p, *w))).min();
                // Or, with no device named after it, to the brand named last before it
                // (Firebird2 3.0×29mm、3.5×18mm; Sprinter 2.0×15mm预扩).
                let before = &cl[..cl.len() - tail.len()];
                let last_before = |words: &[&str]| words.iter().filter_map(|w| before.rfind(w)).max();
                let brand_stent = device.is_none() && last_before(STENT_BRANDS).is_some_and(|s| last_before(BALLOON_BRANDS).is_none_or(|b| b < s));
                // Or to the stent named just before a list of sizes (植入DES 3.0×33mm、3.5×18mm各1枚):
                // nothing but sizes and separators between them.
                let listed_after_stent = device.is_none()
                    && ["DES", "支架"].iter().filter_map(|w| before.rfind(w).map(|p| p + w.len())).max().is_some_and(|end| {
                        before[end..].chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '×' | 'x' | 'X' | '*' | 'm' | 'M' | '、' | '，' | ',' | ' ' | '及' | '和' | '与'))
                    });
                if device.is_some_and(|(_, w)| matches!(w, "支架" | "DES")) || brand_stent || listed_after_stent {
                    n += 1;
                }
            }
            rest = &tail[len.max(1)..];
        }
        n
    };
    explicit.max(stent_sizes).max(1)
}

/// Every fact of the record's procedure sections.
pub fn read_record(rec: &EhrRecord) -> Vec<Told> {
    let mut out = Vec::new();
    for section in SOURCES {
        let text = rec.text(section);
        if !text.is_empty() {
            read_section(section, text, &mut out);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> Vec<Told> {
        let mut out = Vec::new();
        read_section(Section::OperativeReport, text, &mut out);
        out
    }

    #[test]
    fn vessels_are_read_once_by_their_longest_name() {
        assert_eq!(vessels_in("右冠状动脉及前降支、D1"), vec!["RCA", "LAD", "D1"]);
        assert_eq!(vessels_in("ROMA指数"), Vec::<&str>::new());
    }

    #[test]
    fn a_stent_that_could_not_be_delivered_failed_and_its_balloon_was_done() {
        let f = facts("以2.0×15mm球囊预扩张回旋支病变，支架无法通过病变，遂放弃置入支架。");
        assert!(f.iter().any(|t| matches!(t.fact, Fact::Balloon { drug_coated: false, .. }) && t.outcome == Outcome::Done), "{f:?}");
        assert!(f.iter().any(|t| matches!(t.fact, Fact::Stent { .. }) && t.outcome == Outcome::Failed), "{f:?}");
        assert!(!f.iter().any(|t| matches!(t.fact, Fact::Stent { .. }) && t.outcome == Outcome::Done), "{f:?}");
    }

    #[test]
    fn a_guide_changed_over_to_the_right_coronary_moves_the_treatment_there() {
        let t = "3. EBU3.75指引导管,导丝至LAD远端,2.5×15mm球囊预扩,植入3.0×30mm支架。\n4. 导丝转入LCX,2.25×12mm球囊预扩后植入2.75×18mm支架。\n5. 更换6F JR4指引导管至RCA,2.5×15mm球囊预扩,植入3.5×26mm支架。";
        let stents: Vec<Vec<&str>> = facts(t).into_iter().filter_map(|f| if let Fact::Stent { vessels, .. } = f.fact { Some(vessels) } else { None }).collect();
        assert_eq!(stents, vec![vec!["LAD"], vec!["LCX"], vec!["RCA"]]);
    }

    #[test]
    fn direct_stenting_told_as_no_dilation_has_no_balloon() {
        let balloons = |t: &str| facts(t).iter().filter(|f| matches!(f.fact, Fact::Balloon { .. })).count();
        assert_eq!(balloons("RCA中段狭窄80%,未预扩,直接置入3.5×23mm DES 1枚(14atm),TIMI 3级,未后扩。"), 0);
        assert_eq!(balloons("RCA中段狭窄80%，以2.5×15mm球囊预扩后置入3.0×23mm支架1枚。"), 1);
    }

    #[test]
    fn a_templated_reports_summary_line_does_not_add_to_the_steps_and_a_vessel_heading_is_the_target() {
        let t = "术式：临时起搏器置入术；RCA血栓抽吸+球囊预扩+支架植入\n介入过程：①RCA：Runthrough导丝通过闭塞段，Export抽吸。\nSprinter 2.0×15mm球囊预扩，植入Firebird2 3.0×29mm、Firebird2 3.5×18mm。\n器械：Firebird2 3.0×29mm（已植入）；球囊2枚。";
        let stents: Vec<(Vec<&str>, u32)> = facts(t).into_iter().filter_map(|f| if let Fact::Stent { vessels, count, .. } = f.fact { Some((vessels, count)) } else { None }).collect();
        // The summary's stent cites its line and counts nothing; the steps' two are in RCA, the
        // vessel their step is headed by; the inventory tells none.
        assert_eq!(stents, vec![(vec!["RCA"], 0), (vec!["RCA"], 2)]);
    }

    #[test]
    fn stents_named_only_by_brand_are_stents_counted_by_their_sizes() {
        let t = "Sprinter 2.0×15mm球囊8atm预扩张LAD；由远及近植入Firebird2 2.75×33mm（12atm）、Firebird2 3.25×23mm（12atm），重叠3mm；NC Trek 3.5×15mm 18atm后扩近段。OM1：Sprinter 2.0×15mm 8atm预扩后植入Excel 2.5×18mm（12atm）。";
        let stents: Vec<(Vec<&str>, u32)> = facts(t).into_iter().filter_map(|f| if let Fact::Stent { vessels, count, .. } = f.fact { Some((vessels, count)) } else { None }).collect();
        assert_eq!(stents, vec![(vec!["LAD"], 2), (vec!["OM1"], 1)]);
        assert_eq!(stent_count("植入Resolute Onyx 2.5×30mm（dLAD）、3.0×38mm（mLAD）、3.5×18mm（pLAD）", 1), 3);
        assert_eq!(stent_count("Sprinter 2.0×15mm 8atm预扩后植入Excel 2.5×18mm", 1), 1);
        // The device list is an inventory, not a placement.
        assert!(!facts("器械：6F EBU3.5 GC；支架3枚（Firebird2 2.75×33、Firebird2 3.25×23、Excel 2.5×18）；球囊3枚。").iter().any(|f| matches!(f.fact, Fact::Stent { .. })));
    }

    #[test]
    fn stents_count_by_number_sizes_and_each() {
        assert_eq!(stent_count("于前降支串联置入3.0×29mm、2.75×18mm药物洗脱支架", 1), 2);
        assert_eq!(stent_count("于前降支及对角支各置入支架1枚", 2), 2);
        assert_eq!(stent_count("2.0×20mm球囊预扩后TIMI 3，植入DES 3.0×33mm、3.5×18mm各1枚", 1), 2);
        assert_eq!(stent_count("植入DES 3.0×29mm，NC 3.5×12mm后扩", 1), 1);
        assert_eq!(stent_count("以2.5×15mm球囊预扩张后置入3.0×29mm支架1枚", 1), 1);
        assert_eq!(stent_count("置入支架", 1), 1);
    }

    #[test]
    fn guiding_catheters_do_not_count_and_staged_vessels_are_not_now() {
        let f = facts("经右桡动脉以TIG导管行冠脉造影，后更换JR4导管。送入EBU3.5指引导管至左冠，于前降支置入支架1枚。回旋支病变择期处理。");
        let cats: Vec<_> = f.iter().filter_map(|t| match &t.fact { Fact::Catheter { name, role: CatheterRole::Diagnostic } => Some(name.clone()), _ => None }).collect();
        assert_eq!(cats, vec!["TIG", "JR4"], "by designation: {f:?}");
        assert!(!f.iter().any(|t| matches!(&t.fact, Fact::Stent { vessels, .. } if vessels.contains(&"LCX")) && t.outcome == Outcome::Done));
    }

    /// A slow-pathway modification is the AVNRT's radiofrequency ablation, though the word
    /// 消融 is not written and the power is told in a clause of its own.
    #[test]
    fn a_slow_pathway_modification_is_an_ablation() {
        let f = facts("心房S1S2程序刺激示AH跳跃，诱发AVNRT。于Koch三角下部行慢径改良，温控55℃、30W，放电可见交界区心律，共放电6次。");
        assert!(f.iter().any(|t| matches!(t.fact, Fact::Ablation { energy: Energy::Radiofrequency, .. }) && t.outcome == Outcome::Done), "{f:?}");
        assert!(f.iter().any(|t| matches!(t.fact, Fact::EpStudy)), "{f:?}");
    }

    #[test]
    fn an_abandoned_ablation_and_a_mapping_system_on_standby_are_not_done() {
        let f = facts("EnSite三维标测：旁道紧邻希氏束。本院暂无冷冻消融条件，与家属沟通后放弃消融，未放电，结束手术。");
        assert!(!f.iter().any(|t| matches!(t.fact, Fact::Ablation { .. }) && t.outcome == Outcome::Done), "{f:?}");
        let f = facts("腔内图示逆钟向TA环折返，CTI处拖带PPI-TCL 12ms。CARTO系统备用，术中未启用。冷盐水灌注导管沿CTI线性消融，40W。");
        assert!(f.iter().any(|t| t.fact == Fact::EpStudy && t.outcome == Outcome::Done), "{f:?}");
        assert!(!f.iter().any(|t| t.fact == Fact::Mapping3d && t.outcome == Outcome::Done), "{f:?}");
        assert!(f.iter().any(|t| matches!(t.fact, Fact::Ablation { .. }) && t.outcome == Outcome::Done), "{f:?}");
    }

    #[test]
    fn devices_ablation_and_mapping_are_told_with_their_kind() {
        let f = facts("在CARTO三维标测指导下行环肺静脉电隔离术，冷冻球囊消融。行双腔永久起搏器植入术。");
        assert!(f.iter().any(|t| t.fact == Fact::Mapping3d));
        assert!(f.iter().any(|t| t.fact == Fact::Ablation { energy: Energy::Cryo, target: AblationTarget::PulmonaryVeins }));
        assert!(f.iter().any(|t| t.fact == Fact::Device { kind: DeviceKind::PacemakerDual, replacement: false }));
    }
}
