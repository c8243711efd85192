//! `jointcoder export-sft`: chat-format fine-tuning data, one JSONL file per role, from
//! gold-coded records. Each example is a question the role's LLM agent would ask on that record
//! (built by the same code, on the knowledge pipeline's intermediate states) with the gold
//! answer: the candidate whose code is gold, the gold principal, keep iff the code is gold.
//! Questions whose answer the gold does not settle are left out.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use crate::agents::knowledge;
use crate::agents::{Item, Role};
use crate::config::Config;
use crate::llm::agent::{Question, Questions};
use crate::pipeline::{Pipeline, Stage, StageTrace, Track};
use crate::record::{io, EhrRecord};

/// Examples per role, as written.
pub type Counts = BTreeMap<&'static str, usize>;

fn example(q: &Question, answer: String) -> serde_json::Value {
    let mut messages: Vec<serde_json::Value> = q.request.messages.iter().map(|m| json!({ "role": m.role, "content": m.content })).collect();
    messages.push(json!({ "role": "assistant", "content": answer }));
    json!({ "messages": messages })
}

fn role_of(st: &StageTrace) -> Option<Role> {
    Some(match (st.stage, st.track) {
        (Stage::Standardize, Track::Disease) => Role::StandardizeDiagnosis,
        (Stage::Standardize, Track::Procedure) => Role::StandardizeProcedure,
        (Stage::Mine, _) => Role::MineProcedures,
        (Stage::Prioritize, Track::Disease) => Role::PrioritizeDiagnoses,
        (Stage::Prioritize, Track::Procedure) => Role::PrioritizeProcedures,
        (Stage::Validate, Track::Disease) => Role::ValidateDiagnoses,
        (Stage::Validate, Track::Procedure) => Role::ValidateProcedures,
        _ => return None,
    })
}

/// The examples one record gives, per role.
pub fn record_examples(pipeline: &crate::pipeline::Pipeline, rec: &EhrRecord) -> Result<Vec<(Role, serde_json::Value)>, String> {
    let Some(gold) = &rec.gold else { return Ok(Vec::new()) };
    let coding = pipeline.code(rec).map_err(|e| e.to_string())?;
    let gold_dx: HashSet<&str> = gold.diseases.iter().map(String::as_str).collect();
    let gold_px: HashSet<&str> = gold.procedures.iter().map(String::as_str).collect();
    let dx_first = coding.trace.iter().find(|s| s.track == Track::Disease && s.stage == Stage::Standardize).map(|s| s.output.clone()).unwrap_or_default();
    let mut out = Vec::new();
    for st in &coding.trace {
        let Some(role) = role_of(st) else { continue };
        let (gold_set, principal, edition, other): (&HashSet<&str>, Option<&String>, &str, &[Item]) = match st.track {
            Track::Disease => (&gold_dx, gold.diseases.first(), Track::Disease.national_edition(), &coding.procedures),
            Track::Procedure => (&gold_px, gold.procedures.first(), Track::Procedure.national_edition(), &dx_first),
        };
        if gold_set.is_empty() {
            continue;
        }
        let q = Questions { role, terminology: pipeline.terminology.clone(), edition: edition.into(), k: 8, max_tokens: 48 };
        let is_gold = |it: &Item| it.code.as_deref().is_some_and(|c| gold_set.contains(c));
        let answer = |v: serde_json::Value| q.prompt().answer_json(v);
        match role {
            Role::StandardizeDiagnosis | Role::StandardizeProcedure => {
                for (question, offered) in q.standardize(rec, &st.output) {
                    if let Some((name, _)) = offered.iter().find(|(_, c)| c.as_deref().is_some_and(|c| gold_set.contains(c))) {
                        out.push((role, example(&question, answer(json!(name)))));
                    }
                }
            }
            Role::MineProcedures => {
                for (i, question) in q.mine(rec, &st.input, &st.output) {
                    if st.output[i].code.is_some() {
                        out.push((role, example(&question, answer(json!(is_gold(&st.output[i]))))));
                    }
                }
            }
            Role::PrioritizeDiagnoses | Role::PrioritizeProcedures => {
                if let (Some(question), Some(p)) = (q.prioritize(rec, other, &st.output), principal) {
                    if let Some(it) = st.output.iter().find(|it| it.code.as_deref() == Some(p.as_str())) {
                        out.push((role, example(&question, answer(json!(it.name)))));
                    }
                }
            }
            Role::ValidateDiagnoses | Role::ValidateProcedures => {
                let mut pool = st.output.clone();
                pool.extend(st.removed.iter().map(|r| r.item.clone()));
                for (it, question) in pool.iter().zip(q.validate(rec, other, &pool)) {
                    if it.code.is_some() {
                        out.push((role, example(&question, answer(json!(is_gold(it))))));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Writes `<out>/<role>.jsonl` for every role, and returns how many examples each got.
pub fn export_records(pipeline: &crate::pipeline::Pipeline, records: &[EhrRecord], out: &Path) -> Result<Counts, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut files = BTreeMap::new();
    for role in Role::ALL {
        let path = out.join(format!("{}.jsonl", role.as_str()));
        let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        files.insert(role.as_str(), std::io::BufWriter::new(f));
    }
    let mut counts: Counts = Role::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for rec in records {
        let examples = record_examples(pipeline, rec).map_err(|e| format!("record {}: {e}", rec.record_id))?;
        for (role, ex) in examples {
            let w = files.get_mut(role.as_str()).expect("every role has a file");
            writeln!(w, "{ex}").map_err(|e| format!("{}: {e}", out.display()))?;
            *counts.get_mut(role.as_str()).expect("every role counted") += 1;
        }
    }
    for (_, mut w) in files {
        w.flush().map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(counts)
}

pub fn export(config: &Config, dataset: &Path, out: &Path) -> Result<(), String> {
    let read = io::read_path(dataset).map_err(|e| e.to_string())?;
    for e in &read.errors {
        eprintln!("{}: {e} (skipped)", dataset.display());
    }
    for e in &read.warnings {
        eprintln!("{}: {e} (field skipped, record read)", dataset.display());
    }
    let with_gold: Vec<EhrRecord> = read.records.into_iter().filter(|r| r.gold.is_some()).collect();
    if with_gold.is_empty() {
        return Err(format!("{}: no record has gold codes", dataset.display()));
    }
    // The knowledge pipeline's intermediate states, whatever the roles are configured to use.
    let models = crate::app::models_or_train(config)?;
    let t: Arc<_> = Arc::new(crate::app::open_terminology(config)?);
    let pipeline = Pipeline::new(t.clone(), knowledge::agents(&t, &models));
    let counts = export_records(&pipeline, &with_gold, out)?;
    println!("role\texamples");
    for (role, n) in &counts {
        println!("{role}\t{n}");
    }
    for role in Role::ALL {
        write_model_card(out, role, counts[role.as_str()], with_gold.len())?;
    }
    Ok(())
}

/// A model card stub beside the data: what the role decides and how its data was made.
fn write_model_card(out: &Path, role: Role, examples: usize, records: usize) -> Result<(), String> {
    let p = crate::llm::prompts::prompt(role);
    let text = format!(
        "# jointcoder {role}\n\nFine-tuned from Qwen3-1.7B (or any Qwen3) for the `{role}` role of JointCoder.\n\n\
         - Prompt: `models/prompts/{role}.toml`, version {version}; thinking off.\n\
         - Answer: one JSON object, field `{answer}` (schema in the prompt file).\n\
         - Data: `{role}.jsonl`, {examples} examples from {records} gold-coded records, exported by `jointcoder export-sft`.\n\
         - Intended use: serve with `jointcoder serve-model` or vLLM, and name it for this role in `[llm.roles]`.\n\
         - Evaluation: `jointcoder eval` with this role on the model; report the numbers here.\n",
        role = role.as_str(),
        version = p.version,
        answer = p.answer,
    );
    let path = out.join(format!("{}.md", role.as_str()));
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}
