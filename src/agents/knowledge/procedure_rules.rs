//! Coding rules over the operative-report facts ([`super::procedure_facts`]): which codes the
//! facts bring under the coding policy (its `[procedure_codes]` and `[counts]`), each code
//! with the facts it came from. Only what was done is coded; what failed or was only planned
//! is reported, not coded.

use std::collections::BTreeSet;

use super::procedure_facts::{AblationTarget, CatheterRole, DeviceKind, Energy, Fact, Measurement, Outcome, StentKind, Told};
use crate::record::Section;
use crate::terminology::policy::Policy;

/// A code and the facts (indexes into the facts read) that bring it.
#[derive(Clone, Debug, PartialEq)]
pub struct Coded {
    pub code: String,
    pub facts: Vec<usize>,
    /// The policy's name for what was coded (`stent-des`, `angiography-2`).
    pub rule: String,
}

/// What the facts come to: the codes, and the facts left uncoded with why.
#[derive(Clone, Debug, Default)]
pub struct FactCoding {
    pub coded: Vec<Coded>,
    pub not_coded: Vec<String>,
}

fn push(out: &mut Vec<Coded>, policy: &Policy, rule: &str, facts: Vec<usize>) {
    for code in policy.codes_of(rule) {
        if let Some(c) = out.iter_mut().find(|c| &c.code == code) {
            for f in &facts {
                if !c.facts.contains(f) {
                    c.facts.push(*f);
                }
            }
        } else {
            out.push(Coded { code: code.clone(), facts: facts.clone(), rule: rule.into() });
        }
    }
}

/// The first section (in reading order) that tells of coronary interventions done: the same
/// stents are often told again in the course, and must not be counted twice.
fn counting_section(told: &[Told]) -> Option<Section> {
    super::procedure_facts::SOURCES.into_iter().find(|s| {
        told.iter().any(|t| t.span.section == *s && t.outcome == Outcome::Done && matches!(t.fact, Fact::Stent { .. } | Fact::Balloon { .. }))
    })
}

pub fn code_facts(told: &[Told], policy: &Policy) -> FactCoding {
    let mut out = FactCoding::default();
    let done = |i: &usize| told[*i].outcome == Outcome::Done;
    let all: Vec<usize> = (0..told.len()).collect();
    for t in told.iter().filter(|t| t.outcome != Outcome::Done) {
        if !matches!(t.fact, Fact::Catheter { .. }) {
            out.not_coded.push(t.describe());
        }
    }
    let of = |pred: &dyn Fn(&Fact) -> bool| -> Vec<usize> { all.iter().copied().filter(|i| done(i) && pred(&told[*i].fact)).collect() };

    // Coronary angiography by the diagnostic catheters used.
    let angio = of(&|f| matches!(f, Fact::Angiography));
    if !angio.is_empty() {
        let catheters = of(&|f| matches!(f, Fact::Catheter { role: CatheterRole::Diagnostic, .. }));
        let named: BTreeSet<&str> = catheters.iter().filter_map(|&i| match &told[i].fact {
            Fact::Catheter { name, .. } => Some(name.as_str()),
            _ => None,
        }).collect();
        // A catheter named by kind in one clause and by its curve in another is one catheter.
        let kind = |n: &str| -> String { n.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.').to_owned() };
        let names: BTreeSet<&str> = named.iter().copied().filter(|n| !(kind(n) == *n && named.iter().any(|m| m != n && kind(m) == *n))).collect();
        let rule = match names.len() {
            0 => "angiography-unspecified",
            1 => "angiography-1",
            2 => "angiography-2",
            _ => "angiography-3",
        };
        push(&mut out.coded, policy, rule, angio.iter().chain(&catheters).copied().collect());
    }
    let ventriculography = of(&|f| matches!(f, Fact::Ventriculography));
    if !ventriculography.is_empty() {
        push(&mut out.coded, policy, "ventriculography", ventriculography);
    }

    // Stents, balloons, vessels and stent counts, from the section that tells them first.
    let section = counting_section(told);
    let in_section = |i: &usize| Some(told[*i].span.section) == section;
    let stents = of(&|f| matches!(f, Fact::Stent { .. }));
    for (kind, rule) in [(StentKind::DrugEluting, "stent-des"), (StentKind::BareMetal, "stent-bms"), (StentKind::Bioresorbable, "stent-bioresorbable"), (StentKind::Covered, "stent-covered")] {
        let these: Vec<usize> = stents.iter().copied().filter(|&i| matches!(told[i].fact, Fact::Stent { kind: k, .. } if k == kind)).collect();
        if !these.is_empty() {
            push(&mut out.coded, policy, rule, these);
        }
    }
    let balloons = of(&|f| matches!(f, Fact::Balloon { .. }));
    for (dcb, rule) in [(false, "balloon"), (true, "balloon-drug-coated")] {
        let these: Vec<usize> = balloons.iter().copied().filter(|&i| matches!(told[i].fact, Fact::Balloon { drug_coated, .. } if drug_coated == dcb)).collect();
        if !these.is_empty() {
            push(&mut out.coded, policy, rule, these);
        }
    }
    let counted: Vec<usize> = stents.iter().chain(&balloons).copied().filter(in_section).collect();
    if !counted.is_empty() {
        let mut vessels: BTreeSet<&str> = BTreeSet::new();
        for &i in &counted {
            if let Fact::Stent { vessels: v, .. } | Fact::Balloon { vessels: v, .. } = &told[i].fact {
                vessels.extend(v.iter().copied());
            }
        }
        // A diagonal or marginal named without its number is the numbered one named beside it.
        for (generic, numbered) in [("D", ["D1", "D2"]), ("OM", ["OM1", "OM2"])] {
            if numbered.iter().any(|n| vessels.contains(n)) {
                vessels.remove(generic);
            }
        }
        if let Some(code) = Policy::count_code(&policy.counts.vessels, vessels.len().max(1)) {
            out.coded.push(Coded { code: code.into(), facts: counted.clone(), rule: format!("vessels-{}", vessels.len().max(1)) });
        }
        let in_stents: Vec<usize> = stents.iter().copied().filter(in_section).collect();
        // Stents told one by one, or the report's own total where it gives one.
        let one_by_one: u32 = in_stents.iter().map(|&i| if let Fact::Stent { count, total: false, .. } = told[i].fact { count } else { 0 }).sum();
        let total = in_stents.iter().filter_map(|&i| if let Fact::Stent { count, total: true, .. } = told[i].fact { Some(count) } else { None }).max();
        let n = total.unwrap_or(one_by_one);
        if let Some(code) = Policy::count_code(&policy.counts.stents, n as usize) {
            out.coded.push(Coded { code: code.into(), facts: in_stents, rule: format!("stents-{n}") });
        }
    }
    let bifurcation = of(&|f| matches!(f, Fact::Bifurcation));
    if !bifurcation.is_empty() && !counted.is_empty() {
        push(&mut out.coded, policy, "bifurcation", bifurcation);
    }
    for (kind, rule) in [(Measurement::Ffr, "ffr"), (Measurement::Ifr, "ifr"), (Measurement::Ivus, "ivus"), (Measurement::Oct, "oct")] {
        let these = of(&|f| matches!(f, Fact::Measure { kind: k, .. } if *k == kind));
        if !these.is_empty() {
            push(&mut out.coded, policy, rule, these);
        }
    }

    // One device: the most specific kind any fact tells.
    let devices = of(&|f| matches!(f, Fact::Device { .. }));
    if !devices.is_empty() {
        let kinds: Vec<(DeviceKind, bool)> = devices.iter().filter_map(|&i| if let Fact::Device { kind, replacement } = told[i].fact { Some((kind, replacement)) } else { None }).collect();
        let kind = kinds.iter().map(|k| k.0).find(|k| *k != DeviceKind::Pacemaker).unwrap_or(DeviceKind::Pacemaker);
        let replacement = kinds.iter().any(|k| k.1);
        let rule = match (kind, replacement) {
            (DeviceKind::PacemakerSingle { atrial: false, rate_responsive: false }, false) => "pacemaker-single-ventricle",
            (DeviceKind::PacemakerSingle { atrial: true, rate_responsive: false }, false) => "pacemaker-single-atrium",
            (DeviceKind::PacemakerSingle { atrial: false, rate_responsive: true }, false) => "pacemaker-single-ventricle-rate-responsive",
            (DeviceKind::PacemakerSingle { atrial: true, rate_responsive: true }, false) => "pacemaker-single-atrium-rate-responsive",
            (DeviceKind::PacemakerDual, false) => "pacemaker-dual",
            (DeviceKind::Pacemaker, false) => "pacemaker-unspecified",
            (DeviceKind::Leadless, false) => "pacemaker-leadless",
            (DeviceKind::Leadless, true) => "replace-pacemaker-single",
            (DeviceKind::CrtP, false) => "crt-p",
            (DeviceKind::CrtD, false) => "crt-d",
            (DeviceKind::IcdSingle, false) => "icd-single",
            (DeviceKind::IcdDual, false) => "icd-dual",
            (DeviceKind::PacemakerSingle { .. }, true) => "replace-pacemaker-single",
            (DeviceKind::PacemakerDual, true) => "replace-pacemaker-dual",
            (DeviceKind::Pacemaker, true) => "replace-pacemaker-unspecified",
            (DeviceKind::CrtP, true) => "replace-crt-p",
            (DeviceKind::CrtD, true) => "replace-crt-d",
            (DeviceKind::IcdSingle | DeviceKind::IcdDual, true) => "replace-icd",
        };
        push(&mut out.coded, policy, rule, devices);
    }

    // Ablation by target and energy; the EP study and 3-D mapping as codes of their own.
    let ablations = of(&|f| matches!(f, Fact::Ablation { .. }));
    if !ablations.is_empty() {
        let pvi: Vec<usize> = ablations.iter().copied().filter(|&i| matches!(told[i].fact, Fact::Ablation { target: AblationTarget::PulmonaryVeins, .. })).collect();
        if !pvi.is_empty() {
            push(&mut out.coded, policy, "ablation-pvi", pvi);
        }
        let cryo = ablations.iter().any(|&i| matches!(told[i].fact, Fact::Ablation { energy: Energy::Cryo, .. }));
        push(&mut out.coded, policy, if cryo { "ablation-cryo" } else { "ablation-radiofrequency" }, ablations.clone());
    }
    for (fact, rule) in [(Fact::EpStudy, "ep-study"), (Fact::Mapping3d, "mapping-3d")] {
        let these = of(&|f| *f == fact);
        if !these.is_empty() {
            push(&mut out.coded, policy, rule, these);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::procedure_facts::read_section;
    use super::*;

    fn policy() -> Policy {
        Policy::load(None, &crate::terminology::policy::Unchecked).unwrap()
    }

    fn codes(text: &str) -> Vec<String> {
        let mut told = Vec::new();
        read_section(Section::OperativeReport, text, &mut told);
        code_facts(&told, &policy()).coded.into_iter().map(|c| c.code).collect()
    }

    #[test]
    fn direct_stenting_has_no_balloon_and_counts_stents_over_the_report() {
        let c = codes("以JL4、JR4造影导管行冠脉造影。EBU3.5指引导管到位，于前降支直接置入3.0×29mm药物洗脱支架1枚，于前降支近段再置入3.5×15mm支架1枚。");
        assert!(c.contains(&"88.5600".to_string()) && c.contains(&"36.0700".to_string()), "{c:?}");
        assert!(c.contains(&"00.4600".to_string()) && c.contains(&"00.4000".to_string()), "two stents, one vessel: {c:?}");
        assert!(!c.iter().any(|x| x.starts_with("00.66")), "no balloon used: {c:?}");
    }

    #[test]
    fn a_failed_stent_is_a_balloon_dilation_and_a_measured_vessel_is_not_treated() {
        let c = codes("TIG导管行冠脉造影。回旋支病变以2.0×15mm球囊预扩张，支架无法通过病变，放弃置入支架。对前降支行FFR检查为0.86。");
        assert!(c.contains(&"88.5500".to_string()) && c.contains(&"00.6600x004".to_string()) && c.contains(&"00.5902".to_string()), "{c:?}");
        assert!(!c.iter().any(|x| x.starts_with("36.0")), "{c:?}");
        assert!(c.contains(&"00.4000".to_string()), "only the dilated vessel counts: {c:?}");
    }

    #[test]
    fn devices_by_kind_and_replacement() {
        assert_eq!(codes("行CRT-D植入术，左室电极经冠状静脉窦送入。"), vec!["00.5401"]);
        assert_eq!(codes("患者起搏器电池耗竭，行双腔起搏器更换术。"), vec!["37.8701"]);
        let c = codes("在CARTO指导下行环肺静脉电隔离术（射频消融），术前行心内电生理检查。");
        for want in ["37.3400x001", "37.3401", "37.2700", "37.2600"] {
            assert!(c.contains(&want.to_string()), "{want}: {c:?}");
        }
    }

    /// A single chamber programmed VVIR is the rate-responsive device; VVI is not. A pacemaker
    /// patient given a CRT-D with a new left-ventricular lead has a new system, not a
    /// generator replacement. A study told by its intervals is an EP study; an ablation only
    /// planned for later (拟3月后再次评估消融) or a device found not needed is not coded.
    #[test]
    fn rate_response_upgrades_studies_by_their_measurements_and_plans() {
        assert_eq!(codes("右室间隔部送入主动电极，连接单腔起搏器，程控VVIR 60-120次/分，频率应答开启。"), vec!["37.8201", "37.7100"]);
        assert_eq!(codes("右室间隔部送入主动电极，连接单腔起搏器，程控VVI 60次/分。"), vec!["37.8101", "37.7100"]);
        let upgrade = "取出原双腔起搏器脉冲发生器，原心房电极保留。经冠状窦送入左室电极至侧后静脉，送入除颤电极至右室心尖部，连接CRT-D，置入囊袋。";
        assert_eq!(codes(upgrade), vec!["00.5401"]);
        assert_eq!(codes("取出原CRT-D脉冲发生器，原电极测试良好，连接新CRT-D脉冲发生器，置入囊袋。"), vec!["00.5402"]);
        assert_eq!(codes("基础：AH 80ms，HV 45ms。心房S1S2刺激未诱发心动过速。未行消融放电。"), vec!["37.2600"]);
        assert!(codes("病情稳定出院，拟3月后再次评估消融。").is_empty());
        assert!(codes("晕厥机制已明确，不需起搏器植入。").is_empty());
        assert!(codes("与家属沟通急诊冠脉造影，家属考虑预后差拒绝，签字为证。").is_empty());
    }
}
