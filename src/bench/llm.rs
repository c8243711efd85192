//! `jointcoder bench llm`: the whole pipeline with every role on candle, metered per call.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::llm::candle::{device, CandleModel};
use crate::llm::config::{LlmConfig, LoadedModels, ModelSpec};
use crate::llm::{ChatModel, ChatRequest, Completion, LlmError};
use crate::config::Config;
use crate::stats::percentile;

#[derive(Default)]
struct Meter {
    calls: usize,
    requests: usize,
    prompt_tokens: usize,
    completion_tokens: usize,
    call_us: u64,
    forward_us: u64,
    fed_tokens: usize,
}

/// The model, with every call counted and timed.
struct Metered {
    inner: CandleModel,
    meter: Mutex<Meter>,
}

impl ChatModel for Metered {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn complete(&self, batch: &[ChatRequest]) -> Vec<Result<Completion, LlmError>> {
        let t = Instant::now();
        let (out, forward) = self.inner.complete_timed(batch);
        let mut m = self.meter.lock().expect("meter");
        m.calls += 1;
        m.requests += batch.len();
        m.call_us += t.elapsed().as_micros() as u64;
        m.forward_us += forward.forward_us;
        m.fed_tokens += forward.tokens;
        for c in out.iter().flatten() {
            m.prompt_tokens += c.prompt_tokens;
            m.completion_tokens += c.completion_tokens;
        }
        out
    }
}

fn bench_one(config: &Config, label: &str, path: &Path, records: &[crate::record::EhrRecord], rounds: usize, dev: &str) -> Result<(), String> {
    let model = CandleModel::load(path, Some(label.to_owned()), device(dev).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let metered = Arc::new(Metered { inner: model, meter: Mutex::default() });
    let spec = ModelSpec { backend: "candle".into(), path: Some(path.to_path_buf()), ..Default::default() };
    let cfg = LlmConfig { models: [(label.to_owned(), spec.clone())].into(), roles: [("*".to_owned(), label.to_owned())].into(), ..Default::default() };
    let loaded = LoadedModels::single(label, metered.clone(), spec);
    let models = crate::app::models_or_train(config)?;
    let t = Arc::new(crate::app::open_terminology(config)?);
    let pipeline = loaded.pipeline(&cfg, t, &models);
    let _ = pipeline.code(&records[0]); // warm-up
    *metered.meter.lock().expect("meter") = Meter::default();
    let mut lat = Vec::new();
    for _ in 0..rounds.max(1) {
        for r in records {
            let t = Instant::now();
            pipeline.code(r).map_err(|e| e.to_string())?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let m = metered.meter.lock().expect("meter");
    let secs = |us: u64| us as f64 / 1e6;
    println!("| {label} | {} | {:.0} / {:.0} ms | {} ({} calls) | {:.0} | {:.1} | {:.0} | {:.0} | {:.1}% |",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        m.requests,
        m.calls,
        m.prompt_tokens as f64 / m.requests.max(1) as f64,
        m.completion_tokens as f64 / m.requests.max(1) as f64,
        m.completion_tokens as f64 / secs(m.call_us).max(1e-9),
        m.fed_tokens as f64 / secs(m.forward_us).max(1e-9),
        100.0 * m.call_us.saturating_sub(m.forward_us) as f64 / m.call_us.max(1) as f64,
    );
    Ok(())
}

pub fn run(config: &Config, model: Option<PathBuf>, records: &Path, rounds: usize, dev: &str) -> Result<(), String> {
    let read = crate::record::io::read_path(records).map_err(|e| e.to_string())?;
    if read.records.is_empty() {
        return Err(format!("{}: no records", records.display()));
    }
    println!("| model | records | latency p50 / p99 | LLM requests | prompt tokens / request | answer tokens / request | answer tokens/s | tokens/s fed through forward (shared prefixes once) | our overhead over forward |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    match model {
        Some(p) => bench_one(config, "model", &p, &read.records, rounds, dev),
        None => {
            let dir = std::env::temp_dir().join(format!("jointcoder-bench-llm-{}", std::process::id()));
            let text: String = read.records.iter().map(|r| r.to_flat_json().to_string()).collect();
            let tiny = crate::llm::tiny::write(&dir, &crate::llm::tiny::corpus(&text), &crate::llm::tiny::TinySpec::default()).map_err(|e| e.to_string())?;
            let r = bench_one(config, "tiny (safetensors)", &tiny.dir, &read.records, rounds, dev)
                .and_then(|_| bench_one(config, "tiny (GGUF Q8_0)", &tiny.gguf, &read.records, rounds, dev));
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
    }
}
