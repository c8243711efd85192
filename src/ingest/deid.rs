//! De-identification before anything is stored or shown: the patient's name, record numbers,
//! ID-card numbers, phone numbers and addresses are masked, one `＊` for each character, so
//! that every offset into the page stays true. What was masked is counted by kind, never kept.
//! Dates are kept: the course needs them, and they identify nobody without the rest.

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
            r("record-number", r"(?:住院号|病案号|病历号|门诊号|登记号|ID号|ID|就诊卡号|医保卡号)\s*[:：]?\s*([A-Za-z0-9][A-Za-z0-9\-]{3,})"),
            r("id-card", r"(?:^|[^0-9])([1-9][0-9]{16}[0-9Xx])(?:[^0-9]|$)"),
            r("phone", r"(?:^|[^0-9])(1[3-9][0-9]{9})(?:[^0-9]|$)"),
            r("phone", r"(?:^|[^0-9])(0[0-9]{2,3}-[0-9]{7,8})(?:[^0-9]|$)"),
            r("address", r"(?:现住址|家庭住址|住址|地址|户籍地址|工作单位)\s*[:：]\s*([^\s，。；;,]{2,60})"),
        ]
    })
}

/// The text with every identifier masked, and the counts.
pub fn mask(text: &str) -> (String, Masked) {
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
    fn clinical_numbers_are_not_identifiers() {
        let t = "血压150/90mmHg，心率186次/分，肌钙蛋白0.35ng/ml，2026-11-30行PCI，支架2.5×18mm";
        assert_eq!(mask(t).0, t);
    }
}
