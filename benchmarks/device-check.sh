#!/usr/bin/env bash
# The GPU checks, in one run on the device machine (an H100: Ubuntu 24.04, nvcc 13.0, CMake 4.x,
# Boost 1.83, GoogleTest, Google Benchmark, PyTorch; no internet, no Fashion-MNIST package,
# perhaps no OpenBLAS, Random123 or zlib headers).
#
#   benchmarks/device-check.sh [stats] [trainer]     (no argument: both)
#
# stats (about 4 minutes): the CUDA correlate_over_steps (cuda/proxytask/stats/over_steps.cuh)
#   1. builds proxytask_stats_cuda_tests and proxytask_stats_cuda_bench (Release, sm_90);
#   2. runs the GPU tests (GPU against CPU, bit for bit), then compute-sanitizer memcheck and
#      racecheck on a small filter of them;
#   3. runs the benchmark (GPU, CPU with all threads, bare CUB sorts: segmented, whole batch) and
#      benchmarks/peers/gpu_peers.py (PyTorch, torchmetrics, scipy) on the same inputs;
#   4. prints one table: ours against PyTorch with the issue's targets, ranked elements per second
#      against the CUB sorts, and the GPU-vs-CPU crossover that backend::auto_ uses;
#   5. with nsys, and when under 4 minutes have passed: the kernel times of the plain case and the
#      10-model bootstrap (stats_kernels.txt), for the why of a missed target.
# trainer (about 5 minutes): the reference trainer's CUDA back-end
#   1. builds proxytask_core_cuda_tests, proxytask_trainer_cuda_tests,
#      proxytask_trainer_cuda_bench, proxytask-reference-trainer-cuda, and the CPU epoch
#      benchmark where OpenBLAS was found;
#   2. runs their GPU tests;
#   3. runs the GPU epoch benchmark (784-256-10 ReLU, Adam, batch 256, 60,000 images) and the CPU
#      one (the baseline on the same machine), then PyTorch on the same model
#      (benchmarks/peers/torch_mlp.py: eager, fused Adam, torch.compile);
#   4. trains the documented full run on the GPU with proxytask-reference-trainer-cuda
#      (784-256-10, 15 epochs, Adam 2e-3, EMA 0.999) and prints its accuracy;
#   5. prints a table: our samples/s against PyTorch's, and the ratio (the target: >= 1 against
#      PyTorch eager on the same GPU in the same run).
# Every part runs even when an earlier one failed (except what needs the build); the exit status
# is non-zero when any part failed. Results go to build/device/device-check/ and, when $OUT is
# set (the device tool, which returns at most 8 files), to $OUT as the summaries and one archive
# of everything, device-check.tar.gz, refreshed as each part starts: a run stopped at its time
# limit still returns what it had measured.
#
# Data and headers the device machine lacks travel in the ignored folder .device-data/ (the
# device tool carries ignored paths named in its `carry` list). Prepare it once, here:
#
#   mkdir -p .device-data/fashion-mnist .device-data/include && cp /usr/share/datasets/fashion-mnist/*-ubyte.gz .device-data/fashion-mnist/ && cp -r /usr/include/Random123 /usr/include/zlib.h /usr/include/zconf.h .device-data/include/
#
# then run, on the device: benchmarks/device-check.sh   (with carry: [".device-data"])
# Without the Fashion-MNIST files the trainer benchmarks use synthetic data of the same shape
# (noted) and its training run is skipped.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build=build/device
results=$build/device-check
jobs=${DEVICE_CHECK_JOBS:-16}
rm -rf "$results"  # only this run's results: none left from an earlier run can pass for new
mkdir -p "$results"
failed=()
started=$(date +%s)

save_results() {  # the results so far to $OUT (see the header), when it is set
  [[ -n ${OUT:-} && -d ${OUT:-} ]] || return 0
  cp "$results"/*summary.md "$OUT"/ 2>/dev/null || true
  tar -czf "$OUT/device-check.tar.gz" -C "$results" --exclude='*.nsys-rep' --exclude='*.sqlite' \
    --exclude=full-run . 2>/dev/null || true
}
say() {
  save_results
  printf '\n== %s (%ds)\n' "$*" "$(($(date +%s) - started))"
}
# bench_ok FILE: the Google Benchmark JSON exists and no benchmark in it reported an error (a
# benchmark that calls SkipWithError still exits 0).
bench_ok() {
  [[ -s $1 ]] && ! grep -q '"error_occurred": true' "$1" ||
    { echo "device-check: $1: a benchmark reported an error (see above)" >&2; return 1; }
}
part() {  # part NAME COMMAND...: runs a part, records its failure, never stops the script
  local name=$1
  shift
  if "$@"; then
    return 0
  fi
  echo "device-check: FAILED: $name" >&2
  failed+=("$name")
  return 1
}

# --- data and headers -------------------------------------------------------------------------
data_dir=$root/.device-data/fashion-mnist
if [[ -f $data_dir/train-images-idx3-ubyte.gz && -f $data_dir/train-labels-idx1-ubyte.gz &&
      -f $data_dir/t10k-images-idx3-ubyte.gz && -f $data_dir/t10k-labels-idx1-ubyte.gz ]]; then
  export PROXYTASK_FASHION_MNIST_DIR=$data_dir
  echo "device-check: Fashion-MNIST from $data_dir"
elif [[ -n ${PROXYTASK_FASHION_MNIST_DIR:-} && -d $PROXYTASK_FASHION_MNIST_DIR ]]; then
  echo "device-check: Fashion-MNIST from \$PROXYTASK_FASHION_MNIST_DIR=$PROXYTASK_FASHION_MNIST_DIR"
else
  unset PROXYTASK_FASHION_MNIST_DIR
  echo "device-check: no Fashion-MNIST (.device-data/fashion-mnist/ is missing: see the header" \
       "of this script): synthetic data, and no training run" >&2
fi
have_data() { [[ -n ${PROXYTASK_FASHION_MNIST_DIR:-} ]]; }

cmake_args=(-DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
            -DPROXYTASK_BUILD_TESTS=ON -DPROXYTASK_BUILD_BENCHMARKS=ON
            -DPROXYTASK_BUILD_EXAMPLES=ON -DPROXYTASK_INSTALL=OFF)
# Boost.JSON from its headers where the machine has no libboost-json (the device machine).
if ! compgen -G "/usr/lib/x86_64-linux-gnu/cmake/boost_json-*" >/dev/null; then
  cmake_args+=(-DPROXYTASK_BOOST_JSON_FROM_HEADERS=ON)
  echo "device-check: Boost.JSON compiled from its headers (no libboost-json here)"
fi
carried=$root/.device-data/include
if [[ ! -f /usr/include/Random123/philox.h && -f $carried/Random123/philox.h ]]; then
  cmake_args+=(-DRandom123_INCLUDE_DIR="$carried")
  echo "device-check: Random123 from $carried"
fi
if [[ ! -f /usr/include/zlib.h && -f $carried/zlib.h ]]; then
  libz=$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/ {print $NF; exit}')
  if [[ -n $libz ]]; then
    cmake_args+=(-DZLIB_INCLUDE_DIR="$carried" -DZLIB_LIBRARY="$libz")
    echo "device-check: zlib headers from $carried, library $libz"
  fi
fi
# Ninja when there is one, unless the build folder was configured with another generator.
if command -v ninja >/dev/null && ! grep -qs 'CMAKE_GENERATOR:INTERNAL=Unix Makefiles' \
  "$build/CMakeCache.txt"; then
  cmake_args+=(-G Ninja)
fi

run_stats=0
run_trainer=0
for section in "$@"; do
  case $section in
    stats) run_stats=1 ;;
    trainer) run_trainer=1 ;;
    *) echo "usage: benchmarks/device-check.sh [stats] [trainer]" >&2; exit 2 ;;
  esac
done
if ((!run_stats && !run_trainer)); then run_stats=1 run_trainer=1; fi

# --- configure and build (both sections' targets in one parallel build) -------------------------
say "configure ($build)"
configure() { cmake -S . -B "$build" "${cmake_args[@]}"; }
built=0
if part configure configure; then
  targets=()
  ((run_stats)) && targets+=(proxytask_stats_cuda_tests proxytask_stats_cuda_bench)
  if ((run_trainer)); then
    targets+=(proxytask_core_cuda_tests proxytask_trainer_cuda_tests proxytask_trainer_cuda_bench
              proxytask-reference-trainer-cuda)
    if cmake --build "$build" --target help 2>/dev/null | grep -q 'proxytask_trainer_bench'; then
      targets+=(proxytask_trainer_bench)
    fi
  fi
  say "build: ${targets[*]}"
  if part build cmake --build "$build" -j "$jobs" --target "${targets[@]}"; then built=1; fi
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  sed 's/^/device-check: GPU: /' || echo "device-check: nvidia-smi not found" >&2

# === stats: correlate_over_steps on the GPU ======================================================
if ((run_stats && built)); then
  say "stats: GPU tests (GPU against CPU, bit for bit)"
  part "stats GPU tests" timeout 240 "$build/tests/proxytask_stats_cuda_tests" \
    >"$results/stats_tests.txt" 2>&1 || true
  grep -E '^\[ *(PASSED|FAILED|SKIPPED|  OK) *\]|Failure|error' "$results/stats_tests.txt" |
    head -80 || true
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  # Small tests only: both replicate paths (up to 32 models, and more), BCa and percentile, both
  # coefficients (Kendall's merge sorts in shared memory), device data and empty inputs; memcheck
  # also the segmented-sort path, the permutation tests, every resample tier and steps of no or
  # one value.
  small='CudaTest.MatchesTheCpuOnFewModels:CudaTest.MatchesTheCpuOnFloatScoresAndTheValidityRule'
  small+=':CudaTest.AcceptsDeviceDataAndAStream'
  more=':CudaTest.MatchesTheCpuAboveOneBlock:CudaTest.HandlesNoStepsAndNoModels'
  more+=':CudaTest.MatchesTheCpuOnPermutationTests:CudaTest.MatchesTheCpuAtEveryResampleTier'
  more+=':CudaTest.MatchesTheCpuOnStepsOfNoOrOneValue'
  declare -A filters=([memcheck]="$small$more" [racecheck]="$small")
  for tool in memcheck racecheck; do
    say "stats: compute-sanitizer --tool $tool (small tests)"
    part "compute-sanitizer $tool" timeout 150 "$sanitizer" --tool "$tool" --error-exitcode 1 \
      "$build/tests/proxytask_stats_cuda_tests" --gtest_filter="${filters[$tool]}" \
      --gtest_brief=1 >"$results/stats_$tool.txt" 2>&1 || true
    tail -5 "$results/stats_$tool.txt"
  done
  say "stats: benchmark (GPU, CPU, CUB sort)"
  part "stats benchmark" timeout 150 "$build/benchmarks/proxytask_stats_cuda_bench" \
    --benchmark_min_time=0.1 --benchmark_out="$results/stats_ours.json" \
    --benchmark_out_format=json && part "stats benchmark" bench_ok "$results/stats_ours.json" ||
    true
fi
if ((run_stats)); then
  say "stats: PyTorch, torchmetrics, scipy (benchmarks/peers/gpu_peers.py)"
  part "GPU peers" timeout 150 python3 benchmarks/peers/gpu_peers.py \
    --json "$results/stats_peers.json" >"$results/stats_peers_stdout.json" || true
  say "stats: summary"
  python3 - "$results" <<'PY' | tee "$results/stats_summary.md" || failed+=("stats summary")
import json, os, sys
results = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(results, name)) as f:
            return json.load(f)
    except Exception:
        return None

ours = load("stats_ours.json") or {}
peers = load("stats_peers.json") or load("stats_peers_stdout.json") or {}
runs = [b for b in ours.get("benchmarks", [])
        if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred")]

def ms(prefix):  # our benchmark's time in ms (the unit is ms)
    b = next((b for b in runs if b["name"].startswith(prefix + "/")), None)
    return b["real_time"] if b else None

def rate(prefix):
    b = next((b for b in runs if b["name"].startswith(prefix + "/")), None)
    return b.get("ranked_elements_per_second") if b else None

def fmt(v, digits=3):
    return f"{v:.{digits}f}" if isinstance(v, (int, float)) else "n/a"

print(f"device: {peers.get('device', '?')}; torch {peers.get('torch', '?')}, torchmetrics "
      f"{peers.get('torchmetrics')}, scipy {peers.get('scipy')}")
if "error" in peers:
    print(f"peers: {peers['error']}")
res = peers.get("results", {})
print()
print("| case (steps x models x resamples) | ours GPU ms | ours CPU ms | PyTorch ms | "
      "PyTorch + CI ms | torchmetrics ms | scipy ms | PyTorch / ours | target | met |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
verdicts = []
cases = [("plain Spearman 200 x 15625", "steps:200/models:15625/resamples:0",
          "plain_spearman/200x15625", 3.0, "BM_Spearman"),
         ("bootstrap 100 x 10 x 10000, percentile CI", "steps:100/models:10/resamples:10000",
          "bootstrap_spearman/100x10x10000", 20.0, "BM_Spearman"),
         ("bootstrap 200 x 1000 x 1000, percentile CI", "steps:200/models:1000/resamples:1000",
          "bootstrap_spearman/200x1000x1000", 8.0, "BM_Spearman"),
         ("bootstrap 200 x 15625 x 100, percentile CI", "steps:200/models:15625/resamples:100",
          "bootstrap_spearman/200x15625x100", 4.0, "BM_Spearman"),
         ("bootstrap 100 x 10 x 10000, BCa CI", "steps:100/models:10/resamples:10000",
          "bootstrap_spearman/100x10x10000", 20.0, "BM_SpearmanBca"),
         ("bootstrap 200 x 1000 x 1000, BCa CI", "steps:200/models:1000/resamples:1000",
          "bootstrap_spearman/200x1000x1000", 8.0, "BM_SpearmanBca"),
         ("bootstrap 200 x 15625 x 100, BCa CI", "steps:200/models:15625/resamples:100",
          "bootstrap_spearman/200x15625x100", 4.0, "BM_SpearmanBca")]
for label, args, peer, target, bench in cases:
    gpu, cpu = ms(f"{bench}_Cuda/{args}"), ms(f"{bench}_Cpu/{args}")
    p = res.get(peer, {})
    torch_ms = p.get("torch_ms")
    ratio = torch_ms / gpu if torch_ms and gpu else None
    met = "-" if ratio is None else ("yes" if ratio >= target else "NO")
    verdicts.append((label, met))
    print(f"| {label} | {fmt(gpu)} | {fmt(cpu)} | {fmt(torch_ms)} | "
          f"{fmt(p.get('torch_with_ci_ms'))} | {fmt(p.get('torchmetrics_ms'))} | "
          f"{fmt(p.get('scipy_ms'))} | {fmt(ratio, 1)} | >= {target:g}x | {met} |")
print()
print("Without a PyTorch peer: ours on the GPU against ours on every CPU thread, same machine.")
print()
print("| case (steps x models x resamples or pairings) | ours GPU ms | ours CPU ms | CPU / GPU |")
print("|---|---:|---:|---:|")
for label, bench, args in [
        ("Kendall tau-b 200 x 15625", "BM_Kendall", "steps:200/models:15625/resamples:0"),
        ("Kendall bootstrap 100 x 10 x 10000", "BM_Kendall", "steps:100/models:10/resamples:10000"),
        ("Kendall bootstrap 200 x 1000 x 1000", "BM_Kendall", "steps:200/models:1000/resamples:1000"),
        ("Spearman permutations 100 x 10 x 10000", "BM_SpearmanPermutation",
         "steps:100/models:10/permutations:10000"),
        ("Spearman permutations 100 x 30 x 10000", "BM_SpearmanPermutation",
         "steps:100/models:30/permutations:10000"),
        ("Kendall permutations 100 x 10 x 10000", "BM_KendallPermutation",
         "steps:100/models:10/permutations:10000"),
        ("Kendall permutations 100 x 30 x 10000", "BM_KendallPermutation",
         "steps:100/models:30/permutations:10000"),
        ("Spearman permutations 20 x 1000 x 1000", "BM_SpearmanPermutation",
         "steps:20/models:1000/permutations:1000"),
        ("Kendall permutations 20 x 1000 x 1000", "BM_KendallPermutation",
         "steps:20/models:1000/permutations:1000")]:
    gpu, cpu = ms(bench + "_Cuda/" + args), ms(bench + "_Cpu/" + args)
    speedup = cpu / gpu if gpu and cpu else None
    print(f"| {label} | {fmt(gpu)} | {fmt(cpu)} | {fmt(speedup, 1)} |")
print()
plain_rate = rate("BM_Spearman_Cuda/steps:200/models:15625/resamples:0")
sort_rate = rate("BM_CubSegmentedSort/steps:200/models:15625")
batch_rate = rate("BM_CubBatchRadixSort/steps:200/models:15625")
if plain_rate and sort_rate:
    print(f"ranked elements per second, 200 x 15625: ours (whole call) {plain_rate:.3g}, CUB "
          f"segmented sort alone {sort_rate:.3g} ({100 * plain_rate / sort_rate:.0f}% of it; "
          f"{fmt(ms('BM_CubSegmentedSort/steps:200/models:15625'))} ms)")
if plain_rate and batch_rate:
    print(f"  CUB radix sort of the whole batch (step in the high key bits) alone "
          f"{batch_rate:.3g} ({100 * plain_rate / batch_rate:.0f}% of it; "
          f"{fmt(ms('BM_CubBatchRadixSort/steps:200/models:15625'))} ms)")
copy = res.get("copy_bandwidth", {})
if "gb_per_s" in copy:
    print(f"device copy bandwidth: {copy['gb_per_s']:.0f} GB/s")
print()
print("crossover (backend::auto_): work = steps x models x max(1, resamples)")
print("| steps x models x resamples | work | CPU ms | GPU ms | faster |")
print("|---|---:|---:|---:|---|")
gpu_wins = []
for b in runs:
    if not b["name"].startswith("BM_Spearman_Cuda/"):
        continue
    args = b["name"].split("/")[1:4]
    steps, models, resamples = (int(a.split(":")[1]) for a in args)
    cpu = ms("BM_Spearman_Cpu/" + "/".join(args))
    work = steps * models * max(1, resamples)
    gpu_wins.append((work, cpu is not None and b["real_time"] < cpu))
    print(f"| {steps} x {models} x {resamples} | {work} | {fmt(cpu)} | {fmt(b['real_time'])} | "
          f"{'GPU' if gpu_wins[-1][1] else 'CPU'} |")
losing = [w for w, wins in gpu_wins if not wins]
above = min((w for w, wins in gpu_wins if wins and all(w > l for l in losing)), default=None)
print(f"smallest measured work above which the GPU always wins: {above} "
      f"(auto_min_work in the code: {1 << 12})")
print()
print("targets: " + ", ".join(f"{label}: {met}" for label, met in verdicts))
PY
  # Where the time of the two hardest targets goes, kernel by kernel (the plain case and the
  # 10-model bootstrap), when there is nsys and time: for the note's "why", not a check.
  nsys=$(command -v nsys || compgen -G "/opt/nvidia/nsight-systems/*/bin/nsys" | head -1 || true)
  if ((built)) && [[ -n $nsys ]] && (($(date +%s) - started < 240)); then
    say "stats: kernel times (nsys) of the plain case and the 10-model bootstrap"
    filter='BM_Spearman_Cuda/steps:(200/models:15625/resamples:0|100/models:10/resamples:10000)/'
    if timeout 60 "$nsys" profile --trace=cuda --sample=none --cpuctxsw=none \
         --force-overwrite=true -o "$results/stats_profile" \
         "$build/benchmarks/proxytask_stats_cuda_bench" --benchmark_filter="$filter" \
         --benchmark_min_time=0.05 >"$results/stats_profile.txt" 2>&1; then
      timeout 30 "$nsys" stats --report cuda_gpu_kern_sum --format table \
        "$results/stats_profile.nsys-rep" 2>&1 | head -24 | tee "$results/stats_kernels.txt" || true
    else
      echo "device-check: no kernel profile (nsys failed: $results/stats_profile.txt)"
    fi
  fi
fi

# === trainer: the reference trainer's CUDA back-end =============================================
if ((run_trainer && built)); then
  say "trainer: GPU tests"
  part "trainer GPU tests" ctest --test-dir "$build" -L gpu -R 'proxytask_(core|trainer)_cuda' \
    --output-on-failure --timeout 300 || true
fi

# --- trainer benchmarks ---------------------------------------------------------------------
if ((run_trainer && built)); then
  say "GPU benchmark"
  part "GPU benchmark" "$build/benchmarks/proxytask_trainer_cuda_bench" \
    --benchmark_out="$results/ours_cuda.json" --benchmark_out_format=json &&
    part "GPU benchmark" bench_ok "$results/ours_cuda.json" || true
  if [[ -x $build/benchmarks/proxytask_trainer_bench ]]; then
    say "CPU benchmark (baseline, same machine)"
    part "CPU benchmark" "$build/benchmarks/proxytask_trainer_bench" \
      --benchmark_filter='BM_TrainEpoch_Cpu' \
      --benchmark_out="$results/ours_cpu.json" --benchmark_out_format=json &&
      part "CPU benchmark" bench_ok "$results/ours_cpu.json" || true
  else
    echo "device-check: no CPU benchmark (OpenBLAS not found on this machine)"
  fi
fi
if ((run_trainer)); then
  say "PyTorch (benchmarks/peers/torch_mlp.py)"
  part "PyTorch" python3 benchmarks/peers/torch_mlp.py --json "$results/torch.json" \
    >"$results/torch_stdout.json" || true
fi

# --- the documented full run on the GPU -----------------------------------------------------
if ((run_trainer && built)) && have_data; then
  say "training run on the GPU (784-256-10 relu, 15 epochs)"
  run_dir=$results/full-run
  rm -rf "$run_dir" && mkdir -p "$run_dir"
  echo '{"model_id": "mlp-256-relu-d0", "parameters": {"hidden": [256], "activation": "relu",
    "dropout": 0}}' >"$run_dir/MODEL_SPEC.json"
  part "GPU training run" "$build/examples/proxytask-reference-trainer-cuda" --device=cuda \
    --model_dir="$run_dir" --seed=1 --final_test=1 --total_steps=2940 --learning_rate=2e-3 \
    --ema_decay=0.999 >"$results/full_run.txt" || true
  cat "$results/full_run.txt"
fi

# --- the trainer's table ----------------------------------------------------------------------
if ((run_trainer)); then
say "trainer: summary"
python3 - "$results" <<'PY' | tee "$results/summary.md" || failed+=("summary")
import json, os, re, sys
results = sys.argv[1]

def load(name):
    try:
        with open(os.path.join(results, name)) as f:
            return json.load(f)
    except Exception:
        return None

def runs(doc):
    return [b for b in (doc or {}).get("benchmarks", [])
            if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred")]

def bench(doc, prefix):
    return next((b for b in runs(doc) if b.get("name", "").startswith(prefix)), None)

ours = load("ours_cuda.json")
cpu = load("ours_cpu.json")
torch = load("torch.json") or load("torch_stdout.json") or {}
if "error" in torch:
    print(f"PyTorch: {torch['error']}")
epoch = bench(ours, "BM_TrainEpoch_Cuda")
ours_sps = epoch.get("samples_per_second") if epoch else None
print(f"device: {torch.get('device', '?')}; torch {torch.get('torch', '?')}; "
      f"data: ours {epoch.get('label', '?') if epoch else '?'}, torch {torch.get('data', '?')}")
print()
print("| what | samples/s | epoch ms | ours / this |")
print("|---|---:|---:|---:|")
def row(name, sps, ms):
    ratio = f"{ours_sps / sps:.2f}" if ours_sps and sps else "-"
    print(f"| {name} | {sps:,.0f} | {ms:.1f} | {ratio} |" if sps else f"| {name} | failed | - | - |")
row("proxytask GPU (cuBLAS + fused kernels)", ours_sps, 60000 / ours_sps * 1e3 if ours_sps else 0)
for variant, r in torch.get("results", {}).items():
    if "samples_per_second" in r:
        row(f"PyTorch {variant}", r["samples_per_second"], r["epoch_ms"])
    else:
        print(f"| PyTorch {variant} | {r.get('error', 'failed')[:80]} | - | - |")
for b in runs(cpu):
    if "images_per_s" in b:
        row(f"proxytask CPU {b['name']}", b["images_per_s"], 60000 / b["images_per_s"] * 1e3)
for b in runs(ours):
    if b.get("name", "").startswith("BM_Infer_Cuda"):
        print(f"| GPU forward pass {b['name']} (latency in the ms column) | "
              f"{b.get('samples_per_second', 0):,.0f} | {b['real_time'] / 1e3:.4f} | - |")
eager = torch.get("results", {}).get("eager", {}).get("samples_per_second")
print()
if ours_sps and eager:
    verdict = "MET" if ours_sps >= eager else "NOT MET"
    print(f"target (ours >= PyTorch eager, same GPU, same run): {verdict} "
          f"({ours_sps:,.0f} vs {eager:,.0f} samples/s, ratio {ours_sps / eager:.2f})")
else:
    print("target: not measured (a part failed)")
try:
    run = open(os.path.join(results, "full_run.txt")).read()
    acc = re.findall(r"validation accuracy ([0-9.]+)", run)
    test = re.search(r"test accuracy ([0-9.]+)", run)
    per_epoch = re.search(r"([0-9.]+) s per epoch", run)
    print(f"GPU training run: validation {acc[0] if acc else '?'} (first half epoch), "
          f"{acc[-1] if acc else '?'} (end), test {test.group(1) if test else '?'}, "
          f"{per_epoch.group(1) if per_epoch else '?'} s per epoch "
          f"(the CPU's documented run: 0.8422, 0.8975, test 0.8883)")
except OSError:
    print("GPU training run: not run")
PY
fi

save_results

echo
echo "device-check: $(($(date +%s) - started)) s"
if ((${#failed[@]})); then
  echo "device-check: FAILED parts: ${failed[*]}" >&2
  exit 1
fi
echo "device-check: every part passed"
