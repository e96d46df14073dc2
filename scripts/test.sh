#!/usr/bin/env bash
# Every test, on a fresh machine: installs what is missing, then runs the Rust unit and
# integration tests (which start their own emulators on free loopback ports), installs the CLI
# with `cargo install`, builds the wheel into the project venv and runs its pytest suite (the
# console script included) and stub check.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/bootstrap.sh"
cd "$REPO_ROOT"
cargo fmt --all -- --check
python3 scripts/check_feature_unification.py
scripts/check_layout.sh
cargo clippy --release --workspace --exclude miyabi-aws-py --all-features --all-targets -- -D warnings
cargo clippy --release -p miyabi-aws-py -- -D warnings
# --bins --tests: the localaws runner the pytest suite needs, with the features of the tests.
cargo build --release --workspace --exclude miyabi-aws-py --all-features --bins --tests
cargo test --release --workspace --exclude miyabi-aws-py --all-features -- --skip fuzz::
# The fuzz targets (tests/it/fuzz.rs) run uninstrumented on their own, after the emulator tests,
# whose emulators they would otherwise starve of CPU: a fixed budget each, from a fixed seed so
# that a run can be replayed (exploring runs pick their own seed).
MIYABI_FUZZ_SECONDS=10 MIYABI_FUZZ_SEED=20261201 cargo test --release --all-features --test it fuzz::
# The CLI, installed the way a user installs it, into the same target folder and profile (its
# SDK features match the tests', see scripts/check_feature_unification.py): only the core and
# the binary compile.
cargo install --locked --quiet --path . --root "$REPO_ROOT/.cli"
"$REPO_ROOT/.cli/bin/miyabi-aws" --help | grep -q "discover"
"$REPO_ROOT/.cli/bin/miyabi-aws" --version
# The wheel, built the way `pip install .` builds it, into the same target folder and profile:
# it reuses the SDK crates the tests compiled (see bindings/Cargo.toml).
pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
python -m mypy.stubtest miyabi_aws._native --allowlist python/stubtest-allowlist.txt
MIYABI_PYTEST_REGIONS=us-west-2,eu-central-1 "$CARGO_TARGET_DIR/release/localaws" \
  --seed-demo 12 --region us-west-2 --region eu-central-1 -- python -m pytest -q python/tests
