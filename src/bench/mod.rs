//! `jointcoder bench …`: numbers printed as a table (speed targets live here, never in tests).
//! The command line (`main.rs`) names the benches and their defaults; each is a function here.

use std::time::Instant;

pub mod llm;

use crate::config::Config;
use crate::stats::{percentile, rss_mb};
use crate::terminology::normalize::normalize;
use crate::terminology::{EditionSpec, Terminology, TerminologyOptions};

/// Writes `n` AuditEvents into a fresh SQLite store, then times searches on it.
pub fn search(n: usize, rounds: usize) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("jointcoder-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = crate::store::Store::open(&dir.join("bench.sqlite")).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let events = chunk
            .iter()
            .map(|i| {
                serde_json::json!({ "resourceType": "AuditEvent", "id": format!("ae-{i}"), "action": "R",
                    "agent": [{ "who": { "identifier": { "value": format!("client-{}", i % 50) } } }],
                    "entity": [{ "what": { "reference": format!("Condition/c{i}") } }] })
            })
            .collect();
        store.create_all(events, None).map_err(|e| e.to_string())?;
    }
    println!("wrote {n} AuditEvents in {:.1} s", started.elapsed().as_secs_f64());
    println!("| search | total | p50 ms | max ms |");
    println!("| --- | --- | --- | --- |");
    let cases: [(&str, Vec<(String, String)>, usize); 3] = [
        ("AuditEvent?_count=1", vec![], 0),
        ("AuditEvent?_count=50&_offset=n-100", vec![], n.saturating_sub(100)),
        ("AuditEvent?agent=client-7&_count=50", vec![("agent".into(), "client-7".into())], 0),
    ];
    for (name, filters, offset) in cases {
        let mut ms = Vec::new();
        let mut total = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let (_, t_total) = store.search("AuditEvent", &filters, if name.contains("_count=1") { 1 } else { 50 }, offset).map_err(|e| e.to_string())?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            total = t_total;
        }
        ms.sort_by(f64::total_cmp);
        println!("| {name} | {total} | {:.2} | {:.2} |", percentile(&ms, 0.5), ms.last().copied().unwrap_or(0.0));
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

pub fn terminology(config: &Config, mentions: &std::path::Path, vocab: &std::path::Path) -> Result<(), String> {
    let rss0 = rss_mb().unwrap_or(0.0);
    // Start-up: the two clinical editions, as the server loads them (index cache in a fresh
    // temporary directory so that the build is measured, then again from the cache).
    let cache = std::env::temp_dir().join(format!("jointcoder-bench-{}", std::process::id()));
    let mut opts = config.terminology_options();
    opts.only = vec!["icd-10-cn-clinical".into(), "icd-9-cm-3-cn-clinical".into()];
    opts.cache_dir = Some(cache.clone());
    let t0 = Instant::now();
    let clinical = Terminology::load(&opts).map_err(|e| e.to_string())?;
    let cold = t0.elapsed();
    let rss_after = rss_mb().unwrap_or(0.0);
    drop(clinical);
    let t1 = Instant::now();
    let _warm = Terminology::load(&opts).map_err(|e| e.to_string())?;
    let warm = t1.elapsed();
    let _ = std::fs::remove_dir_all(&cache);

    // The CHIP-CDN label space as an admin-added edition.
    let mut vopts = TerminologyOptions { only: vec!["none".into()], ..config.terminology_options() };
    vopts.cache_dir = None;
    vopts.extra_editions = vec![EditionSpec {
        id: "icd-10-cn-beijing".into(),
        file: std::path::absolute(vocab).map_err(|e| e.to_string())?,
        version: "6.01".into(),
        title: Some("ICD-10 北京临床版 v6.01".into()),
        url: None,
        kind: None,
        role: None,
        headers: None,
    }];
    let beijing = Terminology::load(&vopts).map_err(|e| e.to_string())?;
    let items = crate::eval::chip_cdn::read(mentions)?;

    let ks = [1usize, 10, 50];
    let mut hits = [0usize; 3];
    let mut total = 0usize;
    let mut lat = Vec::with_capacity(items.len());
    for it in &items {
        let start = Instant::now();
        let cands = beijing.search(&it.text, "icd-10-cn-beijing", None, 50).map_err(|e| e.to_string())?;
        lat.push(start.elapsed().as_secs_f64() * 1000.0);
        // Names, deduplicated: several codes share a name in v601, and gold is a name.
        let mut names: Vec<String> = Vec::with_capacity(cands.len());
        for c in &cands {
            let k = normalize(&c.name);
            if !names.contains(&k) {
                names.push(k);
            }
        }
        for g in &it.gold {
            total += 1;
            let gk = normalize(g);
            if let Some(pos) = names.iter().position(|n| *n == gk) {
                for (i, k) in ks.iter().enumerate() {
                    if pos < *k {
                        hits[i] += 1;
                    }
                }
            }
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| start-up, two clinical editions, index built | {:.0} ms |", cold.as_secs_f64() * 1000.0);
    println!("| start-up, two clinical editions, index cached | {:.0} ms |", warm.as_secs_f64() * 1000.0);
    println!("| resident memory after start-up | {:.0} MB (process before: {:.0} MB) |", rss_after, rss0);
    println!("| search queries (CHIP-CDN mentions, v601, k=50) | {} |", lat.len());
    println!("| search latency p50 | {:.3} ms |", percentile(&lat, 0.5));
    println!("| search latency p99 | {:.3} ms |", percentile(&lat, 0.99));
    for (i, k) in ks.iter().enumerate() {
        println!("| recall@{k} ({} gold terms) | {:.3} |", total, hits[i] as f64 / total.max(1) as f64);
    }
    Ok(())
}

/// Records per second through the whole pipeline. The tracks of one record run on two threads
/// (phase 1); records are coded one after another, so this is the one-core-per-stream rate.
pub fn pipeline(config: &Config, records: &std::path::Path, rounds: usize) -> Result<(), String> {
    let read = crate::record::io::read_path(records).map_err(|e| e.to_string())?;
    let pipeline = crate::app::App::open(config)?.pipeline;
    // Reading and checking the coding policy, as a start-up or a terminology admin's change
    // does (the mean of 20 loads, and the slowest).
    let mut policy_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        pipeline.terminology.load_policy(config.policy.as_deref()).map_err(|e| e.to_string())?;
        policy_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let rss_before = rss_mb().unwrap_or(0.0);
    // Warm-up: first touches of the index pages.
    for r in &read.records {
        let _ = pipeline.code(r);
    }
    let mut lat = Vec::with_capacity(read.records.len() * rounds);
    let start = Instant::now();
    for _ in 0..rounds.max(1) {
        for r in &read.records {
            let t = Instant::now();
            pipeline.code(r).map_err(|e| e.to_string())?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let n = lat.len();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| records coded | {n} ({} distinct × {rounds} rounds) |", read.records.len());
    println!("| throughput | {:.0} records/s |", n as f64 / total);
    println!("| latency p50 | {:.2} ms |", percentile(&lat, 0.5));
    println!("| latency p99 | {:.2} ms |", percentile(&lat, 0.99));
    println!("| resident memory | {:.0} MB (after loading: {:.0} MB) |", rss_mb().unwrap_or(0.0), rss_before);
    let mean = policy_ms.iter().sum::<f64>() / policy_ms.len() as f64;
    let slowest = policy_ms.iter().cloned().fold(0.0, f64::max);
    println!("| coding policy {} loaded and checked | {mean:.2} ms mean, {slowest:.2} ms slowest |", pipeline.terminology.policy.source);
    Ok(())
}

/// PDF reading per page (`jointcoder bench pdf FILE...`): the text layer, rendering at 200 dpi,
/// OCR of the rendered page, and whole records through `ingest::extract`.
pub fn pdf(config: &Config, files: &[std::path::PathBuf], rounds: usize) -> Result<(), String> {
    use crate::ingest::{ocr::Ocr, pdf::PdfReader};
    if files.is_empty() {
        return Err("name one or more PDF files".into());
    }
    let dir = config.pdf_dir();
    let reader = PdfReader::open(&dir).map_err(|e| e.to_string())?;
    let ocr = Ocr::open(&dir).map_err(|e| e.to_string())?;
    let docs: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))).collect::<Result<_, _>>()?;
    let (mut layer, mut render, mut read, mut whole) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut pages = 0usize;
    for _ in 0..rounds.max(1) {
        for bytes in &docs {
            let t = Instant::now();
            let texts = reader.page_texts(bytes).map_err(|e| e.to_string())?;
            layer.push(t.elapsed().as_secs_f64() * 1000.0 / texts.len().max(1) as f64);
            pages += texts.len();
            for i in 0..texts.len() {
                let t = Instant::now();
                let image = reader.render_gray(bytes, i, 200.0).map_err(|e| e.to_string())?;
                render.push(t.elapsed().as_secs_f64() * 1000.0);
                let t = Instant::now();
                ocr.read(&image).map_err(|e| e.to_string())?;
                read.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let t = Instant::now();
            let _ = crate::ingest::extract(reader, Some(ocr), bytes, "bench", crate::ingest::deid::Dates::Keep);
            whole.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for v in [&mut layer, &mut render, &mut read, &mut whole] {
        v.sort_by(|a, b| a.total_cmp(b));
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("| measure ({pages} pages, {} files × {rounds} rounds, {threads} threads) | p50 | max |", docs.len());
    println!("| --- | --- | --- |");
    for (name, v) in [("text layer, per page", &layer), ("render at 200 dpi, per page", &render), ("OCR, per page", &read), ("whole record (text layer, OCR where none, de-identified, split)", &whole)] {
        println!("| {name} | {:.1} ms | {:.1} ms |", percentile(v, 0.5), v.last().copied().unwrap_or(0.0));
    }
    Ok(())
}
