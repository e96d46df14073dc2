#!/usr/bin/env bash
# The main job on a fresh machine: install the emulators, start them, seed the demo estate
# (2 Regions, 200 instances, 14 days of hourly metrics), run the cycle until it converges, then
# run it a second time on the same estate (which must change nothing), stop the emulators.
# Reports go to ${OUT:-demo-out}/ (the second run's to ${OUT}/second-run/). Arguments go to
# both runs of the cycle example; without any, the demo applies every step to the emulated
# estate (`--apply --approve all`). `scripts/demo.sh --dry-run` only plans.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/bootstrap.sh"
cd "$REPO_ROOT"
# The same build as scripts/test.sh (features and targets alike), so that one compiles for both.
cargo build --release --workspace --exclude miyabi-aws-py --all-features --bins --tests --examples
OUT="${OUT:-$REPO_ROOT/demo-out}"
rm -rf "$OUT"
mkdir -p "$OUT"
REGIONS=(--region us-east-1 --region eu-west-1)
CYCLE="$CARGO_TARGET_DIR/release/examples/cycle"
ARGS=("$@")
if [ ${#ARGS[@]} -eq 0 ]; then
  ARGS=(--apply --approve all)
fi
# Both runs share the knowledge base (when each instance last changed) and the simulated clock.
# shellcheck disable=SC2016 # expanded by the inner shell
exec "$CARGO_TARGET_DIR/release/localaws" --seed-demo "${DEMO_INSTANCES:-200}" --seed "${DEMO_SEED:-42}" \
  "${REGIONS[@]}" --simulation "$OUT/simulation.json" -- \
  bash -c '
    set -euo pipefail
    cycle=$1 out=$2; shift 2
    echo "== first run"
    "$cycle" --out "$out" "$@"
    echo
    echo "== second run on the same estate"
    "$cycle" --out "$out/second-run" --knowledge-base "$out/knowledge.redb" "$@"
  ' demo "$CYCLE" "$OUT" "${REGIONS[@]}" "${ARGS[@]}"
