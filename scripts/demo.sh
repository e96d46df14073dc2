#!/usr/bin/env bash
# The main job on a fresh machine: install the emulators, start them, seed the demo estate
# (2 Regions, 200 instances, 14 days of hourly metrics), run the cycle, stop the emulators.
# Reports go to ${OUT:-demo-out}/. Extra arguments go to the cycle example.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/bootstrap.sh"
cd "$REPO_ROOT"
# The same build as scripts/test.sh (features and targets alike), so that one compiles for both.
cargo build --release --workspace --exclude miyabi-aws-py --all-features --bins --tests --examples
OUT="${OUT:-$REPO_ROOT/demo-out}"
exec "$CARGO_TARGET_DIR/release/localaws" --seed-demo "${DEMO_INSTANCES:-200}" --seed "${DEMO_SEED:-42}" \
  --region us-east-1 --region eu-west-1 -- \
  "$CARGO_TARGET_DIR/release/examples/cycle" --region us-east-1 --region eu-west-1 --out "$OUT" "$@"
