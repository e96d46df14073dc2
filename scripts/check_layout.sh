#!/usr/bin/env bash
# The layout's rules that the compiler does not check. The runner (src/cycle, src/artefact.rs)
# knows no phase; the pure rooms (world, plan, IaC, assessment, catalog) know neither the cycle,
# a phase, AWS nor the bridge; the world's schema does not depend on the rules that compute its
# assessment. Doc comments may name other rooms; code may not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
forbid() {
  local what=$1 pattern=$2
  shift 2
  local found
  found=$(grep -rnE "$pattern" "$@" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
  if [[ -n "$found" ]]; then
    echo "layout: $what" >&2
    echo "$found" >&2
    status=1
  fi
}
forbid "the runner imports a phase" 'crate::phases|super::phases' src/cycle src/artefact.rs
forbid "a pure room imports the cycle, a phase, AWS or the bridge" 'crate::(phases|cycle|aws|bridge|cli)\b' \
  src/world src/plan src/iac src/assessment src/catalog
forbid "the world's schema imports the assessment rules" 'crate::assessment' src/world
exit $status
