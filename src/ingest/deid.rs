//! De-identification before anything is stored or shown: the patient's name, record numbers,
//! ID-card numbers, phone numbers and addresses are masked, one `＊` for each character, so
//! that every offset into the page stays true. What was masked is counted by kind, never kept.
//! Dates are kept, or shifted by a deployment's own number of days (`pdf.date_shift_days`):
//! the intervals of the course stay, the calendar days do not.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

/// How many of each kind were masked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masked {
    counts: BTreeMap<&'static str, usize>,
}

impl Masked {
    pub fn count(&self, kind: &str) -> usize {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    pub fn add(&mut self, other: &Masked) {
        for (k, n) in &other.counts {
            *self.counts.entry(k).or_default() += n;
        }
    }

    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, usize)> + '_ {
        self.counts.iter().map(|(k, n)| (*k, *n))
    }
}

/// (kind, pattern): the value to mask is the pattern's group 1.
fn rules() -> &'static [(&'static str, Regex)] {
    static RULES: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let r = |kind, p: &str| (kind, Regex::new(p).expect("de-identification pattern"));
        vec![
            // A label, then the value (to the next space, punctuation or end of line).
            r("name", r"(?:姓\s*名|患者姓名|病人姓名|联系人|家属)\s*[:：]\s*([\p{Han}·]{2,5})"),
            // Unlabelled, where the course opens: 患者张三，男，67岁 (a name, then the sex).
            r("name", r"(?:患者|病人)([\p{Han}]{2,3})[，,、\s]\s*(?:男|女)[，,、\s]"),
            r("record-number", r"(?:住院号|病案号|病历号|门诊号|登记号|ID号|ID|就诊卡号|医保卡号)\s*[:：]?\s*([A-Za-z0-9][A-Za-z0-9\-]{3,})"),
            r("id-card", r"(?:^|[^0-9])([1-9][0-9]{16}[0-9Xx])(?:[^0-9]|$)"),
            r("phone", r"(?:^|[^0-9])(1[3-9][0-9]{9})(?:[^0-9]|$)"),
            r("phone", r"(?:^|[^0-9])(0[0-9]{2,3}-[0-9]{7,8})(?:[^0-9]|$)"),
            r("address", r"(?:现住址|家庭住址|住址|地址|户籍地址|工作单位)\s*[:：]\s*([^\s，。；;,]{2,60})"),
        ]
    })
}

/// What happens to dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dates {
    #[default]
    Keep,
    /// Every date moved by this many days (written in the same width; a date whose shifted
    /// form would be wider is masked instead, so that offsets stay true).
    Shift(i64),
}

/// The text with every identifier masked (dates kept), and the counts.
pub fn mask(text: &str) -> (String, Masked) {
    mask_with(text, Dates::Keep)
}

/// [`mask`], with dates as `dates` says.
pub fn mask_with(text: &str, dates: Dates) -> (String, Masked) {
    let (text, mut masked) = mask_identifiers(text);
    let Dates::Shift(days) = dates else { return (text, masked) };
    static DATE: OnceLock<Regex> = OnceLock::new();
    let re = DATE.get_or_init(|| Regex::new(r"((?:19|20)[0-9]{2})([-/.年])([0-9]{1,2})([-/.月])([0-9]{1,2})").expect("date pattern"));
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for c in re.captures_iter(&text) {
        let whole = c.get(0).expect("match");
        let field = |i: usize| c.get(i).map_or("", |m| m.as_str());
        let (y, m, d) = (field(1).parse::<i64>().unwrap_or(0), field(3).parse::<u32>().unwrap_or(0), field(5).parse::<u32>().unwrap_or(0));
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            continue;
        }
        let (ny, nm, nd) = crate::ids::civil_from_days(crate::ids::days_from_civil(y, m, d) + days);
        let width = |v: u32, w: usize| if w == 2 { format!("{v:02}") } else { v.to_string() };
        let shifted = format!("{ny:04}{}{}{}{}", field(2), width(nm, field(3).len()), field(4), width(nd, field(5).len()));
        out.push_str(&text[at..whole.start()]);
        if shifted.chars().count() == whole.as_str().chars().count() {
            out.push_str(&shifted);
            *masked.counts.entry("date-shifted").or_default() += 1;
        } else {
            out.extend(std::iter::repeat_n('＊', whole.as_str().chars().count()));
            *masked.counts.entry("date-masked").or_default() += 1;
        }
        at = whole.end();
    }
    out.push_str(&text[at..]);
    (out, masked)
}

fn mask_identifiers(text: &str) -> (String, Masked) {
    let mut ranges: Vec<(usize, usize, &'static str)> = Vec::new();
    for (kind, re) in rules() {
        for caps in re.captures_iter(text) {
            if let Some(m) = caps.get(1) {
                ranges.push((m.start(), m.end(), kind));
            }
        }
    }
    ranges.sort();
    let mut masked = Masked::default();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end, kind) in ranges {
        if start < at {
            continue; // inside one already masked
        }
        out.push_str(&text[at..start]);
        out.extend(std::iter::repeat_n('＊', text[start..end].chars().count()));
        *masked.counts.entry(kind).or_default() += 1;
        at = end;
    }
    out.push_str(&text[at..]);
    (out, masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_masked_char_for_char_and_counted() {
        let t = "姓名：李四  住院号：ZY20261130  身份证号：110101199003071234\n电话：13912345678，0571-87654321\n现住址：浙江省杭州市西湖区某路1号 主诉：胸痛";
        let (m, counts) = mask(t);
        assert_eq!(m.chars().count(), t.chars().count(), "offsets stay true");
        for secret in ["李四", "ZY20261130", "110101199003071234", "13912345678", "0571-87654321", "浙江省杭州市西湖区某路1号"] {
            assert!(!m.contains(secret), "{secret} in {m}");
        }
        assert!(m.contains("主诉：胸痛"));
        assert_eq!((counts.count("name"), counts.count("record-number"), counts.count("id-card"), counts.count("phone"), counts.count("address")), (1, 1, 1, 2, 1));
    }

    #[test]
    fn dates_are_kept_or_shifted_in_their_own_width() {
        let t = "2026-11-30入院，2026年1月5日出院，2026/12/25复诊，2026年1月25日";
        assert_eq!(mask_with(t, Dates::Keep).0, t);
        let (s, m) = mask_with(t, Dates::Shift(3));
        assert_eq!(s, "2026-12-03入院，2026年1月8日出院，2026/12/28复诊，2026年1月28日");
        assert_eq!(m.count("date-shifted"), 4);
        let (s, m) = mask_with("2026年1月5日", Dates::Shift(10));
        assert_eq!((s.as_str(), m.count("date-masked")), ("＊＊＊＊＊＊＊＊日", 1), "1月15日 is wider than 1月5日");
        assert_eq!(mask_with("2024-02-28", Dates::Shift(1)).0, "2024-02-29");
        assert_eq!(mask_with("2026-12-31", Dates::Shift(1)).0, "2027-01-01");
        assert_eq!(mask_with("2026-03-01", Dates::Shift(-1)).0, "2026-02-28");
    }

    #[test]
    fn an_unlabelled_name_before_the_sex_is_masked_and_clinical_words_are_not() {
        let (m, c) = mask("患者王小明，男，67岁，因胸痛入院。");
        assert_eq!((m.as_str(), c.count("name")), ("患者＊＊＊，男，67岁，因胸痛入院。", 1));
        let t = "患者活动后胸闷，休息可缓解。患者男性，67岁。";
        assert_eq!(mask(t).0, t);
    }

    #[test]
    fn clinical_numbers_are_not_identifiers() {
        let t = "血压150/90mmHg，心率186次/分，肌钙蛋白0.35ng/ml，2026-11-30行PCI，支架2.5×18mm";
        assert_eq!(mask(t).0, t);
    }
}
