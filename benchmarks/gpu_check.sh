#!/usr/bin/env bash
# One command for a bare GPU box: is every GPU path of dlbench real, and what does it measure?
#
#   benchmarks/gpu_check.sh [--out DIR] [--wheels DIR] [--data-dir DIR] [--budget SECONDS]
#
# Needs Python >= 3.10 with torch (CUDA), jax (CUDA), flax, optax, pluggy, pandas, tabulate, matplotlib, scipy
# and pytest; nvidia-ml-py for energy. dlbench need not be installed: it runs from this checkout
# (PYTHONPATH=harness:plugins/*, plugins loaded by DLBENCH_PLUGINS). No internet is needed. --wheels DIR
# installs the .whl files in DIR (Keras and what it lacks there: keras, namex, optree) into OUT/site.
#
# Runs, all into one folder (OUT, default $OUT or reports/gpu-check-<time>): `dlbench list`, the conformance
# kit on the GPU (tests/test_conformance_gpu.py, one suite per process), a quick matrix of mlp, cnn, lstm, resnet20,
# transformer x pytorch eager / compile / amp-bf16, keras torch-fit / jax-fit, jax jit / bf16 on the GPU (--report),
# the device table (memory, J/1k samples, host/event agreement), and the fidelity of dlbench's torch cnn
# against a plain CUDA loop. On a machine without a usable GPU it says so, runs the same steps on the CPU
# with the smoke profile (proving the script and the paths) and skips what needs a GPU. About 6-8 minutes
# on one H100; the budget (default 450 s) stops the matrix early rather than overrun.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUTDIR=${OUT:-reports/gpu-check-$(date +%Y%m%d-%H%M%S)}
WHEELS=""
DATA_DIR=""
BUDGET=${GPU_CHECK_BUDGET_S:-450}
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUTDIR=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --data-dir) DATA_DIR=$2; shift 2 ;;
        --budget) BUDGET=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUTDIR" || { echo "gpu_check.sh: cannot create $OUTDIR" >&2; exit 2; }
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/gpu-check.log"
: >"$LOG"
say() { echo "[gpu-check $(printf '%3d' "$SECONDS")s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - SECONDS)); }
FAILED=()

# -- dlbench from the checkout ----------------------------------------------------------------------------
export PYTHONPATH="$ROOT/harness:$ROOT/plugins/pytorch:$ROOT/plugins/keras:$ROOT/plugins/jax${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
if [ -n "$WHEELS" ]; then
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        say "installing the wheels of $WHEELS into $OUTDIR/site (no index, no dependency resolution)"
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$OUTDIR/site" "$WHEELS"/*.whl >>"$LOG" 2>&1; then
            export PYTHONPATH="$PYTHONPATH:$OUTDIR/site"
        else
            say "pip could not install the wheels of $WHEELS (see $LOG); Keras cases will be skipped"
        fi
    else
        say "--wheels $WHEELS: no .whl files there; Keras cases will be skipped unless keras is installed"
    fi
fi
# Plugins not installed as distributions (no entry points) are loaded by module name.
DLBENCH_PLUGINS=$("$PY" - <<'EOF'
from importlib import metadata
have = {ep.name for ep in metadata.entry_points(group="dlbench")}
print(",".join(m for n, m in (("pytorch", "dlbench_pytorch"), ("keras", "dlbench_keras"), ("jax", "dlbench_jax"))
               if n not in have))
EOF
)
export DLBENCH_PLUGINS
DLB=("$PY" -m dlbench.cli)
"$PY" -c "import dlbench" 2>>"$LOG" || { say "cannot import dlbench from $ROOT/harness (see $LOG)"; exit 2; }

# -- the machine --------------------------------------------------------------------------------------------
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"
    echo "git: $(git rev-parse --short HEAD 2>/dev/null)$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo +dirty)"
    echo "DLBENCH_PLUGINS: ${DLBENCH_PLUGINS:-(all installed)}"
    "$PY" - <<'EOF'
from importlib import metadata
for name in ("torch", "jax", "jaxlib", "flax", "optax", "keras", "tensorflow", "nvidia-ml-py", "pluggy", "pandas"):
    try:
        print(f"{name}: {metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(f"{name}: not installed")
EOF
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    command -v nvidia-smi >/dev/null || echo "nvidia-smi: not found"
} >"$OUTDIR/machine.txt" 2>&1
say "machine: $(tr '\n' ';' <"$OUTDIR/machine.txt" | cut -c1-300)"

say "dlbench list"
"${DLB[@]}" list ${DATA_DIR:+--data-dir "$DATA_DIR"} >"$OUTDIR/list.txt" 2>&1 || FAILED+=("dlbench list")
cat "$OUTDIR/list.txt" >>"$LOG"
GPU=$("$PY" - <<'EOF'
from dlbench.plugins import load_registry
registry = load_registry()
seen = []
for name, framework in registry.frameworks.items():
    try:
        if "gpu" in framework.devices():
            seen.append(name)
    except Exception:
        pass
print(",".join(seen))
EOF
)
if [ -n "$GPU" ]; then
    DEVICE=gpu PROFILE=quick
    say "GPU seen by: $GPU; running the GPU checks"
else
    DEVICE=cpu PROFILE=smoke
    say "NO usable GPU here (why: dlbench list devices, in $OUTDIR/list.txt): GPU cases are skipped; the same steps"
    say "run on the CPU with the smoke profile to prove the script and the CPU paths; nothing here is a GPU number"
fi
KERAS=$("$PY" -c "import importlib.util as u; print(int(u.find_spec('keras') is not None))")
[ "$KERAS" = 1 ] || say "keras is not importable: the keras cases are skipped (give --wheels DIR with the keras wheel)"

# -- the conformance kit on the GPU ------------------------------------------------------------------------
say "conformance kit on the GPU (tests/test_conformance_gpu.py)"
SUITES=(TestPytorchGpu TestPytorchAmpBf16Gpu TestJaxGpu)
[ "$KERAS" = 1 ] && SUITES+=(TestKerasTorchGpu TestKerasJaxGpu)
PIDS=()
for suite in "${SUITES[@]}"; do
    # one process per suite (Keras' backend and JAX's GPU memory are per process), side by side
    XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 240 "$PY" -m pytest -q -rs -p no:cacheprovider \
        "tests/test_conformance_gpu.py::$suite" >"$OUTDIR/conformance-$suite.txt" 2>&1 &
    PIDS+=($!)
done
for i in "${!PIDS[@]}"; do
    suite=${SUITES[$i]}
    if wait "${PIDS[$i]}"; then status=ok; else status="FAILED (exit $?)"; FAILED+=("conformance $suite"); fi
    say "  $suite: $status: $(grep -E '(passed|failed|skipped|error)' "$OUTDIR/conformance-$suite.txt" | tail -1)"
done

# -- the matrix ---------------------------------------------------------------------------------------------
IMAGE_TASK=$("$PY" - "${DATA_DIR:-}" <<'EOF'
import sys
from dlbench.data import task_status
print("fashion_mnist" if task_status("fashion_mnist", sys.argv[1] or None).found else "synthetic_images")
EOF
)
[ "$IMAGE_TASK" = fashion_mnist ] || say "Fashion-MNIST not found (give --data-dir): image models run on synthetic_images"
MATRIX=(-f pytorch -f jax -m mlp -m cnn -m lstm -m resnet20 -m transformer -t "$IMAGE_TASK" -t synthetic_text
        --variant eager --variant amp-bf16 --variant jit --variant bf16)
[ "$DEVICE" = gpu ] && MATRIX+=(--variant compile)  # torch.compile on 2 CPU cores costs minutes: GPU only
[ "$KERAS" = 1 ] && MATRIX+=(-f keras --variant torch-fit --variant jax-fit)
RUN="$OUTDIR/run"
say "matrix: dlbench run ${MATRIX[*]} --device $DEVICE --profile $PROFILE --report (budget $(left) s)"
timeout --signal=TERM "$(( $(left) > 60 ? $(left) : 60 ))" "${DLB[@]}" run "${MATRIX[@]}" --device "$DEVICE" \
    --profile "$PROFILE" --case-timeout 300 --report --out "$RUN" ${DATA_DIR:+--data-dir "$DATA_DIR"} \
    >"$OUTDIR/matrix.txt" 2>&1
code=$?
case $code in
    0) say "matrix: every case ok" ;;
    1) say "matrix: some cases failed (see $OUTDIR/matrix.txt)"; FAILED+=("matrix cases") ;;
    124|130) say "matrix: stopped by the budget; the cases done are kept"; FAILED+=("matrix incomplete") ;;
    *) say "matrix: dlbench run exited $code (see $OUTDIR/matrix.txt)"; FAILED+=("matrix") ;;
esac
if [ -s "$RUN/results.jsonl" ] && [ ! -f "$RUN/report/index.html" ]; then
    "${DLB[@]}" report "$RUN/results.jsonl" -o "$RUN/report" >>"$LOG" 2>&1
fi
"$PY" benchmarks/gpu_summary.py "$RUN/results.jsonl" >"$OUTDIR/summary-tables.md" 2>&1
cat "$OUTDIR/summary-tables.md" | tee -a "$LOG"

# -- fidelity: dlbench's torch cnn against a plain CUDA loop -------------------------------------------------
if [ "$DEVICE" = gpu ]; then
    if [ "$(left)" -gt 45 ]; then
        say "fidelity: dlbench torch cnn vs a plain CUDA loop (A B B A)"
        timeout "$(left)" "$PY" benchmarks/fidelity_pytorch.py --device gpu --models cnn --pairs 2 --scale 10 \
            --image-task "$IMAGE_TASK" --threads "$(nproc)" >"$OUTDIR/fidelity.txt" 2>&1 \
            || FAILED+=("fidelity (ratio below 0.95 or a run failed)")
        tee -a "$LOG" <"$OUTDIR/fidelity.txt"
    else
        say "fidelity: skipped, the budget is spent"; FAILED+=("fidelity not run")
    fi
else
    say "fidelity against a plain CUDA loop: skipped (no GPU); benchmarks/fidelity_pytorch.py measures the CPU"
fi

# -- one file to read ---------------------------------------------------------------------------------------
{
    echo "# dlbench GPU check ($DEVICE$([ "$DEVICE" = cpu ] && echo ': NO GPU, the GPU cases were skipped'))"
    echo; echo '```'; cat "$OUTDIR/machine.txt"; echo '```'
    echo; echo "## dlbench list devices"; echo; echo '```'
    sed -n '/^Devices/,/^$/p' "$OUTDIR/list.txt"; echo '```'
    echo; echo "## Conformance on the GPU"; echo
    for suite in "${SUITES[@]}"; do echo "- $suite: $(grep -E '(passed|failed|skipped|error)' "$OUTDIR/conformance-$suite.txt" | tail -1)"; done
    echo; echo "## Matrix ($PROFILE profile, $DEVICE)"; echo
    sed -n '/^|/p' "$OUTDIR/matrix.txt" | head -40
    echo; cat "$OUTDIR/summary-tables.md"
    [ -f "$OUTDIR/fidelity.txt" ] && { echo; echo "## Fidelity (torch cnn, dlbench / plain CUDA loop)"; echo; cat "$OUTDIR/fidelity.txt"; }
    echo; echo "## Verdict"; echo
    if [ ${#FAILED[@]} -eq 0 ]; then echo "all steps ran and passed in ${SECONDS} s"; else printf -- '- %s\n' "${FAILED[@]}"; fi
} >"$OUTDIR/summary.md"
tar -czf "$OUTDIR/gpu-check.tar.gz" -C "$OUTDIR" --exclude gpu-check.tar.gz --exclude site . 2>/dev/null
say "everything is in $OUTDIR (summary.md; gpu-check.tar.gz holds the run folder, logs and report)"
if [ ${#FAILED[@]} -gt 0 ]; then
    say "not all green: ${FAILED[*]}"
    exit 1
fi
say "all green in ${SECONDS} s"
