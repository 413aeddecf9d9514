#!/usr/bin/env bash
# The ESFT experiment of whitepaper-notes/proof-of-loss.md: on the bundled base model and
# the Spanish domain, train only the ESFT-selected experts and, for the same steps, every
# expert; validate both (and the selected update as a lossy sparse delta) with
# Proof-of-Loss, and print the comparison. Usage: scripts/esft_experiment.sh [WORKDIR] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/tessera-esft}
steps=${2:-100}
bin=.build/release/tessera
mkdir -p "$work"
key=74657373657261206261736520686f6c64           # the base model's public held-out key
secret=657366742d6578706572696d656e742d6b6579     # this experiment's Spanish split key
[ -f "$work/es/heldout.safetensors" ] || $bin corpus /usr/share/games/fortunes/es --out "$work/es" --seq 128 --held-out-bps 2000 --key-hex $secret
[ -f "$work/en/heldout.safetensors" ] || $bin corpus /usr/share/games/fortunes --out "$work/en" --seq 128 --held-out-bps 1000 --key-hex $key
[ -f "$work/contributor.json" ] || $bin keys new --out "$work/contributor.json"
[ -f "$work/validator.json" ] || $bin keys new --out "$work/validator.json"
$bin select --library Experts --data "$work/es/train.safetensors" --max-windows 256 --score token --top-p 0.3 --out "$work/selected.json"
$bin select --library Experts --data "$work/es/train.safetensors" --max-windows 16 --score token --top-p 1 --out "$work/all.json" > /dev/null
common=(--library Experts --data "$work/es/train.safetensors" --key "$work/contributor.json" --steps "$steps" --batch 16 --lr 2e-3 --warmup 10 --seed 7 --json)
$bin train "${common[@]}" --experts "$work/selected.json" --out "$work/selected" --delta lossless > "$work/train-selected.json"
$bin train "${common[@]}" --experts "$work/all.json" --out "$work/all" --delta lossless > "$work/train-all.json"
$bin train "${common[@]}" --experts "$work/selected.json" --out "$work/selected-sparse" --delta sparse --density 0.25 > "$work/train-selected-sparse.json"
for b in selected all selected-sparse; do
  $bin validate --library Experts --heldout "$work/es/heldout.safetensors" --background "$work/en/heldout.safetensors" --max-windows 256 \
    --key "$work/validator.json" --bundle "$work/$b" --out "$work/verdicts-$b" --json > "$work/verdict-$b.json"
done
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
v = {b: json.load(open(f"{w}/verdict-{b}.json"))[0] for b in ["selected", "all", "selected-sparse"]}
t = {b: json.load(open(f"{w}/train-{b}.json")) for b in ["selected", "all", "selected-sparse"]}
bg = sum(v["all"]["background_losses"]["base"]) / len(v["all"]["background_losses"]["base"])
print("| update | experts | trained params | delta bytes | held-out gain (nats/byte) | 95% LCB | background regression | verdict |")
print("|---|---|---|---|---|---|---|---|")
for b in ["selected", "all", "selected-sparse"]:
    x = v[b]
    print(f"| {b} | {len(x['experts'])} | {t[b]['training']['trained_parameters']} | {t[b]['delta_bytes']} | {x['gain']['mean']:.4f} | {x['gain']['lower']:.4f} | {x['regression']['mean']:+.4f} ({100*x['regression']['mean']/bg:+.2f}%) | {'accept' if x['accept'] else 'reject'} |")
print()
print(f"selected/all gain: {v['selected']['gain']['mean']/v['all']['gain']['mean']:.1%}; parameters: {t['selected']['training']['trained_parameters']/t['all']['training']['trained_parameters']:.1%}; sparse delta keeps {v['selected-sparse']['gain']['mean']/v['selected']['gain']['mean']:.1%} of the gain")
PY
