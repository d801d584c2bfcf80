#!/usr/bin/env bash
# On a machine with a CUDA GPU: train S3's Figure 1 grid (stacked cells) and S0's default sweep
# on the GPU and on the CPU, time each, and compare the records by phase (a GPU's products
# round differently, so no bit-for-bit comparison). Not yet run: this repository's machines have
# no GPU (docs/performance.md says so until it has been).
#
#   bash benchmarks/gpu_check.sh [RESULTS_PREFIX]          # default results/gpu_check
#   PARTS=s3 bash benchmarks/gpu_check.sh                   # S3's grid only (or PARTS=s0)
set -euo pipefail
PREFIX=${1:-results/gpu_check}
PARTS=${PARTS:-s3,s0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=.venv/bin/python
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible: nothing to check')"
timed() { local label=$1; shift; local t0; t0=$(date +%s.%N); "$@" > "$PREFIX.log" 2>&1 || { tail -20 "$PREFIX.log"; exit 1; }
          printf '%-40s %8.1f s\n' "$label" "$("$PY" -c "print($(date +%s.%N) - $t0)")"; }
run() {  # name, device, extra snakemake --config words...
    local name=$1 device=$2; shift 2
    rm -rf "${PREFIX}_${name}_${device}"
    timed "$name on $device" .venv/bin/snakemake --cores all --quiet \
        --config results_dir="${PREFIX}_${name}_${device}" device="$device" "$@"
}
if [[ ,$PARTS, == *,s3,* ]]; then
    run s3 cuda params_file=studies/s3_toy_classification.yaml
    run s3 cpu params_file=studies/s3_toy_classification.yaml
    "$PY" scripts/phase_agreement.py cuda="${PREFIX}_s3_cuda" cpu="${PREFIX}_s3_cpu" --out "${PREFIX}_s3_agreement.csv"
fi
if [[ ,$PARTS, == *,s0,* ]]; then
    # S0's fused engine stays on the CPU: with device cuda its cells are the CPU's bit for bit
    run s0 cuda
    run s0 cpu
    "$PY" scripts/phase_agreement.py cuda="${PREFIX}_s0_cuda" cpu="${PREFIX}_s0_cpu" --out "${PREFIX}_s0_agreement.csv"
fi
