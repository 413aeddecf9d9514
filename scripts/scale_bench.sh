#!/usr/bin/env bash
# Real sizes on this machine (issue 17, whitepaper-notes/scale.md): a random checkpoint
# of a real model's config goes through init → split → eval (partial and whole) → select
# → train (ESFT full weights and low-rank adapters, partially resident) → validate, each
# step under /usr/bin/time, and the table of wall time and peak RSS is printed at the end.
#
#   scripts/scale_bench.sh [--preset olmoe-1b-7b] [--layers N] [--work DIR] [--experts 8]
#                          [--skip-whole] [--skip-eval] [--skip-train] [--windows 4]
#                          [--drop-checkpoint] [--cache-gb G] [--skip-esft] [--tokenizer FILE]
#
# --experts: routed experts per layer kept resident (and trained); shared experts (DeepSeek)
# are part of the trunk and always resident. Frozen weights stay bf16 (TESSERA_FROZEN=f32
# in the environment makes them float32, to compare).
# --drop-checkpoint deletes the checkpoint once split (a disk that cannot hold both);
# --skip-whole skips what needs the whole model (eval, select, validate); --cache-gb bounds
# validation's forward caches (its default is half the memory left after loading);
# --skip-esft trains only the adapters (full-weight ESFT takes minutes at these sizes); the
# adapters are trained twice, keeping every layer's activations and recomputing them.
# --tokenizer puts a tokenizer.json into the checkpoint before it is split, and the token
# windows are its ids (otherwise bytes): the library then records it and refuses others.
# Needs a release build (swift build -c release) and ~2.2× the checkpoint's size on disk.
set -euo pipefail
preset=olmoe-1b-7b; layers=""; work=/work/scale; per_layer=8; whole=1; train=1; windows=4; evals=1; drop=0; cache=(); esft=1; tokenizer=""
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --experts) per_layer=$2; shift 2 ;;
    --windows) windows=$2; shift 2 ;;
    --skip-whole) whole=0; shift ;;
    --skip-train) train=0; shift ;;
    --skip-eval) evals=0; shift ;;
    --skip-esft) esft=0; shift ;;
    --drop-checkpoint) drop=1; shift ;;
    --cache-gb) cache=(--cache-gb "$2"); shift 2 ;;
    --tokenizer) tokenizer=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
bin=$PWD/.build/release/tessera
[ -x "$bin" ] || { echo "no release build at $bin: run swift build -c release first" >&2; exit 1; }
name=$preset${layers:+-l$layers}
mkdir -p "$work"; work=$(cd "$work" && pwd)
ckpt=$work/$name; lib=$work/$name-lib; runs=$work/$name-runs; table=$runs/table.md
mkdir -p "$runs"
: > "$table"

# measure LABEL CMD...: runs CMD under /usr/bin/time -v, logs to $runs/LABEL.log, appends
# "| label | wall s | peak RSS GB |" to the table.
measure() {
  local label=$1; shift
  echo "== $label: $*" >&2
  /usr/bin/time -v -o "$runs/$label.time" "$@" > "$runs/$label.log" 2>&1 || { echo "$label failed, see $runs/$label.log" >&2; tail -5 "$runs/$label.log" >&2; return 1; }
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$runs/$label.time" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$runs/$label.time")
  printf '| %s | %.1f s | %.2f GB |\n' "$label" "$wall" "$(echo "$rss * 1024 / 1000000000" | bc -l)" | tee -a "$table" >&2
}

[ -f "$ckpt/config.json" ] || [ -d "$lib" ] || measure init $bin init --preset "$preset" ${layers:+--layers $layers} --dtype bf16 --out "$ckpt"
[ -z "$tokenizer" ] || [ -d "$lib" ] || cp "$tokenizer" "$ckpt/tokenizer.json"
[ -d "$lib" ] || measure split $bin split --model "$ckpt" --library "$lib"
[ -f "$ckpt/config.json" ] && cp "$ckpt/config.json" "$runs/config.json"
[ $drop = 0 ] || rm -rf "$ckpt"
# Layers, routed experts, vocabulary and the first sparse layer (DeepSeek's first are dense).
read -r n_layers n_experts vocab first_sparse < <(python3 -c "import json; c = json.load(open('$runs/config.json'))
print(c['num_hidden_layers'], c.get('num_experts') or c.get('n_routed_experts') or c.get('num_local_experts'),
      c['vocab_size'], c.get('first_k_dense_replace', 0))")

# Token windows: English fortunes, 512 per window, as bytes (ids < 256 fit every
# vocabulary) or as the tokenizer's ids.
text=$work/text${tokenizer:+-$(sha256sum "$tokenizer" | cut -c1-12)}
[ -f "$text/train.safetensors" ] || $bin corpus /usr/share/games/fortunes --out "$text" --seq 512 --held-out-bps 2000 \
  --key-hex 7363616c652d62656e63682d6b65792d686f6c646f7574 ${tokenizer:+--tokenizer "$tokenizer"} > /dev/null
python3 - "$text/heldout.safetensors" "$runs/eval.safetensors" "$windows" <<'EOF'
import json, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(src, 'rb').read()
size = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + size])
meta = header.pop('__metadata__', None)
t = header['input_ids']; rows, seq = t['shape']
a, b = t['data_offsets']
data = raw[8 + size + a: 8 + size + a + min(n, rows) * seq * 8]
out = {'input_ids': {'dtype': 'I64', 'shape': [min(n, rows), seq], 'data_offsets': [0, len(data)]}}
if meta: out['__metadata__'] = meta
h = json.dumps(out).encode(); h += b' ' * (-len(h) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(h)) + h + data)
EOF

# The first PER_LAYER experts of every sparse layer (DeepSeek's first layers are dense).
resident=$(python3 -c "print(','.join(f'{l}:{e}' for l in range($first_sparse, $n_layers) for e in range($per_layer)))")
[ $evals = 0 ] || measure eval-partial $bin eval --model "$lib" --tokens "$runs/eval.safetensors" --resident "$resident" --json
[ $whole = 0 ] || [ $evals = 0 ] || measure eval-whole $bin eval --model "$lib" --tokens "$runs/eval.safetensors" --json

if [ $train = 1 ]; then
  [ -f "$work/contributor.json" ] || $bin keys new --out "$work/contributor.json" > /dev/null
  [ -f "$work/validator.json" ] || $bin keys new --out "$work/validator.json" > /dev/null
  # ESFT's token affinity on the whole model, then the PER_LAYER experts of highest affinity
  # in every layer (random weights route unevenly, so a top-p cut would keep one or two
  # experts in some layers and the budget is stated per layer).
  if [ $whole = 1 ] && [ ! -f "$runs/selection.json" ]; then
    measure select $bin select --library "$lib" --data "$runs/eval.safetensors" --top-p 0.5 --out "$runs/selection.json"
  fi
  python3 - "$runs/selection.json" "$n_layers" "$n_experts" "$per_layer" "$first_sparse" <<'EOF'
import json, os, sys
path, L, E, k, first = sys.argv[1], *map(int, sys.argv[2:])
if os.path.exists(path):
    sel = json.load(open(path))
else:  # no whole-model pass: even affinity, the first PER_LAYER experts
    sel = {"format": "tessera-selection/1", "score": "token", "data_sha256": "0" * 64, "tokens": 0,
           "affinity": [[1 / E] * E for _ in range(L)]}
sel["experts"] = [{"layer": l, "expert": e} for l in range(first, L)
                  for e in sorted(sorted(range(E), key=lambda e: -sel["affinity"][l][e])[:k])]
# Recorded for the file's format only: no single top-p cut yields a fixed count per layer;
# this is the largest share of affinity the chosen experts hold in any layer.
sel["top_p"] = min(1.0, max(sum(sorted(row, reverse=True)[:k]) for row in sel["affinity"]))
json.dump(sel, open(path, "w"))
EOF
  market=$(printf scale-bench | sha256sum | cut -c1-64)
  common=(--library "$lib" --experts "$runs/selection.json" --data "$text/train.safetensors" --key "$work/contributor.json"
          --market "$market" --domain scale --round 1 --steps 1 --batch 1 --warmup 0 --partial --json)
  rm -rf "$runs/esft" "$runs/lora"
  # Full-weight ESFT may be refused before its first step when its optimizer state cannot fit
  # (the refusal says by how much); the adapters still run.
  [ $esft = 0 ] || measure train-esft $bin train "${common[@]}" --lora-rank 0 --out "$runs/esft" || echo "| train-esft | refused | see $runs/train-esft.log |" >> "$table"
  measure train-lora $bin train "${common[@]}" --lora-rank 4 --out "$runs/lora"
  # The same step keeping one layer's activations at a time (recomputed in the backward pass).
  rm -rf "$runs/lora-recompute"
  measure train-lora-recompute $bin train "${common[@]}" --lora-rank 4 --recompute-activations --out "$runs/lora-recompute"
  sed -e 's/^delta_norm_bound = .*/delta_norm_bound = 100.0/' Market/market.toml > "$runs/policy.toml"
  [ $whole = 0 ] || measure validate $bin validate --library "$lib" --heldout "$runs/eval.safetensors" --background "$runs/eval.safetensors" \
    --policy "$runs/policy.toml" --max-windows "$windows" --bundle "$runs/lora" --key "$work/validator.json" --out "$runs/verdicts" --json "${cache[@]}"
fi
echo
echo "$name ($n_layers layers, $n_experts experts, vocabulary $vocab), frozen weights ${TESSERA_FROZEN:-bf16}, $(date -u +%F):"
cat "$table"
