#!/usr/bin/env bash
# Encoding speed side by side with Hugging Face tokenizers, one thread each, the same text
# and tokenizer.json, with a check that both give the same ids.
#   scripts/tokenizer_bench.sh TOKENIZER_JSON TEXT_FILE [PYTHON]   (PYTHON with tokenizers installed)
set -euo pipefail
tok=$1; text=$2; py=${3:-python3}
cd "$(dirname "$0")/.."
bin=$PWD/.build/release/tessera
[ -x "$bin" ] || { echo "no release build at $bin: run swift build -c release first" >&2; exit 1; }
mine=$(mktemp)
trap 'rm -f "$mine"' EXIT
echo -n "tessera:    "; "$bin" tokenize --tokenizer "$tok" --text "$text" --time 2>&1 >"$mine"
RAYON_NUM_THREADS=1 "$py" - "$tok" "$text" "$mine" <<'PY'
import sys, time
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
s = open(sys.argv[2], encoding="utf-8", newline="").read()
t0 = time.perf_counter(); ids = t.encode(s).ids; t1 = time.perf_counter()
n = len(s.encode())
print(f"tokenizers: {len(ids)} ids in {t1 - t0:.3f} s, {n / (t1 - t0) / 1e6:.2f} MB/s")
mine = [int(x) for x in open(sys.argv[3]).read().split()]
print("same ids:", mine == ids)
PY
