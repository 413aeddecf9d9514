#!/usr/bin/env bash
# One command for a fresh Debian machine: install system packages (the libraries Tessera
# links and the Debian fortune packages whose text the demo uses), build Tessera in release
# mode, and run the demo: one whole market round on the bundled base model.
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  libopenblas-dev libzstd-dev libsqlite3-dev libssl-dev libsodium-dev libjemalloc-dev pkg-config \
  fortunes fortunes-es fortunes-de fortunes-it
swift build -c release
.build/release/tessera demo "$@"
