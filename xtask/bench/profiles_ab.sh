#!/usr/bin/env bash
# A/B of two cargo profiles of the serving build on the Rust-heavy paths, the binaries of
# both taking turns (docs/BUILD.md, "The serving build with cross-crate thin LTO"):
#
# - vector search: `bench_search` (ragd-vector-store's example) loads N rows, builds ragd's
#   IVF_HNSW_SQ index and answers 200 queries; then the `pylance` wheel answers the same
#   queries on that index, as a control for the machine's drift between turns;
# - chunking: `bench_chunk` (ragd-ingest's example) chunks TEXT with MiniLM's tokenizer.
#
# usage: profiles_ab.sh PROFILE_A PROFILE_B TEXT [ROUNDS]
#
# TEXT is made when missing: the regression corpus's text files (`cargo xtask test` fetches
# them into the target directory) one after another, repeated up to 20 MB.
#
# Needs both builds (`cargo build --profile P --workspace --bins --examples`, or
# `XTASK_SERVING_PROFILE=P cargo xtask bench search`, which also writes the search data
# this reads), the bench venv and the assets. SIZES (default "10000 100000") picks the
# table sizes. Prints one line per turn; raw results and each run's stderr go to
# $PROFILES_AB_OUT (default /tmp/profiles-ab).
set -euo pipefail
usage="usage: profiles_ab.sh PROFILE_A PROFILE_B TEXT [ROUNDS]"
a=${1:?$usage} b=${2:?$usage} text=$(realpath -m -- "${3:?$usage}") rounds=${4:-3}
target=${CARGO_TARGET_DIR:-$HOME/.cache/ragd/target}
data=$target/ragd-bench/search/data
python=${XTASK_BENCH_VENV:-$HOME/.cache/ragd/bench-venv}/bin/python
tokenizer=${RAGD_ASSETS_DIR:-$HOME/.cache/ragd/assets}/all-minilm-l6-v2/tokenizer.json
out=$(realpath -m -- "${PROFILES_AB_OUT:-/tmp/profiles-ab}")
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
cd "$root"
for profile in "$a" "$b"; do
  for example in bench_search bench_chunk; do
    [ -x "$target/$profile/examples/$example" ] ||
      { echo "missing $target/$profile/examples/$example: build the profile first" >&2; exit 1; }
  done
done
if [ ! -f "$text" ]; then
  python3 - "$target/ragd-corpus" "$text" <<'PY'
import glob, sys
parts = [open(f, encoding="utf-8", errors="replace").read() for f in sorted(glob.glob(sys.argv[1] + "/*.txt"))]
if not parts:
    sys.exit(f"no text files in {sys.argv[1]}")
out, size = [], 0
while size < 20_000_000:
    out.append(parts[len(out) % len(parts)])
    size += len(out[-1].encode())
open(sys.argv[2], "w", encoding="utf-8").write("\n\n".join(out))
PY
fi
field() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval('r' + sys.argv[2]))" "$@"; }
for round in $(seq 1 "$rounds"); do
  order="$a $b"
  [ $((round % 2)) = 0 ] && order="$b $a"
  for profile in $order; do
    for n in ${SIZES:-10000 100000}; do
      db=$out/db-$profile
      rm -rf "$db"
      env -i PATH="$PATH" HOME="$HOME" OMP_WAIT_POLICY=PASSIVE \
        "$target/$profile/examples/bench_search" --data "$data" --n "$n" --queries 200 \
        --flat-queries 20 --db "$db" --keep-db 2>"$out/search-$profile-$n-$round.log" |
        tail -1 >"$out/search-$profile-$n-$round.json"
      ef=$(field "$out/search-$profile-$n-$round.json" "['ef']")
      env -i PATH="$PATH" HOME="$HOME" OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 \
        "$python" xtask/bench/search.py lance --dir "$data" --n "$n" --queries 200 --ef "$ef" \
        --table "$db/chunks.lance" 2>"$out/pylance-$profile-$n-$round.log" | tail -1 \
        >"$out/pylance-$profile-$n-$round.json"
      rm -rf "$db"
      echo "round $round $profile search n=$n:" \
        "ann p50 $(field "$out/search-$profile-$n-$round.json" "['ann']['p50_ms']") ms," \
        "index $(field "$out/search-$profile-$n-$round.json" "['index_s']") s," \
        "load $(field "$out/search-$profile-$n-$round.json" "['load_s']") s;" \
        "pylance p50 $(field "$out/pylance-$profile-$n-$round.json" "['p50_ms']") ms"
    done
    env -i PATH="$PATH" HOME="$HOME" "$target/$profile/examples/bench_chunk" \
      --tokenizer "$tokenizer" --text "$text" 2>"$out/chunk-$profile-$round.log" |
      tail -1 >"$out/chunk-$profile-$round.json"
    echo "round $round $profile chunk: $(cat "$out/chunk-$profile-$round.json")"
  done
done
