#!/usr/bin/env bash
# Error feedback over rounds: what a lossy delta loses in one round, carried into the next.
# Two contributors' histories from the bundled base, on one domain's ESFT selection: one
# submits each round's update whole (lossless), the other as a low-rank delta (rank 4, 4-bit
# factors, 55× smaller) carrying forward what it dropped (--residual-in/--residual-out).
# Each round trains the selected experts from that history's current versions; after each
# round, held-out and background loss of both histories are printed.
#
#   scripts/delta_rounds.sh --work DIR [--domain es] [--rounds 3] [--steps 100] [--rank 4] [--bits 4]
#
# DIR must hold a finished scripts/esft_experiment.sh run for the domain (corpora, keys,
# selection). Needs a release build.
set -euo pipefail
work=""; domain=es; rounds=3; steps=100; rank=4; bits=4
while [ $# -gt 0 ]; do
  case "$1" in
    --work) work=$2; shift 2 ;;
    --domain) domain=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --rank) rank=$2; shift 2 ;;
    --bits) bits=$2; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$work" ] || { echo "--work DIR is required (a finished esft_experiment.sh run)" >&2; exit 2; }
work=$(cd "$work" && pwd)
cd "$(dirname "$0")/.."
bin=$PWD/.build/release/tessera
[ -x "$bin" ] || { echo "no release build at $bin: run swift build -c release first" >&2; exit 1; }
d=$work/$domain
[ -f "$d-selected.json" ] || { echo "$d-selected.json missing: run scripts/esft_experiment.sh --work $work --domain $domain first" >&2; exit 1; }
r=$work/rounds-$domain
rm -rf "$r"; mkdir -p "$r"
for h in lossless lowrank; do cp -r Experts "$r/$h-lib"; done
loss() { $bin eval --model "$1" --tokens "$2" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['loss_nats_per_token'])"; }
base_held=$(loss Experts "$d/heldout.safetensors"); base_bg=$(loss Experts "$work/en/heldout.safetensors")
echo "| round | history | bytes sent (total) | held-out loss | gain | background regression |"
echo "|---|---|---|---|---|---|"
declare -A sent=([lossless]=0 [lowrank]=0)
for i in $(seq 1 "$rounds"); do
  for h in lossless lowrank; do
    lib=$r/$h-lib
    $bin train --library "$lib" --data "$d/train.safetensors" --replay "$work/en/train.safetensors" --replay-share 0.75 \
      --market "$(printf esft-experiment | sha256sum | cut -c1-64)" --domain "$domain" --round "$i" --key "$work/contributor.json" \
      --steps "$steps" --batch 16 --lr 1e-3 --warmup 10 --seed $((7 + i)) --experts "$d-selected.json" --out "$r/$h-round$i" \
      --delta lossless --lora-rank 0 --json > /dev/null 2>&1
    while read -r l e f; do
      if [ "$h" = lossless ]; then
        delta=$r/$h-round$i/$f
      else
        delta=$r/$h-round$i-$l-$e.safetensors
        prev=$r/residual-$l-$e.safetensors
        args=(); [ -f "$prev" ] && args=(--residual-in "$prev")
        $bin delta encode --library "$lib" --expert "$l:$e" --from "$r/$h-round$i/$f" --encoding low_rank --rank "$rank" --factor-bits "$bits" \
          "${args[@]}" --residual-out "$prev.next" --out "$delta" --json > /dev/null
        mv "$prev.next" "$prev"
      fi
      sent[$h]=$(( ${sent[$h]} + $(stat -c %s "$delta") ))
      $bin delta apply --library "$lib" --delta "$delta" > /dev/null
    done < <(python3 -c "import json,sys; [print(x['layer'], x['expert'], x['delta']['file']) for x in json.load(open(sys.argv[1]))['experts']]" "$r/$h-round$i/bundle.json")
    held=$(loss "$lib" "$d/heldout.safetensors"); bg=$(loss "$lib" "$work/en/heldout.safetensors")
    python3 -c "print('| $i | $h | {:,} | {:.4f} | {:.4f} | {:+.4f} |'.format(${sent[$h]}, $held, $base_held - $held, $bg - $base_bg))"
  done
done
