#!/usr/bin/env bash
# Every test, on a fresh machine: installs what is missing, then runs the Rust unit and
# integration tests (which start their own emulators on free loopback ports), installs the CLI
# with `cargo install`, builds the wheel into the project venv and runs its pytest suite (the
# console script included) and stub check.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# Each step's wall time goes to stderr, so that a slow CI run says where its time went.
step() {
  local start=$SECONDS
  "$@"
  echo "test.sh: $((SECONDS - start)) s: $*" >&2
}
step "$REPO_ROOT/scripts/bootstrap.sh"
cd "$REPO_ROOT"
step cargo fmt --all -- --check
step python3 scripts/check_feature_unification.py
step scripts/check_layout.sh
step cargo clippy --release --workspace --exclude miyabi-aws-py --all-features --all-targets -- -D warnings
step cargo clippy --release -p miyabi-aws-py -- -D warnings
# The tests, the CLI and the localaws runner the pytest suite needs, with the features of the
# tests (the demo's miyabi-simulate is left to the demo: clippy has checked it).
step cargo build --release --workspace --exclude miyabi-aws-py --all-features --bin miyabi-aws --bin localaws --tests
step cargo test --release --workspace --exclude miyabi-aws-py --all-features -- --skip fuzz::
# The fuzz targets (tests/it/fuzz.rs) run uninstrumented on their own, after the emulator tests,
# whose emulators they would otherwise starve of CPU: a fixed budget each, from a fixed seed so
# that a run can be replayed (exploring runs pick their own seed).
step env MIYABI_FUZZ_SECONDS=6 MIYABI_FUZZ_SEED=20261201 cargo test --release --all-features --test it fuzz::
# The CLI, installed the way a user installs it, into the same target folder and profile (its
# features match the tests', see scripts/check_feature_unification.py): it reuses the core and
# the binary the tests built.
step cargo install --locked --quiet --path . --root "$REPO_ROOT/.cli"
"$REPO_ROOT/.cli/bin/miyabi-aws" --help | grep -q "discover"
"$REPO_ROOT/.cli/bin/miyabi-aws" --version
# The fleet's worker image, where a Docker daemon answers (it compiles the CLI again inside
# the image, so it is left out where there is none).
if docker info >/dev/null 2>&1; then
  step docker build --quiet -f deploy/Dockerfile -t miyabi-aws-worker "$REPO_ROOT"
else
  echo "test.sh: no Docker daemon answers here: the worker image (deploy/Dockerfile) is not built" >&2
fi
# The wheel, built the way `pip install .` builds it, into the same target folder and profile:
# it reuses the SDK crates the tests compiled (see bindings/Cargo.toml).
step pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
step python -m mypy.stubtest miyabi_aws._native --allowlist python/stubtest-allowlist.txt
step env MIYABI_PYTEST_REGIONS=us-west-2,eu-central-1 "$CARGO_TARGET_DIR/release/localaws" \
  --seed-demo 12 --region us-west-2 --region eu-central-1 -- python -m pytest -q python/tests
