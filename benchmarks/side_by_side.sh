#!/usr/bin/env bash
# Issue 19's side-by-side timing: S0's own run.py against this workflow, one after the other,
# whole processes (imports, training, figures, report). S0's code is not part of the project:
# pass the folder holding its run.py (its public repository's submissions/grokking).
#
#   bash benchmarks/side_by_side.sh /path/to/S0/submissions/grokking [results-prefix]
#   PARTS=sub bash benchmarks/side_by_side.sh ...     # the 4-cell sub-grid only (about 2 minutes)
#
# Run it on an otherwise idle machine; it prints one wall time per run (about 35 minutes here)
# and, after each pair, how many cells the two runs put in the same phase (benchmarks/s0_agreement.py).
set -euo pipefail
S0=${1:?usage: bash benchmarks/side_by_side.sh S0_FOLDER [RESULTS_PREFIX]}
PREFIX=${2:-results/side}
PARTS=${PARTS:-sub,full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$ROOT/.venv/bin/python"
OUT=$(mktemp -d)
timed() { local label=$1; shift; local t0; t0=$(date +%s.%N); "$@" > "$OUT/log" 2>&1 || { tail -20 "$OUT/log"; exit 1; }
          printf '%-44s %8.1f s\n' "$label" "$("$PY" -c "print($(date +%s.%N) - $t0)")"; }
SUB_SWEEP='{weight_decay: [0.1, 1.0], train_fraction: [0.9], width: [32, 64], seed: [42]}'
if [[ ,$PARTS, == *,sub,* ]]; then
    cd "$S0"
    timed "S0 run.py, 4-cell sub-grid, 1500 epochs" "$PY" run.py --weight-decays 0.1,1 --dataset-fractions 0.9 \
        --hidden-dims 32,64 --max-epochs 1500 --results-dir "$OUT/s0_sub"
    cd "$ROOT"
    rm -rf "${PREFIX}_sub"
    timed "project, 4-cell sub-grid, 1500 epochs" .venv/bin/snakemake --cores all --quiet \
        --config results_dir="${PREFIX}_sub" "sweep=$SUB_SWEEP" 'training={max_epochs: 1500}'
    "$PY" benchmarks/s0_agreement.py "$OUT/s0_sub/sweep_results.json" "${PREFIX}_sub"
fi
if [[ ,$PARTS, != *,full,* ]]; then echo "S0's results: $OUT"; exit 0; fi
cd "$S0"
timed "S0 run.py, default sweep (60 cells)" "$PY" run.py --results-dir "$OUT/s0_full"
cd "$ROOT"
for prec in float32 bfloat16; do
    rm -rf "${PREFIX}_$prec"
    timed "project, default sweep, $prec" .venv/bin/snakemake --cores all --quiet \
        --config results_dir="${PREFIX}_$prec" "training={\"precision\": \"$prec\"}"
done
"$PY" benchmarks/s0_agreement.py "$OUT/s0_full/sweep_results.json" "${PREFIX}_float32"
timed "project, no-op run (60 cells done)" .venv/bin/snakemake --cores all --quiet --config results_dir="${PREFIX}_float32"
echo "S0's results: $OUT (sweep_results.json per run)"
