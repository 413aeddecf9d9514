#!/usr/bin/env bash
# The ESFT experiment of whitepaper-notes/proof-of-loss.md: on the bundled base model and
# one domain of Market/domains/, train only the ESFT-selected experts and, for the same
# steps, every expert; validate both (and the selected update as a lossy sparse delta)
# with Proof-of-Loss, and print the comparison. Runs from any folder; the defaults are the
# settings the notes report.
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
        --key "$work/contributor.json" --steps "$steps" --batch 16 --lr 1e-3 --warmup 10 --seed 7 --json)
# The experiment measures every update, so the policy's guards (norm bound, background
# tolerance) are opened wide here; the table reports the figures they would judge.
sed -e 's/^delta_norm_bound = .*/delta_norm_bound = 100.0/' -e 's/^background_tolerance_micronats = .*/background_tolerance_micronats = 1_000_000_000/' \
  Market/market.toml > "$work/experiment-policy.toml"
step "training the selected experts ($steps steps, lossless delta)"
$bin train "${common[@]}" --experts "$d-selected.json" --out "$d-run/selected" --delta lossless > "$d-run-train-selected.json"
step "training every expert the text routes to ($steps steps, lossless delta)"
$bin train "${common[@]}" --experts "$d-all.json" --out "$d-run/all" --delta lossless > "$d-run-train-all.json"
step "training the selected experts again, submitted as a sparse delta keeping $density of the entries"
$bin train "${common[@]}" --experts "$d-selected.json" --out "$d-run/selected-sparse" --delta sparse --density "$density" > "$d-run-train-selected-sparse.json"
for b in selected all selected-sparse; do
  step "Proof-of-Loss on $b (256 held-out, 256 background windows)"
  $bin validate --library Experts --heldout "$d/heldout.safetensors" --background "$work/en/heldout.safetensors" --max-windows 256 \
    --policy "$work/experiment-policy.toml" --key "$work/validator.json" --bundle "$d-run/$b" --out "$d-run/verdicts-$b" --json > "$d-run-verdict-$b.json"
done
step "done"
python3 - "$d-run" <<'PY'
import json, math, sys
w = sys.argv[1]
v = {b: json.load(open(f"{w}-verdict-{b}.json"))[0] for b in ["selected", "all", "selected-sparse"]}
t = {b: json.load(open(f"{w}-train-{b}.json")) for b in ["selected", "all", "selected-sparse"]}
losses = v["all"]["background_losses_nats_per_token"]["base"]
bg = sum(losses) / len(losses)
print("| update | experts | trained params | delta bytes | held-out gain (nats/token) | 95% LCB | background regression (95% UCB) | max ‖Δ‖/‖W‖ |")
print("|---|---|---|---|---|---|---|---|")
for b in ["selected", "all", "selected-sparse"]:
    x = v[b]
    g, r = x["gain_nats_per_token"], x["regression_nats_per_token"]
    print(f"| {b} | {len(x['experts'])} | {t[b]['training']['trained_parameters']} | {t[b]['delta_bytes']} | {g['mean']:.4f} | {g['lower']:.4f} | {r['mean']:+.4f} ({100*r['mean']/bg:+.2f}%; {r['upper']:+.4f}) | {max(i['relative_norm'] for i in x['experts']):.3f} |")
print()
m = json.load(open("Experts/manifest.json"))
expert_params = sum(math.prod(x["shape"]) for x in m["tensors"] if x["placement"] != "trunk")
gs, ga, gp = (v[b]["gain_nats_per_token"]["mean"] for b in ["selected", "all", "selected-sparse"])
print(f"selected/all gain: {gs/ga:.1%}; trained parameters: {t['selected']['training']['trained_parameters']/expert_params:.1%} of the model's {expert_params} expert parameters; sparse delta keeps {gp/gs:.1%} of the gain")
PY
