#!/usr/bin/env bash
# The main job on a fresh machine: install the emulators, start them, seed the demo estate
# (2 Regions, 200 instances, 14 days of hourly metrics), run `miyabi-aws cycle` until it
# converges, then run it a second time on the same estate (which must change nothing), stop the
# emulators. Reports go to ${OUT:-demo-out}/ (the second run's to ${OUT}/second-run/).
#
# The workload simulator is harness, not product: the CLI runs it through its general hooks,
# `--hook-after deployment=miyabi-simulate …` (publish the period the changed estate produces)
# and `--clock-file` (the simulated "now" the simulator writes).
#
# Arguments go to both runs of `miyabi-aws cycle`; without any, the demo applies every step to
# the emulated estate (`--apply --approve all`). `scripts/demo.sh --max-iterations 1` plans and
# stops after one pass.
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
BIN="$CARGO_TARGET_DIR/release"
ARGS=("$@")
if [ ${#ARGS[@]} -eq 0 ]; then
  ARGS=(--apply --approve all)
fi
# Both runs share the knowledge base (when each instance last changed) and the simulated clock.
# shellcheck disable=SC2016 # expanded by the inner shell
exec "$BIN/localaws" --seed-demo "${DEMO_INSTANCES:-200}" --seed "${DEMO_SEED:-42}" \
  "${REGIONS[@]}" --simulation "$OUT/simulation.json" -- \
  bash -c '
    set -euo pipefail
    bin=$1 out=$2; shift 2
    simulate="$bin/miyabi-simulate --state $out/simulation.json --clock-file $out/clock"
    $simulate --init
    cycle() {
      "$bin/miyabi-aws" cycle --clock-file "$out/clock" --hook-after "deployment=$simulate" \
        --output-format json,markdown,html,sarif,ocsf,asff "$@"
    }
    echo "== first run"
    cycle --out "$out" "$@"
    echo
    echo "== second run on the same estate"
    cycle --out "$out/second-run" --knowledge-base "$out/knowledge.redb" "$@"
  ' demo "$BIN" "$OUT" "${REGIONS[@]}" "${ARGS[@]}"
