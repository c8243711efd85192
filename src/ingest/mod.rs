//! Discharge records that arrive as PDF (issue 15): the text of each page from its text layer,
//! the patient's identifiers masked before anything is stored or shown, and the sections found
//! by the headings hospitals use, each keeping its page and character offsets so that evidence
//! points into the PDF. Pure domain: no HTTP, no FHIR.
//!
//! A page without a text layer (a scan) is read by OCR ([`ocr`]) where its models are
//! installed; without them such a page is reported, and a PDF with no text at all is refused
//! with [`IngestError::NeedsOcr`].

pub mod deid;
mod deskew;
mod layout;
pub mod ocr;
pub mod pdf;
pub mod sections;

use crate::record::EhrRecord;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// PDFium (or, for scans, ONNX Runtime and the OCR models) is not where the settings say.
    #[error("reading PDFs needs what scripts/fetch-pdf.sh installs, which is not in {dir}: run scripts/fetch-pdf.sh {dir} ({why})")]
    Unavailable { dir: String, why: String },
    #[error("the PDF cannot be read: {0}")]
    Unreadable(String),
    #[error("the PDF has no text layer (a scan: pages {pages:?}), and OCR is not installed on this server (scripts/fetch-pdf.sh)")]
    NeedsOcr { pages: Vec<usize> },
    /// OCR ran and found no text either.
    #[error("no text on pages {pages:?}, not even by OCR")]
    NoText { pages: Vec<usize> },
    #[error("no page of the PDF has a section heading of a discharge record (主诉, 出院诊断, 手术经过, …)")]
    NoSections,
}

/// What a PDF gave: the record to code, where each section is in the PDF, what was masked.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub record: EhrRecord,
    pub spans: Vec<sections::SectionSpan>,
    pub masked: deid::Masked,
    pub pages: usize,
    /// Pages without a text layer (1-based) that were not read (no OCR here, or OCR found
    /// nothing on them).
    pub pages_without_text: Vec<usize>,
    /// Pages read by OCR (1-based).
    pub pages_ocr: Vec<usize>,
    /// Each page's text as read, de-identified: what the spans' offsets are into.
    pub page_texts: Vec<String>,
}

/// A library bound once per process (PDFium, ONNX Runtime keep global state): the first
/// successful `open` is kept; a failure is not, so what is installed later is found without a
/// restart. One thread opens at a time.
fn bound_once<T: Sync>(
    cell: &'static std::sync::OnceLock<T>,
    opening: &std::sync::Mutex<()>,
    open: impl FnOnce() -> Result<T, IngestError>,
) -> Result<&'static T, IngestError> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let _one = opening.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = open()?;
    Ok(cell.get_or_init(|| v))
}

/// Reads a PDF into a de-identified record; pages without a text layer by `ocr` when given.
pub fn extract(reader: &pdf::PdfReader, ocr: Option<&ocr::Ocr>, bytes: &[u8], record_id: &str, dates: deid::Dates) -> Result<Extracted, IngestError> {
    let mut pages = reader.page_texts(bytes)?;
    let mut by_ocr = Vec::new();
    if let Some(ocr) = ocr {
        // One document's OCR at a time: each already uses every core, and PDFium's rendering
        // and the sessions are shared by the whole process.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        // A scan of many pages is read up to a bound (each page is about a second of every
        // core); the pages past it are reported as not read.
        for (i, text) in pages.iter_mut().enumerate().take(MAX_OCR_PAGES) {
            if text.trim().is_empty() {
                let image = reader.render_gray(bytes, i, OCR_DPI)?;
                *text = ocr.read(&image)?;
                if !text.trim().is_empty() {
                    by_ocr.push(i + 1);
                }
            }
        }
    }
    let mut x = match extract_pages(&pages, record_id, dates) {
        Err(IngestError::NeedsOcr { pages }) if ocr.is_some() => return Err(IngestError::NoText { pages }),
        other => other?,
    };
    x.pages_ocr = by_ocr;
    Ok(x)
}

/// The OCR of `dir` where it is installed (a failure to open it is logged, and PDFs are read
/// without it).
pub fn ocr_of(dir: &std::path::Path) -> Option<&'static ocr::Ocr> {
    if !ocr::Ocr::installed(dir) {
        return None;
    }
    ocr::Ocr::open(dir).map_err(|e| tracing::warn!(error = %e, "OCR not available")).ok()
}

/// Pages of one document read by OCR at most.
pub const MAX_OCR_PAGES: usize = 40;

/// Pages are rendered for OCR at 200 dpi, where the models read clinical print without error
/// (rendering a page takes tens of milliseconds; reading it about a second).
const OCR_DPI: f32 = 200.0;

/// [`extract`] from the text of each page (also what OCR will hand over).
pub fn extract_pages(pages: &[String], record_id: &str, dates: deid::Dates) -> Result<Extracted, IngestError> {
    let without_text: Vec<usize> = pages.iter().enumerate().filter(|(_, t)| t.trim().is_empty()).map(|(i, _)| i + 1).collect();
    if !pages.is_empty() && without_text.len() == pages.len() {
        return Err(IngestError::NeedsOcr { pages: without_text });
    }
    let mut masked = deid::Masked::default();
    let clean: Vec<String> = pages
        .iter()
        .map(|t| {
            let (text, m) = deid::mask_with(&normalize_glyphs(t), dates);
            masked.add(&m);
            text
        })
        .collect();
    let spans = sections::find(&clean);
    if spans.is_empty() {
        return Err(IngestError::NoSections);
    }
    let record = sections::record(record_id, &clean, &spans);
    Ok(Extracted { record, spans, masked, pages: pages.len(), pages_without_text: without_text, pages_ocr: Vec::new(), page_texts: clean })
}

/// Text extractors give some CJK ideographs as their look-alikes from the CJK Radicals
/// Supplement (⻅ for 见), which NFKC does not fold; each becomes its ideograph, one character
/// for one, so offsets stay those of the page.
pub fn normalize_glyphs(text: &str) -> String {
    text.chars().map(|c| radical_as_ideograph(c).unwrap_or(c)).collect()
}

fn radical_as_ideograph(c: char) -> Option<char> {
    Some(match c {
        '⺁' => '厂',
        '⺇' => '几',
        '⺈' => '𠂊',
        '⺊' => '卜',
        '⺋' => '㔾',
        '⺏' => '尣',
        '⺐' => '尢',
        '⺒' => '巳',
        '⺓' => '幺',
        '⺔' => '彑',
        '⺕' => '彐',
        '⺗' => '心',
        '⺛' => '旡',
        '⺝' => '月',
        '⺟' => '母',
        '⺠' => '民',
        '⺡' => '氵',
        '⺢' => '氺',
        '⺣' => '灬',
        '⺩' => '王',
        '⺪' => '疋',
        '⺫' => '罒',
        '⺬' => '示',
        '⺭' => '礻',
        '⺮' => '竹',
        '⺶' => '羊',
        '⺷' => '羊',
        '⺻' => '聿',
        '⺼' => '月',
        '⺾' => '艹',
        '⻀' => '艹',
        '⻁' => '虎',
        '⻂' => '衤',
        '⻃' => '覀',
        '⻄' => '西',
        '⻅' => '见',
        '⻆' => '角',
        '⻇' => '角',
        '⻈' => '讠',
        '⻉' => '贝',
        '⻋' => '车',
        '⻌' => '辶',
        '⻍' => '辶',
        '⻏' => '阝',
        '⻐' => '金',
        '⻑' => '長',
        '⻒' => '镸',
        '⻓' => '长',
        '⻔' => '门',
        '⻖' => '阝',
        '⻗' => '雨',
        '⻘' => '青',
        '⻙' => '韦',
        '⻚' => '页',
        '⻛' => '风',
        '⻜' => '飞',
        '⻝' => '食',
        '⻟' => '食',
        '⻠' => '饣',
        '⻢' => '马',
        '⻣' => '骨',
        '⻤' => '鬼',
        '⻥' => '鱼',
        '⻦' => '鸟',
        '⻧' => '卤',
        '⻨' => '麦',
        '⻩' => '黄',
        '⻪' => '黾',
        '⻫' => '斉',
        '⻬' => '齐',
        '⻭' => '歯',
        '⻮' => '齿',
        '⻯' => '竜',
        '⻰' => '龙',
        '⻱' => '龜',
        '⻲' => '亀',
        '⻳' => '龟',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn radicals_become_ideographs_one_for_one() {
        let t = "⻅习医⻓ 出院⻔诊";
        let n = normalize_glyphs(t);
        assert_eq!(n, "见习医长 出院门诊");
        assert_eq!(n.chars().count(), t.chars().count());
    }

    #[test]
    fn a_scan_without_text_needs_ocr_and_a_page_without_headings_is_not_a_record() {
        assert!(matches!(extract_pages(&["".into(), "  ".into()], "r", deid::Dates::Keep), Err(IngestError::NeedsOcr { pages }) if pages == [1, 2]));
        assert!(matches!(extract_pages(&["化验单 血常规 正常".into()], "r", deid::Dates::Keep), Err(IngestError::NoSections)));
    }

    #[test]
    fn pages_become_a_masked_record_with_spans_into_each_page() {
        let pages = vec![
            "出院记录\n姓名：张三丰  住院号：ZY0012345\n主诉：反复胸痛3年。\n入院诊断：冠心病".to_owned(),
            "".to_owned(),
            "【出院诊断】1.冠状动脉粥样硬化性心脏病\n联系电话：13812345678".to_owned(),
        ];
        let x = extract_pages(&pages, "pdf-1", deid::Dates::Keep).unwrap();
        assert_eq!(x.pages_without_text, [2]);
        assert_eq!(x.record.sections[&crate::record::Section::ChiefComplaint], "反复胸痛3年。");
        assert!(x.record.sections[&crate::record::Section::DischargeDiagnosis].starts_with("1.冠状动脉粥样硬化性心脏病"));
        let dx = x.spans.iter().find(|s| s.section == crate::record::Section::DischargeDiagnosis).unwrap();
        assert_eq!(dx.page, 3);
        let page3: Vec<char> = pages[2].chars().collect();
        assert_eq!(page3[dx.start..dx.start + 4].iter().collect::<String>(), "1.冠状");
        let all: String = x.record.sections.values().cloned().collect();
        assert!(!all.contains("张三丰") && !all.contains("13812345678") && !all.contains("ZY0012345"), "{all}");
        assert_eq!(x.masked.count("name"), 1);
        assert_eq!(x.masked.count("phone"), 1);
        assert_eq!(x.masked.count("record-number"), 1);
    }
}
