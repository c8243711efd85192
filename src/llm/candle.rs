//! Qwen3 on candle: a local directory (`config.json`, `tokenizer.json`, safetensors shards) or
//! a quantized GGUF file (with `tokenizer.json` beside it). Greedy decoding with the model's
//! KV cache; answers constrained to the caller's options where given. The weights are loaded
//! once: every request works on a clone of the loaded network, which shares the weight
//! tensors and owns only its KV cache.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{qwen3, quantized_qwen3};
use tokenizers::Tokenizer;

use super::constrain::{argmax, ChoiceConstraint};
use super::template::{render, END_OF_TEXT, IM_END};
use super::{ChatModel, ChatRequest, Completion, LlmError};

#[derive(Clone)]
enum Net {
    Full(qwen3::ModelForCausalLM),
    Quantized(quantized_qwen3::ModelWeights),
}

impl Net {
    /// Logits for the position after `ids`, which start at `offset` in the sequence.
    fn forward(&mut self, ids: &[u32], offset: usize, device: &Device) -> candle_core::Result<Vec<f32>> {
        let input = Tensor::new(ids, device)?.unsqueeze(0)?;
        let logits = match self {
            Net::Full(m) => m.forward(&input, offset)?,
            Net::Quantized(m) => m.forward(&input, offset)?,
        };
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}

pub struct CandleModel {
    id: String,
    tokenizer: Tokenizer,
    net: Net,
    device: Device,
    end_tokens: Vec<u32>,
    max_positions: usize,
    pub format: WeightFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    Safetensors,
    Gguf,
}

/// `cpu`, or `cuda` / `cuda:N` when built with the `cuda` feature.
pub fn device(name: &str) -> Result<Device, LlmError> {
    match name {
        "" | "cpu" => Ok(Device::Cpu),
        n if n.starts_with("cuda") => {
            let ordinal = n.strip_prefix("cuda").and_then(|s| s.strip_prefix(':')).map(|s| s.parse::<usize>()).transpose().map_err(|e| LlmError::Load(format!("device {n}: {e}")))?;
            Device::new_cuda(ordinal.unwrap_or(0)).map_err(|e| LlmError::Load(format!("device {n}: {e} (build with --features cuda)")))
        }
        other => Err(LlmError::Load(format!("unknown device {other}: use cpu or cuda:N"))),
    }
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> LlmError {
    LlmError::Load(format!("{}: {e}", path.display()))
}

impl CandleModel {
    /// Loads from a model directory or a `.gguf` file. `id` names the model in answers and
    /// Provenance; by default the directory or file name.
    pub fn load(path: &Path, id: Option<String>, device: Device) -> Result<CandleModel, LlmError> {
        let gguf = if path.is_file() {
            Some(path.to_path_buf())
        } else {
            if !files_with_extension(path, "safetensors")?.is_empty() {
                None
            } else {
                Some(single_gguf(path)?)
            }
        };
        let dir = if path.is_file() { path.parent().unwrap_or(Path::new(".")).to_path_buf() } else { path.to_path_buf() };
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| load_err(&tokenizer_path, e))?;
        let end_tokens: Vec<u32> = [IM_END, END_OF_TEXT].iter().filter_map(|t| tokenizer.token_to_id(t)).collect();
        if end_tokens.is_empty() {
            return Err(load_err(&tokenizer_path, "the tokenizer has neither <|im_end|> nor <|endoftext|>"));
        }
        let id = id.unwrap_or_else(|| path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "qwen3".into()));
        let (net, max_positions, format) = match gguf {
            Some(file) => {
                let mut reader = std::fs::File::open(&file).map_err(|e| load_err(&file, e))?;
                let content = candle_core::quantized::gguf_file::Content::read(&mut reader).map_err(|e| load_err(&file, e))?;
                let max = content.metadata.get("qwen3.context_length").and_then(|v| v.to_u32().ok()).unwrap_or(4096) as usize;
                let weights = quantized_qwen3::ModelWeights::from_gguf(content, &mut reader, &device).map_err(|e| load_err(&file, e))?;
                (Net::Quantized(weights), max, WeightFormat::Gguf)
            }
            None => {
                let config_path = dir.join("config.json");
                let text = std::fs::read_to_string(&config_path).map_err(|e| load_err(&config_path, e))?;
                let config: qwen3::Config = serde_json::from_str(&text).map_err(|e| load_err(&config_path, e))?;
                let shards = safetensor_shards(&dir)?;
                let dtype = if device.is_cpu() { DType::F32 } else { DType::BF16 };
                // Safety: the shards are memory-mapped read-only; the files must not change
                // while the model is loaded (the hospital's model directory).
                let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards, dtype, &device) }.map_err(|e| load_err(&dir, e))?;
                let model = qwen3::ModelForCausalLM::new(&config, vb).map_err(|e| load_err(&dir, e))?;
                (Net::Full(model), config.max_position_embeddings, WeightFormat::Safetensors)
            }
        };
        Ok(CandleModel { id, tokenizer, net, device, end_tokens, max_positions, format })
    }

    fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.tokenizer.encode(text, false).map(|e| e.get_ids().to_vec()).map_err(|e| LlmError::Generate(format!("tokenizer: {e}")))
    }

    /// Greedy decoding from a network whose KV cache already holds `prompt[..done]`.
    fn decode(&self, mut net: Net, prompt: &[u32], done: usize, req: &ChatRequest, forward_us: &mut u64) -> Result<Completion, LlmError> {
        let gen = |e: candle_core::Error| LlmError::Generate(e.to_string());
        let mut constraint = match &req.choices {
            Some(choices) => {
                let c = ChoiceConstraint::new(choices.iter().map(|s| self.encode(s)).collect::<Result<_, _>>()?);
                if c.is_empty() {
                    return Err(LlmError::Request("an empty list of choices".into()));
                }
                Some(c)
            }
            None => None,
        };
        let t = Instant::now();
        let mut logits = net.forward(&prompt[done..], done, &self.device).map_err(gen)?;
        *forward_us += t.elapsed().as_micros() as u64;
        let mut pos = prompt.len();
        let mut out: Vec<u32> = Vec::new();
        let limit = req.max_tokens.max(1);
        while out.len() < limit && pos < self.max_positions {
            let next = match &constraint {
                Some(c) => match c.pick(&logits, &self.end_tokens) {
                    Some(t) => t,
                    None => break,
                },
                None => {
                    let t = argmax(&logits);
                    if self.end_tokens.contains(&t) {
                        break;
                    }
                    t
                }
            };
            out.push(next);
            if let Some(c) = constraint.as_mut() {
                c.push(next);
                if matches!(c.next(), super::constrain::Next::Done) {
                    break;
                }
            }
            let t = Instant::now();
            logits = net.forward(&[next], pos, &self.device).map_err(gen)?;
            *forward_us += t.elapsed().as_micros() as u64;
            pos += 1;
        }
        let text = self.tokenizer.decode(&out, true).map_err(|e| LlmError::Generate(format!("tokenizer: {e}")))?;
        Ok(Completion { text, prompt_tokens: prompt.len(), completion_tokens: out.len() })
    }

    /// The batch, with the prompt prefix all requests share computed once: the role's
    /// instructions and the record come first in every per-item prompt, so only each item's
    /// own tail and answer are computed per item. Also returns what the network did: time in
    /// its forward passes, and the tokens it was fed.
    pub fn complete_timed(&self, batch: &[ChatRequest]) -> (Vec<Result<Completion, LlmError>>, ForwardStats) {
        let mut forward_us = 0u64;
        let prompts: Vec<Result<Vec<u32>, LlmError>> = batch.iter().map(|r| self.encode(&render(&r.messages))).collect();
        let ok: Vec<&Vec<u32>> = prompts.iter().filter_map(|p| p.as_ref().ok()).collect();
        // Keep at least one token of every prompt outside the prefix: its logits start decoding.
        let shared = match ok.split_first() {
            Some((first, rest)) if !rest.is_empty() => {
                let lcp = rest.iter().map(|p| first.iter().zip(p.iter()).take_while(|(a, b)| a == b).count()).min().unwrap_or(0);
                lcp.min(ok.iter().map(|p| p.len()).min().unwrap_or(1).saturating_sub(1))
            }
            _ => 0,
        };
        let mut base = self.net.clone();
        if shared > 0 {
            let t = Instant::now();
            if let Err(e) = base.forward(&ok[0][..shared], 0, &self.device) {
                let msg = e.to_string();
                return (batch.iter().map(|_| Err(LlmError::Generate(msg.clone()))).collect(), ForwardStats::default());
            }
            forward_us += t.elapsed().as_micros() as u64;
        }
        let mut fed = shared;
        let results: Vec<Result<Completion, LlmError>> = prompts
            .into_iter()
            .zip(batch)
            .map(|(prompt, req)| {
                let prompt = prompt?;
                if prompt.len() >= self.max_positions {
                    return Err(LlmError::Request(format!("prompt of {} tokens exceeds the model's {} positions", prompt.len(), self.max_positions)));
                }
                let c = self.decode(base.clone(), &prompt, shared, req, &mut forward_us)?;
                fed += prompt.len() - shared + c.completion_tokens;
                Ok(c)
            })
            .collect();
        (results, ForwardStats { forward_us, tokens: fed })
    }
}

/// What the network itself did for a batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardStats {
    pub forward_us: u64,
    /// Tokens fed through forward passes (a shared prefix once).
    pub tokens: usize,
}

impl ChatModel for CandleModel {
    fn id(&self) -> &str {
        &self.id
    }

    fn backend(&self) -> &'static str {
        "candle"
    }

    fn complete(&self, batch: &[ChatRequest]) -> Vec<Result<Completion, LlmError>> {
        self.complete_timed(batch).0
    }
}

/// The files in `dir` named `*.{ext}`, sorted.
fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, LlmError> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(|e| load_err(dir, e))?.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == ext)).collect();
    files.sort();
    Ok(files)
}

fn single_gguf(dir: &Path) -> Result<PathBuf, LlmError> {
    let ggufs = files_with_extension(dir, "gguf")?;
    match ggufs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(load_err(dir, "no *.safetensors and no *.gguf here")),
        _ => Err(load_err(dir, "several *.gguf files: name one")),
    }
}

/// The shards named by `model.safetensors.index.json`, or every `*.safetensors` file.
fn safetensor_shards(dir: &Path) -> Result<Vec<PathBuf>, LlmError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| load_err(&index, e))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| load_err(&index, e))?;
        let mut files: Vec<String> = v["weight_map"].as_object().map(|m| m.values().filter_map(|f| f.as_str().map(str::to_owned)).collect()).unwrap_or_default();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    files_with_extension(dir, "safetensors")
}
