#!/usr/bin/env bash
# gpu-check.sh OUTDIR: the one-call verification of MoDE-J on a GPU machine, run from the GPU bundle that
# `./mode gpu-bundle` writes (docs/gpu-check.md). Needs nothing of the machine but bash, tar, gzip and coreutils: the
# Java runtime, the jars, the kernels and the fixture are in the bundle. The steps run in the order of PLAN: first
# what a first GPU run must establish (arguments reach the kernels through the real driver, modules come from the
# sm_90a image, compute-sanitizer finds nothing on attention and the WMMA GEMM, cuBLASLt handles every layout, a
# device-side error leaves the context usable), then the suites, training and benchmarks. Each step runs under its
# own time budget and is skipped, with the reason, when it runs over; without a GPU the JUnit steps still resolve
# their test selection (every test then skips by assumption) and the kernel and grads steps run in their emulator
# form. Writes OUTDIR/summary.md, results.json and gpu-check.log (plus bench.json and bench.md from the GPU
# benchmarks) and ends with the line "N passed, N failed, N skipped".
#
# Environment: MODE_GPU_CHECK_STEPS (space-separated step names) runs only those, for a rerun after a fix (facts
# always runs); MODE_GPU_CHECK_TOTAL_S (default 480, the sum of the budgets) caps the whole run;
# MODE_GPU_CHECK_BUDGET_SCALE (a whole number, default 1) multiplies every budget, for slow or loaded machines
# (GpuBundleTest); MODE_GPU_CHECK_TRAIN_TOL (default 0.01 nats) is the per-step loss tolerance of the cuda-vs-cpu
# training comparison; PYTHON (default python3) runs the PyTorch peer.
set -uo pipefail

BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
JVM_FLAGS=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss4m -XX:+UseParallelGC
  -XX:+UseCountedLoopSafepoints -XX:LoopStripMiningIter=1000)
FIXTURE="$BUNDLE/fixtures/hf-llama-reference"
TRAIN_STEPS=100
TRAIN_TOL="${MODE_GPU_CHECK_TRAIN_TOL:-0.01}"
PY="${PYTHON:-python3}"

# ---------------------------------------------------------------- one step, run as `gpu-check.sh --step NAME`
# Exit status: 0 passed, 1 failed, 3 skipped (the last line says why).
java_cmd() { "$MODE_GPU_JAVA" "${JVM_FLAGS[@]}" -cp "$MODE_GPU_CP" "$@"; }

# What runs the JVM of a JUnit step: nothing, or compute-sanitizer with its options (the sanitizer steps).
JUNIT_PREFIX=()

junit() { # junit [JVM -D options...] -- [launcher selectors...]
  local props=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do props+=("$1"); shift; done
  shift
  "${JUNIT_PREFIX[@]}" "$MODE_GPU_JAVA" "${JVM_FLAGS[@]}" "${props[@]}" -cp "$MODE_GPU_CP" \
    org.junit.platform.console.ConsoleLauncher execute --disable-banner --details=tree --disable-ansi-colors "$@"
}

# The launcher's counts as one line: "N tests successful, N failed, N aborted (skipped by assumption), N found".
junit_counts() {
  local out="$1" ok failed aborted found
  ok=$(sed -n 's/.*\[ *\([0-9]*\) tests successful.*/\1/p' "$out" | tail -1)
  failed=$(sed -n 's/.*\[ *\([0-9]*\) tests failed.*/\1/p' "$out" | tail -1)
  aborted=$(sed -n 's/.*\[ *\([0-9]*\) tests aborted.*/\1/p' "$out" | tail -1)
  found=$(sed -n 's/.*\[ *\([0-9]*\) tests found.*/\1/p' "$out" | tail -1)
  echo "${ok:-0} tests successful, ${failed:-0} failed, ${aborted:-0} aborted (skipped by assumption), ${found:-0} found"
}

# Runs a JUnit selection; passes when nothing failed and something ran, skips when nothing ran (no GPU: every test
# skips by assumption, and the count of tests found shows that the selection resolved).
junit_step() {
  local name="$1" out="$MODE_GPU_WORK/$1.junit.txt" rc
  shift
  junit "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  local counts
  counts="$(junit_counts "$out")"
  if [ "$rc" -eq 0 ] && [ "${counts%% *}" -eq 0 ]; then echo "$counts: nothing ran ($MODE_GPU_REASON)"; return 3; fi
  echo "$counts"
  [ "$rc" -eq 0 ]
}

CONFORMANCE=ai.mode.tests.gpu.CudaConformanceTest
FIRST_RUN=ai.mode.tests.gpu.CudaFirstRunGpuTest
# compute-sanitizer's target: attention forward and backward at the suite's odd sizes (T 1 to 70, head dims 1 to 72,
# grouped heads) and at model size, and the bf16 GEMMs, which with the project's kernels run the WMMA tensor-core
# GEMM, every transpose, tile edges in every dimension
SANITIZE=(-Dmode.cuda.gemm=kernel -- --select-method "$CONFORMANCE#attention" --select-method "$CONFORMANCE#gemmBf16Operands")

step() {
  case "$1" in
    facts)
      command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
        --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
      command -v nvcc >/dev/null && echo "nvcc: $(nvcc --version | tail -2 | head -1)"
      "$PY" -c 'import torch; print("python torch", torch.__version__, "CUDA runtime", torch.version.cuda)' 2>/dev/null
      # the libraries, their versions, the devices; its last line is "no GPU: <reason>" where none can be used
      java_cmd ai.mode.tests.gpucheck.GpuCheck facts
      local rc=$?
      [ "$rc" -eq 3 ] && return 0
      return "$rc"
      ;;
    marshalling)
      # the probe kernel echoes one parameter of every type and the launch geometry through cuLaunchKernel, and
      # every kernel's parameter sizes (cuFuncGetParamInfo) equal the C signature the emulator recorded
      junit_step marshalling -- --select-method "$FIRST_RUN#probeEchoesEveryParameterTypeThroughTheDriver" \
        --select-method "$FIRST_RUN#everyKernelTakesTheParameterSizesOfItsCSignature"
      ;;
    modules)
      junit_step modules -- --select-method "$FIRST_RUN#everyKernelComesFromTheFatbinsImageForThisGpu"
      ;;
    memcheck | racecheck | synccheck | initcheck)
      if [ "$MODE_GPU_HAVE" = 1 ]; then
        local cs
        cs="$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)"
        [ -n "$cs" ] || { echo "compute-sanitizer not found (PATH, /usr/local/cuda*/bin)"; return 3; }
        JUNIT_PREFIX=("$cs" --tool "$1" --error-exitcode 86 --target-processes all)
      fi
      junit_step "$1" "${SANITIZE[@]}"
      local rc=$?
      # compute-sanitizer's own verdict ("ERROR SUMMARY: N errors", racecheck's "RACECHECK SUMMARY: ...") last
      [ "$MODE_GPU_HAVE" = 1 ] && grep -E '^========= (ERROR|RACECHECK) SUMMARY' "$MODE_GPU_WORK/$1.junit.txt" | tail -1
      return "$rc"
      ;;
    cublaslt)
      junit_step cublaslt -- --select-class ai.mode.tests.gpu.CublasLtGemmGpuTest
      ;;
    error-word)
      # device-side index checks report the lowest offending position through the error word; afterwards the
      # context still runs a GEMM that matches float64
      junit_step error-word -- --select-method "$CONFORMANCE#indexErrorsNameTheOpAndValueThenClear" \
        --select-method "$CONFORMANCE#indexErrorsNameTheLowestOffendingPosition"
      ;;
    gpu-tests)
      [ "$MODE_GPU_HAVE" = 1 ] || { echo "no GPU: the gpu-tagged tests need one"; return 3; }
      # every other gpu-tagged test (the classes the first steps ran in full are left out)
      junit_step gpu-tests -- --scan-classpath "$MODE_GPU_TESTS_JAR" --include-tag gpu \
        --exclude-classname '.*\.(CudaFirstRunGpuTest|CublasLtGemmGpuTest)'
      ;;
    kernels)
      if [ "$MODE_GPU_HAVE" = 1 ]; then
        # the backend conformance suite on cuda with the project's own GEMM kernels, not cuBLASLt (which the
        # gpu-tests step's run of the same suite uses)
        junit_step kernels -Dmode.cuda.gemm=kernel -- --select-class "$CONFORMANCE"
      else
        echo "no GPU: the kernel tests run on the CPU emulator (emu) instead"
        junit_step kernels -- --select-class ai.mode.tests.kernels.EmuConformanceTest
      fi
      ;;
    grads)
      local dev=cuda files=()
      [ "$MODE_GPU_HAVE" = 1 ] || { dev=emu; echo "no GPU: mode grads runs on the CPU emulator (emu) instead"; }
      for be in "$dev" cpu; do
        java_cmd ai.mode.cli.Main grads --backend "$be" --checkpoint "$FIXTURE" --tokens "$FIXTURE/tokens.txt" \
          --out "$MODE_GPU_WORK/grads-$be.safetensors" || return 1
        files+=("$MODE_GPU_WORK/grads-$be.safetensors")
      done
      java_cmd ai.mode.tests.model.HfGradsCheck "$FIXTURE" "${files[@]}"
      ;;
    train)
      [ "$MODE_GPU_HAVE" = 1 ] || { echo "no GPU: $TRAIN_STEPS training steps on the emulator would take hours"; return 3; }
      java_cmd ai.mode.tests.gpucheck.GpuCheck train "$TRAIN_STEPS" "$TRAIN_TOL"
      ;;
    sass)
      # every tensor-core kernel (WMMA GEMM, grouped expert GEMM, flash attention) has HMMA instructions in the SASS of its fatbin
      java_cmd ai.mode.tests.gpucheck.GpuCheck sass
      ;;
    gpu-bench)
      [ "$MODE_GPU_HAVE" = 1 ] || { echo "no GPU: nothing to benchmark"; return 3; }
      java_cmd ai.mode.cli.Main bench --quick --only gpu --out "$MODE_GPU_OUT/bench.json" \
        --markdown "$MODE_GPU_OUT/bench.md" || return 1
      # the deterministic reductions at d=4096 over 64k tokens must be among the rows, measured
      java_cmd ai.mode.tests.gpucheck.GpuCheck bench-rows "$MODE_GPU_OUT/bench.json"
      ;;
    trainer-vs-torch)
      [ "$MODE_GPU_HAVE" = 1 ] || { echo "no GPU: nothing to compare"; return 3; }
      "$PY" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null \
        || { echo "no PyTorch with CUDA behind '$PY': only our side would run"; return 3; }
      java_cmd ai.mode.tests.gpucheck.GpuCheck trainer-vs-torch "$PY" 20
      ;;
    *) echo "unknown step $1"; return 1 ;;
  esac
}

if [ "${1:-}" = "--step" ]; then
  step "$2"
  exit $?
fi

# ---------------------------------------------------------------- the run
OUT="${1:?usage: gpu-check.sh OUTDIR}"
mkdir -p "$OUT" || { echo "gpu-check: cannot create $OUT" >&2; exit 2; }
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu-check.log"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
START=$SECONDS
SCALE="${MODE_GPU_CHECK_BUDGET_SCALE:-1}"
TOTAL_S="${MODE_GPU_CHECK_TOTAL_S:-$((480 * SCALE))}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mode-gpu-check.XXXXXX")"
echo "gpu-check: bundle $BUNDLE, output $OUT, work $WORK, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
sed -n 1p "$BUNDLE/BUNDLE.txt"

# The bundle's own Java runtime, unpacked once per bundle content outside the bundle (so the folder stays small).
RT_KEY="$(cksum < "$BUNDLE/runtime.tgz" | cut -d' ' -f1)"
RT="${TMPDIR:-/tmp}/mode-gpu-runtime-$RT_KEY"
if [ ! -x "$RT/runtime/bin/java" ]; then
  mkdir -p "$RT.part" && tar -xzf "$BUNDLE/runtime.tgz" -C "$RT.part" && rm -rf "$RT" && mv "$RT.part" "$RT" \
    || { echo "gpu-check: cannot unpack $BUNDLE/runtime.tgz into $RT"; exit 2; }
fi
export MODE_GPU_JAVA="$RT/runtime/bin/java"
echo "java: $MODE_GPU_JAVA ($("$MODE_GPU_JAVA" -version 2>&1 | head -1))"
export MODE_GPU_CP="$(sed "s|^|$BUNDLE/lib/|" "$BUNDLE/lib/classpath.txt" | paste -sd:)"
export MODE_GPU_TESTS_JAR="$BUNDLE/lib/$(head -1 "$BUNDLE/lib/classpath.txt")"
export MODE_GPU_WORK="$WORK" MODE_GPU_OUT="$OUT"
# caches (extracted libraries, NVRTC output) stay in the work folder; the wheels' site-packages are searched too
export XDG_CACHE_HOME="$WORK/cache"
if SITE="$("$PY" -c 'import site; print(":".join(site.getsitepackages()))' 2>/dev/null)"; then
  export MODE_PYTHON_SITE="$SITE${MODE_PYTHON_SITE:+:$MODE_PYTHON_SITE}"
fi

NAMES=() STATUS=() SECS=() DETAIL=()
run() { # run NAME BUDGET_S
  local name="$1" budget=$(($2 * SCALE)) left rc t0 detail status
  left=$((TOTAL_S - (SECONDS - START)))
  [ "$budget" -gt "$left" ] && budget="$left"
  echo
  echo "=== $name (budget ${budget} s)"
  t0=$SECONDS
  if [ -n "${MODE_GPU_CHECK_STEPS:-}" ] && [ "$name" != facts ] && [[ " $MODE_GPU_CHECK_STEPS " != *" $name "* ]]; then
    rc=3 detail="not selected (MODE_GPU_CHECK_STEPS=$MODE_GPU_CHECK_STEPS)"
  elif [ "$budget" -lt 5 ]; then
    rc=3 detail="not started: the whole check's ${TOTAL_S} s were spent"
  else
    # the file exists before tail opens it: tail -f gives up on a missing file, and on a loaded machine the
    # background job's redirection could come after tail started, losing the step's whole output
    : > "$WORK/$name.out"
    timeout -k 10 "$budget" bash "$BUNDLE/gpu-check.sh" --step "$name" >> "$WORK/$name.out" 2>&1 &
    local pid=$!
    tail -n +1 -f --pid="$pid" "$WORK/$name.out" 2>/dev/null
    wait "$pid"
    rc=$?
    detail="$(sed '/^[[:space:]]*$/d' "$WORK/$name.out" | tail -1)"
  fi
  case "$rc" in
    0) status=passed ;;
    3) status=skipped ;;
    124 | 137) status=skipped detail="ran over its budget of ${budget} s (last line: ${detail:-none})" ;;
    *) status=failed ;;
  esac
  NAMES+=("$name") STATUS+=("$status") SECS+=($((SECONDS - t0))) DETAIL+=("${detail:-exit status $rc}")
  echo "=== $name: $status in $((SECONDS - t0)) s: ${detail:-exit status $rc}"
}

# The steps in order, with their budgets in seconds (at scale 1 they sum to the default total, 480 s): first what
# a first GPU run must establish, then the suites, training and the benchmarks (docs/gpu-check.md has the table).
PLAN=(facts:30 marshalling:20 modules:15 memcheck:30 racecheck:30 synccheck:20 initcheck:25 cublaslt:25
  error-word:15 sass:20 gpu-tests:45 kernels:55 grads:30 train:35 gpu-bench:60 trainer-vs-torch:25)
PLAN_S=0
for p in "${PLAN[@]}"; do PLAN_S=$((PLAN_S + ${p#*:} * SCALE)); done
echo "plan: ${PLAN[*]} (seconds, times $SCALE): $PLAN_S s of the ${TOTAL_S} s total"

export MODE_GPU_HAVE=0 MODE_GPU_REASON="no GPU"
for p in "${PLAN[@]}"; do
  run "${p%%:*}" "${p#*:}"
  if [ "${p%%:*}" = facts ] && grep -q '^GPU 0:' "$WORK/facts.out"; then
    MODE_GPU_HAVE=1 MODE_GPU_REASON="every test skipped by assumption"
  fi
done

# ---------------------------------------------------------------- summary.md, results.json, the closing line
P=0 F=0 S=0
for s in "${STATUS[@]}"; do case "$s" in passed) P=$((P + 1)) ;; failed) F=$((F + 1)) ;; *) S=$((S + 1)) ;; esac; done
json_str() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\t'/ }"; printf '"%s"' "${s//$'\r'/}"; }
GPU_LINE="$(grep -m1 -E '^(GPU 0:|no GPU:)' "$WORK/facts.out" || echo "unknown")"
{
  echo "# gpu-check"
  echo
  echo "$(sed -n 1p "$BUNDLE/BUNDLE.txt")  "
  echo "$GPU_LINE  "
  echo "run $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - START)) s in all"
  echo
  echo "| step | status | seconds | detail |"
  echo "|---|---|---:|---|"
  for i in "${!NAMES[@]}"; do
    echo "| ${NAMES[$i]} | ${STATUS[$i]} | ${SECS[$i]} | ${DETAIL[$i]//|/\\|} |"
  done
  echo
  grep -E '^(library |NVRTC|cuBLASLt|NCCL|GPU [0-9]|nvidia-smi|nvcc|python torch)' "$WORK/facts.out" | sed 's/$/  /'
  echo
  echo "$P passed, $F failed, $S skipped"
} > "$OUT/summary.md"
{
  printf '{\n  "bundle": %s,\n  "gpu": %s,\n  "seconds": %d,\n  "steps": [\n' \
    "$(json_str "$(sed -n 1p "$BUNDLE/BUNDLE.txt")")" "$(json_str "$GPU_LINE")" "$((SECONDS - START))"
  for i in "${!NAMES[@]}"; do
    [ "$i" -gt 0 ] && printf ',\n'
    printf '    {"name": %s, "status": "%s", "seconds": %d, "detail": %s}' \
      "$(json_str "${NAMES[$i]}")" "${STATUS[$i]}" "${SECS[$i]}" "$(json_str "${DETAIL[$i]}")"
  done
  printf '\n  ],\n  "passed": %d,\n  "failed": %d,\n  "skipped": %d\n}\n' "$P" "$F" "$S"
} > "$OUT/results.json"
rm -rf "$WORK"
echo
echo "$P passed, $F failed, $S skipped"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
[ "$F" -eq 0 ]
