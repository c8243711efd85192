//! The text layer of each page, by PDFium (`libpdfium.so` from the pinned pypdfium2 wheel that
//! `scripts/fetch-pdf.sh` installs; loaded at run time, never at build time). PDFium read every
//! font setup Chinese HIS exports use when this was chosen (LibreOffice, iText's non-embedded
//! STSong-Light `UniGB-UCS2-H`, embedded TrueType, Chromium's Type3), where pure-Rust
//! extractors failed or panicked.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use pdfium_render::prelude::*;

use super::IngestError;

/// PDFium, bound once per process (the library keeps global state).
pub struct PdfReader {
    pdfium: Pdfium,
}

static READER: OnceLock<PdfReader> = OnceLock::new();
static BINDING: Mutex<()> = Mutex::new(());

impl PdfReader {
    /// PDFium from `dir` (the `pdf_dir` setting), or why not.
    pub fn open(dir: &Path) -> Result<&'static PdfReader, IngestError> {
        super::bound_once(&READER, &BINDING, || {
            let unavailable = |why: String| IngestError::Unavailable { dir: dir.display().to_string(), why };
            let lib = Pdfium::pdfium_platform_library_name_at_path(dir);
            if !lib.is_file() {
                return Err(unavailable(format!("{} is missing", lib.display())));
            }
            let bindings = Pdfium::bind_to_library(&lib).map_err(|e| unavailable(e.to_string()))?;
            Ok(PdfReader { pdfium: Pdfium::new(bindings) })
        })
    }

    /// Whether PDFium is there to be opened, without opening it.
    pub fn installed(dir: &Path) -> bool {
        READER.get().is_some() || Pdfium::pdfium_platform_library_name_at_path(dir).is_file()
    }

    /// Page `index` (0-based) as a grayscale image at `dpi`, for OCR.
    pub fn render_gray(&self, bytes: &[u8], index: usize, dpi: f32) -> Result<super::ocr::Gray, IngestError> {
        let unreadable = |e: PdfiumError| IngestError::Unreadable(e.to_string());
        let doc = self.pdfium.load_pdf_from_byte_slice(bytes, None).map_err(unreadable)?;
        let page = doc.pages().get(i32::try_from(index).unwrap_or(i32::MAX)).map_err(unreadable)?;
        let config = PdfRenderConfig::new().scale_page_by_factor(dpi / 72.0).set_format(PdfBitmapFormat::BGRA);
        let bitmap = page.render_with_config(&config).map_err(unreadable)?;
        let (width, height) = (bitmap.width() as usize, bitmap.height() as usize);
        let raw = bitmap.as_raw_bytes();
        let stride = raw.len() / height.max(1);
        let mut pixels = Vec::with_capacity(width * height);
        for y in 0..height {
            let row = &raw[y * stride..y * stride + width * 4];
            // BGRA to luma (ITU-R BT.601).
            pixels.extend(row.chunks_exact(4).map(|p| ((p[0] as u32 * 29 + p[1] as u32 * 150 + p[2] as u32 * 77) >> 8) as u8));
        }
        Ok(super::ocr::Gray { width, height, pixels })
    }

    /// The text of every page, in order (an empty string for a page without a text layer).
    pub fn page_texts(&self, bytes: &[u8]) -> Result<Vec<String>, IngestError> {
        let doc = self.pdfium.load_pdf_from_byte_slice(bytes, None).map_err(|e| IngestError::Unreadable(e.to_string()))?;
        let mut pages = Vec::new();
        for page in doc.pages().iter() {
            let text = page.text().map_err(|e| IngestError::Unreadable(e.to_string()))?;
            pages.push(text.all().replace("\r\n", "\n").replace('\r', "\n"));
        }
        Ok(pages)
    }
}
