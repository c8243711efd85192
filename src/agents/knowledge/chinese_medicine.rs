//! Chinese-medicine diagnoses in a diagnosis list, set aside.
//!
//! A TCM or integrated hospital writes both systems (`中医诊断：胸痹心痛病 气虚血瘀证\n西医诊断：
//! 1.冠心病…`), or the TCM name alone on admission (心悸病 气阴两虚证). The TCM disease and its
//! syndrome (证) are coded in the TCM classification (GB/T 15657), not in ICD-10: read as
//! Western words they became symptom codes (心悸病 → R00.2 心悸, 眩晕病 → R42). The Western
//! diagnosis is coded from the Western list, or from the course where only the TCM one is given.

use super::text::Piece;

/// TCM disease names that carry no syndrome in the list (胸痹心痛病？, 心衰病).
const DISEASES: &[&str] = &[
    "胸痹心痛", "胸痹", "真心痛", "心衰病", "心悸病", "眩晕病", "中风病", "不寐病", "消渴病", "胃脘痛", "咳嗽病", "喘证", "水肿病", "头痛病", "项痹", "腰痹", "肺胀", "风温肺热",
];
const TCM_HEADINGS: &[&str] = &["中医诊断", "中医："];
const WESTERN_HEADINGS: &[&str] = &["西医诊断", "西医："];

/// Whether a list item is a TCM diagnosis by itself: its syndrome (…证, 【痰滞络证】) or a TCM
/// disease name. 综合征 ends with 征, not 证.
fn is_tcm(text: &str) -> bool {
    let bare = text.trim_end_matches(['？', '?', ' ']);
    bare.ends_with('证') || bare.contains("证】") || bare.contains("证]") || bare.contains("证）") || DISEASES.iter().any(|d| bare.starts_with(d))
}

/// The pieces to code, and the TCM ones set aside: everything from a 中医诊断 heading to the
/// next 西医诊断 heading or the end of its line, and any item that is a TCM diagnosis by itself.
/// A 西医诊断 heading is taken off the item it heads.
pub fn set_aside(text: &str, pieces: Vec<Piece>) -> (Vec<Piece>, Vec<Piece>) {
    let chars: Vec<char> = text.chars().collect();
    let (mut keep, mut tcm) = (Vec::new(), Vec::new());
    let mut in_tcm_block = false;
    let mut last_end = 0usize;
    for mut p in pieces {
        // A line break since the last piece ends a TCM block that no heading closed.
        if chars[last_end.min(chars.len())..p.start.min(chars.len())].contains(&'\n') {
            in_tcm_block = false;
        }
        last_end = p.end;
        if let Some(h) = WESTERN_HEADINGS.iter().find(|h| p.text.starts_with(**h)) {
            in_tcm_block = false;
            let body = p.text[h.len()..].trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '：' | ':'));
            p.start += p.text.chars().count() - body.chars().count();
            p.text = body.to_owned();
            if p.text.is_empty() {
                continue;
            }
        } else if TCM_HEADINGS.iter().any(|h| p.text.starts_with(h)) {
            in_tcm_block = true;
        }
        if in_tcm_block || is_tcm(&p.text) {
            tcm.push(p);
        } else {
            keep.push(p);
        }
    }
    (keep, tcm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::knowledge::text::split_items;

    fn kept(text: &str) -> Vec<String> {
        set_aside(text, split_items(text)).0.into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn the_western_list_is_kept_and_the_chinese_medicine_one_set_aside() {
        assert_eq!(kept("中医诊断：胸痹心痛病 气虚血瘀证\n西医诊断：1.冠状动脉粥样硬化性心脏病 不稳定型心绞痛 2.高血压病2级（很高危）"), ["冠状动脉粥样硬化性心脏病 不稳定型心绞痛", "高血压病2级（很高危）"]);
        assert_eq!(kept("中医诊断：1.胸痹心痛病 2.眩晕病\n1.冠心病"), ["冠心病"]);
        assert!(kept("心悸病 气阴两虚证").is_empty());
        assert!(kept("胸痹心痛病【痰滞络证】").is_empty());
        assert_eq!(kept("1.肾病综合征 2.2型糖尿病"), ["肾病综合征", "2型糖尿病"]);
        let text = "中医诊断：胸痹心痛病 气虚血瘀证\n西医诊断：1.冠心病";
        let kept = set_aside(text, split_items(text)).0;
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[kept[0].start..kept[0].end].iter().collect::<String>(), "冠心病", "offsets into the section");
    }
}
