#!/usr/bin/env bash
# Every test, on a fresh machine: installs what is missing, then runs the Rust unit and
# integration tests (which start their own emulators on free loopback ports).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
"$REPO_ROOT/scripts/bootstrap.sh"
cd "$REPO_ROOT"
cargo fmt --all -- --check
cargo clippy --release --workspace --exclude miyabi-aws-py --all-targets -- -D warnings
cargo test --release --workspace --exclude miyabi-aws-py
