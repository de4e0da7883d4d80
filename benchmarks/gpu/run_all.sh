#!/usr/bin/env bash
# The prepared GPU run of the criss-cross attention CUDA kernels: one call on
# a lent GPU machine (an H200 with CUDA 13 and PyTorch, no Paddle GPU
# build), a few minutes, everything written into OUT_DIR. On the device
# tool OUT_DIR is $OUT, which comes back with at most 8 files: this writes 8.
#
#   benchmarks/gpu/run_all.sh OUT_DIR             # on the GPU machine
#   benchmarks/gpu/run_all.sh --dry-run OUT_DIR   # anywhere: plan and checks
#
# Steps, each under its own time limit inside a total budget
# ($RUN_ALL_BUDGET_S, default 540 s, so that one 600 s call holds it):
#   environment  nvidia-smi, nvcc, python3/torch              -> run_all.log
#   builds       in parallel: the standalone self-test (nvcc, sm_XX of the
#                GPU; -Xptxas -v -> ptxas.txt) and the PyTorch extension of
#                cca_gpu.py (in a folder outside OUT_DIR)
#   self-test    every design x dtype on NaN-poisoned buffers against the
#                oracle, twice (bitwise repeat), and a timing at
#                (2, 64, 512, 97, 97) without PyTorch          -> selftest.json
#   harness      checks and timings against PyTorch einsum at (2,512,97,97),
#                (4,512,128,256), (1,512,384,384), fp32/fp16/bf16, forward
#                and forward+backward, every design    -> cca_gpu.{json,md}
#   sanitizers   compute-sanitizer memcheck, racecheck, initcheck, synccheck
#                on the self-test's small shape               -> sanitizer.txt
#   ncu          per-kernel durations and throughput of the tiled float16
#                pass at (2, 64, 512, 97, 97), if the budget allows -> ncu.txt
#   summary      every step's status, the tables            -> summary.md
# Every step's output also goes to run_all.log. Exit status 0 when every
# step passed.
set -u -o pipefail

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: $0 [--dry-run] OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
PYTHON=${PYTHON:-python3}
BUDGET=${RUN_ALL_BUDGET_S:-540}
if [ $DRY -eq 1 ]; then
  BUILD=${RUN_ALL_BUILD_DIR:-/tmp/cca_run_all.dry-run}  # not created
else
  BUILD=${RUN_ALL_BUILD_DIR:-$(mktemp -d /tmp/cca_run_all.XXXXXX)}
  mkdir -p "$BUILD" || exit 2
fi
LOG=$OUT/run_all.log
SUMMARY=$OUT/summary.md
CSRC=paddleseg/ops/csrc
SELFTEST_SRC=tests/ops/cca_cuda_selftest.cu
TIME_SHAPE=2,64,512,97,97
START=$SECONDS
ROWS=()
FAILED=0
: > "$LOG"

log() { echo "$*" | tee -a "$LOG"; }

record() {  # record NAME STATUS SECONDS
  ROWS+=("| $1 | $2 | $3 |")
  case "$2" in ok|"dry run") ;; *) FAILED=1 ;; esac
}

# step NAME LIMIT_S COMMAND: runs the command line under `timeout` within
# what is left of the budget, its output into the log.
step() {
  local name=$1 limit=$2 cmd=$3
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 15 ]; then
    log "=== $name: skipped, the budget of ${BUDGET}s is spent"
    record "$name" "skipped (budget)" 0
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  log ""
  log "=== $name (limit ${limit}s): $cmd"
  if [ $DRY -eq 1 ]; then
    record "$name" "dry run" 0
    return 0
  fi
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" bash -c "$cmd" 2>&1 | tee -a "$LOG"
  rc=${PIPESTATUS[0]}
  local status=ok
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    status="timed out after ${limit}s"
  elif [ "$rc" -ne 0 ]; then
    status="failed (exit $rc)"
  fi
  log "=== $name: $status in $((SECONDS - t0))s"
  record "$name" "$status" $((SECONDS - t0))
  [ "$status" = ok ]
}

for f in "$SELFTEST_SRC" "$CSRC/cca_cuda.cu" benchmarks/gpu/cca_gpu.py \
         benchmarks/gpu/cca_torch.cpp; do
  [ -f "$f" ] || { log "missing $f"; exit 2; }
done

if [ $DRY -eq 1 ]; then
  bash -n "${BASH_SOURCE[0]}" || exit 1
  "$PYTHON" benchmarks/gpu/cca_gpu.py --out "$OUT" --dry-run > /dev/null ||
    exit 1
  ARCH=90
else
  ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null |
         head -1 | tr -d ' .')
  ARCH=${ARCH:-90}
fi
GENCODE="-gencode=arch=compute_${ARCH},code=sm_${ARCH}"
NVCC_FLAGS="-std=c++17 -O3 $GENCODE -I $CSRC -I tests/ops"
SANITIZER=$(command -v compute-sanitizer ||
            ls /usr/local/cuda*/bin/compute-sanitizer \
               /usr/local/cuda*/compute-sanitizer/compute-sanitizer \
               /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
SANITIZER=${SANITIZER:-compute-sanitizer}
log "run_all.sh: out $OUT, build $BUILD, sm_$ARCH, budget ${BUDGET}s$(
  [ $DRY -eq 1 ] && echo ', dry run')"

step "environment" 60 "nvidia-smi; nvcc --version; $PYTHON -c \
'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name())'"

# The PyTorch extension builds in the background while nvcc builds the
# self-test.
TORCH_BUILD="MAX_JOBS=8 $PYTHON benchmarks/gpu/cca_gpu.py --out $OUT \
--build-only --build-dir $BUILD/torch_ext"
log ""
log "=== torch extension build, in the background: $TORCH_BUILD"
if [ $DRY -eq 0 ]; then
  (timeout 420 bash -c "$TORCH_BUILD" > "$BUILD/torch_build.log" 2>&1
   echo $? > "$BUILD/torch_build.rc") &
  TORCH_PID=$!
fi

step "build self-test" 300 "set -e
(nvcc $NVCC_FLAGS -Xptxas -v -c $CSRC/cca_cuda.cu -o $BUILD/cca_cuda.o \
  2> $BUILD/ptxas.raw) &
nvcc $NVCC_FLAGS -c $SELFTEST_SRC -o $BUILD/selftest.o
wait \$!
(c++filt < $BUILD/ptxas.raw 2>/dev/null || cat $BUILD/ptxas.raw) > $OUT/ptxas.txt
grep -E 'error|warning' $BUILD/ptxas.raw || true
nvcc $GENCODE $BUILD/selftest.o $BUILD/cca_cuda.o -o $BUILD/cca_cuda_selftest"

step "self-test" 180 "set -o pipefail; $BUILD/cca_cuda_selftest \
--json $OUT/selftest.json --time $TIME_SHAPE | tee $BUILD/selftest.txt"

if [ $DRY -eq 0 ]; then
  wait "$TORCH_PID"
  cat "$BUILD/torch_build.log" >> "$LOG"
  TORCH_RC=$(cat "$BUILD/torch_build.rc" 2>/dev/null || echo 1)
  log "=== torch extension build: exit $TORCH_RC (log above)"
  [ "$TORCH_RC" = 0 ] && record "torch extension build" ok 0 ||
    record "torch extension build" "failed (exit $TORCH_RC)" 0
fi

step "harness" 300 "PYTHONUNBUFFERED=1 $PYTHON benchmarks/gpu/cca_gpu.py \
--out $OUT --build-dir $BUILD/torch_ext --repeat 20 \
--designs simt,tiled,tiled_tf32"

: > "$OUT/sanitizer.txt"
for tool in memcheck racecheck initcheck synccheck; do
  step "compute-sanitizer $tool" 150 "$SANITIZER --tool $tool \
--error-exitcode 3 $BUILD/cca_cuda_selftest --quick > $BUILD/$tool.txt 2>&1
rc=\$?
{ echo '=== $tool'; cat $BUILD/$tool.txt; } >> $OUT/sanitizer.txt
grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Hazard|selftest:' $BUILD/$tool.txt |
  head -40
exit \$rc"
done

# Per-kernel durations and throughput of one tiled float16 forward and
# forward+backward at (2, 64, 512, 97, 97), for the cost model of
# benchmarks/gpu/README.md; only where the budget still allows it.
NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu \
      2>/dev/null | head -1)
NCU=${NCU:-ncu}
step "ncu (tiled float16 kernels)" 120 "$NCU --clock-control none \
--section SpeedOfLight --section LaunchStats --section Occupancy \
$BUILD/cca_cuda_selftest --time $TIME_SHAPE --designs tiled \
--time-dtypes float16 --repeat 1 > $OUT/ncu.txt 2>&1
rc=\$?
grep -E '^  [a-z_]+.*\\(|Duration|DRAM Throughput|L2 Cache Throughput|\
Compute \\(SM\\) Throughput|Registers Per|Achieved Occupancy' $OUT/ncu.txt |
  head -60
exit \$rc"

{
  echo "# run_all.sh: criss-cross attention CUDA kernels"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), sm_$ARCH, $((SECONDS - START)) s"
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  if [ -f "$BUILD/selftest.txt" ]; then
    echo; echo "## Self-test (tests/ops/cca_cuda_selftest.cu)"; echo
    cat "$BUILD/selftest.txt"
  fi
  if [ -f "$OUT/cca_gpu.md" ]; then
    echo; echo "## Harness (benchmarks/gpu/cca_gpu.py)"; echo
    sed 1d "$OUT/cca_gpu.md"
  fi
  if [ -s "$OUT/sanitizer.txt" ]; then
    echo; echo "## compute-sanitizer"; echo; echo '```'
    grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|Hazard' "$OUT/sanitizer.txt" |
      head -40
    echo '```'
  fi
} > "$SUMMARY"
log ""
log "summary: $SUMMARY"
cat "$SUMMARY" | head -40
exit $FAILED
