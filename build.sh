#!/usr/bin/env bash
# proxytask's two commands (README "Quick start"):
#   ./build.sh demo   build what the demo needs and run it
#   ./build.sh test   build everything with -Werror (host tests also under ASan + UBSan) and run
#                     all tests
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
    cmake --preset release
    cmake --build --preset release --target proxytask-correlate -j "$jobs"
    out=build/demo
    mkdir -p "$out"
    data=examples/data/nb201_12ep_vs_200ep.csv
    echo
    echo "== NAS-Bench-201: do 12-epoch accuracies rank 15,625 architectures as 200-epoch training does?"
    echo "   reference: CIFAR-10 validation accuracy after 200 epochs; each 'step' below is one proxy"
    echo "   (12-epoch accuracies on CIFAR-10 / CIFAR-100 / ImageNet16-120, and the NASWOT zero-cost score)"
    for method in kendall spearman; do
      # The seed's bar is Kendall tau-b >= 0.65; Spearman 0.84 is about as strong.
      threshold=$([ "$method" = kendall ] && echo 0.65 || echo 0.84)
      echo
      build/release/examples/proxytask-correlate "$data" --model-column arch_id \
        --reference-column c10valid_valacc_200ep \
        --score-columns c10valid_valacc_12ep,c10_testacc_12ep,c100_valacc_12ep,in16_valacc_12ep,naswot_v1_score \
        --method "$method" --resamples 1000 --threshold "$threshold" --threads 0 \
        --json "$out/nb201_$method.json" --csv "$out/nb201_$method.csv"
    done
    echo
    echo "The seed's bar for a proxy to trust: Kendall tau-b >= 0.65 (about Spearman 0.84)."
    echo "p(<=c) is the bootstrap p-value of \"the coefficient is at most c\": small means the"
    echo "proxy reaches the bar with confidence; [ci_low, ci_high] is the 95% BCa interval."
    echo "written: $out/nb201_kendall.{json,csv} $out/nb201_spearman.{json,csv}"
    ;;
  test)
    cmake --preset test
    cmake --build --preset test -j "$jobs"
    ctest --preset test -j "$jobs"
    ;;
esac
