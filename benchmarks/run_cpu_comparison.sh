#!/usr/bin/env bash
# Our CPU benchmarks against the Python peers, on this machine, in one run, as one Markdown table.
#
#   benchmarks/run_cpu_comparison.sh
#
# 1. builds the Release benchmark preset (proxytask_stats_bench) and runs the over-steps
#    benchmarks (1 and 2 threads) into build/peers/ours.json;
# 2. makes numpy and scipy importable (benchmarks/peers/setup_cpu_peers.sh: Debian's packages
#    unpacked into build/peers/python; needs the Debian apt mirror the first time) and times the
#    peers (benchmarks/peers/cpu_peers.py, a few minutes) into build/peers/peers.json;
# 3. prints the comparison (benchmarks/peers/compare_cpu.py).
#
# Environment: BENCH_MIN_TIME (seconds per C++ benchmark, default 0.5); SKIP_PEERS=1 reuses an
# existing build/peers/peers.json (only when it was measured on this machine).
# A benchmark helper: not run by CI or ./build.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=build/peers
python=/usr/bin/python3  # Debian's python3, which the unpacked python3-numpy/python3-scipy fit
min_time=${BENCH_MIN_TIME:-0.5}
filter='^BM_OverSteps_(Spearman|Kendall)_(Plain|Bootstrap)_Cpu/'
mkdir -p "$out"

echo "# CPU comparison: proxytask vs numpy/scipy"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1), nproc $(nproc)," \
     "$(uname -sr)"
if commit=$(git rev-parse --short HEAD 2>/dev/null); then
  git diff --quiet HEAD || commit+=" (with local changes)"
else
  commit=unknown
fi
echo "- commit: $commit"
echo

echo "## Building the benchmarks (preset bench)" >&2
cmake --preset bench >&2
cmake --build --preset bench --target proxytask_stats_bench >&2

echo "## Running ours: $filter, min time ${min_time} s" >&2
build/bench/benchmarks/proxytask_stats_bench \
  --benchmark_filter="$filter" \
  --benchmark_min_time="$min_time" \
  --benchmark_out="$out/ours.json" --benchmark_out_format=json >&2

if [[ ${SKIP_PEERS:-0} == 1 && -f $out/peers.json ]]; then
  echo "## Peers: reusing $out/peers.json (SKIP_PEERS=1)" >&2
else
  echo "## Peers" >&2
  benchmarks/peers/setup_cpu_peers.sh >&2
  "$python" benchmarks/peers/cpu_peers.py --json "$out/peers.json" >&2
fi

"$python" benchmarks/peers/compare_cpu.py "$out/ours.json" "$out/peers.json"
