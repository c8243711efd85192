//! Diagnosis and procedure lists as hospitals write them (`1.冠心病 2.高血压病（3级，很高危）`),
//! split into their items: what the standardizer reads one by one and what the record limits
//! count.

/// A piece of a section: char offsets into the section text and the piece itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// Splits a diagnosis or procedure list into items at numbering (`1.` `2、` `（3）`) and list
/// punctuation, never inside brackets (高血压病（3级，很高危） stays whole) and never at a decimal
/// point (体重2.5kg).
pub fn split_items(text: &str) -> Vec<Piece> {
    let chars: Vec<char> = text.chars().collect();
    let mut pieces = Vec::new();
    let mut depth = 0i32;
    let mut start = 0usize;
    let mut i = 0usize;
    // The number the next list item should carry: `3.2型糖尿病` after item 2 is item 3, not 3.2.
    let mut expected = 1u32;
    let flush = |pieces: &mut Vec<Piece>, s: usize, e: usize| {
        let raw: String = chars[s..e].iter().collect();
        let trimmed = raw.trim_matches(|c: char| c.is_whitespace() || "，,；;。、.:：".contains(c));
        if !trimmed.is_empty() {
            let lead = raw.chars().take_while(|c| c.is_whitespace() || "，,；;。、.:：".contains(*c)).count();
            let s2 = s + lead;
            pieces.push(Piece { start: s2, end: s2 + trimmed.chars().count(), text: trimmed.to_owned() });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '(' | '（' | '[' | '【' => depth += 1,
            ')' | '）' | ']' | '】' => depth = (depth - 1).max(0),
            _ => {}
        }
        if depth == 0 {
            // Numbering: digits then . 、 ． ) ） followed by a non-digit, at the start or after
            // a non-digit.
            if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit()) {
                let mut j = i;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let marker = j < chars.len() && matches!(chars[j], '.' | '、' | '．' | ')' | '）');
                let num: u32 = chars[i..j].iter().collect::<String>().parse().unwrap_or(0);
                let next_ok = j + 1 >= chars.len() || !chars[j + 1].is_ascii_digit() || num == expected;
                let prev_ok = i == 0 || !chars[i - 1].is_ascii_alphabetic();
                if marker && next_ok && prev_ok && j - i <= 2 {
                    expected = num + 1;
                    flush(&mut pieces, start, i);
                    start = j + 1;
                    i = j + 1;
                    continue;
                }
            }
            // Circled numbering (①重症肺炎 ②脓毒性休克) marks an item too.
            if ('\u{2460}'..='\u{2473}').contains(&c) || ('\u{2776}'..='\u{277F}').contains(&c) {
                flush(&mut pieces, start, i);
                start = i + 1;
                i += 1;
                continue;
            }
            if matches!(c, '，' | ',' | '；' | ';' | '。' | '\n' | '、') && !(c == '、' && joins_walls(&chars, i)) {
                flush(&mut pieces, start, i);
                start = i + 1;
            }
        }
        i += 1;
    }
    flush(&mut pieces, start, chars.len());
    // (1) style numbering leaves "(1)" pieces glued to the front: strip them.
    for p in &mut pieces {
        let stripped = strip_paren_number(&p.text);
        if stripped.len() != p.text.len() {
            let cut = p.text.chars().count() - stripped.chars().count();
            p.start += cut;
            p.text = stripped.to_owned();
        }
    }
    // A heading the list carries (死亡诊断：, 出院诊断:) names the list, not a diagnosis.
    for p in &mut pieces {
        if let Some(h) = LIST_HEADINGS.iter().find(|h| p.text.starts_with(**h)) {
            let rest = &p.text[h.len()..];
            let body = rest.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '：' | ':'));
            if body.is_empty() || body.len() < rest.len() {
                p.start += p.text.chars().count() - body.chars().count();
                p.text = body.to_owned();
            }
        }
    }
    pieces.retain(|p| !p.text.is_empty());
    pieces
}

/// Headings a hospital writes inside its lists.
const LIST_HEADINGS: &[&str] = &["死亡诊断", "出院诊断", "最后诊断", "修正诊断", "补充诊断", "入院诊断", "初步诊断", "术后诊断", "术前诊断"];

/// A 、 between the walls of one infarction (急性下壁、右心室心肌梗死, 前壁、下壁): the walls
/// share the head that follows, so the list goes on after it, not at it.
fn joins_walls(chars: &[char], at: usize) -> bool {
    let wall_before = at > 0 && matches!(chars[at - 1], '壁' | '室');
    let rest: String = chars[at + 1..chars.len().min(at + 5)].iter().collect();
    let wall_after = ["前壁", "下壁", "后壁", "侧壁", "高侧壁", "正后壁", "右心室", "右室", "广泛前壁", "前间壁", "心尖"].iter().any(|w| rest.starts_with(w));
    wall_before && wall_after
}

fn strip_paren_number(s: &str) -> &str {
    let t = s.trim_start();
    for (open, close) in [('(', ')'), ('（', '）')] {
        if let Some(rest) = t.strip_prefix(open) {
            if let Some(pos) = rest.find(close) {
                if rest[..pos].chars().all(|c| c.is_ascii_digit()) && pos > 0 {
                    return rest[pos + close.len_utf8()..].trim_start();
                }
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        split_items(s).into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn a_heading_inside_the_list_is_no_item() {
        let pieces = split_items("死亡诊断：\n①重症肺炎\n出院诊断: 1.高血压病");
        let t: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(t, ["重症肺炎", "高血压病"]);
        let text: Vec<char> = "死亡诊断：\n①重症肺炎\n出院诊断: 1.高血压病".chars().collect();
        assert_eq!(text[pieces[0].start..pieces[0].end].iter().collect::<String>(), "重症肺炎", "offsets follow the text");
        assert_eq!(texts("①脑梗死后遗症（左侧偏瘫）②重症肺炎（铜绿假单胞菌）③脓毒性休克"), ["脑梗死后遗症（左侧偏瘫）", "重症肺炎（铜绿假单胞菌）", "脓毒性休克"]);
    }

    #[test]
    fn splits_numbered_lists_but_keeps_brackets_and_grades() {
        assert_eq!(
            texts("1.冠状动脉粥样硬化性心脏病不稳定型心绞痛2.高血压病（3级，很高危）3.2型糖尿病"),
            vec!["冠状动脉粥样硬化性心脏病不稳定型心绞痛", "高血压病（3级，很高危）", "2型糖尿病"]
        );
        assert_eq!(texts("（1）房颤；（2）心衰"), vec!["房颤", "心衰"]);
        assert_eq!(texts("慢性肾脏病5期，体重2.5kg"), vec!["慢性肾脏病5期", "体重2.5kg"]);
        assert_eq!(texts("1.冠心病 急性下壁、右心室心肌梗死、心源性休克"), vec!["冠心病 急性下壁、右心室心肌梗死", "心源性休克"], "walls of one infarction");
        assert_eq!(texts("高血压、糖尿病"), vec!["高血压", "糖尿病"]);
        let p = &split_items("1.冠心病2.高血压")[1];
        assert_eq!((p.start, p.end), (7, 10));
    }
}
