//! Command implementations that read files and print (the CLI's side of `code`, `eval`,
//! `train`). Messages name the record and field; clinical text is never logged.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agents::knowledge;
use crate::app::{models_or_train, App};
use crate::catalog::{beijing_edition, datasets};
use crate::config::Config;
use crate::eval::{self, Split};
use crate::pipeline::{Pipeline, Stage};
use crate::record::io;
use crate::terminology::Terminology;

/// The configured pipeline with some stages switched off.
fn pipeline(config: &Config, without: &[Stage]) -> Result<Pipeline, String> {
    Ok(App::open(config)?.pipeline.without(without.iter().copied()))
}

/// PDFs: one file, or every `.pdf` of a folder (in name order), each a record named by its
/// file; a PDF that cannot be read is reported by name and the rest are coded.
fn read_pdfs(config: &Config, path: &Path) -> Result<(Vec<crate::record::EhrRecord>, usize), String> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_owned()]
    };
    if files.is_empty() {
        return Err(format!("{}: no .pdf file in this folder", path.display()));
    }
    let reader = crate::ingest::pdf::PdfReader::open(&config.pdf_dir()).map_err(|e| e.to_string())?;
    let bar = (files.len() > 1).then(|| {
        let b = indicatif::ProgressBar::new(files.len() as u64);
        b.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} PDFs {elapsed}").expect("template"));
        b
    });
    let (mut records, mut failed) = (Vec::new(), 0);
    for f in &files {
        let id = f.file_stem().and_then(|s| s.to_str()).unwrap_or("pdf").to_owned();
        let read = std::fs::read(f).map_err(|e| e.to_string()).and_then(|bytes| crate::ingest::extract(reader, crate::ingest::ocr_of(&config.pdf_dir()), &bytes, &id, config.pdf_dates()).map_err(|e| e.to_string()));
        match read {
            Ok(x) => {
                if !x.pages_without_text.is_empty() {
                    eprintln!("{}: pages {:?} have no text layer and were not read (OCR is not installed: scripts/fetch-pdf.sh)", f.display(), x.pages_without_text);
                }
                records.push(x.record);
            }
            Err(e) => {
                eprintln!("{}: {e} (skipped)", f.display());
                failed += 1;
            }
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok((records, failed))
}

pub fn code_file(config: &Config, file: &Path, out: Option<&Path>, trace: bool) -> Result<(), String> {
    let is_pdf = file.is_dir() || file.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    let read = if is_pdf {
        let (records, failed) = read_pdfs(config, file)?;
        io::ReadOutcome { records, errors: Vec::new(), warnings: Vec::new(), unreadable: failed, ..Default::default() }
    } else {
        io::read_path(file).map_err(|e| e.to_string())?
    };
    for e in &read.errors {
        eprintln!("{}: {e} (skipped)", file.display());
    }
    for e in &read.warnings {
        eprintln!("{}: {e} (field skipped, record read)", file.display());
    }
    let pipeline = pipeline(config, &[])?;
    let mut sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let bar = (read.records.len() > 1).then(|| {
        let b = indicatif::ProgressBar::new(read.records.len() as u64);
        b.set_style(indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} records {elapsed}").expect("template"));
        b
    });
    let mut coded = 0usize;
    for rec in &read.records {
        match pipeline.code(rec) {
            Ok(c) => {
                let names: serde_json::Map<String, serde_json::Value> = c
                    .diseases
                    .iter()
                    .chain(&c.procedures)
                    .filter_map(|i| i.code.clone().map(|code| (code, serde_json::Value::String(i.name.clone()))))
                    .collect();
                let mut line = serde_json::json!({
                    "record_id": c.record_id,
                    "diseases": c.disease_codes(),
                    "procedures": c.procedure_codes(),
                    "names": names,
                });
                if trace {
                    line["trace"] = serde_json::to_value(&c.trace).map_err(|e| e.to_string())?;
                }
                writeln!(sink, "{line}").map_err(|e| e.to_string())?;
                coded += 1;
            }
            Err(e) => eprintln!("{e} (skipped)"),
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    sink.flush().map_err(|e| e.to_string())?;
    eprintln!("coded {coded} of {} record(s)", read.records.len() + read.errors.len() + read.unreadable);
    if coded == 0 {
        return Err("no record could be coded".into());
    }
    Ok(())
}

pub struct EvalArgs {
    pub dataset: String,
    /// `None`: CCL2025's test half, every record of a file or folder.
    pub split: Option<Split>,
    pub without: Vec<Stage>,
    pub label_space: Option<PathBuf>,
    pub ablation: bool,
    /// Where to write the items that were not right (JSONL).
    pub errors: Option<PathBuf>,
}

pub fn eval(config: &Config, args: EvalArgs) -> Result<(), String> {
    let named = matches!(args.dataset.as_str(), "ccl2025" | "chip-cdn") || args.dataset.starts_with("chip-cdn:");
    // The even/odd split is CCL2025's; our own files are measured whole unless told.
    let split = args.split.unwrap_or(if named { Split::Test } else { Split::All });
    if args.dataset == "chip-cdn" {
        return eval_chip_cdn(config, split, None, args.errors.as_deref());
    }
    if let Some(path) = args.dataset.strip_prefix("chip-cdn:") {
        return eval_chip_cdn(config, split, Some(Path::new(path)), args.errors.as_deref());
    }
    let path = if args.dataset == "ccl2025" { PathBuf::from(datasets::CCL2025_RECORDS) } else { PathBuf::from(&args.dataset) };
    let label_space = match &args.label_space {
        Some(p) => Some(eval::load_label_space(p)?),
        None => None,
    };
    let records = eval::load_records(&path, split)?;
    if records.is_empty() {
        return Err(format!("{}: no gold-coded records in split {split:?}", path.display()));
    }
    let pipeline = pipeline(config, &args.without)?;
    let name = format!("{} ({split:?})", args.dataset);
    if args.ablation {
        println!("{name}: ablation over {} records", records.len());
        eval::ablation(&pipeline, &records, label_space.as_ref());
    } else {
        let report = eval::evaluate(&pipeline, &records, label_space.as_ref());
        eval::print_report(&name, &report);
        if let Some(path) = &args.errors {
            write_jsonl(path, &report.wrong)?;
            eprintln!("{} record track(s) not exactly right → {}", report.wrong.len(), path.display());
        }
    }
    Ok(())
}

/// CHIP-CDN: the standardization agent alone, against the Beijing v601 table, micro P/R/F1
/// over predicted standard terms as CBLUE scores it.
fn eval_chip_cdn(config: &Config, split: Split, file: Option<&Path>, errors: Option<&Path>) -> Result<(), String> {
    let path = match (file, split) {
        (Some(f), _) => f,
        (None, Split::Dev | Split::Test) => Path::new(datasets::CHIP_CDN_DEV),
        (None, Split::All) => return Err("chip-cdn: use --split dev (the test gold is hidden; train is for training)".into()),
    };
    let models = models_or_train(config)?;
    let mut opts = config.terminology_options();
    opts.only = vec!["none".into()];
    opts.extra_editions = vec![beijing_edition()];
    let t = Arc::new(Terminology::load(&opts).map_err(|e| e.to_string())?);
    let st = knowledge::standardizer(&t, &models, "icd-10-cn-beijing", crate::terminology::Scope::Dx);
    let items = crate::eval::chip_cdn::read(path)?;
    let (mut tp, mut np, mut ng) = (0usize, 0usize, 0usize);
    let mut wrong: Vec<serde_json::Value> = Vec::new();
    let start = std::time::Instant::now();
    for it in &items {
        let mut pred: HashSet<String> = HashSet::new();
        for piece in knowledge::text::split_items(&it.text) {
            for r in st.resolve(&piece.text)? {
                pred.insert(r.name);
            }
        }
        let gold: HashSet<String> = it.gold.iter().cloned().collect();
        if errors.is_some() && pred != gold {
            let sorted = |s: &HashSet<String>, other: &HashSet<String>| {
                let mut v: Vec<String> = s.difference(other).cloned().collect();
                v.sort();
                v
            };
            wrong.push(serde_json::json!({ "text": it.text, "missed": sorted(&gold, &pred), "extra": sorted(&pred, &gold) }));
        }
        tp += pred.intersection(&gold).count();
        np += pred.len();
        ng += gold.len();
    }
    let p = tp as f64 / np.max(1) as f64;
    let r = tp as f64 / ng.max(1) as f64;
    println!("chip-cdn {}: {} mentions, {:.2} ms/mention, reranker: {}", path.display(), items.len(), start.elapsed().as_secs_f64() * 1000.0 / items.len().max(1) as f64, models.reranker.trained_on);
    println!("| P | R | F1 |");
    println!("| --- | --- | --- |");
    println!("| {p:.4} | {r:.4} | {:.4} |", if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 });
    if let Some(path) = errors {
        write_jsonl(path, &wrong)?;
        eprintln!("{} mention(s) not exactly right → {}", wrong.len(), path.display());
    }
    Ok(())
}

/// One JSON line per row, for `eval --errors`.
fn write_jsonl<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<(), String> {
    let fail = |e: String| format!("{}: {e}", path.display());
    let mut sink = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| fail(e.to_string()))?);
    for row in rows {
        let line = serde_json::to_string(row).map_err(|e| fail(e.to_string()))?;
        writeln!(sink, "{line}").map_err(|e| fail(e.to_string()))?;
    }
    sink.flush().map_err(|e| fail(e.to_string()))
}

/// One JSONL line per coder decision: what the pipeline said, what the coder made of it.
pub fn export_feedback(config: &Config, out: Option<&Path>) -> Result<(), String> {
    let db = config.data().sqlite();
    if config.store_url.is_none() && !db.is_file() {
        return Err(format!("{}: no store here (nothing coded with persistence yet)", db.display()));
    }
    let store = crate::store::Store::open_configured(&config.data(), config.store_url.as_deref()).map_err(|e| format!("resource store: {e}"))?;
    let rows = store.feedback().map_err(|e| e.to_string())?;
    let mut sink: Box<dyn Write> = match out {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?),
        None => Box::new(std::io::stdout()),
    };
    for f in &rows {
        writeln!(sink, "{}", f.to_line()).map_err(|e| e.to_string())?;
    }
    eprintln!("{} review(s) exported", rows.len());
    Ok(())
}
