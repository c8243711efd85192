//! Clinical facts read from the whole record once (labs, imaging, what was done), shared by
//! validation and prioritization. Thresholds are the clinical diagnostic cut-offs, not values
//! fitted to any data set.

use super::text::{assertion, chars_before, find_all, number_after, Assertion};
use crate::record::{EhrRecord, Section};

#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub hba1c: Option<f64>,
    pub ogtt_2h: Option<f64>,
    pub hemoglobin: Option<f64>,
    /// The lowest serum potassium told: hypokalaemia found on day 3 (利尿后血钾3.1) is no less
    /// one for a normal value on admission.
    pub potassium: Option<f64>,
    /// The highest serum potassium told.
    pub potassium_high: Option<f64>,
    /// The lowest serum sodium told.
    pub sodium: Option<f64>,
    /// The lowest serum magnesium told (mmol/L).
    pub magnesium: Option<f64>,
    pub uric_acid: Option<f64>,
    pub homocysteine: Option<f64>,
    pub ldl: Option<f64>,
    pub total_cholesterol: Option<f64>,
    pub triglycerides: Option<f64>,
    pub troponin_high: bool,
    pub bnp_high: bool,
    /// Invasive coronary angiography done this admission.
    pub cag_done: bool,
    /// Angiography or CTA without significant stenosis.
    pub coronary_no_significant_stenosis: bool,
    pub significant_stenosis: bool,
    pub pci_done: bool,
    pub antidiabetic_drugs: bool,
    pub chest_pain: bool,
    pub dyspnea: bool,
    pub hf_exacerbation_words: bool,
    pub st_elevation: bool,
    /// The ECG shows ST depression, or the record says the infarction is 非ST段抬高.
    pub st_depression: bool,
    /// The chief complaint tells of dyspnoea for years.
    pub long_dyspnea: bool,
    /// The chief complaint says it got worse or came back (加重, 再发).
    pub recent_worsening: bool,
}

/// Where labs, imaging and the course are told.
const BODY: [Section; 7] = [
    Section::ClinicalCourse,
    Section::ProgressNotes,
    Section::OperativeReport,
    Section::ImagingFindings,
    Section::UltrasoundFindings,
    Section::UltrasoundImpression,
    Section::AdmissionStatus,
];

pub fn body_text(rec: &EhrRecord) -> String {
    let mut s = String::new();
    for sec in BODY {
        let t = rec.text(sec);
        if !t.is_empty() {
            s.push_str(t);
            s.push('。');
        }
    }
    for v in rec.extra.values() {
        s.push_str(v);
        s.push('。');
    }
    s
}

/// The first value after any of `labels`, within `window` chars.
fn lab(text: &str, labels: &[&str], window: usize) -> Option<f64> {
    for l in labels {
        for (_, e) in find_all(text, l) {
            if let Some(v) = number_after(text, e, window) {
                return Some(v);
            }
        }
    }
    None
}

/// The serum levels of an electrolyte the text tells, by its Chinese name and its symbol
/// (血钾3.1, 钾：3.25, K+ 3.2, K 3.3; 血钠128, Na+ 124). A dose of a salt (氯化钾缓释片1g,
/// 氯化钠胶囊, 碳酸氢钠) and a peptide (脑钠肽) are no level; values outside `range` are not
/// this electrolyte's.
fn electrolyte_levels(text: &str, name: &str, symbol: &str, range: (f64, f64)) -> Vec<f64> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    for label in [name, symbol] {
        for (s, e) in find_all(text, label) {
            let prev = if s > 0 { chars[s - 1] } else { ' ' };
            if label == symbol && (prev.is_ascii_alphabetic() || !chars.get(e).is_some_and(|c| matches!(c, ' ' | '+' | ':' | '：') || c.is_ascii_digit())) {
                continue;
            }
            if matches!(prev, '化' | '酸' | '补' | '脑') || chars.get(e).is_some_and(|c| matches!(c, '尿' | '肽')) {
                continue;
            }
            // Its own value only, before the next separator (血钾正常，Ca 2.2 is no potassium).
            let after: String = chars[e..(e + 10).min(chars.len())].iter().take_while(|c| !matches!(c, '，' | ',' | '；' | ';' | '。' | '、')).collect();
            if ["g", "片", "ml", "mL", "液", "胶囊"].iter().any(|u| after.contains(u)) {
                continue;
            }
            if let Some(v) = number_after(&after, 0, 6).filter(|v| *v > range.0 && *v < range.1) {
                out.push(v);
            }
        }
    }
    out
}

fn lowest(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::min)
}

fn highest(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

fn present_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| find_all(text, w).into_iter().any(|(s, e)| matches!(assertion(text, s, e), Assertion::Present)))
}

/// The clauses of the course that report coronary angiography or CTA: the one that names the
/// examination and those after it that go on vessel by vessel (造影示：左主干未见狭窄；左前降支
/// 近段狭窄约80%；…), until a clause names another examination.
fn angiography_clauses(course: &str) -> Vec<&str> {
    const VESSELS: [&str; 12] = ["左主干", "前降支", "回旋支", "右冠", "对角支", "钝缘支", "后降支", "左室后支", "LAD", "LCX", "RCA", "LM"];
    const OTHER_EXAM: [&str; 8] = ["超声", "彩超", "心电图", "MRI", "磁共振", "胸部CT", "颅脑", "化验"];
    let mut out = Vec::new();
    let mut within = false;
    for c in course.split(['。', '；', ';']) {
        let names_it = c.contains("造影") || c.contains("CTA") || c.contains("冠脉CT");
        within = names_it || within && VESSELS.iter().any(|v| c.contains(v)) && !OTHER_EXAM.iter().any(|w| c.contains(w));
        if within {
            out.push(c);
        }
    }
    out
}

impl Facts {
    pub fn read(rec: &EhrRecord) -> Facts {
        let body = body_text(rec);
        let course = format!("{}。{}。{}", rec.text(Section::ClinicalCourse), rec.text(Section::ProgressNotes), rec.text(Section::OperativeReport));
        let cc = format!("{}。{}", rec.text(Section::ChiefComplaint), rec.text(Section::PresentIllness));
        let potassium = electrolyte_levels(&body, "钾", "K", (1.0, 9.0));
        let mut f = Facts {
            hba1c: lab(&body, &["糖化血红蛋白", "HbA1c", "HBA1C"], 12),
            ogtt_2h: lab(&body, &["2小时", "2h血糖", "餐后2小时血糖"], 10).filter(|_| body.contains("OGTT") || body.contains("糖耐量")),
            hemoglobin: lab(&body, &["血红蛋白：", "血红蛋白:", "血红蛋白", "HGB", "Hb"], 8).filter(|v| *v > 20.0),
            potassium: lowest(&potassium),
            potassium_high: highest(&potassium),
            sodium: lowest(&electrolyte_levels(&body, "钠", "Na", (90.0, 190.0))),
            magnesium: lowest(&electrolyte_levels(&body, "镁", "Mg", (0.1, 3.0))),
            uric_acid: lab(&body, &["尿酸"], 8).filter(|v| *v > 50.0),
            homocysteine: lab(&body, &["同型半胱氨酸"], 8),
            ldl: lab(&body, &["低密度脂蛋白"], 10).filter(|v| *v < 20.0),
            total_cholesterol: lab(&body, &["总胆固醇", "TC："], 10).filter(|v| *v < 30.0),
            triglycerides: lab(&body, &["甘油三酯", "TG："], 10).filter(|v| *v < 50.0),
            ..Default::default()
        };
        // Troponin: a flagged value, or a value over the usual upper limits for its unit.
        // By name or by abbreviation (cTnI, hs-cTnT); TnI inside cTnI is the same value again.
        let (mut troponin_denied, mut troponin_peak) = (false, 0.0f64);
        for (_, e) in ["肌钙蛋白", "TnI", "TnT"].iter().flat_map(|l| find_all(&body, l)) {
            let sentence: String = body.chars().skip(e).take(48).take_while(|c| !matches!(c, '；' | ';' | '。')).collect();
            // A raised level that stays flat (呈慢性平台，无动态变化) is no infarction's.
            if sentence.contains("平台") || sentence.contains("无动态") {
                continue;
            }
            // Its own value only: up to the next separator (肌钙蛋白I阴性;BNP 96pg/ml is no
            // troponin of 96).
            let win: String = sentence.chars().take_while(|c| !matches!(c, '，' | ',')).collect();
            // Without what brackets hold: the time it was drawn (（2024-08-1909：37）) is no value.
            let mut depth = 0;
            let win: String = win
                .chars()
                .filter(|c| {
                    match c {
                        '（' | '(' => depth += 1,
                        '）' | ')' => {
                            depth -= 1;
                            return false;
                        }
                        _ => {}
                    }
                    depth == 0
                })
                .collect();
            if ["阴性", "正常", "未见", "未升高", "无升高", "不高", "无明显异常", "无异常"].iter().any(|w| win.contains(w)) {
                troponin_denied = true;
                continue;
            }
            if win.contains('↑') || win.contains("升高") || win.contains("阳性") || win.contains("增高") {
                f.troponin_high = true;
                troponin_peak = troponin_peak.max(1.0);
            }
            if let Some(v) = number_after(&win, 0, 15) {
                let unit_ng_ml = win.contains("ng/mL") || win.contains("ng/ml") || win.contains("μg/L") || win.contains("ug/L");
                let unit_ng_l = win.contains("ng/L") || win.contains("pg/mL") || win.contains("pg/ml");
                // Above the usual 99th-percentile upper limits of conventional and
                // high-sensitivity assays.
                let ratio = if unit_ng_ml { v / 0.05 } else if unit_ng_l { v / 50.0 } else { 0.0 };
                if ratio >= 1.0 {
                    f.troponin_high = true;
                    troponin_peak = troponin_peak.max(ratio);
                }
            }
        }
        // The doctor's own reading (肌钙蛋白I无明显异常) outweighs a value at the upper limit
        // (the assay's flag at 51 pg/mL against a limit of 38), not a rise to twice it.
        if troponin_denied && troponin_peak < 2.0 {
            f.troponin_high = false;
        }
        // A rise the record puts down to resuscitation or shocks, or says is no infarction.
        if ["不支持急性心肌梗死", "不支持心肌梗死", "排除急性心肌梗死", "除外急性心肌梗死", "不考虑急性心肌梗死", "与CPR", "与心肺复苏", "除颤相关", "复苏相关"].iter().any(|w| body.contains(w)) {
            f.troponin_high = false;
        }
        if let Some(v) = lab(&body, &["B型钠尿肽", "BNP", "脑钠肽"], 12) {
            f.bnp_high = v >= 400.0;
        }
        if let Some(v) = lab(&body, &["NT-proBNP", "N端", "氨基末端"], 20) {
            f.bnp_high |= v >= 1800.0;
        }
        f.cag_done = present_any(&course, &["冠脉造影", "冠状动脉造影"]) && !course.contains("建议行冠脉造影");
        let no_sten = ["未见明显狭窄", "未见有意义狭窄", "未见狭窄", "无明显狭窄", "未见明显异常", "轻度狭窄", "未见显著狭窄", "无有意义狭窄"];
        let angio_clauses = angiography_clauses(&course);
        // 未见狭窄 also as 未见斑块及狭窄, 未见明确狭窄: a denial a few characters before 狭窄.
        let denied_stenosis = |c: &str| {
            find_all(c, "狭窄").into_iter().any(|(s, _)| {
                let before = chars_before(c, s, 6);
                ["未见", "无明显", "无"].iter().any(|d| before.contains(d)) && !before.contains('，')
            })
        };
        f.coronary_no_significant_stenosis = angio_clauses.iter().any(|c| no_sten.iter().any(|w| c.contains(w)) || denied_stenosis(c));
        // Obstructive at 50% of the lumen or more (a CTA's 中度/重度), the cut-off that
        // separates coronary disease from ischaemia with non-obstructive arteries.
        // Of a coronary artery: a valve's stenosis (主动脉瓣重度狭窄) or another bed's (颈动脉, 肾动脉,
        // 下肢) is none.
        let elsewhere = |c: &str| ["瓣", "颈动脉", "肾动脉", "椎动脉", "锁骨下动脉", "髂", "下肢", "股动脉", "腘动脉"].iter().any(|w| c.contains(w));
        f.significant_stenosis = angio_clauses.iter().filter(|c| !elsewhere(c)).any(|c| {
            find_all(c, "%").into_iter().any(|(s, _)| {
                let before = chars_before(c, s, 3);
                before.chars().filter(|ch| ch.is_ascii_digit()).collect::<String>().parse::<u32>().is_ok_and(|p| p >= 50)
            }) || c.contains("闭塞") || c.contains("重度狭窄") || c.contains("中度狭窄")
        });
        f.pci_done = present_any(&course, &["支架置入", "支架植入", "置入支架", "植入支架", "球囊扩张", "PTCA", "PCI术"])
            && !course.contains("支架植入术后") || course.contains("行PCI") || course.contains("行PTCA");
        // Drugs that treat diabetes only: SGLT2 inhibitors (达格列净, 恩格列净) are heart-failure
        // and kidney drugs too, and insulin with glucose lowers potassium.
        let without_sglt2 = |t: &str| t.replace("达格列净", "").replace("恩格列净", "").replace("卡格列净", "");
        let (orders_text, course_text) = (without_sglt2(rec.text(Section::DischargeOrders)), without_sglt2(&course));
        let orders = orders_text.as_str();
        f.antidiabetic_drugs = ["二甲双胍", "阿卡波糖", "格列", "西格列汀", "利拉鲁肽", "伏格列波糖", "司美格鲁肽", "度拉糖肽"]
            .iter()
            .any(|d| orders.contains(d) || course_text.contains(d))
            || [orders, course_text.as_str()].iter().any(|t| {
                find_all(t, "胰岛素").into_iter().any(|(s, e)| {
                    let (cl, _) = super::text::clause(t, s, e);
                    !cl.contains("降钾") && !cl.contains("葡萄糖") && !cl.contains("高钾")
                })
            });
        f.chest_pain = ["胸痛", "胸闷", "心前区", "胸部不适", "压榨"].iter().any(|w| cc.contains(w));
        f.dyspnea = ["气短", "喘", "呼吸困难", "憋气", "水肿", "不能平卧", "夜间阵发"].iter().any(|w| cc.contains(w));
        f.hf_exacerbation_words = ["心衰加重", "心力衰竭加重", "急性加重", "心功能不全加重", "不能平卧", "端坐呼吸"].iter().any(|w| cc.contains(w) || course.contains(w));
        // ST elevation seen now, not the name of an earlier infarction (诊断为“急性ST段抬高型心肌梗死”).
        f.st_elevation = find_all(&body, "ST段抬高").into_iter().any(|(s, e)| {
            let before = if s > 0 { body.chars().nth(s - 1) } else { None };
            let after: String = body.chars().skip(e).take(1).collect();
            before != Some('非') && after != "型" && matches!(assertion(&body, s, e), Assertion::Present)
        });
        f.st_depression = body.contains("非ST段抬高")
            || body.split(['。', '；', ';']).any(|c| c.contains("心电图") && ["下移", "压低"].iter().any(|w| find_all(c, w).into_iter().any(|(s, e)| matches!(assertion(c, s, e), Assertion::Present))));
        let chief = rec.text(Section::ChiefComplaint);
        f.long_dyspnea = ["喘", "气短", "呼吸困难", "憋气"].iter().any(|w| chief.contains(w)) && chief.contains('年');
        f.recent_worsening = worsened_lately(chief);
        f
    }
}

/// Whether the chief complaint tells of a worsening of days or weeks (加重1周, 再发3天), not one
/// of months (加重半年: the course of a chronic disease, an admission planned for it).
fn worsened_lately(chief: &str) -> bool {
    let chars: Vec<char> = chief.chars().collect();
    let lately = |from: usize| -> bool {
        let after: String = chars[from..chars.len().min(from + 6)].iter().collect();
        let months = after.contains('月') && !after.contains("1月") && !after.contains("1个月") && !after.contains("半月") && !after.contains("半个月");
        !(months || after.contains('年'))
    };
    ["加重", "再发", "复发"].iter().any(|w| find_all(chief, w).into_iter().any(|(_, e)| lately(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_labs_and_flags() {
        let rec = EhrRecord::new("t")
            .with(Section::ClinicalCourse, "糖化血红蛋白：6.90%；肌钙蛋白I：0.217ng/mL；B型钠尿肽：2206.45pg/mL；冠脉造影示前降支狭窄90%，行支架植入。同型半胱氨酸：33.80umol/L")
            .with(Section::ChiefComplaint, "发作性胸闷半年");
        let f = Facts::read(&rec);
        assert_eq!(f.hba1c, Some(6.9));
        assert!(f.troponin_high && f.bnp_high && f.cag_done && f.significant_stenosis && f.pci_done && f.chest_pain);
        assert_eq!(f.homocysteine, Some(33.8));
    }

    /// A valve's or another artery's stenosis in the angiography's words is no coronary one.
    #[test]
    fn a_valve_stenosis_is_no_coronary_stenosis() {
        let f = |t: &str| Facts::read(&EhrRecord::new("v").with(Section::ClinicalCourse, t)).significant_stenosis;
        assert!(!f("冠状动脉造影：LM、LAD、LCX、RCA未见明显狭窄。结论：真性重度主动脉瓣狭窄，建议TAVR。"));
        assert!(!f("冠脉造影未见明显狭窄，右肾动脉造影示开口重度狭窄。"));
        assert!(f("冠脉造影示前降支近段重度狭窄。"));
    }

    #[test]
    fn heart_failure_and_potassium_drugs_are_not_antidiabetic() {
        let hf = EhrRecord::new("t").with(Section::ClinicalCourse, "予呋塞米利尿，加用达格列净、沙库巴曲缬沙坦。高钾血症予胰岛素+葡萄糖降钾。");
        assert!(!Facts::read(&hf).antidiabetic_drugs);
        let dm = EhrRecord::new("t").with(Section::DischargeOrders, "格列美脲2mg qd；门冬胰岛素三餐前皮下注射。");
        assert!(Facts::read(&dm).antidiabetic_drugs);
    }

    #[test]
    fn a_worsening_of_days_or_weeks_is_recent_one_of_months_is_not() {
        assert!(super::worsened_lately("活动后气促3月，加重1周。"));
        assert!(super::worsened_lately("反复胸闷2年，再发3天"));
        assert!(super::worsened_lately("气促5年，加重1月"));
        assert!(!super::worsened_lately("活动后气促3年，加重半年。"));
        assert!(!super::worsened_lately("气促2年，加重3个月"));
        assert!(!super::worsened_lately("胸痛2小时"));
    }

    #[test]
    fn a_troponin_is_read_by_its_own_value() {
        let neg = EhrRecord::new("t").with(Section::ClinicalCourse, "TSH正常;肌钙蛋白I阴性;BNP 96pg/ml;D-二聚体正常。");
        assert!(!Facts::read(&neg).troponin_high);
        let dated = EhrRecord::new("t").with(Section::ClinicalCourse, "血清肌钙蛋白I测定（2024-08-1909：37）：0.312ng/mL；糖化血红蛋白6.1%。");
        assert!(Facts::read(&dated).troponin_high);
        let normal = EhrRecord::new("t").with(Section::ClinicalCourse, "血清肌钙蛋白I测定（2024-08-1909：37）：0.012ng/mL；NT-proBNP 1405pg/mL。");
        assert!(!Facts::read(&normal).troponin_high);
    }

    #[test]
    fn troponin_by_its_abbreviation_and_a_flat_level_is_not_raised() {
        let rise = EhrRecord::new("t").with(Section::ClinicalCourse, "cTnI动态监测：入院时0.86ng/ml，6小时3.42ng/ml。");
        assert!(Facts::read(&rise).troponin_high);
        let flat = EhrRecord::new("t").with(Section::ClinicalCourse, "cTnI 0.09ng/ml（呈慢性平台，无动态变化）。");
        assert!(!Facts::read(&flat).troponin_high);
        let not_raised = EhrRecord::new("t").with(Section::ClinicalCourse, "ECG无动态演变，hsTnT未升高。");
        assert!(!Facts::read(&not_raised).troponin_high);
        let resuscitated = EhrRecord::new("t").with(Section::ClinicalCourse, "hs-cTnI 1.86ng/mL，ECG无新发ST段抬高，考虑与CPR、电除颤相关。");
        assert!(!Facts::read(&resuscitated).troponin_high);
    }

    #[test]
    fn the_doctors_reading_outweighs_a_value_at_the_limit_not_a_rise() {
        let read_normal = EhrRecord::new("t").with(Section::ClinicalCourse, "血清高敏肌钙蛋白I：51.35pg/mL↑（<38.64）；降钙素原0.1ng/mL；CRP、肌钙蛋白I无明显异常。");
        assert!(!Facts::read(&read_normal).troponin_high);
        let rose_later = EhrRecord::new("t").with(Section::ClinicalCourse, "入院时肌钙蛋白I阴性，6小时后复查肌钙蛋白I：0.86ng/ml。");
        assert!(Facts::read(&rose_later).troponin_high);
    }

    #[test]
    fn sodium_is_read_by_name_and_symbol_and_salts_and_peptides_are_no_level() {
        let r = EhrRecord::new("t").with(Section::ClinicalCourse, "NT-proBNP 3200pg/ml，B型钠尿肽升高，血钠128mmol/L，予氯化钠胶囊2g tid口服补钠，第4天Na+ 136mmol/L。碳酸氢钠片0.5g。");
        let f = Facts::read(&r);
        assert_eq!(f.sodium, Some(128.0));
        let k = EhrRecord::new("t").with(Section::ClinicalCourse, "血钾6.3mmol/L，予葡萄糖酸钙、胰岛素加葡萄糖降钾，复查K+ 4.8。");
        assert_eq!((Facts::read(&k).potassium_high, Facts::read(&k).potassium), (Some(6.3), Some(4.8)));
    }

    #[test]
    fn the_lowest_potassium_counts_and_a_dose_is_no_level() {
        let later = EhrRecord::new("t").with(Section::ClinicalCourse, "入院血钾3.6mmol/L，第3天利尿后血钾3.1mmol/L↓，予氯化钾缓释片1g tid，复查4.2mmol/L。");
        assert_eq!(Facts::read(&later).potassium, Some(3.1));
        let bare = EhrRecord::new("t").with(Section::ClinicalCourse, "入院K 3.3，CK 300U/L，予氯化钾3g/d口服。");
        assert_eq!(Facts::read(&bare).potassium, Some(3.3));
        let dose = EhrRecord::new("t").with(Section::ClinicalCourse, "血钾4.0mmol/L，予枸橼酸钾10ml tid，血钾正常，Ca 2.2mmol/L。");
        assert_eq!(Facts::read(&dose).potassium, Some(4.0));
    }

    #[test]
    fn an_angiogram_is_read_vessel_by_vessel_and_half_a_lumen_is_obstructive() {
        // The stenosis is told in the clauses after the one that names the angiogram.
        let told_on = EhrRecord::new("t").with(Section::ClinicalCourse, "行冠脉造影，冠脉造影示右冠优势型；左主干未见明显狭窄；左前降支近段狭窄约80%。心脏超声：左房扩大。");
        let f = Facts::read(&told_on);
        assert!(f.significant_stenosis && f.coronary_no_significant_stenosis);
        // 50% is the cut-off of obstructive disease (below it: ischaemia with non-obstructive arteries).
        let half = EhrRecord::new("t").with(Section::ClinicalCourse, "冠状动脉造影：左前降支未见狭窄：右冠状动脉远段50%狭窄。");
        assert!(Facts::read(&half).significant_stenosis);
        let mild = EhrRecord::new("t").with(Section::ClinicalCourse, "冠状动脉造影：左前降支中段心肌桥，收缩期压缩约30%；右冠状动脉未见狭窄。");
        let f = Facts::read(&mild);
        assert!(!f.significant_stenosis && f.coronary_no_significant_stenosis);
        // Another examination ends the angiogram: a carotid stenosis is not a coronary one.
        let carotid = EhrRecord::new("t").with(Section::ClinicalCourse, "冠脉CTA未见明显狭窄；颈动脉超声：右侧颈内动脉狭窄约70%。");
        assert!(!Facts::read(&carotid).significant_stenosis);
    }
}
