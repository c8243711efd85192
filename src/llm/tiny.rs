//! A tiny random Qwen3 and a tiny byte-level BPE tokenizer, written to disk in the formats real
//! models come in (config.json + tokenizer.json + model.safetensors, and a Q8_0 GGUF). Tests
//! and `jointcoder bench llm` load them through the same code as real weights: the answers are
//! noise, the machinery is not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde_json::json;

use super::template::{END_OF_TEXT, IM_END, IM_START};
use super::LlmError;

/// Sizes of the tiny model: small enough to build in milliseconds, shaped like Qwen3 (grouped
/// KV heads, q/k norms, tied embeddings), and Q8_0-quantizable (rows a multiple of 32).
pub struct TinySpec {
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub merges: usize,
    pub max_positions: usize,
    pub seed: u64,
}

impl Default for TinySpec {
    fn default() -> TinySpec {
        TinySpec { hidden: 64, intermediate: 128, layers: 2, heads: 2, kv_heads: 1, head_dim: 32, merges: 200, max_positions: 8192, seed: 7 }
    }
}

/// Text the tokenizer's merges are learned from: the role prompts and the answer shapes (and,
/// from callers, record text), so that the tiny tokenizer splits Chinese clinical text into
/// multi-byte pieces as a real one does.
pub fn corpus(extra: &str) -> String {
    let mut s = String::new();
    for role in crate::agents::Role::ALL {
        let p = super::prompts::prompt(role);
        for part in [&p.system, &p.context, &p.question] {
            s.push_str(part);
            s.push('\n');
        }
        s.push_str(&p.answer_json(json!(true)));
        s.push_str(&p.answer_json(json!(false)));
    }
    s.push_str(extra);
    s
}

/// Paths of a written tiny model.
pub struct TinyModel {
    /// config.json, tokenizer.json, model.safetensors.
    pub dir: PathBuf,
    /// model-q8_0.gguf in its own directory, with tokenizer.json beside it.
    pub gguf: PathBuf,
    pub vocab_size: usize,
}

/// GPT-2's byte → printable character map, as byte-level BPE vocabularies use it.
fn byte_chars() -> Vec<char> {
    let mut bs: Vec<u32> = ('!' as u32..='~' as u32).chain('¡' as u32..='¬' as u32).chain('®' as u32..='ÿ' as u32).collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    let mut map = vec![' '; 256];
    for (b, c) in bs.iter().zip(cs) {
        map[*b as usize] = char::from_u32(c).expect("valid char");
    }
    map
}

/// Rough GPT-2 pre-split: runs of letters (CJK included), digits, other symbols, whitespace.
fn words(text: &str) -> Vec<String> {
    let class = |c: char| if c.is_alphabetic() { 0 } else if c.is_numeric() { 1 } else if c.is_whitespace() { 2 } else { 3 };
    let mut out: Vec<String> = Vec::new();
    let mut last = None;
    for c in text.chars() {
        let k = class(c);
        if Some(k) == last {
            out.last_mut().expect("started").push(c);
        } else {
            out.push(c.to_string());
        }
        last = Some(k);
    }
    out
}

/// Byte-level BPE merges learned from `corpus` (most frequent pair first, ties by text).
fn learn_merges(corpus: &str, n: usize) -> Vec<(String, String)> {
    let map = byte_chars();
    let mut counts: HashMap<Vec<String>, usize> = HashMap::new();
    for w in words(corpus) {
        let symbols: Vec<String> = w.bytes().map(|b| map[b as usize].to_string()).collect();
        *counts.entry(symbols).or_default() += 1;
    }
    let mut merges = Vec::new();
    for _ in 0..n {
        let mut pairs: HashMap<(String, String), usize> = HashMap::new();
        for (w, c) in &counts {
            for p in w.windows(2) {
                *pairs.entry((p[0].clone(), p[1].clone())).or_default() += c;
            }
        }
        let Some((best, count)) = pairs.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0))) else { break };
        if count < 2 {
            break;
        }
        let merged = format!("{}{}", best.0, best.1);
        counts = counts
            .into_iter()
            .map(|(w, c)| {
                let mut out = Vec::with_capacity(w.len());
                let mut i = 0;
                while i < w.len() {
                    if i + 1 < w.len() && w[i] == best.0 && w[i + 1] == best.1 {
                        out.push(merged.clone());
                        i += 2;
                    } else {
                        out.push(w[i].clone());
                        i += 1;
                    }
                }
                (out, c)
            })
            .collect();
        merges.push(best);
    }
    merges
}

/// tokenizer.json of a byte-level BPE: 256 byte tokens, the learned merges, and the three
/// Qwen chat special tokens last. Returns the JSON and the vocabulary size.
pub fn tokenizer_json(corpus: &str, merges: usize) -> (serde_json::Value, usize) {
    let map = byte_chars();
    let mut vocab: Vec<String> = (0..256).map(|b| map[b].to_string()).collect();
    let merges = learn_merges(corpus, merges);
    for (a, b) in &merges {
        let m = format!("{a}{b}");
        if !vocab.contains(&m) {
            vocab.push(m);
        }
    }
    let vocab_map: serde_json::Map<String, serde_json::Value> = vocab.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    let specials: Vec<serde_json::Value> = [END_OF_TEXT, IM_START, IM_END]
        .iter()
        .enumerate()
        .map(|(i, t)| json!({ "id": vocab.len() + i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }))
        .collect();
    let byte_level = json!({ "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true });
    let size = vocab.len() + specials.len();
    let tok = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": specials,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab_map,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()
        }
    });
    (tok, size)
}

/// Deterministic uniform noise in ±`scale` (SplitMix64): the weights need no quality, only
/// reproducibility.
fn noise(n: usize, seed: &mut u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let z = crate::ids::splitmix(*seed);
            *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn err(e: impl std::fmt::Display) -> LlmError {
    LlmError::Load(e.to_string())
}

/// Writes the tiny model under `root`: `root/qwen3-tiny/` (safetensors) and
/// `root/qwen3-tiny-gguf/model-q8_0.gguf`. The tokenizer's merges are learned from `corpus`.
pub fn write(root: &Path, corpus: &str, spec: &TinySpec) -> Result<TinyModel, LlmError> {
    let dir = root.join("qwen3-tiny");
    let gguf_dir = root.join("qwen3-tiny-gguf");
    std::fs::create_dir_all(&dir).map_err(err)?;
    std::fs::create_dir_all(&gguf_dir).map_err(err)?;
    let (tokenizer, vocab_size) = tokenizer_json(corpus, spec.merges);
    let tok_text = serde_json::to_string(&tokenizer).map_err(err)?;
    std::fs::write(dir.join("tokenizer.json"), &tok_text).map_err(err)?;
    std::fs::write(gguf_dir.join("tokenizer.json"), &tok_text).map_err(err)?;
    let config = json!({
        "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
        "vocab_size": vocab_size, "hidden_size": spec.hidden, "intermediate_size": spec.intermediate,
        "num_hidden_layers": spec.layers, "num_attention_heads": spec.heads, "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim, "attention_bias": false, "max_position_embeddings": spec.max_positions,
        "sliding_window": null, "max_window_layers": spec.layers, "tie_word_embeddings": true,
        "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6, "use_sliding_window": false, "hidden_act": "silu",
        "torch_dtype": "float32", "bos_token_id": vocab_size - 3, "eos_token_id": vocab_size - 1
    });
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).map_err(err)?).map_err(err)?;

    let dev = Device::Cpu;
    let mut seed = spec.seed;
    let mut hf: HashMap<String, Tensor> = HashMap::new();
    let mut gg: Vec<(String, QTensor)> = Vec::new();
    let mut add = |hf_name: String, gg_name: String, shape: &[usize], norm: bool, seed: &mut u64| -> Result<(), LlmError> {
        let n: usize = shape.iter().product();
        let data = if norm { vec![1.0f32; n] } else { noise(n, seed, 0.08) };
        let t = Tensor::from_vec(data, shape, &dev).map_err(err)?;
        let kind = if norm || shape.len() < 2 { GgmlDType::F32 } else { GgmlDType::Q8_0 };
        gg.push((gg_name, QTensor::quantize(&t, kind).map_err(err)?));
        hf.insert(hf_name, t);
        Ok(())
    };
    let (h, q, kv, i) = (spec.hidden, spec.heads * spec.head_dim, spec.kv_heads * spec.head_dim, spec.intermediate);
    add("model.embed_tokens.weight".into(), "token_embd.weight".into(), &[vocab_size, h], false, &mut seed)?;
    for l in 0..spec.layers {
        let p = format!("model.layers.{l}");
        let b = format!("blk.{l}");
        add(format!("{p}.self_attn.q_proj.weight"), format!("{b}.attn_q.weight"), &[q, h], false, &mut seed)?;
        add(format!("{p}.self_attn.k_proj.weight"), format!("{b}.attn_k.weight"), &[kv, h], false, &mut seed)?;
        add(format!("{p}.self_attn.v_proj.weight"), format!("{b}.attn_v.weight"), &[kv, h], false, &mut seed)?;
        add(format!("{p}.self_attn.o_proj.weight"), format!("{b}.attn_output.weight"), &[h, q], false, &mut seed)?;
        add(format!("{p}.self_attn.q_norm.weight"), format!("{b}.attn_q_norm.weight"), &[spec.head_dim], true, &mut seed)?;
        add(format!("{p}.self_attn.k_norm.weight"), format!("{b}.attn_k_norm.weight"), &[spec.head_dim], true, &mut seed)?;
        add(format!("{p}.mlp.gate_proj.weight"), format!("{b}.ffn_gate.weight"), &[i, h], false, &mut seed)?;
        add(format!("{p}.mlp.up_proj.weight"), format!("{b}.ffn_up.weight"), &[i, h], false, &mut seed)?;
        add(format!("{p}.mlp.down_proj.weight"), format!("{b}.ffn_down.weight"), &[h, i], false, &mut seed)?;
        add(format!("{p}.input_layernorm.weight"), format!("{b}.attn_norm.weight"), &[h], true, &mut seed)?;
        add(format!("{p}.post_attention_layernorm.weight"), format!("{b}.ffn_norm.weight"), &[h], true, &mut seed)?;
    }
    add("model.norm.weight".into(), "output_norm.weight".into(), &[h], true, &mut seed)?;
    candle_core::safetensors::save(&hf, dir.join("model.safetensors")).map_err(err)?;

    let u32v = |v: usize| gguf_file::Value::U32(v as u32);
    let metadata: Vec<(&str, gguf_file::Value)> = vec![
        ("general.architecture", gguf_file::Value::String("qwen3".into())),
        ("general.dtype", u32v(0)),
        ("qwen3.attention.head_count", u32v(spec.heads)),
        ("qwen3.attention.head_count_kv", u32v(spec.kv_heads)),
        ("qwen3.attention.key_length", u32v(spec.head_dim)),
        ("qwen3.block_count", u32v(spec.layers)),
        ("qwen3.embedding_length", u32v(h)),
        ("qwen3.context_length", u32v(spec.max_positions)),
        ("qwen3.attention.layer_norm_rms_epsilon", gguf_file::Value::F32(1e-6)),
        ("qwen3.rope.freq_base", gguf_file::Value::F32(1_000_000.0)),
    ];
    let gguf = gguf_dir.join("model-q8_0.gguf");
    let mut file = std::fs::File::create(&gguf).map_err(err)?;
    let md: Vec<(&str, &gguf_file::Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = gg.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &md, &ts).map_err(err)?;
    Ok(TinyModel { dir, gguf, vocab_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_are_learned_and_the_tokenizer_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = "冠状动脉粥样硬化性心脏病 冠状动脉支架置入 冠状动脉造影 {\"answer\": \"是\"}";
        let (tok, size) = tokenizer_json(corpus, 50);
        assert!(size > 259, "merges were learned: {size}");
        let path = dir.path().join("tokenizer.json");
        std::fs::write(&path, tok.to_string()).unwrap();
        let t = tokenizers::Tokenizer::from_file(&path).unwrap();
        let text = "<|im_start|>user\n冠状动脉造影<|im_end|>";
        let ids = t.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(ids[0], t.token_to_id("<|im_start|>").unwrap(), "special tokens stay whole");
        // Learned merges make the repeated phrase shorter than its 18 bytes.
        let phrase = t.encode("冠状动脉造影", false).unwrap().get_ids().len();
        assert!(phrase < 18, "{phrase} tokens");
        assert_eq!(t.decode(&ids, false).unwrap(), text);
    }
}
