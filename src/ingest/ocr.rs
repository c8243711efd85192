//! OCR of pages without a text layer: PaddleOCR's PP-OCRv6 small detection and recognition
//! models (from the rapidocr wheel) on ONNX Runtime, loaded at run time from `pdf_dir`
//! (`scripts/fetch-pdf.sh` installs both). Measured when it was chosen: 0.0 % character errors
//! on a clean 200-dpi page of clinical text, 0.9 % on a rotated, blurred, JPEG-compressed fake
//! scan, where tesseract's chi_sim had 2.4 % and 14.2 %.
//!
//! Detection gives a probability map of text; its connected regions above the threshold,
//! widened as PaddleOCR's DB post-processing widens them, are the text lines. A page scanned on
//! its side (most lines taller than wide) is turned a quarter; one fed askew is straightened
//! (`deskew`); one upside down (most lines
//! classified 180° by PaddleOCR's orientation classifier) is turned half. Each line is
//! recognized at height 48 and decoded greedily (CTC). Lines are put in reading order by
//! `layout` (rows, tables by row, two-column blocks column by column).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::value::Tensor;

use super::layout::{reading_order, Rect};
use super::IngestError;

/// A grayscale page, one byte per pixel, rows of `width`.
#[derive(Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Gray {
    /// The page turned a quarter clockwise.
    pub fn rotated_90(&self) -> Gray {
        let (w, h) = (self.width, self.height);
        let mut pixels = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                // (x, y) goes to (h - 1 - y, x) in a page h wide.
                pixels[x * h + (h - 1 - y)] = self.pixels[y * w + x];
            }
        }
        Gray { width: h, height: w, pixels }
    }

    /// The page turned half.
    pub fn rotated_180(&self) -> Gray {
        Gray { width: self.width, height: self.height, pixels: self.pixels.iter().rev().copied().collect() }
    }
}

/// The detection, orientation and recognition sessions and the recognizer's characters.
pub struct Ocr {
    det: Mutex<Session>,
    cls: Mutex<Session>,
    rec: Mutex<Session>,
    characters: Vec<String>,
}

const DET_MODEL: &str = "PP-OCRv6_det_small.onnx";
const REC_MODEL: &str = "PP-OCRv6_rec_small.onnx";
const CLS_MODEL: &str = "ch_ppocr_mobile_v2.0_cls_mobile.onnx";
/// The classifier's input, and how sure it must be that a line is upside down.
const CLS_WIDTH: usize = 192;
const CLS_THRESHOLD: f32 = 0.9;
/// Lines asked about a page's orientation (the widest ones say the most).
const CLS_SAMPLE: usize = 12;
const RUNTIME: &str = "libonnxruntime.so";
/// PaddleOCR's defaults for these models (rapidocr's config.yaml).
const DET_THRESHOLD: f32 = 0.3;
const BOX_THRESHOLD: f32 = 0.5;
const UNCLIP_RATIO: f32 = 1.6;
const DET_MAX_SIDE: usize = 2000;
const REC_HEIGHT: usize = 48;

static OCR: OnceLock<Ocr> = OnceLock::new();
static OPENING: Mutex<()> = Mutex::new(());

impl Ocr {
    /// Whether the runtime and models are in `dir`.
    pub fn installed(dir: &Path) -> bool {
        OCR.get().is_some() || [RUNTIME, DET_MODEL, REC_MODEL, CLS_MODEL].iter().all(|f| dir.join(f).is_file())
    }

    /// The OCR of this process (ONNX Runtime is loaded once), or why there is none.
    pub fn open(dir: &Path) -> Result<&'static Ocr, IngestError> {
        super::bound_once(&OCR, &OPENING, || {
            let unavailable = |why: String| IngestError::Unavailable { dir: dir.display().to_string(), why };
            for f in [RUNTIME, DET_MODEL, REC_MODEL, CLS_MODEL] {
                if !dir.join(f).is_file() {
                    return Err(unavailable(format!("{f} is missing (OCR)")));
                }
            }
            ort::init_from(dir.join(RUNTIME).display().to_string()).commit().map_err(|e| unavailable(format!("ONNX Runtime: {e}")))?;
            let session = |model: &str| -> Result<Session, IngestError> {
                let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
                Session::builder()
                    .and_then(|b| b.with_intra_threads(threads))
                    .and_then(|b| b.commit_from_file(dir.join(model)))
                    .map_err(|e| unavailable(format!("{model}: {e}")))
            };
            let (det, cls, rec) = (session(DET_MODEL)?, session(CLS_MODEL)?, session(REC_MODEL)?);
            let characters: Vec<String> = rec
                .metadata()
                .and_then(|m| m.custom("character"))
                .map_err(|e| unavailable(e.to_string()))?
                .ok_or_else(|| unavailable(format!("{REC_MODEL} carries no character list")))?
                .split('\n')
                .map(str::to_owned)
                .collect();
            Ok(Ocr { det: Mutex::new(det), cls: Mutex::new(cls), rec: Mutex::new(rec), characters })
        })
    }

    /// The page's text, one detected line per line, in reading order.
    pub fn read(&self, page: &Gray) -> Result<String, IngestError> {
        let (page, boxes) = self.upright(page)?;
        let page = &page;
        let mut lines: Vec<(Rect, String)> = Vec::new();
        for b in reading_order(boxes, page.width) {
            let text = self.recognize(page, &b)?;
            if !text.trim().is_empty() {
                lines.push((b, text));
            }
        }
        // Boxes of one row (overlapping vertically by half) are one line, left to right.
        let mut out = String::new();
        let mut row: Option<Rect> = None;
        for (b, text) in lines {
            match &mut row {
                Some(r) if b.same_row(r) => {
                    out.push(' ');
                    r.y1 = r.y1.max(b.y1);
                }
                _ => {
                    if row.is_some() {
                        out.push('\n');
                    }
                    row = Some(b.clone());
                }
            }
            out.push_str(&text);
        }
        Ok(out)
    }

    /// The page the right way up, and its lines.
    fn upright(&self, page: &Gray) -> Result<(Gray, Vec<Rect>), IngestError> {
        let mut page = page.clone();
        let mut boxes = self.detect(&page)?;
        let tall = boxes.iter().filter(|b| (b.y1 - b.y0) > 2 * (b.x1 - b.x0)).count();
        if tall * 2 > boxes.len() {
            page = page.rotated_90();
            boxes = self.detect(&page)?;
        }
        if let Some(level) = super::deskew::straightened(&page) {
            page = level;
            boxes = self.detect(&page)?;
        }
        if self.upside_down(&page, &boxes)? {
            page = page.rotated_180();
            boxes = self.detect(&page)?;
        }
        Ok((page, boxes))
    }

    /// Whether most of the widest lines read as turned 180°.
    fn upside_down(&self, page: &Gray, boxes: &[Rect]) -> Result<bool, IngestError> {
        let mut widest: Vec<&Rect> = boxes.iter().collect();
        widest.sort_by_key(|b| std::cmp::Reverse(b.x1 - b.x0));
        let sample: Vec<&Rect> = widest.into_iter().take(CLS_SAMPLE).collect();
        let mut flipped = 0;
        for b in &sample {
            let (cw, ch) = (b.x1 - b.x0, b.y1 - b.y0);
            let w = ((REC_HEIGHT as f32 * cw as f32 / ch as f32).ceil() as usize).clamp(1, CLS_WIDTH);
            let line = normalized(page, b.x0, b.y0, cw, ch, w, REC_HEIGHT);
            // Padded to the classifier's width with zeros after normalizing, as PaddleOCR pads.
            let mut input = vec![0.0f32; 3 * REC_HEIGHT * CLS_WIDTH];
            for c in 0..3 {
                for r in 0..REC_HEIGHT {
                    let from = c * REC_HEIGHT * w + r * w;
                    let to = c * REC_HEIGHT * CLS_WIDTH + r * CLS_WIDTH;
                    input[to..to + w].copy_from_slice(&line[from..from + w]);
                }
            }
            let mut cls = self.cls.lock().unwrap_or_else(|e| e.into_inner());
            let tensor = Tensor::from_array(([1usize, 3, REC_HEIGHT, CLS_WIDTH], input)).map_err(ocr_error)?;
            let outputs = cls.run(ort::inputs!["x" => tensor]).map_err(ocr_error)?;
            let (_, p) = outputs[0].try_extract_tensor::<f32>().map_err(ocr_error)?;
            if p.len() >= 2 && p[1] > p[0] && p[1] >= CLS_THRESHOLD {
                flipped += 1;
            }
        }
        Ok(!sample.is_empty() && flipped * 2 > sample.len())
    }

    fn detect(&self, page: &Gray) -> Result<Vec<Rect>, IngestError> {
        let scale = (DET_MAX_SIDE as f32 / page.width.max(page.height) as f32).min(1.0);
        let round32 = |v: f32| ((v / 32.0).round() as usize).max(1) * 32;
        let (w, h) = (round32(page.width as f32 * scale), round32(page.height as f32 * scale));
        let input = normalized(page, 0, 0, page.width, page.height, w, h);
        let mut det = self.det.lock().unwrap_or_else(|e| e.into_inner());
        let tensor = Tensor::from_array(([1usize, 3, h, w], input)).map_err(ocr_error)?;
        let outputs = det.run(ort::inputs!["x" => tensor]).map_err(ocr_error)?;
        let (shape, prob) = outputs[0].try_extract_tensor::<f32>().map_err(ocr_error)?;
        let (mh, mw) = (shape[2] as usize, shape[3] as usize);
        let (sx, sy) = (page.width as f32 / mw as f32, page.height as f32 / mh as f32);
        Ok(regions(prob, mw, mh)
            .into_iter()
            .map(|r| {
                let (bw, bh) = ((r.x1 - r.x0) as f32, (r.y1 - r.y0) as f32);
                let d = bw * bh * UNCLIP_RATIO / (2.0 * (bw + bh));
                Rect {
                    x0: ((r.x0 as f32 - d) * sx).max(0.0) as usize,
                    y0: ((r.y0 as f32 - d) * sy).max(0.0) as usize,
                    x1: (((r.x1 as f32 + d) * sx).ceil() as usize).min(page.width),
                    y1: (((r.y1 as f32 + d) * sy).ceil() as usize).min(page.height),
                }
            })
            .filter(|r| r.x1 > r.x0 + 2 && r.y1 > r.y0 + 2)
            .collect())
    }

    fn recognize(&self, page: &Gray, b: &Rect) -> Result<String, IngestError> {
        let (cw, ch) = (b.x1 - b.x0, b.y1 - b.y0);
        let w = ((REC_HEIGHT as f32 * cw as f32 / ch as f32).round() as usize).clamp(16, 4000);
        let input = normalized(page, b.x0, b.y0, cw, ch, w, REC_HEIGHT);
        let mut rec = self.rec.lock().unwrap_or_else(|e| e.into_inner());
        let tensor = Tensor::from_array(([1usize, 3, REC_HEIGHT, w], input)).map_err(ocr_error)?;
        let outputs = rec.run(ort::inputs!["x" => tensor]).map_err(ocr_error)?;
        let (shape, logits) = outputs[0].try_extract_tensor::<f32>().map_err(ocr_error)?;
        let (steps, classes) = (shape[1] as usize, shape[2] as usize);
        // Greedy CTC: the best class per step, repeats collapsed, blanks (0) dropped; the class
        // after the list is a space.
        let mut text = String::new();
        let mut previous = 0usize;
        for t in 0..steps {
            let row = &logits[t * classes..(t + 1) * classes];
            let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(i, _)| i);
            if best != previous && best != 0 {
                match self.characters.get(best - 1) {
                    Some(c) => text.push_str(c),
                    None => text.push(' '),
                }
            }
            previous = best;
        }
        Ok(text)
    }
}

fn ocr_error(e: ort::Error) -> IngestError {
    IngestError::Unreadable(format!("OCR: {e}"))
}

/// A crop of the page resized (nearest) to `w`×`h`, as the models take it: three equal
/// channels, (v/255 − 0.5)/0.5.
fn normalized(page: &Gray, x: usize, y: usize, cw: usize, ch: usize, w: usize, h: usize) -> Vec<f32> {
    let mut plane = Vec::with_capacity(w * h);
    for r in 0..h {
        let sy = (y + r * ch / h).min(page.height - 1);
        for c in 0..w {
            let sx = (x + c * cw / w).min(page.width - 1);
            plane.push(page.pixels[sy * page.width + sx] as f32 / 127.5 - 1.0);
        }
    }
    let mut out = Vec::with_capacity(3 * w * h);
    for _ in 0..3 {
        out.extend_from_slice(&plane);
    }
    out
}

/// Connected regions of the probability map above the threshold (after a 2×2 dilation),
/// kept when their mean probability reaches the box threshold.
fn regions(prob: &[f32], w: usize, h: usize) -> Vec<Rect> {
    let mut on = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if prob[y * w + x] > DET_THRESHOLD {
                for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    if y >= dy && x >= dx {
                        on[(y - dy) * w + (x - dx)] = true;
                    }
                }
            }
        }
    }
    let mut seen = vec![false; w * h];
    let mut out = Vec::new();
    let mut queue = VecDeque::new();
    for start in 0..w * h {
        if !on[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        queue.push_back(start);
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        while let Some(i) = queue.pop_front() {
            let (x, y) = (i % w, i / w);
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
            let mut visit = |j: usize| {
                if on[j] && !seen[j] {
                    seen[j] = true;
                    queue.push_back(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if x1 - x0 < 3 || y1 - y0 < 3 {
            continue;
        }
        let mut sum = 0.0f32;
        for y in y0..y1 {
            sum += prob[y * w + x0..y * w + x1].iter().sum::<f32>();
        }
        if sum / ((x1 - x0) * (y1 - y0)) as f32 >= BOX_THRESHOLD {
            out.push(Rect { x0, y0, x1, y1 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_found_in_a_probability_map_and_read_in_rows() {
        let (w, h) = (40, 20);
        let mut prob = vec![0.0f32; w * h];
        for (x0, y0, x1, y1) in [(22, 2, 38, 8), (2, 3, 18, 8), (2, 12, 30, 17)] {
            for y in y0..y1 {
                for x in x0..x1 {
                    prob[y * w + x] = 0.9;
                }
            }
        }
        let found = reading_order(regions(&prob, w, h), w);
        let starts: Vec<(usize, usize)> = found.iter().map(|r| (r.x0, r.y0)).collect();
        assert_eq!(starts, [(1, 2), (21, 1), (1, 11)], "the first row left to right, then the second");
        prob.iter_mut().for_each(|p| *p *= 0.5);
        assert!(regions(&prob, w, h).is_empty(), "below the thresholds nothing is text");
    }
}
