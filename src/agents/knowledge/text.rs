//! Text utilities the knowledge agents share: finding mentions and reading negation and
//! uncertainty around them. (Splitting lists into items is the record's:
//! [`crate::record::lists`].)

pub use crate::record::lists::{split_items, Piece};

/// Occurrences of one mention read per text. A report names a procedure a few times; a text
/// that repeats it thousands of times (pasted templates, or an attack) is read for its first
/// ones, so that the rules' work per mention cannot add up to seconds.
pub const MAX_MATCHES: usize = 256;

/// The `n` chars before char offset `at` (fewer at the start of `text`).
pub fn chars_before(text: &str, at: usize, n: usize) -> String {
    let head: Vec<char> = text.chars().take(at).collect();
    head[head.len().saturating_sub(n)..].iter().collect()
}

/// Whether `hay` contains any of `words`.
#[inline]
pub fn contains_any(hay: &str, words: &[&str]) -> bool {
    words.iter().any(|w| hay.contains(w))
}

/// Char offsets of the occurrences of `needle` in `hay`, the first [`MAX_MATCHES`].
pub fn find_all(hay: &str, needle: &str) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let n = needle.chars().count();
    let mut out = Vec::new();
    // Chars counted from the previous match on, not from the start each time: a long
    // operative report with many matches stays linear.
    let (mut byte_at, mut char_at) = (0usize, 0usize);
    for (byte, _) in hay.match_indices(needle).take(MAX_MATCHES) {
        char_at += hay[byte_at..byte].chars().count();
        byte_at = byte;
        out.push((char_at, char_at + n));
    }
    out
}

/// The clause (between 。；; and line breaks) around a char span.
/// Answers the clause and the mention's char offset in it. Works on the text in place (no copy
/// of the whole text per mention, which made long reports quadratic).
pub fn clause(text: &str, start: usize, end: usize) -> (String, usize) {
    let is_stop = |c: char| matches!(c, '。' | '；' | ';' | '\n');
    // Byte offsets of chars `start` and `end` (the text's end past its last char).
    let mut offsets = text.char_indices().map(|(b, _)| b).chain(std::iter::once(text.len()));
    let (start_byte, past_end) = match offsets.nth(start) {
        Some(b) => (b, false),
        None => (text.len(), true),
    };
    let end_byte = match end.checked_sub(start + 1) {
        _ if past_end => text.len(),
        None => start_byte,
        Some(more) => offsets.nth(more).unwrap_or(text.len()),
    }
    .max(start_byte);
    let from = text[..start_byte].rfind(is_stop).map_or(0, |i| i + text[i..].chars().next().map_or(0, char::len_utf8));
    let to = text[end_byte..].find(is_stop).map_or(text.len(), |i| end_byte + i);
    let before = text[from..start_byte].chars().count();
    // Past the text's end the offset is counted from where the text ends, as the mention is.
    let rel = if past_end { start - (text[..from].chars().count()) } else { before };
    (text[from..to].to_owned(), rel)
}

/// How a mention stands in its clause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assertion {
    Present,
    /// 否认, 无, 未见, 排除, 除外 (but not 不除外).
    Negated,
    /// 待排, 待查, 可能, ？, 不除外.
    Uncertain,
    /// 建议, 拟, 择期, 必要时: talked about, not done.
    Planned,
    /// 未行, 拒绝, 放弃, 失败: not done.
    NotDone,
}

// 而非 sets aside what follows it (选择间断血液透析而非CRRT).
const NEG_BEFORE: &[&str] = &["否认", "未见", "未发现", "未闻及", "未及", "无明显", "无", "排除", "除外", "不伴", "未诉", "没有", "未放置", "未安置", "而非", "而不是"];
// 需 before a procedure is an indication, not the act (如无改善，需气管插管).
const PLAN_BEFORE: &[&str] = &["建议", "拟行", "拟", "择期", "必要时", "计划", "待病情稳定后", "择日", "下次", "需"];
const NOT_DONE: &[&str] = &["未行", "拒绝", "放弃", "失败", "未能", "不同意", "未予", "拒行", "暂不", "取消", "未取", "未做"];

/// Reads negation, uncertainty and planning cues in the clause before (and just after) the
/// mention at `start..end` of `text`.
pub fn assertion(text: &str, start: usize, end: usize) -> Assertion {
    let (cl, rel) = clause(text, start, end);
    let chars: Vec<char> = cl.chars().collect();
    let len = end - start;
    // Before the mention, up to the last comma: a negation covers the whole list after it
    // (否认“脑梗死、糖尿病”病史).
    let mut s = rel;
    while s > 0 && !matches!(chars[s - 1], '，' | ',') {
        s -= 1;
    }
    // 无肝素, 无创, 无痛 name a technique (无肝素透析, 无创呼吸机BiPAP, 无痛胃镜), not an absence.
    let before: String = chars[s..rel].iter().collect::<String>().replace("无肝素", "肝素").replace("无创", "创").replace("无痛", "痛");
    let after_end = (rel + len + 6).min(chars.len());
    let after: String = chars[(rel + len).min(chars.len())..after_end].iter().collect();
    let whole_before: String = chars[..rel].iter().collect();

    // 失败 in an earlier piece is what failed before this was done (HFNC失败，经口气管插管).
    let not_done = |w: &&str| if *w == "失败" { before.contains(w) } else { whole_before.contains(w) };
    if NOT_DONE.iter().any(not_done) || after.starts_with("失败") || after.contains("未成功") {
        return Assertion::NotDone;
    }
    if PLAN_BEFORE.iter().any(|w| before.contains(w)) {
        return Assertion::Planned;
    }
    if before.contains("不除外") || before.contains("不排除") || after.starts_with("不除外") {
        return Assertion::Uncertain;
    }
    // A denial may follow the finding, too: 中段肌桥不明显, 肌桥（-）, 肺部感染依据不足.
    if NEG_BEFORE.iter().any(|w| before.contains(w)) || ["不明显", "（-）", "(-)", "依据不足", "证据不足"].iter().any(|w| after.starts_with(w)) {
        return Assertion::Negated;
    }
    if after.starts_with('?') || after.starts_with('？') || after.contains("待排") || after.contains("待查") || before.contains("可能") || after.starts_with("可能") {
        return Assertion::Uncertain;
    }
    Assertion::Present
}

/// First number (integer or decimal) at or after char offset `from`, within `window` chars.
/// Dates (six or more digits, or digits joined by `-`/`/`) are skipped: 肌钙蛋白I测定（20240831）：0.085.
pub fn number_after(text: &str, from: usize, window: usize) -> Option<f64> {
    let chars: Vec<char> = text.chars().skip(from).take(window + 24).collect();
    let mut i = 0;
    // Chars of skipped dates do not count against the window.
    let mut skipped = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                j += 1;
            }
            let s: String = chars[i..j].iter().collect();
            let int_digits = s.split('.').next().map_or(0, str::len);
            let date_like = int_digits >= 6 || chars.get(j).is_some_and(|c| matches!(c, '-' | '/'));
            if date_like {
                while j < chars.len() && (chars[j].is_ascii_digit() || matches!(chars[j], '-' | '/' | ':' | ' ')) {
                    j += 1;
                }
                skipped += j - i;
                i = j;
                continue;
            }
            if i > window + skipped {
                return None;
            }
            return s.trim_end_matches('.').parse().ok();
        }
        i += 1;
    }
    None
}

/// Chinese or Arabic small counts: 一 两 二 三 四 五 六 1 2 …
pub fn small_count(s: &str) -> Option<u32> {
    match s {
        "一" | "单" => Some(1),
        "两" | "二" | "双" => Some(2),
        "三" => Some(3),
        "四" => Some(4),
        "五" => Some(5),
        "六" => Some(6),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_before_stop_at_the_start() {
        assert_eq!(chars_before("左前降支狭窄约80%", 9, 3), "约80");
        assert_eq!(chars_before("80%", 2, 3), "80");
        assert_eq!(chars_before("", 0, 3), "");
    }

    #[test]
    fn numbers_skip_dates() {
        assert_eq!(number_after("肌钙蛋白I测定（20240831）：0.085↑ng/mL", 4, 15), Some(0.085));
        assert_eq!(number_after("肌钙蛋白I（2024-09-24）肌钙蛋白I：0.050ng/mL", 4, 15), Some(0.05));
        assert_eq!(number_after("钾：3.25", 0, 6), Some(3.25));
    }

    #[test]
    fn reads_negation_uncertainty_and_plans() {
        let t = "否认糖尿病病史。冠心病？心律失常待查。建议行冠脉造影。患者拒绝行PCI。不除外肺部感染。行冠脉造影示前降支狭窄。";
        let at = |w: &str| {
            let (s, e) = find_all(t, w)[0];
            assertion(t, s, e)
        };
        assert_eq!(at("糖尿病"), Assertion::Negated);
        let t3 = "肾内科会诊后选择间断血液透析（IHD）而非CRRT。";
        let (s3, e3) = find_all(t3, "CRRT")[0];
        assert_eq!(assertion(t3, s3, e3), Assertion::Negated, "而非 sets aside what follows");
        let (s4, e4) = find_all(t3, "IHD")[0];
        assert_eq!(assertion(t3, s4, e4), Assertion::Present);
        let t2 = "否认“脑梗死、糖尿病”病史";
        let (s2, e2) = find_all(t2, "糖尿病")[0];
        assert_eq!(assertion(t2, s2, e2), Assertion::Negated);
        assert_eq!(at("冠心病"), Assertion::Uncertain);
        assert_eq!(at("心律失常"), Assertion::Uncertain);
        assert_eq!(at("冠脉造影"), Assertion::Planned);
        assert_eq!(at("PCI"), Assertion::NotDone);
        assert_eq!(at("肺部感染"), Assertion::Uncertain);
        let (s, e) = find_all(t, "冠脉造影")[1];
        assert_eq!(assertion(t, s, e), Assertion::Present);
        // A technique's 无 is no absence; an absence's is.
        for (text, word, want) in [("予无创呼吸机BiPAP辅助通气约40小时", "BiPAP", Assertion::Present), ("行无痛胃镜检查", "胃镜", Assertion::Present), ("无胸痛，无气促", "胸痛", Assertion::Negated), ("前降支近段狭窄约90%，中段肌桥不明显", "肌桥", Assertion::Negated), ("LM(-)；LAD中段心肌桥，收缩期压缩约30%", "心肌桥", Assertion::Present)] {
            let (s, e) = find_all(text, word)[0];
            assert_eq!(assertion(text, s, e), want, "{text}");
        }
    }

    /// The in-place clause and the incremental find_all answer what the whole-text copies
    /// did, on texts with stops, multi-byte chars and mentions at either end.
    #[test]
    fn clause_and_find_all_match_the_char_vector_versions() {
        fn clause_by_chars(text: &str, start: usize, end: usize) -> (String, usize) {
            let chars: Vec<char> = text.chars().collect();
            let is_stop = |c: char| matches!(c, '。' | '；' | ';' | '\n');
            let mut s = start.min(chars.len());
            while s > 0 && !is_stop(chars[s - 1]) {
                s -= 1;
            }
            let mut e = end.min(chars.len());
            while e < chars.len() && !is_stop(chars[e]) {
                e += 1;
            }
            (chars[s..e].iter().collect(), start - s)
        }
        let pieces = ["支架", "。", "；", "前降支", "a", ";", "\n", "球囊扩张", "，", "植入支架1枚"];
        let mut seed = 7u64;
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..(seed % 17) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
            }
            let n = text.chars().count();
            for start in 0..=n + 1 {
                for end in start..=(start + 3).min(n + 2) {
                    assert_eq!(clause(&text, start, end), clause_by_chars(&text, start, end), "{text:?} {start}..{end}");
                }
            }
            for needle in ["支架", "。", "a"] {
                let by_chars: Vec<(usize, usize)> = text.match_indices(needle).map(|(b, _)| (text[..b].chars().count(), text[..b].chars().count() + needle.chars().count())).collect();
                assert_eq!(find_all(&text, needle), by_chars);
            }
            seed = seed.wrapping_add(11);
        }
    }
}
