//! `jointcoder serve-model`: a local Qwen3 behind an OpenAI-compatible API
//! (`/v1/chat/completions`, `/v1/models`), so that one GPU box serves the agents of many
//! coding servers. Greedy decoding; `guided_choice` (vLLM's extension) constrains an answer to
//! one of the given strings. Prompts hold clinical text: without `JOINTCODER_MODEL_API_KEY` the
//! server listens on loopback only, and nothing of a prompt is logged.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use crate::llm::candle::{device, CandleModel};
use crate::llm::{ChatMessage, ChatModel, ChatRequest};

struct ModelState {
    model: Arc<CandleModel>,
    api_key: Option<String>,
}

/// OpenAI's error shape.
fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": { "message": message.into(), "type": kind, "code": status.as_u16() } }))
}

fn authorized(req: &HttpRequest, state: &ModelState) -> bool {
    match &state.api_key {
        None => true,
        Some(key) => req.headers().get("Authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.strip_prefix("Bearer ") == Some(key.as_str())),
    }
}

async fn models(req: HttpRequest, state: web::Data<ModelState>) -> HttpResponse {
    if !authorized(&req, &state) {
        return error(StatusCode::UNAUTHORIZED, "authentication_error", "a valid bearer key is required");
    }
    HttpResponse::Ok().json(json!({ "object": "list", "data": [{ "id": state.model.id(), "object": "model", "created": 0, "owned_by": "jointcoder" }] }))
}

/// Message content as text: a string, or an array of `{type: text, text}` parts.
fn content_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(parts.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("")),
        _ => None,
    }
}

fn read_request(body: &Value, served: &str) -> Result<ChatRequest, HttpResponse> {
    let bad = |m: String| error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    if let Some(m) = body["model"].as_str() {
        if m != served {
            return Err(error(StatusCode::NOT_FOUND, "invalid_request_error", format!("model {m} is not served here (this server has {served})")));
        }
    }
    if body["stream"].as_bool() == Some(true) {
        return Err(bad("stream is not supported: send stream=false".into()));
    }
    let messages = body["messages"].as_array().ok_or_else(|| bad("messages must be an array".into()))?;
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m["role"].as_str().ok_or_else(|| bad(format!("messages[{i}].role is missing")))?;
            if !["system", "user", "assistant"].contains(&role) {
                return Err(bad(format!("messages[{i}].role {role} is not system, user or assistant")));
            }
            let content = content_text(&m["content"]).ok_or_else(|| bad(format!("messages[{i}].content is not text")))?;
            Ok(ChatMessage { role: role.to_owned(), content })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if messages.is_empty() {
        return Err(bad("messages is empty".into()));
    }
    let max_tokens = body["max_completion_tokens"].as_u64().or_else(|| body["max_tokens"].as_u64()).unwrap_or(256).min(4096) as usize;
    let choices = match &body["guided_choice"] {
        Value::Null => None,
        Value::Array(a) => Some(a.iter().map(|c| c.as_str().map(str::to_owned).ok_or_else(|| bad("guided_choice must be strings".into()))).collect::<Result<Vec<_>, _>>()?),
        _ => return Err(bad("guided_choice must be an array of strings".into())),
    };
    if choices.as_ref().is_some_and(|c| c.is_empty()) {
        return Err(bad("guided_choice is empty".into()));
    }
    Ok(ChatRequest { messages, max_tokens, choices })
}

async fn chat_completions(req: HttpRequest, state: web::Data<ModelState>, body: web::Bytes) -> HttpResponse {
    if !authorized(&req, &state) {
        return error(StatusCode::UNAUTHORIZED, "authentication_error", "a valid bearer key is required");
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("the body is not JSON: {e}")),
    };
    let request = match read_request(&body, state.model.id()) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let model = state.model.clone();
    let max_tokens = request.max_tokens;
    let result = web::block(move || model.complete(std::slice::from_ref(&request)).pop().expect("one answer")).await;
    match result {
        Ok(Ok(c)) => {
            let finish = if c.completion_tokens >= max_tokens { "length" } else { "stop" };
            HttpResponse::Ok().json(json!({
                "id": format!("chatcmpl-{}", crate::ids::new_uuid()),
                "object": "chat.completion",
                "created": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
                "model": state.model.id(),
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": c.text }, "finish_reason": finish }],
                "usage": { "prompt_tokens": c.prompt_tokens, "completion_tokens": c.completion_tokens, "total_tokens": c.prompt_tokens + c.completion_tokens }
            }))
        }
        Ok(Err(crate::llm::LlmError::Request(m))) => error(StatusCode::BAD_REQUEST, "invalid_request_error", m),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "generation failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e.to_string()),
    }
}

/// Serves `model` on `listener` (tests bind port 0 and pass it here).
pub fn start(model: Arc<CandleModel>, api_key: Option<String>, listener: TcpListener) -> std::io::Result<Server> {
    let state = web::Data::new(ModelState { model, api_key });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(8 * 1024 * 1024))
            .route("/v1/models", web::get().to(models))
            .route("/v1/chat/completions", web::post().to(chat_completions))
    })
    .listen(listener)?
    .run())
}

/// Blocks serving the model at `addr`; with `api_key` (`Config::model_api_key`) clients must
/// send it as a bearer key.
pub fn run(path: &Path, name: Option<String>, addr: &str, device_name: &str, api_key: Option<String>) -> Result<(), String> {
    if api_key.is_none() {
        super::check_bind_allowed(addr).map_err(|e| format!("{e}; or set JOINTCODER_MODEL_API_KEY to require a bearer key"))?;
    }
    let started = std::time::Instant::now();
    let model = CandleModel::load(path, name, device(device_name).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    tracing::info!(model = model.id(), format = ?model.format, elapsed_ms = started.elapsed().as_millis() as u64, "model loaded");
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
    tracing::info!(%addr, "OpenAI-compatible API at http://{addr}/v1");
    actix_web::rt::System::new().block_on(async move { start(Arc::new(model), api_key, listener).map_err(|e| e.to_string())?.await.map_err(|e| e.to_string()) })
}
