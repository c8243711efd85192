//! The LLM backends on a tiny random Qwen3 that the tests build: written as safetensors and as a
//! Q8_0 GGUF, loaded by the real loading code, run for every role in the pipeline, then served
//! by `serve-model` and used through the OpenAI backend. The weights are noise, so the answers
//! are noise; what is checked is that results stay valid (codes from the edition, choices among
//! the candidates) and that the traces say what ran and what fell back.
mod common;

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};

use jointcoder::agents::knowledge::{self, KnowledgeModels};
use jointcoder::agents::Role;
use jointcoder::llm::candle::{CandleModel, WeightFormat};
use jointcoder::llm::config::{LlmConfig, LoadedModels, ModelSpec};
use jointcoder::llm::openai::Constrain;
use jointcoder::llm::{tiny, ChatMessage, ChatModel, ChatRequest};
use jointcoder::pipeline::{Coding, Pipeline, Stage};
use jointcoder::record::{io, EhrRecord};
use jointcoder::terminology::{Terminology, TerminologyOptions};
use serde_json::{json, Value};

fn terminology() -> Arc<Terminology> {
    static T: OnceLock<Arc<Terminology>> = OnceLock::new();
    T.get_or_init(|| Arc::new(Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap())).clone()
}

fn fixtures() -> Vec<EhrRecord> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/records/cardiology_procedures.json");
    io::read_path(&path).unwrap().records
}

/// The tiny model, written once per test process.
fn tiny_model() -> &'static (tempfile::TempDir, tiny::TinyModel) {
    static M: OnceLock<(tempfile::TempDir, tiny::TinyModel)> = OnceLock::new();
    M.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let records: String = fixtures().iter().map(|r| r.to_flat_json().to_string()).collect();
        let m = tiny::write(dir.path(), &tiny::corpus(&records), &tiny::TinySpec::default()).unwrap();
        (dir, m)
    })
}

fn all_roles_on(name: &str, spec: ModelSpec) -> LlmConfig {
    LlmConfig { models: BTreeMap::from([(name.to_owned(), spec)]), roles: BTreeMap::from([("*".to_owned(), name.to_owned())]), ..Default::default() }
}

fn pipeline_with(cfg: &LlmConfig) -> Pipeline {
    LoadedModels::load(cfg).unwrap().pipeline(cfg, terminology(), &KnowledgeModels::default())
}

/// Every code is in its edition, and every agent stage names the backend and model.
fn assert_valid(c: &Coding, backend: &str, model: &str) {
    let t = terminology();
    for (items, edition) in [(&c.diseases, "icd-10-cn-clinical"), (&c.procedures, "icd-9-cm-3-cn-clinical")] {
        let cs = t.edition(edition, None).unwrap();
        for it in items.iter() {
            let code = it.code.as_deref().expect("mapped items carry a code");
            assert!(cs.get(code).is_some_and(|x| x.selectable), "{code} ({}) is in {edition}", it.name);
        }
    }
    let agents: Vec<_> = c.trace.iter().filter_map(|s| s.agent.as_ref()).collect();
    assert!(agents.len() >= 7, "every role ran");
    for a in agents {
        assert_eq!((a.backend.as_str(), a.model.as_str()), (backend, model), "{:?}", a.role);
        assert!(a.version.starts_with("prompt v"));
    }
}

#[test]
fn tiny_model_loads_from_safetensors_and_gguf_and_obeys_choices() {
    let (_, m) = tiny_model();
    let st = CandleModel::load(&m.dir, Some("tiny".into()), candle_core::Device::Cpu).unwrap();
    let gg = CandleModel::load(&m.gguf, Some("tiny-gguf".into()), candle_core::Device::Cpu).unwrap();
    assert_eq!(st.format, WeightFormat::Safetensors);
    assert_eq!(gg.format, WeightFormat::Gguf);
    let choices = vec![r#"{"name":"冠状动脉粥样硬化性心脏病"}"#.to_string(), r#"{"name":"高血压"}"#.to_string(), r#"{"name":"高血压病"}"#.to_string()];
    let ask = |text: &str, choices: Option<Vec<String>>| ChatRequest {
        messages: vec![ChatMessage::system("你是编码员"), ChatMessage::user(format!("病历：胸痛三天。{text}"))],
        max_tokens: 24,
        choices,
    };
    for model in [&st as &dyn ChatModel, &gg] {
        // A batch sharing its prefix: each answer is one of the choices, whatever the weights.
        let batch = vec![ask("选一个", Some(choices.clone())), ask("再选一个", Some(choices.clone())), ask("自由回答", None)];
        let out = model.complete(&batch);
        assert_eq!(out.len(), 3);
        for r in &out[..2] {
            let c = r.as_ref().unwrap();
            assert!(choices.contains(&c.text), "{}: {:?} is one of the choices", model.id(), c.text);
            assert!(c.completion_tokens > 0 && c.prompt_tokens > 10);
        }
        let free = out[2].as_ref().unwrap();
        assert!(free.completion_tokens > 0 && free.completion_tokens <= 24);
        // Greedy and deterministic: the same request gives the same answer.
        let again = model.complete(&batch[..1]);
        assert_eq!(again[0].as_ref().unwrap().text, out[0].as_ref().unwrap().text);
    }
    // The two formats hold the same weights (Q8_0 rounding aside): the batch prefix and a
    // lone request give the same constrained answer on each.
    let lone = st.complete(&[ask("选一个", Some(choices.clone()))]);
    assert!(choices.contains(&lone[0].as_ref().unwrap().text));
}

#[test]
fn every_role_runs_on_candle_from_safetensors_and_gguf() {
    let (_, m) = tiny_model();
    for (name, path) in [("tiny", m.dir.clone()), ("tiny-gguf", m.gguf.clone())] {
        let cfg = all_roles_on(name, ModelSpec { backend: "candle".into(), path: Some(path), ..Default::default() });
        let p = pipeline_with(&cfg);
        for rec in fixtures() {
            let c = p.code(&rec).unwrap();
            assert_valid(&c, "candle", name);
            // Random verdicts may drop anything, but every drop is on record with its reason.
            for st in &c.trace {
                assert!(st.removed.iter().all(|r| !r.reason.is_empty()), "{:?} {:?}", st.stage, st.track);
            }
            // Prioritization picked a principal among the items it was given.
            let prio = c.trace.iter().find(|s| s.stage == Stage::Prioritize).unwrap();
            let names: HashSet<&str> = prio.input.iter().map(|i| i.name.as_str()).collect();
            assert!(prio.output.iter().all(|i| names.contains(i.name.as_str())), "no item invented");
        }
    }
}

fn start_model_server(key: Option<&str>) -> String {
    let (_, m) = tiny_model();
    let model = Arc::new(CandleModel::load(&m.dir, Some("tiny-served".into()), candle_core::Device::Cpu).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let key = key.map(str::to_owned);
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move { jointcoder::server::model_api::start(model, key, listener).unwrap().await.unwrap() })
    });
    addr
}

fn model_server() -> &'static str {
    static A: OnceLock<String> = OnceLock::new();
    A.get_or_init(|| start_model_server(None))
}

fn openai_spec(addr: &str, constrain: Constrain) -> ModelSpec {
    ModelSpec {
        backend: "openai".into(),
        base_url: Some(format!("http://{addr}/v1")),
        model: Some("tiny-served".into()),
        constrain: Some(constrain),
        retries: Some(1),
        timeout_s: Some(60),
        ..Default::default()
    }
}

#[test]
fn serve_model_speaks_the_openai_api() {
    let addr = model_server();
    let models = common::get(addr, "/v1/models").json();
    assert_eq!(models["data"][0]["id"], "tiny-served");
    let body = json!({ "model": "tiny-served", "messages": [{ "role": "user", "content": "胸痛" }], "max_tokens": 8,
        "guided_choice": ["{\"keep\":true}", "{\"keep\":false}"] });
    let r = common::post_json(addr, "/v1/chat/completions", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content == "{\"keep\":true}" || content == "{\"keep\":false}", "{content}");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let bad = common::post_json(addr, "/v1/chat/completions", r#"{"messages": "not a list"}"#);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("messages"));
    let wrong = common::post_json(addr, "/v1/chat/completions", r#"{"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}"#);
    assert_eq!(wrong.status, 404);
    // With a key, requests without it are refused.
    let locked = start_model_server(Some("s3cret"));
    assert_eq!(common::get(&locked, "/v1/models").status, 401);
}

#[test]
fn every_role_runs_through_serve_model_and_the_openai_backend() {
    let cfg = all_roles_on("remote", openai_spec(model_server(), Constrain::GuidedChoice));
    let p = pipeline_with(&cfg);
    for rec in fixtures() {
        let c = p.code(&rec).unwrap();
        assert_valid(&c, "openai", "tiny-served");
        let notes: Vec<&String> = c.trace.iter().flat_map(|s| &s.notes).collect();
        assert!(!notes.iter().any(|n| n.contains("unusable") || n.contains("llm failed")), "constrained answers are always usable: {notes:?}");
    }
}

#[test]
fn unusable_answers_and_dead_servers_fall_back_to_knowledge_and_say_so() {
    let knowledge_codes = |rec: &EhrRecord| {
        let c = Pipeline::new(terminology(), knowledge::agents(&terminology(), &KnowledgeModels::default())).code(rec).unwrap();
        (c.disease_codes(), c.procedure_codes())
    };
    let rec = fixtures().remove(0);
    // Unconstrained, the random model writes noise: every answer is refused and the knowledge
    // decision stands, with a note per question.
    let noisy = all_roles_on("remote", openai_spec(model_server(), Constrain::None));
    let c = pipeline_with(&noisy).code(&rec).unwrap();
    assert_eq!((c.disease_codes(), c.procedure_codes()), knowledge_codes(&rec));
    let notes: Vec<&String> = c.trace.iter().flat_map(|s| &s.notes).collect();
    assert!(notes.iter().any(|n| n.contains("unusable") && n.contains("knowledge answer kept")), "{notes:?}");

    // Nothing listening: retried, then the same fallback.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let cfg = all_roles_on("gone", ModelSpec { retries: Some(1), ..openai_spec(&dead, Constrain::GuidedChoice) });
    let c = pipeline_with(&cfg).code(&rec).unwrap();
    assert_eq!((c.disease_codes(), c.procedure_codes()), knowledge_codes(&rec));
    assert!(c.trace.iter().flat_map(|s| &s.notes).any(|n| n.contains("llm failed")));
}

#[test]
fn roles_choose_their_backend_one_by_one() {
    let (_, m) = tiny_model();
    let mut cfg = all_roles_on("tiny", ModelSpec { backend: "candle".into(), path: Some(m.dir.clone()), ..Default::default() });
    cfg.roles = LlmConfig::parse_roles("validate-diagnoses=tiny,*=knowledge").unwrap();
    let c = pipeline_with(&cfg).code(&fixtures()[0]).unwrap();
    for s in &c.trace {
        if let Some(a) = &s.agent {
            let want = if a.role == Role::ValidateDiagnoses { "candle" } else { "knowledge" };
            assert_eq!(a.backend, want, "{:?}", a.role);
        }
    }
}

#[test]
fn export_sft_writes_a_chat_file_per_role() {
    let out = tempfile::tempdir().unwrap();
    let p = Pipeline::new(terminology(), knowledge::agents(&terminology(), &KnowledgeModels::default()));
    let counts = jointcoder::sft::export_records(&p, &fixtures(), out.path()).unwrap();
    for role in Role::ALL {
        let n = counts[role.as_str()];
        assert!(n > 0, "{} has examples", role.as_str());
        let text = std::fs::read_to_string(out.path().join(format!("{}.jsonl", role.as_str()))).unwrap();
        assert_eq!(text.lines().count(), n);
        let answer_field = jointcoder::llm::prompts::prompt(role).answer.clone();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let roles: Vec<&str> = v["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
            assert_eq!(roles, ["system", "user", "assistant"]);
            let answer: Value = serde_json::from_str(v["messages"][2]["content"].as_str().unwrap()).unwrap();
            assert!(answer.get(&answer_field).is_some(), "{}: {answer}", role.as_str());
        }
    }
}

#[test]
fn capability_statement_and_provenance_name_the_backend_and_model() {
    let (_, m) = tiny_model();
    let mut config = common::test_config(std::env::temp_dir());
    config.llm = all_roles_on("tiny", ModelSpec { backend: "candle".into(), path: Some(m.gguf.clone()), ..Default::default() });
    config.llm.roles = LlmConfig::parse_roles("validate-diagnoses=tiny").unwrap();
    let t = Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap();
    let server = common::start_server(config, t);
    let meta = common::get(&server.addr, "/fhir/metadata").json();
    let doc = meta["rest"][0]["operation"][0]["documentation"].as_str().unwrap().to_owned();
    assert!(doc.contains("validate-diagnoses: candle (tiny"), "{doc}");
    assert!(doc.contains("validate-procedures: knowledge"), "{doc}");

    let bundle = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requests/discharge-bundle.json")).unwrap();
    let r = common::post_json(&server.addr, "/fhir/Bundle/$code?persist=false", &bundle);
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    common::assert_valid_r4_external(std::slice::from_ref(&b));
    let devices: Vec<&Value> = b["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).filter(|r| r["resourceType"] == "Device").collect();
    let validate = devices.iter().find(|d| d["deviceName"][0]["name"] == "jointcoder validate-diagnoses").expect("a Device for the role");
    let versions: Vec<&str> = validate["version"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert_eq!(&versions[..2], ["candle", "tiny"]);
}

/// A server that fails before it answers: 503, then 429, then a completion. The client retries
/// with backoff and gets the answer. (A scripted loopback server: the real ones cannot be made
/// to fail on cue.)
#[test]
fn openai_backend_retries_overloaded_servers() {
    use jointcoder::llm::openai::{OpenAiModel, OpenAiOptions};
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let served = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = served.clone();
    std::thread::spawn(move || {
        let answers = [
            ("503 Service Unavailable", "{\"error\":{\"message\":\"busy\"}}".to_string()),
            ("429 Too Many Requests", "{\"error\":{\"message\":\"slow down\"}}".to_string()),
            ("200 OK", json!({ "choices": [{ "message": { "role": "assistant", "content": "{\"keep\":true}" } }], "usage": { "prompt_tokens": 5, "completion_tokens": 3 } }).to_string()),
        ];
        for (status, body) in answers {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut request = vec![0; length];
            reader.read_exact(&mut request).unwrap();
            log.lock().unwrap().push(serde_json::from_slice::<Value>(&request).unwrap());
            write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        }
    });
    let options = OpenAiOptions { retries: 3, backoff: std::time::Duration::from_millis(10), api_key: None, ..Default::default() };
    let model = OpenAiModel::new(&format!("http://{addr}/v1"), "coder", options);
    let choices = vec!["{\"keep\":true}".to_string(), "{\"keep\":false}".to_string()];
    let req = ChatRequest { messages: vec![ChatMessage::user("胸痛")], max_tokens: 8, choices: Some(choices.clone()) };
    let out = model.complete(&[req]);
    let c = out[0].as_ref().unwrap();
    assert_eq!(c.text, "{\"keep\":true}");
    assert_eq!((c.prompt_tokens, c.completion_tokens), (5, 3));
    let sent = served.lock().unwrap();
    assert_eq!(sent.len(), 3, "two retries");
    assert_eq!(sent[2]["guided_choice"], json!(choices));
    assert_eq!(sent[2]["temperature"], 0);
}
