#!/usr/bin/env bash
# The README's two-shell walkthrough in one go: "shell 1" is the market (its operator and
# two validators), "shell 2" a contributor who knows nothing but the market's URL. Each
# side works in its own directory and shares nothing on disk with the other.
#   scripts/two_people_round.sh [WORKDIR]     (PORT=8080, TESSERA=.build/release/tessera)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=${TESSERA:-$ROOT/.build/release/tessera}
W=${1:-$(mktemp -d)}
PORT=${PORT:-8080}
URL=http://127.0.0.1:$PORT
mkdir -p "$W/market-side" "$W/contributor-side"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

echo "== shell 1: create the market and serve it"
cd "$W/market-side"
for k in operator publisher validator-1 validator-2; do $T keys new --out $k.json >/dev/null; done
$T market init --market market --library "$ROOT/Experts" --policy "$ROOT/Market" --key operator.json --publisher "$($T keys show publisher.json)"
$T serve --market market --port "$PORT" > serve.log 2>&1 & pids+=($!)
until curl -sf "$URL/healthz" >/dev/null; do sleep 0.2; done
# Each validator holds out its own share of the Spanish text; the background is the
# base model's held-out English (the split its publisher made with a published key).
$T corpus /usr/share/games/fortunes/es --out es-v1 --seq 128 --key-hex "$(openssl rand -hex 16)" >/dev/null
$T corpus /usr/share/games/fortunes/es --out es-v2 --seq 128 --key-hex "$(openssl rand -hex 16)" >/dev/null
$T corpus /usr/share/games/fortunes --out en --seq 128 --held-out-bps 1000 --key-hex "$(printf 'tessera base hold' | xxd -p)" >/dev/null

echo "== shell 2: a key; its public half goes to the operator"
cd "$W/contributor-side"
$T keys new --out me.json >/dev/null
ME=$($T keys show me.json)

echo "== shell 1: register, open round es-1 for ten minutes, start the validators"
cd "$W/market-side"
$T ledger register --market "$URL" --key operator.json --participant "$ME" --roles contributor
$T ledger register --market "$URL" --key operator.json --participant "$($T keys show validator-1.json)" --roles validator --stake 100
$T ledger register --market "$URL" --key operator.json --participant "$($T keys show validator-2.json)" --roles validator --stake 60
$T ledger open-round --market "$URL" --key operator.json --round es-1 --domain es --closes-at $(( $(date +%s) + 600 ))
for v in 1 2; do
  $T validator run --market "$URL" --key validator-$v.json --domain es --heldout es-v$v/heldout.safetensors \
     --background en/heldout.safetensors --state validator-$v --max-windows 128 > validator-$v.log 2>&1 & pids+=($!)
done

echo "== shell 2: the contributor's whole round: fetch, select, claim, train, submit, upload after the window"
cd "$W/contributor-side"
$T corpus /usr/share/games/fortunes/es --out es --seq 128 --key-hex "$(openssl rand -hex 16)" >/dev/null
$T corpus /usr/share/games/fortunes --out en --seq 128 --key-hex "$(openssl rand -hex 16)" >/dev/null
$T contribute --market "$URL" --key me.json --round es-1 --data es/train.safetensors --replay en/train.safetensors \
   --replay-share 0.75 --work work --steps 40 --lr 1e-3 > contribute.log 2>&1 & contributor=$!

echo "== shell 1: once a submission is in, close the window instead of waiting the ten minutes"
cd "$W/market-side"
until $T ledger round es-1 --market "$URL" --json | grep -q '"submissions":\[{'; do sleep 2; done
$T ledger close-round --market "$URL" --key operator.json --round es-1
wait $contributor
tail -3 "$W/contributor-side/contribute.log"
until $T ledger round es-1 --market "$URL" --json | grep -qE '"state":"(accepted|rejected)"'; do sleep 2; done
cat validator-1.log validator-2.log | grep -E "ACCEPT|REJECT"
$T merge --market "$URL" --round es-1 --key operator.json --heldout es-v1/heldout.safetensors --background en/heldout.safetensors --work merge

echo "== shell 2: what the contributor owns now"
$T ledger shares --market "$URL" --owner "$ME"
$T ledger verify --market "$URL"
echo "(everything is in $W)"
