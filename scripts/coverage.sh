#!/usr/bin/env bash
# Solidity coverage with thresholds. solidity-coverage leaves instrumented (oversized) bytecode in
# artifacts/, so clean afterwards: the next compile rebuilds the real artifacts.
set -uo pipefail
cd "$(dirname "$0")/.."
# Property tests only need a few runs here (every instrumented transaction is slow): `npm test`
# runs them in full.
# The instrumented traces of the large batches (256 vouchers in one transaction) outgrow Node's
# default 4 GB heap; the machines have 24 GB.
FC_RUNS="${FC_RUNS:-2}" NODE_OPTIONS="${NODE_OPTIONS:-} --max-old-space-size=12288" npx hardhat coverage
status=$?
npx hardhat clean
[ "$status" -eq 0 ] || exit "$status"
node scripts/check-coverage.js "${1:-95}" "${2:-90}"
