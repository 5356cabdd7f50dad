#!/usr/bin/env bash
# proxytask's two commands (README "Quick start"):
#   ./build.sh demo   build what the demo needs and run it (the end-to-end proxy-task design)
#   ./build.sh test   build everything with -Werror (host tests also under ASan + UBSan) and run
#                     all tests (as root, the Slurm tests against a real Slurm it starts)
# Each first installs the Debian packages it needs (apt-get as root; otherwise it prints the
# exact apt-get line and stops).
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  echo "usage: ./build.sh demo | test" >&2
  exit 2
}
[ $# -eq 1 ] || usage
mode=$1

# Debian 12 packages. Boost 1.81 (not Debian's default 1.74) for Boost.JSON.
packages=(cmake make g++ libboost-json1.81-dev libboost-math1.81-dev librandom123-dev zlib1g-dev
          libopenblas-dev dataset-fashion-mnist)
case "$mode" in
  demo) ;;
  test) packages+=(googletest libgtest-dev libbenchmark-dev python3) ;;
  *) usage ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build.sh: missing Debian packages. Install them with:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "build.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# nvcc is not a Debian package: use it when the CUDA Toolkit is installed in its usual place.
if ! command -v nvcc >/dev/null 2>&1 && [ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
jobs=$(nproc 2>/dev/null || echo 2)

case "$mode" in
  demo)
    # The end-to-end proxy-task design on Fashion-MNIST (README "What the demo prints"): only the
    # demo and the reference trainer are built; on a machine with an NVIDIA GPU and nvcc, the
    # trainer's CUDA build too, which the demo then runs one trial per GPU.
    cmake --preset release
    targets=(proxytask-proxy-task-design proxytask-reference-trainer)
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      buildable=$(cmake --build --preset release --target help)
      if [[ $buildable == *proxytask-reference-trainer-cuda* ]]; then
        targets+=(proxytask-reference-trainer-cuda)
      fi
    fi
    cmake --build --preset release --target "${targets[@]}" -j "$jobs"
    # A finished run directory answers again at once; a killed one resumes where it stopped.
    build/release/examples/proxytask-proxy-task-design build/demo/proxy-task-design
    ;;
  test)
    cmake --preset test
    cmake --build --preset test -j "$jobs"
    # The Slurm executor's tests run against a real single-node Slurm (tests/slurm/README.md),
    # started here when we are root (CI is; the script installs its Debian packages) and stopped
    # when the tests end. Otherwise they skip, saying how to run them.
    if [ "$(id -u)" -eq 0 ]; then
      slurm_state="$PWD/build/test/slurm"
      tests/slurm/slurm_cluster.sh start "$slurm_state" >/dev/null
      trap 'tests/slurm/slurm_cluster.sh stop "$slurm_state"' EXIT
      export SLURM_CONF="$slurm_state/slurm.conf"
    fi
    ctest --preset test -j "$jobs"
    ;;
esac
