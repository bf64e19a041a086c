//! The architectures the importer converts: which `config.json` `architectures` entry maps
//! to which llama.cpp architecture, the GGUF names of the Hugging Face tensors, the
//! changes some tensors need on the way, and the model's hyperparameters as GGUF metadata.
//!
//! The tables follow llama.cpp's own converter and Ollama's `convert` package: the Llama
//! family (Llama, SmolLM, TinyLlama) and Mistral share llama.cpp's `llama` architecture,
//! whose rotary embedding reads the query and key rows in the original interleaved order,
//! so those two projections are permuted back from the Hugging Face layout; Qwen2, Qwen3,
//! Phi-3 and Gemma keep the Hugging Face order (llama.cpp runs them with NeoX rotation);
//! Gemma stores its RMS norm weights as offsets from 1, llama.cpp as the factors.

use super::gguf::Value;

/// A model's `config.json`, the fields the importer reads.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    pub architectures: Vec<String>,
    pub hidden_size: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub num_hidden_layers: Option<u64>,
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    pub head_dim: Option<u64>,
    pub max_position_embeddings: Option<u64>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    pub rope_scaling: Option<serde_json::Value>,
    pub sliding_window: Option<serde_json::Value>,
    pub bos_token_id: Option<serde_json::Value>,
    pub eos_token_id: Option<serde_json::Value>,
}

/// An architecture the importer converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    /// Llama, SmolLM, TinyLlama (`LlamaForCausalLM`) and Mistral (`MistralForCausalLM`).
    Llama,
    /// Qwen2 and Qwen2.5.
    Qwen2,
    /// Qwen3 (dense).
    Qwen3,
    /// Phi-3 (fused QKV and gate/up projections).
    Phi3,
    /// Gemma (the first generation).
    Gemma,
}

/// The architectures, by their `config.json` name.
pub(crate) const SUPPORTED: [(&str, Arch); 6] = [
    ("LlamaForCausalLM", Arch::Llama),
    ("MistralForCausalLM", Arch::Llama),
    ("Qwen2ForCausalLM", Arch::Qwen2),
    ("Qwen3ForCausalLM", Arch::Qwen3),
    ("Phi3ForCausalLM", Arch::Phi3),
    ("GemmaForCausalLM", Arch::Gemma),
];

/// What a tensor needs on its way to GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// Copied as it is.
    None,
    /// Rows permuted back to interleaved rotary order for `heads` heads.
    Permute { heads: u64 },
    /// One added to every element (Gemma's norms).
    AddOne,
}

/// The hyperparameters the importer needs, with the defaults Hugging Face applies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params {
    pub hidden: u64,
    pub layers: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
}

impl Arch {
    /// The architecture of `config`.
    ///
    /// # Errors
    /// A message naming the architecture when it is missing or unsupported.
    pub(crate) fn of(config: &Config) -> Result<Self, String> {
        let Some(name) = config.architectures.first() else {
            return Err("config.json names no architecture (`architectures` is empty)".to_owned());
        };
        SUPPORTED.iter().find(|(n, _)| n == name).map(|(_, arch)| *arch).ok_or_else(|| {
            let names: Vec<&str> = SUPPORTED.iter().map(|(n, _)| *n).collect();
            format!(
                "architecture {name} is not supported for import; ragd imports {}",
                names.join(", ")
            )
        })
    }

    /// llama.cpp's name of the architecture (`general.architecture`).
    pub(crate) const fn gguf_name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
            Self::Phi3 => "phi3",
            Self::Gemma => "gemma",
        }
    }

    /// The GGUF name of a Hugging Face tensor and what it needs, `None` for tensors
    /// llama.cpp computes itself (`rotary_emb.inv_freq`).
    ///
    /// # Errors
    /// A message for a tensor this architecture does not have.
    pub(crate) fn tensor(
        self,
        name: &str,
        params: &Params,
    ) -> Result<Option<(String, Transform)>, String> {
        if name.ends_with("rotary_emb.inv_freq") {
            return Ok(None);
        }
        let fixed = match name {
            "model.embed_tokens.weight" => Some("token_embd.weight"),
            "model.norm.weight" => Some("output_norm.weight"),
            "lm_head.weight" => Some("output.weight"),
            _ => None,
        };
        let (gguf, part) = if let Some(gguf) = fixed {
            (gguf.to_owned(), name)
        } else {
            let unknown = || format!("tensor {name} is not part of a {} model", self.gguf_name());
            let rest = name.strip_prefix("model.layers.").ok_or_else(unknown)?;
            let (layer, part) = rest.split_once('.').ok_or_else(unknown)?;
            let layer: u64 = layer.parse().map_err(|_| unknown())?;
            let (stem, suffix) = part.rsplit_once('.').ok_or_else(unknown)?;
            if suffix != "weight" && suffix != "bias" {
                return Err(unknown());
            }
            let block = match (self, stem) {
                (_, "input_layernorm") => "attn_norm",
                (_, "post_attention_layernorm") => "ffn_norm",
                (Self::Phi3, "self_attn.qkv_proj") => "attn_qkv",
                (Self::Phi3, "mlp.gate_up_proj") => "ffn_up",
                (Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Gemma, "self_attn.q_proj") => {
                    "attn_q"
                }
                (Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Gemma, "self_attn.k_proj") => {
                    "attn_k"
                }
                (Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Gemma, "self_attn.v_proj") => {
                    "attn_v"
                }
                (_, "self_attn.o_proj") => "attn_output",
                (Self::Qwen3, "self_attn.q_norm") => "attn_q_norm",
                (Self::Qwen3, "self_attn.k_norm") => "attn_k_norm",
                (Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Gemma, "mlp.gate_proj") => {
                    "ffn_gate"
                }
                (Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Gemma, "mlp.up_proj") => "ffn_up",
                (_, "mlp.down_proj") => "ffn_down",
                _ => return Err(unknown()),
            };
            if layer >= params.layers {
                return Err(format!(
                    "tensor {name} is in layer {layer}, but config.json has {} layers",
                    params.layers
                ));
            }
            (format!("blk.{layer}.{block}.{suffix}"), part)
        };
        let transform = match self {
            Self::Llama if part.ends_with("q_proj.weight") => {
                Transform::Permute { heads: params.heads }
            }
            Self::Llama if part.ends_with("k_proj.weight") => {
                Transform::Permute { heads: params.kv_heads }
            }
            Self::Gemma if part.ends_with("norm.weight") => Transform::AddOne,
            Self::Llama | Self::Qwen2 | Self::Qwen3 | Self::Phi3 | Self::Gemma => Transform::None,
        };
        Ok(Some((gguf, transform)))
    }

    /// The architecture's GGUF metadata (`{arch}.*` keys) from `config`.
    ///
    /// # Errors
    /// A message naming a missing field or a setting llama.cpp cannot run (RoPE scaling
    /// other than none or linear).
    pub(crate) fn metadata(
        self,
        config: &Config,
        params: &Params,
    ) -> Result<Vec<(String, Value)>, String> {
        let arch = self.gguf_name();
        let key = |name: &str| format!("{arch}.{name}");
        let u32_of = |v: u64, field: &str| {
            u32::try_from(v).map_err(|_| format!("config.json {field} = {v} is out of range"))
        };
        let context = config.max_position_embeddings.unwrap_or(2048);
        let ffn = config.intermediate_size.ok_or("config.json has no intermediate_size")?;
        let mut meta = vec![
            (key("context_length"), Value::U32(u32_of(context, "max_position_embeddings")?)),
            (key("embedding_length"), Value::U32(u32_of(params.hidden, "hidden_size")?)),
            (key("block_count"), Value::U32(u32_of(params.layers, "num_hidden_layers")?)),
            (key("feed_forward_length"), Value::U32(u32_of(ffn, "intermediate_size")?)),
            (key("attention.head_count"), Value::U32(u32_of(params.heads, "num_attention_heads")?)),
            (
                key("attention.head_count_kv"),
                Value::U32(u32_of(params.kv_heads, "num_key_value_heads")?),
            ),
            (
                key("attention.layer_norm_rms_epsilon"),
                Value::F32(config.rms_norm_eps.unwrap_or(1e-6) as f32),
            ),
            (key("rope.freq_base"), Value::F32(config.rope_theta.unwrap_or(10_000.0) as f32)),
            (key("rope.dimension_count"), Value::U32(u32_of(params.head_dim, "head_dim")?)),
        ];
        if config.head_dim.is_some() {
            let dim = u32_of(params.head_dim, "head_dim")?;
            meta.push((key("attention.key_length"), Value::U32(dim)));
            meta.push((key("attention.value_length"), Value::U32(dim)));
        }
        if let Some(scaling) = config.rope_scaling.as_ref().filter(|s| !s.is_null()) {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let factor = scaling.get("factor").and_then(serde_json::Value::as_f64);
            match (kind, factor) {
                ("default", _) => {}
                ("linear", Some(factor)) => {
                    meta.push((key("rope.scaling.type"), Value::Str("linear".to_owned())));
                    meta.push((key("rope.scaling.factor"), Value::F32(factor as f32)));
                }
                _ => {
                    return Err(format!(
                        "RoPE scaling {scaling} is not supported for import (ragd imports models \
                         without RoPE scaling or with linear scaling)"
                    ));
                }
            }
        }
        let window = config.sliding_window.as_ref().and_then(serde_json::Value::as_u64);
        if let (Self::Phi3, Some(window)) = (self, window) {
            let window = u32_of(window, "sliding_window")?;
            meta.push((key("attention.sliding_window"), Value::U32(window)));
        }
        Ok(meta)
    }
}

impl Params {
    /// The hyperparameters of `config`.
    ///
    /// # Errors
    /// A message naming a missing or inconsistent field.
    pub(crate) fn of(config: &Config) -> Result<Self, String> {
        let hidden = config.hidden_size.ok_or("config.json has no hidden_size")?;
        let layers = config.num_hidden_layers.ok_or("config.json has no num_hidden_layers")?;
        let heads = config.num_attention_heads.ok_or("config.json has no num_attention_heads")?;
        let kv_heads = config.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || layers == 0 {
            return Err(format!(
                "config.json has {layers} layers, {heads} attention heads and {kv_heads} key/value \
                 heads; the heads must be a positive multiple of the key/value heads"
            ));
        }
        let head_dim = config.head_dim.unwrap_or(hidden / heads);
        Ok(Self { hidden, layers, heads, kv_heads, head_dim })
    }
}

/// Permutes the rows of a `[rows, cols]` projection from the Hugging Face rotary layout
/// (the two halves of each head's rotary pairs apart) to llama.cpp's (each pair adjacent):
/// within each head, row `i * 2 + j` of the output is row `j * half + i` of the input.
pub(crate) fn permute(values: &[f32], rows: usize, cols: usize, heads: usize) -> Vec<f32> {
    let per_head = rows / heads;
    let half = per_head / 2;
    let mut out = vec![0.0; values.len()];
    for head in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let from = head * per_head + j * half + i;
                let to = head * per_head + i * 2 + j;
                out[to * cols..(to + 1) * cols]
                    .copy_from_slice(&values[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params { hidden: 8, layers: 2, heads: 2, kv_heads: 1, head_dim: 4 }
    }

    #[test]
    fn llama_tensors_get_gguf_names_and_their_permutation() {
        let p = params();
        let name = |n: &str| Arch::Llama.tensor(n, &p).unwrap();
        assert_eq!(
            name("model.layers.1.self_attn.q_proj.weight"),
            Some(("blk.1.attn_q.weight".to_owned(), Transform::Permute { heads: 2 }))
        );
        assert_eq!(
            name("model.layers.0.self_attn.k_proj.weight"),
            Some(("blk.0.attn_k.weight".to_owned(), Transform::Permute { heads: 1 }))
        );
        assert_eq!(
            name("model.layers.0.mlp.down_proj.weight"),
            Some(("blk.0.ffn_down.weight".to_owned(), Transform::None))
        );
        assert_eq!(name("model.embed_tokens.weight").unwrap().0, "token_embd.weight");
        assert_eq!(name("model.layers.0.self_attn.rotary_emb.inv_freq"), None);
        let err = Arch::Llama.tensor("model.layers.2.mlp.up_proj.weight", &p).unwrap_err();
        assert!(err.contains("2 layers"), "{err}");
        let err = Arch::Llama.tensor("model.vision.patch.weight", &p).unwrap_err();
        assert!(err.contains("not part of a llama model"), "{err}");
    }

    #[test]
    fn other_families_keep_their_order_and_have_their_own_tensors() {
        let p = params();
        assert_eq!(
            Arch::Qwen2.tensor("model.layers.0.self_attn.q_proj.bias", &p).unwrap(),
            Some(("blk.0.attn_q.bias".to_owned(), Transform::None))
        );
        assert_eq!(
            Arch::Qwen3.tensor("model.layers.0.self_attn.k_norm.weight", &p).unwrap().unwrap().0,
            "blk.0.attn_k_norm.weight"
        );
        assert_eq!(
            Arch::Phi3.tensor("model.layers.0.mlp.gate_up_proj.weight", &p).unwrap().unwrap().0,
            "blk.0.ffn_up.weight"
        );
        assert!(Arch::Phi3.tensor("model.layers.0.mlp.gate_proj.weight", &p).is_err());
        assert_eq!(
            Arch::Gemma.tensor("model.norm.weight", &p).unwrap(),
            Some(("output_norm.weight".to_owned(), Transform::AddOne))
        );
    }

    #[test]
    fn architectures_are_named_and_unknown_ones_refused() {
        let config =
            |name: &str| Config { architectures: vec![name.to_owned()], ..Config::default() };
        assert_eq!(Arch::of(&config("MistralForCausalLM")).unwrap(), Arch::Llama);
        let err = Arch::of(&config("GPT2LMHeadModel")).unwrap_err();
        assert!(err.contains("GPT2LMHeadModel is not supported"), "{err}");
        assert!(Arch::of(&Config::default()).is_err());
    }

    #[test]
    fn permutation_interleaves_the_halves_of_each_head() {
        // Two heads of four rows, one column: rows 0..8.
        let rows: Vec<f32> = (0..8).map(|r| r as f32).collect();
        assert_eq!(permute(&rows, 8, 1, 2), vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        // Columns travel with their row.
        let wide: Vec<f32> = (0..4).flat_map(|r| [r as f32, -(r as f32)]).collect();
        let out = permute(&wide, 4, 2, 1);
        assert_eq!(out, vec![0.0, -0.0, 2.0, -2.0, 1.0, -1.0, 3.0, -3.0]);
    }

    #[test]
    fn rope_scaling_other_than_linear_is_refused() {
        let mut config = Config {
            architectures: vec!["LlamaForCausalLM".into()],
            hidden_size: Some(8),
            intermediate_size: Some(16),
            num_hidden_layers: Some(2),
            num_attention_heads: Some(2),
            ..Config::default()
        };
        let p = Params::of(&config).unwrap();
        assert!(Arch::Llama.metadata(&config, &p).is_ok());
        config.rope_scaling = Some(serde_json::json!({"rope_type": "llama3", "factor": 8.0}));
        let err = Arch::Llama.metadata(&config, &p).unwrap_err();
        assert!(err.contains("RoPE scaling"), "{err}");
    }
}
