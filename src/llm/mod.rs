//! Language-model backends for the agent roles: local Qwen3 on candle and any
//! OpenAI-compatible server. A model here only ever chooses among options the caller gives
//! it (candidates from the terminology, keep/drop verdicts); turning that choice into codes is
//! the agent's job (`agent.rs`), so no invented code can reach a result.

pub mod agent;
pub mod candle;
pub mod config;
pub mod constrain;
pub mod openai;
pub mod parse;
pub mod prompts;
pub mod template;
pub mod tiny;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "system".into(), content: content.into() }
    }
    pub fn user(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "user".into(), content: content.into() }
    }
    pub fn assistant(content: impl Into<String>) -> ChatMessage {
        ChatMessage { role: "assistant".into(), content: content.into() }
    }
}

/// One generation: the conversation, and where the answer must be one of a fixed list of
/// strings (the JSON answers a role allows), that list.
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: usize,
    pub choices: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("model files: {0}")]
    Load(String),
    #[error("generation: {0}")]
    Generate(String),
    #[error("server: {0}")]
    Server(String),
    #[error("request: {0}")]
    Request(String),
}

/// A chat model: local or remote. Batches are independent requests that the backend may run
/// together (shared prompt prefix, concurrent HTTP calls); results come back in order.
pub trait ChatModel: Send + Sync {
    /// The model's name, as a Device or `/v1/models` shows it.
    fn id(&self) -> &str;
    /// `candle` or `openai`.
    fn backend(&self) -> &'static str;
    fn complete(&self, batch: &[ChatRequest]) -> Vec<Result<Completion, LlmError>>;
}
