//! Sections of a discharge record found by their headings, as hospitals print them: 主诉：…,
//! 【出院诊断】…, 一、入院诊断, 1.手术经过, a heading alone on its line, or split across two
//! lines (出院 / 诊断：). A section runs to the next heading, across pages.

use std::collections::BTreeMap;

use crate::record::{EhrRecord, Section};

/// Where a section's text is: page (1-based) and character offsets into that page's text
/// (end exclusive). A section that runs onto the next page has one span per page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSpan {
    pub section: Section,
    pub page: usize,
    pub start: usize,
    pub end: usize,
}

/// A heading found: the section, its page, where the heading starts and where its text starts.
struct Heading {
    section: Section,
    page: usize,
    at: usize,
    body: usize,
}

/// Every section's spans, in reading order.
pub fn find(pages: &[String]) -> Vec<SectionSpan> {
    let pages: Vec<Vec<char>> = pages.iter().map(|p| p.chars().collect()).collect();
    let mut headings: Vec<Heading> = Vec::new();
    for (p, chars) in pages.iter().enumerate() {
        let mut line_start = 0;
        while line_start <= chars.len() {
            let line_end = chars[line_start..].iter().position(|&c| c == '\n').map_or(chars.len(), |i| line_start + i);
            heading_in_line(chars, line_start, line_end, p + 1, &mut headings);
            line_start = line_end + 1;
        }
    }
    let mut spans = Vec::new();
    for (i, h) in headings.iter().enumerate() {
        let (end_page, end_at) = headings.get(i + 1).map_or((pages.len(), None), |n| (n.page, Some(n.at)));
        for page in h.page..=end_page {
            let chars = &pages[page - 1];
            let start = if page == h.page { h.body } else { 0 };
            let end = if page == end_page { end_at.unwrap_or(chars.len()) } else { chars.len() };
            let (start, end) = trim(chars, start, end);
            if start < end {
                spans.push(SectionSpan { section: h.section, page, start, end });
            }
        }
    }
    spans
}

/// The record the spans make: each section's text, its pages joined by a line break.
pub fn record(record_id: &str, pages: &[String], spans: &[SectionSpan]) -> EhrRecord {
    let pages: Vec<Vec<char>> = pages.iter().map(|p| p.chars().collect()).collect();
    let mut by_section: BTreeMap<Section, Vec<String>> = BTreeMap::new();
    for s in spans {
        by_section.entry(s.section).or_default().push(pages[s.page - 1][s.start..s.end].iter().collect());
    }
    let mut rec = EhrRecord::new(record_id);
    for (section, parts) in by_section {
        rec.sections.insert(section, parts.join("\n"));
    }
    rec
}

/// Where character `offset` of `section`'s text (as [`record`] joins it) is in the PDF: its
/// page and its offset in that page's text.
pub fn locate(spans: &[SectionSpan], section: Section, offset: usize) -> Option<(usize, usize)> {
    let mut at = 0usize;
    for s in spans.iter().filter(|s| s.section == section) {
        let len = s.end - s.start;
        if offset <= at + len {
            return Some((s.page, s.start + offset - at));
        }
        at += len + 1; // the line break that joined the pages
    }
    None
}

/// Characters that may open a heading: numbering and brackets.
fn skip_numbering(chars: &[char], mut i: usize, end: usize) -> usize {
    let numbering = |c: char| c.is_ascii_digit() || "一二三四五六七八九十、.．()（）【[]】 \t　".contains(c);
    while i < end && numbering(chars[i]) {
        i += 1;
    }
    i
}

fn heading_in_line(chars: &[char], start: usize, end: usize, page: usize, out: &mut Vec<Heading>) {
    let at = skip_numbering(chars, start, end);
    let rest: String = chars[at..end].iter().collect();
    let Some((section, len)) = heading_at(&rest) else {
        // 出院 / 诊断： — a heading split across two lines.
        if let Some(h) = split_heading(chars, at, end, page) {
            out.push(h);
        }
        return;
    };
    let mut body = at + len;
    // What closes a heading: a colon, a closing bracket, spaces, or the end of its line.
    while body < end && "：:】]） \t　".contains(chars[body]) {
        body += 1;
    }
    let closed = body > at + len || at + len == end;
    if closed {
        out.push(Heading { section, page, at: start, body });
    }
}

/// The section whose heading `text` starts with, and the heading's length in characters.
fn heading_at(text: &str) -> Option<(Section, usize)> {
    let mut best: Option<(Section, usize)> = None;
    for s in Section::ALL {
        for h in s.zh() {
            if text.starts_with(h) && best.is_none_or(|(_, l)| h.chars().count() > l) {
                best = Some((s, h.chars().count()));
            }
        }
    }
    best
}

fn split_heading(chars: &[char], at: usize, end: usize, page: usize) -> Option<Heading> {
    let first: String = chars[at..end].iter().collect::<String>().trim().to_owned();
    if first.chars().count() < 2 || end >= chars.len() {
        return None;
    }
    let next_start = end + 1;
    let next_end = chars[next_start..].iter().position(|&c| c == '\n').map_or(chars.len(), |i| next_start + i);
    let next: String = chars[next_start..next_end].iter().collect();
    let joined = format!("{first}{}", next.trim_start());
    let (section, len) = heading_at(&joined)?;
    let first_len = first.chars().count();
    if len <= first_len {
        return None;
    }
    let skipped = next.chars().count() - next.trim_start().chars().count();
    let mut body = next_start + skipped + (len - first_len);
    if body > next_end || !"：:】] ".contains(chars.get(body).copied().unwrap_or('\n')) && body != next_end {
        return None;
    }
    while body < next_end && "：:】] \t　".contains(chars[body]) {
        body += 1;
    }
    Some(Heading { section, page, at, body })
}

fn trim(chars: &[char], mut start: usize, mut end: usize) -> (usize, usize) {
    while start < end && chars[start].is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    (start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(pages: &[&str]) -> BTreeMap<Section, String> {
        let pages: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
        record("r", &pages, &find(&pages)).sections
    }

    #[test]
    fn the_usual_heading_styles() {
        let s = sections(&["主诉：胸痛3天。\n【现病史】患者3天前胸痛。\n一、入院诊断\n冠心病\n2.手术经过: 植入支架1枚。\n出院\n诊断：1.冠心病"]);
        assert_eq!(s[&Section::ChiefComplaint], "胸痛3天。");
        assert_eq!(s[&Section::PresentIllness], "患者3天前胸痛。");
        assert_eq!(s[&Section::AdmissionDiagnosis], "冠心病");
        assert_eq!(s[&Section::OperativeReport], "植入支架1枚。");
        assert_eq!(s[&Section::DischargeDiagnosis], "1.冠心病");
    }

    #[test]
    fn a_section_runs_across_pages_and_words_in_text_are_not_headings() {
        let pages = ["诊疗经过：入院后完善检查，\n行冠脉造影", "提示前降支狭窄。出院诊断写在后面\n出院诊断：冠心病"];
        let s = sections(&pages);
        assert_eq!(s[&Section::ClinicalCourse], "入院后完善检查，\n行冠脉造影\n提示前降支狭窄。出院诊断写在后面");
        let spans = find(&pages.map(String::from));
        assert_eq!(spans.iter().filter(|s| s.section == Section::ClinicalCourse).map(|s| s.page).collect::<Vec<_>>(), [1, 2]);
        // "提示" starts the second page's part: offset 19 of the section ("入院后完善检查，\n行冠脉造影\n" is 19).
        let course = &s[&Section::ClinicalCourse];
        let at = course.chars().position(|c| c == '提').unwrap();
        assert_eq!(locate(&spans, Section::ClinicalCourse, at), Some((2, 0)));
        assert_eq!(locate(&spans, Section::ClinicalCourse, 1), Some((1, 6)), "诊疗经过： is 5 characters");
    }
}
