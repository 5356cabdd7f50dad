#!/usr/bin/env bash
# The reference trainer's GPU check, in one run on the device machine (an H100: Ubuntu 24.04,
# nvcc 13.0, CMake 4.x, Boost 1.83, GoogleTest, Google Benchmark, PyTorch; no internet, no
# Fashion-MNIST package, perhaps no OpenBLAS, Random123 or zlib headers). About 5 minutes.
#
#   1. configures a Release build into build/device (CUDA architecture 90, tests and
#      benchmarks on) and builds only the GPU targets (-j16): proxytask_core_cuda_tests,
#      proxytask_trainer_cuda_tests, proxytask_trainer_cuda_bench,
#      proxytask-reference-trainer-cuda, and the CPU epoch benchmark where OpenBLAS was found;
#   2. runs `ctest -L gpu` (the GPU tests; GPU against CPU);
#   3. runs the GPU epoch benchmark (784-256-10 ReLU, Adam, batch 256, 60,000 images) and the CPU
#      one (the baseline on the same machine), then PyTorch on the same model
#      (benchmarks/peers/torch_mlp.py: eager, fused Adam, torch.compile);
#   4. trains the documented full run on the GPU with proxytask-reference-trainer-cuda
#      (784-256-10, 15 epochs, Adam 2e-3, EMA 0.999) and prints its accuracy;
#   5. prints a table: our samples/s against PyTorch's, and the ratio (the target: >= 1 against
#      PyTorch eager on the same GPU in the same run).
# Every part runs even when an earlier one failed (except what needs the build); the exit status
# is non-zero when any part failed. Results go to build/device/device-check/ and, when $OUT is
# set (the device tool), to $OUT too.
#
# Data and headers the device machine lacks travel in the ignored folder .device-data/ (the
# device tool carries ignored paths named in its `carry` list). Prepare it once, here:
#
#   mkdir -p .device-data/fashion-mnist .device-data/include && cp /usr/share/datasets/fashion-mnist/*-ubyte.gz .device-data/fashion-mnist/ && cp -r /usr/include/Random123 /usr/include/zlib.h /usr/include/zconf.h .device-data/include/
#
# then run, on the device: benchmarks/device-check.sh   (with carry: [".device-data"])
# Without the Fashion-MNIST files the benchmarks use synthetic data of the same shape (noted)
# and step 4 is skipped.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build=build/device
results=$build/device-check
jobs=${DEVICE_CHECK_JOBS:-16}
mkdir -p "$results"
failed=()
started=$(date +%s)

say() { printf '\n== %s (%ds)\n' "$*" "$(($(date +%s) - started))"; }
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
if command -v ninja >/dev/null; then cmake_args+=(-G Ninja); fi

# --- 1. configure and build --------------------------------------------------------------------
say "configure ($build)"
configure() { cmake -S . -B "$build" "${cmake_args[@]}"; }
built=0
if part configure configure; then
  targets=(proxytask_core_cuda_tests proxytask_trainer_cuda_tests proxytask_trainer_cuda_bench
           proxytask-reference-trainer-cuda)
  if cmake --build "$build" --target help 2>/dev/null | grep -q 'proxytask_trainer_bench'; then
    targets+=(proxytask_trainer_bench)
  fi
  say "build: ${targets[*]}"
  if part build cmake --build "$build" -j "$jobs" --target "${targets[@]}"; then built=1; fi
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null |
  sed 's/^/device-check: GPU: /' || echo "device-check: nvidia-smi not found" >&2

# --- 2. GPU tests -----------------------------------------------------------------------------
if ((built)); then
  say "ctest -L gpu"
  part "ctest -L gpu" ctest --test-dir "$build" -L gpu --output-on-failure --timeout 300 || true
fi

# --- 3. benchmarks ------------------------------------------------------------------------------
if ((built)); then
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
say "PyTorch (benchmarks/peers/torch_mlp.py)"
part "PyTorch" python3 benchmarks/peers/torch_mlp.py --json "$results/torch.json" \
  >"$results/torch_stdout.json" || true

# --- 4. the documented full run on the GPU ------------------------------------------------------
if ((built)) && have_data; then
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

# --- 5. the table -------------------------------------------------------------------------------
say "summary"
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

if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
  cp "$results"/*.json "$results"/summary.md "$OUT"/ 2>/dev/null || true
  [[ -f $results/full_run.txt ]] && cp "$results/full_run.txt" "$OUT"/ || true
fi

echo
echo "device-check: $(($(date +%s) - started)) s"
if ((${#failed[@]})); then
  echo "device-check: FAILED parts: ${failed[*]}" >&2
  exit 1
fi
echo "device-check: every part passed"
