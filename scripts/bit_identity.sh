#!/usr/bin/env bash
# Train the default sweep and every reduced study at two commits and check that every cell
# record and phases.json is bit-for-bit the same (timings and the code fingerprint aside).
# Both commits run on this machine, so on one CPU kind, the only place bit-identity is promised;
# compare_records.py reports the phase agreement instead when the records name other CPU kinds
# (docs/reproducibility.md).
# For changes that must not move a number (a refactoring); docs/refactoring.md.
#
#   bash scripts/bit_identity.sh BEFORE_REV [AFTER_REV]     # AFTER_REV defaults to HEAD
#
# Each commit is checked out in its own git worktree, WORK/tree-<rev> (WORK defaults to
# /tmp/grokmap-bit-identity), using this checkout's .venv; its records go to that worktree's
# records/<study>/ (default/ for params.yaml). About 20 minutes of 2 cores per commit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
SM="$ROOT/.venv/bin/snakemake"
WORK=${WORK:-/tmp/grokmap-bit-identity}

tree_of() { echo "$WORK/tree-$(git -C "$ROOT" rev-parse --short "$1")"; }

records() {  # every results directory of commit $1, below its worktree's records/
  local tree; tree=$(tree_of "$1")
  mkdir -p "$WORK"
  [ -d "$tree" ] || git -C "$ROOT" worktree add --detach "$tree" "$1" >/dev/null
  [ -e "$tree/.venv" ] || ln -s "$ROOT/.venv" "$tree/.venv"
  mkdir -p "$tree/records"
  (cd "$tree" && "$SM" --cores all --quiet progress rules --config results_dir=records/default \
      >records/default.log 2>&1)
  echo "$1: default sweep done"
  for f in "$tree"/studies/reduced/*.yaml; do
    local name; name=$(basename "$f" .yaml)
    (cd "$tree" && "$SM" --cores all --quiet progress rules \
        --config params_file="studies/reduced/$name.yaml" results_dir="records/$name" >"records/$name.log" 2>&1)
    echo "$1: $name done"
  done
}

BEFORE=${1:?usage: bit_identity.sh BEFORE_REV [AFTER_REV]}
AFTER=${2:-HEAD}
records "$BEFORE"
records "$AFTER"
"$PY" "$ROOT/scripts/compare_records.py" --tree "$(tree_of "$BEFORE")/records" "$(tree_of "$AFTER")/records"
