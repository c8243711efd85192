//! Any OpenAI-compatible chat completions server (vLLM, Ollama, llama.cpp server, our own
//! `serve-model`): per-request timeout, retries with exponential backoff on connection errors,
//! 429 and 5xx, a cap on concurrent requests, and constrained answers where the server takes
//! them (`guided_choice`, as vLLM and `serve-model` do) or JSON mode.
//!
//! Plain HTTP: TLS to a remote GPU box ends at the hospital's reverse proxy. The API key comes
//! from the environment (`JOINTCODER_OPENAI_API_KEY`), never from a file in the repository.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::{ChatModel, ChatRequest, Completion, LlmError};

/// How answers are constrained on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Constrain {
    /// `guided_choice`: the answer is exactly one of the allowed strings (vLLM, serve-model).
    GuidedChoice,
    /// `response_format: json_object` (Ollama, llama.cpp, OpenAI): valid JSON, checked here.
    JsonObject,
    /// Nothing sent; the answer is parsed and repaired here.
    None,
}

pub struct OpenAiModel {
    base_url: String,
    model: String,
    api_key: Option<String>,
    constrain: Constrain,
    retries: u32,
    backoff: Duration,
    agent: ureq::Agent,
    slots: Slots,
}

/// A counting semaphore: at most `n` requests in flight to the server.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut free = self.free.lock().expect("slots");
        while *free == 0 {
            free = self.cv.wait(free).expect("slots");
        }
        *free -= 1;
    }
    fn release(&self) {
        *self.free.lock().expect("slots") += 1;
        self.cv.notify_one();
    }
}

pub struct OpenAiOptions {
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub concurrency: usize,
    pub constrain: Constrain,
    pub api_key: Option<String>,
}

impl Default for OpenAiOptions {
    fn default() -> OpenAiOptions {
        OpenAiOptions {
            timeout: Duration::from_secs(60),
            retries: 3,
            backoff: Duration::from_millis(200),
            concurrency: 8,
            constrain: Constrain::GuidedChoice,
            api_key: None,
        }
    }
}

impl OpenAiModel {
    /// `base_url` up to `/v1` (e.g. `http://gpu-box:8000/v1`); `model` as the server names it.
    pub fn new(base_url: &str, model: &str, o: OpenAiOptions) -> OpenAiModel {
        let config = ureq::Agent::config_builder().timeout_global(Some(o.timeout)).http_status_as_error(false).build();
        OpenAiModel {
            base_url: base_url.trim_end_matches('/').to_owned(),
            model: model.to_owned(),
            api_key: o.api_key,
            constrain: o.constrain,
            retries: o.retries,
            backoff: o.backoff,
            agent: ureq::Agent::new_with_config(config),
            slots: Slots { free: Mutex::new(o.concurrency.max(1)), cv: Condvar::new() },
        }
    }

    fn body(&self, req: &ChatRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": req.messages,
            "max_tokens": req.max_tokens.max(1),
            "temperature": 0,
            "stream": false,
            // Qwen3 on vLLM: thinking off, as the local template does.
            "chat_template_kwargs": { "enable_thinking": false }
        });
        match (self.constrain, &req.choices) {
            (Constrain::GuidedChoice, Some(choices)) => body["guided_choice"] = json!(choices),
            (Constrain::JsonObject, _) => body["response_format"] = json!({ "type": "json_object" }),
            _ => {}
        }
        body
    }

    /// One call, with retries on what may pass (connection errors, 429, 5xx).
    fn call(&self, req: &ChatRequest) -> Result<Completion, LlmError> {
        let url = format!("{}/chat/completions", self.base_url);
        let body = self.body(req);
        let mut attempt = 0;
        loop {
            let mut r = self.agent.post(&url).header("Content-Type", "application/json");
            if let Some(key) = &self.api_key {
                r = r.header("Authorization", &format!("Bearer {key}"));
            }
            // (retry?, what to log, what to report): logs never carry a server's answer text,
            // which may echo the prompt and so clinical text.
            let outcome = match r.send_json(&body) {
                Err(e) => Err((true, format!("{url}: {e}"), format!("{url}: {e}"))),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    if status == 200 {
                        parse_completion(&text).map_err(|e| (false, e.clone(), e))
                    } else {
                        let retry = status == 429 || status >= 500;
                        Err((retry, format!("{url}: HTTP {status}"), format!("{url}: HTTP {status}: {}", text.chars().take(300).collect::<String>())))
                    }
                }
            };
            match outcome {
                Ok(c) => return Ok(c),
                Err((retry, log, _)) if retry && attempt < self.retries => {
                    std::thread::sleep(self.backoff * 2u32.pow(attempt));
                    attempt += 1;
                    tracing::warn!(attempt, error = %log, "LLM server call failed; retrying");
                }
                Err((_, _, report)) => return Err(LlmError::Server(report)),
            }
        }
    }
}

fn parse_completion(text: &str) -> Result<Completion, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("the server's answer is not JSON: {e}"))?;
    let content = v["choices"][0]["message"]["content"].as_str().ok_or("the server's answer has no choices[0].message.content")?;
    Ok(Completion {
        text: content.to_owned(),
        prompt_tokens: v["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as usize,
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0) as usize,
    })
}

impl ChatModel for OpenAiModel {
    fn id(&self) -> &str {
        &self.model
    }

    fn backend(&self) -> &'static str {
        "openai"
    }

    /// The batch's requests run concurrently, at most the configured number at a time (the
    /// cap is shared by every batch on this model).
    fn complete(&self, batch: &[ChatRequest]) -> Vec<Result<Completion, LlmError>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .map(|req| {
                    s.spawn(move || {
                        self.slots.acquire();
                        let r = self.call(req);
                        self.slots.release();
                        r
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(LlmError::Server("request thread panicked".into())))).collect()
        })
    }
}
