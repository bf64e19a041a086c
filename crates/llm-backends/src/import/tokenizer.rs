//! The tokenizer of a Hugging Face model folder as GGUF vocabulary metadata.
//!
//! Two kinds, as llama.cpp's converter and Ollama's `convert` read them:
//!
//! - **SentencePiece** (`tokenizer.model`: Llama 2, TinyLlama, Mistral, Phi-3, Gemma): the
//!   pieces, scores and types of the model's protobuf, llama.cpp's `llama` vocabulary;
//! - **byte-level BPE** (`tokenizer.json` only: GPT-2, SmolLM, Llama 3, Qwen): the vocabulary,
//!   added tokens and merges, llama.cpp's `gpt2` vocabulary, with the pre-tokenizer named
//!   from the `tokenizer.json` structure (digits split one by one before GPT-2's rules is
//!   SmolLM's; a `Split` regex is recognised by its SHA-256, the digests Ollama uses).
//!
//! Either way the special tokens (`bos`, `eos`, `unk`, `pad`) and whether BOS is added come
//! from `tokenizer_config.json` (falling back on `config.json`'s ids), and the chat template
//! from `tokenizer_config.json` or `chat_template.jinja`. The token list is padded to the
//! embedding's rows with unused `[PAD{id}]` tokens, as llama.cpp's converter does.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value as Json;

use super::arch::Config;
use super::gguf::Value;

// llama.cpp's token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The `Split` pre-tokenizer regexes llama.cpp has a name for, by the SHA-256 of their
/// concatenation (the table of Ollama's converter).
const KNOWN_SPLITS: [(&str, &str); 4] = [
    ("d98f9631be1e9607a9848c26c1f9eac1aa9fc21ac6ba82a2fc0741af9780a48f", "llama-bpe"),
    ("03df5c5863ad70781dcfdef491ead25140f895fe8010964be0daefe27be32b02", "deepseek-llm"),
    ("21cde974d587f0d54dc8d56b183cc1e6239600172035c68fbd6d4b9f8da0576e", "deepseek-coder"),
    ("1ff7f41064896984db5d1bb6ff64fa4bc29007d08c1b439e505b7392777a319e", "qwen2"),
];

/// A converted vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Vocab {
    /// `llama` (SentencePiece) or `gpt2` (byte-level BPE).
    pub model: &'static str,
    /// llama.cpp's pre-tokenizer name.
    pub pre: String,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub scores: Option<Vec<f32>>,
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub chat_template: Option<String>,
    /// What could not be carried over exactly (logged by the importer).
    pub warnings: Vec<String>,
}

impl Vocab {
    /// The vocabulary of the model folder `dir`, padded to `rows` tokens (the embedding's).
    ///
    /// # Errors
    /// A message for a missing or unsupported tokenizer, or more tokens than `rows`.
    pub(crate) fn read(dir: &Path, config: &Config, rows: u64) -> Result<Self, String> {
        let tokenizer_json = read_json(&dir.join("tokenizer.json"))?;
        let tokenizer_config = read_json(&dir.join("tokenizer_config.json"))?;
        let mut vocab = if dir.join("tokenizer.model").is_file() {
            sentencepiece(&dir.join("tokenizer.model"), tokenizer_json.as_ref())?
        } else if let Some(tokenizer) = &tokenizer_json {
            byte_level_bpe(tokenizer)?
        } else {
            return Err("the folder has neither tokenizer.json nor tokenizer.model".to_owned());
        };
        let rows = usize::try_from(rows).map_err(|_| "the embedding is larger than memory")?;
        if vocab.tokens.len() > rows {
            return Err(format!(
                "the tokenizer has {} tokens but the embedding only {rows} rows",
                vocab.tokens.len()
            ));
        }
        for id in vocab.tokens.len()..rows {
            vocab.tokens.push(format!("[PAD{id}]"));
            vocab.types.push(UNUSED);
            if let Some(scores) = &mut vocab.scores {
                scores.push(-1000.0);
            }
        }
        let ids: HashMap<&str, u32> =
            vocab.tokens.iter().enumerate().map(|(id, t)| (t.as_str(), id as u32)).collect();
        let special = |name: &str| -> Option<u32> {
            let value = tokenizer_config.as_ref()?.get(format!("{name}_token"))?;
            let content = value.as_str().or_else(|| value.get("content")?.as_str())?;
            ids.get(content).copied()
        };
        let config_id = |value: Option<&Json>| -> Option<u32> {
            let value = value?;
            let id = value.as_u64().or_else(|| value.as_array()?.first()?.as_u64())?;
            u32::try_from(id).ok().filter(|id| (*id as usize) < rows)
        };
        vocab.bos = special("bos").or_else(|| config_id(config.bos_token_id.as_ref()));
        vocab.eos = special("eos").or_else(|| config_id(config.eos_token_id.as_ref()));
        vocab.unk = special("unk");
        vocab.pad = special("pad");
        if let Some(add) =
            tokenizer_config.as_ref().and_then(|c| c.get("add_bos_token")).and_then(Json::as_bool)
        {
            vocab.add_bos = add;
        }
        vocab.chat_template = chat_template(dir, tokenizer_config.as_ref())?;
        Ok(vocab)
    }

    /// The `tokenizer.*` metadata.
    pub(crate) fn metadata(&self) -> Vec<(String, Value)> {
        let key = |k: &str| format!("tokenizer.{k}");
        let mut meta = vec![
            (key("ggml.model"), Value::Str(self.model.to_owned())),
            (key("ggml.pre"), Value::Str(self.pre.clone())),
            (key("ggml.tokens"), Value::StrArray(self.tokens.clone())),
            (key("ggml.token_type"), Value::I32Array(self.types.clone())),
        ];
        if let Some(scores) = &self.scores {
            meta.push((key("ggml.scores"), Value::F32Array(scores.clone())));
        }
        if !self.merges.is_empty() {
            meta.push((key("ggml.merges"), Value::StrArray(self.merges.clone())));
        }
        for (name, id) in [
            ("bos_token_id", self.bos),
            ("eos_token_id", self.eos),
            ("unknown_token_id", self.unk),
            ("padding_token_id", self.pad),
        ] {
            if let Some(id) = id {
                meta.push((key(&format!("ggml.{name}")), Value::U32(id)));
            }
        }
        meta.push((key("ggml.add_bos_token"), Value::Bool(self.add_bos)));
        if let Some(template) = &self.chat_template {
            meta.push((key("chat_template"), Value::Str(template.clone())));
        }
        meta
    }
}

/// A JSON file, `None` when it does not exist.
fn read_json(path: &Path) -> Result<Option<Json>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not valid JSON: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The chat template: `tokenizer_config.json`'s `chat_template` (a string, or a list of
/// named templates of which `default` is taken), else `chat_template.jinja`.
fn chat_template(dir: &Path, tokenizer_config: Option<&Json>) -> Result<Option<String>, String> {
    if let Some(template) = tokenizer_config.and_then(|c| c.get("chat_template")) {
        if let Some(text) = template.as_str() {
            return Ok(Some(text.to_owned()));
        }
        let named = template.as_array().and_then(|list| {
            list.iter()
                .find(|t| t.get("name").and_then(Json::as_str) == Some("default"))
                .and_then(|t| t.get("template")?.as_str())
        });
        if let Some(text) = named {
            return Ok(Some(text.to_owned()));
        }
    }
    match std::fs::read_to_string(dir.join("chat_template.jinja")) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read chat_template.jinja: {e}")),
    }
}

/// The added tokens of `tokenizer.json`: (id, content, special).
fn added_tokens(tokenizer: &Json) -> Vec<(usize, String, bool)> {
    tokenizer
        .get("added_tokens")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|t| {
                    let id = usize::try_from(t.get("id")?.as_u64()?).ok()?;
                    let content = t.get("content")?.as_str()?.to_owned();
                    let special = t.get("special").and_then(Json::as_bool).unwrap_or(false);
                    Some((id, content, special))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Puts token `content` at `id`, growing the lists with unused placeholders.
fn place(tokens: &mut Vec<String>, types: &mut Vec<i32>, id: usize, content: String, ty: i32) {
    while tokens.len() <= id {
        tokens.push(format!("[PAD{}]", tokens.len()));
        types.push(UNUSED);
    }
    tokens[id] = content;
    types[id] = ty;
}

/// A byte-level BPE `tokenizer.json`.
fn byte_level_bpe(tokenizer: &Json) -> Result<Vocab, String> {
    let model = tokenizer.get("model").ok_or("tokenizer.json has no model")?;
    let kind = model.get("type").and_then(Json::as_str).unwrap_or("");
    if kind != "BPE" {
        return Err(format!(
            "tokenizer.json holds a {kind} tokenizer; ragd imports byte-level BPE tokenizers and \
             SentencePiece models (tokenizer.model)"
        ));
    }
    let parts = pre_tokenizers(tokenizer.get("pre_tokenizer"));
    let byte_level =
        parts.iter().any(|p| p.get("type").and_then(Json::as_str) == Some("ByteLevel"));
    if !byte_level {
        return Err("tokenizer.json is a BPE tokenizer that is not byte-level (a SentencePiece \
                    conversion); the folder needs its tokenizer.model"
            .to_owned());
    }
    let vocab =
        model.get("vocab").and_then(Json::as_object).ok_or("tokenizer.json has no vocab")?;
    let mut tokens = Vec::new();
    let mut types = Vec::new();
    for (content, id) in vocab {
        let id = id
            .as_u64()
            .and_then(|id| usize::try_from(id).ok())
            .ok_or("a token id is not a number")?;
        if id > 10_000_000 {
            return Err(format!("token id {id} is out of range"));
        }
        place(&mut tokens, &mut types, id, content.clone(), NORMAL);
    }
    for (id, content, special) in added_tokens(tokenizer) {
        place(&mut tokens, &mut types, id, content, if special { CONTROL } else { USER_DEFINED });
    }
    let merges = model
        .get("merges")
        .and_then(Json::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| match m {
                    Json::String(s) => Some(s.clone()),
                    Json::Array(pair) => {
                        let words: Vec<&str> = pair.iter().filter_map(Json::as_str).collect();
                        Some(words.join(" "))
                    }
                    Json::Null | Json::Bool(_) | Json::Number(_) | Json::Object(_) => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let (pre, warning) = pre_name(&parts);
    let add_bos = tokenizer.pointer("/post_processor/single/0/SpecialToken").is_some();
    Ok(Vocab {
        model: "gpt2",
        pre,
        tokens,
        types,
        scores: None,
        merges,
        bos: None,
        eos: None,
        unk: None,
        pad: None,
        add_bos,
        chat_template: None,
        warnings: warning.into_iter().collect(),
    })
}

/// The pre-tokenizers, a `Sequence` flattened.
fn pre_tokenizers(pre: Option<&Json>) -> Vec<&Json> {
    match pre {
        Some(p) if p.get("type").and_then(Json::as_str) == Some("Sequence") => p
            .get("pretokenizers")
            .and_then(Json::as_array)
            .map(|list| list.iter().collect())
            .unwrap_or_default(),
        Some(Json::Null) | None => Vec::new(),
        Some(p) => vec![p],
    }
}

/// llama.cpp's name of the pre-tokenizer, and a warning when it is not recognised.
fn pre_name(parts: &[&Json]) -> (String, Option<String>) {
    let ty = |p: &Json| p.get("type").and_then(Json::as_str).unwrap_or("").to_owned();
    let splits: Vec<&str> = parts
        .iter()
        .filter(|p| ty(p) == "Split")
        .filter_map(|p| p.pointer("/pattern/Regex").and_then(Json::as_str))
        .collect();
    if splits.is_empty() {
        let digits = parts.iter().any(|p| {
            ty(p) == "Digits" && p.get("individual_digits").and_then(Json::as_bool) == Some(true)
        });
        let gpt2_rules = parts.iter().any(|p| {
            ty(p) == "ByteLevel" && p.get("use_regex").and_then(Json::as_bool) != Some(false)
        });
        return match (digits, gpt2_rules) {
            (true, true) => ("smollm".to_owned(), None),
            (false, true) => ("gpt-2".to_owned(), None),
            (true | false, false) => ("default".to_owned(), None),
        };
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, splits.concat().as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    match KNOWN_SPLITS.iter().find(|(known, _)| *known == hex) {
        Some((_, name)) => ((*name).to_owned(), None),
        None => (
            "default".to_owned(),
            Some(format!(
                "the tokenizer's pre-tokenizer (digest {hex}) is not one llama.cpp names; \
                 text is split with llama.cpp's default rules, which may tokenize some text \
                 differently from the original"
            )),
        ),
    }
}

/// A SentencePiece `tokenizer.model`, with the added tokens of `tokenizer.json`.
fn sentencepiece(path: &Path, tokenizer: Option<&Json>) -> Result<Vocab, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let pieces = spm_pieces(&bytes)
        .ok_or_else(|| format!("{} is not a SentencePiece model", path.display()))?;
    if pieces.is_empty() {
        return Err(format!("{} has no pieces", path.display()));
    }
    let mut tokens = Vec::with_capacity(pieces.len());
    let mut types = Vec::with_capacity(pieces.len());
    let mut scores = Vec::with_capacity(pieces.len());
    for (piece, score, ty) in pieces {
        tokens.push(piece);
        scores.push(score);
        types.push(ty);
    }
    if let Some(tokenizer) = tokenizer {
        for (id, content, special) in added_tokens(tokenizer) {
            if id >= tokens.len() {
                scores.resize(id + 1, -1000.0);
            }
            place(
                &mut tokens,
                &mut types,
                id,
                content,
                if special { CONTROL } else { USER_DEFINED },
            );
        }
        scores.resize(tokens.len(), -1000.0);
    }
    Ok(Vocab {
        model: "llama",
        pre: "default".to_owned(),
        tokens,
        types,
        scores: Some(scores),
        merges: Vec::new(),
        bos: None,
        eos: None,
        unk: None,
        pad: None,
        add_bos: true,
        chat_template: None,
        warnings: Vec::new(),
    })
}

/// The pieces (text, score, type) of a SentencePiece `ModelProto`: field 1, each a message
/// with `piece` (1, string), `score` (2, float) and `type` (3, enum, default normal).
fn spm_pieces(bytes: &[u8]) -> Option<Vec<(String, f32, i32)>> {
    let mut pieces = Vec::new();
    let mut reader = Proto { bytes, pos: 0 };
    while let Some((field, value)) = reader.next()? {
        if let (1, Field::Bytes(message)) = (field, value) {
            let mut inner = Proto { bytes: message, pos: 0 };
            let (mut piece, mut score, mut ty) = (None, 0.0, NORMAL);
            while let Some((field, value)) = inner.next()? {
                match (field, value) {
                    (1, Field::Bytes(text)) => piece = Some(String::from_utf8(text.to_vec()).ok()?),
                    (2, Field::Fixed32(bits)) => score = f32::from_bits(bits),
                    (3, Field::Varint(v)) => ty = i32::try_from(v).ok()?,
                    _ => {}
                }
            }
            pieces.push((piece?, score, ty));
        }
    }
    Some(pieces)
}

/// A protobuf field's value.
enum Field<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A protobuf wire-format reader.
struct Proto<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Proto<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(slice)
    }

    /// The next field, `Some(None)` at the end, `None` for malformed input.
    fn next(&mut self) -> Option<Option<(u64, Field<'a>)>> {
        if self.pos == self.bytes.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Json {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn smollm_and_gpt2_pre_tokenizers_are_recognised_by_structure() {
        let smollm = json(
            r#"{"type":"Sequence","pretokenizers":[{"type":"Digits","individual_digits":true},
                {"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}]}"#,
        );
        assert_eq!(pre_name(&pre_tokenizers(Some(&smollm))).0, "smollm");
        let gpt2 = json(r#"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#);
        assert_eq!(pre_name(&pre_tokenizers(Some(&gpt2))).0, "gpt-2");
        let unknown = json(
            r#"{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"x+"}},{"type":"ByteLevel","use_regex":false}]}"#,
        );
        let (name, warning) = pre_name(&pre_tokenizers(Some(&unknown)));
        assert_eq!(name, "default");
        assert!(warning.unwrap().contains("not one llama.cpp names"));
    }

    #[test]
    fn a_bpe_tokenizer_becomes_a_gpt2_vocabulary() {
        let tokenizer = json(
            r#"{"added_tokens":[{"id":3,"content":"<|end|>","special":true}],
                "pre_tokenizer":{"type":"ByteLevel","use_regex":true},
                "model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":[["a","b"]]}}"#,
        );
        let vocab = byte_level_bpe(&tokenizer).unwrap();
        assert_eq!(vocab.tokens, vec!["a", "b", "ab", "<|end|>"]);
        assert_eq!(vocab.types, vec![NORMAL, NORMAL, NORMAL, CONTROL]);
        assert_eq!(vocab.merges, vec!["a b"]);
        let wordpiece = json(r#"{"model":{"type":"WordPiece","vocab":{}}}"#);
        assert!(byte_level_bpe(&wordpiece).unwrap_err().contains("WordPiece"));
    }

    #[test]
    fn sentencepiece_pieces_are_read_from_the_protobuf() {
        // Two pieces: ("<unk>", 0.0, 2) and ("▁a", -1.5, normal by default), then a
        // trainer spec (field 2) that is skipped.
        let piece = |text: &str, score: f32, ty: Option<u8>| {
            let mut m = vec![0x0a, text.len() as u8];
            m.extend_from_slice(text.as_bytes());
            m.push(0x15);
            m.extend_from_slice(&score.to_le_bytes());
            if let Some(ty) = ty {
                m.extend_from_slice(&[0x18, ty]);
            }
            let mut field = vec![0x0a, m.len() as u8];
            field.extend(m);
            field
        };
        let mut bytes = piece("<unk>", 0.0, Some(2));
        bytes.extend(piece("▁a", -1.5, None));
        bytes.extend_from_slice(&[0x12, 0x02, 0x08, 0x01]);
        let pieces = spm_pieces(&bytes).unwrap();
        assert_eq!(pieces, vec![("<unk>".to_owned(), 0.0, 2), ("▁a".to_owned(), -1.5, NORMAL)]);
        assert!(spm_pieces(&bytes[..bytes.len() - 1]).is_none(), "truncated input is refused");
    }
}
