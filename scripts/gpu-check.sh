#!/usr/bin/env bash
# One-command GPU check of tmcc's CUDA backend: build with `--features cuda` (release),
# run the CUDA/CPU parity tests and the NVRTC compile test, then time training at the seed
# setting (emb_res, F=100, H=50, D=1000, B=1024, p=0.01) for K = 1, 64, 1024, 8192
# instances, and PyTorch on the same GPU for K = 1 and 1024 if torch imports. Writes a
# markdown report to $OUT/gpu-bench.md (if $OUT is set) or target/gpu-bench.md, the full
# log next to it (gpu-check.log). Finishes within 8 minutes (each stage under `timeout`,
# later stages skipped when the budget runs out). Exit status: 0 if the parity tests
# passed, 1 if they failed or could not run.
#
# Usage:
#   scripts/gpu-check.sh                  build here and run (needs cargo and the crates)
#   scripts/gpu-check.sh --build-only     build and stage the binaries in target/gpu-check/
#   scripts/gpu-check.sh --prebuilt DIR   run binaries staged by --build-only (no cargo)
#
# A GPU machine without network access (the project's `device` tool) cannot fetch crates:
# stage the binaries on the development machine with --build-only, pass `target/gpu-check`
# in the tool's `carry`, and run `scripts/gpu-check.sh --prebuilt target/gpu-check`.
#
# NVRTC: cudarc opens libnvrtc by name (libnvrtc.so, .so.12, .so.11). If $TMCC_NVRTC_LIB
# is not set, this script looks for it (ldconfig, /usr/local/cuda*/lib64, the pip wheels
# nvidia-cuda-nvrtc-cu12 / torch's nvidia/*/lib) and exports TMCC_NVRTC_LIB (the backend
# then loads it by absolute path); an NVRTC with another soname (libnvrtc.so.13) gets a
# `libnvrtc.so` symlink in a temporary directory on LD_LIBRARY_PATH. Without any GPU,
# `python3 -m pip install nvidia-cuda-nvrtc-cu12` provides NVRTC for the compile test.
set -uo pipefail

BUDGET_S=${GPU_CHECK_BUDGET_S:-470}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=run
PREBUILT=""
case "${1:-}" in
    --build-only) MODE=build ;;
    --prebuilt) MODE=prebuilt; PREBUILT=${2:?--prebuilt needs a directory} ;;
    "") ;;
    *) echo "usage: $0 [--build-only | --prebuilt DIR]" >&2; exit 2 ;;
esac

OUTDIR=${OUT:-$ROOT/target}
mkdir -p "$OUTDIR"
REPORT=$OUTDIR/gpu-bench.md
LOG=$OUTDIR/gpu-check.log
: >"$LOG"
exec 3>&2 # the terminal's stderr, for progress lines even inside redirected stages
log() { echo "[gpu-check ${SECONDS}s] $*" | tee -a "$LOG" >&3; }
left() { echo $((BUDGET_S - SECONDS)); }
# run_stage NAME MAX_SECONDS CMD...: runs CMD under timeout(min(MAX, budget left)).
run_stage() {
    local name=$1 max=$2
    shift 2
    local t
    t=$(left)
    ((t > max)) && t=$max
    if ((t < 10)); then
        log "$name: skipped (time budget spent)"
        return 124
    fi
    log "$name: start (timeout ${t}s)"
    timeout --kill-after=5 "$t" "$@"
    local rc=$?
    log "$name: exit $rc"
    return $rc
}

# ---------------------------------------------------------------- build / stage binaries
STAGE=$ROOT/target/gpu-check
BIN=""
build() {
    local json
    json=$(mktemp)
    run_stage "cargo build (release, --features cuda)" 330 \
        cargo test --release -p tmcc-kernels -p tmcc-model --features cuda \
        --lib --test backend_parity --test cuda_parity --no-run --message-format=json \
        >"$json" 2>>"$LOG" || { rm -f "$json"; return 1; }
    run_stage "cargo build gpu-bench" 200 \
        cargo build --release -p tmcc-benches --features cuda --bin gpu-bench \
        --message-format=json >>"$json" 2>>"$LOG" || { rm -f "$json"; return 1; }
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    python3 - "$json" "$STAGE" <<'EOF' || return 1
import json, shutil, sys
names = {("tmcc_kernels", "lib"): "kernels_lib", ("backend_parity", "test"): "backend_parity",
         ("cuda_parity", "test"): "cuda_parity", ("gpu_bench", "bin"): "gpu_bench"}
found = set()
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    t = m["target"]
    key = (t["name"].replace("-", "_"), t["kind"][0])
    if key in names:
        shutil.copy(m["executable"], f"{sys.argv[2]}/{names[key]}")
        found.add(names[key])
missing = set(names.values()) - found
if missing:
    sys.exit(f"missing executables: {sorted(missing)}")
EOF
    # Debug info is not needed on the GPU machine; keeps `carry` small.
    command -v strip >/dev/null && strip "$STAGE"/* 2>/dev/null
    log "staged $(ls "$STAGE" | tr '\n' ' ')in $STAGE ($(du -sh "$STAGE" | cut -f1))"
}

case $MODE in
    build)
        build || { log "build failed (see $LOG)"; exit 1; }
        exit 0 ;;
    prebuilt) BIN=$(cd "$PREBUILT" && pwd) ;;
    run) build || { log "build failed (see $LOG)"; }; BIN=$STAGE ;;
esac

# ---------------------------------------------------------------- NVRTC
find_nvrtc() {
    local c
    for c in $(ldconfig -p 2>/dev/null | awk '/libnvrtc\.so/ {print $NF}') \
        /usr/local/cuda/lib64/libnvrtc.so* /usr/local/cuda-*/lib64/libnvrtc.so* \
        /usr/lib/x86_64-linux-gnu/libnvrtc.so*; do
        [[ -e $c && $c != *builtins* && $c != *alt* ]] && { echo "$c"; return; }
    done
    python3 - <<'EOF' 2>/dev/null
import glob, os, site, sys
dirs = site.getsitepackages() + [site.getusersitepackages()]
pats = ["nvidia/cuda_nvrtc/lib/libnvrtc.so.*", "nvidia/cu*/lib/libnvrtc.so.*"]
hits = sorted(p for d in dirs for pat in pats for p in glob.glob(os.path.join(d, pat))
              if "builtins" not in p and ".alt." not in p)
# Prefer NVRTC 12 (the soname cudarc asks for).
hits.sort(key=lambda p: (not p.endswith(".so.12"), p))
print(hits[0] if hits else "")
EOF
}
if [[ -z ${TMCC_NVRTC_LIB:-} ]]; then
    NVRTC=$(find_nvrtc)
    if [[ -n $NVRTC ]]; then
        case $NVRTC in
            *.so | *.so.12 | *.so.11) export TMCC_NVRTC_LIB=$NVRTC ;;
            *)
                LINKDIR=$(mktemp -d)
                ln -s "$NVRTC" "$LINKDIR/libnvrtc.so"
                export LD_LIBRARY_PATH="$LINKDIR:$(dirname "$NVRTC")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
        esac
    fi
fi
log "NVRTC: ${TMCC_NVRTC_LIB:-${NVRTC:-not found}}"

# ---------------------------------------------------------------- report header
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
{
    echo "# tmcc GPU check"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "- GPU: ${GPU:-unknown (nvidia-smi unavailable)}"
    echo "- NVRTC: ${TMCC_NVRTC_LIB:-${NVRTC:-not found}}"
    echo "- host: $(nproc) CPUs"
    echo
    echo "## Parity tests (CUDA vs CPU)"
    echo
    echo "| test binary | exit | result |"
    echo "|---|---:|---|"
} >"$REPORT"

STATUS=0
run_tests() {
    local name=$1 max=$2
    shift 2
    if [[ ! -x $BIN/$name ]]; then
        echo "| $name | - | not built |" >>"$REPORT"
        STATUS=1
        return
    fi
    local out rc
    out=$(mktemp)
    run_stage "$name" "$max" "$BIN/$name" --nocapture --test-threads 1 "$@" >"$out" 2>&1
    rc=$?
    cat "$out" >>"$LOG"
    local summary skipped reason=""
    summary=$(grep -E '^test result:' "$out" | tail -1)
    skipped=$(grep -c 'skipped: ' "$out")
    [[ $rc -ne 0 ]] && STATUS=1
    if ((skipped > 0)); then
        reason=" (first: $(grep -m1 -o 'skipped: .*' "$out" | tr '|' '/'))"
        # On a machine with a GPU, a skipped CUDA test is a failure of the check.
        [[ -n $GPU ]] && STATUS=1
    fi
    echo "| $name | $rc | ${summary:-no summary (see log)}; ${skipped} skipped${reason} |" >>"$REPORT"
    grep -E 'skipped: |worst element|norm-wise|device:|NVRTC .* compiled' "$out" | head -400 >>"$OUTDIR/gpu-parity-details.txt"
    rm -f "$out"
}
: >"$OUTDIR/gpu-parity-details.txt"
run_tests kernels_lib 60
run_tests backend_parity 120
run_tests cuda_parity 150
{
    echo
    echo "Worst elements of every comparison: gpu-parity-details.txt."
    echo
    echo "## Training throughput (emb_res, seed setting)"
    echo
} >>"$REPORT"

# ---------------------------------------------------------------- benchmarks
BENCH_OUT=$(mktemp)
if [[ -x $BIN/gpu_bench ]]; then
    run_stage "gpu_bench K=1,64,1024" 90 "$BIN/gpu_bench" --device cuda --instances 1,64,1024 \
        --seconds 4 >"$BENCH_OUT" 2>>"$LOG"
fi
TORCH_ROWS=""
if python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    for K in 1 1024; do
        J=$(run_stage "torch K=$K" 90 python3 benches/python/torch_step.py --device cuda \
            --model emb_res --instances "$K" --steps 20 --warmup 3 2>>"$LOG" | tail -1)
        ROW=$(python3 -c '
import json, sys
k = int(sys.argv[1])
try:
    r = json.loads(sys.argv[2])
    s = r["median_step_s"]
    print(f"| pytorch {r.get(\"torch_version\", \"\")} ({r[\"device\"]}) | emb_res | {k} | | {1/s:.2f} | {k/s:.0f} | | |")
except Exception as e:
    print(f"| pytorch | emb_res | {k} | | failed ({type(e).__name__}) | | | |")
' "$K" "$J")
        TORCH_ROWS+="$ROW"$'\n'
    done
else
    TORCH_ROWS="| pytorch | emb_res | - | | torch with CUDA not importable | | | |"$'\n'
fi
if [[ -x $BIN/gpu_bench ]]; then
    run_stage "gpu_bench K=8192" 200 "$BIN/gpu_bench" --device cuda --instances 8192 \
        --seconds 6 --no-header >>"$BENCH_OUT" 2>>"$LOG"
fi
{
    if [[ -s $BENCH_OUT ]]; then cat "$BENCH_OUT"; else
        echo "| backend | variant | K | set-up s | trainer steps/s | trainer model-steps/s | device-only steps/s | device-only model-steps/s |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|"
        echo "| tmcc cuda | emb_res | - | | not run (see gpu-check.log) | | | |"
    fi
    printf '%s' "$TORCH_ROWS"
    echo
    echo "\"trainer\" includes drawing every instance's sparse batch on the host and uploading it;"
    echo "\"device only\" repeats forward + backward + Adam on one uploaded batch. PyTorch: median"
    echo "step of benches/python/torch_step.py (dense einsum, batch drawn on the GPU, torch.optim.Adam)."
    echo
    python3 - "$BENCH_OUT" "$TORCH_ROWS" <<'EOF' 2>/dev/null
import sys
def rate(lines, name_prefix, k):
    for l in lines:
        c = [x.strip() for x in l.strip().strip("|").split("|")]
        if len(c) >= 6 and c[0].startswith(name_prefix) and c[2] == str(k):
            try:
                return float(c[5])
            except ValueError:
                return None
ours = open(sys.argv[1]).read().splitlines()
torch = sys.argv[2].splitlines()
a = rate([l for l in ours if not l.startswith("| backend")], "", 1024)
b = rate(torch, "pytorch", 1024)
if a and b:
    print(f"At K = 1024: tmcc {a:.0f} vs PyTorch {b:.0f} model-steps/s: {a / b:.1f}x.")
EOF
    echo
    echo "Total time: ${SECONDS}s."
} >>"$REPORT"
rm -f "$BENCH_OUT"
log "report: $REPORT"
cat "$REPORT"
exit $STATUS
