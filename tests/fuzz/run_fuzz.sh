#!/usr/bin/env bash
# Fuzzes the trial file protocol's parsers (tests/fuzz/protocol_fuzz.cpp) with libFuzzer + ASan +
# UBSan, on ONE core.
#
#   tests/fuzz/run_fuzz.sh [SECONDS] [--no-merge | --merge-only]   (default: 300 s, then merge)
#
# 1. configures a separate clang build in build/fuzz (PROXYTASK_BUILD_FUZZERS=ON, nothing else)
#    and builds proxytask_protocol_fuzzer;
# 2. runs it for SECONDS on the seed corpus tests/fuzz/corpus (only read) with the dictionary
#    tests/fuzz/protocol.dict; new inputs go to the scratch corpus build/fuzz/scratch-corpus (kept
#    between runs), crashes / leaks / timeouts to build/fuzz/artifacts/; --merge-only skips this;
# 3. unless --no-merge: adds to tests/fuzz/corpus the scratch inputs that reach code the corpus
#    does not (libFuzzer's -set_cover_merge=1 over edges), at most MERGE_MAX (100) per run,
#    keeping the corpus under 200 files and 1 MB.
# Exit status: 0 when nothing was found, 1 when an artifact (crash-*, leak-*, timeout-*, oom-*)
# was written. Replay the corpus or an artifact without libFuzzer (g++ build):
#   build/test/tests/proxytask_fuzz_replay <file or directory>...
# The seed corpus: hand-written valid and invalid files of each kind (Python json.dumps output
# with NaN / Infinity among them) with descriptive names; merged inputs are named by their SHA-1.
#
# Environment: CC / CXX (default clang-14 / clang++-14), MAX_LEN (default 4096 bytes),
# MERGE_MAX (default 100), FUZZ_FLAGS (extra libFuzzer flags).
set -euo pipefail

seconds=300
merge=1
fuzz=1
for arg in "$@"; do
  case "$arg" in
    --no-merge) merge=0 ;;
    --merge-only) fuzz=0 ;;
    ''|*[!0-9]*) echo "usage: $0 [SECONDS] [--no-merge | --merge-only]" >&2; exit 2 ;;
    *) seconds=$arg ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build/fuzz
corpus=$root/tests/fuzz/corpus
scratch=$build/scratch-corpus
artifacts=$build/artifacts
fuzzer=$build/tests/fuzz/proxytask_protocol_fuzzer
max_files=200          # the corpus stays under these
max_bytes=$((1024 * 1024))
merge_max=${MERGE_MAX:-100}

cmake -S "$root" -B "$build" \
  -DCMAKE_C_COMPILER="${CC:-clang-14}" -DCMAKE_CXX_COMPILER="${CXX:-clang++-14}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPROXYTASK_BUILD_FUZZERS=ON \
  -DPROXYTASK_BUILD_TESTS=OFF -DPROXYTASK_BUILD_EXAMPLES=OFF -DPROXYTASK_BUILD_BENCHMARKS=OFF \
  -DPROXYTASK_INSTALL=OFF -DPROXYTASK_ENABLE_CUDA=OFF -DPROXYTASK_WARNINGS_AS_ERRORS=ON >/dev/null
cmake --build "$build" --target proxytask_protocol_fuzzer -j1

mkdir -p "$scratch" "$artifacts"
if [[ $fuzz -eq 1 ]]; then
  before=$(find "$artifacts" -type f | wc -l)
  # One process, one thread (-jobs=1 -workers=1): the job's log is build/fuzz/fuzz-0.log.
  # The scratch directory comes first: libFuzzer writes new inputs only into the first one.
  status=0
  command=("$fuzzer" -jobs=1 -workers=1 -max_total_time="$seconds" -max_len="${MAX_LEN:-4096}"
           -timeout=10 -rss_limit_mb=2048 -use_value_profile=1
           -dict="$root/tests/fuzz/protocol.dict" -artifact_prefix="$artifacts/"
           -print_final_stats=1 ${FUZZ_FLAGS:-} "$scratch" "$corpus")
  echo "run_fuzz.sh: (cd $build && ${command[*]})"
  (cd "$build" && "${command[@]}" >"$build/fuzz-main.log" 2>&1) || status=$?
  # The summary: the seed corpus loaded, the last status line, the final statistics, any report.
  grep -E "INITED|DONE|^Done|^stat::|ERROR|SUMMARY|invariant violated|Test unit written" \
    "$build/fuzz-0.log" || true
  found=$(( $(find "$artifacts" -type f | wc -l) - before ))
  if [[ $found -gt 0 || $status -ne 0 ]]; then
    echo "run_fuzz.sh: $found new artifact(s) in $artifacts (exit status $status)" >&2
    ls -l "$artifacts" >&2
    exit 1
  fi
fi

if [[ $merge -eq 1 ]]; then
  # A greedy set cover over coverage edges (-set_cover_merge=1 -use_counters=0) of the corpus and
  # the scratch inputs picks the scratch inputs that reach code the corpus does not; they are
  # added largest first (the smallest ones tend to add one edge each), at most $merge_max per run,
  # while the corpus stays under $max_files files and $max_bytes bytes.
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"' EXIT
  cp "$corpus"/* "$staging"/
  "$fuzzer" -set_cover_merge=1 -use_counters=0 -max_len="${MAX_LEN:-4096}" "$staging" "$scratch" \
    >"$build/merge.log" 2>&1 || { tail "$build/merge.log" >&2; exit 1; }
  grep -E "MERGE-OUTER: [0-9]+ new files" "$build/merge.log" || true
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(cat "$corpus"/* | wc -c)
  added=0
  while IFS= read -r f; do
    size=$(wc -c <"$f")
    if [[ $added -ge $merge_max || $((files + 1)) -ge $max_files ||
          $((bytes + size)) -ge $max_bytes ]]; then
      break
    fi
    cp "$f" "$corpus"/
    files=$((files + 1)); bytes=$((bytes + size)); added=$((added + 1))
  done < <(for f in "$staging"/*; do
             [[ -e "$corpus/$(basename "$f")" ]] || printf '%s %s\n' "$(wc -c <"$f")" "$f"
           done | sort -rn | cut -d ' ' -f 2-)
  echo "run_fuzz.sh: merged $added input(s) into tests/fuzz/corpus (now $files files, $bytes bytes)"
fi
[[ $fuzz -eq 0 ]] || echo "run_fuzz.sh: no crash, leak or timeout in $seconds s"
