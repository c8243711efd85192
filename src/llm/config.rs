//! Which model serves which role. Models are named once and loaded once; roles that name the
//! same model share its weights. In the config file:
//!
//! ```toml
//! [llm.models.qwen-local]
//! backend = "candle"
//! path = "/models/qwen3-1.7b"        # a directory (safetensors) or a .gguf file
//! device = "cpu"                     # or cuda:0 (built with --features cuda)
//!
//! [llm.models.gpu-box]
//! backend = "openai"
//! base_url = "http://gpu-box:8000/v1"
//! model = "jointcoder-validate"
//!
//! [llm.roles]
//! validate-diagnoses = "gpu-box"
//! "*" = "knowledge"                  # every role not named
//! ```
//!
//! The environment says the same in one line each: `JOINTCODER_LLM_MODELS=
//! "qwen-local=candle:/models/qwen3;gpu-box=openai:http://gpu-box:8000/v1#model"` and
//! `JOINTCODER_LLM_ROLES="*=qwen-local,standardize-diagnosis=knowledge"`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::agent::{LlmAgent, Questions};
use super::candle::{device, CandleModel};
use super::openai::{Constrain, OpenAiModel, OpenAiOptions};
use super::{ChatModel, LlmError};
use crate::agents::{Agent, Role};
use crate::pipeline::Agents;
use crate::terminology::Terminology;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    #[serde(default)]
    pub models: BTreeMap<String, ModelSpec>,
    /// Role name (or `*`) → model name, or `knowledge`.
    #[serde(default)]
    pub roles: BTreeMap<String, String>,
    /// The bearer key for OpenAI-compatible servers (`JOINTCODER_OPENAI_API_KEY`, environment
    /// only: never from a file, never written out).
    #[serde(skip)]
    pub api_key: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// `candle` or `openai`.
    pub backend: String,
    /// candle: a model directory or a `.gguf` file.
    pub path: Option<PathBuf>,
    /// candle: `cpu` (default) or `cuda:N`.
    pub device: Option<String>,
    /// openai: the server's base URL, up to `/v1`.
    pub base_url: Option<String>,
    /// openai: the model name the server knows.
    pub model: Option<String>,
    pub timeout_s: Option<u64>,
    pub retries: Option<u32>,
    pub concurrency: Option<usize>,
    /// openai: `guided_choice` (default), `json_object` or `none`.
    pub constrain: Option<Constrain>,
    /// Most tokens an answer may take (default 48: the answers are one short JSON object).
    pub max_tokens: Option<usize>,
    /// Candidates offered per item when standardizing (default 8).
    pub candidates: Option<usize>,
}

impl LlmConfig {
    pub fn is_empty(&self) -> bool {
        self.roles.values().all(|m| m == "knowledge")
    }

    /// `name=candle:/path;name=openai:http://host/v1#model`.
    pub fn parse_models(text: &str) -> Result<BTreeMap<String, ModelSpec>, String> {
        let mut out = BTreeMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rest) = part.split_once('=').ok_or_else(|| format!("{part}: expected name=backend:location"))?;
            let (backend, location) = rest.split_once(':').ok_or_else(|| format!("{part}: expected backend:location"))?;
            let spec = match backend {
                "candle" => ModelSpec { backend: "candle".into(), path: Some(PathBuf::from(location)), ..Default::default() },
                "openai" => {
                    let (url, model) = location.split_once('#').ok_or_else(|| format!("{part}: openai needs url#model"))?;
                    ModelSpec { backend: "openai".into(), base_url: Some(url.into()), model: Some(model.into()), ..Default::default() }
                }
                other => return Err(format!("{part}: unknown backend {other} (candle or openai)")),
            };
            out.insert(name.trim().to_owned(), spec);
        }
        Ok(out)
    }

    /// `*=name,role=name`.
    pub fn parse_roles(text: &str) -> Result<BTreeMap<String, String>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map(|(r, m)| (r.trim().to_owned(), m.trim().to_owned())).ok_or_else(|| format!("{p}: expected role=model")))
            .collect()
    }

    /// The model name for a role: its own entry, else `*`, else knowledge.
    pub fn model_for(&self, role: Role) -> &str {
        self.roles.get(role.as_str()).or_else(|| self.roles.get("*")).map(String::as_str).unwrap_or("knowledge")
    }

    /// Every role and model name is known: checked at start, before anything loads.
    pub fn check(&self) -> Result<(), String> {
        for (role, model) in &self.roles {
            if role != "*" && !Role::ALL.iter().any(|r| r.as_str() == role) {
                return Err(format!("llm.roles: unknown role {role} (roles: {})", Role::ALL.map(|r| r.as_str()).join(", ")));
            }
            if model != "knowledge" && !self.models.contains_key(model) {
                return Err(format!("llm.roles: {role} names model {model}, which llm.models does not define"));
            }
        }
        for (name, spec) in &self.models {
            match spec.backend.as_str() {
                "candle" if spec.path.is_none() => return Err(format!("llm.models.{name}: candle needs path")),
                "openai" if spec.base_url.is_none() || spec.model.is_none() => return Err(format!("llm.models.{name}: openai needs base_url and model")),
                "candle" | "openai" => {}
                other => return Err(format!("llm.models.{name}: unknown backend {other} (candle or openai)")),
            }
        }
        Ok(())
    }
}

/// The models the roles use, loaded once.
#[derive(Clone, Default)]
pub struct LoadedModels {
    models: HashMap<String, (Arc<dyn ChatModel>, ModelSpec)>,
}

impl LoadedModels {
    pub fn load(cfg: &LlmConfig) -> Result<LoadedModels, LlmError> {
        cfg.check().map_err(LlmError::Load)?;
        let mut models = HashMap::new();
        for role in Role::ALL {
            let name = cfg.model_for(role);
            if name == "knowledge" || models.contains_key(name) {
                continue;
            }
            let spec = cfg.models[name].clone();
            let model: Arc<dyn ChatModel> = match spec.backend.as_str() {
                "candle" => {
                    let path = spec.path.clone().expect("checked");
                    Arc::new(CandleModel::load(&path, Some(name.to_owned()), device(spec.device.as_deref().unwrap_or("cpu"))?)?)
                }
                _ => {
                    let mut o = OpenAiOptions { api_key: cfg.api_key.clone(), ..OpenAiOptions::default() };
                    if let Some(t) = spec.timeout_s {
                        o.timeout = Duration::from_secs(t);
                    }
                    if let Some(r) = spec.retries {
                        o.retries = r;
                    }
                    if let Some(c) = spec.concurrency {
                        o.concurrency = c;
                    }
                    if let Some(c) = spec.constrain {
                        o.constrain = c;
                    }
                    Arc::new(OpenAiModel::new(spec.base_url.as_deref().expect("checked"), spec.model.as_deref().expect("checked"), o))
                }
            };
            tracing::info!(model = name, backend = %spec.backend, "LLM model ready");
            models.insert(name.to_owned(), (model, spec));
        }
        Ok(LoadedModels { models })
    }

    /// One model already loaded (benchmarks wrap it to meter it).
    pub fn single(name: &str, model: Arc<dyn ChatModel>, spec: ModelSpec) -> LoadedModels {
        LoadedModels { models: HashMap::from([(name.to_owned(), (model, spec))]) }
    }

    /// The pipeline with the knowledge agents, and the configured roles on their models.
    pub fn pipeline(&self, cfg: &LlmConfig, t: Arc<Terminology>, knowledge: &crate::agents::knowledge::KnowledgeModels) -> crate::pipeline::Pipeline {
        let agents = self.apply(cfg, crate::agents::knowledge::agents(&t, knowledge), &t);
        crate::pipeline::Pipeline::new(t, agents)
    }

    /// Wraps the roles configured for a model; the others stay on `knowledge`.
    pub fn apply(&self, cfg: &LlmConfig, knowledge: Agents, t: &Arc<Terminology>) -> Agents {
        let mut agents = knowledge;
        for role in Role::ALL {
            let Some((model, spec)) = self.models.get(cfg.model_for(role)) else { continue };
            let slot = agents.get_mut(role);
            let edition = role.track().national_edition();
            let wrapped: Arc<dyn Agent> = Arc::new(LlmAgent {
                questions: Questions { role, terminology: t.clone(), edition: edition.into(), k: spec.candidates.unwrap_or(8), max_tokens: spec.max_tokens.unwrap_or(48) },
                model: model.clone(),
                fallback: slot.clone(),
            });
            *slot = wrapped;
        }
        agents
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_models_from_one_line_each() {
        let models = LlmConfig::parse_models("local=candle:/m/qwen3;box=openai:http://gpu:8000/v1#coder").unwrap();
        assert_eq!(models["local"].path.as_deref(), Some(std::path::Path::new("/m/qwen3")));
        assert_eq!(models["box"].model.as_deref(), Some("coder"));
        let roles = LlmConfig::parse_roles("*=local, validate-diagnoses=box, standardize-diagnosis=knowledge").unwrap();
        let cfg = LlmConfig { models, roles, ..Default::default() };
        cfg.check().unwrap();
        assert_eq!(cfg.model_for(Role::ValidateDiagnoses), "box");
        assert_eq!(cfg.model_for(Role::MineProcedures), "local");
        assert_eq!(cfg.model_for(Role::StandardizeDiagnosis), "knowledge");
        let bad = LlmConfig { roles: LlmConfig::parse_roles("validate=box").unwrap(), ..cfg.clone() };
        assert!(bad.check().unwrap_err().contains("unknown role validate"));
        let missing = LlmConfig { roles: LlmConfig::parse_roles("*=nowhere").unwrap(), ..cfg };
        assert!(missing.check().unwrap_err().contains("nowhere"));
    }
}
