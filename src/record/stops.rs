//! Half-width sentence stops read as full-width ones.
//!
//! Many hospitals type narrative notes with half-width punctuation (`CAG(右桡A,JL4、JR4):…未用球囊.
//! 术后入CCU.`): the clause a word is read in (its negation, what the rest of it takes back)
//! ends at `。；;` and a line break, so a whole paragraph became one clause. A `.` ends a
//! sentence unless a digit stands before it (`3.5×30mm`, `1.冠心病`, `TIMI 3.` stays: a
//! numbered list and a decimal look alike there). The replacement is one char for one, so every
//! evidence span (char offsets) points into the record as sent.

use super::{EhrRecord, Section};

/// The sections written as lists, whose numbering the list reader splits on: left as sent.
const LISTS: &[Section] = &[Section::AdmissionDiagnosis, Section::DischargeDiagnosis, Section::ProcedureName];

/// The record with its narrative sections' half-width stops made full-width; `None` when
/// there is none (the record is read as it is, without a copy).
pub fn with_full_width_stops(rec: &EhrRecord) -> Option<EhrRecord> {
    let changes = |s: &Section, t: &String| !LISTS.contains(s) && stops(t).next().is_some();
    if !rec.sections.iter().any(|(s, t)| changes(s, t)) {
        return None;
    }
    let mut out = rec.clone();
    for (s, t) in out.sections.iter_mut() {
        if LISTS.contains(s) {
            continue;
        }
        let at: Vec<usize> = stops(t).collect();
        if at.is_empty() {
            continue;
        }
        let mut text = String::with_capacity(t.len() + 2 * at.len());
        let mut last = 0;
        for b in at {
            text.push_str(&t[last..b]);
            text.push('。');
            last = b + 1;
        }
        text.push_str(&t[last..]);
        *t = text;
    }
    Some(out)
}

/// Byte offsets of the `.` that end a sentence.
fn stops(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.char_indices().filter(move |&(b, c)| c == '.' && !text[..b].chars().next_back().is_some_and(|p| p.is_ascii_digit())).map(|(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_after_a_word_ends_a_sentence_a_decimal_and_a_list_number_do_not() {
        let rec = EhrRecord::new("r")
            .with(Section::ClinicalCourse, "直接植入DES 3.5×30mm 1枚,TIMI 3,未用球囊.术后入CCU.住院10d.")
            .with(Section::DischargeDiagnosis, "1.冠心病.2.高血压");
        let out = with_full_width_stops(&rec).expect("changed");
        assert_eq!(out.text(Section::ClinicalCourse), "直接植入DES 3.5×30mm 1枚,TIMI 3,未用球囊。术后入CCU。住院10d。");
        assert_eq!(out.text(Section::DischargeDiagnosis), "1.冠心病.2.高血压");
        assert_eq!(out.text(Section::ClinicalCourse).chars().count(), rec.text(Section::ClinicalCourse).chars().count());
        assert!(with_full_width_stops(&EhrRecord::new("r").with(Section::ClinicalCourse, "LVEF 45.5%，TIMI 3.")).is_none());
    }
}
