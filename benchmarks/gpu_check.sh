#!/usr/bin/env bash
# One command for a bare GPU box: is every GPU path of dlbench real, and what does it measure?
#
#   benchmarks/gpu_check.sh [--out DIR] [--wheels DIR] [--data-dir DIR] [--budget SECONDS]
#
# Needs Python >= 3.10 with torch (CUDA), jax (CUDA), flax, optax, pluggy, pandas, tabulate, matplotlib, scipy
# and pytest; nvidia-ml-py for energy. dlbench need not be installed: it runs from this checkout
# (PYTHONPATH=harness:plugins/*, plugins loaded by DLBENCH_PLUGINS). No internet is needed. --wheels DIR
# installs the .whl files in DIR (Keras and what it lacks there: keras, namex, optree) into a scratch folder.
#
# The plan, in order of what it tells (each phase gets a share of the budget, default 470 s; a phase cut short
# keeps what it finished and the summary names what did not run):
#   1. the machine, `dlbench list`, and the device's own ceilings (`dlbench doctor --json`: GEMM in float32 with
#      TF32 off, TF32 and bfloat16, and copy bandwidth, per library);
#   2. the conformance kit's GPU suites (tests/test_conformance_gpu.py), side by side, only what the GPU changes;
#   3. the matrix: mlp, cnn, lstm, resnet20, transformer x every variant that does not compile (pytorch eager / amp-bf16, jax jit / bf16,
#      keras torch-fit / jax-fit) at batch 128, then at the knee (--batch-size auto), profile gpu;
#   4. fidelity: dlbench's pytorch and jax cnn and mlp against a plain CUDA loop / a plain jitted loop, training
#      and inference, at batch 128 and at the knee found in 3 (two-sided 0.95..1.053);
#      then what one training step launches (benchmarks/launches_per_step.py: eager at 128 and 2048, CUDA graphs);
#   5. the compiling variants (pytorch compile / tuned: CUDA graphs and fused Adam, jax tuned, keras torch-fit-jit)
#      at 128 and at the knee, last, as they cost the most fixed time;
#   6. one summary, written last: OUT/summary.md.
# OUT (--out, else $OUT, else reports/gpu-check-<time>) receives four files: summary.md, gpu-check.log,
# results.jsonl (every case) and gpu-check.tar.gz (everything: logs, run folders, report, kit output).
# On a machine without a usable GPU it says so and runs the same plan on the CPU with the smoke profile and a
# smaller matrix (mlp; no torch.compile variant), proving the script and the CPU paths; nothing there is a GPU number.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUTDIR=${OUT:-reports/gpu-check-$(date +%Y%m%d-%H%M%S)}
WHEELS=""
DATA_DIR=""
BUDGET=${GPU_CHECK_BUDGET_S:-470}
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUTDIR=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --data-dir) DATA_DIR=$2; shift 2 ;;
        --budget) BUDGET=$2; shift 2 ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUTDIR" || { echo "gpu_check.sh: cannot create $OUTDIR" >&2; exit 2; }
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
LOG="$OUTDIR/gpu-check.log"
: >"$LOG"
say() { echo "[gpu-check $(printf '%3d' "$SECONDS")s] $*" | tee -a "$LOG"; }
left() { echo $((BUDGET - SECONDS)); }
until_mark() { local t=$(( $1 * BUDGET / 100 - SECONDS )); [ "$t" -gt 0 ] && echo "$t" || echo 0; }
FAILED=()
NOT_RUN=()

# -- dlbench from the checkout ----------------------------------------------------------------------------
export PYTHONPATH="$ROOT/harness:$ROOT/plugins/pytorch:$ROOT/plugins/keras:$ROOT/plugins/jax${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_PREALLOCATE=false
# compiled programs shared by the cases of this check (a case at the knee reuses what its sweep compiled)
export JAX_COMPILATION_CACHE_DIR="$WORK/cache/jax" TORCHINDUCTOR_CACHE_DIR="$WORK/cache/inductor"
export DLBENCH_CACHE="$WORK/cache/dlbench"
if [ -n "$WHEELS" ]; then
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        say "installing the wheels of $WHEELS into a scratch folder (no index, no dependency resolution)"
        if "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" "$WHEELS"/*.whl >>"$LOG" 2>&1; then
            export PYTHONPATH="$PYTHONPATH:$WORK/site"
        else
            say "pip could not install the wheels of $WHEELS (see the log); Keras cases will be skipped"
        fi
    else
        say "--wheels $WHEELS: no .whl files there; Keras cases will be skipped unless keras is installed"
    fi
fi
DLBENCH_PLUGINS=$("$PY" - <<'EOF'
from importlib import metadata
have = {ep.name for ep in metadata.entry_points(group="dlbench")}
print(",".join(m for n, m in (("pytorch", "dlbench_pytorch"), ("keras", "dlbench_keras"), ("jax", "dlbench_jax"))
               if n not in have))
EOF
)
export DLBENCH_PLUGINS
DLB=("$PY" -m dlbench.cli)
"$PY" -c "import dlbench" 2>>"$LOG" || { say "cannot import dlbench from $ROOT/harness (see the log)"; exit 2; }
mkdir -p "$WORK/out"
W="$WORK/out"

# -- 1. the machine, its frameworks and its ceilings ----------------------------------------------------------
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
    echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
} >"$W/machine.txt" 2>&1
say "machine: $(tr '\n' ';' <"$W/machine.txt" | cut -c1-300)"
"${DLB[@]}" list ${DATA_DIR:+--data-dir "$DATA_DIR"} >"$W/list.txt" 2>&1 || FAILED+=("dlbench list")
GPU=$("$PY" - <<'EOF'
from dlbench.plugins.registry import load_registry
seen = []
for name, framework in load_registry().frameworks.items():
    try:
        if "gpu" in framework.devices():
            seen.append(name)
    except Exception:
        pass
print(",".join(seen))
EOF
)
if [ -n "$GPU" ]; then
    DEVICE=gpu PROFILE=gpu MODELS=(mlp cnn lstm resnet20 transformer)
    say "GPU seen by: $GPU; running the GPU plan within ${BUDGET} s"
else
    DEVICE=cpu PROFILE=smoke MODELS=(mlp) BUDGET=$(( BUDGET > 900 ? BUDGET : 900 ))
    say "NO usable GPU here (why: dlbench list devices, in the tarball's list.txt): the GPU suites skip; the plan"
    say "runs on the CPU with the smoke profile, mlp only, no compiling variant; nothing here is a GPU number"
fi
KERAS=$("$PY" -c "import importlib.util as u; print(int(u.find_spec('keras') is not None))")
[ "$KERAS" = 1 ] || say "keras is not importable: the keras cases are skipped (give --wheels DIR with the keras wheel)"
say "ceilings: dlbench doctor --json"
timeout 120 "${DLB[@]}" doctor --json --seconds 0.5 >"$W/doctor.json" 2>>"$LOG" || FAILED+=("dlbench doctor")
"$PY" -c "
import json, sys
facts = json.load(open(sys.argv[1]))
for lib, f in (facts.get('gpu_peak') or {}).items():
    print(lib, f.get('error') or {k: f.get(k) for k in ('float32_gflops', 'tf32_gflops', 'bfloat16_gflops', 'copy_gbs')})
print(facts.get('gpu_peak_reason') or '')" "$W/doctor.json" 2>&1 | tee -a "$LOG"

# -- 2. the conformance kit on the GPU, side by side -----------------------------------------------------------
SUITES=(TestPytorchGpu TestPytorchAmpBf16Gpu TestPytorchTunedGpu TestJaxGpu TestJaxBf16Gpu)
[ "$KERAS" = 1 ] && SUITES+=(TestKerasTorchGpu TestKerasJaxGpu)
KIT_S=$(until_mark 27)
say "conformance kit: ${#SUITES[@]} GPU suites side by side, at most ${KIT_S} s"
PIDS=()
for suite in "${SUITES[@]}"; do
    timeout "$KIT_S" "$PY" -m pytest -q -rs -p no:cacheprovider "tests/test_conformance_gpu.py::$suite" \
        >"$W/conformance-$suite.txt" 2>&1 &
    PIDS+=($!)
done
for i in "${!PIDS[@]}"; do
    suite=${SUITES[$i]}
    wait "${PIDS[$i]}"; code=$?
    case $code in
        0|5) status=ok ;;
        124) status="STOPPED at the phase's ${KIT_S} s"; FAILED+=("conformance $suite: stopped by the budget") ;;
        *) status="FAILED (exit $code)"; FAILED+=("conformance $suite") ;;
    esac
    say "  $suite: $status: $(grep -E '(passed|failed|skipped|error)' "$W/conformance-$suite.txt" | tail -1)"
done

# -- 3-5. the matrix, fidelity, the compiling variants ----------------------------------------------------------
IMAGE_TASK=$("$PY" - "${DATA_DIR:-}" <<'EOF'
import sys
from dlbench.data import task_status
print("fashion_mnist" if task_status("fashion_mnist", sys.argv[1] or None).found else "synthetic_images")
EOF
)
[ "$IMAGE_TASK" = fashion_mnist ] || say "Fashion-MNIST not found (give --data-dir): image models run on synthetic_images"
TASKS=(-t "$IMAGE_TASK"); [[ " ${MODELS[*]} " == *" lstm "* || " ${MODELS[*]} " == *" transformer "* ]] && TASKS+=(-t synthetic_text)
MODEL_ARGS=(); for m in "${MODELS[@]}"; do MODEL_ARGS+=(-m "$m"); done
PLAIN_VARIANTS=(-f pytorch -f jax --variant eager --variant amp-bf16 --variant jit --variant bf16)
COMPILED_VARIANTS=(-f pytorch -f jax --variant tuned)
[ "$DEVICE" = gpu ] && COMPILED_VARIANTS+=(--variant compile)  # torch.compile on 2 CPU cores costs minutes
if [ "$KERAS" = 1 ]; then
    PLAIN_VARIANTS+=(-f keras --variant torch-fit --variant jax-fit)
    [ "$DEVICE" = gpu ] && COMPILED_VARIANTS+=(-f keras --variant torch-fit-jit)
fi

matrix() {  # matrix NAME PERCENT-MARK ARGS...: one dlbench run into $W/NAME, stopped at the mark
    local name=$1 mark=$2; shift 2
    local seconds; seconds=$(until_mark "$mark")
    if [ "$seconds" -lt 20 ]; then
        say "matrix $name: not run, the budget is spent"; NOT_RUN+=("matrix $name"); return
    fi
    say "matrix $name: dlbench run $* --device $DEVICE --profile $PROFILE (at most $seconds s)"
    # TERM: dlbench run turns it into an interrupt (a background job's children ignore SIGINT)
    timeout --signal=TERM --kill-after=30 "$seconds" "${DLB[@]}" run "$@" "${MODEL_ARGS[@]}" "${TASKS[@]}" --device "$DEVICE" \
        --profile "$PROFILE" --case-timeout 150 --out "$W/run-$name" ${DATA_DIR:+--data-dir "$DATA_DIR"} \
        >"$W/matrix-$name.txt" 2>&1
    case $? in
        0) say "matrix $name: every case ok" ;;
        1) say "matrix $name: some cases failed (see matrix-$name.txt)"; FAILED+=("matrix $name: cases failed") ;;
        124|130|137) say "matrix $name: stopped by the budget; the cases done are kept"; NOT_RUN+=("matrix $name: the rest") ;;
        *) say "matrix $name: dlbench run failed (see matrix-$name.txt)"; FAILED+=("matrix $name") ;;
    esac
    grep -E '^\s+(ok|failed|skipped|timeout|crashed)' "$W/matrix-$name.txt" | head -40 >>"$LOG"
}

fidelity() {  # fidelity FRAMEWORK PERCENT-MARK: dlbench against the plain loop at 128 and at the knee
    local framework=$1 mark=$2 seconds knee batches
    seconds=$(until_mark "$mark")
    if [ "$seconds" -lt 30 ]; then
        say "fidelity $framework: not run, the budget is spent"; NOT_RUN+=("fidelity $framework"); return
    fi
    knee=$("$PY" - "$W/run-auto/results.jsonl" "$framework" <<'EOF'
import json, sys
from pathlib import Path
path = Path(sys.argv[1])
knees = [json.loads(l)["batch_size"] for l in (path.read_text().splitlines() if path.exists() else [])
         if l.strip() and json.loads(l)["framework"] == sys.argv[2] and json.loads(l)["status"] == "ok"
         and json.loads(l)["model"] == "cnn" and json.loads(l)["variant"] in ("eager", "jit")]
print(knees[0] if knees else "")
EOF
)
    batches=128${knee:+,$knee}; [ "$knee" = 128 ] && batches=128
    local models=cnn,mlp scale=0.5
    [ "$DEVICE" = cpu ] && { models=mlp; scale=0.05; batches=128; }
    say "fidelity $framework: $models at batch $batches, dlbench / plain, at most $seconds s"
    timeout "$seconds" "$PY" "benchmarks/fidelity_$framework.py" --loop script --device "$DEVICE" --models "$models" \
        --pairs 1 --scale "$scale" --batch-sizes "$batches" --image-task "$IMAGE_TASK" --threads "$(nproc)" \
        >"$W/fidelity-$framework.txt" 2>&1
    case $? in
        0) say "fidelity $framework: within 0.95..1.053" ;;
        3) say "fidelity $framework: no verdict (the machine was busy; see the table)"; NOT_RUN+=("fidelity $framework verdict") ;;
        124) say "fidelity $framework: stopped by the budget"; NOT_RUN+=("fidelity $framework: the rest") ;;
        *) if [ "$DEVICE" = gpu ]; then FAILED+=("fidelity $framework (outside 0.95..1.053, or a run failed)");
           else say "fidelity $framework: outside the band on the CPU smoke (tiny runs; not checked on the CPU)"; fi ;;
    esac
    tee -a "$LOG" <"$W/fidelity-$framework.txt" | grep -E '^\|' || true
}

launches() {  # launches PERCENT-MARK: what one eager (and CUDA-graph) training step hands the device
    local seconds; seconds=$(until_mark "$1")
    if [ "$seconds" -lt 15 ]; then say "launches per step: not run, the budget is spent"; NOT_RUN+=("launches per step"); return; fi
    say "launches per step: benchmarks/launches_per_step.py (at most $seconds s)"
    local models=mlp,cnn,lstm batches=128,2048
    [ "$DEVICE" = cpu ] && { models=mlp; batches=128; }
    timeout "$seconds" "$PY" benchmarks/launches_per_step.py --device "$DEVICE" --models "$models" --variants eager \
        --batch-sizes "$batches" >"$W/launches.txt" 2>&1 || NOT_RUN+=("launches per step (eager): see launches.txt")
    [ "$DEVICE" = gpu ] && { timeout "$(until_mark "$1")" "$PY" benchmarks/launches_per_step.py --device gpu --models mlp \
        --variants tuned --batch-sizes 128 >>"$W/launches.txt" 2>&1 || NOT_RUN+=("launches per step (tuned)"); }
    grep -E '^\|' "$W/launches.txt" | tee -a "$LOG" || true
}

matrix 128 55 "${PLAIN_VARIANTS[@]}" --batch-size 128
matrix auto 72 "${PLAIN_VARIANTS[@]}" --batch-size auto
fidelity pytorch 80
fidelity jax 87
launches 92
matrix compiled 98 "${COMPILED_VARIANTS[@]}" --batch-size 128 --batch-size auto

# -- 6. one summary, last --------------------------------------------------------------------------------------------
RESULTS=("$W"/run-*/results.jsonl)
cat "${RESULTS[@]}" >"$OUTDIR/results.jsonl" 2>/dev/null
"${DLB[@]}" report "${RESULTS[@]}" -o "$W/report" >>"$LOG" 2>&1 || say "dlbench report failed (see the log)"
"$PY" benchmarks/gpu_summary.py --doctor "$W/doctor.json" "${RESULTS[@]}" >"$W/summary-tables.md" 2>&1 \
    || FAILED+=("gpu_summary")
{
    echo "# dlbench GPU check ($DEVICE$([ "$DEVICE" = cpu ] && echo ': NO GPU, every GPU case skipped; CPU smoke only'))"
    echo; echo '```'; cat "$W/machine.txt"; echo '```'
    echo; echo "## dlbench list devices"; echo; echo '```'
    sed -n '/^Devices/,/^$/p' "$W/list.txt"; echo '```'
    echo; echo "## Conformance on the GPU (session tests only: the CPU suites prove the rest)"; echo
    for suite in "${SUITES[@]}"; do echo "- $suite: $(grep -E '(passed|failed|skipped|error)' "$W/conformance-$suite.txt" | tail -1)"; done
    echo; echo "## Matrix ($PROFILE profile, $DEVICE; batch 128 and the knee of --batch-size auto)"; echo
    cat "$W/summary-tables.md"
    for framework in pytorch jax; do
        [ -f "$W/fidelity-$framework.txt" ] && { echo; echo "## Fidelity: dlbench $framework / plain loop"; echo;
                                                 grep -E '^\||^\(|^outside|^failed' "$W/fidelity-$framework.txt"; }
    done
    [ -f "$W/launches.txt" ] && { echo; echo "## What one training step hands the device (launches_per_step.py)"; echo;
                                  grep -E '^\|' "$W/launches.txt"; }
    echo; echo "## Verdict"; echo
    [ ${#NOT_RUN[@]} -gt 0 ] && { echo "Not run (budget of ${BUDGET} s):"; printf -- '- %s\n' "${NOT_RUN[@]}"; echo; }
    if [ ${#FAILED[@]} -eq 0 ]; then echo "every step that ran passed; ${SECONDS} s in all"; else printf -- '- %s\n' "${FAILED[@]}"; fi
} >"$OUTDIR/summary.md.tmp"
cp "$OUTDIR/summary.md.tmp" "$W/summary.md"
tar -czf "$OUTDIR/gpu-check.tar.gz" -C "$W" --exclude cache . 2>/dev/null
mv "$OUTDIR/summary.md.tmp" "$OUTDIR/summary.md"
say "done in ${SECONDS} s: $OUTDIR/summary.md (gpu-check.tar.gz holds the run folders, logs, report and kit output)"
if [ ${#FAILED[@]} -gt 0 ] || [ ${#NOT_RUN[@]} -gt 0 ]; then
    say "not all green: ${FAILED[*]} ${NOT_RUN[*]}"
    exit 1
fi
say "all green in ${SECONDS} s"
