#!/usr/bin/env bash
# Create (or update) the project-local virtualenv .venv with the pinned dependencies and
# the grokmap package (editable). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $($PYTHON --version)" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing pinned packages from requirements.lock (a few minutes the first time)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
        --no-build-isolation -e .
    echo "$want" > "$stamp"
fi
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))" >&2

# A C compiler: the fused float32 step's softmax tail is C built here, at set-up
# (grokmap.training.engines.ctail), and bfloat16's compiled step needs one (torch.compile).
if ! command -v gcc >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's gcc and g++ (the C softmax tail, torch.compile)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc g++ libc6-dev >/dev/null
    else
        echo "setup: warning: no gcc/g++; float32 cells fall back to torch's softmax kernels, bfloat16 cannot compile" >&2
    fi
fi
# The C tail for this CPU kind, into .venv/share/grokmap/tail (about a second; kept while tail.c,
# its flags and the CPU kind are unchanged). Training never builds it: without it float32 cells
# keep torch's kernels for the tail, say so, and their records name fused/torch_tail.
.venv/bin/python -m grokmap.training.engines.ctail >&2 || echo "setup: warning: the C tail was not built (above)" >&2

# The plotting renderer (Vega, Vega-Lite, vega-embed from npm, versions locked in
# renderer/package-lock.json), inlined into results/explorer.html and into the offline
# template of `dvc plots show/diff` (.dvc/config: plots.html_template).
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's nodejs and npm (for the plotting renderer)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
        echo "setup: npm is missing; install Node.js and npm, then run this script again" >&2
        exit 1
    fi
fi
rstamp=renderer/node_modules/.lock.sha256
rwant=$(sha256sum renderer/package-lock.json | cut -d' ' -f1)
if [ "$(cat "$rstamp" 2>/dev/null)" != "$rwant" ]; then
    echo "setup: installing the renderer from renderer/package-lock.json (npm ci)" >&2
    npm ci --prefix renderer --no-audit --no-fund --loglevel=error >/dev/null
    echo "$rwant" > "$rstamp"
fi
if [ ! -s renderer/renderer.js ] || [ ! -s renderer/dvc_plots.html ] || [ "$rstamp" -nt renderer/renderer.js ]; then
    .venv/bin/python scripts/build_renderer.py --node-modules renderer/node_modules \
        --bundle renderer/renderer.js --dvc-template renderer/dvc_plots.html
fi
# A copy inside the environment: a checkout without the git-ignored bundle (DVC's temporary
# experiment workspaces, `dvc exp run --temp` and `--queue`) finds it there (grokmap.analysis.explorer.renderer_path).
mkdir -p .venv/share/grokmap
cmp -s renderer/renderer.js .venv/share/grokmap/renderer.js || cp renderer/renderer.js .venv/share/grokmap/renderer.js
echo "setup: renderer ready (renderer/renderer.js, renderer/dvc_plots.html, .venv/share/grokmap/renderer.js)" >&2
