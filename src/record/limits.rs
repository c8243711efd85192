//! How much one record may ask of the coder: characters per section, sections per record,
//! mentions per diagnosis or procedure list. Coding time grows with each; a record past them
//! is refused with the limit it broke, before any coding starts, so that one oversized request
//! cannot hold the cores for seconds while others wait.

use super::{EhrRecord, Section};

/// The limits a server or the CLI applies (`[limits]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RecordLimits {
    /// Characters in one section (an operative report of many pages is some 10,000).
    pub max_section_chars: usize,
    /// Sections a document may carry (nested ones counted).
    pub max_sections: usize,
    /// Items in one diagnosis or procedure list (the front sheet has 41 of each).
    pub max_list_items: usize,
    /// Characters in one list item (a diagnosis name is rarely 60).
    pub max_item_chars: usize,
}

impl Default for RecordLimits {
    fn default() -> RecordLimits {
        RecordLimits { max_section_chars: 40_000, max_sections: 200, max_list_items: 100, max_item_chars: 500 }
    }
}

/// Which limit a record broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the document has {n} sections; this server codes at most {max}")]
    Sections { n: usize, max: usize },
    #[error("section {section} has {chars} characters; this server codes at most {max} per section")]
    SectionChars { section: String, chars: usize, max: usize },
    #[error("the list in {section} has {n} items or more; this server codes at most {max} per list")]
    ListItems { section: String, n: usize, max: usize },
    #[error("an item of the list in {section} has {chars} characters; this server codes at most {max} per item")]
    ItemChars { section: String, chars: usize, max: usize },
}

/// The list sections whose items each become a mention to standardize.
const LISTS: &[Section] = &[Section::DischargeDiagnosis, Section::AdmissionDiagnosis, Section::ProcedureName];

impl RecordLimits {
    /// Checks a record; `sections_read` is the number of sections its document carried (a
    /// FHIR Composition may repeat a heading many times into one record section).
    pub fn check(&self, rec: &EhrRecord, sections_read: usize) -> Result<(), LimitError> {
        let n = sections_read.max(rec.sections.len() + rec.extra.len());
        if n > self.max_sections {
            return Err(LimitError::Sections { n, max: self.max_sections });
        }
        let texts = rec.sections.iter().map(|(s, t)| (s.key().to_owned(), t)).chain(rec.extra.iter().map(|(k, t)| (k.chars().take(40).collect(), t)));
        for (section, text) in texts {
            // Bytes first: a cheap bound before counting characters.
            if text.len() > self.max_section_chars {
                let chars = text.chars().count();
                if chars > self.max_section_chars {
                    return Err(LimitError::SectionChars { section, chars, max: self.max_section_chars });
                }
            }
        }
        for s in LISTS {
            let (items, longest) = list_items(rec.text(*s));
            if items > self.max_list_items {
                return Err(LimitError::ListItems { section: s.key().to_owned(), n: items, max: self.max_list_items });
            }
            if longest > self.max_item_chars {
                return Err(LimitError::ItemChars { section: s.key().to_owned(), chars: longest, max: self.max_item_chars });
            }
        }
        Ok(())
    }
}

/// The items a list splits into, and the longest item in characters (as the standardizer
/// will read them).
fn list_items(text: &str) -> (usize, usize) {
    let pieces = super::lists::split_items(text);
    (pieces.len(), pieces.iter().map(|p| p.end - p.start).max().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_records_pass_and_each_limit_is_named() {
        let limits = RecordLimits::default();
        let rec = EhrRecord::new("r").with(Section::DischargeDiagnosis, "1.冠状动脉粥样硬化性心脏病 2.高血压病3级（很高危），2型糖尿病").with(Section::OperativeReport, "经右桡动脉穿刺".repeat(500));
        assert_eq!(limits.check(&rec, 2), Ok(()));
        assert_eq!(list_items("1.冠心病 2.高血压病（3级，很高危），2型糖尿病"), (3, 12));

        let many = (0..150).map(|i| format!("诊断{i}")).collect::<Vec<_>>().join("，");
        let e = limits.check(&EhrRecord::new("r").with(Section::DischargeDiagnosis, many), 1).unwrap_err();
        assert!(matches!(e, LimitError::ListItems { n: 150, max: 100, .. }), "{e}");
        let e = limits.check(&EhrRecord::new("r").with(Section::ProcedureName, "冠".repeat(600)), 1).unwrap_err();
        assert!(matches!(e, LimitError::ItemChars { chars: 600, .. }), "{e}");
        let e = limits.check(&EhrRecord::new("r").with(Section::ClinicalCourse, "病".repeat(40_001)), 1).unwrap_err();
        assert!(e.to_string().contains("clinical_course") && e.to_string().contains("40001"), "{e}");
        let e = limits.check(&rec, 201).unwrap_err();
        assert_eq!(e, LimitError::Sections { n: 201, max: 200 });
    }
}
