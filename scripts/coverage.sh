#!/usr/bin/env bash
# Solidity coverage with thresholds. solidity-coverage leaves instrumented (oversized) bytecode in
# artifacts/, so clean afterwards: the next compile rebuilds the real artifacts.
set -uo pipefail
cd "$(dirname "$0")/.."
# Property tests only need a few runs here: `npm test` runs them in full (FC_RUNS default 25).
FC_RUNS="${FC_RUNS:-5}" npx hardhat coverage
status=$?
npx hardhat clean
[ "$status" -eq 0 ] || exit "$status"
node scripts/check-coverage.js "${1:-95}" "${2:-90}"
