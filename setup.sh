#!/usr/bin/env bash
# One command for a fresh Debian machine: install system packages, build Tessera in
# release mode, and run the main job on the checkpoint the repository carries.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  libopenblas-dev libzstd-dev libsqlite3-dev libssl-dev pkg-config
swift build -c release
model=Tests/TesseraEngineTests/Reference/qwen3moe-tied-dense
.build/release/tessera eval --model "$model" --tokens "$model/expected.safetensors"
.build/release/tessera eval --model "$model" --tokens "$model/expected.safetensors" --json
