#!/usr/bin/env bash
# The ESFT experiment of whitepaper-notes/proof-of-loss.md and library.md: on the bundled
# base model and one domain of Market/domains/, train only the ESFT-selected experts and,
# for the same steps, every expert; then the same selection through low-rank adapters
# (LoRA), with and without weight decay on their factors (the default of tessera train);
# validate every update with Proof-of-Loss as submitted (lossless, and re-encoded as sparse
# and low-rank deltas), and print the comparison and the size/gain curve.
# Runs from any folder; the defaults are the settings the notes report.
#
#   scripts/esft_experiment.sh [--work DIR] [--domain es] [--steps 100] [--density 0.5]
#                              [--replay 0.75] [--top-p 0.4] [--text PATH]
#
# Needs a release build (swift build -c release) and the domain's text package.
set -euo pipefail
work=/tmp/tessera-esft; domain=es; steps=100; density=0.5; replay=0.75; top_p=0.4; text=""
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --domain) domain=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --density) density=$2; shift 2 ;;
    --replay) replay=$2; shift 2 ;;
    --top-p) top_p=$2; shift 2 ;;
    --text) text=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$work"
work=$(cd "$work" && pwd)        # relative to where it was called from, before the cd below
[ -z "$text" ] || text=$(cd "$(dirname "$text")" && pwd)/$(basename "$text")
cd "$(dirname "$0")/.."
bin=$PWD/.build/release/tessera
[ -x "$bin" ] || { echo "no release build at $bin: run swift build -c release first" >&2; exit 1; }
domain_file=Market/domains/$domain.toml
[ -f "$domain_file" ] || { echo "no domain $domain: $(ls Market/domains | sed 's/.toml//' | tr '\n' ' ')" >&2; exit 1; }
[ -n "$text" ] || text=$(sed -n 's/^text = "\(.*\)"/\1/p' "$domain_file")
started=$(date +%s)
step() { echo "[$(( $(date +%s) - started )) s] $*" >&2; }

key=74657373657261206261736520686f6c64           # the base model's public held-out key
secret=657366742d6578706572696d656e742d6b6579     # this experiment's domain split key
d="$work/$domain"
step "corpora: $domain text from $text (20% held out by the experiment's key), English background"
[ -f "$d/heldout.safetensors" ] || $bin corpus "$text" --out "$d" --seq 128 --held-out-bps 2000 --key-hex $secret > /dev/null
[ -f "$work/en/heldout.safetensors" ] || $bin corpus /usr/share/games/fortunes --out "$work/en" --seq 128 --held-out-bps 1000 --key-hex $key > /dev/null
[ -f "$work/contributor.json" ] || $bin keys new --out "$work/contributor.json" > /dev/null
[ -f "$work/validator.json" ] || $bin keys new --out "$work/validator.json" > /dev/null
step "selection: ESFT token ratio at p = $top_p on 256 windows"
$bin select --library Experts --data "$d/train.safetensors" --max-windows 256 --score token --top-p "$top_p" --out "$d-selected.json" >&2
$bin select --library Experts --data "$d/train.safetensors" --max-windows 16 --score token --top-p 1 --out "$d-all.json" > /dev/null
# Contributors rehearse English (REPLAY of the windows), as the demo does.
common=(--library Experts --data "$d/train.safetensors" --replay "$work/en/train.safetensors" --replay-share "$replay"
        --market "$(printf esft-experiment | sha256sum | cut -c1-64)" --domain "$domain" --round 1
        --key "$work/contributor.json" --steps "$steps" --batch 16 --warmup 10 --seed 7 --json)
# The experiment measures every update, so the policy's guards (norm bound, background
# tolerance) are opened wide here; the table reports the figures they would judge.
sed -e 's/^delta_norm_bound = .*/delta_norm_bound = 100.0/' -e 's/^background_tolerance_micronats = .*/background_tolerance_micronats = 1_000_000_000/' \
  Market/market.toml > "$work/experiment-policy.toml"
market_id=$(printf esft-experiment | sha256sum | cut -c1-64)
train() {   # NAME [train options...]: trains the selected experts into $d-run/NAME
  local name=$1; shift
  step "training $name ($steps steps)"
  $bin train "${common[@]}" --experts "$d-selected.json" --out "$d-run/$name" "$@" > "$d-run-train-$name.json"
}
reencode() {   # SOURCE NAME [delta encode options...]: the source bundle's updates, re-encoded and re-signed
  local src=$d-run/$1 name=$2; shift 2
  rm -rf "$d-run/$name" "$d-run/$name.deltas"; mkdir -p "$d-run/$name.deltas"
  local args=()
  while read -r l e f; do
    $bin delta encode --library Experts --expert "$l:$e" --from "$src/$f" --out "$d-run/$name.deltas/$l-$e.safetensors" "$@" --json > /dev/null
    args+=(--delta "$d-run/$name.deltas/$l-$e.safetensors")
  done < <(python3 -c "import json,sys; [print(x['layer'], x['expert'], x['delta']['file']) for x in json.load(open(sys.argv[1]))['experts']]" "$src/bundle.json")
  $bin bundle create --key "$work/contributor.json" --library Experts --market "$market_id" --domain "$domain" --round 1 "${args[@]}" --out "$d-run/$name" > /dev/null
  rm -rf "$d-run/$name.deltas"
}
lora_lr_low=5e-3; lora_lr=1e-2
train selected --delta lossless --lora-rank 0 --lr 1e-3 --weight-decay 0
step "training every expert the text routes to ($steps steps, lossless delta)"
$bin train "${common[@]}" --experts "$d-all.json" --out "$d-run/all" --delta lossless --lora-rank 0 --lr 1e-3 --weight-decay 0 > "$d-run-train-all.json"
train lora4-lr$lora_lr_low --delta lossless --lora-rank 4 --lr $lora_lr_low --weight-decay 0
train lora4-lr$lora_lr --delta lossless --lora-rank 4 --lr $lora_lr --weight-decay 0
train lora2-lr$lora_lr --delta lossless --lora-rank 2 --lr $lora_lr --weight-decay 0
# Weight decay on the adapters' factors (decoupled, AdamW): the defaults of tessera train
# (rank 4, lr 1.5e-2, decay 2, 4-bit factors) and two neighbours; submitted as they come out.
train default
train lora4-lr2e-2-wd3 --lora-rank 4 --lr 2e-2 --weight-decay 3
train lora4-lr1e-2-wd3 --lora-rank 4 --lr 1e-2 --weight-decay 3
step "re-encoding the updates as they would be submitted"
reencode selected selected-sparse --encoding sparse --density "$density"
reencode selected selected-svd8-4bit --encoding low_rank --rank 8 --factor-bits 4
reencode selected selected-svd4-4bit --encoding low_rank --rank 4 --factor-bits 4
reencode lora4-lr$lora_lr_low lora4-lr$lora_lr_low-4bit --encoding low_rank --rank 4 --factor-bits 4
reencode lora4-lr$lora_lr lora4-lr$lora_lr-4bit --encoding low_rank --rank 4 --factor-bits 4
reencode lora2-lr$lora_lr lora2-lr$lora_lr-8bit --encoding low_rank --rank 2 --factor-bits 8
runs=(selected all selected-sparse selected-svd8-4bit selected-svd4-4bit lora4-lr$lora_lr_low lora4-lr$lora_lr_low-4bit
      lora4-lr$lora_lr lora4-lr$lora_lr-4bit lora2-lr$lora_lr lora2-lr$lora_lr-8bit default lora4-lr2e-2-wd3 lora4-lr1e-2-wd3)
for b in "${runs[@]}"; do
  step "Proof-of-Loss on $b (256 held-out, 256 background windows)"
  $bin validate --library Experts --heldout "$d/heldout.safetensors" --background "$work/en/heldout.safetensors" --max-windows 256 \
    --policy "$work/experiment-policy.toml" --key "$work/validator.json" --bundle "$d-run/$b" --out "$d-run/verdicts-$b" --json > "$d-run-verdict-$b.json"
done
step "done"
python3 - "$d-run" "${runs[@]}" <<'PY'
import json, math, os, sys
w, runs = sys.argv[1], sys.argv[2:]
v = {b: json.load(open(f"{w}-verdict-{b}.json"))[0] for b in runs}
t = {b: json.load(open(f"{w}-train-{b}.json")) for b in ["selected", "all"]}
size = {b: sum(os.path.getsize(os.path.join(w, b, "deltas", f)) for f in os.listdir(os.path.join(w, b, "deltas"))) for b in runs}
m = json.load(open("Experts/manifest.json"))
expert_params = sum(math.prod(x["shape"]) for x in m["tensors"] if x["placement"] != "trunk")
bf16_per_expert = expert_params * 2 // len(m["experts"])      # what the ratio is measured against
losses = v["all"]["background_losses_nats_per_token"]["base"]
bg = sum(losses) / len(losses)
full = v["selected"]["gain_nats_per_token"]["mean"]
print("| update | experts | delta bytes | smaller than the experts in bf16 | held-out gain (nats/token) | of the full update's | 95% LCB | background regression (95% UCB) |")
print("|---|---|---|---|---|---|---|---|")
for b in runs:
    x = v[b]
    g, r = x["gain_nats_per_token"], x["regression_nats_per_token"]
    n = len(x["experts"])
    bf16 = bf16_per_expert * n
    print(f"| {b} | {n} | {size[b]:,} | {bf16 / size[b]:.1f}× | {g['mean']:.4f} | {g['mean'] / full:.1%} | {g['lower']:.4f} | {r['mean']:+.4f} ({100*r['mean']/bg:+.2f}%; {r['upper']:+.4f}) |")
print()
gs, ga, gp = (v[b]["gain_nats_per_token"]["mean"] for b in ["selected", "all", "selected-sparse"])
print(f"selected/all gain: {gs/ga:.1%}; trained parameters: {t['selected']['training']['trained_parameters']/expert_params:.1%} of the model's {expert_params} expert parameters; sparse delta keeps {gp/gs:.1%} of the gain")
PY
