//! What the course says it established or ruled out, for records that carry no discharge
//! diagnosis (many exports give only 入院诊断 and 诊疗经过): 诊断：高血压性心脏病，急性左心衰竭；
//! 冠心病诊断明确; 胸痛考虑为反流性食管炎所致; 排除冠心病. The admission diagnosis then is a
//! hypothesis (胸痛原因待查：冠心病？) that these statements confirm, replace or rule out.

use crate::record::lists::Piece;
use crate::record::{EhrRecord, Section};

/// Where the course tells what was found.
pub const COURSE: [Section; 2] = [Section::ClinicalCourse, Section::ProgressNotes];

/// Words that end a stated diagnosis.
const ENDS: [char; 8] = ['，', ',', '。', '；', ';', '\n', '！', '!'];

/// A statement that is no diagnosis of the patient's (诊断依据, 诊断不明, 待诊断).
const NOT_A_FINDING: [&str; 9] = ["依据", "不明", "不清", "待", "困难", "标准", "性治疗", "意见", "治疗"];

/// What a stated diagnosis may not say: it is still a question.
const UNSURE: [&str; 9] = ["?", "？", "可能", "不除外", "待排", "疑似", "依据不足", "不支持", "可能性小"];

/// The diagnoses the course states as established, in course order: (section, piece).
pub fn established(rec: &EhrRecord) -> Vec<(Section, Piece)> {
    let mut out = Vec::new();
    for section in COURSE {
        let chars: Vec<char> = rec.text(section).chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if let Some(found) = statement_at(&chars, i) {
                i = found.iter().map(|p| p.end).max().unwrap_or(i + 1).max(i + 1);
                for p in found {
                    if !out.iter().any(|(_, o): &(Section, Piece)| o.text == p.text) {
                        out.push((section, p));
                    }
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

/// Conditions the course diagnoses and treats in one sentence (出现尿频、尿痛…，诊断尿路感染，予左
/// 氧氟沙星; 考虑尿路感染，予…静滴): coded by D1 though the discharge list forgets them. Only the
/// name between 诊断/考虑 and the treatment that follows it at once.
pub fn treated_in_the_course(rec: &EhrRecord) -> Vec<(Section, Piece)> {
    const TREATS: [&str; 4] = ["予", "给予", "加用", "改用"];
    let mut out = Vec::new();
    for section in COURSE {
        let chars: Vec<char> = rec.text(section).chars().collect();
        let at = |j: usize, w: &str| chars.get(j..).is_some_and(|rest| rest.iter().take(w.chars().count()).copied().eq(w.chars()));
        for i in 0..chars.len() {
            let lead = ["诊断为", "考虑为", "诊断", "考虑"].iter().find(|w| at(i, w)).map(|w| w.chars().count());
            let Some(lead) = lead else { continue };
            let before: String = chars[i.saturating_sub(2)..i].iter().collect();
            if ["排除", "不", "待", "初步", "鉴别", "入院"].iter().any(|w| before.ends_with(w)) {
                continue;
            }
            let start = i + lead;
            let Some(end) = (start..chars.len()).find(|&k| ENDS.contains(&chars[k])) else { continue };
            if !matches!(chars[end], '，' | ',') || !TREATS.iter().any(|w| at(end + 1, w)) {
                continue;
            }
            if let Some(p) = piece(&chars, start, end) {
                out.push((section, p));
            }
        }
    }
    out
}

/// The diagnoses the course rules out (排除冠心病, 除外肺栓塞).
pub fn ruled_out(rec: &EhrRecord) -> Vec<String> {
    let mut out = Vec::new();
    for section in COURSE {
        let chars: Vec<char> = rec.text(section).chars().collect();
        for i in 0..chars.len() {
            let at = |w: &str| chars[i..].iter().take(w.chars().count()).copied().eq(w.chars());
            // Both words are two chars; 不排除 / 不除外 keep the question open.
            if !(at("排除") || at("除外")) || i > 0 && chars[i - 1] == '不' {
                continue;
            }
            // A list ruled out together (排除冠心病、不稳定型心绞痛; 排除原发性醛固酮增多症、嗜铬细胞瘤及…).
            let text: String = chars[i + 2..].iter().take_while(|c| !ENDS.contains(c)).collect();
            let text = text.trim_start_matches(['了', '：', ':']);
            for item in text.split(['、', '及', '和']) {
                // 排除禁忌症 / 排除手术禁忌 are no diagnoses.
                if item.chars().count() >= 2 && !item.contains("禁忌") {
                    out.push(item.to_string());
                }
            }
        }
    }
    out
}

fn piece(chars: &[char], start: usize, end: usize) -> Option<Piece> {
    let raw: String = chars[start..end].iter().collect();
    let lead = raw.chars().take_while(|c| c.is_whitespace() || "：:为是".contains(*c)).count();
    let text: String = raw.chars().skip(lead).collect::<String>().trim_end().trim_end_matches("所致").to_string();
    let n = text.chars().count();
    (n >= 2 && n <= 40 && !UNSURE.iter().any(|w| text.contains(w)) && !NOT_A_FINDING.iter().any(|w| text.starts_with(w)))
        .then(|| Piece { start: start + lead, end: start + lead + n, text })
}

/// A statement of a diagnosis starting at `i`: 诊断：A，B。 (a list to the full stop), 诊断(为)X,
/// X诊断明确, 考虑为X所致.
fn statement_at(chars: &[char], i: usize) -> Option<Vec<Piece>> {
    let at = |j: usize, w: &str| chars.get(j..).is_some_and(|rest| rest.iter().take(w.chars().count()).copied().eq(w.chars()));
    let before = |n: usize| -> String { chars[i.saturating_sub(n)..i].iter().collect() };
    if at(i, "诊断明确") {
        let start = (0..i).rev().find(|&k| ENDS.contains(&chars[k]) || matches!(chars[k], '：' | ':')).map_or(0, |k| k + 1);
        let text: String = chars[start..i].iter().collect();
        // 考虑患者冠心病诊断明确, 根据…结果，冠心病诊断明确.
        let lead = ["考虑患者", "考虑", "患者"].iter().find(|w| text.starts_with(*w)).map_or(0, |w| w.chars().count());
        return piece(chars, start + lead, i).map(|p| vec![p]);
    }
    if at(i, "诊断") {
        let b = before(2);
        // 排除诊断, 待诊断, 初步诊断 (an admission's), 鉴别诊断, 入院诊断: not what was found.
        if ["排除", "待", "初步", "鉴别", "入院", "门诊", "外院", "当地", "拟"].iter().any(|w| b.ends_with(w)) {
            return None;
        }
        let j = i + 2;
        if at(j, "明确") || at(j, "考虑") {
            return None;
        }
        if chars.get(j).is_some_and(|c| matches!(c, '：' | ':')) {
            // A list to the full stop.
            let end = (j + 1..chars.len()).find(|&k| matches!(chars[k], '。' | '；' | ';' | '\n')).unwrap_or(chars.len());
            let mut out = Vec::new();
            let mut s = j + 1;
            for k in j + 1..=end {
                if k == end || matches!(chars[k], '，' | ',' | '、') {
                    out.extend(piece(chars, s, k));
                    s = k + 1;
                }
            }
            return (!out.is_empty()).then_some(out);
        }
        let end = (j..chars.len()).find(|&k| ENDS.contains(&chars[k])).unwrap_or(chars.len());
        let mut out: Vec<Piece> = piece(chars, j, end).into_iter().collect();
        // 诊断急性高危肺栓塞，梗阻性休克。: the names that follow up to the full stop, while they
        // are names (短, no verb: 诊断高脂血症，予阿托伐他汀 stops at 予).
        let mut s = end + 1;
        while !out.is_empty() && s < chars.len() && matches!(chars[s - 1], '，' | ',') {
            let e = (s..chars.len()).find(|&k| ENDS.contains(&chars[k])).unwrap_or(chars.len());
            let text: String = chars[s..e].iter().collect();
            // And no cause told of the first (晕厥为心动过缓所致).
            const VERBS: [&str; 22] = ["予", "给", "行", "考虑", "示", "见", "建议", "继续", "改", "加用", "停", "复查", "后", "于", "经", "请", "转", "治疗", "为", "所致", "因", "由"];
            if e - s > 15 || VERBS.iter().any(|v| text.contains(v)) || text.contains("指征") || text.starts_with(['有', '无', '伴']) {
                break;
            }
            out.extend(piece(chars, s, e));
            s = e + 1;
        }
        return (!out.is_empty()).then_some(out);
    }
    // An endoscopy's conclusion: 行急诊胃镜，十二指肠球部溃疡伴出血，镜下钛夹止血; 胃镜检查，提示反流性食管炎.
    if ["胃镜", "肠镜", "内镜"].iter().any(|w| at(i, w)) {
        let mut k = i + 2;
        while chars.get(k).is_some_and(|c| "检查示：:".contains(*c)) {
            k += 1;
        }
        if chars.get(k).is_some_and(|c| matches!(c, '，' | ',')) {
            k += 1;
        }
        for w in ["提示", "示", "见"] {
            if at(k, w) {
                k += w.chars().count();
                break;
            }
        }
        let end = (k..chars.len()).find(|&x| ENDS.contains(&chars[x])).unwrap_or(chars.len());
        let text: String = chars[k..end].iter().collect();
        const LESIONS: [&str; 8] = ["溃疡", "炎", "息肉", "癌", "静脉曲张", "糜烂", "撕裂", "肿瘤"];
        return LESIONS.iter().any(|l| text.contains(l)).then(|| piece(chars, k, end)).flatten().map(|p| vec![p]);
    }
    // 考虑不稳定型心绞痛，予双联抗血小板: a working diagnosis the course acts on.
    if at(i, "考虑") && !at(i, "考虑为") {
        let end = (i + 2..chars.len()).find(|&k| ENDS.contains(&chars[k])).unwrap_or(chars.len());
        let next: String = chars.get(end + 1..).map(|r| r.iter().take(2).collect()).unwrap_or_default();
        let acted = ["予", "给予", "行", "遂", "即"].iter().any(|w| next.starts_with(w));
        return acted.then(|| piece(chars, i + 2, end)).flatten().map(|p| vec![p]);
    }
    if at(i, "考虑为") {
        let end = (i + 3..chars.len()).find(|&k| ENDS.contains(&chars[k])).unwrap_or(chars.len());
        let text: String = chars[i + 3..end].iter().collect();
        // Only a cause (考虑为反流性食管炎所致): 考虑为…可能 stays a question.
        return text.ends_with("所致").then(|| piece(chars, i + 3, end)).flatten().map(|p| vec![p]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(course: &str) -> Vec<String> {
        established(&EhrRecord::new("t").with(Section::ClinicalCourse, course)).into_iter().map(|(_, p)| p.text).collect()
    }

    /// What the course diagnoses and treats at once; not a diagnosis left untreated, ruled
    /// out or still a question.
    #[test]
    fn conditions_diagnosed_and_treated_in_one_sentence() {
        let treated = |course: &str| treated_in_the_course(&EhrRecord::new("t").with(Section::ClinicalCourse, course)).into_iter().map(|(_, p)| p.text).collect::<Vec<_>>();
        assert_eq!(treated("住院第4天出现尿频、尿痛，尿常规白细胞(+++)，诊断尿路感染，予左氧氟沙星抗感染5天。"), vec!["尿路感染"]);
        assert_eq!(treated("发热37.9℃，考虑尿路感染，予左氧氟沙星静滴5天后好转。"), vec!["尿路感染"]);
        assert!(treated("诊断尿路感染依据不足，未予抗感染。排除诊断肺炎，予观察。考虑肺炎？，予头孢。").is_empty());
    }

    #[test]
    fn statements_of_what_was_found_are_read_and_questions_are_not() {
        assert_eq!(texts("心电图：窦性心动过速。诊断：高血压性心脏病，急性左心衰竭。予BiPAP。"), vec!["高血压性心脏病", "急性左心衰竭"]);
        assert_eq!(texts("甲功正常。诊断病态窦房结综合征,有植入永久起搏器指征。"), vec!["病态窦房结综合征"]);
        assert_eq!(texts("同期于LAD植入DES 1枚。冠心病诊断明确,高血压病重新分层。"), vec!["冠心病"]);
        assert_eq!(texts("胃镜提示反流性食管炎，胸痛考虑为反流性食管炎所致。"), vec!["反流性食管炎"]);
        assert!(texts("入院诊断：冠心病。诊断依据不足。初步诊断为心衰。诊断考虑心衰？").is_empty());
        // The names after the first, to the full stop; not a cause, a doubt or what was done.
        assert_eq!(texts("诊断急性高危（大面积）肺栓塞，梗阻性休克。"), vec!["急性高危（大面积）肺栓塞", "梗阻性休克"]);
        assert_eq!(texts("诊断III度房室传导阻滞，晕厥为心动过缓所致。"), vec!["III度房室传导阻滞"]);
        assert_eq!(texts("诊断社区获得性肺炎（非重症），心力衰竭依据不足。"), vec!["社区获得性肺炎（非重症）"]);
        assert_eq!(texts("诊断高脂血症，予阿托伐他汀20mg qn。"), vec!["高脂血症"]);
        assert_eq!(ruled_out(&EhrRecord::new("r").with(Section::ClinicalCourse, "排除冠心病、不稳定型心绞痛。")), vec!["冠心病", "不稳定型心绞痛"]);
        assert!(texts("诊断：肺栓塞？").is_empty());
        assert_eq!(texts("发作时ST段压低。考虑不稳定型心绞痛,予阿司匹林+替格瑞洛。"), vec!["不稳定型心绞痛"]);
        assert!(texts("考虑心衰可能，建议复查。考虑冠心病，建议造影。").is_empty());
        assert_eq!(texts("入院当日行急诊胃镜，十二指肠球部溃疡伴出血，镜下钛夹止血。"), vec!["十二指肠球部溃疡伴出血"]);
        assert_eq!(texts("于第3天行胃镜检查，提示反流性食管炎（LA-B级），予抑酸。"), vec!["反流性食管炎（LA-B级）"]);
        assert!(texts("建议择期复查胃镜，门诊随访。").is_empty());
        let rec = EhrRecord::new("t").with(Section::ClinicalCourse, "冠脉CTA未见有意义狭窄，排除冠心病。排除手术禁忌后行造影。不排除肺栓塞。");
        assert_eq!(ruled_out(&rec), vec!["冠心病"]);
    }
}
