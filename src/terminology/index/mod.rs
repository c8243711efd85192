//! Retrieval over code tables, behind a trait with no engine types in it, so that an
//! Elasticsearch backend can stand in for the embedded one.

pub mod embedded;

use super::TerminologyError;

/// One retrieved concept.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Candidate {
    pub code: String,
    pub name: String,
    pub score: f32,
    /// True when the (normalized) query or one of its lexicon rewrites equals the name.
    pub exact: bool,
}

pub trait TermIndex: Send + Sync {
    /// Ranked candidates for `text` in the edition with resource id `edition`, best first.
    fn search(&self, text: &str, edition: &str, k: usize) -> Result<Vec<Candidate>, TerminologyError>;

    /// Which engine serves the index (`embedded`, `elastic`): shown in metadata and traces.
    fn backend(&self) -> &'static str;
}

/// Character 1- and 2-grams of an already normalized key: the unit both index and query use.
pub fn char_ngrams(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out = Vec::with_capacity(chars.len() * 2);
    for (i, c) in chars.iter().enumerate() {
        out.push(c.to_string());
        if let Some(n) = chars.get(i + 1) {
            out.push([*c, *n].iter().collect());
        }
    }
    out
}

/// Splits a free-text query into its mentions at list punctuation (头痛.头晕.高血压). A full
/// stop between digits (2.5) is part of a mention, not a separator.
pub fn split_mentions(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        let digit_dot = c == '.'
            && i > 0
            && chars[i - 1].1.is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.1.is_ascii_digit());
        let sep = matches!(c, ',' | '，' | ';' | '；' | '、' | '。' | '/' | '|' | '\n' | '．') || (c == '.' && !digit_dot);
        if sep {
            let part = text[start..pos].trim();
            if !part.is_empty() {
                out.push(part);
            }
            start = pos + c.len_utf8();
        }
    }
    let part = text[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lists_but_not_decimals() {
        assert_eq!(split_mentions("头痛.头晕.高血压"), vec!["头痛", "头晕", "高血压"]);
        assert_eq!(split_mentions("糖尿病；骨质疏松, 体重2.5kg"), vec!["糖尿病", "骨质疏松", "体重2.5kg"]);
        assert_eq!(char_ngrams("冠心病"), vec!["冠", "冠心", "心", "心病", "病"]);
    }
}
