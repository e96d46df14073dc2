#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, idempotently:
# - the local AWS emulators (moto, ministack) in $MIYABI_TOOLS_VENV, pinned by requirements/tools.txt;
# - the project's Python (boto3, maturin, pytest, mypy) in $MIYABI_VENV, pinned by requirements/dev.txt
# (both under ~/.cache/miyabi-aws unless set, see scripts/env.sh);
# - Debian's chromium, headless, for the HTML report's browser test (or $MIYABI_CHROMIUM).
# The Rust toolchain and python3 come with the machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

install_venv() { # venv requirements-file
  local venv=$1 req=$2 stamp="$1/.requirements.sha256"
  local want; want=$(sha256sum "$req" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  echo "bootstrap: installing $(basename "$req") into $venv" >&2
  rm -rf "$venv"
  "${MIYABI_BASE_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
}

install_venv "$MIYABI_TOOLS_VENV" "$REPO_ROOT/requirements/tools.txt"
install_venv "$MIYABI_VENV" "$REPO_ROOT/requirements/dev.txt"
command -v cargo >/dev/null || { echo "bootstrap: cargo not found: install Rust (rustup)" >&2; exit 1; }
if ! command -v "${MIYABI_CHROMIUM:-chromium}" >/dev/null; then
  echo "bootstrap: installing chromium (apt) for the HTML report's browser test" >&2
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo -n); fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
