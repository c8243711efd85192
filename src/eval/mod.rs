//! Measuring the pipeline: datasets, metrics (micro P/R/F1, sample Jaccard, NDCG@3, principal
//! accuracy, the CCL2025 score), ablations. Accuracy claims come from here.

pub mod chip_cdn;
pub mod metrics;

use std::collections::HashSet;
use std::path::Path;

use crate::pipeline::{Pipeline, Stage};
use crate::record::{io, EhrRecord};

pub use metrics::{TrackMetrics, TrackScores};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Dev,
    Test,
    All,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "dev" => Some(Split::Dev),
            "test" => Some(Split::Test),
            "all" => Some(Split::All),
            _ => None,
        }
    }
}

/// CCL2025's split for this project: 病案标识 ending in an even digit is development data
/// (tune on it), odd is test data (measure only).
pub fn in_split(record_id: &str, split: Split) -> bool {
    let even = record_id.chars().last().and_then(|c| c.to_digit(10)).is_some_and(|d| d % 2 == 0);
    match split {
        Split::Dev => even,
        Split::Test => !even,
        Split::All => true,
    }
}


/// Gold-coded records of a file, or of every record file in a folder (sorted by name).
pub fn load_records(path: &Path, split: Split) -> Result<Vec<EhrRecord>, String> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "json" | "jsonl" | "ndjson" | "xlsx" | "csv")))
            .collect();
        f.sort();
        f
    } else {
        vec![path.to_owned()]
    };
    let mut records = Vec::new();
    for file in files {
        let out = io::read_path(&file).map_err(|e| e.to_string())?;
        for e in &out.errors {
            eprintln!("skipped: {}: {e}", file.display());
        }
        for e in &out.warnings {
            eprintln!("field skipped: {}: {e}", file.display());
        }
        records.extend(out.records.into_iter().filter(|r| in_split(&r.record_id, split) && r.gold.is_some()));
    }
    Ok(records)
}

/// The codes a task scores, as CCL2025's label_space.json defines them: a principal-diagnosis
/// space and an other-diagnosis space.
#[derive(Clone, Debug, Default)]
pub struct LabelSpace {
    pub principal: HashSet<String>,
    pub other: HashSet<String>,
}

impl LabelSpace {
    /// The prediction as the task reads it: the first predicted code of the principal space is
    /// the principal, then the other predicted codes of the other space.
    pub fn restrict(&self, codes: &[String]) -> Vec<String> {
        let principal = codes.iter().find(|c| self.principal.contains(*c));
        let mut out: Vec<String> = principal.cloned().into_iter().collect();
        if out.is_empty() {
            // No principal of the space: the first slot stays wrong rather than borrowing an
            // other-diagnosis code.
            out.push(String::from("-"));
        }
        out.extend(codes.iter().filter(|c| Some(*c) != principal && self.other.contains(*c)).cloned());
        out
    }
}

pub fn load_label_space(path: &Path) -> Result<LabelSpace, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let read = |key: &str| -> HashSet<String> {
        v[key].as_array().into_iter().flatten().filter_map(|i| i["code"].as_str().map(str::to_owned)).collect()
    };
    let ls = LabelSpace { principal: read("principal"), other: read("other") };
    if ls.principal.is_empty() || ls.other.is_empty() {
        return Err(format!("{}: expected codes under both principal and other", path.display()));
    }
    Ok(ls)
}

/// Scores of one pipeline configuration over a record set.
pub struct EvalReport {
    pub records: usize,
    pub failed: usize,
    pub diseases: TrackMetrics,
    pub procedures: TrackMetrics,
    pub ms_per_record: f64,
    /// Where each track goes wrong, by kind of error and code family.
    pub disease_errors: ErrorTally,
    pub procedure_errors: ErrorTally,
    /// Each record a track did not get exactly right, for `eval --errors`.
    pub wrong: Vec<RecordErrors>,
}

/// What one record's coding got wrong on one track, for a coder or developer to read.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecordErrors {
    pub record_id: String,
    pub track: &'static str,
    pub gold_principal: Option<String>,
    pub predicted_principal: Option<String>,
    pub missed: Vec<String>,
    pub extra: Vec<String>,
}

impl RecordErrors {
    /// `None` when the prediction is the gold, principal and all.
    pub fn of(record_id: &str, track: &'static str, predicted: &[String], gold: &[String]) -> Option<RecordErrors> {
        let missed: Vec<String> = gold.iter().filter(|g| !predicted.contains(g)).cloned().collect();
        let extra: Vec<String> = predicted.iter().filter(|p| !gold.contains(p)).cloned().collect();
        if missed.is_empty() && extra.is_empty() && predicted.first() == gold.first() {
            return None;
        }
        Some(RecordErrors {
            record_id: record_id.to_owned(),
            track,
            gold_principal: gold.first().cloned(),
            predicted_principal: predicted.first().cloned(),
            missed,
            extra,
        })
    }
}

/// The category a code belongs to, for counting errors: the ICD-10 category (`I25` of
/// `I25.103`), the ICD-9-CM-3 subcategory's parent (`36.0` of `36.0700x004`).
pub fn family(code: &str) -> String {
    if code.starts_with(|c: char| c.is_ascii_alphabetic()) {
        code.split('.').next().unwrap_or(code).to_owned()
    } else {
        code.chars().take(4).collect()
    }
}

/// Errors of one track, counted by code family: gold codes not predicted (missed), predicted
/// codes not in the gold (extra), and records whose principal was another code (keyed
/// `gold family ← predicted family`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorTally {
    pub missed: std::collections::BTreeMap<String, usize>,
    pub extra: std::collections::BTreeMap<String, usize>,
    pub principal: std::collections::BTreeMap<String, usize>,
}

impl ErrorTally {
    pub fn add(&mut self, predicted: &[String], gold: &[String]) {
        for g in gold.iter().filter(|g| !predicted.contains(g)) {
            *self.missed.entry(family(g)).or_default() += 1;
        }
        for p in predicted.iter().filter(|p| !gold.contains(p) && p.as_str() != "-") {
            *self.extra.entry(family(p)).or_default() += 1;
        }
        if let (Some(g), p) = (gold.first(), predicted.first()) {
            if p != Some(g) {
                let p = p.filter(|p| p.as_str() != "-").map_or_else(|| "(none)".to_owned(), |p| family(p));
                *self.principal.entry(format!("{} ← {p}", family(g))).or_default() += 1;
            }
        }
    }

    /// The `n` most frequent of a kind, most frequent first (ties by family).
    pub fn top(counts: &std::collections::BTreeMap<String, usize>, n: usize) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = counts.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

pub fn evaluate(pipeline: &Pipeline, records: &[EhrRecord], label_space: Option<&LabelSpace>) -> EvalReport {
    let mut dx = TrackScores::default();
    let mut px = TrackScores::default();
    let (mut dx_errors, mut px_errors) = (ErrorTally::default(), ErrorTally::default());
    let mut failed = 0;
    let mut wrong = Vec::new();
    let start = std::time::Instant::now();
    for rec in records {
        let gold = rec.gold.clone().unwrap_or_default();
        let coding = match pipeline.code(rec) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        let keep = |codes: Vec<String>| -> Vec<String> {
            match label_space {
                Some(ls) => ls.restrict(&codes),
                None => codes,
            }
        };
        let predicted = keep(coding.disease_codes());
        dx.add(&predicted, &gold.diseases);
        dx_errors.add(&predicted, &gold.diseases);
        wrong.extend(RecordErrors::of(&rec.record_id, "diseases", &predicted, &gold.diseases));
        if !gold.procedures.is_empty() {
            let procedures = coding.procedure_codes();
            px.add(&procedures, &gold.procedures);
            px_errors.add(&procedures, &gold.procedures);
            wrong.extend(RecordErrors::of(&rec.record_id, "procedures", &procedures, &gold.procedures));
        }
    }
    EvalReport {
        records: records.len(),
        failed,
        diseases: dx.finish(),
        procedures: px.finish(),
        ms_per_record: start.elapsed().as_secs_f64() * 1000.0 / records.len().max(1) as f64,
        disease_errors: dx_errors,
        procedure_errors: px_errors,
        wrong,
    }
}

pub fn print_report(name: &str, r: &EvalReport) {
    println!("{name}: {} records ({} failed), {:.2} ms/record", r.records, r.failed, r.ms_per_record);
    println!("| track | n | P | R | F1 | Jaccard | NDCG@3 | principal acc | CCL score |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (t, m) in [("diseases", &r.diseases), ("procedures", &r.procedures)] {
        if m.n == 0 {
            continue;
        }
        println!(
            "| {t} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            m.n, m.precision, m.recall, m.f1, m.jaccard, m.ndcg3, m.principal_accuracy, m.ccl_score
        );
    }
    println!();
    println!("Top error kinds (by code family; principal: gold ← predicted):");
    println!("| track | kind | code family: count |");
    println!("| --- | --- | --- |");
    for (t, m, e) in [("diseases", &r.diseases, &r.disease_errors), ("procedures", &r.procedures, &r.procedure_errors)] {
        if m.n == 0 {
            continue;
        }
        for (kind, counts) in [("missed", &e.missed), ("extra", &e.extra), ("wrong principal", &e.principal)] {
            let top: Vec<String> = ErrorTally::top(counts, 6).into_iter().map(|(f, n)| format!("{f}: {n}")).collect();
            println!("| {t} | {kind} ({}) | {} |", counts.values().sum::<usize>(), if top.is_empty() { "—".to_owned() } else { top.join(", ") });
        }
    }
}

/// The paper-style ablation table: full pipeline, then each stage switched off.
pub fn ablation(pipeline: &Pipeline, records: &[EhrRecord], label_space: Option<&LabelSpace>) {
    println!("| variant | dx F1 | dx principal acc | dx CCL score | px F1 | px principal acc |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut variants: Vec<(String, Option<Stage>)> = vec![("full pipeline".into(), None)];
    for s in Stage::ABLATABLE {
        variants.push((format!("without {}", s.as_str()), Some(s)));
    }
    for (name, stage) in variants {
        let p = pipeline.clone().without(stage);
        let r = evaluate(&p, records, label_space);
        let px = |v: f64| if r.procedures.n == 0 { "–".to_string() } else { format!("{v:.4}") };
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} | {} | {} |",
            r.diseases.f1, r.diseases.principal_accuracy, r.diseases.ccl_score, px(r.procedures.f1), px(r.procedures.principal_accuracy)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_wrong_when_a_code_or_the_principal_differs() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(RecordErrors::of("r", "diseases", &v(&["I21.401", "I25.103"]), &v(&["I21.401", "I25.103"])), None);
        // Same codes, principal swapped: wrong, with nothing missed or extra.
        let swapped = RecordErrors::of("r", "diseases", &v(&["I25.103", "I21.401"]), &v(&["I21.401", "I25.103"])).expect("wrong");
        assert_eq!((swapped.gold_principal.as_deref(), swapped.predicted_principal.as_deref()), (Some("I21.401"), Some("I25.103")));
        assert!(swapped.missed.is_empty() && swapped.extra.is_empty());
        let w = RecordErrors::of("r", "procedures", &v(&["36.0700", "88.5600"]), &v(&["36.0700", "00.4000"])).expect("wrong");
        assert_eq!((w.missed, w.extra), (v(&["00.4000"]), v(&["88.5600"])));
    }

    #[test]
    fn errors_are_counted_by_kind_and_family() {
        let s = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let mut t = ErrorTally::default();
        t.add(&s(&["I10.x00x032", "I25.103", "E78.500"]), &s(&["I25.103", "I10.x00x032", "E11.900"]));
        t.add(&s(&["-", "I25.103"]), &s(&["I21.401", "I25.103"]));
        t.add(&s(&["36.0700x004"]), &s(&["36.0700x004", "88.5600"]));
        assert_eq!(family("36.0700x004"), "36.0");
        assert_eq!(t.missed, [("E11".to_owned(), 1), ("I21".to_owned(), 1), ("88.5".to_owned(), 1)].into());
        assert_eq!(t.extra, [("E78".to_owned(), 1)].into());
        assert_eq!(t.principal, [("I25 ← I10".to_owned(), 1), ("I21 ← (none)".to_owned(), 1)].into());
        assert_eq!(ErrorTally::top(&t.missed, 2), vec![("88.5", 1), ("E11", 1)]);
    }
}
