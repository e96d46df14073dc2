# Shared settings for the project's scripts. Source it; it changes nothing on disk.
# - One persistent cargo target folder outside the checkout, one profile (release) for tests,
#   examples, benches and the wheel, so the AWS SDK crates compile once.
# - Static dummy credentials and no instance-metadata probing: nothing leaves 127.0.0.1.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
# - The Python environments live beside it, outside the checkout too: a fresh clone reuses them,
#   and PyO3, which builds against the project venv's interpreter, sees the same path and does
#   not rebuild (a venv inside the checkout made every clone recompile pyo3 and what uses it).
MIYABI_CACHE="${MIYABI_CACHE:-$HOME/.cache/miyabi-aws}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MIYABI_CACHE/target}"
export MIYABI_TOOLS_VENV="${MIYABI_TOOLS_VENV:-$MIYABI_CACHE/venv-tools}"
# The project's own Python (boto3, maturin, pytest). It is also the interpreter PyO3 builds
# against, so the embedded interpreter of tests and examples is this venv's CPython, and the
# interpreter the subprocess bridge runs (python3 on PATH).
export MIYABI_VENV="${MIYABI_VENV:-$MIYABI_CACHE/venv}"
export VIRTUAL_ENV="$MIYABI_VENV" PYO3_PYTHON="$MIYABI_VENV/bin/python"
export PATH="$MIYABI_VENV/bin:$PATH"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
unset AWS_PROFILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_CLOUDWATCH
