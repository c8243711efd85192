//! The one name normalizer shared by the index and by queries.
//!
//! Clinicians and code tables write the same name in many ways: full-width letters, Chinese
//! or English brackets, Roman or Arabic grade numbers, 很高危 for 极高危. Matching works on a
//! key where those differences are gone. Index and query must use the same function, or the
//! n-grams they produce will not meet.

use unicode_normalization::UnicodeNormalization;

/// Equivalences that coders treat as the same word. Applied after width and numeral folding,
/// longest first so that a longer phrase wins over a shorter one inside it.
const EQUIVALENCES: &[(&str, &str)] = &[
    ("很高危", "极高危"),
    ("综合症", "综合征"),
    ("其它", "其他"),
    ("粘连", "黏连"),
    ("机能", "功能"),
    ("瘘管", "瘘"),
    ("疼痛", "痛"),
    ("植入", "置入"),
    // 心梗 inside a longer name (急性下壁正后壁ST段抬高型心梗); no name has 心梗 otherwise.
    ("心梗", "心肌梗死"),
    // Chinese numerals of a degree, type or grade, as the Roman and Arabic ones read (三度房室
    //传导阻滞 is Ⅲ度; the table's Ⅱ度一型 is 2度1型, so that 一过性 in a remark says nothing of it).
    ("一度", "1度"),
    ("二度", "2度"),
    ("三度", "3度"),
    ("一型", "1型"),
    ("二型", "2型"),
    ("三型", "3型"),
    ("一级", "1级"),
    ("二级", "2级"),
    ("三级", "3级"),
    ("四级", "4级"),
];

/// Normalizes a name to its matching key: NFKC (full/half width, Ⅱ → II), Roman numerals to
/// Arabic where they stand alone, ASCII lowercased, punctuation, brackets and whitespace
/// removed, clinical equivalences applied.
pub fn normalize(text: &str) -> String {
    let folded: String = text.nfkc().collect();
    let arabic = romans_to_arabic(&folded);
    let mut out = String::with_capacity(arabic.len());
    for ch in arabic.chars() {
        if is_separator(ch) {
            continue;
        }
        out.push(ch.to_ascii_lowercase());
    }
    for (from, to) in EQUIVALENCES {
        if out.contains(from) {
            out = out.replace(from, to);
        }
    }
    out
}

/// Punctuation, brackets, quotes and whitespace: they carry no meaning for matching.
pub fn is_separator(ch: char) -> bool {
    ch.is_whitespace()
        || ch.is_ascii_punctuation()
        || matches!(
            ch,
            '，' | '。' | '、' | '；' | '：' | '？' | '！' | '（' | '）' | '【' | '】' | '《' | '》'
                | '“' | '”' | '‘' | '’' | '「' | '」' | '『' | '』' | '〔' | '〕' | '…' | '·'
                | '—' | '－' | '～' | '〈' | '〉' | '﹝' | '﹞' | '　'
        )
}

/// Replaces maximal runs of Roman numeral letters that are not part of a Latin word
/// (NYHA II → NYHA 2, but IgA and CIV stay) with their value.
fn romans_to_arabic(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if is_roman(chars[i]) && (i == 0 || !chars[i - 1].is_ascii_alphabetic()) {
            let start = i;
            let mut end = i;
            while end < chars.len() && is_roman(chars[end]) {
                end += 1;
            }
            let next_is_letter = end < chars.len() && chars[end].is_ascii_alphabetic();
            let run: String = chars[start..end].iter().collect();
            if !next_is_letter {
                if let Some(value) = roman_value(&run) {
                    out.push_str(&value.to_string());
                    i = end;
                    continue;
                }
            }
            out.push_str(&run);
            i = end;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn is_roman(ch: char) -> bool {
    matches!(ch, 'I' | 'V' | 'X')
}

fn roman_value(run: &str) -> Option<u32> {
    const TABLE: &[(&str, u32)] = &[
        ("I", 1), ("II", 2), ("III", 3), ("IV", 4), ("V", 5), ("VI", 6),
        ("VII", 7), ("VIII", 8), ("IX", 9), ("X", 10), ("XI", 11), ("XII", 12),
    ];
    TABLE.iter().find(|(r, _)| *r == run).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn folds_width_brackets_and_numerals() {
        assert_eq!(normalize("高血压病（3级 很高危）"), normalize("高血压病(3级极高危)"));
        assert_eq!(normalize("心功能Ⅱ级"), "心功能2级");
        assert_eq!(normalize("心功能II级"), "心功能2级");
        assert_eq!(normalize("心功能ＩＩ级"), "心功能2级");
        assert_eq!(normalize("NYHA III级"), "nyha3级");
        assert_eq!(normalize("Ⅳ期"), "4期");
    }

    #[test]
    fn leaves_latin_words_alone() {
        assert_eq!(normalize("IgA肾病"), "iga肾病");
        assert_eq!(normalize("HIV感染"), "hiv感染");
        assert_eq!(normalize("2型DM"), "2型dm");
    }

    #[test]
    fn applies_clinical_equivalences() {
        assert_eq!(normalize("高血压3级很高危"), "高血压3级极高危");
        assert_eq!(normalize("肾病综合症"), "肾病综合征");
    }
}
